#!/usr/bin/env bash
# `runner new-plugin` end to end (run by .ci/run after the tests): makes a crate of every
# plugin kind, builds the sampler crate exactly as written and runs its test, then adds the
# other kinds' plugin files, experiments and tests to that crate and builds and tests it again
# (one build for ten kinds instead of ten). The crates share scorelab's target/ folder, so
# they reuse its compiled dependencies; each build's time is printed.
#
# Usage: scripts/new-plugin-check.sh [WORK_DIR]   (default: a fresh temporary folder)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runner="$root/target/release/runner"
if [[ $# -ge 1 ]]; then
  work="$1"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
kinds=(sampler dataset schedule weighting network metric features guidance latent predictor corrector)
export CARGO_TARGET_DIR="$root/target"

for kind in "${kinds[@]}"; do
  "$runner" new-plugin "$kind" "my_$kind" "$work/my_$kind" > /dev/null
done

crate="$work/my_sampler"
start=$SECONDS
(cd "$crate" && cargo test --release)
echo "new-plugin: the generated sampler crate built and tested in $((SECONDS - start)) s"

# The other kinds, each a module of the same binary with its own experiment and test.
for kind in "${kinds[@]:1}"; do
  name="my_$kind"
  cp "$work/$name/src/$name.rs" "$crate/src/"
  cp "$work/$name/experiments/$name.yaml" "$crate/experiments/"
  sed "s/CARGO_BIN_EXE_$name/CARGO_BIN_EXE_my_sampler/" "$work/$name/tests/$name.rs" > "$crate/tests/$name.rs"
  sed -i "s/^mod my_sampler;/mod my_sampler;\nmod $name;/" "$crate/src/main.rs"
  # A dependency the kind's crate has and the sampler's lacks (candle-nn), under [dependencies].
  while read -r line; do
    grep -qxF "$line" "$crate/Cargo.toml" || sed -i "s/^\[dependencies\]$/[dependencies]\n$line/" "$crate/Cargo.toml"
  done < <(sed -n '/^\[dependencies\]/,/^$/p' "$work/$name/Cargo.toml" | grep ' = ')
done
start=$SECONDS
(cd "$crate" && cargo test --release)
echo "new-plugin: every kind's plugin built and tested in $((SECONDS - start)) s"
