//! Samplers: turn a score model, a starting batch at sigma_max and a descending grid of
//! noise levels into samples. A sampler knows nothing about networks, training or where the
//! grid came from; the engine counts its model evaluations (NFE). Samplers work in sigma
//! space (x^ = x / s, where every family is x0 + sigma z); those that follow the SDE in x
//! itself convert with the grid's `scale`.

pub mod pc;
pub mod sde_steps;
pub mod steps;

use candle_core::Tensor;

use crate::config::{ConfigError, RawParams};
use crate::network::ScoreModel;
use crate::rng::Rng;
use crate::schedule::{Grid, GridRequest, Schedule};

pub use pc::{Corrector, Predictor, Refusal};
pub use steps::{langevin_step, tweedie_denoise, walk_levels};

/// Progress reported after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub step: usize,
    pub total: usize,
    pub sigma: f64,
}

/// What a sampler may read when it is built: the trial's resolved schedule, so that a
/// parameter given as `auto` (annealed Langevin's `eps`) can be solved on the levels the
/// sampler will walk.
pub struct SamplerContext<'a> {
    pub schedule: &'a dyn Schedule,
}

impl<'a> SamplerContext<'a> {
    /// The grid `request` gives on the trial's schedule: the one `sample` receives (unless
    /// distillation replaces it with a student's grid).
    pub fn grid(&self, request: GridRequest) -> Grid<'a> {
        Grid::new(self.schedule, request)
    }
}

pub trait Sampler: Send + Sync {
    /// The grid the sampler wants from the schedule: how many levels and how spaced
    /// (default: the schedule's own levels, as annealed Langevin uses them).
    fn grid(&self) -> GridRequest {
        GridRequest::default()
    }

    /// The parameter that sizes its steps beyond the grid, with its value (annealed
    /// Langevin's `eps`, a corrector's `snr`): what the fix of a diverged run names. `None`
    /// when the grid alone sets the steps.
    fn step_size(&self) -> Option<(String, f64)> {
        None
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor>;
}

/// A sampler's `steps` must be at least 1; `example` is the count the fix suggests.
pub fn check_steps(raw: &RawParams, steps: usize, example: usize) -> Result<(), ConfigError> {
    check_count(raw, "steps", steps, example)
}

/// Sampler steps per sample (or per level) above this are refused: a million network
/// evaluations per sample is past any published sampler, and a typo like `steps: 1000000000`
/// would otherwise run until killed.
pub const MAX_STEPS: usize = 1_000_000;

/// Largest `s_noise` of the samplers that scale their fresh noise by it (`heun`'s churn,
/// `euler_ancestral`'s ancestral steps): 1 is exact, EDM tunes it within 1.000 to 1.007.
pub const MAX_S_NOISE: f64 = 10.0;

/// A step count of `key` must be in 1..=[`MAX_STEPS`].
pub fn check_count(
    raw: &RawParams,
    key: &str,
    steps: usize,
    example: usize,
) -> Result<(), ConfigError> {
    if steps == 0 {
        return Err(raw.invalid(
            key,
            "must be at least 1",
            format!("set e.g. `{key}: {example}`"),
        ));
    }
    if steps > MAX_STEPS {
        return Err(raw.invalid(
            key,
            format!(
                "is {}: above {} network evaluations per sample, a sampler runs for days",
                crate::config::number(steps as f64),
                crate::config::number(MAX_STEPS as f64)
            ),
            format!("set e.g. `{key}: {example}`"),
        ));
    }
    Ok(())
}

/// A sampler parameter that scales noise or step sizes must be finite and non-negative
/// (NaN fails too); `fix` says what to set instead.
pub fn check_non_negative(
    raw: &RawParams,
    key: &str,
    value: f64,
    fix: &str,
) -> Result<(), ConfigError> {
    if !(value >= 0.0 && value.is_finite()) {
        return Err(raw.invalid(
            key,
            format!("must be non-negative, not {}", crate::config::number(value)),
            fix,
        ));
    }
    Ok(())
}

/// A step size that must be finite and in (0, `max`]; larger values blow the samples up
/// (every sample NaN), so they are refused before anything runs. `fix` says what to set.
pub fn check_step_size(
    raw: &RawParams,
    key: &str,
    value: f64,
    max: f64,
    fix: &str,
) -> Result<(), ConfigError> {
    if !(value > 0.0 && value <= max) {
        return Err(raw.invalid(
            key,
            format!(
                "must be in (0, {}], not {}",
                crate::config::number(max),
                crate::config::number(value)
            ),
            fix,
        ));
    }
    Ok(())
}
