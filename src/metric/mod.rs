//! Metrics compare generated samples with held-out data (or with the true density, where
//! the dataset knows it), or score held-out data under the model (likelihoods), or compare
//! both in a learned feature space (FID, KID). Lower is better for the distances and
//! likelihoods; higher for precision, recall and class accuracy, which are shares.
//!
//! The math several metric plugins share lives here, never in one of them: Gaussian fits and
//! the Fréchet distance (`frechet`: `fd` and `fid`), k-nearest-neighbour balls
//! (`neighbours`: `precision_recall` and `coverage`), dequantisation and bits per dimension
//! of quantised data (`bits`: `nll_ode` and `elbo`), multithreaded matrix products of point
//! sets (`gram`: covariances, kernels and distances), and [`feature_set`] for every metric
//! that compares features.

pub mod bits;
pub mod frechet;
pub mod gram;
pub mod neighbours;

use candle_core::Device;

use crate::dataset::{Dataset, Samples};
use crate::features::FeatureSet;
use crate::network::ScoreModel;
use crate::schedule::Schedule;

/// What a metric plugin may check when it is built (e.g. that the data has a density, or
/// that the schedule is a discrete chain).
#[derive(Clone, Copy)]
pub struct MetricContext<'a> {
    pub dataset: &'a dyn Dataset,
    pub schedule: &'a dyn Schedule,
    /// The schedule plugin's registered name, for error messages.
    pub schedule_name: &'a str,
    /// How many held-out points the list's likelihoods score ([`Metric::held_out_points`]),
    /// when it has some and they agree: what the data's own NLL of held-out points scores
    /// too, so the two are comparable.
    pub likelihood_points: Option<usize>,
}

/// Everything a metric sees for one trial.
pub struct MetricInput<'a> {
    pub samples: &'a Samples,
    /// Held-out data from the same distribution as the training set.
    pub reference: &'a Samples,
    pub dataset: &'a dyn Dataset,
    /// For metrics that draw random projections, probes or subsets.
    pub seed: u64,
    /// The trial's model (EMA weights), for likelihoods.
    pub model: &'a dyn ScoreModel,
    pub schedule: &'a dyn Schedule,
    pub device: &'a Device,
    /// Samples and reference in the experiment's feature space (`features:`), computed once
    /// per trial when some metric [`Metric::uses_features`].
    pub features: Option<&'a FeatureSet>,
}

/// Fails when any item has a NaN or infinite coordinate, saying how many: a metric never
/// scores a diverged sample (dropping it, or letting it saturate a kernel, would hide the
/// divergence). The engine records the metric as NaN with this message.
pub fn require_finite(items: &Samples, what: &str) -> Result<(), String> {
    let bad = items
        .rows()
        .filter(|r| r.iter().any(|v| !v.is_finite()))
        .count();
    if bad == 0 {
        Ok(())
    } else {
        Err(format!(
            "{bad} of {} {what} are not finite (NaN or inf), so the metric is not computed",
            items.len()
        ))
    }
}

/// The trial's feature set, or an error naming the metric (the engine computes it for every
/// metric whose [`Metric::uses_features`] is true, so this only fails for a caller that skips
/// it).
pub fn feature_set<'a>(input: &MetricInput<'a>, metric: &str) -> Result<&'a FeatureSet, String> {
    input.features.ok_or_else(|| {
        format!("`{metric}` compares features, but no feature set was computed for this trial. Fix: pass `MetricInput::features` (the runner does so from the `features:` slot; default `raw`)")
    })
}

/// A metric's value, with secondary figures recorded beside it as `<metric>_<name>` (e.g. the
/// NFE a likelihood took, KID's spread over subsets), and facts about how it was measured on
/// this input (e.g. MMD's bandwidth, the subset size KID could use), which join the metric's
/// protocol: numbers a reader needs to compare values, not results to chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub value: f64,
    pub details: Vec<(&'static str, f64)>,
    /// Replace the [`Metric::protocol`] setting of the same name, if any.
    pub facts: Vec<(&'static str, String)>,
}

impl From<f64> for Measured {
    fn from(value: f64) -> Self {
        Measured {
            value,
            details: Vec::new(),
            facts: Vec::new(),
        }
    }
}

pub trait Metric: Send + Sync {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String>;

    /// Whether the metric compares features (FID, KID, precision/recall): the engine then
    /// extracts them once per trial with the experiment's feature extractor.
    fn uses_features(&self) -> bool {
        false
    }

    /// How this metric measures on `input`, beyond the engine's sample counts and NFE: its
    /// estimator and settings (e.g. `estimator: exact trace`, `rtol: 1e-5`), recorded with
    /// every value in the trial's protocol.
    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The fewest samples the metric can be computed from (checked against `num_samples`
    /// while resolving).
    fn min_samples(&self) -> usize {
        0
    }

    /// For a likelihood of held-out data: how many of the held-out points it scores (the
    /// first ones), so other metrics of the list can score the same ones.
    fn held_out_points(&self) -> Option<usize> {
        None
    }

    /// Whether the metric evaluates the score model on data points (a likelihood): it then
    /// cannot run where the model lives in another space than the data (a latent space).
    fn evaluates_model_on_data(&self) -> bool {
        false
    }

    /// The most 8-byte values the metric holds at once beyond the two sets themselves, for
    /// `samples` points in each (e.g. 3 n × n distance or kernel matrices): the memory
    /// estimate compares the largest with the memory available before a sweep runs.
    fn working_set(&self, _samples: usize) -> u64 {
        0
    }
}
