//! `kid`: kernel distance (KID, Bińkowski et al. 2018) in the trial's feature space: the
//! unbiased MMD² with the polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random
//! subsets. Per subset of m samples X and m reference features Y (torch-fidelity's
//! `mmd2(..., mmd_est="unbiased")`):
//!
//!   MMD² = [Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)] / (m (m - 1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
//!
//! The value is the mean over subsets; detail `std` is the standard deviation over subsets
//! (population, as torch-fidelity and clean-fid report it: the spread of one subset's
//! estimate, not the standard error of the mean, which is `std / sqrt(subsets)`). Near 0,
//! possibly slightly negative, when both sets come from one distribution. Detail `subset_size`
//! records the subset size used (the engine records the set sizes with every metric).

use nalgebra::DMatrix;
use rayon::prelude::*;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::gram::{gather, gram_into, gram_lower_into, parallelism, planned_threads};
use scorelab::metric::{feature_set, require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::{Rng, Stream};

params! {
    /// Parameters of `kid`.
    pub struct KidParams {
        /// Number of random subsets the MMD² is averaged over.
        subsets: usize = 100 => 1..=scorelab::config::limits::MAX_REPEATS,
        /// Items per subset, from each set (capped at half the smaller set, so that subsets
        /// differ and `kid_std` measures something: with 1000 samples, 500).
        subset_size: usize = 1000 => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

/// The kernel of an inner product `dot` in `d` dimensions.
fn cubic(dot: f64, d: f64) -> f64 {
    let base = dot / d + 1.0;
    base * base * base
}

/// The polynomial kernel (aᵀb / d + 1)³ between every row of `a` and every row of `b`, in one
/// nalgebra product: the reference the faster paths are checked against.
pub fn polynomial_kernel(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let d = a.ncols() as f64;
    let mut gram = a * b.transpose();
    gram.apply(|v| *v = cubic(*v, d));
    gram
}

/// [`polynomial_kernel`] of two point sets through faer's multiply on the rayon threads.
fn kernel_matrix(a: &Samples, b: &Samples) -> DMatrix<f64> {
    let d = a.dim();
    let mut gram = vec![0.0; a.len() * b.len()];
    gram_into(&mut gram, a.as_slice(), b.as_slice(), d, parallelism());
    gram.par_iter_mut().for_each(|v| *v = cubic(*v, d as f64));
    DMatrix::from_vec(a.len(), b.len(), gram)
}

/// Points per block of [`kernel_sum`]: a block pair's kernel is 1024² values (8 MB).
const KERNEL_BLOCK: usize = 1024;

/// Σ k(a_i, b_j) over the points `ia` of `a` and `ib` of `b`, or, with `within` (the same set
/// and indices), 2 Σ_{i<j} k(a_i, a_j), the diagonal blocks' products only below their
/// diagonal (half the work): a block pair at a time (bounded memory), row blocks on
/// the rayon threads, their partial sums added in order (the same number on any threads).
fn kernel_sum(a: &Samples, ia: &[usize], b: &Samples, ib: &[usize], within: bool) -> f64 {
    let d = a.dim();
    let (rows, columns): (Vec<&[usize]>, Vec<&[usize]>) = (
        ia.chunks(KERNEL_BLOCK).collect(),
        ib.chunks(KERNEL_BLOCK).collect(),
    );
    let partial: Vec<f64> = (0..rows.len())
        .into_par_iter()
        .map(|r| {
            let left = gather(a, rows[r]);
            let mut gram = Vec::new();
            let mut sum = 0.0;
            for (c, chosen) in columns.iter().enumerate().skip(if within { r } else { 0 }) {
                gram.resize(rows[r].len() * chosen.len(), 0.0);
                let diagonal = within && c == r;
                if diagonal {
                    gram_lower_into(&mut gram, &left, d, faer::Par::Seq);
                } else {
                    gram_into(&mut gram, &left, &gather(b, chosen), d, faer::Par::Seq);
                }
                for (j, column) in gram.chunks(rows[r].len()).enumerate() {
                    // On the diagonal block of a set with itself, the pairs i > j only.
                    let column = if diagonal { &column[j + 1..] } else { column };
                    sum += column.iter().map(|&v| cubic(v, d as f64)).sum::<f64>();
                }
            }
            if within {
                2.0 * sum
            } else {
                sum
            }
        })
        .collect();
    partial.iter().sum()
}

/// Unbiased MMD² of the subset `ix` of `x` and `iy` of `y` (of equal size m ≥ 2) through
/// [`kernel_sum`], without any m × m matrix.
fn blockwise_mmd(x: &Samples, y: &Samples, ix: &[usize], iy: &[usize]) -> f64 {
    let m = ix.len() as f64;
    let within = kernel_sum(x, ix, x, ix, true) + kernel_sum(y, iy, y, iy, true);
    within / (m * (m - 1.0)) - 2.0 * kernel_sum(x, ix, y, iy, false) / (m * m)
}

/// Unbiased MMD² from kernel blocks, over the subset `ix` of the first set and `iy` of the
/// second (of equal size m ≥ 2).
fn subset_mmd(
    kxx: &DMatrix<f64>,
    kyy: &DMatrix<f64>,
    kxy: &DMatrix<f64>,
    ix: &[usize],
    iy: &[usize],
) -> f64 {
    let m = ix.len() as f64;
    let off_diagonal = |k: &DMatrix<f64>, index: &[usize]| -> f64 {
        let mut sum = 0.0;
        for (a, &i) in index.iter().enumerate() {
            for &j in &index[a + 1..] {
                sum += k[(i, j)];
            }
        }
        2.0 * sum
    };
    let mut cross = 0.0;
    for &j in iy {
        let column = kxy.column(j);
        for &i in ix {
            cross += column[i];
        }
    }
    (off_diagonal(kxx, ix) + off_diagonal(kyy, iy)) / (m * (m - 1.0)) - 2.0 * cross / (m * m)
}

/// Unbiased polynomial-kernel MMD² of two whole sets of equal size.
pub fn polynomial_mmd(x: &Samples, y: &Samples) -> f64 {
    assert_eq!(x.len(), y.len(), "polynomial_mmd takes sets of equal size");
    let (mx, my) = (matrix(x), matrix(y));
    let index: Vec<usize> = (0..x.len()).collect();
    subset_mmd(
        &polynomial_kernel(&mx, &mx),
        &polynomial_kernel(&my, &my),
        &polynomial_kernel(&mx, &my),
        &index,
        &index,
    )
}

/// KID over subsets: the mean of the per-subset MMD² and their standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelDistance {
    pub mean: f64,
    pub std: f64,
    /// The subset size used (the requested one, capped at the smaller set's size).
    pub subset_size: usize,
}

fn matrix(points: &Samples) -> DMatrix<f64> {
    DMatrix::from_row_slice(points.len(), points.dim(), points.as_slice())
}

/// `m` distinct indices below `n`, uniformly (a partial Fisher–Yates shuffle).
fn choose(n: usize, m: usize, rng: &mut Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..m {
        let j = i + rng.below(n - i);
        all.swap(i, j);
    }
    all.truncate(m);
    all
}

/// Kernel entries held at once before the per-subset path is taken instead (256 MB of f64):
/// 2000 samples against 2000 reference features need 12M.
pub const FULL_KERNEL_LIMIT: usize = 32 << 20;

/// Subsets drawn at once and then scored on the rayon threads (the draws stay in order).
const SUBSET_BATCH: usize = 64;

/// KID of `x` against `y`: `subsets` random subsets of `subset_size` (capped at the smaller
/// set's size, at least 2) of each set, drawn without replacement from the seeded metrics
/// stream.
pub fn kernel_distance(
    x: &Samples,
    y: &Samples,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> KernelDistance {
    kernel_distance_within(x, y, subsets, subset_size, seed, FULL_KERNEL_LIMIT)
}

/// [`kernel_distance`], computing the kernel once over the whole sets when its three blocks
/// hold at most `full_kernel_limit` entries, else per subset a block pair at a time (the same
/// subsets, the same numbers up to round-off; whole is far cheaper when subsets overlap, as
/// by default). Subsets are scored in parallel on the rayon threads, each value in its place,
/// so the result does not depend on the thread count.
pub fn kernel_distance_within(
    x: &Samples,
    y: &Samples,
    subsets: usize,
    subset_size: usize,
    seed: u64,
    full_kernel_limit: usize,
) -> KernelDistance {
    assert_eq!(
        x.dim(),
        y.dim(),
        "kid compares sets of one feature dimension"
    );
    let m = subset_size.min(x.len()).min(y.len());
    assert!(
        m >= 2 && subsets >= 1,
        "kid needs subsets of at least 2 points"
    );
    let mut rng = Rng::new(seed, Stream::Metrics);
    let (nx, ny) = (x.len(), y.len());
    let full = nx * nx + ny * ny + nx * ny <= full_kernel_limit;
    let blocks = full.then(|| {
        (
            kernel_matrix(x, x),
            kernel_matrix(y, y),
            kernel_matrix(x, y),
        )
    });
    let mut values = Vec::with_capacity(subsets);
    while values.len() < subsets {
        let batch: Vec<(Vec<usize>, Vec<usize>)> = (0..SUBSET_BATCH.min(subsets - values.len()))
            .map(|_| {
                let ix = choose(nx, m, &mut rng);
                (ix, choose(ny, m, &mut rng))
            })
            .collect();
        let scored: Vec<f64> = batch
            .par_iter()
            .map(|(ix, iy)| match &blocks {
                Some((kxx, kyy, kxy)) => subset_mmd(kxx, kyy, kxy, ix, iy),
                None => blockwise_mmd(x, y, ix, iy),
            })
            .collect();
        values.extend(scored);
    }
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / subsets as f64;
    KernelDistance {
        mean,
        std: variance.sqrt(),
        subset_size: m,
    }
}

pub struct Kid {
    params: KidParams,
}

impl Metric for Kid {
    /// The whole kernel's three n × n blocks where they fit [`FULL_KERNEL_LIMIT`], else a
    /// block pair's kernel per thread.
    fn working_set(&self, samples: usize) -> u64 {
        let (n, m) = (samples as u64, samples.min(self.params.subset_size) as u64);
        let per_subset = (m * m).min((KERNEL_BLOCK * KERNEL_BLOCK * planned_threads()) as u64);
        (3 * n * n).min(FULL_KERNEL_LIMIT as u64).max(per_subset)
    }
    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        vec![
            ("kernel", "(a.b / d + 1)^3".to_string()),
            ("subsets", self.params.subsets.to_string()),
            ("subset_size", self.params.subset_size.to_string()),
        ]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let features = feature_set(input, "kid")?;
        let (x, y) = (&features.samples, &features.reference);
        if x.len() < 2 || y.len() < 2 {
            return Err(format!("`kid` needs at least 2 samples and 2 reference items, got {} and {}. Fix: raise `num_samples`", x.len(), y.len()));
        }
        require_finite(x, "sample features")?;
        let kid = kernel_distance(
            x,
            y,
            self.params.subsets,
            // Half the smaller set at most: subsets as large as the sets would all be equal.
            self.params
                .subset_size
                .min(x.len() / 2)
                .min(y.len() / 2)
                .max(2),
            input.seed,
        );
        Ok(Measured {
            value: kid.mean,
            details: vec![("std", kid.std)],
            facts: vec![("subset_size", kid.subset_size.to_string())],
        })
    }

    fn uses_features(&self) -> bool {
        true
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = KidParams::from_raw(raw)?;
    if params.subsets == 0 {
        return Err(raw.invalid("subsets", "must be at least 1", "set e.g. `subsets: 100`"));
    }
    if params.subset_size < 2 {
        return Err(raw.invalid(
            "subset_size",
            format!("must be at least 2, not {}", params.subset_size),
            "set e.g. `subset_size: 1000`",
        ));
    }
    Ok(Built::new(
        Box::new(Kid {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "kid",
        about: "kernel distance (KID): unbiased cubic-polynomial MMD² in the feature space, mean and std over subsets",
        params: KidParams::docs,
        build: Builder::Metric(build),
    }
}
