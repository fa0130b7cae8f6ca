//! `pc`: predictor-corrector sampling (Song et al. 2021, Alg. 1). At each level of the grid
//! the corrector works at that level, then the predictor steps to the next; the last
//! level's "predictor" is the denoising step to 0. Predictors and correctors are plugin
//! kinds of their own (`runner plugins predictor`, `runner plugins corrector`), chosen by
//! name or as `{kind: NAME, ...}` tables; `none` skips that half. NFE = levels x (the
//! corrector's steps) + levels - 1 (if a predictor) + 1.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams, SubPlugin};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{sub_plugin, BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{final_denoise, walk_levels};
use scorelab::sampler::{check_steps, Corrector, Predictor, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

const DEFAULT_PREDICTOR: &str = "reverse_diffusion";
const DEFAULT_CORRECTOR: &str = "langevin";

params! {
    /// Parameters of `pc`.
    pub struct PcParams {
        /// The predictor: a name or `{kind: NAME, ...}` (`runner plugins predictor`: ancestral, ddpm, euler_maruyama, none, reverse_diffusion).
        predictor: SubPlugin = SubPlugin::named(DEFAULT_PREDICTOR),
        /// The corrector: a name or `{kind: NAME, snr: R, steps: N}` (`runner plugins corrector`: ald, langevin, none).
        corrector: SubPlugin = SubPlugin::named(DEFAULT_CORRECTOR),
        /// Noise levels, the last followed by the denoising step to 0 (score_sde's N: 1000).
        steps: usize = 1000 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own: uniform in t for ve and vp), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct Pc {
    params: PcParams,
    predictor: Box<dyn Predictor>,
    corrector: Box<dyn Corrector>,
}

impl Sampler for Pc {
    fn grid(&self) -> GridRequest {
        GridRequest::new(Some(self.params.steps), self.params.grid)
    }

    fn step_size(&self) -> Option<(String, f64)> {
        let (key, value) = self.corrector.step_size()?;
        Some((format!("corrector.{key}"), value))
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
            let x = self.corrector.correct(model, x, grid, i, rng)?;
            if sigma_next > 0.0 {
                self.predictor.predict(model, x, grid, i, rng)
            } else {
                final_denoise(model, &x, sigma)
            }
        })
    }
}

/// `snr` and `corrector_steps` belonged to `pc` before correctors were plugins of their own.
fn refuse_moved_keys(raw: &RawParams) -> Result<(), scorelab::config::ConfigError> {
    for (old, new) in [("snr", "snr"), ("corrector_steps", "steps")] {
        if raw.get(old).is_some() {
            return Err(raw.invalid(
                old,
                "is a parameter of the corrector now",
                format!("write it in the corrector's table, e.g. `corrector: {{kind: langevin, {new}: ...}}`"),
            ));
        }
    }
    Ok(())
}

fn build(raw: &RawParams, context: &SamplerContext) -> BuildResult<dyn Sampler> {
    refuse_moved_keys(raw)?;
    let mut params = PcParams::from_raw(raw)?;
    check_steps(raw, params.steps, 1000)?;
    let (predictor, predictor_raw) =
        sub_plugin::<dyn Predictor>(raw, "predictor", DEFAULT_PREDICTOR)?;
    let predictor_built = (predictor.build)(&predictor_raw)?;
    if let Some(refusal) = predictor_built
        .plugin
        .refuses(context.schedule.discretization())
    {
        return Err(predictor_raw.invalid(&refusal.key, refusal.message, refusal.fix));
    }
    let (corrector, corrector_raw) =
        sub_plugin::<dyn Corrector>(raw, "corrector", DEFAULT_CORRECTOR)?;
    let corrector_built = (corrector.build)(&corrector_raw)?;
    if !predictor_built.plugin.moves() && !corrector_built.plugin.moves() {
        return Err(raw.invalid(
            "predictor",
            "with no predictor and no corrector nothing moves the samples",
            "choose a predictor (reverse_diffusion, ancestral, euler_maruyama, ddpm) or a corrector (langevin, ald)",
        ));
    }
    params.predictor = SubPlugin::resolved(predictor.name, predictor_built.params);
    params.corrector = SubPlugin::resolved(corrector.name, corrector_built.params);
    Ok(Built::new(
        Box::new(Pc {
            params: params.clone(),
            predictor: predictor_built.plugin,
            corrector: corrector_built.plugin,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "pc",
        about: "predictor-corrector: any predictor with any corrector (Song et al. 2021)",
        params: PcParams::docs,
        build: Builder::Sampler(build),
    }
}
