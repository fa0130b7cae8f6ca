#!/usr/bin/env bash
# A CUDA 13.0 toolkit for building scorelab with `--features cuda`, from pinned PyPI wheels,
# on any Linux x86_64 machine with python3 + pip, with or without a GPU.
#
#   scripts/cuda-toolchain.sh                      install (once) and print the environment
#   scripts/cuda-toolchain.sh CMD ARGS...          install (once), then run CMD in that environment,
#                                                  e.g. scripts/cuda-toolchain.sh cargo build --release --features cuda
#   source scripts/cuda-toolchain.sh               install (once) and export it into this shell
#
# What it does, into $SCORELAB_CUDA_CACHE (default ~/.cache/scorelab-cuda):
#   - pip-installs the wheels below (--no-deps, --target) unless the same pins are already there;
#     the toolkit root is their `nvidia/cu13` folder (bin/nvcc, include, lib, nvvm);
#   - adds the unversioned lib*.so links the linker looks for (libcublas.so -> libcublas.so.13);
#   - compiles a link-time stub libcuda.so (soname libcuda.so.1) from the wheel's cuda.h: every
#     `cu*` function it declares, each returning CUDA_ERROR_NO_DEVICE. It exists only so that the
#     link step succeeds; it lives in lib/stubs (where a CUDA toolkit keeps its own stub and
#     cudarc's build script looks), never on the run-time library path, and a cuda binary loads
#     the driver's real libcuda.so.1 when it starts (without the NVIDIA driver it cannot start);
#   - sets CUDA_HOME, CUDA_PATH, CUDA_ROOT, PATH, CUDA_COMPUTE_CAP (default 90: H100/H200; set
#     it before calling for another GPU), CUDARC_CUDA_VERSION=13000, LIBRARY_PATH (the libs and
#     the stub, for any other linker) and LD_LIBRARY_PATH (the libs only, not the stub).
#
# The versions are pinned together on purpose: newer nvcc/nvvm wheels emit PTX that a CUDA 13.0
# driver rejects.

scorelab_cuda_main() {
    local cache="${SCORELAB_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-cuda}"
    local wheels=(
        nvidia-cuda-nvcc==13.0.88
        nvidia-nvvm==13.0.88
        nvidia-cuda-crt==13.0.88
        nvidia-cuda-runtime==13.0.96
        nvidia-cuda-cccl==13.0.85
        nvidia-cublas==13.1.0.3
        nvidia-curand==10.4.0.35
        nvidia-cuda-nvrtc==13.0.88
    )
    local python="${PYTHON:-python3}"
    local prefix="$cache/wheels"
    local root="$prefix/nvidia/cu13"
    local stamp="$prefix/.pins"
    local pins="${wheels[*]}"

    mkdir -p "$cache" || return 1
    if [[ ! -x "$root/bin/nvcc" || "$(cat "$stamp" 2>/dev/null)" != "$pins" ]]; then
        echo "cuda-toolchain: installing the CUDA 13.0 wheels into $prefix (about 1.2 GB)" >&2
        if ! "$python" -m pip --version >/dev/null 2>&1; then
            echo "cuda-toolchain: error: '$python -m pip' does not work. Fix: install python3 and pip (or set PYTHON)" >&2
            return 1
        fi
        rm -rf "$prefix.partial" || return 1
        if ! "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
            --target "$prefix.partial" "${wheels[@]}" >&2; then
            echo "cuda-toolchain: error: pip could not install ${wheels[*]}" >&2
            return 1
        fi
        if [[ ! -x "$prefix.partial/nvidia/cu13/bin/nvcc" ]]; then
            echo "cuda-toolchain: error: the wheels did not provide nvidia/cu13/bin/nvcc" >&2
            return 1
        fi
        echo "$pins" >"$prefix.partial/.pins" || return 1
        rm -rf "$prefix" && mv "$prefix.partial" "$prefix" || return 1
    fi

    # Unversioned links for the linker (-lcublas finds libcublas.so, not libcublas.so.13).
    local lib name
    for lib in "$root"/lib/lib*.so.*; do
        name="${lib##*/}"
        name="${name%%.so.*}.so"
        [[ -e "$root/lib/$name" ]] || ln -s "${lib##*/}" "$root/lib/$name" || return 1
    done

    # The link-time stub of the driver library, regenerated when cuda.h changes.
    local stub="$root/lib/stubs"
    local header="$root/include/cuda.h"
    local fingerprint
    fingerprint="$(cksum <"$header")" || return 1
    if [[ ! -f "$stub/libcuda.so" || "$(cat "$stub/.header" 2>/dev/null)" != "$fingerprint" ]]; then
        mkdir -p "$stub" || return 1
        if ! scorelab_cuda_stub_source "$header" >"$stub/stub.c"; then
            echo "cuda-toolchain: error: no cu* functions found in $header" >&2
            return 1
        fi
        if ! "${CC:-cc}" -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/stub.c"; then
            echo "cuda-toolchain: error: could not compile the libcuda.so stub. Fix: install a C compiler (gcc)" >&2
            return 1
        fi
        ln -sf libcuda.so "$stub/libcuda.so.1" || return 1
        echo "$fingerprint" >"$stub/.header" || return 1
    fi

    export CUDA_HOME="$root" CUDA_PATH="$root" CUDA_ROOT="$root"
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
    export CUDARC_CUDA_VERSION=13000
    case ":$PATH:" in *":$root/bin:"*) ;; *) export PATH="$root/bin:$PATH" ;; esac
    export LIBRARY_PATH="$root/lib:$stub${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export SCORELAB_CUDA_CACHE="$cache"
}

