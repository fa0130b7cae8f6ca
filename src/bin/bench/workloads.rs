//! The experiments the bench's workloads are built from (a 2D mixture and images.yaml), and
//! the sampling measurements, run in the bench's own process.

use std::path::Path;

use scorelab::evaluate::{evaluate, Around};
use scorelab::rng::Rng;
use scorelab::sweep::Experiment;
use scorelab::trial::{resolve_all, Trial};

/// Data, schedule and weighting of the 2D workloads (quickstart's mixture and schedule).
const POINTS: &str = r#"
num_samples: 2000
data: {kind: gmm, means: [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], stds: [0.5, 0.5, 0.5], weights: [0.5, 0.3, 0.2]}
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.05}
weighting: sigma_squared
network: {kind: mlp, hidden: 128, layers: 3}
train: {batch_size: 128, lr: 0.002, train_size: 10000, log_every: 50}
sampler: {kind: euler, steps: 100}
eval: []
"#;

/// `experiments/images.yaml`'s data, network and training settings.
const IMAGES: &str = r#"
num_samples: 64
data: {kind: shapes, size: 16, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 16, channel_mult: [1, 2], attention_resolutions: [8], groups: 4, parameterisation: edm, sigma_data: 0.5}
train: {batch_size: 32, lr: 0.002, train_size: 2000, log_every: 50}
sampler: {kind: heun, steps: 18}
eval: []
"#;

/// The first trial of the workload's experiment with `extra` overrides.
pub fn trial(dir: &Path, image: bool, overrides: &[String]) -> Result<Trial, String> {
    let file = dir.join(if image { "images.yaml" } else { "points.yaml" });
    std::fs::write(&file, if image { IMAGES } else { POINTS }).map_err(|e| e.to_string())?;
    let experiment = Experiment::load(&file, overrides).map_err(|e| e.to_string())?;
    let mut trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
    Ok(trials.remove(0))
}

/// The process's peak resident memory (Linux), in MiB.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A worker's result: `line`'s figures and the process's peak resident memory
/// (`peak_rss_mib`), as the one JSON line its parent reads.
pub fn print_result(mut line: serde_json::Value) {
    line["peak_rss_mib"] = serde_json::json!(peak_memory_mib().unwrap_or(f64::NAN));
    println!("{line}");
}

/// One sampler measurement: samples per second at a given number of score evaluations.
pub struct Sampling {
    pub network: &'static str,
    pub sampler: String,
    pub samples: usize,
    pub nfe: u64,
    pub seconds: f64,
}

/// Samplers at about `nfe` score evaluations each (Heun's second evaluations, the predictor-
/// corrector's corrector steps and Langevin's levels counted), rk45 at its tolerance.
fn sampler_settings(nfe: usize) -> Vec<String> {
    let half = (nfe / 2).max(1);
    vec![
        format!("{{kind: euler, steps: {nfe}}}"),
        format!("{{kind: heun, steps: {}}}", half + 1),
        format!("{{kind: dpmpp_2m, steps: {nfe}}}"),
        format!("{{kind: ddim, steps: {nfe}}}"),
        format!("{{kind: ddpm, steps: {nfe}}}"),
        format!("{{kind: euler_ancestral, steps: {nfe}}}"),
        format!("{{kind: euler_maruyama, steps: {nfe}}}"),
        format!("{{kind: pc, steps: {half}}}"),
        format!(
            "{{kind: annealed_langevin, steps_per_level: {}, final_denoise: false}}",
            (nfe / 10).max(1)
        ),
        "{kind: rk45}".to_string(),
    ]
}

/// Sampling throughput of an untrained network (the cost does not depend on the weights): the
/// `mlp` 128 x 3 over every sampler, the `unet` with images.yaml's two samplers (none when
/// `images` is 0); `only` keeps the samplers of these kinds.
pub fn sampling(
    nfe: usize,
    points: usize,
    images: usize,
    only: Option<&[String]>,
    on_row: &mut dyn FnMut(&Sampling),
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let image_samplers = [
        format!("{{kind: heun, steps: {}}}", nfe / 2 + 1),
        format!("{{kind: euler, steps: {nfe}}}"),
    ];
    let image_samplers = if images == 0 {
        &[][..]
    } else {
        &image_samplers[..]
    };
    let runs = sampler_settings(nfe)
        .into_iter()
        .map(|s| (false, s))
        .chain(image_samplers.iter().map(|s| (true, s.clone())));
    let kept = |sampler: &str| match only {
        Some(kinds) => kinds.iter().any(|kind| {
            sampler.starts_with(&format!("{{kind: {kind},"))
                || sampler == format!("{{kind: {kind}}}")
        }),
        None => true,
    };
    for (image, sampler) in runs.filter(|(_, s)| kept(s)) {
        let count = if image { images } else { points };
        let overrides = vec![
            format!("sampler={sampler}"),
            format!("num_samples={count}"),
            "train.steps=1".into(),
            "device=cpu".into(),
        ];
        let trial = trial(dir.path(), image, &overrides)?;
        let model = trial
            .new_model(&mut Rng::from_seed(0))
            .map_err(|e| e.to_string())?;
        let evaluation =
            evaluate(&trial, &model, &Around::default(), &mut |_| {}).map_err(|e| e.to_string())?;
        let kind = trial.names.sampler.to_string();
        on_row(&Sampling {
            network: if image { "unet" } else { "mlp 128x3" },
            sampler: kind,
            samples: count,
            nfe: evaluation.nfe,
            seconds: evaluation.sample_seconds,
        });
    }
    Ok(())
}
