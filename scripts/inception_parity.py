#!/usr/bin/env python3
"""Parity check of scorelab's `inception` feature extractor against pytorch-fid (not part of CI).

    python3 scripts/inception_parity.py            # from the repository root

What it does:
  1. Makes a virtual environment outside the repository (default /tmp/inception-parity-venv)
     and installs torch, torchvision, pytorch-fid, safetensors and numpy from PyPI, then runs
     itself in it. On Linux the default torch wheel needs its CUDA libraries even on a CPU
     (`pip install torch --no-deps` installs, but `import torch` then fails on libcublas), so
     the install is about 5 GB and a minute or two.
  2. Builds pytorch-fid's own `InceptionV3([3], resize_input=True, normalize_input=False)`
     (the pool3 block of `fid_inception_v3()`, with its FIDInceptionA/C/E_1/E_2 blocks)
     without downloading weights: pytorch-fid's `load_state_dict_from_url` is replaced by a
     function that seeds the network pytorch-fid has just built (He-normal convolutions,
     random BatchNorm affine parameters) and hands back its own state_dict. The BatchNorm
     running statistics are then set from one training-mode pass over random images and
     perturbed, so that every BatchNorm term matters and activations stay of order one.
  3. Exports that state_dict (pytorch-fid's names: `Conv2d_1a_3x3.conv.weight`, ...) to
     safetensors, and the pool3 features of fixed inputs: 4 seeded random RGB images 3x32x32
     and 2 grey images 1x28x28 in [-1, 1] (our data range; the grey ones repeated to RGB, as
     pytorch-fid's loader does with `convert('RGB')`). It also checks that pytorch-fid's
     default protocol, [0, 1] images with `normalize_input=True`, gives the same features.
  4. Runs our extractor on the same inputs with one compute thread:
         INCEPTION_PARITY_WEIGHTS=... INCEPTION_PARITY_DATA=... RAYON_NUM_THREADS=1 \\
         cargo test --release --test it inception_parity -- --ignored --nocapture
     which prints the max relative error, max |ours - torch| / max |torch| (target < 1e-4),
     beside torch's own float32 error against float64, and the extraction throughput.

Converting the real FID weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth) for
`features: {kind: inception, weights: PATH}` is two lines with torch and safetensors:

    import torch; from safetensors.torch import save_file
    save_file(torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu"), "data/pt_inception-2015-12-05.safetensors")

or `python3 scripts/inception_parity.py --convert PTH OUT`, which does the same in this venv.
"""

import argparse
import copy
import inspect
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["torch", "torchvision", "pytorch-fid", "safetensors", "numpy"]


def ensure_venv(venv):
    """Re-runs this script inside `venv`, creating it and installing PACKAGES first."""
    python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.path.exists(python):
        print(f"creating {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    probe = subprocess.run([python, "-c", "import torch, torchvision, pytorch_fid, safetensors, numpy"],
                           capture_output=True)
    if probe.returncode != 0:
        print(f"installing {' '.join(PACKAGES)} into {venv} (about 5 GB)", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def convert(pth, out):
    import torch
    from safetensors.torch import save_file

    save_file(torch.load(pth, map_location="cpu"), out)
    print(f"wrote {out}")


def reference_network(seed):
    """pytorch-fid's InceptionV3 pool3 wrapper around fid_inception_v3(), seeded instead of
    downloaded. Returns (wrapper, the FID Inception module whose state_dict names we use)."""
    import torch
    import torch.nn as nn
    import pytorch_fid.inception as fid

    built = {}

    def seeded_instead_of_download(url, progress=True):
        # Called by fid_inception_v3() right after it built the network as `inception`.
        caller = inspect.currentframe().f_back
        net = caller.f_locals.get("inception")
        assert isinstance(net, nn.Module), "pytorch-fid's fid_inception_v3 changed: no local `inception`"
        if "state" in built:
            return built["state"]
        torch.manual_seed(seed)
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.uniform_(module.weight, 0.5, 1.5)
                nn.init.uniform_(module.bias, -0.2, 0.2)
        built["net"] = net
        return net.state_dict()

    fid.load_state_dict_from_url = seeded_instead_of_download
    wrapper = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=False)
    net = built["net"]

    # Running statistics: those of one training-mode pass over random images, perturbed.
    batch_norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in batch_norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one pass sets the batch statistics
    wrapper.train()
    with torch.no_grad():
        wrapper(torch.rand(8, 3, 64, 64) * 2 - 1)
        for bn in batch_norms:
            bn.running_mean += 0.2 * bn.running_var.sqrt() * torch.randn_like(bn.running_mean)
            bn.running_var *= torch.exp(0.3 * torch.randn_like(bn.running_var))
    wrapper.eval()
    built["state"] = net.state_dict()
    return wrapper, net


def pool3(wrapper, images):
    import torch

    with torch.no_grad():
        return wrapper(images)[0].flatten(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default="/tmp/inception-parity-venv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="folder for the weights and data files (default: a temporary one)")
    parser.add_argument("--torch-only", action="store_true", help="write the files and stop before running ours")
    parser.add_argument("--convert", nargs=2, metavar=("PTH", "OUT"), help="convert pytorch-fid's .pth to safetensors and stop")
    args = parser.parse_args()
    ensure_venv(args.venv)
    if args.convert:
        return convert(*args.convert)

    import torch
    import pytorch_fid.inception as fid
    from safetensors.torch import save_file

    torch.set_num_threads(2)
    wrapper, net = reference_network(args.seed)
    parameters = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("fc."))
    print(f"FID Inception: {parameters} parameters without fc")

    generator = torch.Generator().manual_seed(args.seed + 1)
    rgb = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    grey = torch.rand(2, 1, 28, 28, generator=generator) * 2 - 1
    rgb_features = pool3(wrapper, rgb)
    grey_features = pool3(wrapper, grey.repeat(1, 3, 1, 1))

    # pytorch-fid's default protocol ([0, 1] images, normalize_input=True) is the same map.
    default = fid.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    gap = (pool3(default, (rgb + 1) / 2) - rgb_features).abs().max() / rgb_features.abs().max()
    print(f"normalize_input=True on (x + 1) / 2 vs [-1, 1] input: relative difference {gap:.2e}")
    # The float32 noise floor: torch in float32 against torch in float64.
    wrapper64 = copy.deepcopy(wrapper).double()
    rgb_features64 = pool3(wrapper64, rgb.double())
    floor = (rgb_features64 - rgb_features.double()).abs().max() / rgb_features64.abs().max()
    print(f"torch float32 vs float64: max |f32 - f64| / max |f64| = {floor:.3e}")
    print(f"reference features: max {rgb_features.max():.4f}, mean {rgb_features.mean():.4f}, "
          f"share > 0: {(rgb_features > 0).float().mean():.3f}")

    folder = args.keep or tempfile.mkdtemp(prefix="inception-parity-")
    os.makedirs(folder, exist_ok=True)
    weights = os.path.join(folder, "fid_inception_random.safetensors")
    data = os.path.join(folder, "parity_data.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    save_file({"rgb": rgb, "grey": grey, "rgb_features": rgb_features.contiguous(),
               "grey_features": grey_features.contiguous(), "rgb_features64": rgb_features64.contiguous()}, data)
    print(f"wrote {weights} and {data}", flush=True)
    if args.torch_only:
        return

    env = dict(os.environ, INCEPTION_PARITY_WEIGHTS=weights, INCEPTION_PARITY_DATA=data, RAYON_NUM_THREADS="1")
    command = ["cargo", "test", "--release", "--test", "it", "inception_parity", "--", "--ignored", "--nocapture"]
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=REPO, env=env)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