# C source of the stub: every function name of cuda.h, the versioned names its #defines map to
# (cuMemAlloc -> cuMemAlloc_v2, the real symbols) and the plain ones, each returning
# CUDA_ERROR_NO_DEVICE (100). Arguments are ignored: a C caller passing any arguments to a
# function that takes none is harmless on x86_64 and aarch64.
scorelab_cuda_stub_source() {
    local header="$1" names
    names="$(
        {
            # Declarations: `CUresult CUDAAPI cuName(`, some split over two lines.
            tr '\n' ' ' <"$header" | grep -oE 'CUDAAPI[[:space:]]+cu[A-Za-z0-9_]+[[:space:]]*\(' |
                sed -E 's/CUDAAPI[[:space:]]+//; s/[[:space:]]*\($//'
            # Renames: `#define cuName cuName_v2` (both sides are exported by the driver).
            grep -E '^[[:space:]]*#[[:space:]]*define[[:space:]]+cu[A-Za-z0-9_]+[[:space:]]+cu[A-Za-z0-9_]+[[:space:]]*$' "$header" |
                awk '{ print $(NF-1); print $NF }'
        } | sort -u
    )"
    [[ -n "$names" ]] || return 1
    echo "/* Generated by scripts/cuda-toolchain.sh from $header: a link-time stand-in for the"
    echo "   driver's libcuda.so.1. Every function returns CUDA_ERROR_NO_DEVICE. */"
    echo "#define CUDA_ERROR_NO_DEVICE 100"
    local name
    for name in $names; do
        echo "int $name(void) { return CUDA_ERROR_NO_DEVICE; }"
    done
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: export into the caller's shell.
    scorelab_cuda_main
else
    set -euo pipefail
    scorelab_cuda_main
    if [[ $# -gt 0 ]]; then
        exec "$@"
    fi
    for var in CUDA_HOME CUDA_PATH CUDA_ROOT CUDA_COMPUTE_CAP CUDARC_CUDA_VERSION PATH LIBRARY_PATH LD_LIBRARY_PATH; do
        printf 'export %s=%q\n' "$var" "${!var}"
    done
fi
