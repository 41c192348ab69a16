#!/usr/bin/env bash
# On the lent GPU machine, after benchmarks/stage.sh here (device run with carry .whl and
# .benchdata), in one call of at most about 8 minutes. Stages, most important first, each with
# its own time limit, so a slow or failing stage cannot lose the figures of the others:
#   bench    the full-size benchmark: a whole 15-language test pass, MPT steps, the projected
#            Table I, then the reference (benchmarks/bench.py --full)
#   busy     how busy the GPU is during MPT steps, with a 3-step trace (benchmarks/gpu.py)
#   sweep-N  N processes training at once on the one GPU, for N = 1, 2, 4, 8
#   compile  the step under torch.compile (CUDA graphs)
# Every figure is printed as one JSON line the moment it is measured and appended to
# $OUT/figures.jsonl; all output also goes to $OUT/device.log (with the gzipped trace, three
# files: a lent machine brings back at most eight). Extra arguments go to bench.py.
# STAGES picks some of them (default: all); STAGE_SCALE multiplies every limit and GPU_ARGS goes
# to gpu.py (a CPU rehearsal: a small shape, few steps, longer limits).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-/tmp/mpt-device}
mkdir -p "$out"
export OUT=$out PYTHONUNBUFFERED=1
"$python" -m pip install --quiet --no-index --no-deps --target /tmp/mpt-site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/mpt-site MPT_DATA_DIR=$PWD/.benchdata MPT_CACHE=/tmp/mpt-cache
export HF_HUB_OFFLINE=1
scale=${STAGE_SCALE:-1}
read -r -a gpu_args <<<"${GPU_ARGS:-}"

stages=" ${STAGES:-bench busy sweep compile} "
stage() { # stage NAME SECONDS COMMAND...: its output to the screen and $OUT/device.log
  local name=$1 limit=$(($2 * scale)) started=$SECONDS
  shift 2
  [[ $stages == *" ${name%%-*} "* ]] || return 0
  echo "== $name (at most ${limit} s)" | tee -a "$out/device.log"
  timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$out/device.log"
  local code=${PIPESTATUS[0]} late=""
  [ "$code" = 124 ] && late=", out of time"
  echo "== $name: exit $code after $((SECONDS - started)) s$late" | tee -a "$out/device.log"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  "$python" -c "import sys, torch, transformers, tokenizers
print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers',
      transformers.__version__, 'tokenizers', tokenizers.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee -a "$out/device.log"

stage bench 170 "$python" benchmarks/bench.py --full "$@"
stage busy 70 "$python" benchmarks/gpu.py busy "${gpu_args[@]}"
for workers in 1 2 4 8; do
  stage "sweep-$workers" $((35 + 5 * workers)) "$python" benchmarks/gpu.py sweep --workers "$workers" "${gpu_args[@]}"
done
stage compile 90 "$python" benchmarks/gpu.py compile "${gpu_args[@]}"
echo "== figures"
cat "$out/figures.jsonl" 2>/dev/null
