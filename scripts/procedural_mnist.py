#!/usr/bin/env python3
"""Writes procedural digits in MNIST's IDX format, for trying the `mnist` dataset without
downloading MNIST: `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` in OUT.

Each item is one digit 0-9 drawn as strokes (polylines and arcs in a unit box) under a random
affine map (rotation within +-15 degrees, scale 0.75-1.0, shear within +-0.25, a shift of up
to 2 pixels), with a random stroke half-width of 1.0-1.8 pixels and a one-pixel anti-aliased
edge, white on black, 28 x 28 bytes like MNIST. It is not MNIST: it is far simpler (no
handwriting variety), so its likelihoods are not MNIST's.

    python3 scripts/procedural_mnist.py OUT [--count 12000] [--seed 0]
"""

import argparse
import math
import os
import struct

import numpy as np

SIZE = 28


def arc(cx, cy, rx, ry, start, end, n=12):
    """Points on an ellipse from angle `start` to `end` (degrees, y down)."""
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Strokes of each digit in a unit box, x to the right and y down.
GLYPHS = {
    0: [arc(0.5, 0.5, 0.3, 0.42, 0, 360, 24)],
    1: [[(0.35, 0.25), (0.55, 0.08), (0.55, 0.92)]],
    2: [arc(0.5, 0.3, 0.28, 0.22, 200, 380) + [(0.22, 0.92), (0.8, 0.92)]],
    3: [arc(0.5, 0.29, 0.26, 0.21, 200, 450), arc(0.5, 0.7, 0.3, 0.22, 270, 520)],
    4: [[(0.62, 0.92), (0.62, 0.08), (0.2, 0.65), (0.82, 0.65)]],
    5: [[(0.78, 0.08), (0.3, 0.08), (0.27, 0.45)] + arc(0.5, 0.66, 0.3, 0.26, 230, 500)],
    6: [arc(0.52, 0.45, 0.3, 0.4, 290, 180, 10) + arc(0.5, 0.68, 0.28, 0.24, 180, 540, 20)],
    7: [[(0.2, 0.08), (0.8, 0.08), (0.42, 0.92)]],
    8: [arc(0.5, 0.28, 0.23, 0.2, 0, 360, 20), arc(0.5, 0.7, 0.29, 0.22, 0, 360, 20)],
    9: [arc(0.5, 0.32, 0.27, 0.24, 0, 360, 20), [(0.77, 0.32), (0.7, 0.92)]],
}


def segments(label, rng):
    """The digit's stroke segments in pixels, under a random affine map: (n, 2, 2)."""
    angle = math.radians(rng.uniform(-15, 15))
    scale = rng.uniform(0.75, 1.0) * 20.0
    shear = rng.uniform(-0.25, 0.25)
    shift = rng.uniform(-2, 2, size=2)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = scale * rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    out = []
    for stroke in GLYPHS[label]:
        points = (np.array(stroke) - 0.5) @ matrix.T + SIZE / 2 + shift
        out.extend(zip(points[:-1], points[1:]))
    return np.array(out)


def render(segs, half_width):
    """Bytes of one image: 255 within `half_width` of a stroke, a one-pixel linear edge."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    p = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :]
    a, b = segs[None, :, 0, :], segs[None, :, 1, :]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    distance = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1).min(axis=1)
    intensity = np.clip(half_width + 0.5 - distance, 0.0, 1.0)
    return np.round(255.0 * intensity).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    labels = rng.integers(0, 10, size=args.count).astype(np.uint8)
    images = np.stack(
        [render(segments(int(k), rng), rng.uniform(1.0, 1.8)) for k in labels]
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, args.count, SIZE, SIZE))
        f.write(images.tobytes())
    with open(os.path.join(args.out, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, args.count))
        f.write(labels.tobytes())
    print(f"wrote {args.count} digits of {SIZE} x {SIZE} to {args.out}")


if __name__ == "__main__":
    main()
