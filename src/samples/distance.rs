//! The largest pairwise distance of a point set (NCSNv2's `sigma_max: auto`), exact and far
//! below the brute force's O(n² d).
//!
//! **Exactness.** The result is bit for bit the brute force's: the largest squared distance
//! summed coordinate by coordinate in f64 ([`squared_distance`]) over every pair, then its
//! square root. Everything faster only decides which pairs need not be summed, and it may
//! skip a pair only when a bound proves the pair cannot beat the best exact value found so
//! far, with a rounding slack that covers the bound's own floating-point error.
//!
//! **Method.** Points are centred on their mean. A few farthest-point sweeps (O(n d) each)
//! find a large exact distance first. Points too close to the mean to reach it (the triangle
//! inequality through the mean) are dropped, and the rest go into a ball tree (median splits
//! along the line between two far points). Pairs of nodes whose balls cannot hold a pair
//! farther apart than the best so far are skipped, largest bound first. Leaf pairs that
//! survive are summed exactly in low dimension; in high dimension (images) their squared
//! distances are estimated blockwise at matmul speed as ‖a‖² + ‖b‖² − 2a·b (nalgebra's gemm,
//! matrixmultiply on one thread, no thread pool), and only the pairs whose estimate plus the
//! cancellation bound γ(‖a‖ + ‖b‖)² could beat the best are summed exactly.

use nalgebra::{DMatrix, DMatrixView};

/// Squared Euclidean distance summed coordinate by coordinate: the brute force's formula,
/// which decides the result.
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Squared distance summed in four interleaved parts: several times faster, and as good
/// for bounds and searches (their rounding slack holds for any order of summation), but not
/// always equal to [`squared_distance`] in the last bit, so never a result.
fn squared_distance_fast(a: &[f64], b: &[f64]) -> f64 {
    let mut parts = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in a4.zip(b4) {
        for k in 0..4 {
            parts[k] += (x[k] - y[k]) * (x[k] - y[k]);
        }
    }
    (parts[0] + parts[1]) + (parts[2] + parts[3]) + tail
}

/// The largest distance by visiting every pair: O(n² d), the reference.
pub fn max_pairwise_distance_brute_force(data: &[f64], dim: usize) -> f64 {
    let n = data.len() / dim;
    let mut best = 0.0f64;
    for i in 0..n {
        let a = &data[i * dim..(i + 1) * dim];
        for j in i + 1..n {
            best = best.max(squared_distance(a, &data[j * dim..(j + 1) * dim]));
        }
    }
    best.sqrt()
}

/// Points per leaf of the ball tree, in low and high dimension (gemm blocks).
const LEAF_LOW_DIM: usize = 64;
const LEAF_HIGH_DIM: usize = 256;
/// Above this dimension leaf pairs go through gemm rather than direct sums.
const GEMM_MIN_DIM: usize = 16;
/// Below this many points the brute force is as fast.
const BRUTE_FORCE_MAX_POINTS: usize = 64;
/// Farthest-point sweeps for the first lower bound.
const SWEEPS: usize = 3;

/// The largest distance between any two of the `data.len() / dim` points stored row-major,
/// equal bit for bit to [`max_pairwise_distance_brute_force`] (see the module doc).
pub fn max_pairwise_distance(data: &[f64], dim: usize) -> f64 {
    assert!(dim > 0 && data.len().is_multiple_of(dim), "whole points");
    let n = data.len() / dim;
    if n <= BRUTE_FORCE_MAX_POINTS || !data.iter().all(|v| v.is_finite()) {
        return max_pairwise_distance_brute_force(data, dim);
    }
    let search = match Search::new(data, dim) {
        Some(search) => search,
        // Squared norms overflow: keep the brute force's arithmetic (and its infinity).
        None => return max_pairwise_distance_brute_force(data, dim),
    };
    search.run().sqrt()
}

