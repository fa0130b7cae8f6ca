//! Importance sampling of the training levels (`train.time_sampling: importance`): the VP
//! likelihood weighting's inverse CDF against score_flow's closed form and a numerical CDF,
//! the estimate's mean on every schedule against quadrature of the uniform one, the training
//! loss on a fixed network (same mean, far smaller variance), and the setting's place in the
//! trial id.

use scorelab::rng::Rng;
use scorelab::schedule::{Schedule, TrainingLaw};
use scorelab::train::{weighted_losses, LevelSampler, TimeSampling};
use scorelab::trial::Trial;
use scorelab::weighting::Weighting;

use crate::common::{resolve, resolve_error, SMALL_GMM};
use crate::sde_schedules::{beta, big_b};

fn trial(overrides: &[&str]) -> Trial {
    resolve(SMALL_GMM, overrides).unwrap().remove(0)
}

/// score_flow's `VPSDE.likelihood_importance_cum_weight` (sde_lib.py), transcribed:
///   exponent1 = 0.5 * eps * (eps - 2) * beta_0 - 0.5 * eps ** 2 * beta_1
///   exponent2 = 0.5 * t * (t - 2) * beta_0 - 0.5 * t ** 2 * beta_1
///   term1 = 1 - exp(exponent1); term2 = 1 - exp(exponent2)
///   0.5 * (-2 log(term1) + 2 log(term2) + beta_0 (-2 eps + eps^2 - (t - 2) t)
///          + beta_1 (-eps^2 + t^2))
fn score_flow_cum_weight(t: f64, eps: f64) -> f64 {
    let (b0, b1) = (0.1, 20.0);
    let exponent1 = 0.5 * eps * (eps - 2.0) * b0 - 0.5 * eps * eps * b1;
    let exponent2 = 0.5 * t * (t - 2.0) * b0 - 0.5 * t * t * b1;
    let (term1, term2) = (-exponent1.exp_m1(), -exponent2.exp_m1());
    0.5 * (-2.0 * term1.ln()
        + 2.0 * term2.ln()
        + b0 * (-2.0 * eps + eps * eps - (t - 2.0) * t)
        + b1 * (-eps * eps + t * t))
}

/// The integral of f over [low, high] by the trapezoid rule on `n` points even in ln t.
fn log_trapezoid(f: &dyn Fn(f64) -> f64, low: f64, high: f64, n: usize) -> f64 {
    let ratio = (high / low).ln();
    let at = |i: usize| {
        let t = low * (ratio * i as f64 / (n - 1) as f64).exp();
        f(t) * t * ratio / (n - 1) as f64
    };
    (0..n)
        .map(|i| at(i) * if i == 0 || i == n - 1 { 0.5 } else { 1.0 })
        .sum()
}

#[test]
fn vp_likelihood_inverse_cdf_matches_score_flow_and_a_numerical_cdf() {
    let t = trial(&["schedule=vp", "weighting=likelihood"]);
    let (vp, likelihood) = (t.schedule.as_ref(), t.weighting.as_ref());
    let closed = LevelSampler::new(TimeSampling::Importance, vp, likelihood).unwrap();
    let table = LevelSampler::tabulated(vp, likelihood).unwrap();
    let eps = 1e-5;
    // The density score_flow samples: g^2 / sigma_x^2 = beta / (1 - e^{-B}), p(t) up to Z.
    let density = |t: f64| beta(t) / -(-big_b(t)).exp_m1();
    let z = score_flow_cum_weight(1.0, eps);
    assert!((log_trapezoid(&density, eps, 1.0, 200_001) - z).abs() < 1e-6 * z);
    for u in [0.0, 1e-3, 0.05, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0] {
        let sigma = closed.quantile(u).unwrap();
        let time = vp.t_of_sigma(sigma);
        let cdf = score_flow_cum_weight(time, eps) / z;
        assert!(
            (cdf - u).abs() < 1e-9,
            "u {u}: score_flow's CDF {cdf} at t {time}"
        );
        let numerical = log_trapezoid(&density, eps, time.max(eps), 20_001) / z;
        assert!(
            (numerical - u).abs() < 1e-6,
            "u {u}: numerical CDF {numerical}"
        );
        // The table (2048 cells) inverts the same CDF numerically.
        let tabulated = table.quantile(u).unwrap();
        assert!(
            (tabulated.ln() - sigma.ln()).abs() < 1e-4,
            "u {u}: table {tabulated} against {sigma}"
        );
    }
    // ln sigma is uniform: the median level is the geometric mean of the ends.
    let (low, high) = (vp.sigma(eps), vp.sigma(1.0));
    let median = closed.quantile(0.5).unwrap();
    assert!((median / (low * high).sqrt() - 1.0).abs() < 1e-12);
}

