//! `mode_weights`: total variation between a mixture's weights and the share of samples
//! each component receives, 0.5 * sum_k |w_k - share_k|. Zero when the modes are populated in
//! the right proportions; this is what a single small noise level gets wrong.
//!
//! By default (`assign: posterior`) a sample counts toward every component with its Bayes
//! posterior p(k | x) under the true mixture, so share_k = mean over samples of p(k | x). For
//! exact samples its expectation is exactly w_k (the integral of w_k N_k is w_k), so the only
//! error left is Monte Carlo noise, about sqrt(w_k (1 - w_k) / n) per component. With
//! `assign: nearest` each sample counts wholly toward the component with the nearest mean; that
//! is biased where components overlap or have unequal spreads (a floor of 0.03 TV and more on
//! exact samples), and is kept to compare with results computed that way.

use scorelab::analytic::GaussianMixture;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `mode_weights`.
    pub struct ModeWeightsParams {
        /// How a sample is given to components: `posterior` (shares of p(k | x) under the true mixture, unbiased for exact samples) or `nearest` (all to the nearest mean; biased where components overlap).
        assign: String = "posterior".to_string(),
    }
}

/// How a sample is given to the mixture's components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// In proportion to the Bayes posterior p(k | x).
    Posterior,
    /// Wholly to the component with the nearest mean.
    Nearest,
}

impl Assignment {
    const CHOICES: [&'static str; 2] = ["posterior", "nearest"];

    fn parse(name: &str) -> Option<Assignment> {
        match name {
            "posterior" => Some(Assignment::Posterior),
            "nearest" => Some(Assignment::Nearest),
            _ => None,
        }
    }
}

/// Share of the points given to each component. The points must be finite.
pub fn mode_shares(mixture: &GaussianMixture, points: &Samples, assign: Assignment) -> Vec<f64> {
    let mut shares = vec![0.0; mixture.num_components()];
    for row in points.rows() {
        match assign {
            Assignment::Posterior => {
                for (share, p) in shares.iter_mut().zip(mixture.responsibilities(row, 0.0)) {
                    *share += p;
                }
            }
            Assignment::Nearest => shares[mixture.nearest_component(row)] += 1.0,
        }
    }
    let count = points.len().max(1) as f64;
    shares.iter().map(|s| s / count).collect()
}

/// Total variation between the mixture's weights and the points' shares.
pub fn mode_weight_tv(mixture: &GaussianMixture, points: &Samples, assign: Assignment) -> f64 {
    let shares = mode_shares(mixture, points, assign);
    0.5 * mixture
        .weights()
        .iter()
        .zip(&shares)
        .map(|(w, s)| (w - s).abs())
        .sum::<f64>()
}

pub struct ModeWeights {
    assign: Assignment,
    params: ModeWeightsParams,
}

impl Metric for ModeWeights {
    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        vec![("assign", self.params.assign.clone())]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let mixture = input
            .dataset
            .mixture()
            .ok_or("the dataset is not a mixture")?;
        require_finite(input.samples, "samples")?;
        Ok(mode_weight_tv(mixture, input.samples, self.assign).into())
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = ModeWeightsParams::from_raw(raw)?;
    let Some(assign) = Assignment::parse(&params.assign) else {
        return Err(raw.invalid(
            "assign",
            format!("unknown choice `{}`", params.assign),
            format!("use one of: {}", Assignment::CHOICES.join(", ")),
        ));
    };
    if context.dataset.mixture().is_none() {
        return Err(raw.invalid(
            "kind",
            "mode_weights needs mixture data whose components are known",
            "use it with `data: {kind: gmm, ...}`, or remove it from `eval`",
        ));
    }
    let metric = ModeWeights {
        assign,
        params: params.clone(),
    };
    Ok(Built::new(Box::new(metric), &params))
}

inventory::submit! {
    Plugin {
        name: "mode_weights",
        about: "total variation between mixture weights and the samples' shares of each mode (by posterior)",
        params: ModeWeightsParams::docs,
        build: Builder::Metric(build),
    }
}
