//! The SDE-family schedules (ve, vp, sub_vp, ddpm, cosine, edm) against their closed forms
//! (DESIGN.md's table, the papers' formulas), the forward SDE's moments, published constants
//! and training-level statistics; and how the family resolves, schedules and weightings
//! together (defaults, training groups, bad values). The weightings' formulas are tested in
//! weightings.rs, which borrows this file's `close`, `beta` and `big_b`.

use std::sync::Arc;

use crate::common::{resolve, resolve_error, SMALL_GMM};
use scorelab::plugins::schedules::cosine::{cosine_alpha_bar, cosine_betas};
use scorelab::rng::Rng;
use scorelab::schedule::discrete::DiscreteChain;
use scorelab::schedule::{Grid, GridRequest, Schedule};

/// The schedule `overrides` resolve to on the small mixture.
fn schedule(overrides: &[&str]) -> Arc<dyn Schedule> {
    resolve(SMALL_GMM, overrides).unwrap()[0].schedule.clone()
}

/// Whether `a` and `b` agree to relative tolerance `rel`.
pub(crate) fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

/// score_sde's defaults: beta(t) = 0.1 + 19.9 t and its integral.
pub(crate) fn beta(t: f64) -> f64 {
    0.1 + 19.9 * t
}

/// B(t) = the integral of `beta` from 0 to t.
pub(crate) fn big_b(t: f64) -> f64 {
    0.1 * t + 0.5 * 19.9 * t * t
}

const TIMES: [f64; 6] = [1e-4, 0.01, 0.1, 0.37, 0.8, 1.0];

#[test]
fn ve_vp_sub_vp_match_the_closed_forms_of_the_table() {
    let ve = schedule(&["schedule=ve"]);
    let vp = schedule(&["schedule=vp"]);
    let sub_vp = schedule(&["schedule=sub_vp"]);
    for t in TIMES {
        // VE: s = 1, sigma = sigma_min (sigma_max / sigma_min)^t, g = sigma sqrt(2 ln(ratio)).
        let sigma = 0.01 * (50.0f64 / 0.01).powf(t);
        assert!(close(ve.sigma(t), sigma, 1e-12), "ve sigma({t})");
        assert_eq!(ve.scale(t), 1.0);
        assert_eq!(ve.drift(t), 0.0);
        let g2 = sigma * sigma * 2.0 * (50.0f64 / 0.01).ln();
        assert!(close(ve.diffusion_squared(t), g2, 1e-12), "ve g^2({t})");

        // VP: s = e^{-B/2}, sigma = sqrt(e^B - 1), f = -beta / 2, g^2 = beta.
        let (b, bt) = (beta(t), big_b(t));
        assert!(close(vp.scale(t), (-bt / 2.0).exp(), 1e-12), "vp s({t})");
        assert!(
            close(vp.sigma(t), (bt.exp() - 1.0).sqrt(), 1e-9),
            "vp sigma({t})"
        );
        assert!(close(vp.drift(t), -b / 2.0, 1e-12));
        assert!(close(vp.diffusion_squared(t), b, 1e-12));
        let s = vp.scale(t);
        assert!(
            close(s * s * (1.0 + vp.sigma(t).powi(2)), 1.0, 1e-12),
            "VP preserves variance at t = {t}"
        );

        // sub-VP: VP's s; x-space std 1 - e^{-B}, so sigma = (1 - e^{-B}) / s.
        assert!(close(sub_vp.scale(t), (-bt / 2.0).exp(), 1e-12));
        let std_x = 1.0 - (-bt).exp();
        assert!(
            close(sub_vp.sigma(t), std_x / sub_vp.scale(t), 1e-9),
            "sub_vp sigma({t})"
        );
        assert!(close(sub_vp.drift(t), -b / 2.0, 1e-12));
        let g2 = b * (1.0 - (-2.0 * bt).exp());
        assert!(
            close(sub_vp.diffusion_squared(t), g2, 1e-9),
            "sub_vp g^2({t})"
        );
        assert!(
            sub_vp.sigma(t) < vp.sigma(t),
            "sub-VP's sigma is the smaller at t = {t}"
        );
    }
    // Endpoints and priors.
    assert!(close(ve.sigma_max(), 50.0, 1e-12) && close(ve.sigma(0.0), 0.01, 1e-12));
    assert_eq!(ve.prior_std(), ve.sigma_max());
    assert!(close(
        vp.prior_std(),
        (1.0 + vp.sigma_max().powi(2)).sqrt(),
        1e-12
    ));
    assert!(close(vp.prior_std(), (big_b(1.0) / 2.0).exp(), 1e-12));
    assert!(close(sub_vp.prior_std(), 1.0 / sub_vp.scale(1.0), 1e-12));
    assert_eq!((ve.t_end(), vp.t_end(), sub_vp.t_end()), (1e-5, 1e-3, 1e-3));
}

