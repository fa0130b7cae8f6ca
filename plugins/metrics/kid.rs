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
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
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

/// The polynomial kernel (aᵀb / d + 1)³ between every row of `a` and every row of `b`.
pub fn polynomial_kernel(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let d = a.ncols() as f64;
    let mut gram = a * b.transpose();
    gram.apply(|v| {
        let base = *v / d + 1.0;
        *v = base * base * base;
    });
    gram
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
/// hold at most `full_kernel_limit` entries, else per subset (the same subsets, the same
/// numbers up to round-off; whole is far cheaper when subsets overlap, as by default).
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
    let (mx, my) = (matrix(x), matrix(y));
    let (nx, ny) = (x.len(), y.len());
    let full_entries = nx * nx + ny * ny + nx * ny;
    let full = full_entries <= full_kernel_limit;
    let blocks = full.then(|| {
        (
            polynomial_kernel(&mx, &mx),
            polynomial_kernel(&my, &my),
            polynomial_kernel(&mx, &my),
        )
    });
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets {
        let ix = choose(nx, m, &mut rng);
        let iy = choose(ny, m, &mut rng);
        let value = match &blocks {
            Some((kxx, kyy, kxy)) => subset_mmd(kxx, kyy, kxy, &ix, &iy),
            None => {
                let sx = mx.select_rows(&ix);
                let sy = my.select_rows(&iy);
                let index: Vec<usize> = (0..m).collect();
                subset_mmd(
                    &polynomial_kernel(&sx, &sx),
                    &polynomial_kernel(&sy, &sy),
                    &polynomial_kernel(&sx, &sy),
                    &index,
                    &index,
                )
            }
        };
        values.push(value);
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
    /// The whole kernel's three n × n blocks where they fit [`FULL_KERNEL_LIMIT`], else three
    /// subset-sized ones.
    fn working_set(&self, samples: usize) -> u64 {
        let (n, m) = (samples as u64, samples.min(self.params.subset_size) as u64);
        (3 * n * n).min(FULL_KERNEL_LIMIT as u64).max(3 * m * m)
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
