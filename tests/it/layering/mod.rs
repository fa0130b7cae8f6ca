//! The layering check: the modules of `src/` import each other in one direction only, and
//! plugins import only the engine's lower layers, never each other.
//!
//! A module of `src/` is a file or folder directly under it (`src/latent.rs` is `latent`,
//! `src/train/` is `train`); `lib.rs` only declares them and the binaries (`main.rs`,
//! `bin/bench/`) may import anything. An import is any path into another module written in
//! code: `use crate::…`, `use scorelab::…`, grouped forms, `super::…` (resolved from the
//! file's place: in `src/latent.rs` it is the crate root, in `src/train/records.rs` it is
//! `train`) and paths written inline (`crate::config::number(x)`); text in comments and
//! strings is not code.
//!
//! The rules, each reported at the file and line that breaks it, all at once:
//! - [`ORDER`] lists every module, lowest first, with no ties: a module imports only modules
//!   before it. A total order is the simplest rule that rules out every circle; modules that
//!   are peers in the design (sampler, features, metric…) still get a fixed order, which only
//!   says which of them may lean on the other. A module missing from the order is an error.
//! - The engine never names a plugin (`crate::plugins::…`): it finds them in the registry.
//! - A plugin (a file under `plugins/<kind>/`) imports only [`PLUGIN_CEILING`] and the modules
//!   before it, so never the layers that run experiments (`sweep`, `trial`, `evaluate`,
//!   `results`, `run`, `show`, `completions`, `scaffold`, `cli`), and never another plugin,
//!   whether as `scorelab::plugins::…` or as a sibling through `super::`.
//! - Files of one module import each other in no circle, except inside [`LOCAL_CIRCLES`]. A
//!   file re-exporting its children's items (`pub use steps::euler;` in `sampler/mod.rs`)
//!   is their face, not their user, so that alone makes no circle.
//!
//! README.md's Layout section lists the same order; a test keeps the two the same.

mod check;
mod fixtures;
mod scan;

use std::path::Path;

use check::{check, Rule, Rules, Violation};

/// Every module of `src/`, lowest first; each imports only modules before it. README.md's
/// Layout section lists the same order (checked below).
const ORDER: &[&str] = &[
    // Leaves: no engine imports but each other's.
    "crash",
    "interrupt",
    "device",
    "rng",
    "ode",
    "config",
    "artifact",
    "samples",
    "analytic",
    "eval_batch",
    // Contracts: the traits plugins implement and the shared math they use.
    "dataset",
    "images",
    "schedule",
    "network",
    "parameterisation",
    "weighting",
    "nn",
    "optim",
    "latent",
    "sampler",
    "features",
    "metric",
    "guidance",
    // Plugin machinery, then the one training loop.
    "registry",
    "plugin",
    "train",
    // The stages' own training (latent autoencoders, distillation rounds), on that loop.
    "stages",
    // Experiments: resolve trials, run them, write results; the commands on top.
    "sweep",
    "trial",
    "evaluate",
    "results",
    "run",
    "show",
    "completions",
    "scaffold",
    "cli",
];

/// The highest module a plugin may import: plugins train (classifiers, autoencoders) but do
/// not resolve, run or report experiments.
const PLUGIN_CEILING: &str = "train";

/// Folders whose files may import each other in a circle. The override parser's forms,
/// values and ranges are one recursive grammar (a value may be a range of values), so its
/// files call each other by design; the circle stays inside the folder.
const LOCAL_CIRCLES: &[&str] = &["src/config/overrides/"];

const RULES: Rules = Rules {
    order: ORDER,
    plugin_ceiling: PLUGIN_CEILING,
    local_circles: LOCAL_CIRCLES,
};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// All violations as one message, one per line, for a failing assertion.
fn listed(violations: &[Violation]) -> String {
    let lines: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
    format!(
        "{} layering violation(s):\n{}",
        violations.len(),
        lines.join("\n")
    )
}

#[test]
fn the_repository_keeps_its_layers() {
    let violations = check(repository(), &RULES);
    assert!(violations.is_empty(), "{}", listed(&violations));
}

/// The part of the check that holds already: the order names every module of `src/` once,
/// and every folder allowed a circle exists.
#[test]
fn the_order_names_every_module_of_the_repository() {
    let gaps: Vec<Violation> = check(repository(), &RULES)
        .into_iter()
        .filter(|v| v.rule == Rule::Order)
        .collect();
    assert!(gaps.is_empty(), "{}", listed(&gaps));
    for folder in LOCAL_CIRCLES {
        assert!(
            repository().join(folder).is_dir(),
            "{folder} is allowed a circle but does not exist"
        );
    }
}

/// The layer list of README.md's Layout section: the paragraph starting `Layers, lowest
/// first:`, names separated by commas, ending with a full stop.
fn readme_layers(readme: &str) -> Vec<String> {
    let layout = layout_section(readme);
    let start = layout
        .find("Layers, lowest first:")
        .expect("README's Layout section has `Layers, lowest first:`");
    let paragraph = layout[start..].split("\n\n").next().unwrap_or_default();
    let names = paragraph["Layers, lowest first:".len()..]
        .trim()
        .trim_end_matches('.');
    names
        .split(',')
        .map(|name| name.trim().to_string())
        .collect()
}

/// The modules that README.md's Layout tree draws under `src/`, in its order: the first word
/// of each line indented by two spaces, without `.rs` or `/` (the bench binary is no module).
fn readme_tree(readme: &str) -> Vec<String> {
    let layout = layout_section(readme);
    let tree = layout
        .split("```")
        .nth(1)
        .expect("README's Layout section draws the tree in a code block");
    tree.lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| !word.starts_with("bin/"))
        .map(|word| {
            word.trim_end_matches(".rs")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

fn layout_section(readme: &str) -> &str {
    let start = readme
        .find("\n## Layout\n")
        .expect("README.md has a `## Layout` section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    &section[..end]
}

#[test]
fn the_readme_lists_the_same_order() {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("read README.md");
    assert_eq!(
        readme_layers(&readme),
        ORDER,
        "README's `Layers, lowest first:` differs from ORDER"
    );
    assert_eq!(
        readme_tree(&readme),
        ORDER,
        "README's Layout tree draws the modules in another order"
    );
}

#[test]
fn the_readme_parsers_see_a_changed_order() {
    let readme = "# x\n\n## Layout\n\nLayers, lowest first: a, b,\nc.\n\n```\nsrc/\n  a.rs   one\n  \
                  c/     three,\n         wrapped\n  bin/bench/  any\n  b.rs   two\n```\n\n## Next\n\n\
                  Layers, lowest first: z.\n";
    assert_eq!(readme_layers(readme), ["a", "b", "c"]);
    assert_eq!(readme_tree(readme), ["a", "c", "b"]);
}