#[test]
fn derivatives_match_central_differences_and_t_of_sigma_inverts_sigma() {
    for name in ["ve", "vp", "sub_vp", "edm"] {
        let sched = schedule(&[&format!("schedule={name}")]);
        let times: Vec<f64> = match name {
            "edm" => vec![0.002, 0.1, 1.0, 17.0, 80.0],
            _ => TIMES.to_vec(),
        };
        for t in times {
            let h = 1e-6 * t.max(1e-3);
            let central = |f: &dyn Fn(f64) -> f64| (f(t + h) - f(t - h)) / (2.0 * h);
            let d_sigma = central(&|u| sched.sigma(u));
            let d_scale = central(&|u| sched.scale(u));
            assert!(
                close(sched.sigma_derivative(t), d_sigma, 1e-6),
                "{name}: sigma'({t}) = {} vs {d_sigma}",
                sched.sigma_derivative(t)
            );
            let tolerance = 1e-6 * sched.scale_derivative(t).abs().max(1e-9);
            assert!(
                (sched.scale_derivative(t) - d_scale).abs() <= tolerance,
                "{name}: s'({t})"
            );
            let back = sched.t_of_sigma(sched.sigma(t));
            assert!(
                close(back, t, 1e-9),
                "{name}: t_of_sigma(sigma({t})) = {back}"
            );
        }
    }
}

/// Integrates the forward SDE's moment equations dm/dt = f m, dv/dt = 2 f v + g^2 with RK4
/// from t = 0 (m = s(0), v = s(0)^2 sigma(0)^2: zero except for VE's sigma_min) and compares
/// with the marginal m = s(t), v = s(t)^2 sigma(t)^2: f and g are checked against (s, sigma).
#[test]
fn forward_sde_moments_follow_the_marginals() {
    for name in ["ve", "vp", "sub_vp"] {
        let sched = schedule(&[&format!("schedule={name}")]);
        let rhs = |t: f64, m: f64, v: f64| {
            let f = sched.drift(t);
            (f * m, 2.0 * f * v + sched.diffusion_squared(t))
        };
        let (mut m, mut v) = (
            sched.scale(0.0),
            (sched.scale(0.0) * sched.sigma(0.0)).powi(2),
        );
        let steps = 4000;
        let h = 1.0 / steps as f64;
        for k in 0..steps {
            let t = k as f64 * h;
            let (a1, b1) = rhs(t, m, v);
            let (a2, b2) = rhs(t + h / 2.0, m + h / 2.0 * a1, v + h / 2.0 * b1);
            let (a3, b3) = rhs(t + h / 2.0, m + h / 2.0 * a2, v + h / 2.0 * b2);
            let (a4, b4) = rhs(t + h, m + h * a3, v + h * b3);
            m += h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4);
            v += h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4);
            let t = t + h;
            if (k + 1) % 500 == 0 {
                let (s, sigma) = (sched.scale(t), sched.sigma(t));
                assert!(close(m, s, 1e-9), "{name}: mean at t = {t}: {m} vs {s}");
                assert!(
                    close(v, (s * sigma).powi(2), 1e-8),
                    "{name}: variance at t = {t}: {v} vs {}",
                    (s * sigma).powi(2)
                );
            }
        }
    }
}

