//! One sweep at a time per results folder: a live holder's lock stops a second sweep at once
//! (naming the folder and the holder, writing nothing), a dead holder's lock is taken over,
//! the lock is gone after the sweep; leftovers of killed runs are removed at a sweep's start;
//! written files honour the umask.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use scorelab::run::RunError;

use crate::common::{listing, sweep, write, SMALL_GMM};

fn lock_text(pid: u32) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("pid={pid}\nhost={}\nstarted=1796000000\n", host.trim())
}

/// A pid no process can have: above the kernel's limit.
fn dead_pid() -> u32 {
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1
}

/// This process's umask, from /proc/self/status.
fn current_umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask line");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

#[test]
fn a_held_lock_stops_a_second_sweep_naming_folder_and_holder() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    fs::create_dir_all(&folder).unwrap();
    // This test process is alive: the lock is held.
    fs::write(folder.join(".lock"), lock_text(std::process::id())).unwrap();
    let before = listing(&results);

    let err = match sweep(&file, &[], &results) {
        Ok(_) => panic!("a second sweep ran into a locked folder"),
        Err(e) => e,
    };
    assert!(matches!(err, RunError::Locked { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&folder.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(message.contains("2026-11-30 00:53:20 UTC"), "{message}");
    assert!(message.contains("--results"), "{message}");
    assert_eq!(listing(&results), before, "a refused sweep wrote files");
    // The holder's lock is untouched.
    assert_eq!(
        fs::read_to_string(folder.join(".lock")).unwrap(),
        lock_text(std::process::id())
    );
}

#[test]
fn a_dead_holders_lock_is_taken_over_and_removed_after_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join(".lock"), lock_text(dead_pid())).unwrap();

    let mut out = Vec::new();
    let options = scorelab::run::SweepOptions {
        results: results.clone(),
        dry_run: false,
        ..Default::default()
    };
    let report = scorelab::run::sweep(&file, &[], &options, &mut out).unwrap();
    assert_eq!(report.failed, 0);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("taking over the stale lock"), "{out}");
    assert!(out.contains(&format!("pid {}", dead_pid())), "{out}");
    assert!(
        !folder.join(".lock").exists(),
        "the lock outlived the sweep"
    );
}

#[test]
fn the_lock_is_released_after_a_sweep_and_after_a_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    sweep(&file, &[], &results).unwrap();
    assert!(!results.join("exp/.lock").exists());
    // A sweep stopped by an error (its plots folder is a file) releases it too.
    fs::remove_dir_all(results.join("exp/plots")).unwrap();
    fs::write(results.join("exp/plots"), "not a folder").unwrap();
    assert!(sweep(&file, &[], &results).is_err());
    assert!(!results.join("exp/.lock").exists());
}

#[test]
fn a_dry_run_takes_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join(".lock"), lock_text(std::process::id())).unwrap();
    let options = scorelab::run::SweepOptions {
        results: results.clone(),
        dry_run: true,
        ..Default::default()
    };
    scorelab::run::sweep(&file, &[], &options, &mut std::io::sink()).unwrap();
}

#[test]
fn a_sweep_removes_leftovers_of_killed_runs_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    sweep(&file, &[], &results).unwrap();
    let folder = results.join("exp");

    let stale = [
        folder.join("plots/.plot-a1B2c3.png"),
        folder.join("plots/.plot-x9Y8z7.tmp"),
        folder.join(".tmpAbC123"),
        folder.join("trials/.tmpQwErTy"),
        folder.join("invocations/.tmpInV123"),
        folder.join("tb/.tmpHpArAm"),
        folder.join("tb/some-trial-0123456789/.tmpEvEnTs"),
    ];
    fs::create_dir_all(folder.join("tb/some-trial-0123456789")).unwrap();
    for path in &stale {
        fs::write(path, "torn").unwrap();
    }
    let stale_dirs = [
        folder.join("trials/.partial-gone-1234abcd"),
        folder.join("models/.partial-gone-5678ef01"),
        folder.join("features/.partial-classifier-gone-4321"),
    ];
    for path in &stale_dirs {
        fs::create_dir_all(path).unwrap();
        fs::write(path.join("samples.csv"), "x,y\n").unwrap();
    }
    // Names that only look alike are kept.
    let kept = [
        folder.join("plots/my.plot-notes.png"),
        folder.join("notes.tmp"),
        folder.join("trials/partial-notes.txt"),
        folder.join("invocations/notes.tmp"),
        folder.join("tb/notes.tmp"),
    ];
    for path in &kept {
        fs::write(path, "mine").unwrap();
    }

    sweep(&file, &[], &results).unwrap();
    for path in stale.iter().chain(&stale_dirs) {
        assert!(!path.exists(), "{} was left", path.display());
    }
    for path in &kept {
        assert!(path.exists(), "{} was removed", path.display());
    }
}

#[test]
fn written_files_honour_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    sweep(&file, &[], &results).unwrap();
    let expected = 0o666 & !current_umask();
    let folder = results.join("exp");
    let trial = fs::read_dir(folder.join("trials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let model = fs::read_dir(folder.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let files = [
        folder.join("metrics.csv"),
        folder.join("metrics.parquet"),
        folder.join("experiment.yaml"),
        trial.join("samples.csv"),
        trial.join("metrics.json"),
        trial.join("config.yaml"),
        trial.join("samples.png"),
        model.join("model.safetensors"),
        model.join("history.json"),
    ];
    for path in &files {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            expected,
            "{} has mode {mode:o}, not {expected:o}",
            path.display()
        );
    }
}

#[test]
fn a_stale_lock_that_cannot_be_removed_says_why_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    fs::create_dir_all(&folder).unwrap();
    let lock = folder.join(".lock");
    fs::write(&lock, lock_text(dead_pid())).unwrap();
    // Another user's lock in a shared folder cannot be removed; an immutable file stands in
    // for it (tests run as root, whom permissions do not stop). Without `chattr` (a file
    // system without attributes) there is nothing to plant.
    let immutable = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&lock)
        .status();
    if !immutable.is_ok_and(|s| s.success()) {
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    struct Mutable<'a>(&'a std::path::Path);
    impl Drop for Mutable<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0)
                .status();
        }
    }
    let _guard = Mutable(&lock);
    let options = scorelab::run::SweepOptions {
        results: results.clone(),
        dry_run: false,
        ..Default::default()
    };
    let message = match scorelab::run::sweep(&file, &[], &options, &mut Vec::new()) {
        Ok(_) => panic!("a sweep ran beside a lock it could not remove"),
        Err(e) => e.to_string(),
    };
    for part in [
        "has a stale lock",
        &format!("pid {}", dead_pid()),
        "is no longer running",
        "cannot be removed: Operation not permitted",
        &format!("belongs to user id {}", {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(&lock).unwrap().uid()
        }),
        "to delete the lock, or write elsewhere with --results DIR",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(!message.contains("kept changing hands"), "{message}");
}
