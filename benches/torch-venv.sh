#!/usr/bin/env bash
# Prints the python of the PyTorch reference's virtual environment, creating it on first use:
# ${XDG_CACHE_HOME:-~/.cache}/scorelab-bench (or $SCORELAB_BENCH_VENV), with torch from PyPI.
# On Linux PyPI's torch wheel brings its CUDA libraries (about 5 GB in all, a few minutes);
# the reference runs on the CPU, but `import torch` needs them (with --no-deps it fails).
# Progress goes to stderr, the python's path alone to stdout. Not part of the test suite.
set -euo pipefail
venv="${SCORELAB_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-bench}"
python="$venv/bin/python"
check='import torch; torch.set_num_threads(1); torch.ones(2, requires_grad=True).sum().backward()'
if ! { [ -x "$python" ] && "$python" -c "$check" 2>/dev/null; }; then
    echo "benches/torch-venv.sh: installing PyTorch into $venv (first run only, ~5 GB)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check torch >&2
    "$python" -c "$check" >&2
fi
echo "$python"