#[test]
fn uniform_t_grids_run_from_one_to_sampling_eps() {
    for (name, eps) in [("ve", 1e-5), ("vp", 1e-3), ("sub_vp", 1e-3)] {
        let sched = schedule(&[&format!("schedule={name}")]);
        let grid = Grid::new(sched.as_ref(), GridRequest::default());
        let sigmas = grid.sigmas();
        assert_eq!(
            sigmas.len(),
            1001,
            "{name}: score_sde's N = 1000 levels, then 0"
        );
        assert_eq!(sigmas[1000], 0.0);
        for i in [0, 1, 500, 998, 999] {
            let t = 1.0 + (eps - 1.0) * i as f64 / 999.0;
            assert!(
                close(grid.t(i), t, 1e-9),
                "{name}: level {i} at t = {}",
                grid.t(i)
            );
            assert!(close(grid.scale(i), sched.scale(t), 1e-9));
        }
        assert!(sigmas.windows(2).all(|w| w[1] < w[0]), "{name}: descending");
        let short = sched.default_grid(Some(10));
        assert_eq!(short.len(), 10);
        assert!(
            close(short[0], sched.sigma_max(), 1e-12) && close(short[9], sched.sigma(eps), 1e-12)
        );
        assert!(close(
            sched.t_of_sigma(short[3]),
            1.0 + (eps - 1.0) / 3.0,
            1e-9
        ));
    }
}

#[test]
fn ddpm_is_the_cumulative_product_of_its_linear_betas() {
    let sched = schedule(&["schedule=ddpm"]);
    let t_steps = 1000;
    let mut alpha_bar = 1.0;
    for i in 1..=t_steps {
        let beta = 1e-4 + (0.02 - 1e-4) * (i - 1) as f64 / 999.0;
        alpha_bar *= 1.0 - beta;
        let t = i as f64 / t_steps as f64;
        if [1, 2, 10, 250, 500, 999, 1000].contains(&i) {
            let sigma = ((1.0 - alpha_bar) / alpha_bar).sqrt();
            assert!(close(sched.sigma(t), sigma, 1e-9), "sigma at step {i}");
            assert!(
                close(sched.scale(t), alpha_bar.sqrt(), 1e-9),
                "s at step {i}"
            );
        }
    }
    // alpha_bar_T of Ho et al.'s schedule is about 4.04e-5: the prior is nearly N(0, I).
    assert!(
        (4.0e-5..4.1e-5).contains(&alpha_bar),
        "alpha_bar_T = {alpha_bar}"
    );
    assert!(close(sched.prior_std(), 1.0 / alpha_bar.sqrt(), 1e-9));
    let levels = sched.discrete_levels().unwrap();
    assert_eq!(levels.len(), t_steps);
    assert!(close(
        levels[999],
        ((1.0 - alpha_bar) / alpha_bar).sqrt(),
        1e-9
    ));
    assert!(
        close(sched.sigma(1e-3), (1e-4f64 / (1.0 - 1e-4)).sqrt(), 1e-9),
        "sigma_1 = sqrt(beta_1 / (1 - beta_1))"
    );
    let grid = Grid::new(sched.as_ref(), GridRequest::default());
    assert_eq!(grid.steps(), t_steps, "all T steps by default");
}

