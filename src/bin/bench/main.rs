//! Throughput of training, sampling and feature extraction at the shipped experiments' sizes,
//! beside a PyTorch twin of the same networks, loss and optimiser. Prints Markdown tables,
//! never asserts.
//!
//! `cargo run --release --bin bench -- --pytorch`
//!
//! Training: steps/s and peak resident memory of the `mlp` (quickstart's 64 x 3 and the
//! 128 x 3 of the other point experiments, batches 128 and 256), the `unet` of
//! experiments/images.yaml and a CIFAR-sized `unet` (64 channels at [1, 2, 2], 3 x 32 x 32,
//! batch 16), each run in a child process. With `--pytorch`, `benches/reference.py` (in a
//! virtualenv that `benches/torch-venv.sh` makes on first use) runs the same workload right
//! after each of ours, `--rounds` times (A/B/A/B, so that both see the same machine load); the
//! tables give the best round of each and the ratio ours / PyTorch (above 1: we are faster),
//! with the range of per-round ratios. Every measurement runs on one thread unless
//! `--threads 1,2` asks for several counts (a row each; ours with RAYON_NUM_THREADS, PyTorch
//! with torch.set_num_threads).
//! Sampling: samples/s of every sampler at about `--nfe` score evaluations with the `mlp`
//! 128 x 3 (`--samples` points), and of images.yaml's samplers with the `unet`
//! (`--image-samples` images), on one thread. Then the U-Nets' milliseconds per score
//! evaluation, in child processes beside PyTorch's, at batches 64 and 256: images.yaml's
//! (`--evaluations 10` per run) and the CIFAR-sized one (`--cifar-evaluations 2`).
//! Resolution: the time to resolve sweeps (data drawn and `sigma_max: auto` computed) at 10k
//! and 100k points, 10k images, and every shipped experiment.
//!
//! Options: `--steps 2000` (mlp), `--image-steps 60` (unet), `--cifar-steps 10` (unet-cifar),
//! `--rounds 2`, `--threads 1` (e.g. `1,2`), `--only mlp128,unet-cifar` (also picks the
//! evaluation table's U-Nets when it names any), `--nfe 100`, `--samples 2000`,
//! `--image-samples 64`, `--no-sampling`, `--no-training`, `--samplers euler,heun` (only these
//! samplers; `--no-images` skips the `unet`'s and the evaluation table), `--evaluation` (the
//! evaluation table even with `--no-sampling`), `--no-resolution`, `--features` (the
//! classifier's training time, then the classifier extractor at 1 x 16 x 16 and 3 x 32 x 32
//! and Inception at 299 x 299, images/s beside PyTorch's; `--classifier-images 2000`,
//! `--inception-images 50`), `--metrics` (what FID, KID and precision/recall cost at 1 000 and
//! 10 000 2048-dimensional features per set, beside NumPy/SciPy with `--pytorch`; options in
//! `metrics.rs`), `--memory` (peak resident memory of sampling `--memory-samples 1000,10000`
//! images with the U-Net at `--eval-batch 256` rows per call, `--memory-steps 2` euler steps,
//! and the smallest count in one chunk, each in a child process on one thread).

mod evaluation;
mod features;
mod memory;
mod metrics;
mod resolution;
mod runs;
mod training;
mod workloads;

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

/// `--threads`: the thread counts every compared measurement runs at (default one).
fn thread_counts() -> Result<Vec<usize>, String> {
    list("--threads", "1")
        .iter()
        .map(|t| match t.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--threads takes counts such as 1,2, not {t}")),
        })
        .collect()
}

/// The python of PyTorch's virtualenv with `--pytorch`.
fn python() -> Result<Option<std::path::PathBuf>, String> {
    match flag("--pytorch") {
        true => runs::reference_python().map(Some),
        false => Ok(None),
    }
}

/// The sampling table (every sampler's throughput on one thread, in this process).
fn sampling_table() -> Result<(), String> {
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
    })
}

/// The U-Nets' score evaluation table, beside PyTorch's with `--pytorch`.
fn evaluation_table(counts: &[usize]) -> Result<(), String> {
    let only: Option<Vec<String>> = value("--only").and_then(|names| {
        let unets: Vec<String> = names
            .split(',')
            .filter(|n| n.starts_with("unet"))
            .map(str::to_string)
            .collect();
        (!unets.is_empty()).then_some(unets)
    });
    let rounds = number("--rounds", 2)?.max(1);
    evaluation::table(python()?.as_deref(), rounds, counts, only.as_deref())
}

/// The workers, each a child of the bench timing one thing on the threads its
/// RAYON_NUM_THREADS gives, and what follows their flag.
const WORKERS: [&str; 4] = [
    "--worker NAME STEPS",
    "--evaluate-worker NAME BATCH COUNT",
    "--features-worker NAME CxHxW COUNT",
    "--memory-worker SAMPLES ROWS STEPS",
];

/// Runs the worker of `usage` (one of [`WORKERS`]) with the arguments after its flag.
fn worker(usage: &str) -> Result<(), String> {
    let flag = usage.split(' ').next().unwrap_or(usage);
    let args: Vec<String> = std::env::args().skip_while(|a| a != flag).skip(1).collect();
    let wrong = || format!("usage: bench {usage}, not {flag} {}", args.join(" "));
    let name = args.first().ok_or_else(wrong)?;
    let count = |i: usize| args.get(i).and_then(|t| t.parse().ok()).ok_or_else(wrong);
    match flag {
        "--worker" => training::run_worker(name, count(1)?),
        "--evaluate-worker" => evaluation::run_worker(name, count(1)?, count(2)?),
        "--memory-worker" => memory::run_worker(count(0)?, count(1)?, count(2)?),
        _ => {
            let shape: Option<Vec<usize>> = args
                .get(1)
                .and_then(|s| s.split('x').map(|d| d.parse().ok()).collect());
            let shape = shape.and_then(|s| s.try_into().ok()).ok_or_else(wrong)?;
            features::run_worker(name, shape, count(2)?)
        }
    }
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
    // One compute thread unless the parent gave a child its count.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    if let Some(usage) = WORKERS
        .iter()
        .find(|u| flag(u.split(' ').next().unwrap_or(u)))
    {
        return worker(usage);
    }
    // The bench's own measurements (sampling, resolution, the classifier's training) on one
    // thread; its children get theirs from `runs::child`.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let counts = thread_counts()?;
    training::table(&counts)?;
    if !flag("--no-sampling") {
        sampling_table()?;
    }
    let images = !flag("--no-images") && number("--image-samples", 64)? > 0;
    if flag("--evaluation") || (!flag("--no-sampling") && images) {
        evaluation_table(&counts)?;
    }
    if !flag("--no-resolution") {
        resolution::run()?;
    }
    if flag("--features") {
        let rounds = number("--rounds", 2)?.max(1);
        features::table(python()?.as_deref(), rounds, &counts)?;
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
