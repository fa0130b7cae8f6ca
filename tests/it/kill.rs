//! Kill anywhere, lose nothing: the runner is killed at named points (mid-training, while
//! writing a training checkpoint, a model, a trial, the tables, a plot, the experiment
//! record) and after timed delays, then rerun; the final table must equal an uninterrupted
//! run's, finished work must not be redone, and no file may be torn or left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use polars::prelude::{CsvReadOptions, CsvWriter, SerReader, SerWriter};
use scorelab::results::TrialRow;

/// Two models (learning rates) times two samplers; checkpoints every 40 of 120 steps.
const EXPERIMENT: &str = r#"
seed: 5
num_samples: 300
checkpoint_every: 40
data:
  kind: gmm
  means: [[-4.0, 0.0], [4.0, 0.0]]
  stds: [1.0, 1.0]
  weights: [0.5, 0.5]
schedule: {kind: geometric, num_levels: 4, sigma_max: auto, sigma_min: 0.1}
weighting: {kind: sigma_squared}
network: {kind: mlp, hidden: 16, layers: 2, embedding: 8}
train: {steps: 120, batch_size: 32, train_size: 300, log_every: 20}
sampler: {kind: annealed_langevin, steps_per_level: 4, eps: 0.002}
eval: [fd, mode_weights]
sweep:
  train.lr: [0.001, 0.002]
  sampler.steps_per_level: [3, 6]
"#;

pub(crate) struct Run {
    _dir: tempfile::TempDir,
    file: PathBuf,
    results: PathBuf,
}

impl Run {
    pub(crate) fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let file = crate::common::write(dir.path(), "killed.yaml", EXPERIMENT);
        let results = dir.path().join("results");
        Run {
            _dir: dir,
            file,
            results,
        }
    }

    pub(crate) fn folder(&self) -> PathBuf {
        self.results.join("killed")
    }

    pub(crate) fn command(&self, kill_at: Option<&str>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
        command
            .arg("sweep")
            .arg(&self.file)
            .arg("--results")
            .arg(&self.results)
            .env_remove(scorelab::crash::VARIABLE)
            .env_remove(scorelab::crash::SIGNAL_VARIABLE);
        if let Some(point) = kill_at {
            command.env(scorelab::crash::VARIABLE, point);
        }
        command
    }

    fn run(&self, kill_at: Option<&str>) -> Output {
        self.command(kill_at).output().expect("start the runner")
    }

    /// Runs to the end and returns its stdout.
    pub(crate) fn finish(&self) -> String {
        let output = self.run(None);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "rerun failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// What must not change across kills: per trial, its status, NFE and every metric value
/// (timings excluded, and the invocations that asked for it: each rerun is one), from the
/// table and from the trial folders.
pub(crate) fn outcome(folder: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut table = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(folder.join("metrics.csv")))
        .and_then(|reader| reader.finish())
        .expect("metrics.csv reads");
    let timings: Vec<String> = table
        .get_column_names()
        .into_iter()
        .filter(|name| name.ends_with("seconds") || name.as_str() == "invocation")
        .map(|name| name.to_string())
        .collect();
    table = table.drop_many(timings);
    let mut text = Vec::new();
    CsvWriter::new(&mut text).finish(&mut table).unwrap();
    found.insert("metrics.csv".to_string(), String::from_utf8(text).unwrap());
    for entry in std::fs::read_dir(folder.join("trials")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(path.join("metrics.json"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let row: TrialRow = serde_json::from_str(&text).expect("metrics.json parses");
        found.insert(
            row.trial.clone(),
            format!("{} nfe={} {:?}", row.status, row.nfe, row.metrics),
        );
    }
    found
}

pub(crate) fn reference() -> &'static BTreeMap<String, String> {
    static REFERENCE: OnceLock<(Run, BTreeMap<String, String>)> = OnceLock::new();
    &REFERENCE
        .get_or_init(|| {
            let run = Run::new();
            run.finish();
            let outcome = outcome(&run.folder());
            (run, outcome)
        })
        .1
}

/// Every file under `folder`, with checks that none is torn or left over.
pub(crate) fn check_files(folder: &Path) {
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                !(name.starts_with(".partial-")
                    || name.starts_with(".tmp")
                    || name.starts_with(".plot-")
                    || name.ends_with(".checkpoint.safetensors")
                    || name == ".lock"),
                "left over after a finished rerun: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = || std::fs::read_to_string(&path).unwrap();
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    serde_json::from_str::<serde_json::Value>(&text())
                        .unwrap_or_else(|e| panic!("torn {}: {e}", path.display()));
                }
                Some("yaml") => {
                    serde_yaml::from_str::<serde_yaml::Value>(&text())
                        .unwrap_or_else(|e| panic!("torn {}: {e}", path.display()));
                }
                Some("safetensors") => {
                    let bytes = std::fs::read(&path).unwrap();
                    safetensors::SafeTensors::deserialize(&bytes)
                        .unwrap_or_else(|e| panic!("torn {}: {e}", path.display()));
                }
                Some("png") => {
                    let bytes = std::fs::read(&path).unwrap();
                    assert!(
                        bytes.starts_with(b"\x89PNG") && bytes.ends_with(b"IEND\xaeB`\x82"),
                        "torn {}",
                        path.display()
                    );
                }
                _ => {}
            }
        }
    }
}

