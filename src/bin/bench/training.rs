//! The training workloads at the shipped experiments' sizes (and a CIFAR-sized U-Net), each
//! run by a child process of the bench (`bench --worker NAME STEPS`) so that its peak memory
//! is its own, beside PyTorch's twin (`benches/reference.py`) with `--pytorch`; and their
//! table.

use std::time::Instant;

use scorelab::rng::Rng;
use scorelab::trial::Trial;

use crate::runs::{self, threads_text, threads_title, with_threads, Compared, Run};
use crate::workloads::{print_result, trial};
use crate::{flag, number, value};

/// One training workload: ours through the runner's trial, PyTorch's through
/// `benches/reference.py` with the arguments that build the same network.
pub struct Workload {
    pub name: &'static str,
    /// What the table says about it.
    pub label: &'static str,
    /// Where the size comes from.
    pub shipped: &'static str,
    /// Whether it is built from the images experiment (else the 2D points one).
    pub image: bool,
    /// The option that sets its training steps, and its default.
    pub steps: (&'static str, usize),
    /// Training items per step (`train.batch_size`, the reference's `--batch`).
    pub batch: usize,
    /// Our experiment's overrides that make its network.
    pub overrides: &'static [&'static str],
    /// The reference's arguments that make the same network.
    pub reference: &'static [&'static str],
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "mlp64",
        label: "mlp 2-64x3-2, batch 128",
        shipped: "quickstart",
        image: false,
        steps: ("--steps", 2000),
        batch: 128,
        overrides: &["network.hidden=64"],
        reference: &["mlp", "--hidden", "64", "--layers", "3"],
    },
    Workload {
        name: "mlp128",
        label: "mlp 2-128x3-2, batch 128",
        shipped: "noise_scales",
        image: false,
        steps: ("--steps", 2000),
        batch: 128,
        overrides: &["network.hidden=128"],
        reference: &["mlp", "--hidden", "128", "--layers", "3"],
    },
    Workload {
        name: "mlp128b256",
        label: "mlp 2-128x3-2, batch 256",
        shipped: "samplers, sde, ...",
        image: false,
        steps: ("--steps", 2000),
        batch: 256,
        overrides: &["network.hidden=128"],
        reference: &["mlp", "--hidden", "128", "--layers", "3"],
    },
    Workload {
        name: "unet",
        label: "unet 16ch [1,2] 1x16x16, batch 32",
        shipped: "images",
        image: true,
        steps: ("--image-steps", 60),
        batch: 32,
        overrides: &[],
        #[rustfmt::skip]
        reference: &[
            "unet", "--channels", "16", "--channel-mult", "1", "2", "--attention", "8",
            "--groups", "4", "--size", "16",
        ],
    },
    // CIFAR-10's image size with a network of the width papers train on it (DDPM's is 128
    // channels at [1, 2, 2, 2]), on `shapes` drawn in colour: what a CIFAR run would cost.
    Workload {
        name: "unet-cifar",
        label: "unet 64ch [1,2,2] 3x32x32, batch 16",
        shipped: "CIFAR-like",
        image: true,
        steps: ("--cifar-steps", 10),
        batch: 16,
        overrides: &[
            "data.size=32",
            "data.channels=3",
            "network.channels=64",
            "network.channel_mult=[1, 2, 2]",
            "network.attention_resolutions=[16]",
        ],
        #[rustfmt::skip]
        reference: &[
            "unet", "--channels", "64", "--channel-mult", "1", "2", "2", "--attention", "16",
            "--groups", "4", "--size", "32", "--image-channels", "3",
        ],
    },
];

pub fn workload(name: &str) -> Result<&'static Workload, String> {
    WORKLOADS.iter().find(|w| w.name == name).ok_or_else(|| {
        let names: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
        format!("no workload `{name}`; the workloads are {names:?}")
    })
}

impl Workload {
    /// Its trial, with `extra` overrides after its own (on the CPU).
    pub fn trial(&self, dir: &std::path::Path, extra: &[String]) -> Result<Trial, String> {
        let mut overrides: Vec<String> = self.overrides.iter().map(|s| s.to_string()).collect();
        overrides.push(format!("train.batch_size={}", self.batch));
        overrides.push("device=cpu".into());
        overrides.extend_from_slice(extra);
        trial(dir, self.image, &overrides)
    }
}

