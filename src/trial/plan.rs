//! The plan of a sweep, printed by `--dry-run` and at every sweep's start.

use crate::config::number;

use super::Trial;

/// The plan of a sweep, one line: trials, models to train, training work (steps × batch per
/// model, summed) and sampling work (samples × grid steps per trial, summed where a sampler
/// asks for a fixed number of steps), then a line for each distinct warning of its trials.
pub fn plan_summary(trials: &[Trial]) -> String {
    let mut models: Vec<&str> = Vec::new();
    let mut train_examples = 0u128;
    let mut train_steps = 0u128;
    for t in trials.iter().filter(|t| t.architecture.trainable()) {
        for (id, steps, batch) in models_of(t) {
            if models.contains(&id) {
                continue;
            }
            models.push(id);
            train_steps += steps as u128;
            train_examples += steps as u128 * batch as u128;
        }
    }
    let trained = models.len();
    let mut sample_steps = 0u128;
    let mut schedule_grids = 0usize;
    for t in trials {
        match t.sampler.grid().steps {
            Some(steps) => sample_steps += steps as u128 * t.settings.num_samples as u128,
            None => schedule_grids += 1,
        }
    }
    let big = |n: u128| number(n as f64);
    let mut line = format!(
        "plan: {} trial(s), {trained} model(s) to train ({} training steps, {} examples: steps × batch summed over models)",
        trials.len(),
        big(train_steps),
        big(train_examples)
    );
    line.push_str(&format!(
        "; sampling {} samples per trial",
        trials.first().map_or(0, |t| t.settings.num_samples)
    ));
    if sample_steps > 0 {
        line.push_str(&format!(
            ", {} sample-steps (grid steps × samples) where the sampler fixes its steps",
            big(sample_steps)
        ));
    }
    if schedule_grids > 0 {
        line.push_str(&format!(
            ", {schedule_grids} trial(s) on the schedule's own grid"
        ));
    }
    let mut warnings: Vec<&String> = trials.iter().flat_map(|t| &t.warnings).collect();
    warnings.sort();
    warnings.dedup();
    for warning in warnings {
        line.push_str(&format!("\nwarning: {warning}"));
    }
    line
}

/// The models a trainable trial needs, each with its optimiser steps and batch size: its
/// trained model, or for a distilled student the teacher and every round up to its own.
fn models_of(trial: &Trial) -> Vec<(&str, usize, usize)> {
    let train = (trial.train.steps, trial.train.batch_size);
    match &trial.distill {
        None => vec![(trial.train_id.as_str(), train.0, train.1)],
        Some(plan) => plan
            .rounds
            .iter()
            .enumerate()
            .map(|(round, model)| {
                let (steps, batch) = if round == 0 {
                    train
                } else {
                    (plan.settings.steps, plan.settings.batch_size)
                };
                (model.id.as_str(), steps, batch)
            })
            .collect(),
    }
}
