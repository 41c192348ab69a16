"""Padding and time of the e5-small demo's work, the way the engine does it now against the way
it did until 2026-12-04, in one process:

- before: each training step one pass over its joined rows padded to the longest; each
  language's test examples in length-sorted batches of 256 examples, each one pass;
- now: a step's rows in groups of similar length (encoding.in_length_groups), test batches of
  at most 1,024 examples and 4,096 padded tokens (evaluate.eval_batches), each grouped too.

    MPT_DATA_DIR=../shared/data python benchmarks/padding.py [--steps 4]

Counts the padded and the real tokens of a whole training run (the demo's 96 MPT steps) and
of its test pass (200 examples in each of 15 languages), then times `--steps` training steps and
the test pass both ways, alternated, on e5-small's encoder (its converted weights: a model's speed
does not depend on its head). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpt_engine import encoding
from mpt_engine.data import load_task_data
from mpt_engine.e5small import build, convert, reader
from mpt_engine.evaluate import CPU_BATCH_TOKENS, eval_batches, predict_batched
from mpt_engine.methods import build_method
from mpt_engine.presets import build_config
from mpt_engine.train import build_optimizer, training_step


def grouped_tokens(batch, overhead: float) -> int:
    """Padded tokens the encoder sees for a batch whose rows run in length groups."""
    if overhead == math.inf:
        return batch.input_ids.numel()
    groups = encoding.length_groups(batch.lengths, overhead)
    return sum(len(group) * max(batch.lengths[i] for i in group) for group in groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps each way")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = build_config("demo")
    data = load_task_data(config)
    e5 = reader.read(build.package_file())
    tokenizer = convert.build_tokenizer(e5)
    torch.manual_seed(0)
    method = build_method(
        config, tokenizer, data, model=convert.build_masked_lm(e5, len(tokenizer))
    )
    steps = list(method.training_batches(torch.Generator().manual_seed(config.seed)))
    steps = [batch for _ in range(config.epochs) for batch in steps]
    ways = {"before": (256, math.inf, math.inf), "now": (1024, CPU_BATCH_TOKENS, None)}
    tests = {
        way: {
            lang: eval_batches(method, examples, lang, size, tokens)
            for lang, examples in data.test.items()
        }
        for way, (size, tokens, _) in ways.items()
    }
    overheads = {"before": math.inf, "now": encoding.CPU_GROUP_OVERHEAD}
    result = {
        "real_tokens_training": sum(sum(batch.lengths) for batch in steps),
        "real_tokens_test": sum(sum(b.lengths) for t in tests["now"].values() for b in t.batches),
    }
    for way, overhead in overheads.items():
        result[f"padded_tokens_training_{way}"] = sum(grouped_tokens(b, overhead) for b in steps)
        result[f"padded_tokens_test_{way}"] = sum(
            grouped_tokens(b, overhead) for t in tests[way].values() for b in t.batches
        )
    optimizer = build_optimizer(method, config, torch.device("cpu"))
    seconds = {f"{kind}_{way}": [] for kind in ("step", "test") for way in ways}
    for _ in range(args.repeats):  # alternated: a machine that slows down slows both
        for way, overhead in overheads.items():
            encoding.CPU_GROUP_OVERHEAD = overhead
            method.model.train()
            started = time.perf_counter()
            for batch in steps[: args.steps]:
                training_step(method, optimizer, batch, 1.0, contextlib.nullcontext)
            seconds[f"step_{way}"].append((time.perf_counter() - started) / args.steps)
            started = time.perf_counter()
            for lang, batched in tests[way].items():
                predict_batched(method, batched, lang, "cpu")
            seconds[f"test_{way}"].append(time.perf_counter() - started)
    for name, values in seconds.items():
        result[f"{name}_s"] = round(statistics.median(values), 3)
    result["step_speedup"] = round(result["step_before_s"] / result["step_now_s"], 2)
    result["test_speedup"] = round(result["test_before_s"] / result["test_now_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
