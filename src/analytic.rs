//! Closed-form ground truth: a Gaussian mixture with diagonal covariances knows its density,
//! and the density and score of its marginal after adding N(0, sigma^2 I) noise, because
//! each component stays Gaussian with variance s_k^2 + sigma^2.

use crate::rng::Rng;
use crate::samples::Samples;

#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    /// Per-component, per-coordinate standard deviations.
    stds: Vec<Vec<f64>>,
}

impl GaussianMixture {
    /// Checks shapes and positivity; weights are normalised to sum to one.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        stds: Vec<Vec<f64>>,
    ) -> Result<Self, String> {
        let k = means.len();
        if k == 0 {
            return Err("a mixture needs at least one component".into());
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err("means must have at least one coordinate".into());
        }
        if means.iter().any(|m| m.len() != dim) {
            return Err(format!(
                "every mean must have {dim} coordinates like the first"
            ));
        }
        if weights.len() != k || stds.len() != k {
            return Err(format!(
                "{k} means but {} weights and {} stds: give one of each per component",
                weights.len(),
                stds.len()
            ));
        }
        if stds.iter().any(|s| s.len() != dim) {
            return Err(format!("each std is one number or a list of {dim}"));
        }
        if stds.iter().flatten().any(|s| !(*s > 0.0 && s.is_finite())) {
            return Err("stds must be positive and finite".into());
        }
        if weights.iter().any(|w| !(*w >= 0.0 && w.is_finite()))
            || weights.iter().sum::<f64>() <= 0.0
        {
            return Err("weights must be non-negative with a positive sum".into());
        }
        let total: f64 = weights.iter().sum();
        let weights = weights.iter().map(|w| w / total).collect();
        Ok(GaussianMixture {
            weights,
            means,
            stds,
        })
    }

    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    pub fn num_components(&self) -> usize {
        self.means.len()
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// Per-component, per-coordinate standard deviations.
    pub fn stds(&self) -> &[Vec<f64>] {
        &self.stds
    }

    pub fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let (data, _) = self.draw(n, rng);
        Samples::new(self.dim(), data)
    }

    /// [`GaussianMixture::sample`] (the same points) labelled with the component each came from.
    pub fn sample_labelled(&self, n: usize, rng: &mut Rng) -> Samples {
        let (data, components) = self.draw(n, rng);
        Samples::new(self.dim(), data).with_labels(components)
    }

    fn draw(&self, n: usize, rng: &mut Rng) -> (Vec<f64>, Vec<u32>) {
        let dim = self.dim();
        let mut data = Vec::with_capacity(n * dim);
        let mut components = Vec::with_capacity(n);
        for _ in 0..n {
            let k = rng.categorical(&self.weights);
            components.push(k as u32);
            for d in 0..dim {
                data.push(self.means[k][d] + self.stds[k][d] * rng.normal());
            }
        }
        (data, components)
    }

    /// log N(x; mu_k, diag(s_k^2 + sigma^2)) for every component k.
    fn component_log_densities(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        (0..self.num_components())
            .map(|k| {
                let mut log_p = 0.0;
                for ((xd, mean), std) in x.iter().zip(&self.means[k]).zip(&self.stds[k]) {
                    let var = std * std + sigma * sigma;
                    let diff = xd - mean;
                    log_p -= 0.5 * (ln_2pi + var.ln() + diff * diff / var);
                }
                log_p
            })
            .collect()
    }

    /// Log density of the mixture convolved with N(0, sigma^2 I) (sigma = 0: the data).
    pub fn log_density(&self, x: &[f64], sigma: f64) -> f64 {
        log_sum_exp(&self.weighted_log_densities(x, sigma))
    }

    /// log(w_k) + log N(x; mu_k, diag(s_k^2 + sigma^2)) for every component k.
    fn weighted_log_densities(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        self.component_log_densities(x, sigma)
            .iter()
            .zip(&self.weights)
            .map(|(lp, w)| lp + w.ln())
            .collect()
    }

    /// Posterior probability of each component given a noised point.
    pub fn responsibilities(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        let terms = self.weighted_log_densities(x, sigma);
        let norm = log_sum_exp(&terms);
        terms.iter().map(|t| (t - norm).exp()).collect()
    }

    /// grad_x log p_sigma(x) = sum_k r_k(x) (mu_k - x) / (s_k^2 + sigma^2).
    pub fn score(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        let r = self.responsibilities(x, sigma);
        (0..self.dim())
            .map(|d| {
                (0..self.num_components())
                    .map(|k| {
                        r[k] * (self.means[k][d] - x[d]) / (self.stds[k][d].powi(2) + sigma * sigma)
                    })
                    .sum()
            })
            .collect()
    }

    /// The score of component k alone, noised: grad_x log N(x; mu_k, diag(s_k^2 + sigma^2)) =
    /// (mu_k - x) / (s_k^2 + sigma^2), the class-conditional score when classes are components.
    pub fn component_score(&self, x: &[f64], sigma: f64, k: usize) -> Vec<f64> {
        (0..self.dim())
            .map(|d| (self.means[k][d] - x[d]) / (self.stds[k][d].powi(2) + sigma * sigma))
            .collect()
    }

    /// The Jacobian of the score, row-major (dim x dim): with g_k = (mu_k - x) / v_k and
    /// responsibilities r_k, d score / dx = sum_k r_k g_k g_k^T - g g^T - diag(sum_k r_k / v_k)
    /// where g = sum_k r_k g_k.
    pub fn score_jacobian(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        let dim = self.dim();
        let r = self.responsibilities(x, sigma);
        let mut jacobian = vec![0.0; dim * dim];
        let mut mean_g = vec![0.0; dim];
        for (k, rk) in r.iter().enumerate() {
            let g: Vec<f64> = (0..dim)
                .map(|d| (self.means[k][d] - x[d]) / (self.stds[k][d].powi(2) + sigma * sigma))
                .collect();
            for a in 0..dim {
                mean_g[a] += rk * g[a];
                for b in 0..dim {
                    jacobian[a * dim + b] += rk * g[a] * g[b];
                }
                jacobian[a * dim + a] -= rk / (self.stds[k][a].powi(2) + sigma * sigma);
            }
        }
        for a in 0..dim {
            for b in 0..dim {
                jacobian[a * dim + b] -= mean_g[a] * mean_g[b];
            }
        }
        jacobian
    }

    /// Index of the component whose mean is nearest (Euclidean) to `x`.
    pub fn nearest_component(&self, x: &[f64]) -> usize {
        let dist = |m: &Vec<f64>| m.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
        (0..self.num_components())
            .min_by(|&a, &b| dist(&self.means[a]).total_cmp(&dist(&self.means[b])))
            .unwrap_or(0)
    }
}

/// log(sum(exp(terms))) without overflow.
pub fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}
