//! A distilled trial's sampler: the trial's sampler walking a student's grid (every 2^r-th
//! level of the teacher's), and the probe that checks, by running it, that a sampler's step
//! is deterministic DDIM (the map students learn), not by its name.

use candle_core::{Device, Tensor};

use super::distill::ddim_walk;
use crate::network::ScoreModel;
use crate::rng::{Rng, Stream};
use crate::sampler::{Sampler, StepInfo};
use crate::schedule::{Grid, GridRequest, Schedule};

/// `sampler` walking the grid `sigmas` in place of the schedule's own grid of the same
/// length.
pub fn on_student_grid(sampler: Box<dyn Sampler>, sigmas: Vec<f64>) -> Box<dyn Sampler> {
    Box::new(OnStudentGrid {
        inner: sampler,
        sigmas,
    })
}

/// The trial's sampler on a student's grid (every 2^r-th level of the teacher's) in place of
/// the schedule's own grid of the same length.
struct OnStudentGrid {
    inner: Box<dyn Sampler>,
    sigmas: Vec<f64>,
}

impl Sampler for OnStudentGrid {
    fn grid(&self) -> GridRequest {
        self.inner.grid()
    }

    fn step_size(&self) -> Option<(String, f64)> {
        self.inner.step_size()
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let student = Grid::from_sigmas(grid.schedule(), self.sigmas.clone());
        self.inner.sample(model, x, &student, rng, on_step)
    }
}

/// The exact denoiser of N(0, 1) data, x / (1 + sigma^2): a probe for samplers.
struct UnitGaussian;

impl ScoreModel for UnitGaussian {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_div(&(sigma.sqr()? + 1.0)?)?.neg()
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_div(&(sigma.sqr()? + 1.0)?)
    }
}

/// Runs `sampler` on the grid `sigmas` with the probe denoiser and compares the result with
/// the deterministic DDIM walk; `Err` says how far they are apart.
pub fn check_deterministic_ddim(
    sampler: &dyn Sampler,
    schedule: &dyn Schedule,
    sigmas: &[f64],
) -> Result<(), String> {
    let start = [1.0f32, -0.5, 2.0, 0.3].map(|v| v * sigmas[0] as f32);
    let fail = |e: candle_core::Error| format!("the probe failed: {e}");
    let x = Tensor::from_slice(&start, (4, 1), &Device::Cpu).map_err(fail)?;
    let grid = Grid::from_sigmas(schedule, sigmas.to_vec());
    let mut rng = Rng::new(0, Stream::Sampling);
    let out = sampler
        .sample(&UnitGaussian, x.clone(), &grid, &mut rng, &mut |_| {})
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(fail)?;
    let expected = ddim_walk(&UnitGaussian, &x, sigmas)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(fail)?;
    let gap = out
        .iter()
        .zip(&expected)
        .map(|(a, b)| ((a - b).abs() / b.abs().max(1e-3)) as f64)
        .fold(0.0, |most: f64, g| {
            if most.is_nan() || g.is_nan() {
                f64::NAN
            } else {
                most.max(g)
            }
        });
    if gap.is_nan() || gap > 1e-4 {
        return Err(format!(
            "with the exact denoiser of N(0, 1) data its samples differ from DDIM's by up to \
             {gap:.3} relative"
        ));
    }
    Ok(())
}