/// The number of trainable values of a trial's network.
pub fn parameters(trial: &Trial) -> Result<(scorelab::parameterisation::Model, usize), String> {
    let model = trial
        .new_model(&mut Rng::from_seed(0))
        .map_err(|e| e.to_string())?;
    let network = model
        .network()
        .ok_or("the workload's network is not trainable")?;
    let count = scorelab::optim::sorted_vars(network.variables())
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum();
    Ok((model, count))
}

/// Trains the workload for `steps` steps on the CPU and prints one JSON line with the same
/// keys as the reference's: steps, seconds, steps_per_second, peak_rss_mib, parameters.
pub fn run_worker(name: &str, steps: usize) -> Result<(), String> {
    let workload = workload(name)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let trial = workload.trial(dir.path(), &[format!("train.steps={steps}")])?;
    let (model, parameters) = parameters(&trial)?;
    let start = Instant::now();
    let job = trial.train_job(trial.training_data.clone());
    scorelab::train::train(&model, &job, &mut |_| {}).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    print_result(serde_json::json!({
        "steps": steps,
        "seconds": seconds,
        "steps_per_second": steps as f64 / seconds,
        "parameters": parameters,
    }));
    Ok(())
}

/// One round's runs of a workload on `threads` threads: ours, then PyTorch's if asked.
fn round(
    workload: &Workload,
    steps: usize,
    threads: usize,
    python: Option<&std::path::Path>,
) -> Result<(Run, Option<Run>), String> {
    let what = format!("our {} run", workload.name);
    let command = runs::ours("--worker", &[workload.name.into(), steps.to_string()]);
    let ours = runs::read(
        &runs::child(command, &what, threads)?,
        "steps_per_second",
        &what,
    )?;
    let Some(python) = python else {
        return Ok((ours, None));
    };
    let what = format!("the PyTorch {} run", workload.name);
    let mut args: Vec<String> = workload.reference.iter().map(|s| s.to_string()).collect();
    args.extend(["--batch".into(), workload.batch.to_string()]);
    args.extend(["--steps".into(), steps.to_string()]);
    let command = runs::pytorch(python, &args, threads);
    let theirs = runs::read(
        &runs::child(command, &what, threads)?,
        "steps_per_second",
        &what,
    )?;
    Ok((ours, Some(theirs)))
}

/// Steps/s as the table writes them: whole numbers from 100 up.
fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// The workloads `--only` names (all without it; none with `--no-training`).
fn chosen() -> Result<Vec<&'static Workload>, String> {
    if flag("--no-training") {
        return Ok(Vec::new());
    }
    match value("--only") {
        Some(list) => list.split(',').map(workload).collect(),
        None => Ok(WORKLOADS.iter().collect()),
    }
}

/// The training table: our steps/s beside PyTorch's (with `--pytorch`), `--rounds` rounds
/// A/B/A/B per workload and thread count.
pub fn table(counts: &[usize]) -> Result<(), String> {
    let rounds = number("--rounds", 2)?.max(1);
    let chosen = chosen()?;
    let python = if flag("--pytorch") && !chosen.is_empty() {
        Some(runs::reference_python()?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for workload in chosen {
        let steps = number(workload.steps.0, workload.steps.1)?;
        for &threads in counts {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for r in 1..=rounds {
                eprintln!(
                    "training {} ({steps} steps, {}), round {r}/{rounds}",
                    workload.name,
                    threads_text(threads)
                );
                let (mine, reference) = round(workload, steps, threads, python.as_deref())?;
                ours.push(mine);
                theirs.extend(reference);
            }
            let compared = Compared::new(workload.name, &ours, &theirs)?;
            rows.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                with_threads(workload.label, threads, counts),
                workload.shipped,
                compared.ours.parameters,
                rate(compared.ours.rate),
                compared.theirs(rate),
                compared.ratio(),
                compared.spread,
                compared.ours.peak_mib,
                compared
                    .theirs
                    .map_or("-".into(), |t| format!("{:.0}", t.peak_mib)),
            ));
        }
    }
    if !rows.is_empty() {
        println!(
            "\n| training, {}, best of {rounds} | shipped in | parameters | ours steps/s | \
             PyTorch steps/s | ratio | per round | ours peak MiB | PyTorch peak MiB |",
            threads_title(counts)
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for row in rows {
            println!("{row}");
        }
    }
    Ok(())
}
