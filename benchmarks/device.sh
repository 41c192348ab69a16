#!/usr/bin/env bash
# On the lent GPU machine, after benchmarks/stage.sh here (device run with carry .whl and
# .benchdata): the full-size benchmark, its output also in $OUT/bench.log when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -m pip install --quiet --no-index --no-deps --target /tmp/mpt-site .whl/*.whl
export PYTHONPATH=/tmp/mpt-site PYTHONUNBUFFERED=1
export MPT_DATA_DIR=$PWD/.benchdata MPT_CACHE=/tmp/mpt-cache HF_HUB_OFFLINE=1
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
"$python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
"$python" benchmarks/bench.py --full "$@" 2>&1 | tee "${OUT:-/tmp}/bench.log"
