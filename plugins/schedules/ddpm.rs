//! `ddpm`: the discrete chain of Ho et al. 2020, T = 1000 steps with betas linear from
//! beta_start = 1e-4 to beta_end = 0.02, so alpha_bar_i = prod_{j <= i} (1 - beta_j),
//! s_i = sqrt(alpha_bar_i) and sigma_i = sqrt((1 - alpha_bar_i) / alpha_bar_i). Training
//! draws a step uniformly; sampling walks all T steps by default (see
//! `scorelab::schedule::discrete` for how samplers see the chain between steps).

use scorelab::config::{number, ConfigError, Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::discrete::DiscreteChain;
use scorelab::schedule::{Schedule, ScheduleContext};

params! {
    /// Parameters of `ddpm`.
    pub struct DdpmParams {
        /// beta_1, the noise variance added by the first step (Ho et al. 2020: 1e-4).
        beta_start: f64 = 1e-4,
        /// beta_T, the noise variance added by the last step (Ho et al. 2020: 0.02).
        beta_end: f64 = 0.02,
        /// Number of steps T of the chain (Ho et al. 2020: 1000).
        timesteps: usize = 1000,
    }
}

/// beta_1..beta_T linear from `start` to `end`.
pub fn linear_betas(start: f64, end: f64, timesteps: usize) -> Vec<f64> {
    if timesteps == 1 {
        return vec![start];
    }
    (0..timesteps)
        .map(|i| start + (end - start) * i as f64 / (timesteps - 1) as f64)
        .collect()
}

/// Most steps a discrete chain may have (its tables are built when the trial is resolved;
/// DDPM uses 1000, improved DDPM up to 4000).
pub const MAX_TIMESTEPS: usize = 100_000;

/// Refuses `timesteps` above [`MAX_TIMESTEPS`].
pub fn check_timesteps(raw: &RawParams, timesteps: usize) -> Result<(), ConfigError> {
    if timesteps > MAX_TIMESTEPS {
        return Err(raw.invalid(
            "timesteps",
            format!(
                "{timesteps} is above the limit of {} (the chain's tables are built before the sweep starts; DDPM uses 1000)",
                number(MAX_TIMESTEPS as f64)
            ),
            "set e.g. `timesteps: 1000`",
        ));
    }
    Ok(())
}

/// The chain's betas give noise levels that are positive at the first step and at most
/// 1e20 at the last: sigma_T^2 = 1 / alpha_bar_T - 1, so many steps of large betas overflow
/// (and a beta of 0 gives sigma = 0, where scores are infinite). `key` names the parameter
/// to change.
pub fn check_chain(
    raw: &RawParams,
    key: &str,
    betas: &[f64],
    fix: &str,
) -> Result<(), ConfigError> {
    let limit = scorelab::plugins::schedules::ve::SIGMA_MAX_LIMIT;
    let mut log_alpha_bar = 0.0;
    for (i, beta) in betas.iter().enumerate() {
        if !(*beta > 0.0 && *beta < 1.0) {
            return Err(raw.invalid(
                key,
                format!(
                    "gives beta_{} = {}, but every beta must lie in (0, 1)",
                    i + 1,
                    number(*beta)
                ),
                fix,
            ));
        }
        log_alpha_bar += (1.0 - beta).ln();
    }
    let sigma_last = (-log_alpha_bar).exp_m1().sqrt();
    // NaN (an overflowing chain) fails too.
    if sigma_last.is_nan() || sigma_last > limit {
        return Err(raw.invalid(
            key,
            format!(
                "gives a last noise level sigma_T = {} (alpha_bar_T = e^{:.1}), above the limit of {}",
                number(sigma_last),
                log_alpha_bar,
                number(limit)
            ),
            fix,
        ));
    }
    Ok(())
}

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = DdpmParams::from_raw(raw)?;
    for (key, beta) in [
        ("beta_start", params.beta_start),
        ("beta_end", params.beta_end),
    ] {
        if !(beta > 0.0 && beta < 1.0) {
            return Err(raw.invalid(
                key,
                format!("must lie in (0, 1), not {}", scorelab::config::number(beta)),
                "Ho et al. 2020 use beta_start: 1e-4, beta_end: 0.02",
            ));
        }
    }
    if params.timesteps < 2 {
        return Err(raw.invalid(
            "timesteps",
            format!("must be at least 2, not {}", params.timesteps),
            "set e.g. `timesteps: 1000`",
        ));
    }
    check_timesteps(raw, params.timesteps)?;
    let betas = linear_betas(params.beta_start, params.beta_end, params.timesteps);
    check_chain(
        raw,
        "timesteps",
        &betas,
        "use fewer timesteps or a lower beta_end (Ho et al. 2020: 1000 steps, beta_end 0.02, sigma_T = 157)",
    )?;
    let plugin: Box<dyn Schedule> = Box::new(DiscreteChain::from_betas(&betas));
    Ok(Built::new(plugin, &params))
}

inventory::submit! {
    Plugin {
        name: "ddpm",
        about: "DDPM's discrete chain: T steps, betas linear from beta_start to beta_end (Ho et al. 2020)",
        params: DdpmParams::docs,
        build: Builder::Schedule(build),
    }
}
