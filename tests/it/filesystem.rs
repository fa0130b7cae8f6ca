//! Filesystem faults and containment. A failed write is reported by its cause (full disk,
//! quota, read-only filesystem, permission, a file where a folder must be, a name too long)
//! with that cause's fix; a results folder that cannot take the sweep is reported before
//! any training; the experiment's `name` (or file name) and the trial labels cannot lead
//! outside the results folder, and trial folder names stay short whatever is swept.
//!
//! These tests run as root too (as in CI), where permission bits do not stop writes: the
//! faults made real here are a file where a folder must be (ENOTDIR, EEXIST), an over-long
//! name (ENAMETOOLONG) and a disk with less free space than the sweep needs; full disks,
//! read-only filesystems and denied permissions are checked through their OS error codes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use scorelab::plugin::prelude::*;
use scorelab::run::RunError;

use crate::common::{listing, resolve_error, resolve_file, sweep, write, SMALL_GMM};

// Linux error numbers (asm-generic/errno-base.h, errno.h).
const EPERM: i32 = 1;
const EIO: i32 = 5;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const ENOSPC: i32 = 28;
const EROFS: i32 = 30;
const ENAMETOOLONG: i32 = 36;
const EDQUOT: i32 = 122;

fn sweep_error(file: &Path, overrides: &[&str], results: &Path) -> RunError {
    match sweep(file, overrides, results) {
        Ok(_) => panic!("the sweep ran"),
        Err(e) => e,
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

/// The message of the classified error for `code` met writing `path`.
fn message_for(path: &Path, code: i32) -> String {
    RunError::from_write(path, io::Error::from_raw_os_error(code)).to_string()
}

#[test]
fn write_errors_are_classified_by_cause_with_the_right_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results").join("exp").join("metrics.csv");
    let shown = path.display().to_string();
    let holder = dir.path().display().to_string();

    let full = message_for(&path, ENOSPC);
    assert_mentions(
        &full,
        &[
            &shown,
            "No space left",
            "the disk holding",
            &holder,
            "is full",
        ],
    );
    assert_mentions(&full, &["free space", "--results DIR"]);
    assert!(!full.contains("writable"), "{full}");

    let quota = message_for(&path, EDQUOT);
    assert_mentions(&quota, &[&shown, "quota", "is used up", "--results DIR"]);

    let read_only = message_for(&path, EROFS);
    assert_mentions(
        &read_only,
        &[&shown, "read-only filesystem", &holder, "--results DIR"],
    );
    assert!(!read_only.contains("is full"), "{read_only}");

    for code in [EACCES, EPERM] {
        let denied = message_for(&path, code);
        assert_mentions(
            &denied,
            &[
                &shown,
                "may not write in",
                &holder,
                "chmod",
                "--results DIR",
            ],
        );
    }

    // Anything else keeps the general advice.
    let other = message_for(&path, EIO);
    assert_mentions(
        &other,
        &[&shown, "Input/output error", "writable", "--results"],
    );

    // An error of a table or plot writer that quotes the OS error is classified by it.
    let quoted = format!("parquet: {}", io::Error::from_raw_os_error(ENOSPC));
    let message = RunError::from_write(&path, quoted).to_string();
    assert_mentions(&message, &["(os error 28)", "the disk holding", "is full"]);
    let unquoted = RunError::from_write(&path, "the encoder failed".to_string()).to_string();
    assert_mentions(&unquoted, &["the encoder failed", "writable"]);
}

#[test]
fn a_name_too_long_names_the_name_and_what_to_shorten() {
    let dir = tempfile::tempdir().unwrap();
    let long = "L".repeat(300);
    let path = dir.path().join(&long).join("trials");
    // A real ENAMETOOLONG from the OS, and one built from its code.
    let real = fs::create_dir_all(&path).unwrap_err();
    assert_eq!(real.raw_os_error(), Some(ENAMETOOLONG));
    for message in [
        RunError::from_write(&path, real).to_string(),
        message_for(&path, ENAMETOOLONG),
    ] {
        assert_mentions(
            &message,
            &[
                &format!("`{}…`", "L".repeat(60)),
                "is 300 bytes",
                "255",
                "`name`",
                "swept values",
            ],
        );
        assert!(!message.contains("writable"), "{message}");
    }
    // The name too long may lie below the path being written, quoted in the error.
    let plots = dir.path().join("plots");
    let chart = format!("chart_{}.png", "C".repeat(294));
    let quoted = io::Error::new(
        io::ErrorKind::InvalidFilename,
        format!(
            "cannot write {}: File name too long",
            plots.join(&chart).display()
        ),
    );
    let message = RunError::from_write(&plots, quoted).to_string();
    assert_mentions(
        &message,
        &[&format!("`chart_{}…`", "C".repeat(54)), "is 304 bytes"],
    );
}

#[test]
fn a_file_where_a_folder_must_be_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("results");
    fs::write(&blocker, "not a folder").unwrap();
    let path = blocker.join("exp").join("trials");
    let real = fs::create_dir_all(&path).unwrap_err();
    assert_eq!(real.raw_os_error(), Some(ENOTDIR));
    for message in [
        RunError::from_write(&path, real).to_string(),
        message_for(&path, ENOTDIR),
    ] {
        assert_mentions(
            &message,
            &[
                &format!("{} is a file, not a folder", blocker.display()),
                "move or rename that file",
                "--results DIR",
            ],
        );
    }
}

