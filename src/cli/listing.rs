//! `runner plugins`: every registered plugin with its parameters, defaults and bounds.

use crate::registry::{self, Kind};
use crate::run::launch;

/// `runner plugins [KIND]`: the listing of one kind, or of all.
pub(super) fn plugins_of(kind: Option<&str>) -> Result<String, String> {
    let kinds = match kind {
        None => Kind::ALL.to_vec(),
        Some(word) => match Kind::parse(word) {
            Some(kind) => vec![kind],
            None => {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                return Err(format!(
                    "unknown plugin kind `{word}`. Fix: use one of {}",
                    names.join(", ")
                ));
            }
        },
    };
    Ok(plugin_listing(&kinds))
}

/// Every plugin of the given kinds with its description and parameters.
pub fn plugin_listing(kinds: &[Kind]) -> String {
    let mut text = String::new();
    for kind in kinds {
        text.push_str(&format!("{}:\n", kind.plural()));
        for plugin in registry::plugins(*kind) {
            text.push_str(&format!("  {:<20} {}\n", plugin.name, plugin.about));
            for param in (plugin.params)() {
                text.push_str(&param_line(&param));
            }
        }
        if *kind == Kind::Network {
            use crate::config::Params;
            text.push_str("  every trainable network also takes (the engine applies them):\n");
            for param in crate::parameterisation::ModelKeys::docs() {
                text.push_str(&param_line(&param));
            }
        }
        text.push('\n');
    }
    if kinds.len() > 1 {
        text.push_str(&settings_listing());
    }
    text
}

fn settings_listing() -> String {
    use crate::config::Params;
    let mut text = String::from("settings (not plugins):\n");
    for (section, docs) in [
        ("(top level)", crate::trial::Settings::docs()),
        ("train", crate::train::TrainSettings::docs()),
        ("distill", crate::trial::DistillSettings::docs()),
        ("launcher", launch::LauncherSettings::docs()),
    ] {
        text.push_str(&format!("  {section}\n"));
        for param in docs {
            text.push_str(&param_line(&param));
        }
    }
    text
}

/// One parameter: name, type, default and meaning.
fn param_line(param: &crate::config::ParamDoc) -> String {
    format!(
        "      {:<18} {:<14} default {:<12} {}{}\n",
        param.name,
        param.ty,
        param.default,
        param.doc,
        param
            .bound
            .as_ref()
            .map_or(String::new(), |b| format!(" [{b}]"))
    )
}
