//! Validation of every numeric parameter of the sampler and schedule plugins: non-finite
//! values, step sizes past what sampling survives, and noise levels out of order or too large
//! are refused at resolve time (so `--dry-run` catches them), naming the key, with the value
//! printed compactly.

use crate::common::{replace_line, resolve, resolve_error, SMALL_GMM};

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
    for corrector in ["langevin", "ald"] {
        let sampler =
            format!("{{kind: pc, steps: 10, corrector: {{kind: {corrector}, snr: 5.0}}}}");
        let message = resolve_error(&with_sampler(&sampler), &[]);
        assert!(message.contains("`sampler.corrector.snr`"), "{message}");
        assert!(message.contains("must be in (0, 1], not 5"), "{message}");
    }
    let sampler = "{kind: pc, steps: 10, corrector: {kind: langevin, snr: .inf}}";
    let message = resolve_error(&with_sampler(sampler), &[]);
    assert!(
        message.contains("`sampler.corrector.snr`") && message.contains("inf"),
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

/// `SMALL_GMM` with both the schedule and the sampler replaced.
fn with_schedule_and_sampler(schedule: &str, sampler: &str) -> String {
    replace_line(
        &with_schedule(schedule),
        "sampler:",
        &format!("sampler: {sampler}"),
    )
}

/// The error for one absurd value: it names the key, says the limit and a fix, compactly.
fn assert_refused(text: &str, key: &str, says: &[&str]) {
    let message = resolve_error(text, &[]);
    assert!(message.contains(&format!("`{key}`")), "{key}: {message}");
    for part in says {
        assert!(
            message.contains(part),
            "{key} should say `{part}`: {message}"
        );
    }
    assert!(message.contains("Fix: "), "{message}");
    assert!(message.len() < 500, "compact: {message}");
}

fn assert_accepted(text: &str) {
    if let Err(e) = resolve(text, &[]) {
        panic!("a value researchers use was refused: {e}");
    }
}

#[test]
fn churn_and_noise_scales_have_upper_bounds() {
    let heun = |params: &str| with_sampler(&format!("{{kind: heun, steps: 10, {params}}}"));
    assert_refused(
        &heun("s_churn: 1e308"),
        "sampler.s_churn",
        &["1e308 is above the limit of 1000", "EDM uses up to 80"],
    );
    assert_refused(
        &heun("s_churn: 40, s_noise: 1e308"),
        "sampler.s_noise",
        &["1e308 is above the limit of 10"],
    );
    assert_refused(
        &with_sampler("{kind: euler_ancestral, steps: 10, s_noise: 1e308}"),
        "sampler.s_noise",
        &["1e308 is above the limit of 10"],
    );
    // EDM's tuned values pass.
    assert_accepted(&heun("s_churn: 80, s_noise: 1.007"));
    assert_accepted(&with_sampler(
        "{kind: euler_ancestral, steps: 10, s_noise: 1.0}",
    ));
}

#[test]
fn ode_tolerances_lie_in_zero_one() {
    for (params, key, value) in [
        ("rtol: 1e308", "sampler.rtol", "not 1e308"),
        ("rtol: 1.0", "sampler.rtol", "not 1 "),
        ("atol: 2.0", "sampler.atol", "not 2 "),
        ("atol: 0.0", "sampler.atol", "not 0 "),
    ] {
        assert_refused(
            &with_sampler(&format!("{{kind: rk45, {params}}}")),
            key,
            &["positive and below 1", value],
        );
    }
    assert_accepted(&with_sampler("{kind: rk45, rtol: 1e-3, atol: 1e-3}"));
}

#[test]
fn vp_beta_max_has_an_upper_bound() {
    for kind in ["vp", "sub_vp"] {
        assert_refused(
            &with_schedule_and_sampler(
                &format!("{{kind: {kind}, beta_max: 1e308}}"),
                "{kind: euler, steps: 10}",
            ),
            "schedule.beta_max",
            &["1e308 is above the limit of 50", "score_sde uses 20"],
        );
        assert_accepted(&with_schedule_and_sampler(
            &format!("{{kind: {kind}, beta_max: 20}}"),
            "{kind: euler, steps: 10}",
        ));
    }
}

#[test]
fn edm_training_distribution_and_grid_are_bounded() {
    let edm = |params: &str| {
        with_schedule_and_sampler(
            &format!("{{kind: edm, {params}}}"),
            "{kind: heun, steps: 5}",
        )
    };
    assert_refused(
        &edm("p_std: 1e308"),
        "schedule.p_std",
        &["1e308 is above the limit of 5"],
    );
    assert_refused(
        &edm("p_mean: 1e308"),
        "schedule.p_mean",
        &["1e308 is above the limit of 10"],
    );
    assert_refused(
        &edm("p_mean: -1e308"),
        "schedule.p_mean",
        &["must lie in [-10, 10], not -1e308"],
    );
    assert_refused(
        &edm("rho: 1e308"),
        "schedule.rho",
        &["1e308 is above the limit of 1000"],
    );
    assert_refused(
        &edm("rho: 0.1"),
        "schedule.rho",
        &["must lie in [0.5, 1000], not 0.1"],
    );
    assert_accepted(&edm("p_mean: -1.2, p_std: 1.2, rho: 7"));
    assert_accepted(&edm("p_mean: 10, p_std: 5, rho: 1000"));
}

#[test]
fn tiny_sigma_min_is_refused() {
    for schedule in [
        "{kind: geometric, sigma_min: 1e-308}",
        "{kind: ve, sigma_min: 1e-308}",
        "{kind: edm, sigma_min: 1e-308}",
    ] {
        assert_refused(
            &with_schedule_and_sampler(schedule, "{kind: euler, steps: 10}"),
            "schedule.sigma_min",
            &["1e-308 is below the limit of 1e-20"],
        );
    }
    assert_accepted(&with_schedule_and_sampler(
        "{kind: ve, sigma_min: 1e-20}",
        "{kind: euler, steps: 10}",
    ));
}

#[test]
fn discrete_chains_and_level_counts_are_bounded() {
    let euler = "{kind: euler, steps: 10}";
    // 10^5 steps of betas up to 0.02: alpha_bar_T = e^-1012, sigma_T overflows.
    assert_refused(
        &with_schedule_and_sampler("{kind: ddpm, timesteps: 100000}", euler),
        "schedule.timesteps",
        &["sigma_T = inf", "above the limit of 1e20"],
    );
    assert_refused(
        &with_schedule_and_sampler("{kind: ddpm, timesteps: 1000000000}", euler),
        "schedule.timesteps",
        &["above the limit of 100000"],
    );
    assert_refused(
        &with_schedule_and_sampler("{kind: cosine, offset: 1e308}", euler),
        "schedule.offset",
        &["gives beta_1 = 0"],
    );
    assert_refused(
        &with_schedule("{kind: geometric, num_levels: 1000000000}"),
        "schedule.num_levels",
        &["above the limit of 100000"],
    );
    assert_accepted(&with_schedule_and_sampler(
        "{kind: ddpm, timesteps: 4000}",
        euler,
    ));
    assert_accepted(&with_schedule_and_sampler(
        "{kind: cosine, timesteps: 4000}",
        euler,
    ));
}

#[test]
fn weighting_scales_are_bounded_and_printed_compactly() {
    let with_weighting =
        |weighting: &str| replace_line(SMALL_GMM, "weighting:", &format!("weighting: {weighting}"));
    assert_refused(
        &with_weighting("{kind: edm, sigma_data: 1e308}"),
        "weighting.sigma_data",
        &["1e308 is above the limit of 1e6"],
    );
    assert_refused(
        &with_weighting("{kind: snr, offset: 1e308}"),
        "weighting.offset",
        &["1e308 is above the limit of 1e6"],
    );
    assert_refused(
        &with_weighting("{kind: min_snr, gamma: -1e308}"),
        "weighting.gamma",
        &["not -1e308"],
    );
    assert_accepted(&with_weighting("{kind: snr, offset: 1}"));
    assert_accepted(&with_weighting("{kind: edm, sigma_data: 0.5}"));
}

#[test]
fn sampler_step_counts_and_grid_and_likelihood_tolerances_are_bounded() {
    let with = |sampler: &str| {
        SMALL_GMM.replace(
            "sampler: {kind: annealed_langevin, steps_per_level: 5, eps: 0.002}",
            sampler,
        )
    };
    for (sampler, key) in [
        ("sampler: {kind: euler, steps: 1000000000}", "sampler.steps"),
        (
            "sampler: {kind: annealed_langevin, steps_per_level: 2000000}",
            "sampler.steps_per_level",
        ),
        (
            "sampler: {kind: pc, steps: 10, corrector: {kind: ald, steps: 5000000}}",
            "sampler.corrector.steps",
        ),
    ] {
        let message = resolve_error(&with(sampler), &[]);
        assert!(
            message.contains(key) && message.contains("above the limit of 1e6 (bound 1..=1e6)"),
            "{message}"
        );
        assert!(message.contains("Fix:"), "{message}");
    }
    resolve(&with("sampler: {kind: euler, steps: 1000000}"), &[]).unwrap();

    let message = resolve_error(
        &with("sampler: {kind: euler, steps: 10, grid: karras(1e-308)}"),
        &[],
    );
    assert!(
        message.contains("rho in [0.5, 1000]") && message.contains("1e-308"),
        "{message}"
    );
    resolve(
        &with("sampler: {kind: euler, steps: 10, grid: karras(7)}"),
        &[],
    )
    .unwrap();

    let nll = SMALL_GMM.replace(
        "eval: [fd, mmd, mode_weights]",
        "eval: [{kind: nll_ode, rtol: 2.0}]",
    );
    let message = resolve_error(&nll, &[]);
    assert!(
        message.contains("rtol") && message.contains("(0, 1)"),
        "{message}"
    );
}