/// The state of one search: the data, centred copies, their norms and the best so far.
struct Search<'a> {
    data: &'a [f64],
    dim: usize,
    /// Centred points, in ball-tree order once the tree is built.
    centred: Vec<f64>,
    /// Squared norms and norms of `centred`.
    sq_norms: Vec<f64>,
    norms: Vec<f64>,
    /// Original index of each centred point.
    index: Vec<usize>,
    /// Relative rounding slack of every bound (see [`Search::upper`]).
    kappa: f64,
    /// The largest exact squared distance found so far.
    best: f64,
}

/// A ball-tree node: points `start..end` of the ordered arrays.
struct Node {
    start: usize,
    end: usize,
    centre: Vec<f64>,
    radius: f64,
    /// The norm of `centre` and the largest norm of the points (they scale the slack).
    centre_norm: f64,
    max_norm: f64,
    children: Option<(usize, usize)>,
}

impl<'a> Search<'a> {
    fn new(data: &'a [f64], dim: usize) -> Option<Self> {
        let n = data.len() / dim;
        let mut mean = vec![0.0; dim];
        for row in data.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut centred = Vec::with_capacity(data.len());
        for row in data.chunks_exact(dim) {
            centred.extend(row.iter().zip(&mean).map(|(v, m)| v - m));
        }
        let sq_norms: Vec<f64> = centred
            .chunks_exact(dim)
            .map(|y| y.iter().map(|v| v * v).sum())
            .collect();
        let norms: Vec<f64> = sq_norms.iter().map(|r| r.sqrt()).collect();
        let largest = norms.iter().copied().fold(0.0, f64::max);
        if !(4.0 * largest * largest).is_finite() {
            return None;
        }
        // Every computed quantity below (norms, dot products, centres' distances) is a sum
        // of at most dim + 8 rounded terms, each off by at most u = 2^-53 times magnitudes
        // bounded by the norms involved; 32 (dim + 8) u covers all of them with room.
        let kappa = 32.0 * (dim as f64 + 8.0) * f64::EPSILON / 2.0;
        Some(Search {
            data,
            dim,
            centred,
            sq_norms,
            norms,
            index: (0..n).collect(),
            kappa,
            best: 0.0,
        })
    }

    /// An upper bound on the brute force's squared distance of any pair whose true distance
    /// is computed to be at most `distance`, from centred quantities whose norms add up to
    /// at most `scale`.
    fn upper(&self, distance: f64, scale: f64) -> f64 {
        let d = distance + self.kappa * scale;
        d * d * (1.0 + self.kappa)
    }

    fn point(&self, i: usize) -> &[f64] {
        &self.centred[i * self.dim..(i + 1) * self.dim]
    }

    fn original(&self, i: usize) -> &[f64] {
        let k = self.index[i];
        &self.data[k * self.dim..(k + 1) * self.dim]
    }

    /// Exact distance of points `i` and `j` (positions in the current order), kept if best.
    fn exact(&mut self, i: usize, j: usize) -> f64 {
        let d2 = squared_distance(self.original(i), self.original(j));
        self.best = self.best.max(d2);
        d2
    }

    fn run(mut self) -> f64 {
        let n = self.index.len();
        // Farthest-point sweeps from the point farthest from the mean.
        let mut from = (0..n)
            .max_by(|&a, &b| self.norms[a].total_cmp(&self.norms[b]))
            .unwrap_or(0);
        for _ in 0..SWEEPS {
            let a = self.point(from);
            let far = (0..n)
                .map(|j| (j, squared_distance_fast(a, self.point(j))))
                .fold((from, 0.0), |best, c| if c.1 > best.1 { c } else { best })
                .0;
            if far == from {
                break;
            }
            self.exact(from, far);
            from = far;
        }
        self.keep_reachable();
        if self.index.len() < 2 {
            return self.best;
        }
        let nodes = self.build_tree();
        self.visit(&nodes, 0, 0);
        self.best
    }

    /// Drops the points that cannot be in a pair beating the best: ‖a − b‖ ≤ ‖a‖ + ‖b‖,
    /// and ‖b‖ is at most the largest norm.
    fn keep_reachable(&mut self) {
        let largest = self.norms.iter().copied().fold(0.0, f64::max);
        let keep: Vec<usize> = (0..self.index.len())
            .filter(|&i| {
                let scale = self.norms[i] + largest;
                self.upper(scale, scale) > self.best
            })
            .collect();
        self.reorder(&keep);
    }

