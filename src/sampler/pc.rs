//! The two halves of predictor-corrector sampling (Song et al. 2021, Alg. 1): a predictor
//! steps from one level of the grid to the next, a corrector refines the samples at one
//! level. Each is a plugin kind of its own, as score_sde registers them, so a new corrector
//! is a file in `plugins/correctors/` and the `pc` sampler pairs any predictor with any
//! corrector.

use candle_core::Tensor;

use crate::config::{ConfigError, RawParams};
use crate::network::ScoreModel;
use crate::rng::Rng;
use crate::schedule::{Discretization, Grid};

/// Why a part of a sampler cannot run on a schedule: the key of its own table at fault,
/// what is wrong and the fix (the sampler's builder reports it at that key).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub key: String,
    pub message: String,
    pub fix: String,
}

/// Moves the samples from level i of the grid to level i + 1 (sigma_{i+1} > 0), in sigma
/// space; the last level's step to 0 is the sampler's denoising step, not the predictor's.
pub trait Predictor: Send + Sync {
    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor>;

    /// Whether it moves the samples at all (`none` does not).
    fn moves(&self) -> bool {
        true
    }

    /// Why it cannot step on a schedule discretised this way (score_sde's ancestral
    /// predictor has no sub-VP form); `None` when it can. `pc` asks when it is built.
    fn refuses(&self, _form: Discretization) -> Option<Refusal> {
        None
    }
}

/// Refines the samples at level i of the grid, staying at that level.
pub trait Corrector: Send + Sync {
    fn correct(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor>;

    /// Whether it moves the samples at all (`none` does not).
    fn moves(&self) -> bool {
        true
    }

    /// The parameter that sizes its steps, with its value (a key of its own table).
    fn step_size(&self) -> Option<(&'static str, f64)> {
        None
    }
}

/// `steps` corrector steps at one level: x = step(x) that many times (score_sde's
/// `n_steps_each`).
pub fn repeat_steps(
    steps: usize,
    mut x: Tensor,
    mut step: impl FnMut(&Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    for _ in 0..steps {
        x = step(&x)?;
    }
    Ok(x)
}

/// A Langevin-type corrector's `steps` (1..=[`super::MAX_STEPS`]) and `snr`: its step is
/// 2 (snr |z| / |score|)^2 or 2 (snr sigma)^2, and snr above 1 gives steps larger than the
/// noise itself (Song et al. 2021 use 0.01 to 0.17).
pub fn check_langevin_corrector(
    raw: &RawParams,
    steps: usize,
    snr: f64,
) -> Result<(), ConfigError> {
    super::check_count(raw, "steps", steps, 1)?;
    super::check_step_size(raw, "snr", snr, 1.0, "set e.g. `snr: 0.16`")
}
