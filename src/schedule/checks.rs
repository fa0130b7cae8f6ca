//! Checks of the parameters schedules share: the noise levels' bounds (every schedule refuses
//! a largest level past [`SIGMA_MAX_LIMIT`] through one function, so they all blame the same
//! key with the same words), the `eps` of continuous-time schedules, and the length and
//! levels of discrete chains.

use crate::config::{number, ConfigError, NumberOrAuto, RawParams};
use crate::samples::Samples;

/// The largest noise level accepted: beyond it sigma^2 overflows f32 and every sample is NaN.
pub const SIGMA_MAX_LIMIT: f64 = 1e20;

/// The smallest `sigma_min` accepted (`ve`, `geometric`, `edm`): 1e-20 was tested to
/// train and sample, 1e-308 gives NaN (scores scale as 1/sigma^2).
pub const SIGMA_MIN_LIMIT: f64 = 1e-20;

/// Most steps a discrete chain may have (its tables are built when the trial is resolved;
/// DDPM uses 1000, improved DDPM up to 4000).
pub const MAX_TIMESTEPS: usize = 100_000;

/// Refuses a `sigma_min` that is not positive and finite, or below [`SIGMA_MIN_LIMIT`];
/// `example` is the value the fix suggests.
pub fn check_sigma_min(raw: &RawParams, sigma_min: f64, example: &str) -> Result<(), ConfigError> {
    if !(sigma_min > 0.0 && sigma_min.is_finite()) {
        return Err(raw.invalid(
            "sigma_min",
            format!("must be positive, not {}", number(sigma_min)),
            format!("set e.g. `sigma_min: {example}`"),
        ));
    }
    if sigma_min < SIGMA_MIN_LIMIT {
        return Err(raw.invalid(
            "sigma_min",
            format!(
                "{} is below the limit of {} (scores scale as 1/sigma^2, which overflows)",
                number(sigma_min),
                number(SIGMA_MIN_LIMIT)
            ),
            format!("set e.g. `sigma_min: {example}`"),
        ));
    }
    Ok(())
}

/// `sigma_max` as written, `auto` taken as the training data's largest pairwise distance
/// (SMLD's technique 1), checked by [`check_sigma_max`] with the fix of schedules that
/// accept `auto`.
pub fn resolve_sigma_max(
    raw: &RawParams,
    written: NumberOrAuto,
    sigma_min: f64,
    training_data: &Samples,
) -> Result<f64, ConfigError> {
    let sigma_max = match written {
        NumberOrAuto::Number(v) => v,
        NumberOrAuto::Auto => training_data.max_pairwise_distance(),
    };
    check_sigma_max(
        raw,
        written,
        sigma_max,
        sigma_min,
        "set `sigma_max: auto` (the data's largest pairwise distance)",
    )?;
    Ok(sigma_max)
}

/// The one check of a schedule's `sigma_max`: at most [`SIGMA_MAX_LIMIT`], finite, and above
/// `sigma_min` (call after [`check_sigma_min`]). `written` is the value as the user gave it,
/// `fix` what to set when it is too large. A failure blames `sigma_max`, except that an
/// `auto` level (the data's largest pairwise distance, reported with the message) below
/// `sigma_min` blames `sigma_min`: the distance is no value the user wrote.
pub fn check_sigma_max(
    raw: &RawParams,
    written: NumberOrAuto,
    sigma_max: f64,
    sigma_min: f64,
    fix: &str,
) -> Result<(), ConfigError> {
    if let NumberOrAuto::Number(v) = written {
        if !(v.is_finite() && v > 0.0) {
            return Err(raw.invalid(
                "sigma_max",
                format!("must be a positive finite number, not {}", number(v)),
                "set e.g. `sigma_max: 50`, or `sigma_max: auto` (the data's largest pairwise distance)",
            ));
        }
    }
    if sigma_max > SIGMA_MAX_LIMIT {
        return Err(raw.invalid(
            "sigma_max",
            format!(
                "must be at most {}, not {}",
                number(SIGMA_MAX_LIMIT),
                number(sigma_max)
            ),
            fix,
        ));
    }
    if !(sigma_max > sigma_min && sigma_max.is_finite()) {
        let (key, what) = match written {
            NumberOrAuto::Auto => (
                "sigma_min",
                format!("`auto` (the data's largest pairwise distance, {sigma_max:.4})"),
            ),
            NumberOrAuto::Number(v) => ("sigma_max", number(v)),
        };
        return Err(raw.invalid(
            key,
            format!(
                "sigma_max ({what}) must be above sigma_min ({})",
                number(sigma_min)
            ),
            "raise `sigma_max` or lower `sigma_min`",
        ));
    }
    Ok(())
}

/// Checks that `eps` (the value of `key`, a continuous schedule's first or last time) lies in
/// (0, 1).
pub fn check_eps(raw: &RawParams, key: &str, eps: f64) -> Result<(), ConfigError> {
    if eps > 0.0 && eps < 1.0 {
        Ok(())
    } else {
        Err(raw.invalid(
            key,
            format!("must lie in (0, 1), not {}", number(eps)),
            format!("set e.g. `{key}: 1e-5`"),
        ))
    }
}

/// Refuses a discrete chain's `timesteps` above [`MAX_TIMESTEPS`].
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

/// A discrete chain's betas give noise levels that are positive at the first step and at
/// most [`SIGMA_MAX_LIMIT`] at the last: sigma_T^2 = 1 / alpha_bar_T - 1, so many steps of
/// large betas overflow (and a beta of 0 gives sigma = 0, where scores are infinite). Its
/// largest level is not a parameter, so `key` names the one to change.
pub fn check_chain(
    raw: &RawParams,
    key: &str,
    betas: &[f64],
    fix: &str,
) -> Result<(), ConfigError> {
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
    if sigma_last.is_nan() || sigma_last > SIGMA_MAX_LIMIT {
        return Err(raw.invalid(
            key,
            format!(
                "gives a last noise level sigma_T = {} (alpha_bar_T = e^{:.1}), above the limit of {}",
                number(sigma_last),
                log_alpha_bar,
                number(SIGMA_MAX_LIMIT)
            ),
            fix,
        ));
    }
    Ok(())
}
