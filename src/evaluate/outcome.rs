//! What one evaluation gives: the samples, the metrics and how each was measured, or why
//! it failed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::Samples;
use crate::network::counting::Trace;

pub struct Evaluation {
    /// With the shape of the data, and the class each was generated for where the model is
    /// class-conditional.
    pub samples: Samples,
    pub nfe: u64,
    pub sample_seconds: f64,
    /// In the order of the experiment's `eval` list.
    pub metrics: Vec<(String, f64)>,
    pub metric_seconds: f64,
    /// The feature space the metrics used, where one was.
    pub features_identity: Option<String>,
    /// For image data: (sigma, first sample) at every score evaluation of the run.
    pub trace: Trace,
    /// How each metric was measured, by metric name.
    pub protocols: BTreeMap<String, Protocol>,
    /// Metrics that failed (their values are NaN in `metrics`): why, one line each.
    pub failures: Vec<String>,
}

/// What a metric value needs beside it to be compared with another: how many samples it
/// saw, against which reference set of what size, and in which feature space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub samples: usize,
    /// `held_out`: data drawn from the dataset apart from the training set.
    pub reference: String,
    pub reference_size: usize,
    /// Score-network evaluations the sampler used per sample batch.
    pub nfe: u64,
    /// The feature extractor and its hash, for metrics computed in a feature space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// The metric's own estimator and settings ([`crate::metric::Metric::protocol`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("sampling failed in the tensor library: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("metric `{metric}` failed: {message}")]
    Metric { metric: String, message: String },
    #[error("feature extraction failed: {0}")]
    Features(String),
    /// `which` says how many samples are non-finite and how many ran past the bound.
    #[error("sampler `{sampler}` diverged: {which} after {nfe} network evaluations. Fix: {fix}")]
    NonFiniteSamples {
        sampler: String,
        which: String,
        /// The evaluations spent before the samples were found diverged.
        nfe: u64,
        fix: String,
    },
}

impl EvaluateError {
    /// The score-network evaluations the failed sampling spent (0 when unknown).
    pub fn nfe(&self) -> u64 {
        match self {
            EvaluateError::NonFiniteSamples { nfe, .. } => *nfe,
            _ => 0,
        }
    }
}
