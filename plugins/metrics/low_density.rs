//! `low_density`: the share of samples where the true density is lower than at all but a
//! fraction q of the data, i.e. below the q-quantile of log p(x0) for x0 from the data
//! (datasets that know their density, `gmm`). Exact samples score q (up to Monte Carlo
//! noise, sqrt(q / n)); samples spread too wide within a mode, or bridging modes, score more.
//! It sees what FD, sliced Wasserstein and mode weights miss: spread within a mode.
//!
//! The quantile comes from `draws` points of the true mixture, drawn with a fixed seed so
//! every trial of an experiment is held to the same threshold.

use scorelab::analytic::GaussianMixture;
use scorelab::config::limits::MAX_ITEMS;
use scorelab::config::{Params, RawParams};
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `low_density`.
    pub struct LowDensityParams {
        /// The quantile q of the data's log density below which a sample counts (exact samples: a share of q).
        quantile: f64 = 0.001,
        /// Points drawn from the true mixture to find the quantile (at least 100 / q, so a hundred fall below it).
        draws: usize = 200_000 => 0..=scorelab::config::limits::MAX_ITEMS,
    }
}

/// Seed of the draws that set the threshold: the same for every trial.
const THRESHOLD_SEED: u64 = 0x6c6f_775f_6465_6e73;

pub struct LowDensity {
    params: LowDensityParams,
}

/// The q-quantile of log p(x) over `draws` points of the mixture itself.
pub fn log_density_quantile(mixture: &GaussianMixture, q: f64, draws: usize) -> f64 {
    let points = mixture.sample(draws, &mut Rng::from_seed(THRESHOLD_SEED));
    let mut log_p: Vec<f64> = points
        .rows()
        .map(|row| mixture.log_density(row, 0.0))
        .collect();
    log_p.sort_by(f64::total_cmp);
    let index = ((q * draws as f64).floor() as usize).min(draws - 1);
    log_p[index]
}

impl Metric for LowDensity {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let Some(mixture) = input.dataset.mixture() else {
            return Err("the dataset has no known density".into());
        };
        require_finite(input.samples, "samples")?;
        let threshold = log_density_quantile(mixture, self.params.quantile, self.params.draws);
        let below = input
            .samples
            .rows()
            .filter(|row| mixture.log_density(row, 0.0) < threshold)
            .count();
        Ok(Measured {
            value: below as f64 / input.samples.len().max(1) as f64,
            details: Vec::new(),
            facts: vec![("threshold", format!("log p < {threshold:.4}"))],
        })
    }

    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        vec![
            ("quantile", self.params.quantile.to_string()),
            ("draws", self.params.draws.to_string()),
        ]
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = LowDensityParams::from_raw(raw)?;
    if !(params.quantile > 0.0 && params.quantile <= 0.5) {
        return Err(raw.invalid(
            "quantile",
            format!("must be in (0, 0.5], not {}", params.quantile),
            "set e.g. `quantile: 0.001`",
        ));
    }
    let fewest = (100.0 / params.quantile).ceil() as usize;
    if params.draws < fewest || params.draws > MAX_ITEMS {
        return Err(raw.invalid(
            "draws",
            format!(
                "must be in [{fewest}, {MAX_ITEMS}] (at least 100 draws below the quantile), not {}",
                params.draws
            ),
            format!("set e.g. `draws: {}`", fewest.max(200_000)),
        ));
    }
    if context.dataset.mixture().is_none() {
        return Err(raw.invalid(
            "kind",
            "low_density needs a dataset whose density is known",
            "use it with `data: {kind: gmm, ...}`, or remove it from `eval`",
        ));
    }
    Ok(Built::new(
        Box::new(LowDensity {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "low_density",
        about: "share of samples below the true density's q-quantile (gmm): spread within modes and bridges between them",
        params: LowDensityParams::docs,
        build: Builder::Metric(build),
    }
}
