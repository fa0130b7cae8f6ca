//! `cosine`: improved DDPM's cosine chain (Nichol & Dhariwal 2021, eq. 17):
//! alpha_bar(t) = f(t) / f(0) with f(t) = cos^2((t/T + s) / (1 + s) * pi/2), the small offset
//! s keeping beta_1 from vanishing; beta_i = min(1 - alpha_bar(i) / alpha_bar(i-1), max_beta),
//! the clip avoiding the singularity at t = T where alpha_bar reaches 0. A discrete chain
//! like `ddpm` otherwise.

use std::f64::consts::FRAC_PI_2;

use scorelab::config::{Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::checks::{check_chain, check_timesteps};
use scorelab::schedule::discrete::DiscreteChain;
use scorelab::schedule::{Schedule, ScheduleContext};

params! {
    /// Parameters of `cosine`.
    pub struct CosineParams {
        /// Number of steps T of the chain (Nichol & Dhariwal 2021: 1000 for their comparisons; 4000 in some runs).
        timesteps: usize = 1000 => 0..=100_000,
        /// The offset s in f(t) = cos^2((t/T + s)/(1 + s) pi/2), so that sqrt(beta_1) is about the pixel bin size 1/127.5 (Nichol & Dhariwal 2021: 0.008).
        offset: f64 = 0.008,
        /// Largest beta: later betas are clipped to it, avoiding beta_T = 1 (Nichol & Dhariwal 2021: 0.999).
        max_beta: f64 = 0.999,
    }
}

/// alpha_bar at step `t` (0..=T) before clipping: f(t) / f(0).
pub fn cosine_alpha_bar(t: f64, timesteps: usize, offset: f64) -> f64 {
    let f = |t: f64| {
        ((t / timesteps as f64 + offset) / (1.0 + offset) * FRAC_PI_2)
            .cos()
            .powi(2)
    };
    f(t) / f(0.0)
}

/// beta_1..beta_T of the cosine chain, clipped at `max_beta`.
pub fn cosine_betas(timesteps: usize, offset: f64, max_beta: f64) -> Vec<f64> {
    (1..=timesteps)
        .map(|i| {
            let ratio = cosine_alpha_bar(i as f64, timesteps, offset)
                / cosine_alpha_bar((i - 1) as f64, timesteps, offset);
            (1.0 - ratio).min(max_beta)
        })
        .collect()
}

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = CosineParams::from_raw(raw)?;
    if params.timesteps < 2 {
        return Err(raw.invalid(
            "timesteps",
            format!("must be at least 2, not {}", params.timesteps),
            "set e.g. `timesteps: 1000`",
        ));
    }
    if !(params.offset >= 0.0 && params.offset.is_finite()) {
        return Err(raw.invalid(
            "offset",
            format!(
                "must be non-negative, not {}",
                scorelab::config::number(params.offset)
            ),
            "set e.g. `offset: 0.008`",
        ));
    }
    if !(params.max_beta > 0.0 && params.max_beta < 1.0) {
        return Err(raw.invalid(
            "max_beta",
            format!(
                "must lie in (0, 1), not {}",
                scorelab::config::number(params.max_beta)
            ),
            "set e.g. `max_beta: 0.999`",
        ));
    }
    check_timesteps(raw, params.timesteps)?;
    let betas = cosine_betas(params.timesteps, params.offset, params.max_beta);
    check_chain(
        raw,
        "offset",
        &betas,
        "set e.g. `offset: 0.008` (Nichol & Dhariwal 2021) with `timesteps: 1000`",
    )?;
    let plugin: Box<dyn Schedule> = Box::new(DiscreteChain::from_betas(&betas));
    Ok(Built::new(plugin, &params))
}

inventory::submit! {
    Plugin {
        name: "cosine",
        about: "improved DDPM's cosine chain: alpha_bar = f(t)/f(0), f = cos^2(((t/T + s)/(1 + s)) pi/2) (Nichol & Dhariwal 2021)",
        params: CosineParams::docs,
        build: Builder::Schedule(build),
    }
}
