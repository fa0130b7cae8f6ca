//! Reading the plugin slots of one trial's config: `{kind: NAME, ...params}` or `NAME`,
//! the `eval:` list, and which of the file's parameters survive when a sweep or override
//! switches a slot to another plugin.

use figment::value::{Dict, Value};

use crate::config::{ConfigError, Provenance, RawParams};
use crate::dataset::Samples;
use crate::guidance::{Guidance, GuidanceContext};
use crate::registry::{self, Builder, Built, Kind, Plugin};
use crate::schedule::{Schedule, ScheduleContext};
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

/// Reads a plugin slot: `{kind: NAME, ...params}`, or just `NAME` for all defaults.
///
/// When an override or sweep value switches the slot to another plugin than the file's, the
/// file's parameters for that slot are dropped: they were written for the other plugin.
/// When it names the file's own plugin (`sampler=annealed_langevin,other` as an ablation),
/// the file's parameters are kept, so the baseline is the file's tuned sampler.
pub(super) fn plugin_slot<'p>(
    experiment: &Experiment,
    spec: &TrialSpec,
    root: &Dict,
    key: &str,
    kind: Kind,
    provenance: &'p Provenance,
) -> Result<(&'static Plugin, RawParams<'p>), ConfigError> {
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
    let (plugin, mut raw) = plugin_from_value(value, key, kind, provenance)?;
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

/// An optional plugin slot: as [`plugin_slot`] when the experiment has the section, else
/// the plugin `default` with its defaults.
pub(super) fn optional_slot<'p>(
    experiment: &Experiment,
    spec: &TrialSpec,
    root: &Dict,
    key: &str,
    (kind, default): (Kind, &str),
    provenance: &'p Provenance,
) -> Result<(&'static Plugin, RawParams<'p>), ConfigError> {
    if root.get(key).is_some() {
        return plugin_slot(experiment, spec, root, key, kind, provenance);
    }
    let plugin = registry::find(kind, default)
        .map_err(|unknown| provenance.default_error(key, unknown.message(), unknown.fix()))?;
    Ok((plugin, RawParams::new(key, Dict::new(), provenance)))
}

/// The `guidance:` slot (absent: [`DEFAULT_GUIDANCE`]), built for the trial's data and
/// network: the plugin's name and the built guidance.
pub(super) fn guidance_slot(
    experiment: &Experiment,
    spec: &TrialSpec,
    root: &Dict,
    provenance: &Provenance,
    context: &GuidanceContext,
) -> Result<(&'static str, Built<dyn Guidance>), ConfigError> {
    let (plugin, raw) = optional_slot(
        experiment,
        spec,
        root,
        "guidance",
        (Kind::Guidance, DEFAULT_GUIDANCE),
        provenance,
    )?;
    let Builder::Guidance(build) = plugin.build else {
        unreachable!("kind checked")
    };
    Ok((plugin.name, build(&raw, context)?))
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

fn plugin_from_value<'p>(
    value: &Value,
    path: &str,
    kind: Kind,
    provenance: &'p Provenance,
) -> Result<(&'static Plugin, RawParams<'p>), ConfigError> {
    let (name_value, mut dict) = match value {
        Value::String(..) => (value.clone(), Dict::new()),
        Value::Dict(_, dict) => match dict.get("kind") {
            Some(name) => (name.clone(), dict.clone()),
            None => {
                return Err(provenance.key_error(
                    value,
                    &format!("{path}.kind"),
                    "no `kind` given".into(),
                    format!(
                        "add `kind: NAME` with one of the registered {}: {}",
                        kind.plural(),
                        registry::names(kind).join(", ")
                    ),
                ))
            }
        },
        _ => {
            return Err(provenance.key_error(
                value,
                path,
                format!("must be a {kind} name or a table with `kind`"),
                format!("write `{path}: {{kind: NAME, ...}}`"),
            ))
        }
    };
    dict.remove("kind");
    let Some(name) = name_value.as_str() else {
        return Err(provenance.key_error(
            &name_value,
            &format!("{path}.kind"),
            "must be a name".into(),
            format!("write the {kind} name as a string"),
        ));
    };
    let plugin = registry::find(kind, name).map_err(|unknown| {
        provenance.key_error(
            &name_value,
            &format!("{path}.kind"),
            unknown.message(),
            unknown.fix(),
        )
    })?;
    Ok((
        plugin,
        RawParams::new(path, dict, provenance).with_kind_value(name_value.clone()),
    ))
}

/// `eval:` is a list of metric names or `{kind: NAME, ...}` tables (absent: no metrics).
pub(super) fn metric_slots<'p>(
    root: &Dict,
    provenance: &'p Provenance,
) -> Result<Vec<(&'static Plugin, RawParams<'p>)>, ConfigError> {
    match root.get("eval") {
        None => Ok(Vec::new()),
        Some(Value::Array(_, items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                plugin_from_value(item, &format!("eval[{i}]"), Kind::Metric, provenance)
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

pub(super) fn with_kind(name: &str, params: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("kind".into(), name.into());
    if let serde_json::Value::Object(fields) = params {
        map.extend(fields);
    }
    serde_json::Value::Object(map)
}

/// The registered schedules for which `holds` is true, each built with its defaults on a
/// tiny stand-in data set: for errors that list the valid choices (e.g. the discrete
/// schedules a metric needs).
pub fn schedules_where(holds: impl Fn(&dyn Schedule) -> bool) -> Vec<&'static str> {
    let stand_in = Samples::new(1, vec![-1.0, 1.0]);
    let provenance = Provenance::new(std::path::Path::new("(defaults)"), figment::Figment::new());
    registry::plugins(Kind::Schedule)
        .into_iter()
        .filter(|plugin| {
            let Builder::Schedule(build) = plugin.build else {
                return false;
            };
            let raw = RawParams::new("schedule", Dict::new(), &provenance);
            let context = ScheduleContext {
                training_data: &stand_in,
            };
            build(&raw, &context).is_ok_and(|built| holds(built.plugin.as_ref()))
        })
        .map(|plugin| plugin.name)
        .collect()
}