#[test]
fn a_results_path_that_is_a_file_stops_the_sweep_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    fs::write(&results, "a file, not a folder").unwrap();
    let before = listing(dir.path());

    let err = sweep_error(&file, &[], &results);
    assert!(matches!(err, RunError::Write { .. }), "{err}");
    assert_mentions(
        &err.to_string(),
        &[
            &format!("{} is a file, not a folder", results.display()),
            "--results DIR",
        ],
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "nothing may be written anywhere"
    );
    assert_eq!(
        fs::read_to_string(&results).unwrap(),
        "a file, not a folder"
    );

    // The sweep's own folder a file: the file is named as being where a folder must be.
    let results = dir.path().join("results2");
    fs::create_dir(&results).unwrap();
    fs::write(results.join("exp"), "x").unwrap();
    let message = sweep_error(&file, &[], &results).to_string();
    assert_mentions(
        &message,
        &[
            &format!(
                "{} is a file, but a folder must be there",
                results.join("exp").display()
            ),
            "--results DIR",
        ],
    );
}

#[test]
fn the_preflight_finds_a_file_where_a_sweep_folder_must_be_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("trials"), "in the way").unwrap();
    let before = listing(&results);

    let message = sweep_error(&file, &[], &results).to_string();
    assert_mentions(
        &message,
        &[
            &format!(
                "{} is a file, but a folder must be there",
                folder.join("trials").display()
            ),
            "--results DIR",
        ],
    );
    // Nothing trained, nothing written; the lock and the probe are gone.
    assert_eq!(listing(&results), before);
}

#[test]
fn the_preflight_refuses_a_sweep_larger_than_the_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let free = fs4::available_space(dir.path()).unwrap();
    // 200 trials sharing one model and one data set; each writes its samples as text,
    // estimated at 20 bytes a value. Pick the sample count that makes them outgrow the disk.
    let trials = 200u64;
    let num_samples = free / (trials * 2 * 19) + 1;
    if num_samples > 20_000_000 {
        eprintln!("skipped: {free} bytes free is too much to outgrow in a quick test");
        return;
    }
    let eps: Vec<String> = (0..trials)
        .map(|i| format!("{}", 0.001 + i as f64 * 1e-6))
        .collect();
    let text = crate::common::replace_line(SMALL_GMM, "eval:", "eval: [fd]")
        .replace("num_samples: 400", &format!("num_samples: {num_samples}"))
        + &format!("sweep:\n  sampler.eps: [{}]\n", eps.join(", "));
    let file = write(dir.path(), "big.yaml", &text);

    let err = sweep_error(&file, &[], &results);
    assert!(matches!(err, RunError::Write { .. }), "{err}");
    let folder = results.join("big");
    assert_mentions(
        &err.to_string(),
        &[
            &format!("cannot write {}", folder.display()),
            "free on its disk, but this sweep will write about",
            "--no-space-check skips this estimate",
            "free space on the disk holding",
            "--results DIR",
            "`num_samples`",
        ],
    );
    // Refused before anything was trained or written.
    assert_eq!(listing(&folder), Vec::<PathBuf>::new());
}

#[test]
fn a_name_that_is_not_one_plain_folder_name_is_refused() {
    let cases: [(&str, &str); 9] = [
        ("../x", "it contains `/`"),
        ("'..'", "the folder above the results folder"),
        ("'.'", "the results folder itself"),
        ("''", "it is empty"),
        ("'a\\b'", "it contains `\\`"),
        ("\"a\\0b\"", "control character"),
        ("\"tab\\there\"", "control character"),
        ("-rf", "starts with `-`"),
        (".hidden", "starts with `.`"),
    ];
    for (value, reason) in cases {
        let message = resolve_error(&format!("{SMALL_GMM}name: {value}\n"), &[]);
        assert_mentions(
            &message,
            &[
                "exp.yaml",
                "`name`",
                "plain folder name",
                reason,
                "letters, digits",
            ],
        );
    }
    let long = "n".repeat(101);
    let message = resolve_error(&format!("{SMALL_GMM}name: {long}\n"), &[]);
    assert_mentions(&message, &["`name`", "101 bytes", "more than 100"]);
    assert!(
        crate::common::resolve(&format!("{SMALL_GMM}name: {}\n", "n".repeat(100)), &[]).is_ok()
    );
    // Also as an override.
    let message = resolve_error(SMALL_GMM, &["name=../../etc"]);
    assert_mentions(&message, &["`name`", "it contains `/`"]);
}

#[test]
fn a_name_leading_outside_the_results_folder_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", &format!("{SMALL_GMM}name: ../x\n"));
    let results = dir.path().join("results");
    let before = listing(dir.path());
    let message = sweep_error(&file, &[], &results).to_string();
    assert_mentions(&message, &["`name`", "outside the results folder"]);
    assert_eq!(listing(dir.path()), before);
    assert!(!dir.path().join("x").exists());
}

