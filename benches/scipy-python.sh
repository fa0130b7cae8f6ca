#!/usr/bin/env bash
# Prints a python with NumPy and SciPy for benches/metrics_reference.py: $SCORELAB_METRICS_PYTHON,
# else python3 where it has both, else a virtual environment made on first use under
# ${XDG_CACHE_HOME:-~/.cache}/scorelab-bench-scipy (NumPy and SciPy from PyPI, ~100 MB).
# Progress goes to stderr, the python's path alone to stdout. Not part of the test suite.
set -euo pipefail
check='import numpy, scipy.linalg'
for python in "${SCORELAB_METRICS_PYTHON:-}" python3; do
    if [ -n "$python" ] && command -v "$python" >/dev/null && "$python" -c "$check" 2>/dev/null; then
        command -v "$python"
        exit 0
    fi
done
venv="${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-bench-scipy"
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; }; then
    echo "benches/scipy-python.sh: installing NumPy and SciPy into $venv (first run only)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy scipy >&2
    "$venv/bin/python" -c "$check" >&2
fi
echo "$venv/bin/python"
