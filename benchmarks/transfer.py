"""Real cross-lingual transfer on a CPU: FT, SP, PCT and MPT on e5-small (the `transfer` grid
preset: 256 shots per class, 2 epochs, 3 seeds, 300 test examples per language; with 192
auxiliary pairs SP makes as many updates as MPT). Trains what the store lacks, seed by seed
(so a stop leaves whole seeds), then prints the per-language table (mean ± std over seeds),
MPT − SP with Welch's t-test per column, and a JSON line last.

    MPT_DATA_DIR=../shared/data python benchmarks/transfer.py [--report-only]
"""

from __future__ import annotations

import json
import sys
import time

from mpt_engine import reports
from mpt_engine.events import RunFinished
from mpt_engine.launch import local_grid
from mpt_engine.results import load_runs
from mpt_engine.runner import Execution, execute
from mpt_engine.stats import TTest, summarize, t_test
from mpt_engine.store import RunStore
from mpt_engine.tables import to_markdown


def train_missing(store: RunStore, configs) -> None:
    for config in sorted(configs, key=lambda config: config.seed):
        if store.result(config.run_id) is not None:
            continue
        started = time.monotonic()
        for event in execute(config, store, Execution(device="cpu")):
            if isinstance(event, RunFinished):
                print(f"{config.run_id}: {event.average:.1f} in {time.monotonic() - started:.0f} s")
        sys.stdout.flush()


def main(report_only: bool) -> None:
    store = RunStore()
    configs = local_grid("transfer", {}, device="cpu")  # ids name the precision they run at
    if not report_only:
        train_missing(store, configs)
    ids = {config.run_id: config for config in configs}
    runs = [run for run in load_runs(store)[0] if run.run_id in ids and run.result]
    mpt_epochs = next(c.epochs for c in configs if c.method == "mpt")
    groups = {
        "MPT": [r for r in runs if r.config["method"] == "mpt"],
        "SP": [r for r in runs if r.config["method"] == "sp" and r.config["epochs"] == mpt_epochs],
        "SP (MPT's updates)": [
            r for r in runs if r.config["method"] == "sp" and r.config["epochs"] != mpt_epochs
        ],
        "PCT": [r for r in runs if r.config["method"] == "pct"],
        "FT": [r for r in runs if r.config["method"] == "ft"],
    }
    print(to_markdown(reports.table1(runs)))
    for baseline in ("SP", "SP (MPT's updates)"):
        if groups[baseline] and groups["MPT"]:
            table = reports.compare(groups[baseline], groups["MPT"], (baseline, "MPT"))
            print(to_markdown(table))
    averages = {name: [r.result["average"] for r in group] for name, group in groups.items()}
    summary = {
        "benchmark": "transfer",
        "runs": len(runs),
        "seconds": round(sum(r.result.get("seconds", 0) for r in runs)),
        **{f"{name}_average": round(summarize(v).mean, 2) for name, v in averages.items() if v},
        "p_mpt_vs_sp": t_test(averages["SP"], averages["MPT"], TTest.WELCH),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(report_only="--report-only" in sys.argv)