#[test]
fn cosine_matches_its_formula_and_clips_betas() {
    let sched = schedule(&["schedule=cosine"]);
    let f = |t: f64| {
        ((t / 1000.0 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    let betas = cosine_betas(1000, 0.008, 0.999);
    let first_clipped = betas.iter().position(|b| *b >= 0.999).unwrap();
    assert!(
        first_clipped > 990,
        "only the last steps are clipped: {first_clipped}"
    );
    assert_eq!(
        *betas.last().unwrap(),
        0.999,
        "beta_T is clipped at max_beta"
    );
    assert!(betas.iter().all(|b| *b > 0.0 && *b <= 0.999));
    for i in [1usize, 2, 100, 500, 900, 990] {
        assert!(i < first_clipped);
        let alpha_bar = f(i as f64) / f(0.0);
        assert!(close(
            cosine_alpha_bar(i as f64, 1000, 0.008),
            alpha_bar,
            1e-12
        ));
        let t = i as f64 / 1000.0;
        assert!(
            close(sched.scale(t).powi(2), alpha_bar, 1e-9),
            "alpha_bar at step {i}"
        );
        assert!(close(
            sched.sigma(t),
            ((1.0 - alpha_bar) / alpha_bar).sqrt(),
            1e-9
        ));
    }
    // s = 0.008 makes sqrt(beta_1) just below the pixel bin size 1/127.5 (Nichol & Dhariwal).
    assert!(
        betas[0].sqrt() < 1.0 / 127.5 && betas[0].sqrt() > 0.5 / 127.5,
        "sqrt(beta_1) = {}",
        betas[0].sqrt()
    );
    // The chain keeps the clipped betas.
    let chain = DiscreteChain::from_betas(&betas);
    assert!(close(chain.betas()[999], 0.999, 1e-9));
    assert!(close(sched.prior_std(), chain.prior_std(), 1e-12));
}

#[test]
fn edm_default_grid_is_karras_with_rho_seven() {
    let sched = schedule(&["schedule=edm"]);
    let grid = Grid::new(sched.as_ref(), GridRequest::default());
    let sigmas = grid.sigmas();
    assert_eq!(sigmas.len(), 19, "EDM's 18 levels, then 0");
    assert_eq!(sigmas[0], 80.0);
    assert!(close(sigmas[17], 0.002, 1e-12));
    assert_eq!(sigmas[18], 0.0);
    for (i, sigma) in sigmas[..18].iter().enumerate() {
        // Eq. 5: (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
        let (a, b) = (80f64.powf(1.0 / 7.0), 0.002f64.powf(1.0 / 7.0));
        let expected = (a + i as f64 / 17.0 * (b - a)).powi(7);
        assert!(
            close(*sigma, expected, 1e-12),
            "level {i}: {sigma} vs {expected}"
        );
        assert_eq!(grid.t(i), *sigma, "t = sigma");
        assert_eq!(grid.scale(i), 1.0);
    }
    assert_eq!(sched.prior_std(), 80.0);
    assert_eq!((sched.t_max(), sched.t_end()), (80.0, 0.002));
    let rho3 = schedule(&["schedule=edm", "schedule.rho=3"]);
    let level = rho3.default_grid(Some(5))[2];
    let expected = ((80f64.powf(1.0 / 3.0) + 0.002f64.powf(1.0 / 3.0)) / 2.0).powi(3);
    assert!(close(level, expected, 1e-12), "rho = 3 midpoint");
}

#[test]
fn training_sigmas_follow_each_schedules_distribution() {
    let n = 40_000;
    let ve = schedule(&["schedule=ve"]);
    let draws = ve.training_sigmas(n, &mut Rng::from_seed(11));
    let times: Vec<f64> = draws.iter().map(|(s, _)| ve.t_of_sigma(*s)).collect();
    let mean = times.iter().sum::<f64>() / n as f64;
    // t ~ U(1e-5, 1): mean (1 + eps) / 2, standard error sqrt(1/12 / n) = 0.0014.
    assert!(
        (mean - (1.0 + 1e-5) / 2.0).abs() < 0.006,
        "ve: mean t = {mean}"
    );
    assert!(times
        .iter()
        .all(|t| (1e-5 - 1e-12..=1.0 + 1e-12).contains(t)));

    let edm = schedule(&["schedule=edm"]);
    let draws = edm.training_sigmas(n, &mut Rng::from_seed(12));
    let logs: Vec<f64> = draws.iter().map(|(s, _)| s.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n as f64;
    let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    // Standard errors: 1.2 / sqrt(n) = 0.006 for the mean, 1.2 / sqrt(2n) = 0.004 for the std.
    assert!((mean + 1.2).abs() < 0.03, "edm: mean ln sigma = {mean}");
    assert!((std - 1.2).abs() < 0.02, "edm: std ln sigma = {std}");

    for name in ["ve", "vp", "sub_vp", "ddpm", "cosine", "edm"] {
        let sched = schedule(&[&format!("schedule={name}")]);
        let levels = sched.loss_levels();
        assert_eq!(levels.len(), 10, "{name}: ten loss bins");
        let draws = sched.training_sigmas(2000, &mut Rng::from_seed(13));
        let mut used = vec![false; levels.len()];
        for (sigma, bin) in draws {
            assert!(sigma > 0.0 && sigma.is_finite(), "{name}: sigma {sigma}");
            assert!(bin < levels.len(), "{name}: bin {bin}");
            used[bin] = true;
        }
        assert!(
            used.iter().filter(|u| **u).count() >= 5,
            "{name}: draws spread over the bins"
        );
    }
}

#[test]
fn every_new_schedule_and_weighting_resolves_with_an_mlp() {
    for name in ["ve", "vp", "sub_vp", "ddpm", "cosine", "edm"] {
        let trials = resolve(SMALL_GMM, &[&format!("schedule={name}")]).unwrap();
        assert_eq!(trials[0].resolved["network"]["kind"], "mlp");
        assert_eq!(trials[0].resolved["schedule"]["kind"], name);
    }
    for name in ["likelihood", "edm", "min_snr", "snr"] {
        let trials = resolve(SMALL_GMM, &[&format!("weighting={name}")]).unwrap();
        assert_eq!(trials[0].resolved["weighting"]["kind"], name);
    }
    // Published defaults are filled in.
    let trials = resolve(SMALL_GMM, &["schedule=edm"]).unwrap();
    let params = &trials[0].resolved["schedule"];
    assert_eq!(
        (params["sigma_min"].as_f64(), params["rho"].as_f64()),
        (Some(0.002), Some(7.0))
    );
    // Sampling-only parameters never split a training group.
    let trials = resolve(
        SMALL_GMM,
        &[
            "schedule.kind=edm",
            "schedule.rho=5,7",
            "schedule.sigma_max=40,80",
        ],
    )
    .unwrap();
    assert_eq!(trials.len(), 4);
    assert!(trials.iter().all(|t| t.train_id == trials[0].train_id));
    let trials = resolve(
        SMALL_GMM,
        &["schedule.kind=vp", "schedule.sampling_eps=1e-3,1e-4"],
    )
    .unwrap();
    assert_eq!(trials[0].train_id, trials[1].train_id);
    let trials = resolve(
        SMALL_GMM,
        &["schedule.kind=vp", "schedule.training_eps=1e-5,1e-4"],
    )
    .unwrap();
    assert_ne!(
        trials[0].train_id, trials[1].train_id,
        "training_eps shapes training"
    );
    // `auto` sigma_max on ve is the data's largest pairwise distance, as in geometric.
    let auto = schedule(&["schedule=ve", "schedule.sigma_max=auto"]);
    assert!(close(
        auto.sigma_max(),
        trials[0].training_data.max_pairwise_distance(),
        1e-12
    ));
}

#[test]
fn bad_schedule_and_weighting_values_name_the_key() {
    let cases: [(&[&str], &str); 14] = [
        (
            &["schedule=ve", "schedule.sigma_max=0.001"],
            "schedule.sigma_max",
        ),
        (
            &["schedule=ve", "schedule.training_eps=0"],
            "schedule.training_eps",
        ),
        (
            &["schedule=ve", "schedule.sampling_eps=1"],
            "schedule.sampling_eps",
        ),
        (
            &["schedule=vp", "schedule.beta_max=0.01"],
            "schedule.beta_max",
        ),
        (
            &["schedule=sub_vp", "schedule.beta_min=-1"],
            "schedule.beta_min",
        ),
        (
            &["schedule=ddpm", "schedule.beta_end=1.5"],
            "schedule.beta_end",
        ),
        (
            &["schedule=ddpm", "schedule.timesteps=1"],
            "schedule.timesteps",
        ),
        (
            &["schedule=cosine", "schedule.max_beta=1"],
            "schedule.max_beta",
        ),
        (&["schedule=edm", "schedule.rho=0"], "schedule.rho"),
        (
            &["schedule=edm", "schedule.sigma_max=0.001"],
            "schedule.sigma_max",
        ),
        (&["schedule=edm", "schedule.p_std=0"], "schedule.p_std"),
        (
            &["weighting=edm", "weighting.sigma_data=0"],
            "weighting.sigma_data",
        ),
        (
            &["weighting=min_snr", "weighting.gamma=-5"],
            "weighting.gamma",
        ),
        (
            &["weighting=snr", "weighting.offset=-1"],
            "weighting.offset",
        ),
    ];
    for (overrides, key) in cases {
        let message = resolve_error(SMALL_GMM, overrides);
        assert!(
            message.contains(&format!("`{key}`")),
            "{overrides:?}: {message}"
        );
        assert!(message.contains("Fix:"), "{message}");
    }
}
