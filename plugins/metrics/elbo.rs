//! `elbo`: the variational bound on the negative log-likelihood of held-out data for discrete
//! chains (Ho et al. 2020, eq. 5; the hierarchical-VAE view of DDPM), in nats per dimension:
//! L_T + sum_{i=2..T} L_{i-1} + L_0.
//!
//! Every discrete schedule (DDPM's and cosine's VP chains, and the NCSN levels of
//! `geometric` read as the chain x^_i = x^_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z with
//! sigma_0 = 0) is, in sigma space, additive Gaussian noise, and the KL terms are invariant
//! under the per-step scaling x = s_i x^, so the bound is computed there:
//! - L_T = KL(N(x0, sigma_T^2 I) || N(0, prior_std^2 I));
//! - L_{i-1} = KL(q(x^_{i-1} | x^_i, x0) || p(x^_{i-1} | x^_i)): both Gaussians share the
//!   posterior variance sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2 (DDPM's beta~),
//!   and the means x0 + (sigma_{i-1}^2 / sigma_i^2)(x^_i - x0) differ only by x0 -> D(x^_i;
//!   sigma_i), so the KL is (1/sigma_{i-1}^2 - 1/sigma_i^2) ||x0 - D||^2 / 2 (the SNR form of
//!   Kingma et al. 2021);
//! - L_0 = -log N(x0; D(x^_1; sigma_1), sigma_1^2 I), a Gaussian decoder for continuous data.
//!
//! The expectation over x^_i ~ q(x^_i | x0) = N(x0, sigma_i^2 I) is one seeded Monte-Carlo
//! draw per point and level, summed over all levels (not one random level), so the NFE is T.
//!
//! On quantised data (the image datasets, `shapes` with `quantise: true`) x0 is the held-out
//! code dequantised with uniform noise, x0 = low + w (k + u), u ~ U[0, 1) (the same points
//! `nll_ode` scores), and bits per dimension are reported beside the nats as `elbo_bpd`:
//! bpd = nats/dim / ln 2 + log2(1 / w), +7 for bytes in [-1, 1] (score_sde's convention; see
//! [`scorelab::metric::bits`]). With L_0 still a Gaussian decoder of the dequantised value
//! (not Ho et al.'s discretised decoder), this bounds the dequantised NLL and so, by Jensen,
//! the discrete data's.

use candle_core::{DType, Tensor};
use scorelab::config::{Params, RawParams};
use scorelab::metric::bits::{bits_detail, dequantisation_protocol, scored_points};
use scorelab::metric::{Measured, Metric, MetricContext, MetricInput};
use scorelab::network::counting::CountingModel;
use scorelab::network::{constant_sigma, ScoreModel};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::Schedule;

