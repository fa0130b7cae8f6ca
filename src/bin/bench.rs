//! Throughput figures for the notes: training steps per second and sampling cost per score
//! evaluation, for the network and batch sizes the experiments use. Prints, never asserts.
//!
//! `cargo run --release --bin bench [-- --steps 2000]`

use std::time::Instant;

use scorelab::evaluate::evaluate;
use scorelab::rng::Rng;
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

#[global_allocator]
static ALLOCATOR: scorelab::Allocator = scorelab::Allocator;

const EXPERIMENT: &str = r#"
num_samples: 2000
data: {kind: gmm, means: [[-5.0, -5.0], [5.0, 5.0]], stds: [1.0, 1.0], weights: [0.8, 0.2]}
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 128, layers: 3}
train: {batch_size: 128, train_size: 10000, log_every: 100}
sampler: {kind: annealed_langevin, steps_per_level: 20, eps: 0.002}
"#;

fn main() -> Result<(), String> {
    let steps: usize = match std::env::args().skip_while(|a| a != "--steps").nth(1) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("--steps takes a number, not {text}"))?,
        None => 2000,
    };
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, EXPERIMENT).map_err(|e| e.to_string())?;

    for network in ["mlp", "oracle"] {
        let overrides = vec![format!("train.steps={steps}"), format!("network={network}")];
        let experiment = Experiment::load(&file, &overrides).map_err(|e| e.to_string())?;
        let trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
        let trial = &trials[0];
        let model = trial
            .new_model(&mut Rng::from_seed(0))
            .map_err(|e| e.to_string())?;
        if trial.architecture.trainable() {
            let start = Instant::now();
            scorelab::train::train(&model, trial, &mut |_, _, _| {}).map_err(|e| e.to_string())?;
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "train  {network:<6} hidden 128 x 3, batch 128: {steps} steps in {seconds:.2} s = {:.0} steps/s",
                steps as f64 / seconds
            );
        }
        let evaluation = evaluate(trial, &model, None, &mut |_| {}).map_err(|e| e.to_string())?;
        println!(
            "sample {network:<6} 2000 points: {} NFE in {:.2} s = {:.2} ms per NFE",
            evaluation.nfe,
            evaluation.sample_seconds,
            1000.0 * evaluation.sample_seconds / evaluation.nfe as f64
        );
    }
    Ok(())
}
