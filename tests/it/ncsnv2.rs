//! NCSNv2's techniques 2 and 4 (schedule::ncsnv2) against known values, the published
//! CIFAR-10 configuration and the chain they model.

use serde_json::json;

use crate::common::{resolve, resolve_error, SMALL_GMM};
use scorelab::schedule::ncsnv2::{
    equal_levels_overlap, langevin_eps, langevin_variance_ratio, level_count, level_overlap,
    level_ratio, mean_ratio, normal_cdf, RatioError,
};

/// CIFAR-10 in NCSNv2 (the paper's Table and ermongroup/ncsnv2's configs/cifar10.yml):
/// D = 3 x 32 x 32, sigma_1 = 50, sigma_L = 0.01, T = 5 (`n_steps_each`), L = 232
/// (`num_classes`) and epsilon = 6.2e-6 (`step_lr`).
const CIFAR_DIM: usize = 3072;
const CIFAR_SIGMA_MAX: f64 = 50.0;
const CIFAR_SIGMA_MIN: f64 = 0.01;

#[test]
fn normal_cdf_matches_known_values() {
    // erfc(-x / sqrt(2)) / 2 at 0, 1, 1.96, -1.5, -3 and -8 (Python's math.erfc, as
    // scipy.stats.norm.cdf). statrs' erfc is good to about 1e-11 relative (in [0.5, 0.75]
    // it writes Boost's single-precision offset 0.3440242112F as a double), far below what
    // solving for a ratio of levels needs.
    let known = [
        (0.0, 0.5),
        (1.0, 0.841_344_746_068_542_9),
        (1.96, 0.975_002_104_851_779_5),
        (-1.5, 0.066_807_201_268_858_06),
        (-3.0, 0.001_349_898_031_630_094_6),
        (-8.0, 6.220_960_574_271_819e-16),
    ];
    for (x, phi) in known {
        let got = normal_cdf(x);
        assert!(
            ((got - phi) / phi).abs() < 1e-10,
            "Phi({x}) = {got}, expected {phi}"
        );
    }
}

#[test]
fn cifar10_ratio_meets_the_overlap_and_gives_220_levels() {
    // Solving the paper's condition at 0.5 exactly: gamma = 1.0397964..., so
    // L = 1 + ceil(ln(50 / 0.01) / ln gamma) = 1 + ceil(218.25) = 220. The published L = 232
    // is gamma = 5000^(1/231) = 1.0375591, whose overlap is 0.5670: the published configs
    // sit at about 0.567 (CelebA's 500, LSUN's 1086 and FFHQ's 2311 levels too), and every
    // overlap in (0.5620, 0.5670] gives 232.
    let gamma = level_ratio(CIFAR_DIM, 0.5).unwrap();
    assert!((gamma - 1.039_796_4).abs() < 1e-6, "gamma = {gamma}");
    assert!((level_overlap(CIFAR_DIM, gamma) - 0.5).abs() < 1e-12);
    assert_eq!(level_count(CIFAR_SIGMA_MAX, CIFAR_SIGMA_MIN, gamma), 220);

    let published = 5000f64.powf(1.0 / 231.0);
    assert!((level_overlap(CIFAR_DIM, published) - 0.566_97).abs() < 1e-4);
    for (overlap, levels) in [(0.562, 231), (0.565, 232), (0.5669, 232), (0.568, 233)] {
        let gamma = level_ratio(CIFAR_DIM, overlap).unwrap();
        assert_eq!(
            level_count(CIFAR_SIGMA_MAX, CIFAR_SIGMA_MIN, gamma),
            levels,
            "overlap {overlap}"
        );
    }
}

