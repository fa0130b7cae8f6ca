//! `nll_true`: mean negative log-likelihood of the samples under the true data density
//! (for datasets that know it). It rewards samples in high-density regions; pair it with a
//! coverage metric (mode weights, MMD), since collapsing onto the densest mode also scores well.

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::metric::{Measured, Metric, MetricContext, MetricInput};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

pub struct NllTrue;

impl Metric for NllTrue {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let mut total = 0.0;
        for row in input.samples.rows() {
            let Some(log_p) = input.dataset.log_density(row) else {
                return Err("the dataset has no known density".into());
            };
            total -= log_p;
        }
        Ok((total / input.samples.len().max(1) as f64).into())
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    if context.dataset.log_density(&vec![0.0; context.dataset.dim()]).is_none() {
        return Err(raw.invalid(
            "kind",
            "nll_true needs a dataset whose density is known",
            "use it with `data: {kind: gmm, ...}`, or remove it from `eval`",
        ));
    }
    Ok(Built::new(Box::new(NllTrue), &params))
}

inventory::submit! {
    Plugin {
        name: "nll_true",
        about: "mean negative log-likelihood of samples under the true density (gmm)",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
