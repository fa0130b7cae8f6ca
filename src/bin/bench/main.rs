//! Throughput of training and sampling at the shipped experiments' sizes, beside a PyTorch
//! twin of the same networks, loss and optimiser. Prints Markdown tables, never asserts.
//!
//! `cargo run --release --bin bench -- --pytorch`
//!
//! Training: steps/s and peak resident memory of the `mlp` (quickstart's 64 x 3 and the
//! 128 x 3 of the other point experiments, batches 128 and 256) and the `unet` of
//! experiments/images.yaml, each run in a child process on one thread. With `--pytorch`,
//! `benches/reference.py` (in a virtualenv that `benches/torch-venv.sh` makes on first use)
//! runs the same workload, also on one thread, right after each of ours, `--rounds` times
//! (A/B/A/B, so that both see the same machine load); the table gives the best round of each
//! and the ratio ours / PyTorch (above 1: we are faster), with the range of per-round ratios.
//! Sampling: samples/s of every sampler at about `--nfe` score evaluations with the `mlp`
//! 128 x 3 (`--samples` points), and of images.yaml's samplers with the `unet`
//! (`--image-samples` images), and the `unet`'s milliseconds per score evaluation at batches
//! 64 and 256 (`--evaluations 10`), beside PyTorch's with `--pytorch`. Resolution: the time to resolve sweeps (data drawn and
//! `sigma_max: auto` computed) at 10k and 100k points, 10k images, and every shipped experiment.
//!
//! Options: `--steps 2000` (mlp), `--image-steps 60` (unet), `--rounds 2`, `--only mlp128,unet`,
//! `--nfe 100`, `--samples 2000`, `--image-samples 64`, `--no-sampling`, `--no-training`,
//! `--samplers euler,heun` (only these samplers; `--no-images` skips the `unet`'s),
//! `--no-resolution`, `--features` (also time the classifier and Inception feature extractors),
//! `--metrics` (what FID, KID and precision/recall cost at 1 000 and 10 000 2048-dimensional
//! features per set, beside NumPy/SciPy with `--pytorch`; options in `metrics.rs`), `--memory`
//! (peak resident memory of sampling `--memory-samples 1000,10000` images with the U-Net at
//! `--eval-batch 256` rows per call, `--memory-steps 2` euler steps, and the smallest count in
//! one chunk, each in a child process).

mod evaluation;
mod features;
mod memory;
mod metrics;
mod resolution;
mod runs;
mod workloads;

use runs::Run;
use workloads::{Workload, WORKLOADS};

#[global_allocator]
static ALLOCATOR: scorelab::Allocator = scorelab::Allocator;

/// The value after `flag` on the command line.
fn value(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn number(flag: &str, default: usize) -> Result<usize, String> {
    match value(flag) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("{flag} takes a number, not {text}")),
        None => Ok(default),
    }
}

/// The best (fastest) run, its peak memory the largest seen.
fn best(runs: &[Run]) -> Option<Run> {
    let fastest = runs
        .iter()
        .max_by(|a, b| a.steps_per_second.total_cmp(&b.steps_per_second))?;
    Some(Run {
        peak_mib: runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max),
        ..*fastest
    })
}

fn ratio(ours: f64, theirs: f64) -> String {
    format!("{:.2}x", ours / theirs)
}

/// One table row for a workload's runs (PyTorch's may be empty).
fn training_row(workload: &Workload, ours: &[Run], theirs: &[Run]) -> Result<String, String> {
    let mine = best(ours).ok_or("no run of ours")?;
    let rate = |r: f64| {
        if r >= 100.0 {
            format!("{r:.0}")
        } else {
            format!("{r:.2}")
        }
    };
    let (their_rate, their_ratio, spread, their_peak) = match best(theirs) {
        Some(reference) => {
            if reference.parameters != mine.parameters {
                return Err(format!(
                    "the PyTorch {} has {} parameters, ours {}: the networks differ \
                     (benches/reference.py must build the same layers)",
                    workload.name, reference.parameters, mine.parameters
                ));
            }
            let rounds: Vec<f64> = ours
                .iter()
                .zip(theirs)
                .map(|(a, b)| a.steps_per_second / b.steps_per_second)
                .collect();
            let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
            let high = rounds.iter().copied().fold(0.0, f64::max);
            (
                rate(reference.steps_per_second),
                ratio(mine.steps_per_second, reference.steps_per_second),
                format!("{low:.2}x–{high:.2}x"),
                format!("{:.0}", reference.peak_mib),
            )
        }
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    Ok(format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
        workload.label,
        workload.shipped,
        mine.parameters,
        rate(mine.steps_per_second),
        their_rate,
        their_ratio,
        spread,
        mine.peak_mib,
        their_peak
    ))
}

/// A comma-separated list after `flag`.
fn list(flag: &str, default: &str) -> Vec<String> {
    value(flag)
        .unwrap_or_else(|| default.to_string())
        .split(',')
        .map(str::to_string)
        .collect()
}