#[test]
fn cifar10_step_size_is_the_published_epsilon() {
    // On the published 232 levels with T = 5: epsilon = 6.1840e-6 (the paper: 6.2e-6), where
    // the variance ratio reaches its minimum 1.0555 (it cannot reach 1 with 5 steps; the
    // minimum is flat: 6.2e-6 gives a ratio larger by 1.1e-7). On the 220 levels of
    // overlap 0.5: epsilon = 6.4641e-6.
    let published = 5000f64.powf(1.0 / 231.0);
    let eps = langevin_eps(CIFAR_SIGMA_MIN, published, 5).unwrap();
    assert!((eps - 6.2e-6).abs() < 0.05e-6, "eps = {eps:e}");
    assert!((eps - 6.1840e-6).abs() < 0.0001e-6, "eps = {eps:e}");
    let best = langevin_variance_ratio(eps, CIFAR_SIGMA_MIN, published, 5);
    assert!((best - 1.0555).abs() < 1e-4, "ratio {best}");
    for factor in [0.9, 0.99, 1.01, 1.1] {
        let other = langevin_variance_ratio(eps * factor, CIFAR_SIGMA_MIN, published, 5);
        assert!(other > best, "eps x {factor} gives {other} <= {best}");
    }

    let gamma = level_ratio(CIFAR_DIM, 0.5).unwrap();
    let levels = level_count(CIFAR_SIGMA_MAX, CIFAR_SIGMA_MIN, gamma);
    let walked = (CIFAR_SIGMA_MAX / CIFAR_SIGMA_MIN).powf(1.0 / (levels - 1) as f64);
    let eps = langevin_eps(CIFAR_SIGMA_MIN, walked, 5).unwrap();
    assert!((eps - 6.4641e-6).abs() < 0.0001e-6, "eps = {eps:e}");
}

#[test]
fn variance_ratio_is_the_chain_it_models() {
    // Langevin on N(0, sigma^2), x <- (1 - alpha / sigma^2) x + sqrt(2 alpha) z, from variance
    // (gamma sigma)^2: the variance after T steps, step by step.
    for (gamma, sigma, sigma_last, eps, steps) in [
        (1.2, 3.0, 0.1, 2e-3, 7),
        (1.04, 50.0, 0.01, 6.2e-6, 5),
        (3.0, 1.0, 1.0, 0.3, 100),
    ] {
        let alpha = eps * sigma * sigma / (sigma_last * sigma_last);
        let mut variance = (gamma * sigma) * (gamma * sigma);
        for _ in 0..steps {
            let keep = 1.0 - alpha / (sigma * sigma);
            variance = keep * keep * variance + 2.0 * alpha;
        }
        let ratio = langevin_variance_ratio(eps, sigma_last, gamma, steps);
        assert!(
            (ratio - variance / (sigma * sigma)).abs() < 1e-12,
            "{ratio} vs {}",
            variance / (sigma * sigma)
        );
    }
}

#[test]
fn step_size_is_the_minimum_for_many_settings() {
    for (gamma, steps) in [
        (1.01, 1),
        (1.2, 3),
        (1.8, 100),
        (10.0, 1000),
        (1.001, 100_000),
    ] {
        let eps = langevin_eps(0.1, gamma, steps).unwrap();
        assert!(
            eps > 0.0 && eps < 0.01,
            "gamma {gamma}, T {steps}: eps {eps}"
        );
        let best = langevin_variance_ratio(eps, 0.1, gamma, steps);
        assert!(best >= 1.0, "the ratio never goes below 1 for gamma > 1");
        for factor in [0.98, 1.02] {
            let other = langevin_variance_ratio(eps * factor, 0.1, gamma, steps);
            assert!(
                other > best,
                "gamma {gamma}, T {steps}: x{factor} {other} <= {best}"
            );
        }
        // More steps per level let the chain come closer to the level's variance.
        let more = langevin_eps(0.1, gamma, steps * 2).unwrap();
        assert!(langevin_variance_ratio(more, 0.1, gamma, steps * 2) < best);
    }
    assert_eq!(
        langevin_eps(0.1, 1.0, 5),
        None,
        "equal levels have no step to balance"
    );
    assert_eq!(langevin_eps(0.1, 1.5, 0), None);
}

