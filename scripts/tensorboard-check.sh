#!/usr/bin/env bash
# Checks a sweep's TensorBoard logs with TensorBoard's own reader, as CI does: runs the small
# seeded sweep of scripts/browser-check/experiment.yaml with the release runner, installs
# TensorBoard (pinned) into a virtualenv under the user's cache folder, and runs
# scripts/tensorboard_check.py on the sweep: one HParams experiment summary, one session per
# trial with its swept values and status, the metric scalars it names.
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
"$venv/bin/python" scripts/tensorboard_check.py "$out/results/report_check"
