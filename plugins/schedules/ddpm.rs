//! `ddpm`: the discrete chain of Ho et al. 2020, T = 1000 steps with betas linear from
//! beta_start = 1e-4 to beta_end = 0.02, so alpha_bar_i = prod_{j <= i} (1 - beta_j),
//! s_i = sqrt(alpha_bar_i) and sigma_i = sqrt((1 - alpha_bar_i) / alpha_bar_i). Training
//! draws a step uniformly; sampling walks all T steps by default (see
//! `scorelab::schedule::discrete` for how samplers see the chain between steps).

use scorelab::config::{Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::checks::{check_chain, check_timesteps};
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
        timesteps: usize = 1000 => 0..=100_000,
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
