//! The registry's side of an override: which keys are plugin slots, and `glob(...)` over
//! the registered plugins of one.

use std::path::Path;

use figment::value::Value;

use crate::config::overrides::{glob_matches, override_error};
use crate::config::ConfigError;
use crate::registry::{self, Kind};

/// The plugin slots of an experiment file and their kinds: `crate::trial::PLUGIN_SLOTS` and
/// `features`. Kept here because the trial module builds on this one (a test holds the two
/// tables equal).
const SLOTS: [(&str, Kind); 8] = [
    ("data", Kind::Dataset),
    ("schedule", Kind::Schedule),
    ("weighting", Kind::Weighting),
    ("network", Kind::Network),
    ("sampler", Kind::Sampler),
    ("guidance", Kind::Guidance),
    ("latent", Kind::Latent),
    ("features", Kind::Features),
];

/// The plugin kind a top-level key chooses, if it is a plugin slot.
pub fn slot_kind(key: &str) -> Option<Kind> {
    SLOTS.iter().find(|(slot, _)| *slot == key).map(|(_, k)| *k)
}

/// `slot=glob(include, exclude=...)` (or `slot.kind=...`): the key `slot.kind` and the names
/// of the slot's registered plugins that match an include pattern and no exclude pattern,
/// in the registry's (alphabetical) order.
pub(super) fn expand_glob(
    file: &Path,
    text: &str,
    key: &str,
    include: &[String],
    exclude: &[String],
) -> Result<(String, Vec<Value>), ConfigError> {
    let slot = key.strip_suffix(".kind").unwrap_or(key);
    let Some(kind) = slot_kind(slot) else {
        let slots: Vec<&str> = SLOTS.iter().map(|(s, _)| *s).collect();
        return Err(override_error(
            file,
            text,
            &format!(
                "glob(...) chooses among the registered plugins of a slot ({}); `{key}` is not one",
                slots.join(", ")
            ),
            &format!("list the values to sweep instead, e.g. {key}=a,b,c"),
        ));
    };
    let names = registry::names(kind);
    let chosen: Vec<Value> = names
        .iter()
        .filter(|name| include.iter().any(|p| glob_matches(p, name)))
        .filter(|name| !exclude.iter().any(|p| glob_matches(p, name)))
        .map(|name| Value::from(name.to_string()))
        .collect();
    if chosen.is_empty() {
        return Err(override_error(
            file,
            text,
            &format!(
                "the pattern matches none of the registered {}: {}",
                kind.plural(),
                names.join(", ")
            ),
            &format!(
                "use a pattern that matches, e.g. {slot}=glob(*) or {slot}=glob(*, exclude=NAME)"
            ),
        ));
    }
    Ok((format!("{slot}.kind"), chosen))
}
