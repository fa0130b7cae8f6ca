//! Helpers: experiment files written into temporary folders, resolved or run.

use std::path::{Path, PathBuf};

use scorelab::config::ConfigError;
use scorelab::run::{self, RunError, SweepOptions, SweepReport};
use scorelab::sweep::Experiment;
use scorelab::trial::{self, Trial};

/// A small, fast experiment on a 2D two-mode mixture (weights 0.8 / 0.2).
pub const SMALL_GMM: &str = r#"
seed: 3
num_samples: 400
data:
  kind: gmm
  means: [[-5.0, -5.0], [5.0, 5.0]]
  stds: [1.0, 1.0]
  weights: [0.8, 0.2]
schedule: {kind: geometric, num_levels: 5, sigma_max: auto, sigma_min: 0.1}
weighting: {kind: sigma_squared}
network: {kind: mlp, hidden: 32, layers: 2, embedding: 8}
train: {steps: 60, batch_size: 64, train_size: 500, log_every: 10}
sampler: {kind: annealed_langevin, steps_per_level: 5, eps: 0.002}
eval: [fd, mmd, mode_weights]
"#;

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write experiment file");
    path
}

pub fn resolve_file(path: &Path, overrides: &[&str]) -> Result<Vec<Trial>, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let experiment = Experiment::load(path, &overrides)?;
    trial::resolve_all(&experiment)
}

/// Resolves `text` written as a YAML file, with overrides.
pub fn resolve(text: &str, overrides: &[&str]) -> Result<Vec<Trial>, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "exp.yaml", text);
    resolve_file(&path, overrides)
}

/// The error message resolving `text` gives (panics if it resolves).
pub fn resolve_error(text: &str, overrides: &[&str]) -> String {
    match resolve(text, overrides) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

pub fn sweep(file: &Path, overrides: &[&str], results: &Path) -> Result<SweepReport, RunError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let options = SweepOptions {
        results: results.to_path_buf(),
        dry_run: false,
        ..Default::default()
    };
    run::sweep(file, &overrides, &options, &mut std::io::sink())
}

/// Replaces the line starting with `prefix` (after indentation) in `text`.
pub fn replace_line(text: &str, prefix: &str, new_line: &str) -> String {
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with(prefix) {
                found = true;
                new_line.to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(found, "no line starts with {prefix}");
    out.join("\n") + "\n"
}

/// Every path under `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Runs the runner binary with `args`: (exit code, stdout, stderr).
pub fn runner(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .output()
        .expect("run runner");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
