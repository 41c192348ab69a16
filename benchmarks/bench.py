"""Our engine path against the baselines' way (benchmarks/reference.py), timed in one process
on real XNLI text, on the same model and weights.

    python benchmarks/bench.py            # CPU: XLM-R-shaped, 250,002-word vocabulary, 4 x 256
    python benchmarks/bench.py --full     # GPU: the real XLM-R base shape, a whole test pass,
                                          # and the projected time of Table I's 180 runs
    python benchmarks/bench.py --host     # host overhead per step, ours against the current
                                          # way (benchmarks/host.py)

Prints a table, then one JSON line: device, model, eval_speedup, train_speedup,
eval_examples_per_s, train_steps_per_s, peak_mem_mb (and more). Random weights: the speed of a
model does not depend on its values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import host, reference
from mpt_engine.backbone import train_tokenizer
from mpt_engine.config import PAPER_SHOTS, RunConfig
from mpt_engine.data.examples import AlignmentPair, Example, TaskData
from mpt_engine.data.local import LocalSource
from mpt_engine.evaluate import predict_labels
from mpt_engine.languages import XNLI_LANGUAGES, XNLI_TEST_SIZE
from mpt_engine.methods import build_method
from mpt_engine.paths import cache_dir
from mpt_engine.train import resolve_device

XLMR_VOCAB = 250_002
SHAPES = {
    "xlmr-4x256": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024
    ),
    "xlmr-base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}
TEST_EXAMPLES = len(XNLI_LANGUAGES) * XNLI_TEST_SIZE


def data_root() -> Path:
    root = Path(
        os.environ.get("MPT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    if not (root / "xnli").is_dir():
        sys.exit(f"error: XNLI text not found in {root}; set MPT_DATA_DIR")
    return root


def bench_tokenizer(source: LocalSource):
    """A 32,000-piece BPE trained on XNLI dev text (cached): realistic lengths, offline. XLM-R's
    own 250k-piece tokenizer gives shorter sequences, so our path is timed pessimistically."""
    from transformers import AutoTokenizer

    folder = cache_dir() / "tokenizers" / "bench-bpe-32000"
    if not (folder / "tokenizer.json").exists():
        texts = [
            text
            for lang in XNLI_LANGUAGES
            for example in source.xnli("dev", lang)
            for text in (example.premise, example.hypothesis)
        ]
        texts += ["right wrong maybe yes no . ?"] * 100
        train_tokenizer(texts, 32000, limit_alphabet=2000).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


class PeakMemory:
    """Peak memory of a block: CUDA's allocator statistics, or the process RSS sampled every
    5 ms above its level at the start (CPU)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb = device, 0.0

    @contextmanager
    def measure(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            yield
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        page = os.sysconf("SC_PAGE_SIZE")

        def rss() -> int:
            return int(Path("/proc/self/statm").read_text().split()[1]) * page

        start, peak, running = rss(), [rss()], [True]

        def sample() -> None:
            while running[0]:
                peak[0] = max(peak[0], rss())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            running[0] = False
            sampler.join()
            self.peak_mb = (max(peak[0], rss()) - start) / 2**20


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full", action="store_true", help="XLM-R base shape and a whole test pass (GPU)"
    )
    parser.add_argument(
        "--host", action="store_true", help="host time per step at XLM-R base's layout"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-examples", type=int, help="examples our path evaluates")
    parser.add_argument(
        "--reference-eval-examples", type=int, help="examples the reference evaluates"
    )
    parser.add_argument("--train-steps", type=int, default=5, help="our timed training steps")
    parser.add_argument(
        "--reference-micro-steps", type=int, help="timed reference micro-batches of 4"
    )
    args = parser.parse_args()
    if args.host:
        result = host.run()
        report_host(result)
        print(json.dumps(result))
        return

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    shape = "xlmr-base" if args.full else "xlmr-4x256"
    eval_examples = args.eval_examples or (TEST_EXAMPLES if args.full else 1500)
    reference_examples = args.reference_eval_examples or (400 if gpu else 8)
    micro_steps = args.reference_micro_steps or (6 if gpu else 1)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    source = LocalSource(data_root())
    tokenizer = bench_tokenizer(source)
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    backbone = XLMRobertaForMaskedLM(
        XLMRobertaConfig(
            vocab_size=XLMR_VOCAB, max_position_embeddings=514, pad_token_id=1, **SHAPES[shape]
        )
    )
    config = RunConfig(method="mpt", shots=8, model="bench").resolved()
    method = build_method(config, tokenizer, model=backbone)
    method.model.to(device)
    use_bf16 = gpu and torch.cuda.is_bf16_supported()

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    memory = PeakMemory(device)

    # Evaluation: the same test examples per language for both paths (XNLI is row-parallel).
    per_language = math.ceil(eval_examples / 15)
    test = {lang: source.xnli("test", lang)[:per_language] for lang in XNLI_LANGUAGES}
    for lang, examples in test.items():
        method.encode(examples, lang)  # tokenise once: a run reads its tokens from the cache
    synchronize(device)
    with memory.measure():
        started = time.perf_counter()
        ours = {}
        for lang, examples in test.items():
            with autocast():
                ours[lang] = predict_labels(method, examples, lang, config.eval_batch_size, device)
        synchronize(device)
        eval_seconds = time.perf_counter() - started
    eval_memory = memory.peak_mb
    evaluated = sum(map(len, test.values()))
    ours_eval = evaluated / eval_seconds

    reference_langs = XNLI_LANGUAGES[: max(1, min(15, reference_examples // reference.EVAL_BATCH))]
    reference_per_language = max(reference.EVAL_BATCH, reference_examples // len(reference_langs))
    agree = total = 0
    with memory.measure():
        started = time.perf_counter()
        for lang in reference_langs:
            encoded = method.encode(test[lang][:reference_per_language], lang)
            predicted = reference.predict(method, encoded, lang, device)
            agree += sum(a == b for a, b in zip(predicted, ours[lang], strict=False))
            total += len(predicted)
        synchronize(device)
        reference_seconds = time.perf_counter() - started
    reference_eval_memory = memory.peak_mb
    reference_eval = total / reference_seconds

    # Training: MPT steps (a CE batch of 24 and an auxiliary batch of 24 pairs).
    rng = random.Random(0)
    train = source.paper_split("train", 8)
    dev_rows = {lang: source.xnli("dev", lang) for lang in XNLI_LANGUAGES}
    aux = []
    for index in rng.sample(range(2490), 24):
        lang = rng.choice([lang for lang in XNLI_LANGUAGES if lang != "en"])
        english, target = dev_rows["en"][index], dev_rows[lang][index]
        aux.append(
            AlignmentPair(
                Example(english.premise, english.hypothesis),
                Example(target.premise, target.hypothesis),
                lang,
            )
        )
    method.prepare(TaskData(train, [], {}, aux))
    optimizer = torch.optim.AdamW(method.model.parameters(), lr=4e-5, fused=gpu)
    generator = torch.Generator().manual_seed(0)

    def our_step() -> None:
        batches = next(method.training_batches(generator))
        method.model.train()
        with autocast():
            loss = method.loss(batches.to(device)).total
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    our_step()  # warm-up
    synchronize(device)
    with memory.measure():
        started = time.perf_counter()
        for _ in range(args.train_steps):
            our_step()
        synchronize(device)
        ours_step_seconds = (time.perf_counter() - started) / args.train_steps
    train_memory = memory.peak_mb

    english_view, source_view, target_view = method.train, method.aux_source, method.aux_target
    micro = reference.MICRO_BATCH
    with memory.measure():
        started = time.perf_counter()
        for step in range(micro_steps):
            part = slice((step * micro) % 24, (step * micro) % 24 + micro)
            reference.train_micro_step(
                method, english_view[part], source_view[part], target_view[part], device
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        micro_seconds = (time.perf_counter() - started) / micro_steps
    reference_train_memory = memory.peak_mb
    reference_step_seconds = micro_seconds * (24 // micro)  # 6 micro-batches make a step of 24

    result = {
        "device": torch.cuda.get_device_name(device) if gpu else f"cpu ({os.cpu_count()} cores)",
        "model": f"{shape}, vocab {XLMR_VOCAB}",
        "precision": "bf16 autocast" if use_bf16 else "fp32",
        "eval_speedup": round(ours_eval / reference_eval, 1),
        "train_speedup": round(reference_step_seconds / ours_step_seconds, 1),
        "eval_examples_per_s": round(ours_eval, 1),
        "train_steps_per_s": round(1 / ours_step_seconds, 3),
        "peak_mem_mb": round(max(eval_memory, train_memory), 1),
        "reference_eval_examples_per_s": round(reference_eval, 2),
        "reference_train_steps_per_s": round(1 / reference_step_seconds, 4),
        "reference_peak_mem_mb": round(max(reference_eval_memory, reference_train_memory), 1),
        "prediction_agreement": round(agree / total, 4),
        "eval_examples": evaluated,
        "test_pass_seconds": round(TEST_EXAMPLES / ours_eval, 1),
    }
    if args.full:
        result["table1_projected_hours"] = round(
            table1_seconds(ours_eval, ours_step_seconds) / 3600, 2
        )
    report(result, eval_seconds, reference_examples=total, micro_steps=micro_steps)
    print(json.dumps(result))


def table1_seconds(eval_per_s: float, mpt_step_seconds: float) -> float:
    """Table I's 180 runs from measured rates: 50 epochs of training (MPT: a CE and an auxiliary
    batch per step, over the longer of 3k examples and 500 pairs; FT and SP: one batch, taken
    as a third of MPT's step; PCT: two views, two thirds), an English dev pass each epoch, and
    one 75,150-example test pass per run."""
    total = 0.0
    for shots in PAPER_SHOTS:
        english_steps = math.ceil(3 * shots / 24)
        steps = {
            "mpt": (max(english_steps, math.ceil(500 / 24)), mpt_step_seconds),
            "sp": (english_steps, mpt_step_seconds / 3),
            "ft": (english_steps, mpt_step_seconds / 3),
            "pct": (english_steps, 2 * mpt_step_seconds / 3),
        }
        for count, seconds in steps.values():
            per_run = 50 * (count * seconds + 3 * shots / eval_per_s) + TEST_EXAMPLES / eval_per_s
            total += 5 * per_run
    return total


def report(result: dict, eval_seconds: float, reference_examples: int, micro_steps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"mpt benchmark — {result['model']} on {result['device']} ({result['precision']})"
    )
    table.add_column("")
    table.add_column("ours", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("speed-up", justify="right")
    table.add_row(
        "evaluation (examples/s)",
        f"{result['eval_examples_per_s']:.1f}",
        f"{result['reference_eval_examples_per_s']:.2f}",
        f"{result['eval_speedup']:.1f}x",
    )
    table.add_row(
        "MPT training (steps/s)",
        f"{result['train_steps_per_s']:.3f}",
        f"{result['reference_train_steps_per_s']:.4f}",
        f"{result['train_speedup']:.1f}x",
    )
    table.add_row(
        "peak memory (MB)",
        f"{result['peak_mem_mb']:.0f}",
        f"{result['reference_peak_mem_mb']:.0f}",
        "",
    )
    console = Console(stderr=True)
    console.print(table)
    console.print(
        f"ours: {result['eval_examples']} test examples in {eval_seconds:.1f} s "
        f"(a full 75,150-example pass: {result['test_pass_seconds']:.0f} s); "
        f"reference: {reference_examples} examples and "
        f"{micro_steps} micro-batch(es) of 4, a step being 6 of them; predictions agree on "
        f"{100 * result['prediction_agreement']:.2f}% of the reference's examples"
    )
    if "table1_projected_hours" in result:
        console.print(f"projected Table I (180 runs): {result['table1_projected_hours']:.2f} h")


def report_host(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"host time per step — {result['layout']}")
    for column in ("", "ours (ms)", "current way (ms)", "speed-up", "ops (ours / current)"):
        table.add_column(column, justify="right" if column else "left")

    def cell(figure: dict) -> str:
        return f"{figure['median']:.1f} ({figure['low']:.1f}-{figure['high']:.1f})"

    for name, key in (("MPT step", "mpt"), ("SP step", "sp")):
        ours, current = result[f"{key}_step_host_ms"], result[f"{key}_step_host_ms_current"]
        table.add_row(
            name,
            cell(ours),
            cell(current),
            f"{current['median'] / ours['median']:.2f}x",
            f"{result[f'{key}_step_ops']} / {result[f'{key}_step_ops_current']}",
        )
    ours, current = result["eval_batch_host_ms"], result["eval_batch_host_ms_current"]
    table.add_row(
        "eval batch",
        cell(ours),
        cell(current),
        f"{current['median'] / ours['median']:.2f}x",
        "",
    )
    Console(stderr=True).print(table)


if __name__ == "__main__":
    main()
