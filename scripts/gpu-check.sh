#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, runs a cuda-built runner and bench on
# `device: cuda` and on the CPU with the same config and seed, and prints
#   - the first training steps' loss on both (close, not bit-identical: the reductions differ),
#   - training steps/s and sampling throughput, GPU vs CPU, for the MLP and the U-Net,
#   - the peak GPU memory of the bench (nvidia-smi),
#   - PyTorch eager on the same device beside the U-Net's figures: training steps/s and ms per
#     score evaluation at the bench's batch sizes (benches/reference.py --device), with our
#     ratio (goal: at least 1.0x). It needs a python whose torch sees the device: the bench's
#     virtualenv (benches/torch-venv.sh), $SCORELAB_TORCH_PYTHON or python3; without one the
#     column is skipped and says why.
# Without a GPU (or with --cpu-only) it runs the CPU side only and says so: the sweep twice on
# the CPU (the two must agree exactly) and the CPU bench.
#
#   scripts/gpu-check.sh [--bin DIR] [--cpu-only] [--out DIR] [--train-steps N]
#                        [--bench-steps N] [--image-steps N] [--samples N] [--image-samples N]
#
# --bin DIR     the folder with `runner` and `bench`; default: the cuda build of
#               scripts/cuda-toolchain.sh (~/.cache/scorelab-cuda/target/release) on a GPU
#               machine, target/release (the default build) for --cpu-only. Build the cuda one
#               anywhere with `scripts/cuda-toolchain.sh cargo build --release --features cuda
#               --target-dir ~/.cache/scorelab-cuda/target` and copy it over.
# --out DIR     where the sweeps' results and the logs go (default: a new temporary folder).
#
# A cuda binary needs the driver's libcuda.so.1 and the CUDA 13 libraries (cuBLAS, cuRAND,
# NVRTC, the runtime). Where the binary does not find them, the script looks in the system
# (ldconfig), in every Python's site-packages/nvidia/cu13/lib (a PyTorch install from PyPI
# brings them: the active virtualenv, conda, python3 on PATH, ~/.venv* and /opt/*) and in
# the toolchain's wheels, and puts the folder on LD_LIBRARY_PATH.
#
# Exit status: 0 when everything ran and the losses agree (GPU: within 1e-3 relative over
# the first 5 steps; CPU-only: identical), 1 otherwise.

set -euo pipefail
cd "$(dirname "$0")/.."

cache="${SCORELAB_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-cuda}"
bin="" out="" cpu_only=0
train_steps=200 bench_steps=500 image_steps=20 samples=2000 image_samples=200
compare_steps=5 tolerance=1e-3