/// `--metrics`: the metrics' cost table.
fn metrics_table() -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sizes = list("--metric-sizes", "1000,10000")
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|_| format!("--metric-sizes takes counts, not {s}"))
        })
        .collect::<Result<_, String>>()?;
    let python = if flag("--pytorch") {
        Some(runs::reference_script_python("benches/scipy-python.sh")?)
    } else {
        None
    };
    metrics::run_all(&metrics::Options {
        sizes,
        dim: number("--metric-dim", 2048)?,
        metrics: list("--metric-list", "fid,kid,pr"),
        threads: number("--metric-threads", cores)?,
        fid_before: flag("--fid-before"),
        rounds: number("--rounds", 2)?.max(1),
        python,
    })
}

/// The training table: our steps/s beside PyTorch's (with `--pytorch`), `--rounds` rounds
/// A/B/A/B per workload.
fn training_table() -> Result<(), String> {
    let steps = number("--steps", 2000)?;
    let image_steps = number("--image-steps", 60)?;
    let rounds = number("--rounds", 2)?.max(1);
    let chosen: Vec<&Workload> = match value("--only") {
        Some(_) if flag("--no-training") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(workloads::workload)
            .collect::<Result<_, _>>()?,
        None if flag("--no-training") => Vec::new(),
        None => WORKLOADS.iter().collect(),
    };
    let python = if flag("--pytorch") && !chosen.is_empty() {
        Some(runs::reference_python()?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for workload in chosen {
        let steps = if workload.image { image_steps } else { steps };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            eprintln!(
                "training {} ({steps} steps), round {round}/{rounds}",
                workload.name
            );
            ours.push(runs::ours(workload, steps)?);
            if let Some(python) = &python {
                theirs.push(runs::pytorch(python, workload, steps)?);
            }
        }
        rows.push(training_row(workload, &ours, &theirs)?);
    }
    if !rows.is_empty() {
        println!(
            "\n| training, one thread, best of {rounds} | shipped in | parameters | ours steps/s | \
             PyTorch steps/s | ratio | per round | ours peak MiB | PyTorch peak MiB |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for row in rows {
            println!("{row}");
        }
    }
    Ok(())
}

/// The sampling table (every sampler's throughput), and the U-Net's score evaluation beside
/// PyTorch's (with `--pytorch`) unless `--no-images`.
fn sampling_tables() -> Result<(), String> {
    let nfe = number("--nfe", 100)?;
    let samples = number("--samples", 2000)?;
    let image_samples = match flag("--no-images") {
        true => 0,
        false => number("--image-samples", 64)?,
    };
    let samplers: Option<Vec<String>> =
        value("--samplers").map(|list| list.split(',').map(str::to_string).collect());
    println!("\n| sampling, one thread | sampler | samples | NFE | samples/s | ms per NFE |");
    println!("|---|---|---:|---:|---:|---:|");
    workloads::sampling(nfe, samples, image_samples, samplers.as_deref(), &mut |s| {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} |",
            s.network,
            s.sampler,
            s.samples,
            s.nfe,
            s.samples as f64 / s.seconds,
            1000.0 * s.seconds / s.nfe.max(1) as f64
        );
    })?;
    if image_samples > 0 {
        let python = match flag("--pytorch") {
            true => Some(runs::reference_python()?),
            false => None,
        };
        evaluation::run(python.as_deref(), number("--evaluations", 10)?.max(1))?;
    }
    Ok(())
}

fn main() -> Result<(), String> {
    if flag("--metrics-worker") {
        // Before the one-thread setting below: the parent sets this worker's threads.
        let args: Vec<String> = std::env::args()
            .skip_while(|a| a != "--metrics-worker")
            .skip(1)
            .collect();
        return metrics::run_worker(&args);
    }
    // Every compute kernel of this process and its children on one thread.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    if let Some(samples) = value("--memory-worker") {
        let args: Vec<String> = std::env::args()
            .skip_while(|a| a != "--memory-worker")
            .collect();
        let count = |i: usize| -> Result<usize, String> {
            let text = args.get(i).ok_or("--memory-worker SAMPLES ROWS STEPS")?;
            text.parse()
                .map_err(|_| format!("--memory-worker takes counts, not {text}"))
        };
        let samples = samples
            .parse()
            .map_err(|_| format!("--memory-worker takes a count, not {samples}"))?;
        return memory::run_worker(samples, count(2)?, count(3)?);
    }
    if let Some(name) = value("--worker") {
        let steps = std::env::args()
            .skip_while(|a| a != "--worker")
            .nth(2)
            .ok_or("--worker NAME STEPS")?;
        let steps = steps
            .parse()
            .map_err(|_| format!("--worker takes a step count, not {steps}"))?;
        return workloads::run_worker(&name, steps);
    }
    training_table()?;
    if !flag("--no-sampling") {
        sampling_tables()?;
    }
    if !flag("--no-resolution") {
        resolution::run()?;
    }
    if flag("--features") {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        println!();
        features::run(dir.path())?;
    }
    if flag("--metrics") {
        metrics_table()?;
    }
    if flag("--memory") {
        let counts = list("--memory-samples", "1000,10000")
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("--memory-samples takes counts, not {s}"))
            })
            .collect::<Result<Vec<usize>, String>>()?;
        let rows = number("--eval-batch", scorelab::eval_batch::DEFAULT)?;
        memory::run(&counts, rows, number("--memory-steps", 2)?)?;
    }
    Ok(())
}
