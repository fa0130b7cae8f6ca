//! Samplers against closed forms. On Gaussian data x0 ~ N(mu, s^2) the exact denoiser is
//! mu + s^2 / (s^2 + sigma^2) (x - mu) and the probability-flow ODE from sigma_a to sigma_b
//! scales x - mu by sqrt((s^2 + sigma_b^2) / (s^2 + sigma_a^2)): the ODE steps converge to it
//! at their orders. With the exact score of a Gaussian mixture (the `oracle`), every sampler
//! reproduces the mixture's mean, covariance and mode weights on `ve` and on `vp`.

use candle_core::{DType, Device, Tensor};
use scorelab::evaluate::{evaluate, Around};
use scorelab::network::ScoreModel;
use scorelab::ode::Tolerance;
use scorelab::plugins::metrics::mode_weights::{mode_weight_tv, Assignment};
use scorelab::plugins::samplers::ddim::{Ddim, DdimParams};
use scorelab::plugins::samplers::dpmpp_2m::{DpmPp2m, DpmPp2mParams};
use scorelab::plugins::samplers::euler::{Euler, EulerParams};
use scorelab::plugins::samplers::euler_ancestral::{EulerAncestral, EulerAncestralParams};
use scorelab::plugins::samplers::rk45::{integrate_pf_ode, Rk45, Rk45Params};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{euler_ode_step, heun_step};
use scorelab::sampler::Sampler;
use scorelab::schedule::{Grid, Schedule};

use crate::common::{resolve, resolve_error};

/// Gaussian data N(mu, diag(s^2)): its exact score at every noise level.
struct Gaussian {
    mu: Vec<f64>,
    s: Vec<f64>,
}

impl Gaussian {
    fn row(&self, values: &[f64], like: &Tensor) -> candle_core::Result<Tensor> {
        Tensor::from_vec(values.to_vec(), (1, values.len()), like.device())?.to_dtype(like.dtype())
    }

    /// The probability-flow ODE's solution at sigma_b from x at sigma_a.
    fn flow(&self, x: &Tensor, sigma_a: f64, sigma_b: f64) -> Vec<f64> {
        self.map(x, |d| {
            ((self.s[d].powi(2) + sigma_b * sigma_b) / (self.s[d].powi(2) + sigma_a * sigma_a))
                .sqrt()
        })
    }

    /// The flow to sigma_b followed by the exact denoiser there.
    fn flow_then_denoise(&self, x: &Tensor, sigma_a: f64, sigma_b: f64) -> Vec<f64> {
        self.map(x, |d| {
            let (s2, b2) = (self.s[d].powi(2), sigma_b * sigma_b);
            s2 / (s2 + b2) * ((s2 + b2) / (s2 + sigma_a * sigma_a)).sqrt()
        })
    }

    /// mu + factor(d) (x - mu), coordinate-wise.
    fn map(&self, x: &Tensor, factor: impl Fn(usize) -> f64) -> Vec<f64> {
        let dim = self.mu.len();
        let values = x
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| self.mu[i % dim] + factor(i % dim) * (v - self.mu[i % dim]))
            .collect()
    }
}

impl ScoreModel for Gaussian {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let variance: Vec<f64> = self.s.iter().map(|s| s * s).collect();
        let total = self
            .row(&variance, x)?
            .broadcast_add(&sigma.to_dtype(x.dtype())?.sqr()?)?;
        x.broadcast_sub(&self.row(&self.mu, x)?)?.neg()?.div(&total)
    }
}

const SIGMA_A: f64 = 10.0;
const SIGMA_B: f64 = 0.5;

fn gaussian() -> Gaussian {
    Gaussian {
        mu: vec![1.0, -2.0],
        s: vec![2.0, 0.5],
    }
}

/// Eight f64 starting points at sigma_a, spread over the prior.
fn start() -> Tensor {
    let mut rng = Rng::from_seed(1);
    let values: Vec<f64> = (0..16).map(|_| SIGMA_A * rng.normal()).collect();
    Tensor::from_vec(values, (8, 2), &Device::Cpu).unwrap()
}

/// `n` levels from sigma_a to sigma_b, uniform in log sigma.
fn log_levels(n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| SIGMA_A * (SIGMA_B / SIGMA_A).powf(i as f64 / n as f64))
        .collect()
}