fn model_files(folder: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let Ok(entries) = std::fs::read_dir(folder.join("models")) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| {
            let folder = e.ok()?.path();
            if folder.file_name()?.to_str()?.starts_with('.') {
                return None;
            }
            let path = folder.join("model.safetensors");
            let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
            Some((path, modified))
        })
        .collect()
}

/// Kills the runner the `nth` time it passes `point`, reruns it, and checks the result.
/// Returns the rerun's output.
fn kill_and_resume(point: &str, nth: usize) -> String {
    let run = Run::new();
    let killed = run.run(Some(&format!("{point}:{nth}")));
    assert!(
        killed.status.code().is_none(),
        "the runner was not killed at {point}:{nth} (status {:?}): {}",
        killed.status,
        String::from_utf8_lossy(&killed.stderr)
    );
    let models_before = model_files(&run.folder());
    let stdout = run.finish();
    // Models saved before the kill are loaded, not trained again.
    let models_after = model_files(&run.folder());
    for (path, modified) in &models_before {
        assert_eq!(
            models_after.get(path),
            Some(modified),
            "{} was rewritten after {point}:{nth}",
            path.display()
        );
    }
    assert_eq!(
        &outcome(&run.folder()),
        reference(),
        "results differ after a kill at {point}:{nth}"
    );
    check_files(&run.folder());
    stdout
}

fn skipped(stdout: &str) -> usize {
    stdout.matches("finished earlier, skipped").count()
}

