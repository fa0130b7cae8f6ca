//! Building a trial's `eval:` list: each metric under its column (its own name, or the
//! `name:` written for it), each with the samples it needs, none that cannot run in the
//! trial's space (a likelihood under a latent autoencoder), and the held-out points of the
//! list's likelihoods passed to every metric, so the data's own NLL is taken on the same ones.

use figment::value::Dict;

use super::slots::{metric_slots, with_kind, MetricSlot};
use crate::config::{ConfigError, Provenance, RawParams};
use crate::metric::{Metric, MetricContext};
use crate::registry::{self, Kind};

/// The built metrics, by column, and their resolved sections (for the trial's record).
pub(super) type BuiltMetrics = (Vec<(String, Box<dyn Metric>)>, Vec<serde_json::Value>);

/// Columns the results table writes beside the metrics: no metric may take their names.
const RESERVED_COLUMNS: [&str; 13] = [
    "trial",
    "label",
    "invocation",
    "nfe",
    "train_seconds",
    "sample_seconds",
    "metric_seconds",
    "sigma_max",
    "sigma_min",
    "features",
    "train_id",
    "status",
    "message",
];

/// Builds every metric of the `eval:` list. `latent` names the trial's latent autoencoder
/// when it has an active one: metrics that evaluate the model on data points are refused.
pub(super) fn build_metrics(
    root: &Dict,
    provenance: &Provenance,
    context: &MetricContext,
    num_samples: usize,
    latent: Option<&str>,
) -> Result<BuiltMetrics, ConfigError> {
    let slots = metric_slots(root, provenance)?;
    // Built once; where the list has likelihoods, the others are built again knowing how
    // many held-out points those score (so `nll_true` takes the same ones).
    let mut built = Vec::new();
    for MetricSlot {
        slot: (plugin, raw),
        ..
    } in &slots
    {
        built.push((plugin.build)(raw, context)?);
    }
    let points: Vec<usize> = built
        .iter()
        .filter_map(|b| b.plugin.held_out_points())
        .collect();
    let aligned = MetricContext {
        likelihood_points: points
            .first()
            .copied()
            .filter(|p| points.iter().all(|q| q == p)),
        ..*context
    };
    let mut metrics: Vec<(String, Box<dyn Metric>)> = Vec::new();
    let mut params = Vec::new();
    for (
        position,
        (
            MetricSlot {
                slot: (plugin, raw),
                name,
            },
            first,
        ),
    ) in slots.into_iter().zip(built).enumerate()
    {
        let built = match aligned.likelihood_points {
            Some(_) => (plugin.build)(&raw, &aligned)?,
            None => first,
        };
        let column = name.clone().unwrap_or_else(|| plugin.name.to_string());
        check_column(&raw, &column, plugin.name, &metrics, position)?;
        check_fits(
            &raw,
            built.plugin.as_ref(),
            plugin.name,
            (num_samples, latent),
            position,
        )?;
        let mut section = with_kind(plugin.name, built.params);
        if let (Some(name), serde_json::Value::Object(fields)) = (name, &mut section) {
            fields.insert("name".into(), name.into());
        }
        params.push(section);
        metrics.push((column, built.plugin));
    }
    Ok((metrics, params))
}

/// A metric's column is new in the list, not a column the table writes itself, and not
/// another metric's name (a `name: fd` on `mmd` would read as FD).
fn check_column(
    raw: &RawParams,
    column: &str,
    kind: &str,
    metrics: &[(String, Box<dyn Metric>)],
    position: usize,
) -> Result<(), ConfigError> {
    let key = if column == kind { "kind" } else { "name" };
    if metrics.iter().any(|(taken, _)| taken == column) {
        return Err(raw.invalid(
            key,
            format!("metric column `{column}` is listed twice"),
            format!(
                "list each metric once, or give eval[{position}] a column of its own with \
                 `name:` (e.g. `name: {kind}_{position}`)"
            ),
        ));
    }
    if RESERVED_COLUMNS.contains(&column)
        || (column != kind && registry::names(Kind::Metric).contains(&column))
    {
        return Err(raw.invalid(
            key,
            format!("`{column}` is the name of another column of the results table"),
            format!("choose another `name:`, e.g. `{kind}_{position}`"),
        ));
    }
    Ok(())
}

/// The metric can run on the trial: enough samples, and in the space the model lives in.
fn check_fits(
    raw: &RawParams,
    metric: &dyn Metric,
    kind: &str,
    (num_samples, latent): (usize, Option<&str>),
    position: usize,
) -> Result<(), ConfigError> {
    let needed = metric.min_samples();
    if num_samples < needed {
        return Err(raw.invalid(
            "kind",
            format!(
                "metric `{kind}` needs at least {needed} samples, but `num_samples` is {num_samples}"
            ),
            format!(
                "raise `num_samples` to {needed} or more (e.g. 2000), or remove eval[{position}]"
            ),
        ));
    }
    if let Some(latent) = latent.filter(|_| metric.evaluates_model_on_data()) {
        return Err(raw.invalid(
            "kind",
            format!(
                "metric `{kind}` evaluates the score model on data points, but with `latent: \
                 {latent}` the model scores the autoencoder's latents"
            ),
            format!("remove eval[{position}], or set `latent: identity`"),
        ));
    }
    Ok(())
}
