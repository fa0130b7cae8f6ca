//! The disk estimate against what sweeps really leave: within a factor of two on shipped
//! experiments (the quickstart as it is; seeds.yaml and images.yaml shortened, which keeps
//! the kinds and counts of their outputs).

use std::path::Path;

use scorelab::results::SweepFolder;
use scorelab::run::disk;

use crate::common::{resolve_file, sweep};

fn folder_bytes(dir: &Path) -> u64 {
    walk(dir).iter().map(|p| p.metadata().unwrap().len()).sum()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Estimate / truth for a shipped experiment run with `overrides`.
fn ratio(name: &str, overrides: &[&str]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(format!("{name}.yaml"));
    let results = dir.path().join("results");
    let trials = resolve_file(&file, overrides).unwrap();
    let estimate = disk::estimate(&SweepFolder::new(&results, name), &trials);
    let report = sweep(&file, overrides, &results).unwrap();
    // What stays (the snapshot is on disk only while its model trains).
    let estimated = estimate.total() - estimate.snapshot;
    let written = folder_bytes(&report.folder.root);
    let ratio = estimated as f64 / written as f64;
    eprintln!("{name}: estimated {estimated} bytes, wrote {written}: ratio {ratio:.2}");
    ratio
}

#[test]
fn the_disk_estimate_is_within_a_factor_of_two_of_what_sweeps_write() {
    for (name, overrides) in [
        ("quickstart", &[][..]),
        ("seeds", &["train.steps=100", "num_samples=300"][..]),
        (
            "images",
            &[
                "train.steps=4",
                "num_samples=32",
                "features.steps=20",
                "train.train_size=256",
            ][..],
        ),
    ] {
        let ratio = ratio(name, overrides);
        assert!(
            (0.5..=2.0).contains(&ratio),
            "{name}: estimate / truth = {ratio:.2}"
        );
    }
}
