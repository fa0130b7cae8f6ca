//! The files of a new plugin crate, from the templates under `templates/` (data, not code:
//! each plugin template compiles once its placeholders are filled, which CI checks by building
//! every kind). Placeholders: `__NAME__` (the plugin's name), `__TYPE__` (its name in
//! CamelCase), `__KIND__` (its kind), and in Cargo.toml `__DEPENDENCIES__` and `__PROFILES__`.

use crate::registry::Kind;

/// What a plugin of one kind needs: its template, the experiment lines that use it, and
/// whether its file uses candle-nn (networks and autoencoders hold weights).
pub struct KindTemplate {
    pub plugin: &'static str,
    /// Lines of templates/crate/experiment.yaml.txt replaced (by their key) or added.
    pub experiment: &'static [&'static str],
    pub needs_candle_nn: bool,
}

const TRAINED_MLP: &str = "network: {kind: mlp, hidden: 32, layers: 2}";

/// The template of `kind`.
pub fn for_kind(kind: Kind) -> KindTemplate {
    let (plugin, experiment, needs_candle_nn): (&str, &[&str], bool) = match kind {
        Kind::Dataset => (
            include_str!("../../templates/plugin/dataset.rs.txt"),
            &["data: {kind: __NAME__}", TRAINED_MLP],
            false,
        ),
        Kind::Schedule => (
            include_str!("../../templates/plugin/schedule.rs.txt"),
            &["schedule: {kind: __NAME__, sigma_min: 0.05, sigma_max: 8.0}"],
            false,
        ),
        Kind::Weighting => (
            include_str!("../../templates/plugin/weighting.rs.txt"),
            &["weighting: {kind: __NAME__}", TRAINED_MLP],
            false,
        ),
        Kind::Network => (
            include_str!("../../templates/plugin/network.rs.txt"),
            &["network: {kind: __NAME__, hidden: 32}"],
            true,
        ),
        Kind::Sampler => (
            include_str!("../../templates/plugin/sampler.rs.txt"),
            &["sampler: {kind: __NAME__}"],
            false,
        ),
        Kind::Metric => (
            include_str!("../../templates/plugin/metric.rs.txt"),
            &["eval: [fd, __NAME__]"],
            false,
        ),
        Kind::Features => (
            include_str!("../../templates/plugin/features.rs.txt"),
            &["features: {kind: __NAME__}", "eval: [fd, fid]"],
            false,
        ),
        Kind::Guidance => (
            include_str!("../../templates/plugin/guidance.rs.txt"),
            &["guidance: {kind: __NAME__, scale: 1.5}"],
            false,
        ),
        Kind::Latent => (
            include_str!("../../templates/plugin/latent.rs.txt"),
            &["latent: {kind: __NAME__, steps: 200}", TRAINED_MLP],
            true,
        ),
        Kind::Predictor => (
            include_str!("../../templates/plugin/predictor.rs.txt"),
            &["sampler: {kind: pc, steps: 20, predictor: __NAME__, corrector: none}"],
            false,
        ),
        Kind::Corrector => (
            include_str!("../../templates/plugin/corrector.rs.txt"),
            &["sampler: {kind: pc, steps: 20, predictor: reverse_diffusion, corrector: __NAME__}"],
            false,
        ),
    };
    KindTemplate {
        plugin,
        experiment,
        needs_candle_nn,
    }
}

pub const CARGO_TOML: &str = include_str!("../../templates/crate/Cargo.toml.txt");
pub const MAIN: &str = include_str!("../../templates/crate/main.rs.txt");
pub const TEST: &str = include_str!("../../templates/crate/test.rs.txt");
const EXPERIMENT: &str = include_str!("../../templates/crate/experiment.yaml.txt");

/// The experiment that runs a plugin of `kind`: the base file with the kind's lines in place
/// of those with the same key.
pub fn experiment(kind: Kind) -> String {
    let lines = for_kind(kind).experiment;
    let key = |line: &str| line.split(':').next().unwrap_or("").to_string();
    let mut text = String::new();
    for line in EXPERIMENT.lines() {
        match lines
            .iter()
            .find(|l| !line.starts_with('#') && key(l) == key(line))
        {
            Some(replacement) => text.push_str(replacement),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    for line in lines {
        if !EXPERIMENT.lines().any(|l| key(l) == key(line)) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// `text` with the placeholders of a plugin named `name` of `kind`.
pub fn render(text: &str, kind: Kind, name: &str) -> String {
    text.replace("__NAME__", name)
        .replace("__TYPE__", &camel_case(name))
        .replace("__KIND__", kind.name())
}

/// `my_sampler` → `MySampler`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// The `[profile.*]` sections of a Cargo.toml, as written (comments inside them included),
/// one blank line between them.
pub fn profiles(manifest: &str) -> String {
    let mut sections: Vec<String> = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            inside = line.starts_with("[profile.");
            if inside {
                sections.push(String::new());
            }
        }
        if let Some(section) = sections.last_mut().filter(|_| inside) {
            section.push_str(line);
            section.push('\n');
        }
    }
    let sections: Vec<&str> = sections.iter().map(|s| s.trim_end()).collect();
    match sections.is_empty() {
        true => String::new(),
        false => format!("{}\n", sections.join("\n\n")),
    }
}

/// The line `crate = ...` of a Cargo.toml's `[dependencies]` section.
pub fn dependency_line<'a>(manifest: &'a str, krate: &str) -> Option<&'a str> {
    let mut inside = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            inside = line.trim() == "[dependencies]";
        } else if inside && line.split('=').next().map(str::trim) == Some(krate) {
            return Some(line.trim());
        }
    }
    None
}
