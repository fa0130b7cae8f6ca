//! What one score evaluation of the U-Nets costs at a sampler's batch sizes (a whole batch at
//! one noise level, no gradient), ours (`bench --evaluate-worker`) beside PyTorch's twin
//! (`benches/reference.py --evaluate`) with `--pytorch`, A/B per round, each in a child
//! process on the thread counts asked for.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use scorelab::network::ScoreModel;
use scorelab::rng::Rng;

use crate::number;
use crate::runs::{self, threads_text, threads_title, with_threads, Compared, Run};
use crate::training::{parameters, workload, Workload};
use crate::workloads::print_result;

/// The U-Nets timed: the workload, its batch sizes, and the option that sets how many
/// evaluations a run times (and its default). The CIFAR-sized one costs about 45 times the
/// images.yaml one per image (4.4–5 s at batch 256 on one thread), so it is timed fewer times.
const TIMED: [(&str, &[usize], (&str, usize)); 2] = [
    ("unet", &[64, 256], ("--evaluations", 10)),
    ("unet-cifar", &[64, 256], ("--cifar-evaluations", 2)),
];

/// Times `count` evaluations of the workload's network on `batch` items (after one untimed
/// warm-up) and prints one JSON line: ms_per_evaluation, peak_rss_mib, parameters.
pub fn run_worker(name: &str, batch: usize, count: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let trial = workload(name)?.trial(dir.path(), &["train.steps=1".to_string()])?;
    let (model, parameters) = parameters(&trial)?;
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
    for _ in 0..count {
        model.score(&x, &sigma).map_err(e)?.detach();
    }
    let seconds = start.elapsed().as_secs_f64();
    print_result(serde_json::json!({
        "evaluations": count,
        "batch": batch,
        "seconds": seconds,
        "ms_per_evaluation": 1000.0 * seconds / count as f64,
        "parameters": parameters,
    }));
    Ok(())
}

/// One round at one batch and thread count: ours, then PyTorch's if asked.
fn round(
    workload: &Workload,
    (batch, count, threads): (usize, usize, usize),
    python: Option<&Path>,
) -> Result<(Run, Option<Run>), String> {
    let what = format!("our {} evaluation", workload.name);
    let args = [
        workload.name.to_string(),
        batch.to_string(),
        count.to_string(),
    ];
    let command = runs::ours("--evaluate-worker", &args);
    let ours = runs::read(
        &runs::child(command, &what, threads)?,
        "ms_per_evaluation",
        &what,
    )?;
    let Some(python) = python else {
        return Ok((ours, None));
    };
    let what = format!("the PyTorch {} evaluation", workload.name);
    let mut args: Vec<String> = workload.reference.iter().map(|s| s.to_string()).collect();
    args.extend(["--batch".into(), batch.to_string()]);
    args.extend(["--evaluate".into(), count.to_string()]);
    let command = runs::pytorch(python, &args, threads);
    let theirs = runs::read(
        &runs::child(command, &what, threads)?,
        "ms_per_evaluation",
        &what,
    )?;
    Ok((ours, Some(theirs)))
}

/// Prints the table: ms per evaluation of each U-Net at each of its batches and thread counts,
/// the best of `rounds`, ours, PyTorch's and the ratio (PyTorch's time over ours: above 1,
/// ours is faster). `only` keeps the U-Nets of these workload names.
pub fn table(
    python: Option<&Path>,
    rounds: usize,
    counts: &[usize],
    only: Option<&[String]>,
) -> Result<(), String> {
    println!(
        "\n| U-Net score evaluation, {}, best of {rounds} | batch | ours ms | PyTorch ms | ratio \
         | per round |",
        threads_title(counts)
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let ms = |rate: f64| format!("{:.2}", 1000.0 / rate);
    for (name, batches, (flag, default)) in TIMED {
        if only.is_some_and(|names| !names.iter().any(|n| n == name)) {
            continue;
        }
        let workload = workload(name)?;
        let count = number(flag, default)?.max(1);
        // The network's name without its training batch.
        let label = workload
            .label
            .split(", batch")
            .next()
            .unwrap_or(workload.label);
        for &batch in batches {
            for &threads in counts {
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                for r in 1..=rounds {
                    eprintln!(
                        "timing the {name}'s score evaluation at batch {batch}, {}, round \
                         {r}/{rounds}",
                        threads_text(threads)
                    );
                    let (mine, reference) = round(workload, (batch, count, threads), python)?;
                    ours.push(mine);
                    theirs.extend(reference);
                }
                let compared = Compared::new(name, &ours, &theirs)?;
                println!(
                    "| {} | {batch} | {} | {} | {} | {} |",
                    with_threads(label, threads, counts),
                    ms(compared.ours.rate),
                    compared.theirs(ms),
                    compared.ratio(),
                    compared.spread
                );
            }
        }
    }
    Ok(())
}