#[test]
fn few_dimensions_have_no_ratio() {
    // sqrt(2D) <= 3: the overlap grows with gamma toward 1 and never falls to a target.
    for dim in [1, 2, 3, 4] {
        assert_eq!(level_ratio(dim, 0.5), Err(RatioError::TooFewDimensions));
        assert!(level_overlap(dim, 1e6) > equal_levels_overlap());
    }
    // From D = 5 on it does, the ratio falling toward 1 as D grows.
    let mut previous = f64::INFINITY;
    for dim in [5, 10, 100, 3072, 196_608] {
        let gamma = level_ratio(dim, 0.5).unwrap();
        assert!((level_overlap(dim, gamma) - 0.5).abs() < 1e-9, "D = {dim}");
        assert!(gamma > 1.0 && gamma < previous, "D = {dim}: gamma {gamma}");
        previous = gamma;
    }
    for target in [0.0, -0.1, 0.998, 1.0, f64::NAN] {
        assert_eq!(
            level_ratio(100, target),
            Err(RatioError::TargetOutOfRange),
            "{target}"
        );
    }
}

#[test]
fn level_count_and_mean_ratio() {
    assert_eq!(
        level_count(10.0, 0.1, 10.0),
        3,
        "an exact power: 10, 1, 0.1"
    );
    assert_eq!(level_count(10.0, 0.1, 9.9), 4);
    assert_eq!(level_count(10.0, 0.1, 1e6), 2, "at least two levels");
    let levels = [8.0, 4.0, 2.0, 1.0];
    assert!((mean_ratio(&levels).unwrap() - 2.0).abs() < 1e-15);
    assert!((mean_ratio(&[9.0, 2.0, 1.0]).unwrap() - 3.0).abs() < 1e-15);
    assert_eq!(mean_ratio(&[1.0]), None);
}

/// SMALL_GMM's two modes in 8 dimensions: technique 2 needs D >= 5.
const EIGHT_DIMS: &str = "data.means=[[-5,-5,-5,-5,-5,-5,-5,-5],[5,5,5,5,5,5,5,5]]";

#[test]
fn auto_levels_solve_technique_2_in_the_data_dimension() {
    for overlap in ["0.5", "0.2"] {
        let set_overlap = format!("schedule.overlap={overlap}");
        let trials = resolve(
            SMALL_GMM,
            &[EIGHT_DIMS, "schedule.num_levels=auto", &set_overlap],
        )
        .unwrap();
        let schedule = trials[0].schedule.as_ref();
        let gamma = level_ratio(8, overlap.parse().unwrap()).unwrap();
        let expected = level_count(schedule.sigma_max(), 0.1, gamma);
        let levels = schedule.loss_levels();
        assert_eq!(levels.len(), expected, "overlap {overlap}");
        // Consecutive levels are a constant ratio apart, at most gamma (they overlap at least
        // as asked), and one level fewer would take a ratio above gamma.
        let ratio = levels[0] / levels[1];
        assert!(ratio <= gamma * (1.0 + 1e-12), "{ratio} > {gamma}");
        let fewer = (levels[0] / levels[levels.len() - 1]).powf(1.0 / (levels.len() - 2) as f64);
        assert!(fewer > gamma, "{fewer} <= {gamma}");
        assert!(level_overlap(8, ratio) >= overlap.parse::<f64>().unwrap());
        // The resolved config records the count it chose, as an integer, and the overlap.
        let section = &trials[0].resolved["schedule"];
        assert_eq!(section["num_levels"], json!(expected));
        assert_eq!(section["overlap"], json!(overlap.parse::<f64>().unwrap()));
    }
}

#[test]
fn a_written_count_is_recorded_as_before_overlap_existed() {
    let trials = resolve(SMALL_GMM, &[]).unwrap();
    let section = trials[0].resolved["schedule"].as_object().unwrap();
    assert_eq!(section["num_levels"], json!(5));
    assert!(section["num_levels"].is_u64(), "10, never 10.0");
    assert!(!section.contains_key("overlap"), "{section:?}");
    // A count `auto` chose and the same count written give the same levels; only the
    // recorded `overlap` (and the label) tell them apart.
    let auto = resolve(SMALL_GMM, &[EIGHT_DIMS, "schedule.num_levels=auto"]).unwrap();
    let count = auto[0].resolved["schedule"]["num_levels"].as_u64().unwrap();
    let written = format!("schedule.num_levels={count}");
    let plain = resolve(SMALL_GMM, &[EIGHT_DIMS, &written]).unwrap();
    assert_eq!(
        plain[0].schedule.loss_levels(),
        auto[0].schedule.loss_levels()
    );
    assert_ne!(plain[0].id, auto[0].id);
}

