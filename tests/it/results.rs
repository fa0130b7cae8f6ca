//! The results of a sweep: tables read back, event files parse, plots and checkpoints
//! exist, finished trials are skipped on a rerun, and numbers are reproducible.

use std::fs;
use std::path::Path;

use scorelab::results::table::read_parquet;
use scorelab::results::tensorboard::{event_files, read_events, EventValue};

use crate::common::{sweep, write, SMALL_GMM};

fn experiment(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "small.yaml",
        &format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4]\n"),
    )
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_sweep_writes_tables_plots_checkpoints_and_event_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!(report.rows.len(), 2);
    let root = results.join("small");

    // One row per trial, with the swept key and every metric as columns.
    let frame = read_parquet(&root.join("metrics.parquet")).unwrap();
    assert_eq!(frame.height(), 2);
    for column in [
        "trial",
        "sampler.steps_per_level",
        "fd",
        "mmd",
        "mode_weights",
        "nfe",
        "train_seconds",
        "sample_seconds",
    ] {
        assert!(
            frame.column(column).is_ok(),
            "missing column {column}: {:?}",
            frame.get_column_names()
        );
    }
    // An integer axis is an integer column, as pandas and polars should read it.
    let steps = frame.column("sampler.steps_per_level").unwrap();
    assert_eq!(steps.dtype(), &polars::prelude::DataType::Int64);
    assert_eq!(steps.i64().unwrap().get(1), Some(4));
    let nfe: Vec<u64> = report.rows.iter().map(|r| r.nfe).collect();
    assert_eq!(nfe, vec![5 * 2 + 1, 5 * 4 + 1]);
    let csv = fs::read_to_string(root.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + 2 rows");

    // A sampler-only sweep trains one model; its checkpoint carries the config.
    assert_eq!(count_entries(&root.join("models")), 1);
    let model = root.join("models").join(&report.rows[0].train_id);
    let bytes = fs::read(model.join("model.safetensors")).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let config = metadata.metadata().as_ref().unwrap().get("config").unwrap();
    assert!(
        config.contains("\"mlp\"") && config.contains("\"gmm\""),
        "{config}"
    );
    assert!(model.join("history.json").is_file() && model.join("loss.csv").is_file());

    for row in &report.rows {
        let trial = root.join("trials").join(&row.trial);
        for name in ["config.yaml", "metrics.json", "samples.png", "samples.csv"] {
            assert!(
                trial.join(name).is_file(),
                "{name} missing in {}",
                trial.display()
            );
        }
        // The trial's events, and its HParams session in a file of its own.
        let files = event_files(&root.join("tb").join(&row.trial)).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[1].to_string_lossy().ends_with(".scorelab-session"));
        let events = read_events(&files[0]).unwrap();
        let tags: Vec<&str> = events.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(
            tags.iter().filter(|t| **t == "train/loss").count(),
            6,
            "60 steps, every 10"
        );
        assert!(tags.iter().any(|t| t.starts_with("train/level_loss/")));
        let fd = events.iter().find(|e| e.tag == "metrics/fd").unwrap();
        assert_eq!(fd.value, EventValue::Scalar(row.metrics["fd"] as f32));
        // The scatter: 500 wide, 500 high or more where its title wraps.
        assert!(events.iter().any(|e| matches!(
            e.value,
            EventValue::Image {
                width: 500,
                height: 500..,
                ..
            }
        )));
    }
    for plot in [
        "fd_vs_steps_per_level",
        "mode_weights_vs_steps_per_level",
        "nfe_vs_steps_per_level",
        "loss_curves",
        "level_loss",
    ] {
        assert!(
            root.join("plots").join(format!("{plot}.png")).is_file(),
            "{plot}.png"
        );
        assert!(
            root.join("plots").join(format!("{plot}.svg")).is_file(),
            "{plot}.svg"
        );
    }
    assert!(root.join("experiment.yaml").is_file());
}

#[test]
fn reruns_skip_finished_trials_and_other_overrides_keep_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let results = dir.path().join("results");
    let first = sweep(&file, &[], &results).unwrap();
    assert_eq!(first.skipped, 0);
    let again = sweep(&file, &[], &results).unwrap();
    assert_eq!(again.skipped, 2);
    assert_eq!(first.rows, again.rows);

    // The same config reached another way (one value fixed instead of swept) is found too.
    let fixed = sweep(&file, &["sampler.steps_per_level=4"], &results).unwrap();
    assert_eq!(fixed.skipped, 1);
    assert_eq!(fixed.rows[0].metrics, first.rows[1].metrics);
    assert_eq!(fixed.rows[0].label, "base");

    let other = sweep(&file, &["sampler.eps=0.001"], &results).unwrap();
    assert_eq!(other.skipped, 0);
    let trials = results.join("small").join("trials");
    assert_eq!(
        count_entries(&trials),
        4,
        "the earlier trials are still there"
    );
    assert_eq!(
        count_entries(&results.join("small").join("models")),
        1,
        "the model was reused"
    );
}

