//! `coverage`: density and coverage (Naeem et al. 2020) in the trial's feature space. Both
//! use balls around the reference points only, each reaching the point's k-th nearest
//! reference neighbour, so samples far off the data (which inflate k-NN recall by widening
//! the samples' own balls) cannot make them look diverse:
//!
//!   coverage = share of reference points whose ball holds at least one sample (diversity:
//!              falls when samples collapse onto fewer modes),
//!   density  = (1 / (k M)) sum over samples of the number of reference balls holding it
//!              (fidelity; 1 on average for samples from the data, can exceed 1).
//!
//! The value is the coverage and detail `density` the density; HIGHER is better for both.

use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::gram::planned_threads;
use scorelab::metric::neighbours::{check_neighbours, distance_blocks, knn_radii, BLOCK_ENTRIES};
use scorelab::metric::{feature_set, require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `coverage`.
    pub struct CoverageParams {
        /// Each reference point's ball reaches its k-th nearest reference neighbour.
        k: usize = 5 => 0..=10_000,
        /// At most this many items of each set are used (the first ones; the cost is quadratic).
        max_points: usize = 2000 => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

/// (coverage, density) of `samples` against `reference` (more than k reference points).
pub fn coverage_density(samples: &Samples, reference: &Samples, k: usize) -> (f64, f64) {
    assert_eq!(
        samples.dim(),
        reference.dim(),
        "coverage compares sets of one feature dimension"
    );
    let radii = knn_radii(reference, k);
    // Per block of samples: which reference balls hold one of them, and how many hold each.
    let blocks = distance_blocks(samples, reference, |_, distances| {
        let mut covered = vec![false; reference.len()];
        let mut held = 0usize;
        for column in distances.chunks(reference.len()) {
            for (j, (d, r)) in column.iter().zip(&radii).enumerate() {
                if d <= r {
                    covered[j] = true;
                    held += 1;
                }
            }
        }
        (covered, held)
    });
    let mut covered = vec![false; reference.len()];
    let mut held = 0usize;
    for (block, count) in blocks {
        covered.iter_mut().zip(block).for_each(|(c, b)| *c |= b);
        held += count;
    }
    let coverage = covered.iter().filter(|c| **c).count() as f64 / reference.len() as f64;
    let density = held as f64 / (k * samples.len()) as f64;
    (coverage, density)
}

pub struct Coverage {
    params: CoverageParams,
}

impl Metric for Coverage {
    /// A block of distances per thread (at most m × m, m the points used).
    fn working_set(&self, samples: usize) -> u64 {
        let m = samples.min(self.params.max_points) as u64;
        (m * m).min(BLOCK_ENTRIES as u64 * planned_threads() as u64)
    }

    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        vec![
            ("k", self.params.k.to_string()),
            ("max_points", self.params.max_points.to_string()),
        ]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let features = feature_set(input, "coverage")?;
        let x = features.samples.head(self.params.max_points);
        let y = features.reference.head(self.params.max_points);
        let k = self.params.k;
        if x.is_empty() || y.len() <= k {
            return Err(format!(
                "`coverage` needs samples and more than k = {k} reference items, got {} and {}. Fix: raise `num_samples` or lower `k`",
                x.len(),
                y.len()
            ));
        }
        require_finite(&x, "sample features")?;
        let (coverage, density) = coverage_density(&x, &y, k);
        Ok(Measured {
            value: coverage,
            details: vec![("density", density)],
            facts: vec![("points", x.len().min(y.len()).to_string())],
        })
    }

    fn uses_features(&self) -> bool {
        true
    }

    fn min_samples(&self) -> usize {
        self.params.k + 1
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = CoverageParams::from_raw(raw)?;
    check_neighbours(raw, params.k, params.max_points, 5)?;
    Ok(Built::new(
        Box::new(Coverage {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "coverage",
        about: "coverage (value: share of reference points with a sample in their k-NN ball) and density (detail), robust to outlying samples; higher is better",
        params: CoverageParams::docs,
        build: Builder::Metric(build),
    }
}
