//! NCSNv2's techniques 2 and 4 as numbers (Song & Ermon 2020, "Improved Techniques for
//! Training Score-Based Generative Models", §3.1 and §3.3): the common ratio gamma of
//! geometric noise levels, their count between two given levels, and the step size epsilon
//! of annealed Langevin dynamics on such levels. Pure functions; the `geometric` schedule
//! (`num_levels: auto`) and the `annealed_langevin` sampler (`eps: auto`) call them.
//!
//! Technique 2 approximates the norm of x ~ N(0, sigma_i^2 I) in D dimensions by
//! N(sqrt(D) sigma_i, sigma_i^2 / 2), and asks that it land, with probability `overlap`,
//! within three of those standard deviations of the previous level's norm:
//! Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) = overlap, with
//! gamma = sigma_{i-1} / sigma_i (the paper asks for about 0.5).
//!
//! Technique 4 takes one training point at 0, so that level i's density is N(0, sigma_i^2 I)
//! and its score -x / sigma_i^2, and follows the Langevin chain
//! x <- x + alpha s(x) + sqrt(2 alpha) z with alpha = eps sigma_i^2 / sigma_L^2 for T steps,
//! started with the previous level's variance (gamma sigma_i)^2. Its variance after T steps
//! is (Proposition 3)
//! s_T^2 / sigma_i^2 = (1 - eps/sigma_L^2)^{2T} (gamma^2 - 2 eps / (sigma_L^2 - sigma_L^2 (1 - eps/sigma_L^2)^2))
//!                   + 2 eps / (sigma_L^2 - sigma_L^2 (1 - eps/sigma_L^2)^2),
//! and the technique picks the eps that brings it closest to 1. The step is the NCSN code's
//! (drift alpha, noise variance 2 alpha): the ratio's drift factor is 1 - alpha/sigma_i^2 and
//! its fixed point 2 alpha / (1 - (1 - alpha/sigma_i^2)^2), so the paper's epsilon here is
//! the code's `step_lr` (6.2e-6 for CIFAR-10 in both).

use std::f64::consts::SQRT_2;

use statrs::function::erf::erfc;

/// The standard normal CDF, Phi(x) = erfc(-x / sqrt(2)) / 2 (accurate in both tails).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

/// Technique 2's overlap of consecutive levels with ratio `gamma` in `dim` dimensions:
/// Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma).
pub fn level_overlap(dim: usize, gamma: f64) -> f64 {
    let shift = (2.0 * dim as f64).sqrt() * (gamma - 1.0);
    normal_cdf(shift + 3.0 * gamma) - normal_cdf(shift - 3.0 * gamma)
}

/// The overlap of equal levels (gamma = 1): Phi(3) - Phi(-3) = 0.9973. A target must lie
/// below it: the overlap first rises a little above it as gamma grows from 1, so a larger
/// target would have two ratios or none.
pub fn equal_levels_overlap() -> f64 {
    level_overlap(1, 1.0)
}

/// Why technique 2 has no ratio for a dimension and target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RatioError {
    /// sqrt(2D) <= 3 (D <= 4): the overlap only grows with gamma, toward 1, and never comes
    /// down to a target below Phi(3) - Phi(-3); the norm is no thin shell in so few
    /// dimensions.
    TooFewDimensions,
    /// The target is not in (0, Phi(3) - Phi(-3)).
    TargetOutOfRange,
}

