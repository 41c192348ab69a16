#!/usr/bin/env bash
# Here, before the benchmark goes to a lent GPU machine (see RESULTS.md): that machine has
# PyTorch and transformers but not platformdirs, cannot download, and does not see ../shared.
# Stages the platformdirs wheel in .whl/, and in .benchdata/ the XNLI files bench.py reads and
# the benchmark's tokenizer, trained here once (both git-ignored; the device tool carries them).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${MPT_DATA_DIR:-../shared/data}
rm -rf .whl .benchdata
python3 -m pip download --quiet --no-deps --only-binary=:all: -d .whl platformdirs==4.14.8
for split in test dev; do
  mkdir -p ".benchdata/xnli/$split"
  cp "$data/xnli/$split"/*.jsonl ".benchdata/xnli/$split/"
done
mkdir -p .benchdata/kshot/train
cp "$data/kshot/train/en-8.jsonl" .benchdata/kshot/train/
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
MPT_DATA_DIR=$data "$python" -c "
from benchmarks.bench import STAGED_TOKENIZER, bench_tokenizer
from mpt_engine.data.local import LocalSource
bench_tokenizer(LocalSource('$data')).save_pretrained('.benchdata/' + STAGED_TOKENIZER)"
du -sh .whl .benchdata
