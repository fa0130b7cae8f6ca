//! Where the denoising loss is estimated: the noise levels of a training batch, each with
//! the factor on its normalised loss 0.5 ||sigma s + z||^2.
//!
//! `uniform` (the default) draws the schedule's own training levels, factor
//! w(sigma) = lambda(sigma) / sigma^2. `importance` draws them from the density q
//! proportional to p w instead, p being the schedule's training law, with factor
//! w p / q: the same expectation, but every draw carries about the same factor, so a
//! weighting that is large on rare levels no longer makes a few draws rule the batch (Song
//! et al. 2021, "Maximum Likelihood Training of Score-Based Diffusion Models": the
//! likelihood weighting with t ~ p(t) ~ g(t)^2 / sigma_x(t)^2). Where q is exact the factor
//! is the constant E_p[w], the loss's normaliser (score_flow's Z, over the width of the
//! time range).
//!
//! q is exact where it has a closed form (a weighting with a [`FactorPrimitive`] on uniform
//! times: the likelihood weighting on `ve`, `vp` and `sub_vp`, where ln sigma is uniform)
//! and on discrete levels; elsewhere (log-normal levels, other weightings) it is a table:
//! the law's range cut into cells, each drawn in proportion to its mass of p w (Simpson's
//! rule) and uniformly within. The factor w p / q uses the table's own density, so the
//! estimate stays unbiased however coarse the table; only its variance depends on it.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::schedule::{LogBins, Schedule, TrainingLaw};
use crate::weighting::{FactorPrimitive, Weighting};

/// How training draws its noise levels (`train.time_sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSampling {
    /// The schedule's own training levels, each weighted by lambda / sigma^2.
    Uniform,
    /// Levels drawn in proportion to the weight, reweighted to the same expectation.
    Importance,
}

/// Cells of a tabulated law.
pub const TABLE_CELLS: usize = 2048;
/// A log-normal law is tabulated over its mean +- this many standard deviations (the mass
/// beyond is below 2e-23).
pub const LOG_NORMAL_SPAN: f64 = 10.0;

/// One training level: its sigma, loss level and the factor on its normalised loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub sigma: f64,
    pub level: usize,
    pub factor: f64,
}

/// Draws the training levels of a job's batches.
pub struct LevelSampler<'a> {
    schedule: &'a dyn Schedule,
    weighting: &'a dyn Weighting,
    law: Option<Importance>,
}

/// The importance law q.
enum Importance {
    /// sigma = F^-1(a + u (b - a)), factor `z` ([`FactorPrimitive`] on uniform times).
    Closed {
        primitive: FactorPrimitive,
        ends: (f64, f64),
        z: f64,
        bins: LogBins,
    },
    /// Discrete levels drawn in proportion to w (cumulative masses), factor `z` = mean w.
    Levels {
        levels: Vec<(f64, usize)>,
        cumulative: Vec<f64>,
        z: f64,
    },
    Table(Table),
}

/// A continuous law over a variable v (t, or ln sigma): cells [v_i, v_i+1] with the
/// cumulative masses of p w.
struct Table {
    edges: Vec<f64>,
    cumulative: Vec<f64>,
    /// The law's density p(v) and sigma(v).
    law: TrainingLaw,
    bins: LogBins,
}

impl<'a> LevelSampler<'a> {
    /// The sampler `sampling` asks for; an error says why importance sampling is not
    /// possible here (a schedule without a training law, a weight that is not finite).
    pub fn new(
        sampling: TimeSampling,
        schedule: &'a dyn Schedule,
        weighting: &'a dyn Weighting,
    ) -> Result<Self, String> {
        let mut sampler = LevelSampler {
            schedule,
            weighting,
            law: None,
        };
        if sampling == TimeSampling::Importance {
            sampler.law = Some(sampler.importance(true)?);
        }
        Ok(sampler)
    }

