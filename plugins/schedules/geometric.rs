//! `geometric`: L noise levels from sigma_max down to sigma_min in geometric progression
//! (Song & Ermon 2019), sigma_i = sigma_max * (sigma_min / sigma_max)^((i-1)/(L-1)).
//! Training draws a level uniformly per example; sampling walks the levels in order. As a
//! continuous schedule it is `ve`'s sigma(t) = sigma_min (sigma_max / sigma_min)^t, with
//! the levels at t = 1, (L-2)/(L-1), ..., 0. `num_levels: auto` takes L from NCSNv2's
//! technique 2 (Song & Ermon 2020): the ratio gamma at which consecutive levels overlap by
//! `overlap` in the data's dimension D, then as many levels as that ratio needs from
//! sigma_max to sigma_min.

use scorelab::config::{ConfigError, CountOrAuto, NumberOrAuto, Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::checks::{check_sigma_min, resolve_sigma_max};
use scorelab::schedule::ncsnv2::{equal_levels_overlap, level_count, level_ratio, RatioError};
use scorelab::schedule::{Discretization, Schedule, ScheduleContext, TrainingLaw};

params! {
    /// Parameters of `geometric`.
    pub struct GeometricParams {
        /// Number of noise levels L, or `auto`: NCSNv2's technique 2, the ratio gamma = sigma_{i-1} / sigma_i solving Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) = `overlap` in the data's dimension D (at least 5), then L = 1 + ceil(ln(sigma_max / sigma_min) / ln gamma); the resolved config records the L it chose, beside `overlap`. With one level, that level is sigma_min (plain Langevin).
        num_levels: CountOrAuto = CountOrAuto::Count(10) => 1..=MAX_LEVELS,
        /// Largest noise level, or `auto`: the largest pairwise distance in the training data (NCSNv2, technique 1), computed once per training set and exact: the brute force's value to the last bit (a ball-tree search with matmul estimates, checked against their rounding error, picks the pairs to sum).
        sigma_max: NumberOrAuto = NumberOrAuto::Auto,
        /// Smallest noise level.
        sigma_min: f64 = 0.01,
        /// With `num_levels: auto`: how much consecutive levels overlap, the probability that a sample of level i has the norm of level i-1 within three of its standard deviations (NCSNv2: about 0.5; its published level counts sit at 0.567); in (0, 0.9973). Recorded only with `auto`.
        overlap: f64 = 0.5,
    }
}

pub struct Geometric {
    levels: Vec<f64>,
    sigma_max: f64,
    sigma_min: f64,
}

/// `n` levels from `high` down to `low`, geometrically spaced (one level: `low`).
pub fn geometric_levels(high: f64, low: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![low];
    }
    let ratio = (low / high).ln();
    (0..n)
        .map(|i| high * (ratio * i as f64 / (n - 1) as f64).exp())
        .collect()
}

impl Schedule for Geometric {
    fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    fn sigma_derivative(&self, t: f64) -> f64 {
        self.sigma(t) * (self.sigma_max / self.sigma_min).ln()
    }

    fn t_of_sigma(&self, sigma: f64) -> f64 {
        (sigma / self.sigma_min).ln() / (self.sigma_max / self.sigma_min).ln()
    }

    fn t_end(&self) -> f64 {
        0.0
    }

    /// NCSN's: the score with its output scaled by 1 / sigma.
    fn natural_parameterisation(&self) -> &'static str {
        "score"
    }

    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[("x0", "FD 0.059, but 54 % of samples below the data's 0.1 % density quantile against 0.7 % with `score`")]
    }

    /// score_sde's `VESDE.discretize`: the step adds sigma_i^2 - sigma_{i+1}^2.
    fn discretization(&self) -> Discretization {
        Discretization::VarianceExploding
    }

    fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.levels.clone()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        (0..n)
            .map(|_| {
                let i = rng.below(self.levels.len());
                (self.levels[i], i)
            })
            .collect()
    }

    fn training_law(&self) -> Option<TrainingLaw> {
        Some(TrainingLaw::Levels(
            self.levels.iter().copied().zip(0..).collect(),
        ))
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        match steps {
            Some(n) => geometric_levels(self.sigma_max, self.sigma_min, n.max(1)),
            None => self.levels.clone(),
        }
    }

    fn discrete_levels(&self) -> Option<Vec<f64>> {
        Some(self.levels.iter().rev().copied().collect())
    }
}

