//! A failing trial fails alone: a diverging sampler, a diverging training run, a failing
//! metric or non-finite data marks its trial (or its training group) failed with a message
//! naming the cause, the other trials run, the tables record status and message, and a
//! rerun retries failed trials but skips finished ones (NaN metrics included).

use std::fs;
use std::path::Path;
use std::process::Command;

use scorelab::plugin::prelude::*;
use scorelab::results::table::{read_parquet, TrialRow};
use scorelab::results::tensorboard::{event_files, read_events, EventValue, FAILURE_TAG};

use crate::common::{sweep, write, SMALL_GMM};

/// A metric whose value is always NaN (a legitimate result, not a failure).
struct NanMetric;

impl Metric for NanMetric {
    fn compute(&self, _: &MetricInput) -> Result<Measured, String> {
        Ok(f64::NAN.into())
    }
}

/// A metric that always fails.
struct FailingMetric;

impl Metric for FailingMetric {
    fn compute(&self, _: &MetricInput) -> Result<Measured, String> {
        Err("the reference set is too small (test)".to_string())
    }
}

fn build_nan(raw: &RawParams, _: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(NanMetric), &params))
}

fn build_failing(raw: &RawParams, _: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(FailingMetric), &params))
}

/// Standard normal points in 2D, every tenth one NaN: data whose parameters pass
/// validation but whose draws are not finite.
struct NanData;

impl Dataset for NanData {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let data = (0..2 * n)
            .map(|i| {
                let x = rng.normal();
                if i % 20 == 0 {
                    f64::NAN
                } else {
                    x
                }
            })
            .collect();
        Samples::new(2, data)
    }
}

fn build_nan_data(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(NanData), &params))
}

/// A loss weighting so large that the weighted loss overflows at the first step (a stand-in
/// for any training divergence; `train.lr` is capped by validation).
struct OverflowWeighting;

impl Weighting for OverflowWeighting {
    fn lambda(&self, _: f64, _: &dyn Schedule) -> f64 {
        f64::INFINITY
    }
}

fn build_overflow(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(OverflowWeighting), &params))
}

inventory::submit! {
    Plugin { name: "test_overflow_weighting", about: "test: infinite lambda", params: NoParams::docs, build: Builder::Weighting(build_overflow) }
}
inventory::submit! {
    Plugin { name: "test_nan_metric", about: "test: always NaN", params: NoParams::docs, build: Builder::Metric(build_nan) }
}
inventory::submit! {
    Plugin { name: "test_failing_metric", about: "test: always fails", params: NoParams::docs, build: Builder::Metric(build_failing) }
}
inventory::submit! {
    Plugin { name: "test_nan_data", about: "test: normal points, some NaN", params: NoParams::docs, build: Builder::Dataset(build_nan_data) }
}

