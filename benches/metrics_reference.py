#!/usr/bin/env python3
"""NumPy/SciPy twins of scorelab's feature metrics, for the benchmark's metrics table.

    cargo run --release --bin bench -- --metrics --pytorch    # runs this beside ours

or by hand, on features the bench wrote (raw little-endian f64, row after row):

    python3 benches/metrics_reference.py fid x.f64 y.f64 --points 1000 --dim 2048

- fid: the formula as pytorch-fid's `calculate_frechet_distance` computes it: means,
  `np.cov` (unbiased) covariances, and `scipy.linalg.sqrtm` of the product C1 C2 (an offset
  of 1e-6 on the diagonals if that is not finite, the real part of a complex result).
- kid: clean-fid's `kernel_distance`: per random subset of m points of each set, the unbiased
  MMD² with the kernel (x.y / d + 1)^3, averaged over the subsets (our subsets are drawn from
  another generator, so values agree statistically, not digit for digit).
- pr: improved precision and recall with k-NN balls (Kynkäänniemi et al. 2019), distances
  from a block of queries to every point at a time (as the original code batches them).

Threads: whatever NumPy's BLAS is given (the bench sets OMP/OPENBLAS/MKL_NUM_THREADS).
Prints one JSON line: seconds (the metric alone, not reading the files), peak_rss_mib (the
process's peak resident memory, the features included), value, detail (recall for pr,
the standard deviation over subsets for kid, null for fid).
"""

import argparse
import json
import resource
import time

import numpy as np
from scipy import linalg


def frechet_distance(x, y):
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    sigma1, sigma2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(root).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        root = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(root):
        root = root.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root)), None


def kernel_distance(x, y, subsets, subset_size, seed=0):
    rng = np.random.default_rng(seed)
    d, m = x.shape[1], subset_size
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2.0 * kxy.sum() / (m * m))
    return float(np.mean(values)), float(np.std(values))


def distance_blocks(queries, points, block_entries=1 << 23):
    """Yields (first query, squared distances of a block of queries to every point)."""
    norms = (points * points).sum(axis=1)
    block = max(1, block_entries // len(points))
    for first in range(0, len(queries), block):
        q = queries[first:first + block]
        d = (q * q).sum(axis=1)[:, None] + norms[None, :] - 2.0 * (q @ points.T)
        yield first, np.maximum(d, 0.0)


def knn_radii(points, k):
    radii = []
    for first, d in distance_blocks(points, points):
        rows = np.arange(len(d))
        d[rows, first + rows] = np.inf  # the point itself
        radii.append(np.partition(d, k - 1, axis=1)[:, k - 1])
    return np.concatenate(radii)


def manifold_share(queries, points, radii):
    inside = 0
    for _, d in distance_blocks(queries, points):
        inside += int((d <= radii[None, :]).any(axis=1).sum())
    return inside / len(queries)


def precision_recall(x, y, k):
    return manifold_share(x, y, knn_radii(y, k)), manifold_share(y, x, knn_radii(x, k))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metric", choices=["fid", "kid", "pr"])
    parser.add_argument("x")
    parser.add_argument("y")
    parser.add_argument("--points", type=int, required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--subsets", type=int, default=100)
    parser.add_argument("--subset-size", type=int, default=1000)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    count = args.points * args.dim
    x = np.fromfile(args.x, dtype="<f8", count=count).reshape(args.points, args.dim)
    y = np.fromfile(args.y, dtype="<f8", count=count).reshape(args.points, args.dim)
    start = time.perf_counter()
    if args.metric == "fid":
        value, detail = frechet_distance(x, y)
    elif args.metric == "kid":
        value, detail = kernel_distance(x, y, args.subsets, args.subset_size)
    else:
        value, detail = precision_recall(x, y, args.k)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak, "value": value, "detail": detail}))


if __name__ == "__main__":
    main()
