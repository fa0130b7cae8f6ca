//! `mode_weights`: total variation between a mixture's weights and the share of samples
//! nearest each component's mean, 0.5 * sum_k |w_k - share_k|. Zero when the modes are
//! populated in the right proportions; this is what a single small noise level gets wrong.

use scorelab::analytic::GaussianMixture;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

/// Share of the points nearest each component.
pub fn mode_shares(mixture: &GaussianMixture, points: &Samples) -> Vec<f64> {
    let mut counts = vec![0usize; mixture.num_components()];
    let mut total = 0usize;
    for row in points.rows().filter(|r| r.iter().all(|v| v.is_finite())) {
        counts[mixture.nearest_component(row)] += 1;
        total += 1;
    }
    counts.iter().map(|c| *c as f64 / total.max(1) as f64).collect()
}

/// Total variation between the mixture's weights and the points' shares.
pub fn mode_weight_tv(mixture: &GaussianMixture, points: &Samples) -> f64 {
    let shares = mode_shares(mixture, points);
    0.5 * mixture.weights().iter().zip(&shares).map(|(w, s)| (w - s).abs()).sum::<f64>()
}

pub struct ModeWeights;

impl Metric for ModeWeights {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let mixture = input.dataset.mixture().ok_or("the dataset is not a mixture")?;
        require_finite(input.samples, "samples")?;
        Ok(mode_weight_tv(mixture, input.samples).into())
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    if context.dataset.mixture().is_none() {
        return Err(raw.invalid(
            "kind",
            "mode_weights needs mixture data whose components are known",
            "use it with `data: {kind: gmm, ...}`, or remove it from `eval`",
        ));
    }
    Ok(Built::new(Box::new(ModeWeights), &params))
}

inventory::submit! {
    Plugin {
        name: "mode_weights",
        about: "total variation between mixture weights and the samples' nearest-mode shares",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