fn metrics_json(root: &Path, row: &TrialRow) -> serde_json::Value {
    let path = root.join("trials").join(&row.trial).join("metrics.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_diverging_sampler_fails_its_trial_alone_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.yaml",
        // eps is capped at 1 by validation; 100 steps of 1 per level overflow even in f64.
        &format!("{SMALL_GMM}sweep:\n  sampler:\n    - {{kind: annealed_langevin, steps_per_level: 5, eps: 0.002}}\n    - {{kind: annealed_langevin, steps_per_level: 100, eps: 1.0}}\n"),
    );
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!((report.rows.len(), report.failed), (2, 1));
    let (good, bad) = (&report.rows[0], &report.rows[1]);
    assert_eq!((good.status.as_str(), good.message.as_str()), ("ok", ""));
    assert!(good.metrics["mode_weights"].is_finite());
    assert!(bad.failed());
    for part in [
        "annealed_langevin",
        "diverged",
        "400 of 400 samples are non-finite",
        "lower the step size (`sampler.eps`, now 1",
    ] {
        assert!(bad.message.contains(part), "{part}: {}", bad.message);
    }
    assert!(bad.metrics.is_empty(), "no metrics of garbage samples");
    assert_eq!(bad.nfe, 5 * 100 + 1, "the evaluations it spent");

    // The tables record status and message; the failed trial's folder has its record.
    let root = results.join("small");
    let csv = fs::read_to_string(root.join("metrics.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("status") && header.contains("message"),
        "{header}"
    );
    assert!(
        csv.contains(",failed,") && csv.contains("diverged"),
        "{csv}"
    );
    let frame = read_parquet(&root.join("metrics.parquet")).unwrap();
    let status = frame.column("status").unwrap().str().unwrap();
    assert_eq!((status.get(0), status.get(1)), (Some("ok"), Some("failed")));
    assert_eq!(metrics_json(&root, bad)["status"], "failed");
    assert!(root
        .join("trials")
        .join(&bad.trial)
        .join("config.yaml")
        .is_file());

    // A rerun skips the finished trial and retries the failed one.
    let again = sweep(&file, &[], &results).unwrap();
    assert_eq!((again.skipped, again.failed), (1, 1));
    assert_eq!(again.rows[0], *good);

    // The runner prints the failures and exits 2 (1 stays for errors that stop a sweep).
    let output = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("sweep")
        .arg(&file)
        .arg("--results")
        .arg(dir.path().join("cli"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 of 2 trials failed; see "), "{stderr}");
    assert!(stderr.contains("metrics.csv"), "{stderr}");
    assert!(
        stdout.contains("failed trials:") && stdout.contains("diverged"),
        "{stdout}"
    );
}

#[test]
fn a_training_divergence_fails_its_group_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.yaml",
        &format!(
            "{SMALL_GMM}sweep:\n  weighting.kind: [sigma_squared, test_overflow_weighting]\n  sampler.steps_per_level: [2, 4]\n"
        ),
    );
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!((report.rows.len(), report.failed), (4, 2));
    for row in &report.rows {
        let diverging = row.axes.iter().any(|(_, v)| v == "test_overflow_weighting");
        assert_eq!(row.failed(), diverging, "{row:?}");
        if diverging {
            for part in [
                "training diverged",
                "at step 1 ",
                "train.lr",
                "shared by 2 trial(s)",
                "weighting `test_overflow_weighting`",
                "or use a weighting with lambda = sigma^2",
            ] {
                assert!(row.message.contains(part), "{part}: {}", row.message);
            }
            // Its HParams session says why, as text beside its FAILURE status.
            let run = results.join("small").join("tb").join(&row.trial);
            let cause: Vec<_> = event_files(&run)
                .unwrap()
                .iter()
                .flat_map(|f| read_events(f).unwrap())
                .filter(|e| e.tag == FAILURE_TAG)
                .map(|e| e.value)
                .collect();
            assert_eq!(cause, vec![EventValue::Text(row.message.clone())]);
        } else {
            assert!(row.metrics["fd"].is_finite());
        }
    }
    let models = fs::read_dir(results.join("small").join("models"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(models, 1, "no checkpoint of the diverged model");
}

#[test]
fn non_finite_training_data_is_reported_as_a_data_error() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SMALL_GMM
        .replace(
            "  kind: gmm\n  means: [[-5.0, -5.0], [5.0, 5.0]]\n  stds: [1.0, 1.0]\n  weights: [0.8, 0.2]\n",
            "  kind: test_nan_data\n",
        )
        .replace("sigma_max: auto", "sigma_max: 5.0")
        .replace("eval: [fd, mmd, mode_weights]", "eval: [fd]");
    assert!(yaml.contains("test_nan_data"));
    let file = write(dir.path(), "nan.yaml", &yaml);
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    assert_eq!(report.failed, 1);
    let message = &report.rows[0].message;
    for part in [
        "data error",
        "`data` section",
        "test_nan_data",
        "non-finite",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(!message.contains("train.lr"), "{message}");
}

#[test]
fn a_failing_metric_keeps_the_other_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SMALL_GMM.replace(
        "eval: [fd, mmd, mode_weights]",
        "eval: [fd, test_failing_metric, mode_weights]",
    );
    let file = write(dir.path(), "metric.yaml", &yaml);
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!(report.failed, 1);
    let row = &report.rows[0];
    assert!(row.metrics["fd"].is_finite() && row.metrics["mode_weights"].is_finite());
    assert!(row.metrics["test_failing_metric"].is_nan());
    assert!(
        row.message.contains("metric `test_failing_metric` failed")
            && row.message.contains("too small (test)"),
        "{}",
        row.message
    );
    let stored = metrics_json(&results.join("metric"), row);
    assert_eq!(stored["metrics"]["test_failing_metric"], "NaN");
    assert_eq!(stored["status"], "failed");
}

#[test]
fn finished_trials_with_nan_metrics_are_skipped_on_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SMALL_GMM.replace(
        "eval: [fd, mmd, mode_weights]",
        "eval: [fd, test_nan_metric]",
    );
    let file = write(dir.path(), "nan.yaml", &yaml);
    let results = dir.path().join("results");
    let first = sweep(&file, &[], &results).unwrap();
    assert_eq!(first.failed, 0, "a NaN value is a result, not a failure");
    assert!(first.rows[0].metrics["test_nan_metric"].is_nan());
    let root = results.join("nan");
    let mut stored = metrics_json(&root, &first.rows[0]);
    assert_eq!(stored["metrics"]["test_nan_metric"], "NaN");

    let again = sweep(&file, &[], &results).unwrap();
    assert_eq!(again.skipped, 1, "found finished");
    assert!(again.rows[0].metrics["test_nan_metric"].is_nan());
    assert_eq!(again.rows[0].metrics["fd"], first.rows[0].metrics["fd"]);

    // A metrics.json from before status existed, with NaN written as null, reads as ok.
    let object = stored.as_object_mut().unwrap();
    object.remove("status");
    object.remove("message");
    object["metrics"]["test_nan_metric"] = serde_json::Value::Null;
    let path = root
        .join("trials")
        .join(&first.rows[0].trial)
        .join("metrics.json");
    fs::write(&path, serde_json::to_string(&stored).unwrap()).unwrap();
    let old = sweep(&file, &[], &results).unwrap();
    assert_eq!((old.skipped, old.failed), (1, 0));
    assert_eq!(old.rows[0].status, "ok");
    assert!(old.rows[0].metrics["test_nan_metric"].is_nan());
}

#[test]
fn non_finite_metric_values_round_trip_through_json() {
    let text = r#"{"trial": "t", "label": "l", "train_id": "m", "axes": [],
        "metrics": {"a": 1.5, "b": "NaN", "c": "inf", "d": "-inf", "e": null},
        "nfe": 1, "train_seconds": 0.0, "sample_seconds": 0.0, "metric_seconds": 0.0,
        "sigma_max": 1.0, "sigma_min": 0.1}"#;
    let row: TrialRow = serde_json::from_str(text).unwrap();
    assert_eq!(row.status, "ok");
    assert_eq!(row.metrics["a"], 1.5);
    assert!(row.metrics["b"].is_nan() && row.metrics["e"].is_nan());
    assert_eq!(row.metrics["c"], f64::INFINITY);
    assert_eq!(row.metrics["d"], f64::NEG_INFINITY);
    let written = serde_json::to_value(&row).unwrap();
    assert_eq!(written["metrics"]["b"], "NaN");
    assert_eq!(written["metrics"]["e"], "NaN");
    assert_eq!(written["metrics"]["c"], "inf");
    let back: TrialRow = serde_json::from_value(written).unwrap();
    assert_eq!(back.metrics["d"], f64::NEG_INFINITY);
    let bad = text.replace("\"NaN\"", "\"many\"");
    let error = serde_json::from_str::<TrialRow>(&bad).unwrap_err();
    assert!(error.to_string().contains("metric `b`"), "{error}");
}

