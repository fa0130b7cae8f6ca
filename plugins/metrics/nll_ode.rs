//! `nll_ode`: negative log-likelihood of held-out data under the model read as a continuous
//! normalising flow (Song et al. 2021, Appendix D; FFJORD, Grathwohl et al. 2019). The
//! probability-flow ODE in sigma space, dx^/dt = -sigma(t) sigma'(t) score(x^; sigma(t)), is
//! integrated in the schedule's time from `t_min` up to t_max together with the running
//! integral of its divergence, -sigma sigma' div(score); then
//! log p(x) = log N(x^(t_max); 0, prior_std^2 I) + that integral.
//!
//! The data point itself is taken as x^ at `t_min`, i.e. as a draw of the noised marginal
//! p(x^; sigma(t_min)) = p_data * N(0, sigma(t_min)^2 I) in sigma space (no 1/s(t_min)
//! rescaling: at the built-in schedules' t_end, s is within ~1e-4 of 1). With a small
//! sigma(t_min) this is the data density up to O(sigma^2 / data variance). The divergence is the exact Jacobian trace up to `exact_max_dim` dimensions,
//! above that Hutchinson-Skilling's estimate with `probes` Rademacher vectors drawn once per
//! solve and held fixed along the trajectory (so the flow stays one deterministic ODE).
//!
//! Reported in nats per dimension. On quantised data (the image datasets, `shapes` with
//! `quantise: true`) the held-out codes are first dequantised with uniform noise from the
//! trial's seed, y = low + w (k + u), u ~ U[0, 1), w the bin width in model space (2/256 for
//! bytes in [-1, 1]), and bits per dimension are reported beside the nats as `nll_ode_bpd`:
//! bpd = nats/dim / ln 2 + log2(1 / w), +7 for bytes in [-1, 1] and +8 in [0, 1]. This is
//! score_sde's convention (Song et al. 2021, `likelihood.py`: offset log2(d inverse_scaler /
//! dx) + 8); see [`scorelab::metric::bits`]. Both columns score the same dequantised points.

use candle_core::{DType, Tensor};
use scorelab::config::{Params, RawParams};
use scorelab::metric::bits::{bits_detail, dequantisation_protocol, scored_points};
use scorelab::metric::{Measured, Metric, MetricContext, MetricInput};
use scorelab::network::counting::CountingModel;
use scorelab::network::{constant_sigma, ScoreModel};
use scorelab::ode::{solve_rk45, Tolerance};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `nll_ode`.
    pub struct NllOdeParams {
        /// Held-out points scored (the first ones of the held-out set).
        points: usize = 500 => 0..=scorelab::config::limits::MAX_POINTS,
        /// Schedule time at which the data is taken as the noised marginal; none: the schedule's t_end (where sampling stops).
        t_min: Option<f64> = None,
        /// Relative tolerance of the RK45 solve.
        rtol: f64 = 1e-5,
        /// Absolute tolerance of the RK45 solve.
        atol: f64 = 1e-5,
        /// Largest data dimension for the exact Jacobian trace; above it, Hutchinson-Skilling's estimate.
        exact_max_dim: usize = 8 => 0..=scorelab::config::limits::MAX_WIDTH,
        /// Rademacher probes of the Hutchinson estimate (drawn once per solve).
        probes: usize = 1 => 0..=scorelab::config::limits::MAX_REPEATS,
    }
}

pub struct NllOde {
    params: NllOdeParams,
}

/// Seed tag of the probes, so they differ from other metrics' draws at the same seed.
const PROBE_TAG: u64 = 0x006e_6c6c_5f6f_6465;

/// `count` Rademacher tensors of shape (n, dim): entries +1 or -1 with equal probability.
pub fn rademacher_probes(
    count: usize,
    n: usize,
    dim: usize,
    rng: &mut Rng,
    device: &candle_core::Device,
) -> candle_core::Result<Vec<Tensor>> {
    (0..count)
        .map(|_| {
            let signs: Vec<f32> = (0..n * dim)
                .map(|_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 })
                .collect();
            Tensor::from_vec(signs, (n, dim), device)
        })
        .collect()
}

/// log N(x; 0, std^2 I) per row.
fn prior_log_density(rows: &[f64], dim: usize, std: f64) -> Vec<f64> {
    let constant = -0.5 * dim as f64 * (2.0 * std::f64::consts::PI * std * std).ln();
    rows.chunks_exact(dim)
        .map(|x| constant - x.iter().map(|v| v * v).sum::<f64>() / (2.0 * std * std))
        .collect()
}