/// The mean of w(sigma) l(sigma) over the schedule's training law, by quadrature.
fn exact_mean(law: &TrainingLaw, schedule: &dyn Schedule, f: &dyn Fn(f64) -> f64) -> f64 {
    match law {
        TrainingLaw::Levels(levels) => {
            levels.iter().map(|(s, _)| f(*s)).sum::<f64>() / levels.len() as f64
        }
        TrainingLaw::UniformTime { low, high, .. } => {
            log_trapezoid(&|t| f(schedule.sigma(t)), *low, *high, 400_001) / (high - low)
        }
        TrainingLaw::LogNormal { mean, std, .. } => {
            let n = 400_001;
            let (a, b) = (mean - 12.0 * std, mean + 12.0 * std);
            let h = (b - a) / (n - 1) as f64;
            (0..n)
                .map(|i| {
                    let v = a + h * i as f64;
                    let x = (v - mean) / std;
                    let p = (-0.5 * x * x).exp() / (std * (2.0 * std::f64::consts::PI).sqrt());
                    p * f(v.exp()) * h * if i == 0 || i == n - 1 { 0.5 } else { 1.0 }
                })
                .sum()
        }
    }
}

/// Mean, variance and standard error of `n` draws of factor * l(sigma).
fn estimate(sampler: &LevelSampler, l: &dyn Fn(f64) -> f64, n: usize, seed: u64) -> [f64; 3] {
    let mut rng = Rng::from_seed(seed);
    let values: Vec<f64> = sampler
        .draw(n, &mut rng)
        .iter()
        .map(|d| d.factor * l(d.sigma))
        .collect();
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    [mean, var, (var / n as f64).sqrt()]
}

/// On every schedule and for weightings large at small, moderate and large levels, the
/// importance estimate of E[w l] (l a smooth per-level loss) and the uniform one (the
/// schedule's own `training_sigmas`, so its law is checked too) both agree with quadrature.
#[test]
fn importance_keeps_the_expected_loss_on_every_schedule() {
    let schedules = ["geometric", "ve", "vp", "sub_vp", "ddpm", "cosine", "edm"];
    let l = |sigma: f64| 1.0 / (1.0 + sigma * sigma) + 0.1;
    for schedule in schedules {
        for weighting in ["likelihood", "min_snr", "uniform", "edm"] {
            let t = trial(&[
                &format!("schedule={schedule}"),
                &format!("weighting={weighting}"),
            ]);
            let (s, w): (&dyn Schedule, &dyn Weighting) =
                (t.schedule.as_ref(), t.weighting.as_ref());
            let sampler = LevelSampler::new(TimeSampling::Importance, s, w).unwrap();
            let uniform = LevelSampler::new(TimeSampling::Uniform, s, w).unwrap();
            let exact = exact_mean(&s.training_law().unwrap(), s, &|sigma| {
                uniform.weight(sigma) * l(sigma)
            });
            let [mean, var, se] = estimate(&sampler, &l, 100_000, 1);
            let [u_mean, u_var, u_se] = estimate(&uniform, &l, 100_000, 2);
            let case = format!("{schedule} × {weighting}: exact {exact:.6e}, importance {mean:.6e} (var {var:.3e}), uniform {u_mean:.6e} (var {u_var:.3e})");
            assert!(
                (mean - exact).abs() < 4.0 * se + 1e-9 * exact.abs(),
                "{case}"
            );
            assert!(
                (u_mean - exact).abs() < 4.0 * u_se + 1e-9 * exact.abs(),
                "{case}"
            );
        }
    }
}

/// weighting.yaml's setting: `vp`, the likelihood weighting, an eps-predicting `mlp`.
const LIKELIHOOD_VP: &str = r#"
seed: 0
num_samples: 400
data: {kind: gmm, means: [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], stds: [0.1, 0.1, 0.1], weights: [0.5, 0.3, 0.2]}
schedule: vp
weighting: likelihood
network: {kind: mlp, hidden: 64, layers: 2, parameterisation: eps}
train: {steps: 60, batch_size: 4096, train_size: 2000, log_every: 10}
sampler: {kind: heun, steps: 10}
eval: [fd]
"#;

