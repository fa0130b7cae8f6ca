//! Metrics compare generated samples with held-out data (or with the true density, where
//! the dataset knows it). Lower is better for every metric in this issue.

use crate::dataset::{Dataset, Points};

/// What a metric plugin may check when it is built (e.g. that the data has a density).
pub struct MetricContext<'a> {
    pub dataset: &'a dyn Dataset,
}

/// Everything a metric sees for one trial.
pub struct MetricInput<'a> {
    pub samples: &'a Points,
    /// Held-out data from the same distribution as the training set.
    pub reference: &'a Points,
    pub dataset: &'a dyn Dataset,
    /// For metrics that draw random projections or subsets.
    pub seed: u64,
}

pub trait Metric: Send + Sync {
    fn compute(&self, input: &MetricInput) -> Result<f64, String>;
}