/// Technique 2's ratio gamma > 1 whose [`level_overlap`] is `target`.
///
/// For sqrt(2D) > 3 the overlap rises from Phi(3) - Phi(-3) at gamma = 1 to one peak and
/// then falls to 0 (its derivative changes sign once, where gamma (gamma - 1) =
/// ln((c + 3)/(c - 3)) / (6c), c = sqrt(2D)), so a target below Phi(3) - Phi(-3) is met
/// exactly once; bisection finds it to the last bits.
pub fn level_ratio(dim: usize, target: f64) -> Result<f64, RatioError> {
    if !(target > 0.0 && target < equal_levels_overlap()) {
        return Err(RatioError::TargetOutOfRange);
    }
    if 2.0 * dim as f64 <= 9.0 {
        return Err(RatioError::TooFewDimensions);
    }
    // Above the target at `low`, below it at `high`.
    let mut low = 1.0;
    let mut high = 2.0;
    while level_overlap(dim, high) >= target {
        low = high;
        high *= 2.0;
        // At D = 5 and a target near 0, gamma is in the thousands; far past it the
        // overlap is 0 for every D > 4.
        if high > 1e12 {
            return Err(RatioError::TargetOutOfRange);
        }
    }
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if middle <= low || middle >= high {
            break;
        }
        if level_overlap(dim, middle) >= target {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(high)
}

/// The number of geometric levels from `sigma_max` down to `sigma_min` whose ratio is at
/// most `gamma`: L = 1 + ceil(ln(sigma_max / sigma_min) / ln gamma), so that consecutive
/// levels overlap at least as much as `gamma`'s do. At least 2 (for sigma_max > sigma_min
/// and gamma > 1); a count past `usize` saturates.
pub fn level_count(sigma_max: f64, sigma_min: f64, gamma: f64) -> usize {
    let intervals = ((sigma_max / sigma_min).ln() / gamma.ln()).ceil().max(1.0);
    // `as` saturates: an absurd count stays absurd for the caller's limit to refuse.
    (intervals as usize).saturating_add(1)
}

/// The ratio of consecutive levels of a descending grid: (sigma_1 / sigma_L)^(1/(L-1)),
/// exact for geometric levels and their mean ratio otherwise. `None` with fewer than two.
pub fn mean_ratio(levels: &[f64]) -> Option<f64> {
    match levels {
        [first, .., last] => Some((first / last).powf(1.0 / (levels.len() - 1) as f64)),
        _ => None,
    }
}

/// Technique 4's variance ratio s_T^2 / sigma_i^2 after `steps` (T) Langevin steps with step
/// size `eps` at every level of ratio `gamma` down to `sigma_last` (sigma_L). With
/// u = eps / sigma_L^2 it is (1 - u)^{2T} (gamma^2 - 2/(2 - u)) + 2/(2 - u): the paper's
/// expression with 2 eps / (sigma_L^2 - sigma_L^2 (1 - u)^2) = 2 / (2 - u), which does not
/// cancel digits when u is small.
pub fn langevin_variance_ratio(eps: f64, sigma_last: f64, gamma: f64, steps: usize) -> f64 {
    ratio_of_u(eps / (sigma_last * sigma_last), gamma, steps)
}

fn ratio_of_u(u: f64, gamma: f64, steps: usize) -> f64 {
    let fixed_point = 2.0 / (2.0 - u);
    let decay = (2.0 * steps as f64 * (-u).ln_1p()).exp();
    decay * (gamma * gamma - fixed_point) + fixed_point
}

/// Technique 4's step size: the eps in (0, sigma_L^2) that brings
/// [`langevin_variance_ratio`] closest to 1. For gamma > 1 the ratio exceeds 1 for every
/// eps (it is 1 + (s - 1)(1 - d) + d (gamma^2 - 1) with s = 2/(2 - u) >= 1 and
/// d = (1 - u)^{2T} in (0, 1)), so this is its minimum: found on a log-spaced scan of u
/// from 1e-15 to 1, then refined by golden-section search around the best point.
/// `None` unless gamma > 1 and T >= 1 (equal levels need no annealing, and the ratio
/// then falls toward 1 only as eps goes to 0).
pub fn langevin_eps(sigma_last: f64, gamma: f64, steps: usize) -> Option<f64> {
    if !(gamma > 1.0 && gamma.is_finite() && steps >= 1 && sigma_last > 0.0) {
        return None;
    }
    let ratio = |log_u: f64| ratio_of_u(log_u.exp(), gamma, steps);
    const POINTS: usize = 2000;
    let (start, end) = (1e-15_f64.ln(), (1.0 - 1e-12_f64).ln());
    let at = |i: usize| start + (end - start) * i as f64 / POINTS as f64;
    let best = (0..=POINTS)
        .min_by(|a, b| ratio(at(*a)).total_cmp(&ratio(at(*b))))
        .unwrap_or(0);
    let (mut low, mut high) = (at(best.saturating_sub(1)), at((best + 1).min(POINTS)));
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let a = high - golden * (high - low);
        let b = low + golden * (high - low);
        if ratio(a) <= ratio(b) {
            high = b;
        } else {
            low = a;
        }
    }
    Some((0.5 * (low + high)).exp() * sigma_last * sigma_last)
}