fn max_error(x: &Tensor, exact: &[f64]) -> f64 {
    let got = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    got.iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Errors after n = 8, 16, 32, 64 steps of `step` from sigma_a to sigma_b.
fn errors(step: impl Fn(&Tensor, f64, f64) -> Tensor) -> Vec<f64> {
    let model = gaussian();
    let exact = model.flow(&start(), SIGMA_A, SIGMA_B);
    [8, 16, 32, 64]
        .iter()
        .map(|&n| {
            let levels = log_levels(n);
            let x = levels
                .windows(2)
                .fold(start(), |x, pair| step(&x, pair[0], pair[1]));
            max_error(&x, &exact)
        })
        .collect()
}

fn ratios(errors: &[f64]) -> Vec<f64> {
    errors.windows(2).map(|w| w[0] / w[1]).collect()
}

#[test]
fn euler_and_heun_steps_converge_at_orders_one_and_two() {
    let model = gaussian();
    let euler = errors(|x, a, b| euler_ode_step(&model, x, a, b).unwrap());
    let heun = errors(|x, a, b| heun_step(&model, x, a, b).unwrap());
    let (euler_ratios, heun_ratios) = (ratios(&euler), ratios(&heun));
    eprintln!("euler errors {euler:?} ratios {euler_ratios:?}");
    eprintln!("heun errors {heun:?} ratios {heun_ratios:?}");
    for r in &euler_ratios {
        assert!(
            (1.7..=2.3).contains(r),
            "Euler: halving the step should halve the error: {euler_ratios:?}"
        );
    }
    for r in &heun_ratios {
        assert!(
            (3.4..=4.6).contains(r),
            "Heun: halving the step should quarter the error: {heun_ratios:?}"
        );
    }
    assert!(heun[3] < 0.05 * euler[3], "euler {euler:?}, heun {heun:?}");
}

/// The sampler's output on the grid sigma_a .. sigma_b, 0 against the exact flow and denoiser.
fn sampler_error(sampler: &dyn Sampler, n: usize) -> f64 {
    let model = gaussian();
    let schedule = LogLinear;
    let grid = Grid::from_sigmas(&schedule, log_levels(n));
    let x = sampler
        .sample(&model, start(), &grid, &mut Rng::from_seed(0), &mut |_| {})
        .unwrap();
    max_error(&x, &model.flow_then_denoise(&start(), SIGMA_A, SIGMA_B))
}

#[test]
fn dpmpp_2m_converges_at_order_two_and_ddim_eta_zero_is_euler() {
    let dpmpp = DpmPp2m {
        params: DpmPp2mParams::default(),
    };
    // A multistep method whose first step is first order: the ratio nears 4 from below
    // (1.8, 3.4, 3.8 from 8 steps), so the check starts at 32.
    let errors: Vec<f64> = [32, 64, 128, 256]
        .iter()
        .map(|&n| sampler_error(&dpmpp, n))
        .collect();
    let r = ratios(&errors);
    eprintln!("dpmpp_2m errors {errors:?} ratios {r:?}");
    for ratio in &r {
        assert!((3.4..=4.6).contains(ratio), "DPM-Solver++(2M): {r:?}");
    }

    let euler = sampler_error(
        &Euler {
            params: EulerParams::default(),
        },
        16,
    );
    let ddim = sampler_error(
        &Ddim {
            params: DdimParams::default(),
        },
        16,
    );
    assert!(
        (euler - ddim).abs() <= 1e-12 * euler,
        "DDIM at eta 0 is the Euler step: {euler} vs {ddim}"
    );
}

#[test]
fn euler_ancestral_is_ddim_at_the_same_eta() {
    let schedule = LogLinear;
    let grid = Grid::from_sigmas(&schedule, log_levels(10));
    let model = gaussian();
    let run = |sampler: &dyn Sampler| {
        let x = sampler
            .sample(&model, start(), &grid, &mut Rng::from_seed(4), &mut |_| {})
            .unwrap();
        x.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    };
    for eta in [0.5, 1.0] {
        let ancestral = run(&EulerAncestral {
            params: EulerAncestralParams {
                eta,
                ..Default::default()
            },
        });
        let ddim = run(&Ddim {
            params: DdimParams {
                eta,
                ..Default::default()
            },
        });
        assert_eq!(ancestral, ddim, "eta {eta}");
    }
}

/// sigma(t) = sigma_b (sigma_a / sigma_b)^t on [0, 1], a VE schedule for the ODE tests.
struct LogLinear;

impl Schedule for LogLinear {
    fn sigma(&self, t: f64) -> f64 {
        SIGMA_B * (SIGMA_A / SIGMA_B).powf(t)
    }
    fn sigma_derivative(&self, t: f64) -> f64 {
        self.sigma(t) * (SIGMA_A / SIGMA_B).ln()
    }
    fn t_of_sigma(&self, sigma: f64) -> f64 {
        (sigma / SIGMA_B).ln() / (SIGMA_A / SIGMA_B).ln()
    }
    fn t_end(&self) -> f64 {
        0.0
    }
    fn loss_levels(&self) -> Vec<f64> {
        vec![SIGMA_B, SIGMA_A]
    }
    fn training_sigmas(&self, _n: usize, _rng: &mut Rng) -> Vec<(f64, usize)> {
        unreachable!("sampling only")
    }
    fn default_grid(&self, _steps: Option<usize>) -> Vec<f64> {
        vec![SIGMA_A, SIGMA_B]
    }
}

#[test]
fn rk45_solves_the_flow_within_its_tolerance() {
    let model = gaussian();
    let x_max = 4.0 * SIGMA_A;
    for tol in [1e-5, 1e-8] {
        let tolerance = Tolerance {
            rtol: tol,
            atol: tol,
        };
        let (x, stats) = integrate_pf_ode(
            &model,
            start(),
            &LogLinear,
            1.0,
            0.0,
            tolerance,
            &mut |_| {},
        )
        .unwrap();
        let error = max_error(&x, &model.flow(&start(), SIGMA_A, SIGMA_B));
        eprintln!("rk45 tol {tol:e}: max error {error:e}, {stats:?}");
        assert!(
            error <= 10.0 * (tol + tol * x_max),
            "tolerance {tol:e}: error {error:e}"
        );
    }
    // The sampler adds the denoising step at sigma_b.
    let sampler = Rk45 {
        params: Rk45Params::default(),
    };
    let error = sampler_error(&sampler, 1);
    eprintln!("rk45 sampler error {error:e}");
    assert!(error <= 10.0 * (1e-5 + 1e-5 * x_max), "{error:e}");
}

/// A mixture with unequal weights, spreads and a diagonal offset.
const MIXTURE: &str = r#"
seed: 7
num_samples: 2000
data:
  kind: gmm
  means: [[-3.0, -1.0], [2.0, 2.0]]
  stds: [1.0, 0.5]
  weights: [0.7, 0.3]
network: oracle
weighting: sigma_squared
train: {train_size: 200}
eval: [mode_weights]
"#;

/// The mixture's exact mean and covariance.
fn mixture_moments() -> ([f64; 2], [[f64; 2]; 2]) {
    let (weights, means, stds) = ([0.7, 0.3], [[-3.0, -1.0], [2.0, 2.0]], [1.0, 0.5]);
    let mut mean = [0.0; 2];
    let mut second = [[0.0; 2]; 2];
    for k in 0..2 {
        for a in 0..2 {
            mean[a] += weights[k] * means[k][a];
            for b in 0..2 {
                let within = if a == b { stds[k] * stds[k] } else { 0.0 };
                second[a][b] += weights[k] * (within + means[k][a] * means[k][b]);
            }
        }
    }
    let cov = [0, 1].map(|a| [0, 1].map(|b| second[a][b] - mean[a] * mean[b]));
    (mean, cov)
}

struct Run {
    /// Largest |error| / standard error over the two means and three covariance entries.
    z: f64,
    tv: f64,
}

fn run(schedule: &str, sampler: &str) -> Run {
    let text = format!("{MIXTURE}schedule: {schedule}\nsampler: {sampler}\n");
    let trials = resolve(&text, &[]).unwrap();
    let trial = &trials[0];
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let evaluation = evaluate(trial, &model, &Around::default(), &mut |_| {}).unwrap();
    let points = &evaluation.samples;
    assert!(
        points.all_finite(),
        "{sampler} on {schedule}: non-finite samples"
    );
    let n = points.len() as f64;
    let rows: Vec<&[f64]> = points.rows().collect();
    let (mean, cov) = mixture_moments();
    let sample_mean = [0, 1].map(|a| rows.iter().map(|r| r[a]).sum::<f64>() / n);
    let mut z: f64 = 0.0;
    for a in 0..2 {
        let sd = (rows
            .iter()
            .map(|r| (r[a] - sample_mean[a]).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        z = z.max((sample_mean[a] - mean[a]).abs() / (sd / n.sqrt()));
        for b in a..2 {
            // The covariance entry as a mean of products, with the products' standard error.
            let products: Vec<f64> = rows
                .iter()
                .map(|r| (r[a] - sample_mean[a]) * (r[b] - sample_mean[b]))
                .collect();
            let estimate = products.iter().sum::<f64>() / n;
            let sd = (products.iter().map(|p| (p - estimate).powi(2)).sum::<f64>() / n).sqrt();
            z = z.max((estimate - cov[a][b]).abs() / (sd / n.sqrt()));
        }
    }
    let tv = mode_weight_tv(
        trial.dataset.mixture().unwrap(),
        points,
        Assignment::Posterior,
    );
    eprintln!(
        "{sampler} on {schedule}: max z {z:.2}, mode TV {tv:.4}, NFE {}",
        evaluation.nfe
    );
    Run { z, tv }
}

const SCHEDULES: [&str; 2] = ["{kind: ve}", "{kind: vp}"];

/// Each sampler matches the mixture's moments to within `Z_MAX` standard errors (2000
/// samples) and its mode weights to within `TV_MAX` (the shares' standard error is ~0.01).
const Z_MAX: f64 = 4.0;
const TV_MAX: f64 = 0.03;

fn check_all(samplers: &[&str]) {
    let mut failures = Vec::new();
    for schedule in SCHEDULES {
        for sampler in samplers {
            let r = run(schedule, sampler);
            if !(r.z <= Z_MAX && r.tv <= TV_MAX) {
                failures.push(format!(
                    "{sampler} on {schedule}: z {:.2}, TV {:.4}",
                    r.z, r.tv
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn stochastic_samplers_reproduce_a_mixture_with_the_exact_score() {
    check_all(&[
        "{kind: ddpm, steps: 200}",
        "{kind: ddpm, steps: 200, variance: beta}",
        "{kind: euler_ancestral, steps: 200}",
        "{kind: ddim, steps: 200, eta: 1.0}",
        "{kind: euler_maruyama, steps: 500}",
        "{kind: pc, steps: 200}",
        "{kind: pc, steps: 200, predictor: euler_maruyama, corrector: ald}",
        "{kind: pc, steps: 200, predictor: ddpm, corrector: none}",
        "{kind: pc, steps: 200, predictor: ancestral}",
        "{kind: heun, steps: 40, s_churn: 10}",
    ]);
}

#[test]
fn ode_samplers_reproduce_a_mixture_with_the_exact_score() {
    check_all(&[
        "{kind: euler, steps: 200}",
        "{kind: heun, steps: 40}",
        "{kind: rk45}",
        "{kind: dpmpp_2m, steps: 40}",
        "{kind: ddim, steps: 200}",
    ]);
}

#[test]
fn nfe_is_what_the_engine_counts() {
    let small = |sampler: &str| -> u64 {
        let text = format!("{MIXTURE}schedule: {{kind: vp}}\nsampler: {sampler}\n");
        let text = text.replace("num_samples: 2000", "num_samples: 20");
        let trials = resolve(&text, &[]).unwrap();
        let trial = &trials[0];
        let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
        evaluate(trial, &model, &Around::default(), &mut |_| {})
            .unwrap()
            .nfe
    };
    assert_eq!(small("{kind: heun, steps: 18}"), 2 * 18 - 1);
    assert_eq!(small("{kind: euler, steps: 30}"), 30);
    assert_eq!(small("{kind: dpmpp_2m, steps: 20}"), 20);
    assert_eq!(small("{kind: ddim, steps: 25, eta: 0.5}"), 25);
    assert_eq!(small("{kind: euler_maruyama, steps: 40}"), 40);
    // One corrector step and one predictor step per level, the last level's predictor the denoising step.
    assert_eq!(small("{kind: pc, steps: 40}"), 2 * 40);
    assert_eq!(
        small("{kind: pc, steps: 40, corrector: {kind: langevin, steps: 3}}"),
        4 * 40
    );
    assert_eq!(small("{kind: pc, steps: 40, corrector: none}"), 40);
    // The schedule's own grid: vp's 1000 levels.
    assert_eq!(small("{kind: ddpm}"), 1000);
    // Dormand-Prince: 2 evaluations to pick the first step, 6 per attempted step; then the denoising step.
    let rk45 = small("{kind: rk45}");
    assert!(rk45 > 8 && (rk45 - 3) % 6 == 0, "rk45 NFE {rk45}");
}

#[test]
fn bad_sampler_params_name_the_key() {
    // (sampler slot, key under `sampler.`, words the message must contain)
    for [sampler, key, words] in [
        ["{kind: ddim, eta: 1.5}", "eta", "[0, 1]"],
        ["{kind: euler_ancestral, eta: -0.1}", "eta", "[0, 1]"],
        ["{kind: heun, steps: 0}", "steps", "at least 1"],
        ["{kind: heun, s_churn: -1}", "s_churn", "non-negative"],
        [
            "{kind: heun, s_tmin: 2, s_tmax: 1}",
            "s_tmax",
            "at least s_tmin",
        ],
        ["{kind: rk45, rtol: 0}", "rtol", "positive"],
        ["{kind: rk45, atol: -1e-5}", "atol", "positive"],
        ["{kind: ddpm, steps: 0}", "steps", "at least 1"],
        ["{kind: ddpm, variance: bta}", "variance", "beta_tilde"],
        [
            "{kind: euler, grid: karras(-1)}",
            "grid",
            "rho in [0.5, 1000]",
        ],
        ["{kind: euler_maruyama, steps: 0}", "steps", "at least 1"],
    ] {
        let text = format!("{MIXTURE}schedule: {{kind: ve}}\nsampler: {sampler}\n");
        let message = resolve_error(&text, &[]);
        let named = message.contains(&format!("`sampler.{key}`"));
        assert!(named && message.contains(words), "{sampler}: {message}");
    }
}