#[test]
fn killed_mid_training_resumes_from_its_checkpoint() {
    // Step 50 of the first model: its checkpoint at step 40 is resumed.
    let stdout = kill_and_resume("train.step", 50);
    assert!(
        stdout.contains("from its checkpoint at step 40 of 120"),
        "{stdout}"
    );
    // The second model, 50 steps in after the first finished (120 steps): the first is
    // loaded, not trained again (checked by kill_and_resume), the second resumed.
    let stdout = kill_and_resume("train.step", 170);
    assert!(
        stdout.contains("from its checkpoint at step 40 of 120"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("resuming").count(), 1, "{stdout}");
}

#[test]
fn killed_while_checkpointing() {
    // Before the second checkpoint's write: the first (step 40) is intact and resumed.
    let stdout = kill_and_resume("checkpoint.write", 2);
    assert!(stdout.contains("at step 40 of 120"), "{stdout}");
    let stdout = kill_and_resume("checkpoint.written", 2);
    assert!(stdout.contains("at step 80 of 120"), "{stdout}");
}

#[test]
fn killed_while_saving_a_model() {
    // Before the finished model's folder is renamed into place: resumed from step 80.
    let stdout = kill_and_resume("model.save", 1);
    assert!(stdout.contains("at step 80 of 120"), "{stdout}");
    // After: the model is loaded (its file is not rewritten) and its stale checkpoint goes.
    let stdout = kill_and_resume("model.saved", 1);
    assert!(!stdout.contains("resuming"), "{stdout}");
}

#[test]
fn killed_while_saving_trials() {
    assert_eq!(skipped(&kill_and_resume("trial.save", 1)), 0);
    assert_eq!(skipped(&kill_and_resume("trial.saved", 1)), 1);
    assert_eq!(skipped(&kill_and_resume("trial.saved", 3)), 3);
    // While the second trial's scatter is written.
    assert_eq!(skipped(&kill_and_resume("plot.write", 2)), 1);
}

#[test]
fn killed_while_writing_tables_plots_and_the_record() {
    // Plot writes 1-4 are the trials' scatters; 5 on are the sweep's charts.
    for (point, nth) in [
        ("tables", 1),
        ("plot.write", 5),
        ("plot.write", 6),
        ("experiment", 1),
    ] {
        // Every trial was finished before these points.
        assert_eq!(skipped(&kill_and_resume(point, nth)), 4, "{point}:{nth}");
    }
}

#[test]
fn killed_at_random_moments_converges_to_the_same_table() {
    let run = Run::new();
    let mut kills = 0;
    // Delays spread over a run (about a second and a half in release on a busy machine);
    // each kill lands wherever the run happens to be. A run that ends by itself must have
    // succeeded (a finished folder makes later runs quick, so the list repeats shorter).
    for delay_ms in [120, 260, 410, 90, 530, 330, 700, 180, 60, 30, 15, 45] {
        let mut child = run
            .command(None)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success() || output.status.code().is_none(),
            "a run failed by itself: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    run.finish();
    assert!(kills > 0, "no run was killed: the runner finished too fast");
    assert_eq!(&outcome(&run.folder()), reference());
    check_files(&run.folder());
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_says_how_to_resume() {
    let run = Run::new();
    let child = run
        .command(None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // The machine was fast enough to finish first: nothing to check.
        return;
    }
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    if stderr.contains("the stop came during the last trial") {
        // It reached the last trial first: the sweep ran to its end (tests/it/signals.rs
        // checks that case); nothing is left to resume.
        return;
    }
    assert!(
        stderr.contains("interrupted:") && stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    run.finish();
    assert_eq!(&outcome(&run.folder()), reference());
    check_files(&run.folder());
}

/// The trial ids `experiment.yaml` lists (None without one) and those of `metrics.csv`.
fn record_and_table_ids(folder: &Path) -> (Option<Vec<String>>, Vec<String>) {
    let recorded = std::fs::read_to_string(folder.join("experiment.yaml"))
        .ok()
        .map(|text| {
            let record: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            record["trials"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect()
        });
    let table = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(folder.join("metrics.csv")))
        .and_then(|reader| reader.finish())
        .unwrap();
    let ids = table.column("trial").unwrap().str().unwrap().clone();
    let tabled = ids.iter().map(|id| id.unwrap().to_string()).collect();
    (recorded, tabled)
}

#[test]
fn the_record_never_describes_other_tables_than_those_beside_it() {
    let run = Run::new();
    run.finish();
    let (recorded, first) = record_and_table_ids(&run.folder());
    assert_eq!(recorded.as_ref(), Some(&first));
    // Another sweep into the same folder (another seed), killed after its trials but before
    // its tables: the first sweep's tables stay. Killed after its tables, before its record:
    // the tables are the second sweep's. Either way no record contradicts them.
    for (point, tables_replaced) in [("tables:1", false), ("experiment:1", true)] {
        let mut command = run.command(Some(point));
        command.arg("seed=6");
        assert!(command.output().unwrap().status.code().is_none());
        let (recorded, tabled) = record_and_table_ids(&run.folder());
        assert_eq!(recorded, None, "{point}");
        assert_eq!(tabled != first, tables_replaced, "{point}");
    }
    let mut command = run.command(None);
    command.arg("seed=6");
    assert!(command.output().unwrap().status.success());
    let (recorded, tabled) = record_and_table_ids(&run.folder());
    assert_eq!(recorded.as_ref(), Some(&tabled));
    assert_ne!(tabled, first);
}

#[test]
fn a_trial_folder_missing_a_file_is_done_again() {
    let run = Run::new();
    run.finish();
    let trials = run.folder().join("trials");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&trials)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    // What a concurrent or killed run could once leave: a trial folder without its config,
    // and one without its samples.
    std::fs::remove_file(folders[0].join("config.yaml")).unwrap();
    std::fs::remove_file(folders[1].join("samples.csv")).unwrap();
    let stdout = run.finish();
    assert_eq!(skipped(&stdout), 2, "{stdout}");
    assert!(folders[0].join("config.yaml").is_file());
    assert!(folders[1].join("samples.csv").is_file());
    assert_eq!(&outcome(&run.folder()), reference());
}

#[test]
fn a_trial_has_the_same_numbers_whatever_order_the_sweep_runs_it_in() {
    let forward = Run::new();
    forward.finish();
    let backward = Run::new();
    let mut command = backward.command(None);
    command.args(["train.lr=0.002,0.001", "sampler.steps_per_level=6,3"]);
    assert!(command.output().unwrap().status.success());
    // By the config hash that ends each trial id (the labels list the axes in sweep order).
    let per_trial = |folder: &Path| -> BTreeMap<String, String> {
        outcome(folder)
            .into_iter()
            .filter(|(id, _)| id != "metrics.csv")
            .map(|(id, result)| (id.rsplit('-').next().unwrap().to_string(), result))
            .collect()
    };
    assert_eq!(per_trial(&forward.folder()), per_trial(&backward.folder()));
}
