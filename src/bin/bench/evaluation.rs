//! What one score evaluation of the images.yaml U-Net costs at a sampler's batch sizes (a
//! whole batch at one noise level, no gradient), ours beside PyTorch's twin
//! (`benches/reference.py --evaluate`) with `--pytorch`, both on one thread.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor};
use scorelab::network::ScoreModel;
use scorelab::rng::Rng;

use crate::runs::root;
use crate::workloads::{trial, workload};

/// Batch sizes timed: a small and a large sampling batch.
pub const BATCHES: [usize; 2] = [64, 256];

/// Milliseconds per evaluation of our U-Net on `batch` images, over `evaluations` after one
/// untimed warm-up.
fn ours(batch: usize, evaluations: usize) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let overrides = ["train.steps=1".to_string(), "device=cpu".to_string()];
    let trial = trial(dir.path(), true, &overrides)?;
    let model = trial
        .new_model(&mut Rng::from_seed(0))
        .map_err(|e| e.to_string())?;
    let dim = trial.dataset.dim();
    let e = |e: candle_core::Error| e.to_string();
    let x = Tensor::from_vec(
        Rng::from_seed(1).normal_f32(batch * dim),
        (batch, dim),
        &Device::Cpu,
    )
    .map_err(e)?;
    let sigma = Tensor::full(0.7f32, (batch, 1), &Device::Cpu).map_err(e)?;
    model.score(&x, &sigma).map_err(e)?;
    let start = Instant::now();
    for _ in 0..evaluations {
        model.score(&x, &sigma).map_err(e)?.detach();
    }
    Ok(1000.0 * start.elapsed().as_secs_f64() / evaluations as f64)
}

/// PyTorch's milliseconds per evaluation of the same U-Net on `batch` images.
fn pytorch(python: &Path, batch: usize, evaluations: usize) -> Result<f64, String> {
    let reference = workload("unet")?.reference;
    // The workload's arguments without its training batch.
    let position = reference.iter().position(|a| *a == "--batch");
    let arguments = match position {
        Some(i) => [&reference[..i], &reference[i + 2..]].concat(),
        None => reference.to_vec(),
    };
    let output = Command::new(python)
        .arg(root().join("benches/reference.py"))
        .args(arguments)
        .args([
            "--batch",
            &batch.to_string(),
            "--evaluate",
            &evaluations.to_string(),
        ])
        .args(["--threads", "1"])
        .output()
        .map_err(|e| format!("cannot run the PyTorch U-Net: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        format!("the PyTorch U-Net printed `{line}`, not its JSON result ({e}): {stderr}")
    })?;
    value["ms_per_evaluation"]
        .as_f64()
        .ok_or_else(|| format!("the PyTorch U-Net's result has no ms_per_evaluation: {line}"))
}

/// Prints the table: ms per evaluation at each of [`BATCHES`], ours, PyTorch's and their
/// ratio (PyTorch's time over ours: above 1, ours is faster).
pub fn run(python: Option<&Path>, evaluations: usize) -> Result<(), String> {
    println!("\n| U-Net score evaluation, one thread | batch | ours ms | PyTorch ms | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for batch in BATCHES {
        eprintln!("timing the unet's score evaluation at batch {batch}");
        let ours = ours(batch, evaluations)?;
        let (theirs, ratio) = match python {
            Some(python) => {
                let theirs = pytorch(python, batch, evaluations)?;
                (format!("{theirs:.2}"), format!("{:.2}x", theirs / ours))
            }
            None => ("-".to_string(), "-".to_string()),
        };
        println!("| unet 16ch [1,2] 1x16x16 | {batch} | {ours:.2} | {theirs} | {ratio} |");
    }
    Ok(())
}
