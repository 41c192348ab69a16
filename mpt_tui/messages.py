"""Messages the app's run worker posts (thread-safe) to the UI."""

from __future__ import annotations

from textual.message import Message

from mpt_engine.events import Event


class RunUpdate(Message):
    """An engine event of one run, read from its child process."""

    def __init__(self, run_id: str, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.event = event


class QueueFinished(Message):
    """Every queued run has ended (finished, failed or cancelled)."""


class SlurmUpdate(Message):
    """The state of the runs this app submitted to Slurm, read from the queue and the store."""

    def __init__(self, runs: dict) -> None:
        super().__init__()
        self.runs = runs
