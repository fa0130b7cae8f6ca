//! The times of continuous-time SDE schedules (`ve`, `vp`, `sub_vp`; score_sde's): training
//! draws t ~ U(eps, 1), sampling walks a grid uniform in t from 1 down to the last time.

use super::{LogBins, Schedule, TrainingLaw};
use crate::rng::Rng;

/// Levels sampling takes by default: score_sde's N = 1000 discretisation steps.
pub const DEFAULT_STEPS: usize = 1000;

/// `n` times uniform from `high` down to `low` (one time: `high`).
pub fn uniform_times(high: f64, low: f64, n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![high];
    }
    (0..n)
        .map(|i| high + (low - high) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Training noise levels for t ~ U(eps, 1), binned.
pub fn uniform_t_sigmas(
    schedule: &dyn Schedule,
    eps: f64,
    bins: &LogBins,
    n: usize,
    rng: &mut Rng,
) -> Vec<(f64, usize)> {
    (0..n)
        .map(|_| {
            let sigma = schedule.sigma(eps + (1.0 - eps) * rng.uniform());
            (sigma, bins.index(sigma))
        })
        .collect()
}

/// The law [`uniform_t_sigmas`] draws from: t ~ U(eps, 1).
pub fn uniform_t_law(eps: f64, bins: &LogBins) -> TrainingLaw {
    TrainingLaw::UniformTime {
        low: eps,
        high: 1.0,
        bins: bins.clone(),
    }
}

/// `steps` levels uniform in t from 1 down to `eps` (default: [`DEFAULT_STEPS`]).
pub fn uniform_t_grid(schedule: &dyn Schedule, eps: f64, steps: Option<usize>) -> Vec<f64> {
    let n = steps.unwrap_or(DEFAULT_STEPS).max(1);
    uniform_times(1.0, eps, n)
        .into_iter()
        .map(|t| schedule.sigma(t))
        .collect()
}

/// Per-level loss bins over the training range [sigma(training_eps), sigma(1)].
pub fn training_bins(schedule: &dyn Schedule, training_eps: f64) -> LogBins {
    LogBins::new(schedule.sigma(training_eps), schedule.sigma(1.0), 10)
}