/// Per point, log p(x) under the flow, and the number of model evaluations it took. On
/// quantised data, x is the point dequantised (see the module doc).
pub fn log_likelihoods(
    input: &MetricInput,
    params: &NllOdeParams,
) -> Result<(Vec<f64>, u64), String> {
    let data = scored_points(input, params.points)?;
    let (n, dim) = (data.len(), data.dim());
    let schedule = input.schedule;
    let device = input.device;
    let model = CountingModel::new(input.model);
    let probes = if dim <= params.exact_max_dim {
        Vec::new()
    } else {
        let mut rng = Rng::from_seed(input.seed ^ PROBE_TAG);
        rademacher_probes(params.probes, n, dim, &mut rng, device).map_err(|e| e.to_string())?
    };
    let t_start = params.t_min.unwrap_or(schedule.t_end());

    let candle = |e: candle_core::Error| format!("tensor library: {e}");
    // The state [x^, delta] is f64 so the accumulated divergence keeps its digits; the
    // model sees f32 as everywhere else.
    let x0 = Tensor::from_vec(data.as_slice().to_vec(), (n, dim), device).map_err(candle)?;
    let y0 = Tensor::cat(
        &[
            &x0,
            &Tensor::zeros((n, 1), DType::F64, device).map_err(candle)?,
        ],
        1,
    )
    .map_err(candle)?;
    let mut drift = |t: f64, y: &Tensor| -> candle_core::Result<Tensor> {
        let sigma = schedule.sigma(t);
        let rate = -sigma * schedule.sigma_derivative(t);
        let x = y.narrow(1, 0, dim)?.to_dtype(DType::F32)?;
        let (score, divergence) =
            model.score_divergence(&x, &constant_sigma(sigma, n, device)?, &probes)?;
        let dx = (score.to_dtype(DType::F64)? * rate)?;
        let ddelta = (divergence.to_dtype(DType::F64)?.reshape((n, 1))? * rate)?;
        Tensor::cat(&[&dx, &ddelta], 1)
    };
    let tolerance = Tolerance {
        rtol: params.rtol,
        atol: params.atol,
    };
    let (y, _) = solve_rk45(
        &mut drift,
        y0,
        t_start,
        schedule.t_max(),
        tolerance,
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;

    let x_end = y
        .narrow(1, 0, dim)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(candle)?;
    let delta = y
        .narrow(1, dim, 1)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(candle)?;
    let prior = prior_log_density(&x_end, dim, schedule.prior_std());
    Ok((
        prior.iter().zip(&delta).map(|(p, d)| p + d).collect(),
        model.calls(),
    ))
}

impl Metric for NllOde {
    fn held_out_points(&self) -> Option<usize> {
        Some(self.params.points)
    }

    fn evaluates_model_on_data(&self) -> bool {
        true
    }

    fn protocol(&self, input: &MetricInput) -> Vec<(&'static str, String)> {
        let dim = input.reference.dim();
        let estimator = if dim <= self.params.exact_max_dim {
            "exact trace".to_string()
        } else {
            format!("Hutchinson, {} Rademacher probe(s)", self.params.probes)
        };
        let mut protocol = vec![
            ("estimator", estimator),
            (
                "points",
                self.params.points.min(input.reference.len()).to_string(),
            ),
            ("rtol", scorelab::config::number(self.params.rtol)),
            ("atol", scorelab::config::number(self.params.atol)),
        ];
        protocol.extend(dequantisation_protocol(input));
        protocol
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        if input.reference.is_empty() {
            return Err("there is no held-out data to score".into());
        }
        let dim = input.reference.dim();
        let (log_p, nfe) = log_likelihoods(input, &self.params)?;
        let nll = -log_p.iter().sum::<f64>() / (log_p.len() * dim) as f64;
        // The estimator (exact trace, or Hutchinson with its probe count) is in the protocol.
        let mut details = vec![("nfe", nfe as f64)];
        details.extend(bits_detail(input, nll));
        Ok(Measured {
            value: nll,
            details,
            facts: Vec::new(),
        })
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NllOdeParams::from_raw(raw)?;
    if params.points == 0 {
        return Err(raw.invalid("points", "must be at least 1", "set e.g. `points: 500`"));
    }
    for (key, value) in [("rtol", params.rtol), ("atol", params.atol)] {
        // A tolerance of 1 or more accepts any step: the likelihood would be noise.
        if !(value > 0.0 && value < 1.0) {
            return Err(raw.invalid(
                key,
                format!("must be in (0, 1), not {}", scorelab::config::number(value)),
                format!("set e.g. `{key}: 1e-5`"),
            ));
        }
    }
    if params.probes == 0 {
        return Err(raw.invalid("probes", "must be at least 1", "set e.g. `probes: 1`"));
    }
    let schedule = context.schedule;
    if let Some(t) = params.t_min {
        let sigma = schedule.sigma(t);
        if !(t >= 0.0 && t < schedule.t_max() && sigma > 0.0 && sigma.is_finite()) {
            return Err(raw.invalid(
                "t_min",
                format!("must be a time in [0, {}) with a positive noise level, not {t} (sigma = {sigma})", schedule.t_max()),
                format!("leave it unset for the schedule's t_end ({}), or pick a small positive time", schedule.t_end()),
            ));
        }
    }
    Ok(Built::new(
        Box::new(NllOde {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "nll_ode",
        about: "NLL of held-out data (nats/dim; bits/dim too on quantised images) by the probability-flow ODE as a continuous normalising flow",
        params: NllOdeParams::docs,
        build: Builder::Metric(build),
    }
}
