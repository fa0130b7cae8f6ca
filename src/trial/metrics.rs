//! Building a trial's `eval:` list: each metric once, each with the samples it needs, and
//! none that cannot run in the trial's space (a likelihood under a latent autoencoder).

use figment::value::Dict;

use super::slots::{metric_slots, with_kind};
use crate::config::{ConfigError, Provenance};
use crate::metric::{Metric, MetricContext};

/// The built metrics, by name, and their resolved sections (for the trial's record).
pub(super) type BuiltMetrics = (Vec<(String, Box<dyn Metric>)>, Vec<serde_json::Value>);

/// Builds every metric of the `eval:` list. `latent` names the trial's latent autoencoder
/// when it has an active one: metrics that evaluate the model on data points are refused.
pub(super) fn build_metrics(
    root: &Dict,
    provenance: &Provenance,
    context: &MetricContext,
    num_samples: usize,
    latent: Option<&str>,
) -> Result<BuiltMetrics, ConfigError> {
    let mut metrics: Vec<(String, Box<dyn Metric>)> = Vec::new();
    let mut params = Vec::new();
    for (position, (plugin, raw)) in metric_slots(root, provenance)?.into_iter().enumerate() {
        let built = (plugin.build)(&raw, context)?;
        if metrics.iter().any(|(name, _)| name == plugin.name) {
            return Err(raw.invalid(
                "kind",
                format!("metric `{}` is listed twice", plugin.name),
                format!("list each metric once (remove eval[{position}])"),
            ));
        }
        let needed = built.plugin.min_samples();
        if num_samples < needed {
            return Err(raw.invalid(
                "kind",
                format!(
                    "metric `{}` needs at least {needed} samples, but `num_samples` is {}",
                    plugin.name, num_samples
                ),
                format!(
                    "raise `num_samples` to {needed} or more (e.g. 2000), or remove eval[{position}]"
                ),
            ));
        }
        if let Some(latent) = latent.filter(|_| built.plugin.evaluates_model_on_data()) {
            return Err(raw.invalid(
                "kind",
                format!(
                    "metric `{}` evaluates the score model on data points, but with `latent: \
                     {latent}` the model scores the autoencoder's latents",
                    plugin.name
                ),
                format!("remove eval[{position}], or set `latent: identity`"),
            ));
        }
        params.push(with_kind(plugin.name, built.params));
        metrics.push((plugin.name.to_string(), built.plugin));
    }
    Ok((metrics, params))
}