    /// Importance sampling from the table even where a closed form exists (to test one
    /// against the other).
    pub fn tabulated(
        schedule: &'a dyn Schedule,
        weighting: &'a dyn Weighting,
    ) -> Result<Self, String> {
        let mut sampler = LevelSampler {
            schedule,
            weighting,
            law: None,
        };
        sampler.law = Some(sampler.importance(false)?);
        Ok(sampler)
    }

    /// The factor w = lambda / sigma^2 of the uniform estimate.
    pub fn weight(&self, sigma: f64) -> f64 {
        self.weighting.lambda(sigma, self.schedule) / (sigma * sigma)
    }

    /// `n` levels of one batch.
    pub fn draw(&self, n: usize, rng: &mut Rng) -> Vec<Draw> {
        let Some(law) = &self.law else {
            let draws = self.schedule.training_sigmas(n, rng);
            return draws
                .into_iter()
                .map(|(sigma, level)| Draw {
                    sigma,
                    level,
                    factor: self.weight(sigma),
                })
                .collect();
        };
        (0..n).map(|_| self.at(law, rng.uniform())).collect()
    }

    /// The importance law's level at quantile `u` in [0, 1] (`None` for uniform sampling).
    pub fn quantile(&self, u: f64) -> Option<f64> {
        Some(self.at(self.law.as_ref()?, u).sigma)
    }

    /// The draw at quantile `u` of `law`.
    fn at(&self, law: &Importance, u: f64) -> Draw {
        match law {
            Importance::Closed {
                primitive,
                ends: (a, b),
                z,
                bins,
            } => {
                let sigma = (primitive.sigma_of)(a + u * (b - a));
                Draw {
                    sigma,
                    level: bins.index(sigma),
                    factor: *z,
                }
            }
            Importance::Levels {
                levels,
                cumulative,
                z,
            } => {
                let i = cell_of(cumulative, u);
                let (sigma, level) = levels[i];
                Draw {
                    sigma,
                    level,
                    factor: *z,
                }
            }
            Importance::Table(table) => table.at(u, &|sigma| self.weight(sigma), self.schedule),
        }
    }

    /// The importance law of the schedule's training law and the weighting.
    fn importance(&self, closed: bool) -> Result<Importance, String> {
        let Some(law) = self.schedule.training_law() else {
            return Err("the schedule does not describe its training levels".into());
        };
        let check = |z: f64| {
            match z.is_finite() && z > 0.0 {
            true => Ok(z),
            false => Err(format!(
                "the weight lambda / sigma^2 has mean {z} over the training levels; it must be positive and finite"
            )),
        }
        };
        match (law, self.weighting.factor_primitive()) {
            (TrainingLaw::UniformTime { low, high, bins }, Some(primitive)) if closed => {
                let f = |t| (primitive.of_sigma)(self.schedule.sigma(t));
                let ends = (f(low), f(high));
                let z = check((ends.1 - ends.0) / (high - low))?;
                Ok(Importance::Closed {
                    primitive,
                    ends,
                    z,
                    bins,
                })
            }
            (TrainingLaw::Levels(levels), _) => {
                let masses: Vec<f64> = levels.iter().map(|(s, _)| self.weight(*s)).collect();
                let cumulative = cumulative(&masses);
                let total = cumulative.last().copied().unwrap_or(0.0);
                let z = check(total / levels.len() as f64)?;
                Ok(Importance::Levels {
                    levels,
                    cumulative,
                    z,
                })
            }
            (law, _) => {
                let table = Table::new(law, self.schedule, &|sigma| self.weight(sigma));
                check(table.cumulative.last().copied().unwrap_or(0.0))?;
                Ok(Importance::Table(table))
            }
        }
    }
}

