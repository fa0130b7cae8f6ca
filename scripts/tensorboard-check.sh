#!/usr/bin/env bash
# Checks a sweep's TensorBoard logs with TensorBoard's own reader, as CI does: runs the small
# seeded sweep of scripts/browser-check/experiment.yaml with the release runner, installs
# TensorBoard (pinned) into a virtualenv under the user's cache folder, and runs
# scripts/tensorboard_check.py on the sweep folder after three invocations into it (the
# file's sweep; the same at another learning rate, which HParams must not merge with the
# first; one trial whose sampler diverges): one HParams experiment summary, one session per
# trial with the table's values, one group per configuration, FAILURE with its cause for the
# failed trial, the metric scalars it names.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-tensorboard"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check tensorboard==2.21.0
fi
out=target/tensorboard-check
rm -rf "$out"
mkdir -p "$out"
"${RUNNER:-target/release/runner}" sweep scripts/browser-check/experiment.yaml \
    --results "$out/results" >"$out/sweep.log"
"${RUNNER:-target/release/runner}" sweep scripts/browser-check/experiment.yaml train.lr=0.002 \
    --results "$out/results" >>"$out/sweep.log"
# A sampler step far too large: its trial fails (exit 2, a failed trial), the others stand.
status=0
"${RUNNER:-target/release/runner}" sweep scripts/browser-check/experiment.yaml --no-sweep \
    seeds=1 sampler.eps=1.0 sampler.steps_per_level=100 \
    --results "$out/results" >>"$out/sweep.log" || status=$?
if [ "$status" != 2 ]; then
    echo "tensorboard check: the diverging invocation exited $status, expected 2 (a failed trial)" >&2
    exit 1
fi
"$venv/bin/python" scripts/tensorboard_check.py "$out/results/report_check"
