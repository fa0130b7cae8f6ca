//! `nll_true`: mean negative log-likelihood under the true data density (for datasets that
//! know it).
//!
//! Of the samples (`of: samples`, the default), it rewards samples in high-density regions;
//! pair it with a coverage metric (mode weights, MMD, `low_density`), since collapsing onto
//! the densest mode also scores well. Of the held-out data (`of: held_out`), it is the data's
//! own entropy estimate: the floor that the likelihoods of a model (`nll_ode`, `elbo`)
//! approach. There it is taken in their unit, nats per dimension, and on the same points:
//! the first `points` held-out points that the list's likelihoods score. Its protocol
//! records which points and which unit.

use scorelab::config::{Params, RawParams};
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `nll_true`.
    pub struct NllTrueParams {
        /// Which points are scored: `samples` (the generated ones) or `held_out` (held-out data, the floor of `nll_ode` and `elbo`).
        of: String = "samples".to_string(),
        /// Divide by the data dimension (nats per dimension, the unit of `nll_ode` and `elbo`); none: per dimension of held-out data, per point of samples.
        per_dim: Option<bool> = None,
        /// Score only the first this many points; none: of held-out data, the points the list's likelihoods (`nll_ode`, `elbo`) score, else all.
        points: Option<usize> = None => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

/// The values `of` takes.
const OF_CHOICES: [&str; 2] = ["samples", "held_out"];

pub struct NllTrue {
    params: NllTrueParams,
}

impl Metric for NllTrue {
    fn protocol(&self, input: &MetricInput) -> Vec<(&'static str, String)> {
        let all = if self.params.of == "held_out" {
            input.reference
        } else {
            input.samples
        };
        let count = self.params.points.unwrap_or(all.len()).min(all.len());
        let unit = match self.params.per_dim {
            Some(true) => "nats per dimension",
            _ => "nats per point",
        };
        vec![
            ("of", self.params.of.clone()),
            ("points", format!("the first {count}")),
            ("unit", unit.to_string()),
        ]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let all = if self.params.of == "held_out" {
            input.reference
        } else {
            input.samples
        };
        require_finite(all, &self.params.of)?;
        let count = self.params.points.unwrap_or(all.len()).min(all.len());
        let mut total = 0.0;
        for row in all.rows().take(count) {
            let Some(log_p) = input.dataset.log_density(row) else {
                return Err("the dataset has no known density".into());
            };
            total -= log_p;
        }
        let per = if self.params.per_dim == Some(true) {
            all.dim() as f64
        } else {
            1.0
        };
        Ok((total / count.max(1) as f64 / per).into())
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let mut params = NllTrueParams::from_raw(raw)?;
    let held_out = params.of == "held_out";
    // Recorded resolved: what a trial measured is in its id, and `of: samples` records as
    // it always has (per point, every sample).
    params.per_dim = Some(params.per_dim.unwrap_or(held_out));
    if held_out && params.points.is_none() {
        params.points = context.likelihood_points;
    }
    if !OF_CHOICES.contains(&params.of.as_str()) {
        return Err(raw.invalid(
            "of",
            format!("unknown choice `{}`", params.of),
            format!("use one of: {}", OF_CHOICES.join(", ")),
        ));
    }
    if params.points == Some(0) {
        return Err(raw.invalid(
            "points",
            "must be at least 1",
            "set e.g. `points: 500`, or leave it unset for all",
        ));
    }
    if context
        .dataset
        .log_density(&vec![0.0; context.dataset.dim()])
        .is_none()
    {
        return Err(raw.invalid(
            "kind",
            "nll_true needs a dataset whose density is known",
            "use it with `data: {kind: gmm, ...}`, or remove it from `eval`",
        ));
    }
    Ok(Built::new(
        Box::new(NllTrue {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "nll_true",
        about: "mean negative log-likelihood of samples (or held-out data) under the true density (gmm)",
        params: NllTrueParams::docs,
        build: Builder::Metric(build),
    }
}
