#!/usr/bin/env bash
# The GPU check for issue 7: run from the repo root on a machine with a CUDA GPU.
#   OUT=/some/dir bash scripts/gpu_check.sh
# Builds the Cython extension, runs the CUDA tests (kernels, device plumbing, every
# registry case on cuda vs cpu), benchmark G1 and the demo on cuda if there is one.
# Installs nothing. Worst case about 5.5 minutes (every step has its own timeout).
# SKIP_BUILD=1 skips the build (a dry run on a machine where it is built already).
# Writes at most 8 files under $OUT: summary.txt, build.log, tests_cuda.log,
# tests_cases.log, junit_cases.xml, bench.log, bench.json, demo.log.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME TIMEOUT LOG CMD...: run, record rc and seconds
    local name=$1 limit=$2 log=$3; shift 3
    local t0=$SECONDS
    timeout "$limit" "$@" > "$log" 2>&1
    local rc=$?
    local note=""
    [ "$rc" -eq 124 ] && note=" (TIMED OUT after ${limit}s)"
    say "[$name] rc=$rc in $((SECONDS - t0))s$note  -> $(basename "$log")"
    return $rc
}

say "=== tensorlib GPU check ($(date -u +%FT%TZ)) ==="
say "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2)"
say "$($PY -c 'import sys, numpy, cupy; print("python", sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__, "cuda runtime", cupy.cuda.runtime.runtimeGetVersion(), "gpu", cupy.is_available())' 2>&1 | tail -1)"
say "$($PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"

if [ -z "${SKIP_BUILD:-}" ]; then
    step build 80 "$OUT/build.log" $PY setup.py build_ext --inplace -q
fi
step import 15 "$OUT/tests_cuda.log" $PY -c 'import tensorlib as tl; print("tl.cuda.is_available():", tl.cuda.is_available(), "devices:", tl.cuda.device_count())'
tail -1 "$OUT/tests_cuda.log" | tee -a "$SUMMARY"

# kernels, plumbing, compile checks, registry audit (fast); the log keeps one line per test
{ timeout 45 $PY -m pytest -p no:cacheprovider -v -rs -o console_output_style=classic \
    tests/test_cuda_kernels_compile.py tests/test_cuda.py -k "not test_case_on_cuda" \
    >> "$OUT/tests_cuda.log" 2>&1; echo "rc=$?" >> "$OUT/tests_cuda.log"; }
say "[tests_cuda] $(grep -E ' in [0-9.]+s' "$OUT/tests_cuda.log" | tail -1) $(tail -1 "$OUT/tests_cuda.log")"

# every registry case on cuda against cpu (outputs and gradients, float32 and float64)
step cases 95 "$OUT/tests_cases.log" $PY -m pytest -p no:cacheprovider -q -rf \
    --junitxml="$OUT/junit_cases.xml" tests/test_cuda.py -k test_case_on_cuda
say "[cases] $(grep -E ' in [0-9.]+s' "$OUT/tests_cases.log" | tail -1)"

step bench 75 "$OUT/bench.log" $PY benchmarks/gpu.py --rounds 5 --steps 10 --json "$OUT/bench.json" --require-gpu
grep -E '^  (W|BW)' "$OUT/bench.log" | tee -a "$SUMMARY"

if [ -f tensorlib/demo.py ]; then
    step demo 20 "$OUT/demo.log" $PY -m tensorlib.demo --device cuda
    tail -3 "$OUT/demo.log" | tee -a "$SUMMARY"
else
    say "[demo] tensorlib/demo.py does not exist: skipped"
fi

say "--- failures (first 40 lines) ---"
grep -hE '^(FAILED|ERROR)|^E  ' "$OUT/tests_cuda.log" "$OUT/tests_cases.log" 2>/dev/null | head -40 | tee -a "$SUMMARY"
say "=== done in ${SECONDS}s; files in $OUT: $(ls "$OUT" | tr '\n' ' ') ==="
