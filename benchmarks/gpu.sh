#!/usr/bin/env bash
# Every GPU number of issue 18 from one run on a CUDA machine, in under 10 minutes
# (docs/gpu.md): the GPU-marked tests, then benchmarks/gpu.py's timings and projections.
#   benchmarks/gpu.sh [OUT_DIR]      (default: $OUT, else ./gpu_bench)
# PYTHON picks the interpreter (default python3); packages the machine lacks can be put in
# ./.gpu_site (see docs/gpu.md), which is then put first on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIR=${1:-${OUT:-gpu_bench}}
TOTAL_S=${GPU_BENCH_TOTAL_S:-570}   # the whole script; the device allows 600
TESTS_S=${GPU_BENCH_TESTS_S:-200}   # at most this for pytest -m gpu
START=$(date +%s)
if [ -d .gpu_site ]; then export PYTHONPATH="$PWD/.gpu_site${PYTHONPATH:+:$PYTHONPATH}"; fi
export PYTHONUNBUFFERED=1
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "error: benchmarks/gpu.sh needs a CUDA device ($PY: torch.cuda.is_available() is not True)" >&2
    exit 2
fi
mkdir -p "$DIR"
"$PY" -c 'import torch; print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'
echo "== pytest -m gpu (at most ${TESTS_S} s)"
timeout -k 10 "$TESTS_S" "$PY" -m pytest -q -m gpu --continue-on-collection-errors \
    -p no:cacheprovider tests 2>&1 | tee "$DIR/pytest_gpu.log"
TESTS_RC=${PIPESTATUS[0]}
LEFT=$(( TOTAL_S - ($(date +%s) - START) - 20 ))
if [ "$LEFT" -lt 60 ]; then LEFT=60; fi
echo "== timings (budget ${LEFT} s)"
"$PY" -m benchmarks.gpu --out "$DIR" --budget-s "$LEFT" --tests-log "$DIR/pytest_gpu.log"
BENCH_RC=$?
echo "== pytest exit status $TESTS_RC, timings exit status $BENCH_RC, $(( $(date +%s) - START )) s in all"
[ "$TESTS_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ]
