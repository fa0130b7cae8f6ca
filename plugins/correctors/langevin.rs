//! `langevin`: score_sde's `LangevinCorrector` (Song et al. 2021, Alg. 5): `steps` Langevin
//! steps at one level, x + eps s + sqrt(2 eps) z with eps = 2 alpha (r ||z|| / ||s||)^2 for
//! signal-to-noise ratio r and alpha_i = (s(t_i) / s(t_{i+1}))^2, score_sde's 1 - beta_i (1 for
//! VE). The norms are batch means of per-sample norms, as score_sde takes them.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::pc::{check_langevin_corrector, repeat_steps};
use scorelab::sampler::sde_steps::{corrector_alpha, langevin_corrector_step};
use scorelab::sampler::Corrector;
use scorelab::schedule::Grid;

params! {
    /// Parameters of `langevin`.
    pub struct LangevinParams {
        /// The signal-to-noise ratio r that sets the step (score_sde's VE CIFAR-10: 0.16).
        snr: f64 = 0.16,
        /// Langevin steps at each level (score_sde's `n_steps_each`: 1).
        steps: usize = 1 => 1..=scorelab::sampler::MAX_STEPS,
    }
}

pub struct Langevin {
    params: LangevinParams,
}

impl Corrector for Langevin {
    fn correct(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        let (sigma, alpha) = (grid.sigmas()[i], corrector_alpha(grid, i));
        let snr = self.params.snr;
        repeat_steps(self.params.steps, x, |x| {
            langevin_corrector_step(model, x, sigma, snr, alpha, rng)
        })
    }

    fn step_size(&self) -> Option<(&'static str, f64)> {
        Some(("snr", self.params.snr))
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Corrector> {
    let params = LangevinParams::from_raw(raw)?;
    check_langevin_corrector(raw, params.steps, params.snr)?;
    Ok(Built::new(
        Box::new(Langevin {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "langevin",
        about: "Langevin steps sized by the signal-to-noise ratio (score_sde's LangevinCorrector)",
        params: LangevinParams::docs,
        build: Builder::Corrector(build),
    }
}
