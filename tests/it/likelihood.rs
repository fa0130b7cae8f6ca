//! Likelihoods of held-out data under exact score models: `nll_ode` (the probability-flow ODE
//! as a continuous normalising flow) against the closed-form density, the Hutchinson
//! divergence against the exact trace, and `elbo` (DDPM's variational bound) above the true
//! NLL with a gap that shrinks as the chain gets finer.

use candle_core::{Device, Tensor};
use scorelab::dataset::Samples;
use scorelab::metric::{Measured, Metric, MetricInput};
use scorelab::network::{sigma_column, ScoreModel};
use scorelab::plugins::metrics::elbo::elbo_terms;
use scorelab::plugins::metrics::nll_ode::{log_likelihoods, rademacher_probes, NllOdeParams};
use scorelab::rng::Rng;
use scorelab::schedule::discrete::DiscreteChain;
use scorelab::schedule::Schedule;
use scorelab::trial::Trial;

use crate::common::{resolve, resolve_error};

/// An exact-score experiment: `data` and `schedule` are YAML flow tables.
fn experiment(data: &str, schedule: &str, eval: &str) -> String {
    format!(
        r#"
seed: 5
num_samples: 500
data: {data}
schedule: {schedule}
weighting: {{kind: sigma_squared}}
network: {{kind: oracle}}
train: {{train_size: 100}}
sampler: {{kind: annealed_langevin}}
eval: {eval}
"#
    )
}

const GAUSSIAN: &str = "{kind: gmm, means: [[1.0, -2.0]], stds: [[1.5, 0.5]], weights: [1.0]}";
const MIXTURE: &str =
    "{kind: gmm, means: [[-3.0, -1.0], [2.0, 2.5]], stds: [[1.0, 0.6], 0.8], weights: [0.7, 0.3]}";
/// sigma_max far above the data and sigma_min far below it. The prior N(0, sigma_max^2) then
/// differs from the true marginal by mu . mean(z) / sigma_max ~ 5e-5 nats/dim over 500 points
/// (z the points' standardised offsets): the floor of the agreement below.
const WIDE: &str = "{kind: geometric, num_levels: 10, sigma_max: 1000, sigma_min: 0.001}";
const WIDE_VE: &str = "{kind: ve, sigma_max: 1000, sigma_min: 0.001}";

fn trial_of(data: &str, schedule: &str, eval: &str) -> Trial {
    resolve(&experiment(data, schedule, eval), &[])
        .unwrap()
        .remove(0)
}

/// Computes the trial's metric `index` on its held-out data with its exact model, under
/// `schedule` (the trial's own when `None`).
fn measure(trial: &Trial, index: usize, schedule: Option<&dyn Schedule>) -> Measured {
    measure_with_estimator(trial, index, schedule).0
}

/// The measurement and the estimator its protocol states.
fn measure_with_estimator(
    trial: &Trial,
    index: usize,
    schedule: Option<&dyn Schedule>,
) -> (Measured, String) {
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let metric: &dyn Metric = trial.metrics[index].1.as_ref();
    let input = MetricInput {
        samples: &trial.held_out,
        reference: &trial.held_out,
        dataset: trial.dataset.as_ref(),
        seed: trial.settings.seed,
        model: &model,
        schedule: schedule.unwrap_or(trial.schedule.as_ref()),
        device: &trial.device,
        features: None,
    };
    let estimator = metric
        .protocol(&input)
        .into_iter()
        .find(|(k, _)| *k == "estimator")
        .map(|(_, v)| v)
        .unwrap_or_default();
    (metric.compute(&input).unwrap(), estimator)
}

