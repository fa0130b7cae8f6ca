//! Samplers: turn a score model, a starting batch at sigma_max and a descending grid of
//! noise levels into samples. A sampler knows nothing about networks, training or where the
//! grid came from; the engine counts its model evaluations (NFE). Samplers work in sigma
//! space (x^ = x / s, where every family is x0 + sigma z); those that follow the SDE in x
//! itself convert with the grid's `scale`.

pub mod sde_steps;
pub mod steps;

use candle_core::Tensor;

use crate::network::ScoreModel;
use crate::rng::Rng;
use crate::schedule::{Grid, GridRequest};

pub use steps::{langevin_step, tweedie_denoise};

/// Progress reported after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub step: usize,
    pub total: usize,
    pub sigma: f64,
}

pub trait Sampler: Send + Sync {
    /// The grid the sampler wants from the schedule: how many levels and how spaced
    /// (default: the schedule's own levels, as annealed Langevin uses them).
    fn grid(&self) -> GridRequest {
        GridRequest::default()
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