    /// Puts the points in the order `order` (positions in the current order): either an
    /// increasing subset (the others are dropped) or a permutation of all. In place, so the
    /// centred copy is the only one (it is as large as the data).
    fn reorder(&mut self, order: &[usize]) {
        let dim = self.dim;
        if order.windows(2).all(|w| w[0] < w[1]) {
            for (k, &i) in order.iter().enumerate() {
                self.centred.copy_within(i * dim..(i + 1) * dim, k * dim);
            }
            self.centred.truncate(order.len() * dim);
        } else {
            assert_eq!(
                order.len(),
                self.index.len(),
                "a permutation of every point"
            );
            // Follow each cycle of the permutation with one spare row.
            let mut done = vec![false; order.len()];
            let mut spare = vec![0.0; dim];
            for start in 0..order.len() {
                if done[start] {
                    continue;
                }
                spare.copy_from_slice(self.point(start));
                let mut k = start;
                loop {
                    done[k] = true;
                    let next = order[k];
                    if next == start {
                        self.centred[k * dim..(k + 1) * dim].copy_from_slice(&spare);
                        break;
                    }
                    self.centred
                        .copy_within(next * dim..(next + 1) * dim, k * dim);
                    k = next;
                }
            }
        }
        self.sq_norms = order.iter().map(|&i| self.sq_norms[i]).collect();
        self.norms = order.iter().map(|&i| self.norms[i]).collect();
        self.index = order.iter().map(|&i| self.index[i]).collect();
    }

    /// Builds the ball tree over the kept points (reordering them so every node is a range)
    /// and returns its nodes, the root first.
    fn build_tree(&mut self) -> Vec<Node> {
        let leaf = if self.dim > GEMM_MIN_DIM {
            LEAF_HIGH_DIM
        } else {
            LEAF_LOW_DIM
        };
        let mut order: Vec<usize> = (0..self.index.len()).collect();
        self.split(&mut order, leaf);
        self.reorder(&order);
        let mut nodes = Vec::new();
        self.node(&mut nodes, 0, self.index.len(), leaf);
        nodes
    }

    /// Orders `order` so each half of a median split along the line between two far points
    /// is contiguous, recursively down to `leaf` points.
    fn split(&self, order: &mut [usize], leaf: usize) {
        if order.len() <= leaf {
            return;
        }
        let farthest = |from: usize| {
            let a = self.point(from);
            order
                .iter()
                .copied()
                .map(|j| (j, squared_distance_fast(a, self.point(j))))
                .fold((from, 0.0), |best, c| if c.1 > best.1 { c } else { best })
                .0
        };
        let p = farthest(order[0]);
        let q = farthest(p);
        let direction: Vec<f64> = self
            .point(q)
            .iter()
            .zip(self.point(p))
            .map(|(a, b)| a - b)
            .collect();
        let key = |i: usize| -> f64 {
            self.point(i)
                .iter()
                .zip(&direction)
                .map(|(a, b)| a * b)
                .sum()
        };
        let mid = order.len() / 2;
        order.select_nth_unstable_by(mid, |&a, &b| key(a).total_cmp(&key(b)));
        let (low, high) = order.split_at_mut(mid);
        self.split(low, leaf);
        self.split(high, leaf);
    }

    /// Adds the node of points `start..end` (and its subtree, mirroring `split`), returning
    /// its position.
    fn node(&self, nodes: &mut Vec<Node>, start: usize, end: usize, leaf: usize) -> usize {
        let dim = self.dim;
        let count = end - start;
        let mut centre = vec![0.0; dim];
        for i in start..end {
            for (c, v) in centre.iter_mut().zip(self.point(i)) {
                *c += v;
            }
        }
        centre.iter_mut().for_each(|c| *c /= count as f64);
        let radius = (start..end)
            .map(|i| squared_distance_fast(self.point(i), &centre).sqrt())
            .fold(0.0, f64::max);
        let max_norm = self.norms[start..end].iter().copied().fold(0.0, f64::max);
        let position = nodes.len();
        nodes.push(Node {
            start,
            end,
            centre_norm: norm(&centre),
            centre,
            radius,
            max_norm,
            children: None,
        });
        if count > leaf {
            let mid = start + count / 2;
            let low = self.node(nodes, start, mid, leaf);
            let high = self.node(nodes, mid, end, leaf);
            nodes[position].children = Some((low, high));
        }
        position
    }

