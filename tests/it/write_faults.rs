//! Write faults met in the middle of a sweep, made real: a folder where a checkpoint must be
//! written, a table that cannot be replaced, files past `ulimit -f` and a TensorBoard folder
//! that takes no files. Each stops the sweep with the cause and its fix, keeps what a rerun
//! needs (a training is resumed, not failed) and leaves no `.lock` or `.tmp*` behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use scorelab::run::{Fault, RunError};

use crate::common::{listing, sweep, write, SMALL_GMM};

/// Trains 200 steps with a checkpoint every 50.
const CHECKPOINTED: [&str; 2] = ["train.steps=200", "checkpoint_every=50"];

/// The error of a sweep that must fail.
fn failed(file: &Path, overrides: &[&str], results: &Path) -> RunError {
    match sweep(file, overrides, results) {
        Ok(_) => panic!("the sweep ran"),
        Err(e) => e,
    }
}

/// The only model folder a finished sweep in `folder` holds.
fn model_id(folder: &Path) -> String {
    let models: Vec<_> = fs::read_dir(folder.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('.'))
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    models[0].clone()
}

/// `.lock` and `.tmp*` files left anywhere under `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    listing(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name == ".lock" || name.starts_with(".tmp")
        })
        .collect()
}

/// Sets or clears the immutable attribute; false where `chattr` is missing or refused (a
/// filesystem without attributes).
fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Clears the immutable attribute when dropped, so a failed assertion leaves a removable
/// temporary folder.
struct Mutable<'a>(&'a Path);

impl Drop for Mutable<'_> {
    fn drop(&mut self) {
        chattr("-i", self.0);
    }
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_the_sweep_resumably() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let clean = sweep(&file, &CHECKPOINTED, &dir.path().join("clean")).unwrap();
    let id = model_id(&clean.folder.root);

    let results = dir.path().join("faulty");
    let in_the_way = results.join(format!("exp/models/{id}.checkpoint.safetensors"));
    fs::create_dir_all(&in_the_way).unwrap();
    let error = failed(&file, &CHECKPOINTED, &results);
    let message = error.to_string();
    match &error {
        RunError::Write { fault, .. } => assert_eq!(
            *fault,
            Fault::FolderInTheWay {
                folder: in_the_way.clone()
            },
            "{message}"
        ),
        other => panic!("not a write error: {other}"),
    }
    for part in [
        &in_the_way.display().to_string(),
        "is a folder, but the sweep writes a file there",
        "stopped after step 50 of 200",
        "a rerun resumes",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    // The trial is not failed: nothing of it is saved, and the rerun trains it.
    assert!(!results.join("exp/trials").exists());
    assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));

    fs::remove_dir(&in_the_way).unwrap();
    let rerun = sweep(&file, &CHECKPOINTED, &results).unwrap();
    assert_eq!(rerun.failed, 0);
    assert_eq!(rerun.rows[0].metrics["fd"], clean.rows[0].metrics["fd"]);
}

#[test]
fn a_table_that_cannot_be_replaced_is_named_rather_than_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    sweep(&file, &[], &results).unwrap();
    let table = results.join("exp/metrics.csv");
    if !chattr("+i", &table) {
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    let _guard = Mutable(&table);
    let message = failed(&file, &["sampler.eps=0.001"], &results).to_string();
    for part in [
        &format!("cannot write {}", table.display()),
        "cannot be replaced, although its folder takes new files",
        "chattr -i",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert!(!message.contains("may not write in"), "{message}");
}

#[test]
fn a_tensorboard_folder_that_takes_no_files_is_found_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let tb = results.join("exp/tb");
    fs::create_dir_all(&tb).unwrap();
    if !chattr("+i", &tb) {
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    let _guard = Mutable(&tb);
    let message = failed(&file, &[], &results).to_string();
    assert!(
        message.contains(&format!("cannot write {}/.tmp-preflight", tb.display())),
        "{message}"
    );
    assert!(
        !results.join("exp/models").exists(),
        "trained before failing"
    );
}

#[test]
fn files_past_the_size_limit_stop_with_the_cause_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    // 100 KiB (bash counts in KiB): the trial fits, the charts and the report do not.
    let script = format!(
        "ulimit -f 100 && exec '{}' sweep '{}' --results '{}'",
        env!("CARGO_BIN_EXE_runner"),
        file.display(),
        results.display()
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Killed by SIGXFSZ, the status would be absent (a signal) and the message missing.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for part in ["File too large", "ulimit -f unlimited"] {
        assert!(stderr.contains(part), "`{part}` missing from: {stderr}");
    }
    assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));
    // Without the limit, the rerun finishes from the trial already saved.
    let rerun = sweep(&file, &[], &results).unwrap();
    assert_eq!((rerun.skipped, rerun.failed), (1, 0));
}
