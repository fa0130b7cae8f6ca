#!/usr/bin/env python3
"""PyTorch twins of scorelab's `mlp` and `unet` networks and training step, for the benchmark.

    cargo run --release --bin bench -- --pytorch     # runs this between its own runs

or by hand, in the virtualenv that benches/torch-venv.sh makes:

    $(bash benches/torch-venv.sh) benches/reference.py mlp --hidden 128 --layers 3 --batch 128 --steps 2000
    $(bash benches/torch-venv.sh) benches/reference.py unet --channels 16 --channel-mult 1 2 \
        --attention 8 --groups 4 --size 16 --batch 32 --steps 200

Each is the same computation as scorelab's training step: the same layers in the same order
and initialisation family (PyTorch's defaults), the same parameter count (printed, and checked
by the bench), denoising score matching with the per-example weights lambda(sigma) / sigma^2,
Adam (PyTorch's, lr as given) and an EMA of the weights with scorelab's warm-up,
min(decay, (1 + step) / (10 + step)). The `mlp` trains with the score parameterisation on a
geometric schedule and the sigma_squared weighting (quickstart, noise_scales); the `unet` with
EDM's preconditioning, log-normal sigmas and weighting (images.yaml). The data are random
(the cost does not depend on them). One thread unless --threads says otherwise.

Prints one JSON line: steps, seconds, steps_per_second, peak_rss_mib (the process's peak
resident memory, torch included), parameters, threads, device.

`--evaluate N` times sampling instead: N score evaluations of the network (no gradient, the
EMA weights' cost) on a batch of `--batch` items at one noise level, as a sampler's step
makes them, after one untimed warm-up; the line then holds evaluations, seconds,
ms_per_evaluation and the rest. `--device cuda` runs on the GPU (what scripts/gpu-check.sh
compares the cuda build with), synchronising before each clock reading.

`classifier` and `inception` time feature extraction instead (benches/extractors.py holds the
networks): the features of `--images` random images of `--image-channels` x `--size` x
`--size` in [-1, 1], after an untimed warm-up on two, as scorelab extracts them (the
classifier 500 images a pass, its features and the argmax of its logits; Inception `--batch`
images a pass, pytorch-fid's resize to 299 x 299), each batch from float64 to float32 and the
features back to float64. The line then holds images, seconds, images_per_second and the
rest:

    $(bash benches/torch-venv.sh) benches/reference.py classifier --width 16 --features 128 \
        --classes 5 --size 16 --image-channels 1 --images 2000
    $(bash benches/torch-venv.sh) benches/reference.py inception --batch 50 --size 16 --images 50
"""

import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

from extractors import Classifier, FidInception

# Images per classifier pass: scorelab's (`CHUNK` in src/features/trained.rs).
CLASSIFIER_CHUNK = 500


