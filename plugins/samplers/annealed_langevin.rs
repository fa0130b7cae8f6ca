//! `annealed_langevin`: annealed Langevin dynamics (Song & Ermon 2019, Alg. 1; NCSNv2 2020).
//! At each level sigma_i, from largest to smallest, T Langevin steps with step size
//! alpha_i = eps * sigma_i^2 / sigma_L^2; optionally a final denoising step.
//!
//! The step is the official NCSN code's, x + alpha * s + sqrt(2 alpha) * z, not the 2019
//! paper's printed x + alpha/2 * s + sqrt(alpha) * z: the two are the same chain with that
//! paper's alpha twice ours, so `eps` here is its epsilon / 2. It is NCSNv2's epsilon (its
//! technique 4 analyses this step: CIFAR-10's epsilon 6.2e-6 is the code's `step_lr`). The
//! default 2e-5 is the code's `step_lr`, the value behind NCSN's published samples.
//!
//! `eps: auto` is NCSNv2's technique 4: the eps that brings the variance after T steps at a
//! level, started from the level above, closest to the level's own (schedule::ncsnv2).

use candle_core::Tensor;
use scorelab::config::{ConfigError, NumberOrAuto, Params, RawParams};
use scorelab::network::{constant_sigma, ScoreModel};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::{langevin_step, tweedie_denoise, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::ncsnv2::{langevin_eps, mean_ratio};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `annealed_langevin`.
    pub struct AnnealedLangevinParams {
        /// Langevin steps at each noise level (T).
        steps_per_level: usize = 100 => 1..=scorelab::sampler::MAX_STEPS,
        /// Step size at the smallest level (the NCSN code's `step_lr` and NCSNv2's epsilon, the 2019 paper's epsilon / 2); level i uses alpha_i = eps * sigma_i^2 / sigma_L^2. Or `auto`: NCSNv2's technique 4, the eps that brings the variance ratio s_T^2 / sigma_i^2 = (1 - eps/sigma_L^2)^{2T} (gamma^2 - 2/(2 - eps/sigma_L^2)) + 2/(2 - eps/sigma_L^2) after T = steps_per_level steps closest to 1, for the walked levels' ratio gamma = (sigma_1 / sigma_L)^(1/(L-1)) (their mean ratio if not geometric; with one level, sigma_max / sigma_1, from the prior); the resolved config records the eps it chose.
        eps: NumberOrAuto = NumberOrAuto::Number(2e-5),
        /// End with one denoising step x + sigma_L^2 * s(x, sigma_L) (Tweedie), removing the last level's noise.
        final_denoise: bool = true,
        /// Number of noise levels L: none = the schedule's own levels (NCSN's); n = n levels of the schedule's default spacing (e.g. for continuous schedules).
        levels: Option<usize> = None => 0..=100_000,
    }
}

pub struct AnnealedLangevin {
    params: AnnealedLangevinParams,
    /// `eps` as given, or as `auto` solved it.
    eps: f64,
}

impl Sampler for AnnealedLangevin {
    fn grid(&self) -> GridRequest {
        GridRequest::new(self.params.levels, Spacing::Default)
    }

    fn step_size(&self) -> Option<(String, f64)> {
        Some(("eps".into(), self.eps))
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
        let Some(&smallest) = levels.last() else {
            return Ok(x);
        };
        let n = x.dim(0)?;
        let steps = self.params.steps_per_level;
        let total = levels.len() * steps + usize::from(self.params.final_denoise);
        let mut step = 0;
        for &sigma in &levels {
            let alpha = self.eps * (sigma / smallest).powi(2);
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
            on_step(StepInfo {
                step: total,
                total,
                sigma: 0.0,
            });
        }
        Ok(x)
    }
}

fn build(raw: &RawParams, context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = AnnealedLangevinParams::from_raw(raw)?;
    scorelab::sampler::check_count(raw, "steps_per_level", params.steps_per_level, 100)?;
    if params.levels == Some(0) {
        return Err(raw.invalid(
            "levels",
            "must be at least 1",
            "set e.g. `levels: 10`, or remove it for the schedule's own levels",
        ));
    }
    let eps = match params.eps {
        NumberOrAuto::Number(eps) => {
            // alpha = eps at the smallest level; a step of 1 or more already overshoots every mode.
            scorelab::sampler::check_step_size(
                raw,
                "eps",
                eps,
                1.0,
                "set e.g. `eps: 2e-5` (the step at the smallest noise level)",
            )?;
            eps
        }
        NumberOrAuto::Auto => auto_eps(raw, &params, context)?,
    };
    // `auto` is recorded as the eps it chose; a number as it was written.
    let params = AnnealedLangevinParams {
        eps: NumberOrAuto::Number(eps),
        ..params
    };
    let sampler = AnnealedLangevin {
        params: params.clone(),
        eps,
    };
    Ok(Built::new(Box::new(sampler), &params))
}

/// `eps: auto`: NCSNv2's technique 4 on the levels this sampler walks. With one level, its
/// ratio is the one from the prior's sigma_max, where the chain starts.
fn auto_eps(
    raw: &RawParams,
    params: &AnnealedLangevinParams,
    context: &SamplerContext,
) -> Result<f64, ConfigError> {
    let grid = context.grid(GridRequest::new(params.levels, Spacing::Default));
    let levels: Vec<f64> = grid.sigmas().iter().copied().filter(|s| *s > 0.0).collect();
    let gamma = match levels[..] {
        [only] => Some(context.schedule.sigma_max() / only),
        _ => mean_ratio(&levels),
    };
    let solved = match (gamma, levels.last()) {
        (Some(gamma), Some(&last)) => langevin_eps(last, gamma, params.steps_per_level),
        _ => None,
    };
    solved.ok_or_else(|| {
        raw.invalid(
            "eps",
            format!(
                "`auto` (NCSNv2's technique 4) balances the step against how much the noise \
                 level shrinks from one level to the next, but the {} level(s) this sampler \
                 walks (from the prior's sigma_max {}) do not shrink",
                levels.len(),
                scorelab::config::number(context.schedule.sigma_max())
            ),
            "set `eps` to a number (e.g. `eps: 2e-5`)",
        )
    })
}

inventory::submit! {
    Plugin {
        name: "annealed_langevin",
        about: "annealed Langevin dynamics, alpha_i = eps * sigma_i^2 / sigma_L^2 (NCSN)",
        params: AnnealedLangevinParams::docs,
        build: Builder::Sampler(build),
    }
}
