"""Data for a run: XNLI test/dev, k-shot splits, auxiliary parallel corpora, a synthetic sample."""

from mpt_engine.data.examples import AlignmentPair, Example, TaskData
from mpt_engine.data.task import load_task_data

__all__ = ["AlignmentPair", "Example", "TaskData", "load_task_data"]