params! {
    /// Parameters of `elbo`.
    pub struct ElboParams {
        /// Held-out points scored (the first ones of the held-out set).
        points: usize = 500 => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

pub struct Elbo {
    params: ElboParams,
}

/// Seed tag of the noise draws, so they differ from other metrics' draws at the same seed.
const NOISE_TAG: u64 = 0x656c_626f;

/// The bound's three parts per point, in nats (summed over dimensions).
#[derive(Debug, Clone, PartialEq)]
pub struct ElboTerms {
    /// L_T: the prior mismatch.
    pub prior: Vec<f64>,
    /// sum_{i=2..T} L_{i-1}.
    pub diffusion: Vec<f64>,
    /// L_0: the decoder's negative log-likelihood.
    pub decoder: Vec<f64>,
    /// Model evaluations.
    pub nfe: u64,
}

impl ElboTerms {
    /// The whole bound per point.
    pub fn total(&self) -> Vec<f64> {
        (0..self.prior.len())
            .map(|k| self.prior[k] + self.diffusion[k] + self.decoder[k])
            .collect()
    }
}

/// The bound's terms for the first `points` held-out points (dequantised on quantised data).
pub fn elbo_terms(input: &MetricInput, points: usize) -> Result<ElboTerms, String> {
    let levels = input
        .schedule
        .discrete_levels()
        .ok_or("`elbo` needs a discrete schedule")?;
    let data = scored_points(input, points)?;
    let (n, dim) = (data.len(), data.dim());
    let x0 = data.as_slice();
    let candle = |e: candle_core::Error| format!("tensor library: {e}");
    let model = CountingModel::new(input.model);
    let mut rng = Rng::from_seed(input.seed ^ NOISE_TAG);

    let (sigma_t, prior_std) = (levels[levels.len() - 1], input.schedule.prior_std());
    let prior = data
        .rows()
        .map(|row| {
            let (q, p) = (sigma_t * sigma_t, prior_std * prior_std);
            let norm = row.iter().map(|v| v * v).sum::<f64>();
            0.5 * (dim as f64 * ((p / q).ln() + q / p - 1.0) + norm / p)
        })
        .collect();

    let mut diffusion = vec![0.0; n];
    let mut decoder = vec![0.0; n];
    for (i, &sigma) in levels.iter().enumerate() {
        // x^_i ~ N(x0, sigma_i^2 I), made in f64 and handed to the model in f32.
        let noisy: Vec<f32> = x0
            .iter()
            .map(|v| (v + sigma * rng.normal()) as f32)
            .collect();
        let noisy = Tensor::from_vec(noisy, (n, dim), input.device).map_err(candle)?;
        let denoised = model
            .denoise(
                &noisy,
                &constant_sigma(sigma, n, input.device).map_err(candle)?,
            )
            .and_then(|d| d.to_dtype(DType::F64))
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.to_vec1::<f64>())
            .map_err(candle)?;
        let squared_errors = x0
            .chunks_exact(dim)
            .zip(denoised.chunks_exact(dim))
            .map(|(a, b)| a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum::<f64>());
        if i == 0 {
            let constant = 0.5 * dim as f64 * (2.0 * std::f64::consts::PI * sigma * sigma).ln();
            for (k, e) in squared_errors.enumerate() {
                decoder[k] = constant + e / (2.0 * sigma * sigma);
            }
        } else {
            let previous = levels[i - 1];
            let weight = 0.5 * (1.0 / (previous * previous) - 1.0 / (sigma * sigma));
            for (k, e) in squared_errors.enumerate() {
                diffusion[k] += weight * e;
            }
        }
    }
    Ok(ElboTerms {
        prior,
        diffusion,
        decoder,
        nfe: model.calls(),
    })
}

impl Metric for Elbo {
    fn held_out_points(&self) -> Option<usize> {
        Some(self.params.points)
    }

    fn evaluates_model_on_data(&self) -> bool {
        true
    }

    fn protocol(&self, input: &MetricInput) -> Vec<(&'static str, String)> {
        let mut protocol = vec![
            (
                "estimator",
                "all T KL terms, one seeded draw per point and level".to_string(),
            ),
            (
                "points",
                self.params.points.min(input.reference.len()).to_string(),
            ),
        ];
        protocol.extend(dequantisation_protocol(input));
        protocol
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        if input.reference.is_empty() {
            return Err("there is no held-out data to score".into());
        }
        let terms = elbo_terms(input, self.params.points)?;
        let total = terms.total();
        let value = total.iter().sum::<f64>() / (total.len() * input.reference.dim()) as f64;
        let mut details = vec![("nfe", terms.nfe as f64)];
        details.extend(bits_detail(input, value));
        Ok(Measured {
            value,
            details,
            facts: Vec::new(),
        })
    }
}

/// Whether a schedule is a discrete chain (the schedules `elbo` accepts).
fn is_discrete(schedule: &dyn Schedule) -> bool {
    schedule.discrete_levels().is_some()
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = ElboParams::from_raw(raw)?;
    if params.points == 0 {
        return Err(raw.invalid("points", "must be at least 1", "set e.g. `points: 500`"));
    }
    let Some(levels) = context.schedule.discrete_levels() else {
        let names = scorelab::registry::schedules_where(is_discrete);
        return Err(raw.invalid(
            "kind",
            format!(
                "metric `elbo` needs a discrete schedule, but `{}` is continuous",
                context.schedule_name
            ),
            format!(
                "use one of the discrete schedules: {}, or remove `elbo` from `eval`",
                names.join(", ")
            ),
        ));
    };
    if levels.is_empty() || levels[0] <= 0.0 || levels.windows(2).any(|w| w[1] <= w[0]) {
        return Err(raw.invalid(
            "kind",
            format!("metric `elbo` needs strictly increasing positive noise levels, but `{}` gives {levels:?}", context.schedule_name),
            "use distinct noise levels (e.g. `num_levels` of at least 2 with sigma_min below sigma_max)",
        ));
    }
    Ok(Built::new(
        Box::new(Elbo {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "elbo",
        about: "DDPM's variational bound on the NLL of held-out data (nats/dim; bits/dim too on quantised images) for discrete schedules",
        params: ElboParams::docs,
        build: Builder::Metric(build),
    }
}
