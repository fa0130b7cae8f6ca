//! Validation of every numeric parameter of the sampler and schedule plugins: non-finite
//! values, step sizes past what sampling survives, and noise levels out of order or too large
//! are refused at resolve time (so `--dry-run` catches them), naming the key, with the value
//! printed compactly.

use crate::common::{replace_line, resolve_error, SMALL_GMM};

fn with_schedule(schedule: &str) -> String {
    replace_line(SMALL_GMM, "schedule:", &format!("schedule: {schedule}"))
}

fn with_sampler(sampler: &str) -> String {
    replace_line(SMALL_GMM, "sampler:", &format!("sampler: {sampler}"))
}

#[test]
fn huge_langevin_eps_is_refused_compactly() {
    let message = resolve_error(SMALL_GMM, &["sampler.eps=1e308"]);
    assert!(message.contains("`sampler.eps`"), "{message}");
    assert!(
        message.contains("must be in (0, 1], not 1e308"),
        "{message}"
    );
    assert!(message.len() < 400, "compact: {message}");
    let message = resolve_error(SMALL_GMM, &["sampler.eps=.nan"]);
    assert!(
        message.contains("`sampler.eps`") && message.contains("NaN"),
        "{message}"
    );
    let message = resolve_error(SMALL_GMM, &["sampler.eps=0.0"]);
    assert!(message.contains("`sampler.eps`"), "{message}");
}

#[test]
fn pc_snr_is_bounded() {
    let message = resolve_error(&with_sampler("{kind: pc, steps: 10, snr: 5.0}"), &[]);
    assert!(message.contains("`sampler.snr`"), "{message}");
    assert!(message.contains("must be in (0, 1], not 5"), "{message}");
    let message = resolve_error(&with_sampler("{kind: pc, steps: 10, snr: .inf}"), &[]);
    assert!(
        message.contains("`sampler.snr`") && message.contains("inf"),
        "{message}"
    );
}

#[test]
fn nan_schedule_parameters_are_refused() {
    let message = resolve_error(SMALL_GMM, &["schedule.sigma_min=.nan"]);
    assert!(message.contains("`schedule.sigma_min`"), "{message}");
    assert!(message.contains("NaN"), "{message}");
    let message = resolve_error(&with_schedule("{kind: edm, rho: .nan}"), &[]);
    assert!(
        message.contains("`schedule.rho`") && message.contains("NaN"),
        "{message}"
    );
    let message = resolve_error(&with_schedule("{kind: vp, beta_max: .nan}"), &[]);
    assert!(message.contains("`schedule.beta_max`"), "{message}");
}

#[test]
fn sigma_min_at_or_above_sigma_max_is_refused() {
    let message = resolve_error(SMALL_GMM, &["schedule.sigma_max=0.1"]);
    assert!(message.contains("schedule.sigma"), "{message}");
    assert!(message.contains("sigma_max"), "{message}");
    let message = resolve_error(
        &with_schedule("{kind: edm, sigma_min: 5.0, sigma_max: 1.0}"),
        &[],
    );
    assert!(message.contains("`schedule.sigma_max`"), "{message}");
    let message = resolve_error(
        &with_schedule("{kind: ve, sigma_min: 2.0, sigma_max: 2.0}"),
        &[],
    );
    assert!(message.contains("`schedule.sigma_max`"), "{message}");
}

#[test]
fn huge_sigma_max_is_refused_compactly() {
    for schedule in [
        "{kind: geometric, sigma_max: 1e300}",
        "{kind: ve, sigma_max: 1e300}",
        "{kind: edm, sigma_max: 1e300}",
    ] {
        let message = resolve_error(&with_schedule(schedule), &[]);
        assert!(
            message.contains("`schedule.sigma_max`"),
            "{schedule}: {message}"
        );
        assert!(
            message.contains("at most 1e20, not 1e300"),
            "{schedule}: {message}"
        );
    }
}

#[test]
fn vp_betas_must_be_ordered() {
    let message = resolve_error(
        &with_schedule("{kind: vp, beta_min: 5.0, beta_max: 1.0}"),
        &[],
    );
    assert!(message.contains("`schedule.beta_max`"), "{message}");
    let message = resolve_error(&with_schedule("{kind: ddpm, beta_start: .inf}"), &[]);
    assert!(message.contains("`schedule.beta_start`"), "{message}");
}

#[test]
fn heun_churn_must_be_finite() {
    let message = resolve_error(&with_sampler("{kind: heun, steps: 10, s_churn: .inf}"), &[]);
    assert!(
        message.contains("`sampler.s_churn`") && message.contains("inf"),
        "{message}"
    );
    let message = resolve_error(&with_sampler("{kind: rk45, rtol: .nan}"), &[]);
    assert!(message.contains("`sampler.rtol`"), "{message}");
}

#[test]
fn other_out_of_range_values_are_printed_compactly() {
    for (sampler, key) in [
        ("{kind: ddim, steps: 10, eta: 1e300}", "`sampler.eta`"),
        ("{kind: rk45, atol: -1e300}", "`sampler.atol`"),
    ] {
        let message = resolve_error(&with_sampler(sampler), &[]);
        assert!(message.contains(key), "{sampler}: {message}");
        assert!(message.contains("e300"), "{sampler}: {message}");
        assert!(message.len() < 400, "compact: {message}");
    }
    let message = resolve_error(&with_schedule("{kind: vp, beta_min: 1e300}"), &[]);
    assert!(
        message.contains("`schedule.beta_max`") && message.contains("1e300"),
        "{message}"
    );
    let message = resolve_error(&with_schedule("{kind: edm, rho: -1e300}"), &[]);
    assert!(
        message.contains("`schedule.rho`") && message.contains("-1e300"),
        "{message}"
    );
}
