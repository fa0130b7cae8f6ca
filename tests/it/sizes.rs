//! One rule for sizes (issue 25, item 1): every count and size parameter of every plugin is
//! bounded where `params!` declares it (and `runner plugins` shows the bound), each planted
//! absurd size is refused while resolving with its key path and bound, and a memory estimate
//! refuses a sweep that cannot fit before anything runs (under `--jobs`, the groups run at once
//! together), while the shipped experiments fit.

use scorelab::config::{ParamDoc, Params};
use scorelab::registry::{self, Kind};
use scorelab::rng::{Rng, Stream};
use scorelab::run::memory;

use crate::common::{resolve_file, runner};

const QUICKSTART: &str = "experiments/quickstart.yaml";
const IMAGES: &str = "experiments/images.yaml";

/// Whether a parameter's type is a count or size (an integer, a list or option of them).
fn is_count(doc: &ParamDoc) -> bool {
    ["usize", "u64", "u32", "i64", "i32", "CountOrAuto"]
        .iter()
        .any(|t| doc.ty == *t || doc.ty.contains(&format!("<{t}>")))
}

#[test]
fn every_count_and_size_parameter_is_declared_with_a_bound() {
    let mut sections: Vec<(String, Vec<ParamDoc>)> = vec![
        (
            "settings".into(),
            <scorelab::trial::Settings as Params>::docs(),
        ),
        (
            "train".into(),
            <scorelab::train::TrainSettings as Params>::docs(),
        ),
        (
            "distill".into(),
            <scorelab::trial::DistillSettings as Params>::docs(),
        ),
    ];
    for kind in Kind::ALL {
        for plugin in registry::plugins(kind) {
            sections.push((format!("{kind:?} {}", plugin.name), (plugin.params)()));
        }
    }
    let mut counted = 0;
    for (section, docs) in &sections {
        // The seed is an identifier, not a size; `distill.rounds` (a count or `auto`) is
        // bounded by its own check, against `teacher_steps`.
        for doc in docs.iter().filter(|d| is_count(d) && d.name != "seed") {
            counted += 1;
            assert!(
                doc.bound.is_some(),
                "{section}: `{}` ({}) is a count or size without a bound",
                doc.name,
                doc.ty
            );
        }
    }
    assert!(counted > 60, "only {counted} counts found");
    let (code, out, _) = runner(&["plugins", "network"]);
    assert_eq!(code, 0);
    let hidden = out
        .lines()
        .find(|l| l.trim_start().starts_with("hidden"))
        .unwrap();
    assert!(hidden.ends_with("[1..=65536]"), "{hidden}");
}

/// Resolving `file` with `overrides` fails naming `key` and the bound `limit`.
fn assert_bounded(file: &str, override_: &str, key: &str, limit: &str) {
    let message = match resolve_file(std::path::Path::new(file), &[override_]) {
        Ok(_) => panic!("{override_} was accepted"),
        Err(e) => e.to_string(),
    };
    for part in [
        file,
        &format!("key `{key}`"),
        &format!("above the limit of {limit}"),
        "Fix: give a value in",
    ] {
        assert!(
            message.contains(part),
            "{override_}: no `{part}` in: {message}"
        );
    }
}

#[test]
fn each_planted_size_is_refused_with_its_key_path_and_bound() {
    let cases = [
        (
            QUICKSTART,
            "network.hidden=1000000",
            "network.hidden",
            "65536",
        ),
        (
            QUICKSTART,
            "network.layers=1000000",
            "network.layers",
            "1000",
        ),
        (
            QUICKSTART,
            "network.embedding=100000002",
            "network.embedding",
            "65536",
        ),
        (
            IMAGES,
            "network.blocks_per_level=1000000",
            "network.blocks_per_level",
            "1000",
        ),
        (
            IMAGES,
            "network.channel_mult=[1,1000000]",
            "network.channel_mult[1]",
            "64",
        ),
        (
            QUICKSTART,
            "eval=[{kind: sliced_wasserstein, projections: 1000000000}]",
            "eval[0].projections",
            "100000",
        ),
        (
            IMAGES,
            "eval=[{kind: kid, subsets: 1e9}]",
            "eval[0].subsets",
            "100000",
        ),
        (
            IMAGES,
            "features.features=1e9",
            "features.features",
            "65536",
        ),
        (IMAGES, "features.steps=1e12", "features.steps", "1e9"),
        (QUICKSTART, "train.steps=1e12", "train.steps", "1e9"),
    ];
    for (file, override_, key, limit) in cases {
        assert_bounded(file, override_, key, limit);
    }
}

