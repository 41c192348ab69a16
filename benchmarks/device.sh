#!/usr/bin/env bash
# On the lent GPU machine, after benchmarks/stage.sh here (device run with carry .whl and
# .benchdata), in one call of a few minutes: the full-size benchmark (a whole 15-language test
# pass, the projected Table I), the host time per step, and benchmarks/gpu.py (how busy the GPU
# is during an MPT step, with its profiler trace; 1/2/4/8 runs sharing the GPU). Logs and the
# trace land in $OUT when it is set. Extra arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -m pip install --quiet --no-index --no-deps --target /tmp/mpt-site .whl/*.whl
export PYTHONPATH=/tmp/mpt-site PYTHONUNBUFFERED=1
export MPT_DATA_DIR=$PWD/.benchdata MPT_CACHE=/tmp/mpt-cache HF_HUB_OFFLINE=1
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
"$python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
out=${OUT:-/tmp}
"$python" benchmarks/bench.py --full "$@" 2>&1 | tee "$out/bench.log"
"$python" benchmarks/bench.py --host 2>&1 | tee "$out/host.log"
OUT=$out "$python" benchmarks/gpu.py 2>&1 | tee "$out/gpu.log"