fn detail(measured: &Measured, name: &str) -> f64 {
    measured.details.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Mean of -log p(x; sigma) / dim over the first `n` held-out points, from the closed form.
fn analytic_nll(trial: &Trial, n: usize, sigma: f64) -> f64 {
    let mixture = trial.dataset.mixture().unwrap();
    let points = trial.held_out.head(n);
    -points
        .rows()
        .map(|x| mixture.log_density(x, sigma))
        .sum::<f64>()
        / (points.len() * points.dim()) as f64
}

#[test]
fn nll_ode_of_the_exact_score_is_the_analytic_nll_of_gaussian_data() {
    let trial = trial_of(GAUSSIAN, WIDE_VE, "[nll_ode]");
    let start = std::time::Instant::now();
    let (measured, estimator) = measure_with_estimator(&trial, 0, None);
    let seconds = start.elapsed().as_secs_f64();
    let exact = analytic_nll(&trial, 500, 0.0);
    // The flow's density is the data's smoothed to sigma(t_end) ~ 1e-3: 2e-7 nats/dim off.
    let sigma_end = trial.schedule.sigma(trial.schedule.t_end());
    let smoothed = analytic_nll(&trial, 500, sigma_end);
    let nfe = detail(&measured, "nfe");
    println!(
        "gaussian: nll_ode {:.6} analytic {exact:.6} (at sigma_min {smoothed:.6}) diff {:.2e} nfe {nfe} in {seconds:.3} s",
        measured.value,
        measured.value - exact
    );
    assert!(
        (measured.value - exact).abs() < 2e-3,
        "{} vs {exact}",
        measured.value
    );
    assert!(
        (measured.value - smoothed).abs() < 2e-4,
        "{} vs {smoothed}",
        measured.value
    );
    // Exact trace in 2D; RK45's NFE is 6 per step plus 2.
    assert_eq!(estimator, "exact trace");
    assert!(nfe > 20.0 && (nfe - 2.0) % 6.0 == 0.0, "{nfe}");
}

#[test]
fn nll_ode_of_the_exact_score_matches_nll_true_on_a_mixture() {
    // NCSN levels read as continuous time, VE, and VP (s(t) != 1, prior N(0, I) in x,
    // sampling_eps 1e-3 so sigma(t_end) ~ 0.01: an O(1e-4) smoothing of the data density).
    let eval = "[nll_ode, {kind: nll_true, of: held_out, per_dim: true, points: 500}]";
    let mut truth = 0.0;
    for schedule in [WIDE, WIDE_VE, "{kind: vp}"] {
        let trial = trial_of(MIXTURE, schedule, eval);
        let ode = measure(&trial, 0, None);
        truth = measure(&trial, 1, None).value;
        println!(
            "mixture, {schedule}: nll_ode {:.6} nll_true(held_out) {truth:.6} diff {:.2e} nfe {}",
            ode.value,
            ode.value - truth,
            detail(&ode, "nfe")
        );
        assert!(
            (ode.value - truth).abs() < 2e-3,
            "{schedule}: {} vs {truth}",
            ode.value
        );
    }
    // At defaults nll_true still scores the samples in nats per point.
    let defaults = trial_of(MIXTURE, WIDE, "[nll_true]");
    assert_eq!(defaults.held_out.len(), 500);
    assert_eq!(measure(&defaults, 0, None).value, 2.0 * truth);
}

#[test]
fn nll_ode_with_hutchinson_probes_is_unbiased_per_point() {
    // Forcing the estimator in 2D: per point, log p with one or four probes minus the exact
    // log p averages to zero within 3 standard errors; the probe count is recorded.
    let trial = trial_of(
        MIXTURE,
        WIDE_VE,
        "[{kind: nll_ode, exact_max_dim: 0, probes: 4}]",
    );
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let input = MetricInput {
        samples: &trial.held_out,
        reference: &trial.held_out,
        dataset: trial.dataset.as_ref(),
        seed: 9,
        model: &model,
        schedule: trial.schedule.as_ref(),
        device: &trial.device,
        features: None,
    };
    let mixture = trial.dataset.mixture().unwrap();
    let sigma_end = trial.schedule.sigma(trial.schedule.t_end());
    for probes in [1, 4] {
        let params = NllOdeParams {
            exact_max_dim: 0,
            probes,
            ..NllOdeParams::default()
        };
        let (log_p, nfe) = log_likelihoods(&input, &params).unwrap();
        let errors: Vec<f64> = log_p
            .iter()
            .zip(trial.held_out.rows())
            .map(|(estimate, x)| estimate - mixture.log_density(x, sigma_end))
            .collect();
        let k = errors.len() as f64;
        let mean = errors.iter().sum::<f64>() / k;
        let se = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (k - 1.0) / k).sqrt();
        println!("hutchinson, {probes} probes: log p error {mean:.4} +- {se:.4} nats, nfe {nfe}");
        assert!(
            mean.abs() < 3.0 * se + 1e-3,
            "{probes} probes: {mean} +- {se}"
        );
    }
    let (_, estimator) = measure_with_estimator(&trial, 0, None);
    assert_eq!(estimator, "Hutchinson, 4 Rademacher probe(s)");
}

