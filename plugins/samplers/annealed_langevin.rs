//! `annealed_langevin`: annealed Langevin dynamics (Song & Ermon 2019, Alg. 1; NCSNv2 2020).
//! At each level sigma_i, from largest to smallest, T Langevin steps with step size
//! alpha_i = eps * sigma_i^2 / sigma_L^2; optionally a final denoising step.
//!
//! The step is the official NCSN code's, x + alpha * s + sqrt(2 alpha) * z, not the paper's
//! printed x + alpha/2 * s + sqrt(alpha) * z: the two are the same chain with the paper's
//! alpha twice ours, so `eps` here is the paper's epsilon / 2. The default 2e-5 is the code's
//! `step_lr`, the value behind NCSN's published samples.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::{constant_sigma, ScoreModel};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::{langevin_step, tweedie_denoise, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `annealed_langevin`.
    pub struct AnnealedLangevinParams {
        /// Langevin steps at each noise level (T).
        steps_per_level: usize = 100,
        /// Step size at the smallest level (the NCSN code's `step_lr`, the paper's epsilon / 2); level i uses alpha_i = eps * sigma_i^2 / sigma_L^2.
        eps: f64 = 2e-5,
        /// End with one denoising step x + sigma_L^2 * s(x, sigma_L) (Tweedie), removing the last level's noise.
        final_denoise: bool = true,
        /// Number of noise levels L: none = the schedule's own levels (NCSN's); n = n levels of the schedule's default spacing (e.g. for continuous schedules).
        levels: Option<usize> = None,
    }
}

pub struct AnnealedLangevin {
    params: AnnealedLangevinParams,
}

impl Sampler for AnnealedLangevin {
    fn grid(&self) -> GridRequest {
        GridRequest::new(self.params.levels, Spacing::Default)
    }

    fn step_size(&self) -> Option<(&'static str, f64)> {
        Some(("eps", self.params.eps))
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        mut x: Tensor,
        grid: &Grid,
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let levels: Vec<f64> = grid.sigmas().iter().copied().filter(|s| *s > 0.0).collect();
        let Some(&smallest) = levels.last() else { return Ok(x) };
        let n = x.dim(0)?;
        let steps = self.params.steps_per_level;
        let total = levels.len() * steps + usize::from(self.params.final_denoise);
        let mut step = 0;
        for &sigma in &levels {
            let alpha = self.params.eps * (sigma / smallest).powi(2);
            let sigma_batch = constant_sigma(sigma, n, x.device())?;
            for _ in 0..steps {
                let score = model.score(&x, &sigma_batch)?;
                x = langevin_step(&x, &score, alpha, rng)?;
                step += 1;
                on_step(StepInfo { step, total, sigma });
            }
        }
        if self.params.final_denoise {
            let score = model.score(&x, &constant_sigma(smallest, n, x.device())?)?;
            x = tweedie_denoise(&x, &score, smallest)?;
            on_step(StepInfo { step: total, total, sigma: 0.0 });
        }
        Ok(x)
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = AnnealedLangevinParams::from_raw(raw)?;
    scorelab::sampler::check_count(raw, "steps_per_level", params.steps_per_level, 100)?;
    if params.levels == Some(0) {
        return Err(raw.invalid("levels", "must be at least 1", "set e.g. `levels: 10`, or remove it for the schedule's own levels"));
    }
    // alpha = eps at the smallest level; a step of 1 or more already overshoots every mode.
    scorelab::sampler::check_step_size(raw, "eps", params.eps, 1.0, "set e.g. `eps: 2e-5` (the step at the smallest noise level)")?;
    Ok(Built::new(Box::new(AnnealedLangevin { params: params.clone() }), &params))
}

inventory::submit! {
    Plugin {
        name: "annealed_langevin",
        about: "annealed Langevin dynamics, alpha_i = eps * sigma_i^2 / sigma_L^2 (NCSN)",
        params: AnnealedLangevinParams::docs,
        build: Builder::Sampler(build),
    }
}
