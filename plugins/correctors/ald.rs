//! `ald`: score_sde's `AnnealedLangevinDynamics` corrector: `steps` Langevin steps at one
//! level with eps = 2 alpha (r sigma_i)^2, NCSN's step rule (the step scales with the level's
//! variance) for ratio r, alpha as in `langevin`.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::pc::{check_langevin_corrector, repeat_steps};
use scorelab::sampler::sde_steps::{ald_corrector_step, corrector_alpha};
use scorelab::sampler::Corrector;
use scorelab::schedule::Grid;

params! {
    /// Parameters of `ald`.
    pub struct AldParams {
        /// The ratio r of the step's scale to the level's sigma (score_sde: 0.16).
        snr: f64 = 0.16,
        /// Langevin steps at each level (score_sde's `n_steps_each`: 1).
        steps: usize = 1 => 1..=scorelab::sampler::MAX_STEPS,
    }
}

pub struct Ald {
    params: AldParams,
}

impl Corrector for Ald {
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
            ald_corrector_step(model, x, sigma, snr, alpha, rng)
        })
    }

    fn step_size(&self) -> Option<(&'static str, f64)> {
        Some(("snr", self.params.snr))
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Corrector> {
    let params = AldParams::from_raw(raw)?;
    check_langevin_corrector(raw, params.steps, params.snr)?;
    Ok(Built::new(
        Box::new(Ald {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "ald",
        about: "annealed Langevin dynamics, step 2 alpha (snr sigma)^2 (score_sde's AnnealedLangevinDynamics)",
        params: AldParams::docs,
        build: Builder::Corrector(build),
    }
}