#[test]
fn auto_levels_refuse_few_dimensions_and_bad_overlaps() {
    let message = resolve_error(SMALL_GMM, &["schedule.num_levels=auto"]);
    assert!(message.contains("key `schedule.num_levels`"), "{message}");
    assert!(message.contains("2 dimension(s)"), "{message}");
    assert!(
        message.contains("Fix: set `num_levels` to a number"),
        "{message}"
    );
    for overlap in ["0", "0.999", "-1"] {
        let set = format!("schedule.overlap={overlap}");
        let message = resolve_error(SMALL_GMM, &[EIGHT_DIMS, "schedule.num_levels=auto", &set]);
        assert!(message.contains("key `schedule.overlap`"), "{message}");
        assert!(message.contains("overlap: 0.5"), "{message}");
    }
    let message = resolve_error(SMALL_GMM, &["schedule.num_levels=many"]);
    assert!(
        message.contains("expected a whole number or `auto`"),
        "{message}"
    );
}

#[test]
fn auto_eps_solves_technique_4_on_the_walked_levels() {
    let trials = resolve(SMALL_GMM, &["sampler.eps=auto"]).unwrap();
    let levels = trials[0].schedule.loss_levels();
    let gamma = mean_ratio(&levels).unwrap();
    let expected = langevin_eps(0.1, gamma, 5).unwrap();
    // Recorded as the number it chose (on the grid's levels, which may differ from the
    // schedule's in the last bit).
    let recorded = trials[0].resolved["sampler"]["eps"].as_f64().unwrap();
    assert!(close(recorded, expected), "{recorded} vs {expected}");
    assert_eq!(
        trials[0].sampler.step_size(),
        Some(("eps".into(), recorded))
    );
    // The same sampler and model as the file's eps: only sampling changes.
    let written = resolve(SMALL_GMM, &[]).unwrap();
    assert_eq!(written[0].resolved["sampler"]["eps"], json!(0.002));
    assert_eq!(written[0].train_id, trials[0].train_id);

    // `levels: 3` walks 3 of the schedule's levels, whose ratio is larger: a larger step
    // brings the variance back within the same T steps.
    let three = resolve(SMALL_GMM, &["sampler.eps=auto", "sampler.levels=3"]).unwrap();
    let wider = (levels[0] / 0.1).sqrt();
    let eps = three[0].resolved["sampler"]["eps"].as_f64().unwrap();
    assert!(close(eps, langevin_eps(0.1, wider, 5).unwrap()), "{eps}");
    assert!(eps > expected, "{eps} <= {expected}");

    // One level: the chain starts at the prior's sigma_max.
    let one = resolve(SMALL_GMM, &["sampler.eps=auto", "schedule.num_levels=1"]).unwrap();
    let from_prior = one[0].schedule.sigma_max() / 0.1;
    let eps = one[0].resolved["sampler"]["eps"].as_f64().unwrap();
    assert!(
        close(eps, langevin_eps(0.1, from_prior, 5).unwrap()),
        "{eps}"
    );
}

/// Equal to 1e-6: a minimum's place is known to about the square root of the precision of
/// the values around it, so a last-bit change of gamma moves eps by about 1e-8.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs()
}

#[test]
fn auto_eps_refuses_levels_that_do_not_shrink() {
    // The prior of a one-level walk on `edm` sits at the grid's first level.
    let schedule = "schedule={kind: edm, sigma_max: 2.0, sigma_min: 0.5}";
    let message = resolve_error(
        SMALL_GMM,
        &[schedule, "sampler.eps=auto", "sampler.levels=1"],
    );
    assert!(message.contains("key `sampler.eps`"), "{message}");
    assert!(message.contains("do not shrink"), "{message}");
    assert!(message.contains("Fix: set `eps` to a number"), "{message}");
}