die() {
    echo "gpu-check: error: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="${2:?--bin needs a folder}"; shift 2 ;;
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --cpu-only) cpu_only=1; shift ;;
        --train-steps) train_steps="${2:?}"; shift 2 ;;
        --bench-steps) bench_steps="${2:?}"; shift 2 ;;
        --image-steps) image_steps="${2:?}"; shift 2 ;;
        --samples) samples="${2:?}"; shift 2 ;;
        --image-samples) image_samples="${2:?}"; shift 2 ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown argument \`$1\`. Fix: see \`$0 --help\`" ;;
    esac
done
for n in "$train_steps" "$bench_steps" "$image_steps" "$samples" "$image_samples"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "\`$n\` is not a positive whole number"
done
((train_steps >= compare_steps)) || die "--train-steps must be at least $compare_steps"

# --- Is there a GPU? ----------------------------------------------------------------------
gpu=""
if ((cpu_only)); then
    echo "gpu-check: --cpu-only: running the CPU side only"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU here (nvidia-smi not found): running the CPU side only"
    cpu_only=1
elif ! gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)" || [[ -z "$gpu" ]]; then
    echo "gpu-check: nvidia-smi finds no usable GPU (${gpu:-no output}): running the CPU side only"
    cpu_only=1 gpu=""
else
    echo "gpu-check: GPU 0: $gpu"
fi

if [[ -z "$bin" ]]; then
    if ((cpu_only)); then bin="target/release"; else bin="$cache/target/release"; fi
fi
for tool in runner bench; do
    [[ -x "$bin/$tool" ]] || die "no \`$tool\` in $bin. Fix: build it (cargo build --release$( ((cpu_only)) || echo ' --features cuda, see scripts/cuda-toolchain.sh')) or pass --bin DIR"
done
echo "gpu-check: binaries in $bin"

# --- CUDA libraries ------------------------------------------------------------------------
missing_libs() { ldd "$1" 2>/dev/null | awk '/not found/ { print $1 }'; }

find_cuda_libs() {
    local binary="$1" missing
    missing="$(missing_libs "$binary")"
    [[ -z "$missing" ]] && return 0
    echo "gpu-check: $binary misses: $(echo $missing)"
    local candidates=() py dir
    for py in "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" "${CONDA_PREFIX:+$CONDA_PREFIX/bin/python}" python3 python; do
        [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
        while IFS= read -r dir; do
            candidates+=("$dir/nvidia/cu13/lib")
        done < <("$py" -c 'import site, sys
for d in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(d)' 2>/dev/null)
    done
    for dir in "$HOME"/.venv*/lib/python3*/site-packages /opt/*/lib/python3*/site-packages \
        /opt/*/*/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages; do
        candidates+=("$dir/nvidia/cu13/lib")
    done
    candidates+=("$cache/wheels/nvidia/cu13/lib")
    for dir in "${candidates[@]}"; do
        if [[ -e "$dir/libcublas.so.13" ]]; then
            export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            echo "gpu-check: CUDA 13 libraries from $dir"
            break
        fi
    done
    missing="$(missing_libs "$binary")"
    if [[ -n "$missing" ]]; then
        echo "gpu-check: still missing: $(echo $missing)" >&2
        if grep -q libcuda.so.1 <<<"$missing"; then
            echo "gpu-check: libcuda.so.1 comes with the NVIDIA driver: install the driver (CUDA 13.0 or newer)" >&2
        fi
        echo "gpu-check: the CUDA 13 libraries: pip install nvidia-cublas nvidia-curand nvidia-cuda-nvrtc nvidia-cuda-runtime (cu13), or a CUDA 13 toolkit" >&2
        return 1
    fi
}
((cpu_only)) || find_cuda_libs "$bin/runner" || exit 1

# --- Output folder ---------------------------------------------------------------------------
if [[ -z "$out" ]]; then
    out="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
echo "gpu-check: results and logs in $out"

# --- The sweep on both devices ----------------------------------------------------------------
experiment="$out/gpu_check.yaml"
cat >"$experiment" <<EOF
# Written by scripts/gpu-check.sh: a short MLP sweep whose loss is logged at every step.
seed: 0
num_samples: 500
threads: 1
data: {kind: gmm, means: [[-5.0, -5.0], [5.0, 5.0]], stds: [1.0, 1.0], weights: [0.8, 0.2]}
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 128, layers: 3}
train: {steps: $train_steps, batch_size: 128, lr: 0.002, ema_decay: 0.0, train_size: 2000, log_every: 1}
sampler: {kind: euler, steps: 20}
eval: [fd, mmd]
EOF

# sweep NAME DEVICE: runs the sweep into $out/NAME; prints its wall time.
sweep() {
    local name="$1" device="$2" start=$SECONDS
    if ! "$bin/runner" sweep "$experiment" --device "$device" --results "$out/$name" >"$out/$name.log" 2>&1; then
        tail -20 "$out/$name.log" >&2
        die "the sweep on $device failed (log: $out/$name.log)"
    fi
    echo "gpu-check: sweep on $device: $train_steps training steps + sampling + metrics in $((SECONDS - start)) s"
}

# loss_column NAME: the loss column of the sweep's loss.csv, one value a line.
loss_column() {
    local file
    file="$(find "$out/$1" -path '*/models/*/loss.csv' | head -1)"
    [[ -n "$file" ]] || die "no loss.csv under $out/$1"
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "loss") c = i; next } c { print $c }' "$file"
}

if ((cpu_only)); then
    sweep cpu cpu
    sweep cpu-again cpu
    first=cpu second=cpu-again label="cpu, cpu again" want=identical
else
    sweep cuda cuda
    sweep cpu cpu
    first=cuda second=cpu label="cuda, cpu" want=close
fi
echo "gpu-check: training loss at the first $compare_steps steps ($label):"
verdict="$(paste -d' ' <(loss_column "$first" | head -"$compare_steps") <(loss_column "$second" | head -"$compare_steps") |
    awk -v tol="$tolerance" -v want="$want" '
        function abs(x) { return x < 0 ? -x : x }
        {
            a = $1 + 0; b = $2 + 0; d = abs(a - b); m = abs(a) > abs(b) ? abs(a) : abs(b)
            r = m > 0 ? d / m : 0
            if (r > worst) worst = r
            if ($1 != $2) same = 0
            printf "  step %d: %s  %s  (relative difference %.2e)\n", NR, $1, $2, r
            rows++
        }
        BEGIN { same = 1; worst = 0 }
        END {
            if (rows == 0) { print "FAIL no losses to compare"; exit }
            if (want == "identical") ok = same; else ok = (worst <= tol)
            printf "%s largest relative difference %.2e (%s)\n", ok ? "OK" : "FAIL", worst,
                want == "identical" ? "two CPU runs must agree exactly" : "GPU vs CPU: close within " tol ", not bit-identical"
        }')"
echo "$verdict" | sed '$d'
status=0
last="$(echo "$verdict" | tail -1)"
echo "gpu-check: $last"
[[ "$last" == OK* ]] || status=1
if ! ((cpu_only)) && [[ "$want" == close ]] && grep -q "difference 0.00e+00 (" <<<"$last"; then
    echo "gpu-check: note: the losses are bit-identical; check that the GPU run really used the GPU"
fi

# --- Throughput and peak GPU memory ----------------------------------------------------------
# Only the two workloads `figure` reads (which also keeps the CIFAR-sized U-Net, minutes on
# a CPU, out of the evaluation table).
bench_args=(--no-features --only mlp128,unet --steps "$bench_steps" --image-steps "$image_steps"
    --samples "$samples" --image-samples "$image_samples")

# bench DEVICE: runs the bench into $out/bench-DEVICE.log.
bench() {
    local device="$1"
    if ! "$bin/bench" "${bench_args[@]}" --device "$device" >"$out/bench-$device.log" 2>&1; then
        tail -20 "$out/bench-$device.log" >&2
        die "the bench on $device failed (log: $out/bench-$device.log)"
    fi
}

peak_mib=""
if ((cpu_only)); then
    bench cpu
    devices=(cpu)
else
    # GPU 0's memory in use (MiB), for when the bench's own line is not visible (a container
    # whose process ids nvidia-smi cannot map).
    gpu_used() { nvidia-smi --id=0 --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc 0-9; }
    before="$(gpu_used)"
    bench cuda &
    pid=$!
    peak=0 peak_gpu=0
    while kill -0 "$pid" 2>/dev/null; do
        used="$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
            awk -F', *' -v p="$pid" '$1 == p { print $2 }')"
        [[ "$used" =~ ^[0-9]+$ ]] && ((used > peak)) && peak=$used
        used="$(gpu_used)"
        [[ "$used" =~ ^[0-9]+$ ]] && ((used > peak_gpu)) && peak_gpu=$used
        sleep 0.2
    done
    wait "$pid" || exit 1
    if ((peak > 0)); then
        peak_mib="$peak MiB (the bench process)"
    elif [[ "$before" =~ ^[0-9]+$ ]] && ((peak_gpu > 0)); then
        peak_mib="$((peak_gpu - before)) MiB (GPU 0's use above the $before MiB in use before; nvidia-smi did not list the bench's process)"
    else
        peak_mib="unknown (nvidia-smi reported no memory use)"
    fi
    bench cpu
    devices=(cuda cpu)
fi

# figure DEVICE WHAT: one number from a bench log's tables (markdown: `| workload | ... |`).
# Training: the noise_scales mlp (128 x 3, batch 128) and the images unet, column "ours
# steps/s"; sampling: Euler on the mlp and Heun on the unet, columns "samples/s" and
# "ms per NFE".
figure() {
    local log="$out/bench-$1.log"
    cell() { awk -F'|' -v row="$1" -v col="$2" 'index($0, row) == 1 { gsub(/ /, "", $col); print $col; exit }' "$log"; }
    case "$2" in
        mlp-train) cell "| mlp 2-128x3-2, batch 128 |" 5 ;;
        unet-train) cell "| unet " 5 ;;
        mlp-sample) cell "| mlp 128x3 | euler |" 6 ;;
        unet-sample) cell "| unet | heun |" 6 ;;
        mlp-nfe) cell "| mlp 128x3 | euler |" 7 ;;
        unet-nfe) cell "| unet | heun |" 7 ;;
    esac
}

echo "gpu-check: throughput (bench: MLP $bench_steps steps, $samples points; U-Net $image_steps steps, $image_samples images)"
printf '  %-30s' ""
for device in "${devices[@]}"; do printf '%14s' "$device"; done
((cpu_only)) || printf '%14s' "cuda/cpu"
printf '\n'
for row in "mlp-train:MLP training (steps/s)" "mlp-sample:MLP sampling (points/s)" \
    "mlp-nfe:MLP ms per NFE" "unet-train:U-Net training (steps/s)" \
    "unet-sample:U-Net sampling (images/s)" "unet-nfe:U-Net ms per NFE"; do
    key="${row%%:*}"
    printf '  %-30s' "${row#*:}"
    values=()
    for device in "${devices[@]}"; do
        value="$(figure "$device" "$key")"
        [[ -n "$value" ]] || { echo; die "no $key figure in $out/bench-$device.log"; }
        values+=("$value")
        printf '%14s' "$value"
    done
    if ! ((cpu_only)); then
        if [[ "$key" == *-nfe ]]; then
            printf '%13sx' "$(awk -v g="${values[0]}" -v c="${values[1]}" 'BEGIN { printf "%.1f", c / g }')"
        else
            printf '%13sx' "$(awk -v g="${values[0]}" -v c="${values[1]}" 'BEGIN { printf "%.1f", g / c }')"
        fi
    fi
    printf '\n'
done
# --- PyTorch eager on the same device ---------------------------------------------------------
# torch_python DEVICE: a python whose torch runs on DEVICE, or nothing.
torch_python() {
    local venv="${SCORELAB_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-bench}"
    local probe="import torch, sys; d = torch.device(sys.argv[1]); torch.ones(2, device=d).sum().item()"
    for py in "${SCORELAB_TORCH_PYTHON:-}" "$venv/bin/python" python3; do
        [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
        if "$py" -c "$probe" "$1" >/dev/null 2>&1; then
            echo "$py"
            return
        fi
    done
}

# The bench's U-Net (benches/reference.py's twin of src/bin/bench/workloads.rs's `unet`).
unet_args=(unet --channels 16 --channel-mult 1 2 --attention 8 --groups 4 --size 16)
device="${devices[0]}"
py="$(torch_python "$device")"
if [[ -z "$py" ]]; then
    echo "gpu-check: no python with a torch that runs on $device: the PyTorch column was not run (set SCORELAB_TORCH_PYTHON)"
else
    # reference FIELD ARGS...: one figure of benches/reference.py's JSON line.
    reference() {
        local field="$1"
        shift
        "$py" benches/reference.py "${unet_args[@]}" --device "$device" "$@" 2>"$out/reference.err" |
            "$py" -c "import json, sys; print(round(json.loads(sys.stdin.read())['$field'], 3))" ||
            die "benches/reference.py failed on $device (log: $out/reference.err)"
    }
    torch_train="$(reference steps_per_second --batch 32 --steps "$image_steps" --log-every "$image_steps")"
    torch_nfe="$(reference ms_per_evaluation --batch "$image_samples" --evaluate 10)"
    ours_train="$(figure "$device" unet-train)" ours_nfe="$(figure "$device" unet-nfe)"
    echo "gpu-check: the U-Net against PyTorch eager on $device ($("$py" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null))"
    printf '  %-30s%14s%14s%14s\n' "" "ours" "pytorch" "ours/pytorch"
    printf '  %-30s%14s%14s%13sx\n' "U-Net training (steps/s)" "$ours_train" "$torch_train" \
        "$(awk -v a="$ours_train" -v b="$torch_train" 'BEGIN { printf "%.2f", a / b }')"
    printf '  %-30s%14s%14s%13sx\n' "U-Net ms per NFE ($image_samples)" "$ours_nfe" "$torch_nfe" \
        "$(awk -v a="$ours_nfe" -v b="$torch_nfe" 'BEGIN { printf "%.2f", b / a }')"
fi

if ((cpu_only)); then
    echo "gpu-check: no GPU: the cuda side, the GPU/CPU loss comparison and the peak GPU memory were not run"
else
    echo "gpu-check: peak GPU memory of the cuda bench (nvidia-smi, every 0.2 s): $peak_mib"
fi
exit "$status"