/// Mean, variance and count of the per-example training losses over `batches` batches.
fn loss_moments(trial: &Trial, network: &str, sampling: TimeSampling, batches: usize) -> [f64; 3] {
    let model = trial.new_model(&mut Rng::from_seed(7)).unwrap();
    let job = trial.train_job(trial.training_data.clone());
    let (schedule, weighting) = (trial.schedule.as_ref(), trial.weighting.as_ref());
    let sampler = LevelSampler::new(sampling, schedule, weighting).unwrap();
    let mut rng = Rng::from_seed(11);
    let mut values = Vec::new();
    for _ in 0..batches {
        let batch = weighted_losses(&model, &job, &sampler, &mut rng).unwrap();
        let losses: Vec<f32> = batch.weighted.to_vec1().unwrap();
        values.extend(losses.iter().map(|v| *v as f64));
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    eprintln!("{network} {sampling:?}: mean {mean:.4}, variance {var:.4e} over {n} draws");
    [mean, var, n]
}

/// The training loss on a fixed network (an untrained eps-predicting MLP, and the exact
/// score, whose normalised loss falls from 1 at small levels to 0 at large ones): drawing
/// levels by importance keeps its mean within Monte Carlo error and cuts its variance by
/// orders of magnitude (the uniform draws' weight is about 1/t near t = 0).
#[test]
fn importance_keeps_the_training_loss_mean_and_cuts_its_variance() {
    for network in ["mlp", "oracle"] {
        let trial = resolve(LIKELIHOOD_VP, &[&format!("network={network}")])
            .unwrap()
            .remove(0);
        let [mean, var, n] = loss_moments(&trial, network, TimeSampling::Uniform, 50);
        let [i_mean, i_var, i_n] = loss_moments(&trial, network, TimeSampling::Importance, 50);
        let error = (var / n + i_var / i_n).sqrt();
        assert!(
            (mean - i_mean).abs() < 4.0 * error,
            "{network}: uniform {mean} against importance {i_mean} (standard error {error})"
        );
        assert!(
            i_var * 100.0 < var,
            "{network}: variance {i_var} by importance against {var} uniform"
        );
    }
}

#[test]
fn time_sampling_is_recorded_only_when_it_is_importance() {
    let plain = trial(&["schedule=vp", "weighting=likelihood"]);
    let uniform = trial(&[
        "schedule=vp",
        "weighting=likelihood",
        "train.time_sampling=uniform",
    ]);
    let importance = trial(&[
        "schedule=vp",
        "weighting=likelihood",
        "train.time_sampling=importance",
    ]);
    assert_eq!(plain.id, uniform.id, "the default leaves the id as it was");
    assert_eq!(plain.train_id, uniform.train_id);
    assert!(plain.resolved["train"].get("time_sampling").is_none());
    assert_ne!(plain.train_id, importance.train_id, "it decides the model");
    assert_eq!(importance.resolved["train"]["time_sampling"], "importance");
    assert_eq!(importance.train.time_sampling, TimeSampling::Importance);

    let error = resolve_error(SMALL_GMM, &["train.time_sampling=importnce"]);
    assert!(
        error.contains("train.time_sampling")
            && error.contains("unknown choice `importnce`")
            && error.contains("use one of: uniform, importance"),
        "{error}"
    );
}

/// Training with importance sampling runs, is reproducible and lowers the loss.
#[test]
fn training_by_importance_is_reproducible() {
    let trial = resolve(
        LIKELIHOOD_VP,
        &["train.time_sampling=importance", "train.batch_size=128"],
    )
    .unwrap()
    .remove(0);
    let run = || {
        let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
        let job = trial.train_job(trial.training_data.clone());
        scorelab::train::train(&model, &job, &mut |_| {}).unwrap()
    };
    let (first, second) = (run(), run());
    assert_eq!(first.loss, second.loss);
    assert!(first.loss.iter().all(|l| l.is_finite()));
    assert!(
        first.loss.last().unwrap() < &first.loss[0],
        "{:?}",
        first.loss
    );
}