#[test]
fn a_network_too_large_for_memory_is_refused_before_anything_runs() {
    let results = tempfile::tempdir().unwrap();
    let folder = results.path().to_str().unwrap();
    // Within every bound, but 2 × 65536² weights with Adam and EMA are about 160 GiB.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args([
            "sweep",
            QUICKSTART,
            "network.hidden=65536",
            "--results",
            folder,
        ])
        .env(memory::LIMIT_VARIABLE, "64G")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for part in [
        "quickstart.yaml",
        "key `network`",
        "trial 1 (weighting=sigma_squared) needs about 161",
        "64.0 GiB is available (SCORELAB_MEMORY_LIMIT=64G)",
        "Fix: use a smaller `network`",
    ] {
        assert!(stderr.contains(part), "no `{part}` in: {stderr}");
    }
    assert!(
        std::fs::read_dir(results.path()).unwrap().next().is_none(),
        "nothing may be written"
    );
    // The same under --dry-run; `network.hidden=1000000` is refused by its bound.
    for hidden in ["network.hidden=65536", "network.hidden=1000000"] {
        let (code, _, stderr) = runner(&["sweep", QUICKSTART, hidden, "--dry-run"]);
        assert_eq!(code, 1, "{hidden}: {stderr}");
        assert!(stderr.contains("key `network"), "{stderr}");
    }
}

#[test]
fn jobs_that_need_more_memory_together_than_there_is_are_refused_with_the_jobs_that_fit() {
    // The quickstart's two training groups: one fits the limit, both at once do not.
    let trials = resolve_file(std::path::Path::new(QUICKSTART), &[]).unwrap();
    let one = memory::estimate(&trials[0]).total();
    let limit = one + (one - memory::BASELINE) / 2;
    let results = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
            .args(["sweep", QUICKSTART, "train.steps=10", "--jobs", jobs])
            .args(["--results", results.path().to_str().unwrap()])
            .env(memory::LIMIT_VARIABLE, limit.to_string())
            .output()
            .unwrap()
    };
    let refused = run("2");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for part in [
        "quickstart.yaml",
        "--jobs 2 runs 2 training groups at once",
        "Fix: use --jobs 1 or fewer",
    ] {
        assert!(stderr.contains(part), "no `{part}` in: {stderr}");
    }
    assert!(!results.path().join("quickstart/models").exists());
    let one_at_a_time = run("1");
    let stderr = String::from_utf8_lossy(&one_at_a_time.stderr);
    assert_eq!(one_at_a_time.status.code(), Some(0), "{stderr}");
}

#[test]
fn shipped_experiments_fit_a_small_machine_by_the_estimate() {
    let mut files: Vec<_> = std::fs::read_dir("experiments")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for file in files {
        let trials = resolve_file(&file, &[]).unwrap();
        let largest = trials.iter().map(|t| memory::estimate(t).total()).max();
        let largest = largest.unwrap();
        assert!(
            largest > 1 << 16 && largest < 3 << 30,
            "{}: {largest} bytes",
            file.display()
        );
    }
    // A dry run shows the estimate.
    let (code, out, stderr) = runner(&["sweep", QUICKSTART, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("memory: about"), "{out}");
}

/// The parameter count the estimate uses against the network as built.
fn counted_and_built(file: &str, overrides: &[&str]) -> (u64, u64) {
    let trials = resolve_file(std::path::Path::new(file), overrides).unwrap();
    let trial = &trials[0];
    let counted = trial.architecture.footprint().unwrap().parameters;
    let model = trial
        .new_model(&mut Rng::new(0, Stream::NetworkInit))
        .unwrap();
    let variables = model.network().unwrap().variables().all_vars();
    let built = variables.iter().map(|v| v.elem_count() as u64).sum();
    (counted, built)
}

#[test]
fn parameter_counts_of_the_estimate_match_the_built_networks() {
    // The MLP's count is exact, conditional or not.
    for overrides in [&[][..], &["network.layers=1", "network.hidden=7"]] {
        let (counted, built) = counted_and_built(QUICKSTART, overrides);
        assert_eq!(counted, built, "{overrides:?}");
    }
    let (counted, built) =
        counted_and_built(QUICKSTART, &["network.classes=3", "data.labelled=true"]);
    assert_eq!(counted, built, "conditional");
    // The U-Net's is rough: within a factor of 2.
    for overrides in [
        &[][..],
        &["network.blocks_per_level=2", "network.channel_mult=[1,2,2]"],
    ] {
        let (counted, built) = counted_and_built(IMAGES, overrides);
        let ratio = counted as f64 / built as f64;
        assert!(
            (0.5..2.0).contains(&ratio),
            "{overrides:?}: {counted} vs {built}"
        );
    }
}

#[test]
fn memory_limits_are_read_with_units() {
    assert_eq!(memory::parse_bytes("123"), Some(123));
    assert_eq!(memory::parse_bytes("64G"), Some(64 << 30));
    assert_eq!(memory::parse_bytes("1.5k"), Some(1536));
    assert_eq!(memory::parse_bytes("lots"), None);
    assert_eq!(memory::parse_bytes("-1G"), None);
}
