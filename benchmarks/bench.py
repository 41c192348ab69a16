"""Our engine path against the baselines' way (benchmarks/reference.py), timed in one process
on real XNLI text, on the same model and weights.

    python benchmarks/bench.py            # CPU: both shapes, XLM-R-shaped 4 x 256 and XLM-R
                                          # base (250,002-word vocabulary), few examples at base
    python benchmarks/bench.py --full     # GPU: XLM-R base, a whole test pass, and the
                                          # projected time of Table I's 180 runs
    python benchmarks/bench.py --host     # host overhead per step, ours against the current
                                          # way (benchmarks/host.py)

Each figure is the median of repeats after a warm-up (the spread is in the JSON); both sides
clip gradients and take one AdamW update per step of 24 (the reference's six micro-batches of
4 are timed one by one). Beside each measured speed-up, the one a FLOP count predicts. Prints
a table per shape, then one JSON line. Random weights: a model's speed does not depend on its
values.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import statistics
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
from mpt_engine.evaluate import batch_tokens, eval_batches, predict_batched
from mpt_engine.languages import XNLI_LANGUAGES, XNLI_TEST_SIZE
from mpt_engine.methods import build_method
from mpt_engine.paths import cache_dir
from mpt_engine.train import LossLog, build_optimizer, resolve_device, training_step

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
MPT_CONFIG = RunConfig(method="mpt", shots=8, model="bench").resolved()
EVAL_BATCH_SIZE = MPT_CONFIG.eval_batch_size
STAGED_TOKENIZER = "bench-tokenizer"  # a folder beside the staged data (benchmarks/stage.sh)


def data_root() -> Path:
    root = Path(
        os.environ.get("MPT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    if not (root / "xnli").is_dir():
        sys.exit(f"error: XNLI text not found in {root}; set MPT_DATA_DIR")
    return root


def bench_tokenizer(source: LocalSource):
    """A 32,000-piece BPE trained on XNLI dev text (cached): realistic lengths, offline. XLM-R's
    own 250k-piece tokenizer gives shorter sequences, so our path is timed pessimistically.
    benchmarks/stage.sh puts a copy beside the staged data, so a lent GPU does not train it."""
    from transformers import AutoTokenizer

    staged = source.root / STAGED_TOKENIZER
    if (staged / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(staged)
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
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-examples", type=int, help="examples our path evaluates")
    parser.add_argument(
        "--reference-eval-examples", type=int, help="examples the reference evaluates"
    )
    parser.add_argument(
        "--eval-batch-size", type=int, default=EVAL_BATCH_SIZE, help="examples per eval batch"
    )
    parser.add_argument(
        "--more-eval-batch-sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[],
        help="further test passes at these batch sizes (comma-separated)",
    )
    parser.add_argument("--train-steps", type=int, default=3, help="our steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each figure")
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
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    shapes = ["xlmr-base"] if args.full else list(SHAPES) if args.shape == "both" else [args.shape]
    results = [measure(shape, device, args) for shape in shapes]
    for result in results:
        report(result)
    print(json.dumps(results[0] if len(results) == 1 else {"shapes": results}))


def measure(shape: str, device: torch.device, args) -> dict:
    """Ours against the reference at one shape: evaluation and MPT training, each after a
    warm-up, as the median (and spread) of repeats; the speed-ups a FLOP count predicts. Each
    part's figures are emitted as soon as they are measured."""
    gpu = device.type == "cuda"
    base_on_cpu = shape == "xlmr-base" and not gpu
    eval_examples = args.eval_examples or (
        TEST_EXAMPLES if args.full else 150 if base_on_cpu else 1500
    )
    reference_examples = args.reference_eval_examples or (400 if gpu else 8)
    micro_steps = args.reference_micro_steps or (6 if gpu else 1 if base_on_cpu else 2)
    source = LocalSource(data_root())
    tokenizer = bench_tokenizer(source)
    method = mpt_method(shape, tokenizer, source, device)
    use_bf16 = gpu and torch.cuda.is_bf16_supported()

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    memory = PeakMemory(device)

    # Evaluation: the same test examples per language for both paths (XNLI is row-parallel).
    # The batches are built (tokenised, sorted, collated) before the timed passes, as a run
    # builds them once (warm.WarmCache): the timed pass is the model's work and its transfers.
    per_language = math.ceil(eval_examples / 15)
    test = {lang: source.xnli("test", lang)[:per_language] for lang in XNLI_LANGUAGES}
    lengths = [len(e.input_ids) for lang, ex in test.items() for e in method.encode(ex, lang)]
    evaluated = len(lengths)

    def test_pass(size: int) -> tuple[dict, list[float], float]:
        """Batches of at most `size` examples, built first; the timed passes' seconds."""
        started = time.perf_counter()
        batched = {
            lang: eval_batches(method, examples, lang, size, batch_tokens(device))
            for lang, examples in test.items()
        }
        build_seconds = time.perf_counter() - started

        def evaluate_ours() -> None:
            with autocast():
                for lang, batches in batched.items():
                    predict_batched(method, batches, lang, device)

        evaluate_ours()  # warm-up
        times = [timed(evaluate_ours, device) for _ in range(args.repeats)]
        emit(
            "evaluation",
            shape=shape,
            eval_batch_size=size,
            batches=sum(len(v.batches) for v in batched.values()),
            examples=evaluated,
            seconds=[round(t, 3) for t in times],
            examples_per_s=round(evaluated / statistics.median(times), 1),
            test_pass_seconds=round(TEST_EXAMPLES * statistics.median(times) / evaluated, 2),
            batch_build_seconds=round(build_seconds, 2),
            mean_tokens=round(sum(lengths) / len(lengths), 1),
            padded_tokens=sum(b.input_ids.numel() for v in batched.values() for b in v.batches),
            real_tokens=sum(lengths),
        )
        return batched, times, build_seconds

    with memory.measure():
        batched, eval_times, _ = test_pass(args.eval_batch_size)
    eval_memory = memory.peak_mb
    ours_eval = evaluated / statistics.median(eval_times)
    for size in args.more_eval_batch_sizes:
        test_pass(size)

    # Training: MPT steps of a CE batch of 24 and an auxiliary batch of 24 pairs, with the
    # trainer's own step (clipping included) and its losses read as the trainer reads them.
    method.prepare(TaskData(source.paper_split("train", 8), [], {}, alignment_pairs(source)))
    optimizer = build_optimizer(method, MPT_CONFIG, device)
    generator = torch.Generator().manual_seed(0)
    method.model.train()

    def our_steps() -> None:
        log = LossLog(1, args.train_steps)
        for step in range(args.train_steps):
            batch = next(method.training_batches(generator)).to(device)
            log.add(step, training_step(method, optimizer, batch, 1.0, autocast))
        list(log.report())

    our_steps()  # warm-up
    with memory.measure():
        step_times = [timed(our_steps, device) / args.train_steps for _ in range(args.repeats)]
    train_memory = memory.peak_mb
    ours_step_seconds = statistics.median(step_times)
    emit(
        "training",
        shape=shape,
        step_ms=[round(1000 * t, 1) for t in step_times],
        steps_per_s=round(1 / ours_step_seconds, 3),
        peak_mem_mb=round(max(eval_memory, train_memory), 1),
    )
    if args.full:
        fixed = run_setup_seconds(method, tokenizer, device)
        projected = table1_seconds(ours_eval, ours_step_seconds, fixed) / 3600
        emit(
            "table1",
            run_setup_seconds=round(fixed, 2),
            table1_projected_hours=round(projected, 2),
        )

    # The reference, last: the figures above do not wait for its slow passes.
    reference_langs = XNLI_LANGUAGES[: max(1, min(15, reference_examples // reference.EVAL_BATCH))]
    reference_per_language = max(reference.EVAL_BATCH, reference_examples // len(reference_langs))
    encoded = {
        lang: method.encode(test[lang][:reference_per_language], lang) for lang in reference_langs
    }
    with autocast():  # ours again: training changed the weights since the timed passes
        ours = {lang: predict_batched(method, batched[lang], lang, device) for lang in encoded}
    reference.predict(method, encoded[reference_langs[0]][: reference.EVAL_BATCH], "en", device)
    agree = total = 0
    with memory.measure():
        started = time.perf_counter()
        for lang in reference_langs:
            predicted = reference.predict(method, encoded[lang], lang, device)
            agree += sum(a == b for a, b in zip(predicted, ours[lang], strict=False))
            total += len(predicted)
        synchronize(device)
        reference_seconds = time.perf_counter() - started
    reference_eval_memory = memory.peak_mb
    reference_eval = total / reference_seconds

    english_view, source_view, target_view = method.train, method.aux_source, method.aux_target
    micro = reference.MICRO_BATCH
    method.model.train()

    def reference_micro(step: int) -> None:
        part = slice((step * micro) % 24, (step * micro) % 24 + micro)
        reference.train_micro_step(
            method, english_view[part], source_view[part], target_view[part], device
        )

    def reference_update() -> None:  # once per step of 24, as ours: clipping and AdamW
        torch.nn.utils.clip_grad_norm_(method.model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with memory.measure():
        micro_times = [timed(lambda s=s: reference_micro(s), device) for s in range(micro_steps)]
        update_seconds = timed(reference_update, device)
    reference_train_memory = memory.peak_mb
    micro_seconds = statistics.median(micro_times[1:] or micro_times)  # the first warms up
    reference_step_seconds = micro_seconds * (24 // micro) + update_seconds

    length = sum(lengths) / len(lengths)
    train_length = sum(len(e.input_ids) for e in english_view + source_view) / (
        len(english_view) + len(source_view)
    )
    result = {
        "device": torch.cuda.get_device_name(device) if gpu else f"cpu ({os.cpu_count()} cores)",
        "model": f"{shape}, vocab {XLMR_VOCAB}",
        "precision": "bf16 autocast" if use_bf16 else "fp32",
        "eval_speedup": round(ours_eval / reference_eval, 1),
        "eval_speedup_predicted": round(eval_flops_ratio(shape, length), 1),
        "train_speedup": round(reference_step_seconds / ours_step_seconds, 1),
        "train_speedup_predicted": round(train_flops_ratio(shape, train_length), 1),
        "eval_examples_per_s": round(ours_eval, 1),
        "eval_examples_per_s_spread": spread([evaluated / t for t in eval_times]),
        "train_steps_per_s": round(1 / ours_step_seconds, 3),
        "train_steps_per_s_spread": spread([1 / t for t in step_times]),
        "peak_mem_mb": round(max(eval_memory, train_memory), 1),
        "reference_eval_examples_per_s": round(reference_eval, 2),
        "reference_train_steps_per_s": round(1 / reference_step_seconds, 4),
        "reference_peak_mem_mb": round(max(reference_eval_memory, reference_train_memory), 1),
        "prediction_agreement": round(agree / total, 4),
        "eval_examples": evaluated,
        "reference_eval_examples": total,
        "reference_micro_steps": micro_steps,
        "mean_tokens": round(length, 1),
        "test_pass_seconds": round(TEST_EXAMPLES / ours_eval, 1),
    }
    if args.full:
        result["run_setup_seconds"] = round(fixed, 2)
        result["table1_projected_hours"] = round(projected, 2)
    emit("reference", **{k: v for k, v in result.items() if k.startswith("reference")})
    return result


def emit(stage: str, **figures) -> dict:
    """A stage's figures, printed and (with $OUT set) appended to $OUT/figures.jsonl the moment
    they are measured: a later stage that fails or runs out of time cannot lose them."""
    line = json.dumps({"stage": stage, **figures})
    print(line, flush=True)
    if os.environ.get("OUT"):
        with open(Path(os.environ["OUT"]) / "figures.jsonl", "a") as figures_file:
            figures_file.write(line + "\n")
    return figures


def mpt_method(shape: str, tokenizer, source: LocalSource, device: torch.device):
    """MPT on a randomly initialised XLM-R-shaped masked LM (speed does not depend on values)."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    with device:  # initialised where it trains: 278M random numbers take seconds on a CPU
        backbone = XLMRobertaForMaskedLM(
            XLMRobertaConfig(
                vocab_size=XLMR_VOCAB, max_position_embeddings=514, pad_token_id=1, **SHAPES[shape]
            )
        )
    method = build_method(MPT_CONFIG, tokenizer, model=backbone)
    method.to(device)
    return method


def alignment_pairs(source: LocalSource) -> list[AlignmentPair]:
    """24 English-target pairs of XNLI dev rows, each target in a random language."""
    rng = random.Random(0)
    dev_rows = {lang: source.xnli("dev", lang) for lang in XNLI_LANGUAGES}
    pairs = []
    for index in rng.sample(range(2490), 24):
        lang = rng.choice([lang for lang in XNLI_LANGUAGES if lang != "en"])
        english, target = dev_rows["en"][index], dev_rows[lang][index]
        pairs.append(
            AlignmentPair(
                Example(english.premise, english.hypothesis),
                Example(target.premise, target.hypothesis),
                lang,
            )
        )
    return pairs


def run_setup_seconds(method, tokenizer, device: torch.device) -> float:
    """What a run costs before its first step in a long-lived worker: a fresh copy of the
    pretrained weights (warm.WarmCache), the method built on it and moved to the device."""
    synchronize(device)
    started = time.perf_counter()
    backbone = copy.deepcopy(method.backbone).cpu()
    fresh = build_method(MPT_CONFIG, tokenizer, model=backbone)
    fresh.to(device)
    synchronize(device)
    return time.perf_counter() - started


def timed(work, device: torch.device) -> float:
    synchronize(device)
    started = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - started


def spread(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


def encoder_flops(shape: str, length: float) -> float:
    """Forward FLOPs of one sequence: the dense layers (4 d^2 + 2 d d_ff multiply-adds a token
    and layer) and attention (2 n d a token and layer)."""
    d, layers, ff = (
        SHAPES[shape][k] for k in ("hidden_size", "num_hidden_layers", "intermediate_size")
    )
    return 2 * layers * length * (4 * d * d + 2 * d * ff + 2 * length * d)


def head_flops(shape: str, positions: float, rows: int) -> float:
    d = SHAPES[shape]["hidden_size"]
    return 2 * positions * (d * d + d * rows)


def eval_flops_ratio(shape: str, length: float) -> float:
    """The reference's FLOPs per example over ours: 256 positions and the whole vocabulary at
    each, against the example's own length and 3 label words at the mask."""
    static = reference.STATIC_LENGTH
    theirs = encoder_flops(shape, static) + head_flops(shape, static, XLMR_VOCAB)
    return theirs / (encoder_flops(shape, length) + head_flops(shape, 1, 3))


def train_flops_ratio(shape: str, length: float) -> float:
    """The same for an MPT step (24 English examples, 24 pairs; backward taken as twice the
    forward): the reference's vocabulary logits at all 256 positions of the 72 sequences,
    ours at the mask (3 rows for the CE, the vocabulary for the KL's 48)."""
    static = reference.STATIC_LENGTH
    theirs = 72 * (encoder_flops(shape, static) + head_flops(shape, static, XLMR_VOCAB))
    ours = 72 * encoder_flops(shape, length)
    ours += 24 * head_flops(shape, 1, 3) + 48 * head_flops(shape, 1, XLMR_VOCAB)
    return theirs / ours


def table1_seconds(eval_per_s: float, mpt_step_seconds: float, run_setup: float = 0.0) -> float:
    """Table I's 180 runs from measured rates: 50 epochs of training (MPT: a CE and an auxiliary
    batch per step, over the longer of 3k examples and 500 pairs; FT and SP: one batch, taken
    as a third of MPT's step; PCT: two views, two thirds), an English dev pass each epoch, one
    75,150-example test pass per run, and each run's setup in a long-lived worker."""
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
            per_run += run_setup
            total += 5 * per_run
    return total


def report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"mpt benchmark — {result['model']} on {result['device']} ({result['precision']})"
    )
    for column in ("", "ours", "reference", "speed-up", "FLOP-count prediction"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row(
        "evaluation (examples/s)",
        f"{result['eval_examples_per_s']:.1f}",
        f"{result['reference_eval_examples_per_s']:.2f}",
        f"{result['eval_speedup']:.1f}x",
        f"{result['eval_speedup_predicted']:.1f}x",
    )
    table.add_row(
        "MPT training (steps/s)",
        f"{result['train_steps_per_s']:.3f}",
        f"{result['reference_train_steps_per_s']:.4f}",
        f"{result['train_speedup']:.1f}x",
        f"{result['train_speedup_predicted']:.1f}x",
    )
    table.add_row(
        "peak memory (MB)",
        f"{result['peak_mem_mb']:.0f}",
        f"{result['reference_peak_mem_mb']:.0f}",
        "",
        "",
    )
    console = Console(stderr=True)
    console.print(table)
    low, high = result["eval_examples_per_s_spread"]
    console.print(
        f"ours: {result['eval_examples']} test examples ({low:.1f}-{high:.1f} examples/s over "
        f"the repeats; a full 75,150-example pass: {result['test_pass_seconds']:.0f} s), "
        f"{result['mean_tokens']:.0f} tokens on average; reference: "
        f"{result['reference_eval_examples']} examples and {result['reference_micro_steps']} "
        "micro-batch(es) of 4 (a step is 6 of them and one AdamW update); predictions agree on "
        f"{100 * result['prediction_agreement']:.2f}% of the reference's examples"
    )
    if "table1_projected_hours" in result:
        console.print(
            f"projected Table I (180 runs, {result['run_setup_seconds']:.1f} s of setup each): "
            f"{result['table1_projected_hours']:.2f} h"
        )


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
            f"{result['host_speedup' if key == 'mpt' else 'sp_host_speedup']:.2f}x",
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
