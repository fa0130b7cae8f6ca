//! `runner show`: the base config with the source of every value, and the trials by the
//! keys that vary.

use scorelab::show::{describe, provenance, Provenance};
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

use crate::common::{write, SMALL_GMM};

fn shown(yaml: &str, overrides: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", yaml);
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let experiment = Experiment::load(&file, &overrides).unwrap();
    let trials = resolve_all(&experiment).unwrap();
    describe(&experiment, &trials)
}

/// The source column of `key`'s line.
fn source_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
}

#[test]
fn each_value_names_where_it_came_from() {
    let yaml = format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4]\n");
    let text = shown(&yaml, &["train.lr=0.01", "seed=7"]);
    // The file's value, the command line's, the sweep's and a default.
    assert!(
        source_of(&text, "data.kind").ends_with("experiment file"),
        "{text}"
    );
    assert!(
        source_of(&text, "train.lr").ends_with("command-line override `train.lr=0.01`"),
        "{text}"
    );
    assert!(source_of(&text, "seed").contains("`seed=7`"), "{text}");
    assert!(
        source_of(&text, "sampler.steps_per_level").ends_with("swept in the file: 2, 4"),
        "{text}"
    );
    assert!(
        source_of(&text, "train.ema_decay").ends_with("default"),
        "{text}"
    );
    // `eval: [fd, mmd, mode_weights]` names the metrics; their parameters are defaults.
    assert!(
        source_of(&text, "eval.1.kind").ends_with("experiment file"),
        "{text}"
    );
    assert!(
        source_of(&text, "eval.1.bandwidth").ends_with("default"),
        "{text}"
    );
    assert!(text.contains(": 2 trial(s)"), "{text}");
    let trials: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("trials"))
        .skip(1)
        .collect();
    assert_eq!(trials.len(), 2, "{text}");
    assert!(trials[0].ends_with("steps_per_level=2"), "{text}");
}

#[test]
fn a_plugin_named_by_shorthand_gives_its_kind_the_same_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let experiment = Experiment::load(&file, &["schedule=edm".to_string()]).unwrap();
    let specs = experiment.trials();
    assert_eq!(
        provenance(&specs[0].figment, "schedule.kind"),
        Provenance::Source("command-line override `schedule=edm`".into())
    );
    assert_eq!(
        provenance(&specs[0].figment, "schedule.rho"),
        Provenance::Default
    );
}

#[test]
fn runner_show_prints_sources_and_accepts_hydras_multirun_flag() {
    let root = env!("CARGO_MANIFEST_DIR");
    let file = format!("{root}/experiments/quickstart.yaml");
    let (code, stdout, stderr) = crate::common::runner(&[
        "show",
        &file,
        "-m",
        "weighting=uniform,likelihood",
        "train.lr=0.01",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": 2 trial(s)"), "{stdout}");
    assert!(
        source_of(&stdout, "weighting.kind")
            .ends_with("swept on the command line: uniform, likelihood"),
        "{stdout}"
    );
    assert!(
        source_of(&stdout, "train.lr").contains("`train.lr=0.01`"),
        "{stdout}"
    );
    let (code, _, stderr) = crate::common::runner(&["show", &file, "sampler=anealed"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown sampler `anealed`"), "{stderr}");
}

/// A value an override reset to its default (`key=null`) names that override.
#[test]
fn a_default_restored_by_an_override_names_it() {
    let text = shown(SMALL_GMM, &["weighting=null", "train.lr=null"]);
    let ends = |key: &str, source: &str| {
        let line = source_of(&text, key);
        assert!(line.trim_end().ends_with(source), "{line}");
    };
    ends(
        "weighting.kind",
        "default (command-line override `weighting=null`)",
    );
    ends(
        "train.lr",
        "default (command-line override `train.lr=null`)",
    );
    ends("train.ema_decay", "  default");
}
