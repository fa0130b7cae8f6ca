//! `precision_recall`: improved precision and recall (Kynkäänniemi et al. 2019) in the
//! trial's feature space. Each set's manifold is the union of balls around its points, each
//! ball reaching the point's k-th nearest neighbour within its own set (the point itself not
//! counted). Precision is the share of samples inside the reference manifold (fidelity);
//! recall is the share of reference points inside the sample manifold (coverage).
//!
//! The value is the precision and detail `recall` the recall: unlike the other built-in
//! metrics, HIGHER is better for both (1 = every sample realistic / every mode covered).
//! Details `samples` and `reference` record the set sizes used (after `max_points`).

use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::gram::planned_threads;
use scorelab::metric::neighbours::{check_neighbours, distance_blocks, knn_radii, BLOCK_ENTRIES};
use scorelab::metric::{feature_set, require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `precision_recall`.
    pub struct PrecisionRecallParams {
        /// Each point's ball reaches its k-th nearest neighbour in its own set.
        k: usize = 3 => 0..=10_000,
        /// At most this many items of each set are used (the first ones; the cost is quadratic).
        max_points: usize = 2000 => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

/// Share of `queries` inside the manifold of `points`: within the k-NN radius of at least
/// one of them (`radii` squared, one per point, from [`knn_radii`]); blockwise on the rayon
/// threads.
pub fn manifold_share(queries: &Samples, points: &Samples, radii: &[f64]) -> f64 {
    let inside: usize = distance_blocks(queries, points, |_, distances| {
        distances
            .chunks(points.len())
            .filter(|column| column.iter().zip(radii).any(|(d, r)| d <= r))
            .count()
    })
    .iter()
    .sum();
    inside as f64 / queries.len() as f64
}

/// (precision, recall) of `samples` against `reference` with k-NN manifolds.
pub fn precision_recall(samples: &Samples, reference: &Samples, k: usize) -> (f64, f64) {
    assert_eq!(
        samples.dim(),
        reference.dim(),
        "precision_recall compares sets of one feature dimension"
    );
    let precision = manifold_share(samples, reference, &knn_radii(reference, k));
    let recall = manifold_share(reference, samples, &knn_radii(samples, k));
    (precision, recall)
}

pub struct PrecisionRecall {
    params: PrecisionRecallParams,
}

impl Metric for PrecisionRecall {
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
        let features = feature_set(input, "precision_recall")?;
        let x = features.samples.head(self.params.max_points);
        let y = features.reference.head(self.params.max_points);
        let k = self.params.k;
        if x.len() <= k || y.len() <= k {
            return Err(format!(
                "`precision_recall` needs more than k = {k} samples and reference items, got {} and {}. Fix: raise `num_samples` or lower `k`",
                x.len(),
                y.len()
            ));
        }
        require_finite(&x, "sample features")?;
        let (precision, recall) = precision_recall(&x, &y, k);
        // The points used (at most `max_points` of each set), beside the engine's set sizes.
        Ok(Measured {
            value: precision,
            details: vec![("recall", recall)],
            facts: vec![("points", x.len().min(y.len()).to_string())],
        })
    }

    fn uses_features(&self) -> bool {
        true
    }

    /// k-NN radii need more than k points.
    fn min_samples(&self) -> usize {
        self.params.k + 1
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = PrecisionRecallParams::from_raw(raw)?;
    check_neighbours(raw, params.k, params.max_points, 3)?;
    Ok(Built::new(
        Box::new(PrecisionRecall {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "precision_recall",
        about: "improved precision (value) and recall (detail) with k-NN manifolds in the feature space; higher is better",
        params: PrecisionRecallParams::docs,
        build: Builder::Metric(build),
    }
}
