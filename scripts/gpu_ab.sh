#!/usr/bin/env bash
# A/B of G1 workloads on a GPU: this checkout against an older one, alternately, in one
# device call (the device's host runs in fast and slow phases, so only pairs taken minutes
# apart compare). Prepare the older tree here, carry it, run there:
#   git archive <rev> tensorlib benchmarks setup.py | (mkdir -p .dbg/base && tar -x -C .dbg/base)
#   (device) OUT=$OUT BASE=.dbg/base ONLY=W3,W4 PAIRS=3 bash scripts/gpu_ab.sh     # carry .dbg
# Builds this checkout (as scripts/gpu_check.sh does, SKIP_BUILD=1 to skip) and the base's
# _core (its other extensions are copied from this build: their sources must be the same),
# then runs benchmarks/gpu.py --only $ONLY from each tree, PAIRS times, and CUPTI kernel
# counts of W4 for both. Writes $OUT/ab.log.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${PYTHON:-python3}"
OUT="${OUT:-gpu_out}"; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
BASE="${BASE:?BASE: a directory with the older tensorlib/, benchmarks/ and setup.py}"
ONLY="${ONLY:-W4}"; PAIRS="${PAIRS:-3}"
AB=$OUT/ab.log; : > "$AB"
if [ -z "${SKIP_BUILD:-}" ]; then
    B=/tmp/tl_ab_build; rm -rf $B && mkdir -p $B && cp -r setup.py tensorlib $B/
    (cd $B && timeout 150 $PY setup.py build_ext --inplace -q -j 16 && cp tensorlib/*.so "$ROOT/tensorlib/") >> "$AB" 2>&1
    echo "[build] rc=$?" | tee -a "$AB"
fi
T=/tmp/tl_ab_base; rm -rf $T && cp -r "$BASE" $T && cp tensorlib/_ops*.so tensorlib/_scan_kernels*.so $T/tensorlib/
(cd $T && timeout 90 $PY - >> "$AB" 2>&1 <<'PY'
import sys
code = open("setup.py").read().replace(
    "setup(ext_modules=cythonize(extensions",
    "extensions = [e for e in extensions if e.name == 'tensorlib._core']\n"
    "setup(ext_modules=cythonize(extensions")
sys.argv = ["setup.py", "build_ext", "--inplace", "-q"]
exec(compile(code, "setup.py", "exec"))
PY
)
echo "[base _core build] rc=$?" | tee -a "$AB"
for i in $(seq "$PAIRS"); do
    for which in new base; do
        if [ $which = new ]; then D=$ROOT; else D=$T; fi
        (cd $D && PYTHONPATH=$D timeout 120 $PY benchmarks/gpu.py --only "$ONLY" --rounds 3 \
            --steps 10 --require-gpu 2>&1 | grep -E "^  W[0-9]|Error" | sed "s/^/$which $i: /") \
            | tee -a "$AB"
    done
done
for which in new base; do
    if [ $which = new ]; then D=$ROOT; else D=$T; fi
    (cd $D && ROOT=$ROOT PYTHONPATH=$D timeout 60 $PY - 2>&1 <<'PY' | grep -E "kernels|Error|W4k" | head -12 | sed "s/^/$which /") | tee -a "$AB"
import os
import sys
sys.path[:0] = [os.path.join(os.environ["ROOT"], "scripts"), "benchmarks"]
import cupy
import gpu_profile as P
from workloads_nn import tl_lstm
P.SYNC[0] = cupy.cuda.Device().synchronize
step = tl_lstm(device="cuda")
for _ in range(3):
    step()
P.kernel_summary("W4", step, steps=3, top=8)
PY
done
echo "=== ab done in ${SECONDS}s ===" | tee -a "$AB"
