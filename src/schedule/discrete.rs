//! Discrete variance-preserving chains (DDPM, improved DDPM's cosine): T steps with
//! x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) eps, so alpha_bar_i = prod_j (1 - beta_j),
//! s_i = sqrt(alpha_bar_i) and sigma_i = sqrt((1 - alpha_bar_i) / alpha_bar_i).
//!
//! Samplers that step between arbitrary times see the chain as a continuous schedule:
//! log alpha_bar is interpolated linearly between t_i = i / T (with alpha_bar_0 = 1), which
//! gives the SDE f = (log alpha_bar)' / 2 and g^2 = -(log alpha_bar)', the VP SDE of which
//! the chain is the discretisation (Song et al. 2021, Appendix B).

use super::{Discretization, LogBins, Schedule, TrainingLaw};
use crate::rng::Rng;

pub struct DiscreteChain {
    /// log alpha_bar_i for i = 0..=T (index 0 is the data, log 1 = 0).
    log_alpha_bars: Vec<f64>,
    bins: LogBins,
}

impl DiscreteChain {
    /// The chain of the given betas (beta_1..beta_T, each in (0, 1)).
    pub fn from_betas(betas: &[f64]) -> Self {
        let mut log_alpha_bars = vec![0.0];
        let mut total = 0.0;
        for beta in betas {
            total += (1.0 - beta).ln();
            log_alpha_bars.push(total);
        }
        let sigma = |l: f64| ((-l).exp_m1()).sqrt();
        let bins = LogBins::new(sigma(log_alpha_bars[1]), sigma(total), 10);
        DiscreteChain {
            log_alpha_bars,
            bins,
        }
    }

    /// Number of steps T.
    pub fn len(&self) -> usize {
        self.log_alpha_bars.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// alpha_bar_i for i = 1..=T.
    pub fn alpha_bars(&self) -> Vec<f64> {
        self.log_alpha_bars[1..].iter().map(|l| l.exp()).collect()
    }

    /// beta_i = 1 - alpha_bar_i / alpha_bar_{i-1} for i = 1..=T.
    pub fn betas(&self) -> Vec<f64> {
        self.log_alpha_bars
            .windows(2)
            .map(|w| -(w[1] - w[0]).exp_m1())
            .collect()
    }

    /// sigma of step i (0..=T).
    fn level(&self, i: usize) -> f64 {
        (-self.log_alpha_bars[i]).exp_m1().sqrt()
    }

    /// Interval index and position in it for time t in [0, 1].
    fn locate(&self, t: f64) -> (usize, f64) {
        let position = t.clamp(0.0, 1.0) * self.len() as f64;
        let i = (position.ceil() as usize).clamp(1, self.len());
        (i, position - (i - 1) as f64)
    }

    fn log_alpha_bar(&self, t: f64) -> f64 {
        let (i, u) = self.locate(t);
        let (a, b) = (self.log_alpha_bars[i - 1], self.log_alpha_bars[i]);
        a + u * (b - a)
    }

    /// d log alpha_bar / dt on the interval containing t.
    fn log_alpha_bar_slope(&self, t: f64) -> f64 {
        let (i, _) = self.locate(t);
        (self.log_alpha_bars[i] - self.log_alpha_bars[i - 1]) * self.len() as f64
    }
}

impl Schedule for DiscreteChain {
    fn sigma(&self, t: f64) -> f64 {
        (-self.log_alpha_bar(t)).exp_m1().sqrt()
    }

    fn sigma_derivative(&self, t: f64) -> f64 {
        // sigma^2 = exp(-L) - 1, so 2 sigma sigma' = -L' exp(-L).
        let l = self.log_alpha_bar(t);
        -self.log_alpha_bar_slope(t) * (-l).exp() / (2.0 * self.sigma(t))
    }

    fn t_of_sigma(&self, sigma: f64) -> f64 {
        let target = -(sigma * sigma).ln_1p();
        // log alpha_bar decreases with i: find the interval holding the target.
        let i = self.log_alpha_bars[1..]
            .partition_point(|l| *l > target)
            .clamp(0, self.len() - 1)
            + 1;
        let (a, b) = (self.log_alpha_bars[i - 1], self.log_alpha_bars[i]);
        let u = if a == b { 1.0 } else { (target - a) / (b - a) };
        ((i - 1) as f64 + u.clamp(0.0, 1.0)) / self.len() as f64
    }

    fn scale(&self, t: f64) -> f64 {
        (0.5 * self.log_alpha_bar(t)).exp()
    }

    fn scale_derivative(&self, t: f64) -> f64 {
        0.5 * self.log_alpha_bar_slope(t) * self.scale(t)
    }

    fn t_end(&self) -> f64 {
        1.0 / self.len() as f64
    }

    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "score",
            "FD 12.8 (ddpm) and 6e12 (cosine) against 0.0024 and 0.0084 with `edm`",
        )]
    }

    /// score_sde's `VPSDE.discretize`: DDPM's chain.
    fn discretization(&self) -> Discretization {
        Discretization::DdpmChain
    }

    fn prior_std(&self) -> f64 {
        (-0.5 * self.log_alpha_bars[self.len()]).exp()
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.bins.centres()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        (0..n)
            .map(|_| {
                let sigma = self.level(1 + rng.below(self.len()));
                (sigma, self.bins.index(sigma))
            })
            .collect()
    }

    fn training_law(&self) -> Option<TrainingLaw> {
        let level = |i| (self.level(i), self.bins.index(self.level(i)));
        Some(TrainingLaw::Levels((1..=self.len()).map(level).collect()))
    }

    /// All T steps, or `steps` evenly spaced ones from T down to 1 (DDIM's "uniform").
    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        let t = self.len();
        let indices: Vec<usize> = match steps {
            None => (1..=t).rev().collect(),
            Some(1) => vec![t],
            Some(n) => (0..n)
                .map(|k| {
                    let fraction = 1.0 - k as f64 / (n - 1) as f64;
                    1 + (fraction * (t - 1) as f64).round() as usize
                })
                .collect(),
        };
        let mut levels: Vec<f64> = indices.into_iter().map(|i| self.level(i)).collect();
        levels.dedup();
        levels
    }

    fn discrete_levels(&self) -> Option<Vec<f64>> {
        Some((1..=self.len()).map(|i| self.level(i)).collect())
    }
}