/// Central differences of the model's score (f32 calls), per row a row-major dim x dim
/// Jacobian d score_a / d x_b.
fn finite_difference_jacobians(
    model: &dyn ScoreModel,
    points: &Samples,
    sigma: &Tensor,
    h: f64,
) -> Vec<Vec<f64>> {
    let dim = points.dim();
    let mut jacobians = vec![vec![0.0; dim * dim]; points.len()];
    for b in 0..dim {
        let shifted = |sign: f64| -> Vec<f64> {
            let mut moved = points.as_slice().to_vec();
            moved
                .iter_mut()
                .skip(b)
                .step_by(dim)
                .for_each(|v| *v += sign * h);
            let x = Samples::new(dim, moved).to_tensor(sigma.device()).unwrap();
            let score = model.score(&x, sigma).unwrap();
            Samples::from_tensor(&score).unwrap().as_slice().to_vec()
        };
        let (up, down) = (shifted(1.0), shifted(-1.0));
        for (row, jacobian) in jacobians.iter_mut().enumerate() {
            for a in 0..dim {
                jacobian[a * dim + b] = (up[row * dim + a] - down[row * dim + a]) / (2.0 * h);
            }
        }
    }
    jacobians
}

fn as_f64(t: Tensor) -> Vec<f64> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn hutchinson_divergence_is_unbiased_and_the_exact_traces_agree_with_finite_differences() {
    // An untrained mlp on 3D data, rows at noise levels from 0.05 to 20: the autograd trace
    // and every single-probe estimate eps^T J eps against a finite-difference Jacobian, then
    // the mean of the estimates against the trace within 3 standard errors, per row.
    let data = "{kind: gmm, means: [[0.0, 1.0, -1.0]], stds: [1.0], weights: [1.0]}";
    let yaml = experiment(data, WIDE, "[]").replace(
        "{kind: oracle}",
        "{kind: mlp, hidden: 32, layers: 2, embedding: 8}",
    );
    let trial = resolve(&yaml, &[]).unwrap().remove(0);
    let model = trial.new_model(&mut Rng::from_seed(4)).unwrap();
    let device = Device::Cpu;
    let sigmas = [0.05, 0.3, 1.0, 2.0, 5.0, 20.0];
    let (n, dim) = (sigmas.len(), 3);
    let points = trial.held_out.head(n);
    let x = points.to_tensor(&device).unwrap();
    let sigma = sigma_column(&sigmas, &device).unwrap();
    let jacobians = finite_difference_jacobians(&model, &points, &sigma, 1e-2);
    let close = |a: f64, b: f64| (a - b).abs() < 2e-4 * (1.0 + b.abs());

    let exact = as_f64(model.score_divergence(&x, &sigma, &[]).unwrap().1);
    for (row, jacobian) in jacobians.iter().enumerate() {
        let trace: f64 = (0..dim).map(|a| jacobian[a * dim + a]).sum();
        assert!(
            close(exact[row], trace),
            "row {row}: autograd {} vs fd {trace}",
            exact[row]
        );
    }
    let draws = 1000;
    let mut rng = Rng::from_seed(21);
    let mut estimates = vec![Vec::with_capacity(draws); n];
    for _ in 0..draws {
        let probe = rademacher_probes(1, n, dim, &mut rng, &device).unwrap();
        let values = as_f64(model.score_divergence(&x, &sigma, &probe).unwrap().1);
        let signs = as_f64(probe[0].clone());
        for (row, jacobian) in jacobians.iter().enumerate() {
            let eps = &signs[row * dim..(row + 1) * dim];
            let quadratic: f64 = (0..dim)
                .flat_map(|a| (0..dim).map(move |b| (a, b)))
                .map(|(a, b)| eps[a] * jacobian[a * dim + b] * eps[b])
                .sum();
            assert!(
                close(values[row], quadratic),
                "row {row}: {} vs {quadratic}",
                values[row]
            );
            estimates[row].push(values[row]);
        }
    }
    for (row, draws) in estimates.iter().enumerate() {
        let k = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / k;
        let se = (draws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0) / k).sqrt();
        println!(
            "row {row}: trace {:.5} hutchinson {mean:.5} +- {se:.5}",
            exact[row]
        );
        assert!(
            se > 0.0,
            "row {row}: the estimate should vary with the probe"
        );
        assert!(
            (mean - exact[row]).abs() < 3.0 * se,
            "row {row}: {mean} +- {se} vs {}",
            exact[row]
        );
    }
}