class Mlp(nn.Module):
    """scorelab's `mlp`: log-sigma sinusoids added through their own Linear to every layer."""

    def __init__(self, dim, hidden, layers, embedding):
        super().__init__()
        self.input = nn.Linear(dim, hidden)
        self.conditions = nn.ModuleList(nn.Linear(embedding, hidden) for _ in range(layers))
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.output = nn.Linear(hidden, dim)
        frequencies = torch.arange(1, embedding // 2 + 1, dtype=torch.float32)[None]
        self.register_buffer("frequencies", frequencies)

    def forward(self, x, sigma):
        angles = sigma.log() * self.frequencies
        embedding = torch.cat([angles.sin(), angles.cos()], 1)
        h = F.silu(self.input(x) + self.conditions[0](embedding))
        for layer, condition in zip(self.hidden, self.conditions[1:]):
            h = F.silu(layer(h) + condition(embedding))
        return self.output(h)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv3x3, + Linear(embedding), GroupNorm, SiLU, conv3x3, + skip."""

    def __init__(self, cin, cout, embedding, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.embedding = nn.Linear(embedding, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embedding(embedding)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    """One head over the positions: GroupNorm, qkv 1x1 conv, softmax(q^T k / sqrt(c)), 1x1 conv."""

    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.output = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, c, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
        return x + self.output((v @ weights.transpose(1, 2)).reshape(n, c, h, w))


class Stage(nn.Module):
    def __init__(self, cin, cout, embedding, groups, attention):
        super().__init__()
        self.block = ResBlock(cin, cout, embedding, groups)
        self.attention = Attention(cout, groups) if attention else None

    def forward(self, x, embedding):
        h = self.block(x, embedding)
        return self.attention(h) if self.attention is not None else h


class Unet(nn.Module):
    """scorelab's `unet` (unconditional, no dropout, sinusoidal embedding)."""

    def __init__(self, image, channels, channel_mult, blocks, attention_at, groups):
        super().__init__()
        c, height, _ = image
        self.image = image
        half = channels // 2
        frequencies = torch.tensor([10000.0 ** (-i / half) for i in range(half)])[None]
        self.register_buffer("frequencies", frequencies.float())
        embedding = 4 * channels
        self.map1 = nn.Linear(channels, embedding)
        self.map2 = nn.Linear(embedding, embedding)
        self.input = nn.Conv2d(c, channels, 3, padding=1)
        width, skips = channels, [channels]
        self.down = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            stages = nn.ModuleList()
            for _ in range(blocks):
                attention = (height >> level) in attention_at
                stages.append(Stage(width, channels * mult, embedding, groups, attention))
                width = channels * mult
                skips.append(width)
            resample = None
            if level + 1 < len(channel_mult):
                resample = nn.Conv2d(width, width, 3, stride=2, padding=1)
                skips.append(width)
            self.down.append(nn.ModuleList([stages, resample or nn.Identity()]))
        self.middle = nn.ModuleList(
            [
                ResBlock(width, width, embedding, groups),
                Attention(width, groups),
                ResBlock(width, width, embedding, groups),
            ]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            stages = nn.ModuleList()
            for _ in range(blocks + 1):
                skip = skips.pop()
                attention = (height >> level) in attention_at
                stages.append(Stage(width + skip, channels * mult, embedding, groups, attention))
                width = channels * mult
            resample = nn.Conv2d(width, width, 3, padding=1) if level > 0 else nn.Identity()
            self.up.append(nn.ModuleList([stages, resample]))
        self.output_norm = nn.GroupNorm(groups, width)
        self.output = nn.Conv2d(width, c, 3, padding=1)

    def forward(self, x, sigma):
        n = x.shape[0]
        angles = (sigma.log() / 4.0) * self.frequencies
        embedding = torch.cat([angles.cos(), angles.sin()], 1)
        embedding = F.silu(self.map2(F.silu(self.map1(embedding))))
        h = self.input(x.reshape(n, *self.image))
        skips = [h]
        for stages, resample in self.down:
            for stage in stages:
                h = stage(h, embedding)
                skips.append(h)
            if not isinstance(resample, nn.Identity):
                h = resample(h)
                skips.append(h)
        block0, attention, block1 = self.middle
        h = block1(attention(block0(h, embedding)), embedding)
        for stages, resample in self.up:
            for stage in stages:
                h = stage(torch.cat([h, skips.pop()], 1), embedding)
            if not isinstance(resample, nn.Identity):
                h = resample(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.output(F.silu(self.output_norm(h)))
        return h.reshape(n, -1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("network", choices=["mlp", "unet", "classifier", "inception"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    # mlp
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--embedding", type=int, default=32)
    parser.add_argument("--levels", type=int, default=10)
    # unet
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--image-channels", type=int, default=1)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--channel-mult", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--attention", type=int, nargs="*", default=[8])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--sigma-data", type=float, default=0.5)
    # classifier, inception
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--evaluate", type=int, default=0,
                        help="time this many score evaluations instead of training")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.network in ("classifier", "inception"):
        return extract(args)
    if args.network == "mlp":
        net = Mlp(args.dim, args.hidden, args.layers, args.embedding)
        dim = args.dim
        data = torch.randn(args.train_size, dim) * 3.0
        # The geometric schedule's levels; score parameterisation, sigma_squared weighting
        # (lambda / sigma^2 = 1).
        levels = torch.logspace(math.log10(20.0), math.log10(0.05), args.levels)

        def draw_sigmas(n):
            return levels[torch.randint(args.levels, (n,))][:, None]

        def residual(x0, noisy, z, sigma):
            return net(noisy, sigma) / sigma * sigma + z

        def factors(sigma):
            return torch.ones(sigma.shape[0])

    else:
        image = (args.image_channels, args.size, args.size)
        net = Unet(image, args.channels, args.channel_mult, args.blocks, args.attention, args.groups)
        dim = math.prod(image)
        data = torch.rand(args.train_size, dim) * 2.0 - 1.0
        sd = args.sigma_data

        def draw_sigmas(n):
            return (-1.2 + 1.2 * torch.randn(n, 1)).exp()

        def residual(x0, noisy, z, sigma):
            # EDM's preconditioning, coefficients in float64 as scorelab computes them.
            s = sigma.double()
            total = s * s + sd * sd
            c_skip, c_out, c_in = (sd * sd / total).float(), (s * sd / total.sqrt()).float(), (1 / total.sqrt()).float()
            denoised = noisy * c_skip + net(noisy * c_in, sigma) * c_out
            return (denoised - x0) / sigma

        def factors(sigma):
            # lambda = sigma^4 (sigma^2 + sd^2) / (sigma sd)^2, divided by sigma^2.
            s = sigma[:, 0].double()
            return (s * s * (s * s + sd * sd) / (s * sd) ** 2).float()

    device = torch.device(args.device)
    net = net.to(device)
    data = data.to(device)
    if args.network == "mlp":
        levels = levels.to(device)
    parameters = sum(p.numel() for p in net.parameters())
    if args.evaluate > 0:
        return evaluate(args, net, dim, device, parameters)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    ema = [p.detach().clone() for p in net.parameters()]
    pending = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x0 = data[torch.randint(args.train_size, (args.batch,), device=device)]
        sigma = draw_sigmas(args.batch).to(device)
        z = torch.randn(args.batch, dim, device=device)
        noisy = x0 + z * sigma
        normalised = 0.5 * residual(x0, noisy, z, sigma).square().sum(1)
        loss = (normalised * factors(sigma)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pending.append(loss.detach())
        decay = min(args.ema_decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for average, p in zip(ema, net.parameters()):
                average.mul_(decay).add_(p, alpha=1.0 - decay)
        if step % args.log_every == 0 or step == args.steps:
            mean = torch.stack(pending).mean().item()
            if not math.isfinite(mean):
                raise SystemExit(f"the reference diverged at step {step}")
            pending.clear()
    synchronise(device)
    seconds = time.perf_counter() - start
    report(args, parameters, {
        "steps": args.steps,
        "seconds": seconds,
        "steps_per_second": args.steps / seconds,
    })


def synchronise(device):
    """Waits for the GPU's queued work, so that the clock reads what it cost."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def report(args, parameters, figures):
    """Prints the JSON line: the run's figures, peak memory, size, threads and device."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    line = dict(figures, peak_rss_mib=peak, parameters=parameters,
                threads=torch.get_num_threads(), device=args.device)
    if args.device.startswith("cuda"):
        line["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(line))


def evaluate(args, net, dim, device, parameters):
    """Times `args.evaluate` score evaluations on a batch at one noise level."""
    x = torch.randn(args.batch, dim, device=device)
    sigma = torch.full((args.batch, 1), 0.7, device=device)
    with torch.no_grad():
        net(x, sigma)
        synchronise(device)
        start = time.perf_counter()
        for _ in range(args.evaluate):
            net(x, sigma)
        synchronise(device)
    seconds = time.perf_counter() - start
    report(args, parameters, {
        "evaluations": args.evaluate,
        "batch": args.batch,
        "seconds": seconds,
        "ms_per_evaluation": 1000.0 * seconds / args.evaluate,
    })


def extract(args):
    """Times the features of `args.images` random images, as scorelab's extractors take them."""
    shape = (args.image_channels, args.size, args.size)
    if args.network == "classifier":
        net = Classifier(args.image_channels, args.width, args.features, args.classes)
        chunk = CLASSIFIER_CHUNK

        def features(x):
            f = net.features(x)
            net.logits(f).argmax(-1).tolist()
            return f

    else:
        net = FidInception()
        chunk = args.batch
        features = net
    net.eval()
    parameters = sum(p.numel() for p in net.parameters())
    rows = lambda n: torch.rand(n, *shape, dtype=torch.float64) * 2.0 - 1.0

    def run(images):
        out = []
        for start in range(0, images.shape[0], chunk):
            out.append(features(images[start:start + chunk].float()).double())
        return out

    with torch.no_grad():
        run(rows(2))
        images = rows(args.images)
        start = time.perf_counter()
        run(images)
    seconds = time.perf_counter() - start
    report(args, parameters, {
        "images": args.images,
        "seconds": seconds,
        "images_per_second": args.images / seconds,
    })


if __name__ == "__main__":
    main()
