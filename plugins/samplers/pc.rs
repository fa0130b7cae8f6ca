//! `pc`: predictor-corrector sampling (Song et al. 2021, Alg. 2 and 3). At each level of the
//! grid, `corrector_steps` corrector steps at that level, then the predictor's step to the
//! next level; the last level's "predictor" is the denoising step to 0. Any predictor pairs
//! with any corrector; `none` skips that half. NFE = levels x (corrector_steps, if a
//! corrector) + levels - 1 (if a predictor) + 1.
//!
//! Predictors: `euler_maruyama` (the reverse SDE in x, as the `euler_maruyama` sampler),
//! `reverse_diffusion` (its discretisation in sigma space, x + (sigma_i^2 - sigma_{i+1}^2) s +
//! sqrt(sigma_i^2 - sigma_{i+1}^2) z), `ddpm` (the ancestral step with the posterior
//! variance, as the `ddpm` sampler). Correctors: `langevin` (step 2 alpha (r ||z|| / ||s||)^2)
//! and `ald` (step 2 alpha (r sigma_i)^2), with alpha_i = (s(t_i) / s(t_{i+1}))^2, score_sde's
//! 1 - beta_i (1 for VE).

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::sde_steps::{
    ald_corrector_step, corrector_alpha, langevin_corrector_step, reverse_diffusion_step,
    reverse_sde_step,
};
use scorelab::sampler::steps::{
    ancestral_split, ancestral_step, denoise_at, final_denoise, score_at, walk_levels,
};
use scorelab::sampler::{check_steps, Sampler, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};
use serde::{Deserialize, Serialize};

/// How `pc` moves from one level to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predictor {
    /// Euler-Maruyama on the reverse SDE in x (score_sde's `EulerMaruyamaPredictor`).
    EulerMaruyama,
    /// The reverse of the forward step in sigma space (score_sde's `ReverseDiffusionPredictor`).
    ReverseDiffusion,
    /// DDPM's ancestral step (score_sde's `AncestralSamplingPredictor`).
    Ddpm,
    /// No predictor: the corrector alone at each level (annealed Langevin).
    None,
}

/// How `pc` refines the samples at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corrector {
    /// Langevin with the step set by the signal-to-noise ratio (score_sde's `LangevinCorrector`).
    Langevin,
    /// Annealed Langevin dynamics, step 2 alpha (snr sigma)^2 (score_sde's `AnnealedLangevinDynamics`).
    Ald,
    /// No corrector: the predictor alone.
    None,
}

params! {
    /// Parameters of `pc`.
    pub struct PcParams {
        /// The predictor: euler_maruyama, reverse_diffusion, ddpm or none.
        predictor: Predictor = Predictor::ReverseDiffusion,
        /// The corrector: langevin, ald or none.
        corrector: Corrector = Corrector::Langevin,
        /// Corrector steps at each level (score_sde: 1).
        corrector_steps: usize = 1,
        /// The corrector's signal-to-noise ratio r (score_sde's VE CIFAR-10: 0.16).
        snr: f64 = 0.16,
        /// Noise levels, the last followed by the denoising step to 0 (score_sde's N: 1000).
        steps: usize = 1000,
        /// Spacing of the levels: default (the schedule's own: uniform in t for ve and vp), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct Pc {
    pub params: PcParams,
}

impl Pc {
    fn correct(
        &self,
        model: &dyn ScoreModel,
        mut x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        let p = &self.params;
        let sigma = grid.sigmas()[i];
        let alpha = corrector_alpha(grid, i);
        for _ in 0..p.corrector_steps {
            x = match p.corrector {
                Corrector::Langevin => {
                    langevin_corrector_step(model, &x, sigma, p.snr, alpha, rng)?
                }
                Corrector::Ald => ald_corrector_step(model, &x, sigma, p.snr, alpha, rng)?,
                Corrector::None => return Ok(x),
            };
        }
        Ok(x)
    }

    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        let (sigma, sigma_next) = (grid.sigmas()[i], grid.sigmas()[i + 1]);
        match self.params.predictor {
            Predictor::EulerMaruyama => reverse_sde_step(model, &x, grid, i, rng),
            Predictor::ReverseDiffusion => {
                let score = score_at(model, &x, sigma)?;
                reverse_diffusion_step(&x, &score, sigma, sigma_next, rng)
            }
            Predictor::Ddpm => {
                let denoised = denoise_at(model, &x, sigma)?;
                ancestral_step(
                    &x,
                    &denoised,
                    sigma,
                    ancestral_split(sigma, sigma_next, 1.0),
                    rng,
                )
            }
            Predictor::None => Ok(x),
        }
    }
}

impl Sampler for Pc {
    fn grid(&self) -> GridRequest {
        GridRequest::new(Some(self.params.steps), self.params.grid)
    }

    fn step_size(&self) -> Option<(&'static str, f64)> {
        Some(("snr", self.params.snr))
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        walk_levels(x, grid, on_step, |x, i, sigma, sigma_next| {
            let x = self.correct(model, x, grid, i, rng)?;
            if sigma_next > 0.0 {
                self.predict(model, x, grid, i, rng)
            } else {
                final_denoise(model, &x, sigma)
            }
        })
    }
}

fn build(raw: &RawParams, _: &scorelab::sampler::SamplerContext) -> BuildResult<dyn Sampler> {
    let params = PcParams::from_raw(raw)?;
    check_steps(raw, params.steps, 1000)?;
    if params.corrector_steps > 0 {
        scorelab::sampler::check_count(raw, "corrector_steps", params.corrector_steps, 1)?;
    }
    if params.predictor == Predictor::None
        && (params.corrector == Corrector::None || params.corrector_steps == 0)
    {
        return Err(raw.invalid("predictor", "with no predictor and no corrector steps nothing moves the samples", "choose a predictor (euler_maruyama, reverse_diffusion, ddpm) or a corrector (langevin, ald) with `corrector_steps` >= 1"));
    }
    // The corrector's step is 2 (snr |z| / |score|)^2: snr above 1 gives steps larger than
    // the noise itself (Song et al. 2021 use 0.01 to 0.17).
    scorelab::sampler::check_step_size(raw, "snr", params.snr, 1.0, "set e.g. `snr: 0.16`")?;
    Ok(Built::new(
        Box::new(Pc {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "pc",
        about: "predictor-corrector: any of euler_maruyama/reverse_diffusion/ddpm/none with langevin/ald/none (Song et al. 2021)",
        params: PcParams::docs,
        build: Builder::Sampler(build),
    }
}
