//! Reading the plugin slots of one trial's config: `{kind: NAME, ...params}` or `NAME`,
//! the `eval:` list, and which of the file's parameters survive when a sweep or override
//! switches a slot to another plugin.

use figment::value::{Dict, Value};

use crate::config::{ConfigError, Provenance, RawParams};
use crate::guidance::{Guidance, GuidanceContext};
use crate::metric::Metric;
use crate::registry::{self, Built, Found, PluginKind};
use crate::sweep::{Experiment, TrialSpec};

use super::settings::DEFAULT_GUIDANCE;

/// A section that must be a table (or absent: all defaults).
pub(super) fn section_dict(
    root: &Dict,
    key: &str,
    provenance: &Provenance,
) -> Result<Dict, ConfigError> {
    match root.get(key) {
        None => Ok(Dict::new()),
        Some(Value::Dict(_, dict)) => Ok(dict.clone()),
        Some(other) => Err(provenance.key_error(
            other,
            key,
            "must be a table of settings".into(),
            format!("write `{key}:` followed by indented `name: value` lines"),
        )),
    }
}

/// A slot's plugin, ready to build, and its raw parameters.
pub(super) type Slot<'p, K> = (Found<K>, RawParams<'p>);

/// Reads one trial's plugin slots: the experiment (for which values its file set), the
/// trial's sweep point, its config's root table and where each value came from.
pub(super) struct SlotReader<'a> {
    pub experiment: &'a Experiment,
    pub spec: &'a TrialSpec,
    pub root: &'a Dict,
    pub provenance: &'a Provenance,
}

impl<'a> SlotReader<'a> {
    pub fn plugin<K: PluginKind + ?Sized>(
        &self,
        key: &str,
    ) -> Result<(Found<K>, RawParams<'a>), ConfigError> {
        plugin_slot(self.experiment, self.spec, self.root, key, self.provenance)
    }

    /// An optional slot: the plugin `default` with its defaults when the section is absent.
    pub fn optional<K: PluginKind + ?Sized>(
        &self,
        key: &str,
        default: &str,
    ) -> Result<(Found<K>, RawParams<'a>), ConfigError> {
        if self.root.get(key).is_some() {
            return self.plugin(key);
        }
        let plugin = registry::find_of::<K>(default).map_err(|unknown| {
            self.provenance
                .default_error(key, unknown.message(), unknown.fix())
        })?;
        Ok((plugin, RawParams::new(key, Dict::new(), self.provenance)))
    }

    /// The `guidance:` slot (absent: [`DEFAULT_GUIDANCE`]), built for the trial's data and
    /// network: the plugin's name and the built guidance.
    pub fn guidance(
        &self,
        context: &GuidanceContext,
    ) -> Result<(&'static str, Built<dyn Guidance>), ConfigError> {
        let (guidance, raw) = self.optional::<dyn Guidance>("guidance", DEFAULT_GUIDANCE)?;
        Ok((guidance.name, (guidance.build)(&raw, context)?))
    }
}

/// Reads a plugin slot: `{kind: NAME, ...params}`, or just `NAME` for all defaults.
///
/// When an override or sweep value switches the slot to another plugin than the file's, the
/// file's parameters for that slot are dropped: they were written for the other plugin.
/// When it names the file's own plugin (`sampler=annealed_langevin,other` as an ablation),
/// the file's parameters are kept, so the baseline is the file's tuned sampler.
fn plugin_slot<'p, K: PluginKind + ?Sized>(
    experiment: &Experiment,
    spec: &TrialSpec,
    root: &Dict,
    key: &str,
    provenance: &'p Provenance,
) -> Result<(Found<K>, RawParams<'p>), ConfigError> {
    let kind = K::KIND;
    let Some(value) = root.get(key) else {
        return Err(provenance.default_error(
            key,
            format!("the `{key}` section is missing"),
            format!(
                "add `{key}: {{kind: NAME}}` with one of the registered {}: {}",
                kind.plural(),
                registry::names(kind).join(", ")
            ),
        ));
    };
    let (plugin, mut raw) = registry::plugin_from_value::<K>(value, key, provenance)?;
    match experiment.file_kind(key) {
        Some(file_kind) if file_kind != plugin.name => {
            // Values written in the file's `sweep:` section count as set outside the slot.
            let kept = experiment.keys_set_outside_the_file(key, &spec.assignments);
            raw.dict.retain(|k, _| kept.contains(k));
        }
        Some(_) => {
            for (name, value) in experiment.file_params(key) {
                raw.dict.entry(name).or_insert(value);
            }
        }
        None => {}
    }
    Ok((plugin, raw))
}

/// The part of a resolved plugin section that decides training: the section without its
/// `kind` and sampling-only parameters, or `None` when nothing is left. Whichever plugin
/// asks for the same training (e.g. `cfg` and `classifier` guidance at one label dropout)
/// shares its model.
pub(super) fn training_part(
    section: &serde_json::Value,
    sampling_only: &[&str],
) -> Option<serde_json::Value> {
    let mut part = section.as_object()?.clone();
    part.retain(|key, _| key != "kind" && !sampling_only.contains(&key.as_str()));
    (!part.is_empty()).then_some(serde_json::Value::Object(part))
}

/// One `eval:` entry: its plugin and raw parameters, and the `name:` written for it (the
/// column its values go in; absent: the metric's own name).
pub(super) struct MetricSlot<'p> {
    pub slot: Slot<'p, dyn Metric>,
    pub name: Option<String>,
}

/// `eval:` is a list of metric names or `{kind: NAME, ...}` tables (absent: no metrics); a
/// table's `name:` is the engine's, not the plugin's.
pub(super) fn metric_slots<'p>(
    root: &Dict,
    provenance: &'p Provenance,
) -> Result<Vec<MetricSlot<'p>>, ConfigError> {
    match root.get("eval") {
        None => Ok(Vec::new()),
        Some(Value::Array(_, items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("eval[{i}]");
                let (item, name) = take_metric_name(item, &path, provenance)?;
                let slot = registry::plugin_from_value::<dyn Metric>(&item, &path, provenance)?;
                Ok(MetricSlot { slot, name })
            })
            .collect(),
        Some(other) => Err(provenance.key_error(
            other,
            "eval",
            "must be a list of metrics".into(),
            "write e.g. `eval: [fd, mmd, {kind: sliced_wasserstein, projections: 64}]`".into(),
        )),
    }
}

/// Splits `name:` off an `eval:` table: a lower-case identifier, since it becomes a column.
fn take_metric_name(
    item: &Value,
    path: &str,
    provenance: &Provenance,
) -> Result<(Value, Option<String>), ConfigError> {
    let Value::Dict(tag, table) = item else {
        return Ok((item.clone(), None));
    };
    let Some(written) = table.get("name") else {
        return Ok((item.clone(), None));
    };
    let valid = written.as_str().filter(|name| {
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    let Some(name) = valid else {
        return Err(provenance.key_error(
            written,
            &format!("{path}.name"),
            "must be a lower-case name of letters, digits and `_` (it becomes a column)".into(),
            "write e.g. `name: mode_weights_nearest`".into(),
        ));
    };
    let mut table = table.clone();
    table.remove("name");
    Ok((Value::Dict(*tag, table), Some(name.to_string())))
}

pub(super) fn with_kind(name: &str, params: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("kind".into(), name.into());
    if let serde_json::Value::Object(fields) = params {
        map.extend(fields);
    }
    serde_json::Value::Object(map)
}