#[test]
fn the_oracles_closed_form_divergence_is_the_trace_of_its_score_jacobian() {
    let trial = trial_of(
        "{kind: gmm, means: [[-2.0, 0.0, 1.0], [2.0, 1.0, -1.0]], stds: [[0.5, 1.0, 0.7], 1.2], weights: [0.6, 0.4]}",
        WIDE,
        "[]",
    );
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let mixture = trial.dataset.mixture().unwrap();
    let device = Device::Cpu;
    let (n, dim) = (8, 3);
    let points = trial.held_out.head(n);
    let sigmas = [0.01, 0.1, 0.5, 1.0, 1.5, 3.0, 10.0, 100.0];
    let x = points.to_tensor(&device).unwrap();
    let sigma = sigma_column(&sigmas, &device).unwrap();
    let divergence = |probes: &[Tensor]| -> Vec<f64> {
        let (_, div) = model.score_divergence(&x, &sigma, probes).unwrap();
        div.to_dtype(candle_core::DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let exact = divergence(&[]);
    // Every Rademacher sign pattern once: their mean of eps^T J eps is exactly tr J.
    let patterns: Vec<Tensor> = (0..1u32 << dim)
        .map(|bits| {
            let signs: Vec<f32> = (0..n * dim)
                .map(|i| {
                    if bits >> (i % dim) & 1 == 1 {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect();
            Tensor::from_vec(signs, (n, dim), &device).unwrap()
        })
        .collect();
    let all_signs = divergence(&patterns);
    for row in 0..n {
        // Central differences of the f64 closed-form score.
        let h = 1e-5 * (1.0 + sigmas[row]);
        let x_row = points.row(row);
        let fd: f64 = (0..dim)
            .map(|d| {
                let (mut up, mut down) = (x_row.to_vec(), x_row.to_vec());
                up[d] += h;
                down[d] -= h;
                (mixture.score(&up, sigmas[row])[d] - mixture.score(&down, sigmas[row])[d])
                    / (2.0 * h)
            })
            .sum();
        let tolerance = 1e-5 * (1.0 + fd.abs());
        assert!(
            (exact[row] - fd).abs() < tolerance,
            "row {row}: {} vs {fd}",
            exact[row]
        );
        assert!(
            (all_signs[row] - fd).abs() < tolerance,
            "row {row}: {} vs {fd}",
            all_signs[row]
        );
    }
}

#[test]
fn elbo_of_the_exact_score_bounds_the_nll_and_tightens_with_more_levels() {
    let eval = "[elbo, {kind: nll_true, of: held_out, per_dim: true, points: 500}]";
    let geometric = |levels: usize| {
        let schedule =
            format!("{{kind: geometric, num_levels: {levels}, sigma_max: 100, sigma_min: 0.01}}");
        trial_of(MIXTURE, &schedule, eval)
    };
    let coarse_trial = geometric(10);
    let truth = measure(&coarse_trial, 1, None).value;
    let coarse = measure(&coarse_trial, 0, None);
    let fine = measure(&geometric(100), 0, None);
    assert_eq!(detail(&coarse, "nfe"), 10.0);
    assert_eq!(detail(&fine, "nfe"), 100.0);

    // DDPM's linear chain at T = 100 and 1000, betas scaled by 1000 / T (improved DDPM).
    let ddpm = |t: usize| {
        let scale = 1000.0 / t as f64;
        let betas: Vec<f64> = (0..t)
            .map(|i| scale * (1e-4 + (0.02 - 1e-4) * i as f64 / (t - 1) as f64))
            .collect();
        DiscreteChain::from_betas(&betas)
    };
    let (ddpm_100, ddpm_1000) = (ddpm(100), ddpm(1000));
    let short = measure(&coarse_trial, 0, Some(&ddpm_100));
    let long = measure(&coarse_trial, 0, Some(&ddpm_1000));
    assert_eq!(detail(&long, "nfe"), 1000.0);

    let gaps = [coarse.value, fine.value, short.value, long.value].map(|v| v - truth);
    println!(
        "nll_true {truth:.5}; elbo geometric 10: {:.5} 100: {:.5}; ddpm 100: {:.5} 1000: {:.5}; gaps {gaps:.5?}",
        coarse.value, fine.value, short.value, long.value
    );
    for gap in gaps {
        assert!(gap > 0.0, "elbo below the true nll: gaps {gaps:?}");
    }
    assert!(gaps[1] < 0.5 * gaps[0], "geometric: {gaps:?}");
    assert!(gaps[3] < 0.5 * gaps[2], "ddpm: {gaps:?}");
}

#[test]
fn elbo_terms_of_a_one_level_chain_are_the_closed_form() {
    // One level sigma on N(mu, s^2) data: L_T = KL(N(x0, sigma^2) || N(0, prior_std^2)) and
    // L_0 with the exact denoiser D = mu + s^2/(s^2 + sigma^2)(x^ - mu) has the expectation
    // 1/2 ln(2 pi sigma^2) + E(x0 - D)^2 / (2 sigma^2) per coordinate, where
    // E(x0 - D)^2 = s^2 sigma^2 / (s^2 + sigma^2) is the posterior variance.
    let data = "{kind: gmm, means: [[0.5]], stds: [2.0], weights: [1.0]}";
    let schedule = "{kind: geometric, num_levels: 1, sigma_max: 10, sigma_min: 1.0}";
    let yaml =
        experiment(data, schedule, "[elbo]").replace("num_samples: 500", "num_samples: 20000");
    let trial = resolve(&yaml, &[]).unwrap().remove(0);
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let input = MetricInput {
        samples: &trial.held_out,
        reference: &trial.held_out,
        dataset: trial.dataset.as_ref(),
        seed: 1,
        model: &model,
        schedule: trial.schedule.as_ref(),
        device: &trial.device,
        features: None,
    };
    let terms = elbo_terms(&input, 20000).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // The prior is geometric's N(0, sigma_max^2) although the one level is sigma_min.
    let (s2, sigma2, mu, prior2): (f64, f64, f64, f64) = (4.0, 1.0, 0.5, 100.0);
    assert_eq!(trial.schedule.prior_std(), 10.0);
    let prior_expected =
        0.5 * ((prior2 / sigma2).ln() + sigma2 / prior2 - 1.0 + (s2 + mu * mu) / prior2);
    let decoder_expected =
        0.5 * (2.0 * std::f64::consts::PI * sigma2).ln() + s2 / (s2 + sigma2) / 2.0;
    assert_eq!(terms.nfe, 1);
    assert!(terms.diffusion.iter().all(|v| *v == 0.0));
    assert!(
        (mean(&terms.prior) - prior_expected).abs() < 0.05,
        "{}",
        mean(&terms.prior)
    );
    assert!(
        (mean(&terms.decoder) - decoder_expected).abs() < 0.02,
        "{}",
        mean(&terms.decoder)
    );
}

#[test]
fn elbo_on_a_continuous_schedule_is_rejected_naming_both_plugins_and_the_discrete_ones() {
    let message = resolve_error(&experiment(GAUSSIAN, WIDE, "[elbo]"), &["schedule=ve"]);
    println!("{message}");
    assert!(message.contains("`elbo`"), "{message}");
    assert!(message.contains("`ve` is continuous"), "{message}");
    let listed = message
        .split("discrete schedules: ")
        .nth(1)
        .and_then(|rest| rest.split(", or remove").next())
        .unwrap_or_else(|| panic!("{message}"));
    let names: Vec<&str> = listed.split(", ").collect();
    assert!(names.contains(&"geometric"), "{message}");
    for continuous in ["ve", "vp", "sub_vp", "edm"] {
        assert!(!names.contains(&continuous), "{message}");
    }
}