#[test]
fn a_file_stem_that_is_not_a_folder_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The stem of `...yaml` is `..`: the results folder's parent.
    let file = write(dir.path(), "...yaml", SMALL_GMM);
    let message = match resolve_file(&file, &[]) {
        Ok(_) => panic!("`..` accepted as the results folder's name"),
        Err(e) => e.to_string(),
    };
    assert_mentions(
        &message,
        &[
            "`name`",
            "named after the experiment file",
            "`..`",
            "rename the experiment file",
        ],
    );
    // `name:` fixes it.
    assert!(resolve_file(
        &write(dir.path(), "...yaml", &format!("{SMALL_GMM}name: fine\n")),
        &[]
    )
    .is_ok());
    // The stem obeys `name:`'s rules: no spaces, shell syntax or leading `-`.
    for (stem, problem) in [
        ("my exp", "it contains ` `"),
        ("$(touch PWN)", "it contains `$`"),
        ("-x", "starts with `-`"),
    ] {
        let file = write(dir.path(), &format!("{stem}.yaml"), SMALL_GMM);
        let message = match resolve_file(&file, &[]) {
            Ok(_) => panic!("`{stem}` accepted as the results folder's name"),
            Err(e) => e.to_string(),
        };
        assert_mentions(
            &message,
            &["named after the experiment file", problem, "set `name:`"],
        );
    }
    assert!(resolve_file(&write(dir.path(), "my_exp-2.yaml", SMALL_GMM), &[]).is_ok());
}

params! {
    /// Parameters of `test_tagged_points`.
    pub struct TaggedParams {
        /// Any text; it changes nothing but the config (and so the trial labels).
        tag: String = String::new(),
    }
}

/// Standard normal points in 2D, whatever the tag.
struct TaggedPoints;

impl Dataset for TaggedPoints {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        Samples::new(2, (0..2 * n).map(|_| rng.normal()).collect())
    }
}

fn build_tagged(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = TaggedParams::from_raw(raw)?;
    Ok(Built::new(Box::new(TaggedPoints), &params))
}

inventory::submit! {
    Plugin { name: "test_tagged_points", about: "test: normal points with a free-text tag", params: TaggedParams::docs, build: Builder::Dataset(build_tagged) }
}

#[test]
fn long_swept_values_give_short_folder_names_inside_the_results_folder() {
    // Two 300-byte values alike in their first 250 bytes, with path separators and `..`.
    let a = format!("../{}/a", "x".repeat(294));
    let b = format!("../{}/b", "x".repeat(294));
    let text = format!(
        "{SMALL_GMM}sweep:\n  data:\n    - {{kind: test_tagged_points, tag: '{a}'}}\n    - {{kind: test_tagged_points, tag: '{b}'}}\n"
    )
    .replace("eval: [fd, mmd, mode_weights]", "eval: [fd]");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tags.yaml", &text);
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!((report.rows.len(), report.failed), (2, 0));

    let root = results.join("tags");
    let ids: Vec<&str> = report.rows.iter().map(|r| r.trial.as_str()).collect();
    assert_ne!(ids[0], ids[1], "cut labels are kept apart by the hash");
    for id in &ids {
        assert!(id.len() <= 91, "{} bytes: {id}", id.len());
        assert!(
            !id.contains('/') && !id.contains('\\') && !id.starts_with('.'),
            "{id}"
        );
        assert!(root.join("trials").join(id).join("metrics.json").is_file());
        assert!(root.join("tb").join(id).is_dir());
    }
    // Everything the sweep wrote is inside its folder, with names the filesystem takes.
    assert_eq!(
        listing(dir.path())
            .iter()
            .filter(|p| !p.starts_with(&root))
            .count(),
        2
    );
    for path in listing(&root) {
        let name = path.file_name().unwrap().len();
        assert!(name <= 255, "{name} bytes: {}", path.display());
    }
}

#[test]
fn long_swept_values_beside_a_sampler_sweep_give_chart_names_the_filesystem_takes() {
    // The quality-vs-NFE charts are named after the swept values outside the sampler.
    let a = format!("{}a", "x".repeat(299));
    let b = format!("{}b", "x".repeat(299));
    let text = format!(
        "{SMALL_GMM}sweep:\n  data:\n    - {{kind: test_tagged_points, tag: '{a}'}}\n    - {{kind: test_tagged_points, tag: '{b}'}}\n  sampler.steps_per_level: [2, 3]\n"
    )
    .replace("eval: [fd, mmd, mode_weights]", "eval: [fd]")
    .replace("steps: 60", "steps: 10");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tags.yaml", &text);
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!((report.rows.len(), report.failed), (4, 0));
    let plots = results.join("tags").join("plots");
    let charts: Vec<PathBuf> = listing(&plots)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("quality_vs_nfe_fd"))
        .collect();
    assert_eq!(charts.len(), 4, "{charts:?}");
}
