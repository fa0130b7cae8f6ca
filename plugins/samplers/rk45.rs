//! `rk45`: the probability-flow ODE solved by adaptive Dormand-Prince 5(4), as score_sde's
//! `ode_sampler` does with scipy's RK45. The solve runs in the schedule's time t, from the
//! grid's first level down to its last, on dx^/dt = sigma'(t) / sigma(t) (x^ - D(x^; sigma(t)))
//! (EDM eq. 4 in sigma space), then takes the denoising step to 0. Only the grid's endpoints
//! are used; the solver picks its own steps, so the NFE is as counted.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::ode::{solve_rk45, SolveError, SolveStats, Tolerance};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{denoise_at, final_denoise, ode_derivative};
use scorelab::sampler::{Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, Schedule};

params! {
    /// Parameters of `rk45`.
    pub struct Rk45Params {
        /// Relative tolerance of the adaptive solver (score_sde: 1e-5).
        rtol: f64 = 1e-5,
        /// Absolute tolerance of the adaptive solver (score_sde: 1e-5).
        atol: f64 = 1e-5,
    }
}

/// Progress is reported in thousandths of the time span covered.
const PROGRESS_TOTAL: usize = 1000;

pub struct Rk45 {
    pub params: Rk45Params,
}

/// Integrates the probability-flow ODE in sigma space from time `t0` to `t1` of `schedule`
/// with Dormand-Prince; `on_step` sees each accepted time.
pub fn integrate_pf_ode(
    model: &dyn ScoreModel,
    x: Tensor,
    schedule: &dyn Schedule,
    t0: f64,
    t1: f64,
    tolerance: Tolerance,
    on_step: &mut dyn FnMut(f64),
) -> candle_core::Result<(Tensor, SolveStats)> {
    let mut derivative = |t: f64, y: &Tensor| -> candle_core::Result<Tensor> {
        let sigma = schedule.sigma(t);
        let denoised = denoise_at(model, y, sigma)?;
        // dx/dt = dx/dsigma * sigma'(t).
        ode_derivative(y, &denoised, sigma)? * schedule.sigma_derivative(t)
    };
    solve_rk45(&mut derivative, x, t0, t1, tolerance, &mut |t, _| {
        on_step(t)
    })
    .map_err(|e| match e {
        SolveError::Candle(inner) => inner,
        other => candle_core::Error::Msg(format!("rk45 sampler: {other}")),
    })
}

impl Sampler for Rk45 {
    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        _rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let levels = grid.steps();
        if levels == 0 {
            return Ok(x);
        }
        let last = levels - 1;
        let sigma_end = grid.sigmas()[last];
        let (t0, t1) = (grid.t(0), grid.t(last));
        let tolerance = Tolerance {
            rtol: self.params.rtol,
            atol: self.params.atol,
        };
        let span = (t1 - t0).abs().max(f64::MIN_POSITIVE);
        let schedule = grid.schedule();
        let mut progress = |t: f64| {
            let done = ((t - t0).abs() / span * PROGRESS_TOTAL as f64) as usize;
            on_step(StepInfo {
                step: done.min(PROGRESS_TOTAL - 1),
                total: PROGRESS_TOTAL,
                sigma: schedule.sigma(t),
            });
        };
        let (x, _) = integrate_pf_ode(model, x, schedule, t0, t1, tolerance, &mut progress)?;
        let x = final_denoise(model, &x, sigma_end)?;
        on_step(StepInfo {
            step: PROGRESS_TOTAL,
            total: PROGRESS_TOTAL,
            sigma: 0.0,
        });
        Ok(x)
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = Rk45Params::from_raw(raw)?;
    // Tolerances are error bounds per step: a relative one of 1 (100 %) or more, or an absolute
    // one as large as the data, accepts any step, so the solve is meaningless.
    for (key, value) in [("rtol", params.rtol), ("atol", params.atol)] {
        if !(value > 0.0 && value < 1.0) {
            return Err(raw.invalid(
                key,
                format!(
                    "must be positive and below 1, not {} (an error bound of 1 or more accepts any step)",
                    scorelab::config::number(value)
                ),
                format!("set e.g. `{key}: 1e-5` (score_sde), or 1e-3 for a fast, rough solve"),
            ));
        }
    }
    Ok(Built::new(
        Box::new(Rk45 {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "rk45",
        about: "adaptive Dormand-Prince 5(4) on the probability-flow ODE in t, then a denoising step (score_sde)",
        params: Rk45Params::docs,
        build: Builder::Sampler(build),
    }
}