#[test]
fn a_finite_runaway_loss_is_divergence_too() {
    // lr = 10 drives the squared error to ~1e16 within a step: finite, but a million times
    // the first step's loss, so the group fails as a non-finite loss would.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "small.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let report = sweep(&file, &["train.lr=10"], &results).unwrap();
    assert_eq!((report.rows.len(), report.failed), (1, 1));
    let message = &report.rows[0].message;
    for part in [
        "training diverged: the loss became",
        "lower `train.lr` (now 10)",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let loss: f64 = message
        .split("the loss became ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap();
    assert!(loss.is_finite() && loss > 1e6, "{loss}");
}

#[test]
fn samples_that_ran_away_fail_their_trial_though_finite() {
    // Langevin steps of 0.3 sigma^2 / sigma_L^2 throw the samples out by ~1e5 in 16
    // evaluations: finite, but a thousand times past sigma_max and the data.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "small.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let overrides = ["sampler.eps=0.3", "sampler.steps_per_level=3"];
    let report = sweep(&file, &overrides, &results).unwrap();
    let row = &report.rows[0];
    assert!(row.failed(), "{row:?}");
    for part in [
        "sampler `annealed_langevin` diverged: 400 of 400 samples are beyond ±",
        "(10^3 × the larger of sigma_max and the data's largest value) after 16 network evaluations",
        "lower the step size (`sampler.eps`, now 0.3",
    ] {
        assert!(row.message.contains(part), "{part}: {}", row.message);
    }
    assert_eq!(row.nfe, 16);
}