    /// An upper bound on the brute force's squared distance of any pair from nodes `a`, `b`.
    fn node_bound(&self, nodes: &[Node], a: usize, b: usize) -> f64 {
        let (na, nb) = (&nodes[a], &nodes[b]);
        let centres = squared_distance_fast(&na.centre, &nb.centre).sqrt();
        self.upper(
            centres + na.radius + nb.radius,
            na.max_norm + nb.max_norm + na.centre_norm + nb.centre_norm,
        )
    }

    /// Dual-tree search over node pairs `a <= b`, the pair with the larger bound first.
    fn visit(&mut self, nodes: &[Node], a: usize, b: usize) {
        if self.node_bound(nodes, a, b) <= self.best {
            return;
        }
        let pairs = match (nodes[a].children, nodes[b].children) {
            (None, None) => return self.leaf_pair(&nodes[a], &nodes[b], a == b),
            (Some((l, r)), _) if a == b => vec![(l, l), (l, r), (r, r)],
            (Some((l, r)), Some(_)) if nodes[a].radius >= nodes[b].radius => {
                vec![(l, b), (r, b)]
            }
            (Some((l, r)), None) => vec![(l, b), (r, b)],
            (_, Some((l, r))) => vec![(a, l), (a, r)],
        };
        let mut pairs: Vec<(f64, usize, usize)> = pairs
            .into_iter()
            .map(|(x, y)| (self.node_bound(nodes, x, y), x.min(y), x.max(y)))
            .collect();
        pairs.sort_by(|p, q| q.0.total_cmp(&p.0));
        for (_, x, y) in pairs {
            self.visit(nodes, x, y);
        }
    }

    /// Every pair between two leaves (within one leaf when `same`).
    fn leaf_pair(&mut self, a: &Node, b: &Node, same: bool) {
        if self.dim > GEMM_MIN_DIM {
            return self.leaf_pair_gemm(a, b, same);
        }
        for i in a.start..a.end {
            let first = if same { i + 1 } else { b.start };
            for j in first..b.end {
                self.exact(i, j);
            }
        }
    }

    /// Pairs between two leaves through one gemm: ‖a‖² + ‖b‖² − 2a·b estimates each squared
    /// distance; a pair is summed exactly only if the estimate plus its cancellation bound
    /// could beat the best.
    fn leaf_pair_gemm(&mut self, a: &Node, b: &Node, same: bool) {
        let dim = self.dim;
        let (rows, cols) = (a.end - a.start, b.end - b.start);
        // Row-major points are the columns of a column-major (dim, count) matrix.
        let left = DMatrixView::from_slice_with_strides(
            &self.centred[a.start * dim..a.end * dim],
            rows,
            dim,
            dim,
            1,
        );
        let right = DMatrixView::from_slice(&self.centred[b.start * dim..b.end * dim], dim, cols);
        let mut dots = DMatrix::<f64>::zeros(rows, cols);
        dots.gemm(1.0, &left, &right, 0.0);
        let mut candidates = Vec::new();
        for j in 0..cols {
            let bj = b.start + j;
            let last = if same { j } else { rows };
            for i in 0..last {
                let ai = a.start + i;
                let estimate = self.sq_norms[ai] + self.sq_norms[bj] - 2.0 * dots[(i, j)];
                let scale = self.norms[ai] + self.norms[bj];
                let upper = estimate + 2.0 * self.kappa * scale * scale;
                if upper > self.best {
                    candidates.push((upper, ai, bj));
                }
            }
        }
        // Largest bound first: once the best beats a bound, it beats all the rest.
        candidates.sort_unstable_by(|p, q| q.0.total_cmp(&p.0));
        for (upper, ai, bj) in candidates {
            if upper <= self.best {
                break;
            }
            self.exact(ai, bj);
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