/// Most noise levels.
pub const MAX_LEVELS: usize = 100_000;

fn build(raw: &RawParams, context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = GeometricParams::from_raw(raw)?;
    if let CountOrAuto::Count(n) = params.num_levels {
        check_num_levels(raw, n, params.num_levels)?;
    }
    check_sigma_min(raw, params.sigma_min, "0.01")?;
    let sigma_max = resolve_sigma_max(
        raw,
        params.sigma_max,
        params.sigma_min,
        context.training_data,
    )?;
    let num_levels = match params.num_levels {
        CountOrAuto::Count(n) => n,
        CountOrAuto::Auto => {
            let n = auto_levels(raw, &params, sigma_max, context.training_data.dim())?;
            check_num_levels(raw, n, params.num_levels)?;
            n
        }
    };
    let levels = geometric_levels(sigma_max, params.sigma_min, num_levels);
    let schedule = Geometric {
        levels,
        sigma_max,
        sigma_min: params.sigma_min,
    };
    // `auto` is recorded as the count it chose (beside the `overlap` that chose it); a
    // written count is recorded as before `overlap` existed, so its trial ids stay.
    let recorded = GeometricParams {
        num_levels: CountOrAuto::Count(num_levels),
        ..params.clone()
    };
    let mut built: Built<dyn Schedule> = Built::new(Box::new(schedule), &recorded);
    if let (CountOrAuto::Count(_), Some(map)) = (params.num_levels, built.params.as_object_mut()) {
        map.remove("overlap");
    }
    Ok(built)
}

/// A number of levels from 1 to [`MAX_LEVELS`]; `written` says whether `auto` chose it.
fn check_num_levels(
    raw: &RawParams,
    num_levels: usize,
    written: CountOrAuto,
) -> Result<(), ConfigError> {
    if num_levels == 0 {
        return Err(raw.invalid(
            "num_levels",
            "must be at least 1",
            "set e.g. `num_levels: 10`",
        ));
    }
    // NCSNv2 uses up to 2311 levels; the levels are built before the sweep starts.
    if num_levels > MAX_LEVELS {
        let (what, fix) = match written {
            CountOrAuto::Count(_) => (num_levels.to_string(), "set e.g. `num_levels: 10`"),
            CountOrAuto::Auto => (
                format!("`auto` ({num_levels} levels)"),
                "lower `overlap`, narrow sigma_max / sigma_min, or set `num_levels` to a number",
            ),
        };
        return Err(raw.invalid(
            "num_levels",
            format!(
                "{what} is above the limit of {} (NCSN uses 10, NCSNv2 up to 2311)",
                scorelab::config::number(MAX_LEVELS as f64)
            ),
            fix,
        ));
    }
    Ok(())
}

/// `num_levels: auto`: NCSNv2's technique 2 for data of `dim` coordinates.
fn auto_levels(
    raw: &RawParams,
    params: &GeometricParams,
    sigma_max: f64,
    dim: usize,
) -> Result<usize, ConfigError> {
    match level_ratio(dim, params.overlap) {
        Ok(gamma) => Ok(level_count(sigma_max, params.sigma_min, gamma)),
        Err(RatioError::TargetOutOfRange) => Err(raw.invalid(
            "overlap",
            format!(
                "must lie between 0 and {:.4} (Phi(3) - Phi(-3), the overlap of equal levels), not {}",
                equal_levels_overlap(),
                scorelab::config::number(params.overlap)
            ),
            "set e.g. `overlap: 0.5` (NCSNv2's choice)",
        )),
        Err(RatioError::TooFewDimensions) => Err(raw.invalid(
            "num_levels",
            format!(
                "`auto` (NCSNv2's technique 2) has no solution for data of {dim} dimension(s): \
                 in D <= 4 the overlap Phi(sqrt(2D)(gamma - 1) + 3 gamma) - \
                 Phi(sqrt(2D)(gamma - 1) - 3 gamma) only grows with gamma, so no ratio of \
                 levels brings it down to {}",
                scorelab::config::number(params.overlap)
            ),
            "set `num_levels` to a number, e.g. `num_levels: 10` (the technique needs data \
             of at least 5 dimensions)",
        )),
    }
}

inventory::submit! {
    Plugin {
        name: "geometric",
        about: "L geometric noise levels from sigma_max (or auto) to sigma_min (NCSN)",
        params: GeometricParams::docs,
        build: Builder::Schedule(build),
    }
}