#[test]
fn same_config_and_seed_give_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let a = sweep(&file, &[], &dir.path().join("a")).unwrap();
    let b = sweep(&file, &[], &dir.path().join("b")).unwrap();
    for (x, y) in a.rows.iter().zip(&b.rows) {
        assert_eq!(x.metrics, y.metrics);
        assert_eq!(x.trial, y.trial);
    }
    let c = sweep(&file, &["seed=4"], &dir.path().join("c")).unwrap();
    assert_ne!(
        a.rows[0].metrics, c.rows[0].metrics,
        "another seed gives other numbers"
    );
}

#[test]
fn dry_run_prints_every_resolved_trial_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let results = dir.path().join("results");
    let mut out = Vec::new();
    let options = scorelab::run::SweepOptions {
        results: results.clone(),
        dry_run: true,
        ..Default::default()
    };
    scorelab::run::sweep(&file, &[], &options, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("[1/2] steps_per_level=2"), "{text}");
    assert!(text.contains("[2/2] steps_per_level=4"), "{text}");
    assert!(
        text.contains("final_denoise: true"),
        "defaults are shown: {text}"
    );
    assert!(!results.exists());
}

/// NFE is charted against a swept key only where it varies: against the weighting it is one
/// flat line, and no chart is drawn.
#[test]
fn a_flat_nfe_gets_no_chart() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "weights.yaml",
        &format!("{SMALL_GMM}sweep:\n  weighting.kind: [sigma_squared, uniform]\n"),
    );
    let results = dir.path().join("results");
    sweep(&file, &[], &results).unwrap();
    let plots = results.join("weights").join("plots");
    assert!(plots.join("fd_vs_weighting.png").is_file());
    let nfe_charts = fs::read_dir(&plots)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("nfe_vs")
        })
        .count();
    assert_eq!(nfe_charts, 0);
}

#[test]
fn plugin_tables_become_typed_kind_and_parameter_columns_beside_a_long_table() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "tables.yaml",
        &format!(
            "{SMALL_GMM}sweep:\n  sampler:\n    - {{kind: annealed_langevin, steps_per_level: 2}}\n    - {{kind: euler, steps: 5}}\n"
        ),
    );
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    let root = results.join("tables");
    let frame = read_parquet(&root.join("metrics.parquet")).unwrap();
    use polars::prelude::DataType;
    let kind = frame.column("sampler.kind").unwrap();
    assert_eq!(kind.dtype(), &DataType::String);
    let kinds: Vec<_> = (0..2).map(|i| kind.str().unwrap().get(i)).collect();
    assert_eq!(kinds, vec![Some("annealed_langevin"), Some("euler")]);
    // Each parameter is its own typed column, empty where the plugin has none.
    let steps = frame.column("sampler.steps").unwrap();
    assert_eq!(steps.dtype(), &DataType::Int64);
    let steps: Vec<_> = (0..2).map(|i| steps.i64().unwrap().get(i)).collect();
    assert_eq!(steps, vec![None, Some(5)]);
    let per_level = frame.column("sampler.steps_per_level").unwrap();
    assert_eq!(per_level.i64().unwrap().get(0), Some(2));
    assert!(
        frame.column("sampler").is_err(),
        "no text column of whole tables"
    );

    // The long table: one row per trial and figure, with units and protocols.
    let long = read_parquet(&root.join("metrics_long.parquet")).unwrap();
    let names: Vec<&str> = long.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["trial", "metric", "value", "unit", "protocol"]);
    let per_trial = report.rows[0].metrics.len() + 4;
    assert_eq!(long.height(), 2 * per_trial);
    let metric = long.column("metric").unwrap().str().unwrap();
    let value = long.column("value").unwrap().f64().unwrap();
    let unit = long.column("unit").unwrap().str().unwrap();
    let trial = long.column("trial").unwrap().str().unwrap();
    for (i, row) in report.rows.iter().enumerate() {
        let at = |name: &str| {
            (0..long.height())
                .find(|&j| trial.get(j) == Some(&row.trial) && metric.get(j) == Some(name))
                .unwrap_or_else(|| panic!("{name} of trial {i}"))
        };
        assert_eq!(value.get(at("fd")), Some(row.metrics["fd"]));
        assert_eq!(value.get(at("nfe")), Some(row.nfe as f64));
        assert_eq!(unit.get(at("nfe")), Some("evaluations"));
        assert_eq!(unit.get(at("train_seconds")), Some("s"));
        let protocol = long.column("protocol").unwrap().str().unwrap();
        assert!(
            protocol.get(at("fd")).unwrap().contains("samples=400"),
            "{:?}",
            protocol.get(at("fd"))
        );
    }
}