impl Table {
    fn new(law: TrainingLaw, schedule: &dyn Schedule, weight: &dyn Fn(f64) -> f64) -> Table {
        let cells = TABLE_CELLS;
        let (edges, bins) = match &law {
            // Cells even in ln sigma, mapped back to t: the weights vary with the scale of
            // sigma, not with t.
            TrainingLaw::UniformTime { low, high, bins } => {
                let (a, b) = (schedule.sigma(*low).ln(), schedule.sigma(*high).ln());
                let mut edges: Vec<f64> = (0..=cells)
                    .map(|i| schedule.t_of_sigma((a + (b - a) * i as f64 / cells as f64).exp()))
                    .map(|t| t.clamp(*low, *high))
                    .collect();
                edges[0] = *low;
                edges[cells] = *high;
                (edges, bins.clone())
            }
            TrainingLaw::LogNormal { mean, std, bins } => {
                let (a, b) = (mean - LOG_NORMAL_SPAN * std, mean + LOG_NORMAL_SPAN * std);
                let edges = (0..=cells)
                    .map(|i| a + (b - a) * i as f64 / cells as f64)
                    .collect();
                (edges, bins.clone())
            }
            TrainingLaw::Levels(_) => unreachable!("discrete levels need no table"),
        };
        let mut table = Table {
            edges,
            cumulative: Vec::new(),
            law,
            bins,
        };
        let masses: Vec<f64> = table
            .edges
            .windows(2)
            .map(|cell| {
                let mid = 0.5 * (cell[0] + cell[1]);
                let mass = |v| table.density(v) * weight(table.sigma(v, schedule));
                (cell[1] - cell[0]) * (mass(cell[0]) + 4.0 * mass(mid) + mass(cell[1])) / 6.0
            })
            .collect();
        table.cumulative = cumulative(&masses);
        table
    }

    /// The law's density p(v).
    fn density(&self, v: f64) -> f64 {
        match &self.law {
            TrainingLaw::UniformTime { low, high, .. } => 1.0 / (high - low),
            TrainingLaw::LogNormal { mean, std, .. } => {
                let x = (v - mean) / std;
                (-0.5 * x * x).exp() / (std * (2.0 * std::f64::consts::PI).sqrt())
            }
            TrainingLaw::Levels(_) => 0.0,
        }
    }

    fn sigma(&self, v: f64, schedule: &dyn Schedule) -> f64 {
        match &self.law {
            TrainingLaw::LogNormal { .. } => v.exp(),
            _ => schedule.sigma(v),
        }
    }

    /// The draw at quantile `u`: the CDF, linear within each cell, inverted; factor
    /// w p / q with q = mass / (total width) in the cell.
    fn at(&self, u: f64, weight: &dyn Fn(f64) -> f64, schedule: &dyn Schedule) -> Draw {
        let i = cell_of(&self.cumulative, u);
        let total = self.cumulative[self.cumulative.len() - 1];
        let before = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        let mass = self.cumulative[i] - before;
        let (low, high) = (self.edges[i], self.edges[i + 1]);
        let within = ((u * total - before) / mass).clamp(0.0, 1.0);
        let v = low + within * (high - low);
        let sigma = self.sigma(v, schedule);
        let q = mass / (total * (high - low));
        Draw {
            sigma,
            level: self.bins.index(sigma),
            factor: weight(sigma) * self.density(v) / q,
        }
    }
}

/// Running sums of `masses`.
fn cumulative(masses: &[f64]) -> Vec<f64> {
    masses
        .iter()
        .scan(0.0, |sum, m| {
            *sum += m;
            Some(*sum)
        })
        .collect()
}

/// The cell whose cumulative mass first exceeds `u` times the total (at u = 1 the last cell
/// with mass), so an empty cell is never chosen.
fn cell_of(cumulative: &[f64], u: f64) -> usize {
    let total = cumulative[cumulative.len() - 1];
    match cumulative.partition_point(|c| *c <= u * total) {
        i if i < cumulative.len() => i,
        _ => cumulative.partition_point(|c| *c < total),
    }
}
