//! `pc`'s predictors and correctors against an independent implementation of score_sde's
//! formulas (Song et al. 2021, its code's `discretize`, `ReverseDiffusionPredictor`,
//! `AncestralSamplingPredictor`, `EulerMaruyamaPredictor` and `AnnealedLangevinDynamics`),
//! written here from the papers' closed forms without the runner's code: on 1-D data
//! N(2, 0.25) with the exact score every step is linear in x plus Gaussian noise, so the
//! reference carries the output's mean and variance through the N = 100 levels exactly. The
//! runner's sampler runs on a million samples; both end with Tweedie's denoising step at the
//! last level (score_sde takes the mean of one more predictor step there instead).

use candle_core::{DType, Device, Tensor};
use scorelab::network::ScoreModel;
use scorelab::rng::Rng;
use scorelab::schedule::Grid;

use crate::common::{resolve, resolve_error};

const MU: f64 = 2.0;
const VARIANCE: f64 = 0.25;
const N: usize = 100;
const SAMPLES: usize = 1_000_000;
const BETA: (f64, f64) = (0.1, 20.0);
const VE_SIGMAS: (f64, f64) = (0.01, 50.0);

/// The exact score in sigma space of N(MU, VARIANCE) perturbed to level sigma.
struct Gaussian;

impl ScoreModel for Gaussian {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let total = (sigma.to_dtype(x.dtype())?.sqr()? + VARIANCE)?;
        (x - MU)?.neg()?.broadcast_div(&total)
    }
}

/// The three families of score_sde as it defines them: the marginal x_t = c x0 + sqrt(w) z,
/// the forward SDE's f(t) and g(t)^2, and the prior's std.
#[derive(Clone, Copy)]
enum Family {
    Ve,
    Vp,
    SubVp,
}

impl Family {
    fn beta(t: f64) -> f64 {
        BETA.0 + t * (BETA.1 - BETA.0)
    }

    fn beta_integral(t: f64) -> f64 {
        BETA.0 * t + 0.5 * (BETA.1 - BETA.0) * t * t
    }

    fn ve_sigma(t: f64) -> f64 {
        VE_SIGMAS.0 * (VE_SIGMAS.1 / VE_SIGMAS.0).powf(t)
    }

    /// (c, w): the signal's coefficient and the noise's variance at t.
    fn marginal(self, t: f64) -> (f64, f64) {
        let b = Self::beta_integral(t);
        match self {
            Family::Ve => (1.0, Self::ve_sigma(t).powi(2)),
            Family::Vp => ((-0.5 * b).exp(), -(-b).exp_m1()),
            Family::SubVp => ((-0.5 * b).exp(), (-b).exp_m1().powi(2)),
        }
    }

    /// (f, g^2) of dx = f x dt + g dw at t.
    fn sde(self, t: f64) -> (f64, f64) {
        let b = Self::beta(t);
        match self {
            Family::Ve => {
                let rate = 2.0 * (VE_SIGMAS.1 / VE_SIGMAS.0).ln();
                (0.0, Self::ve_sigma(t).powi(2) * rate)
            }
            Family::Vp => (-0.5 * b, b),
            Family::SubVp => (-0.5 * b, b * (1.0 - (-2.0 * Self::beta_integral(t)).exp())),
        }
    }

    fn prior_std(self) -> f64 {
        match self {
            Family::Ve => VE_SIGMAS.1,
            Family::Vp | Family::SubVp => 1.0,
        }
    }

    fn t_end(self) -> f64 {
        match self {
            Family::Ve => 1e-5,
            Family::Vp | Family::SubVp => 1e-3,
        }
    }

    fn schedule(self) -> &'static str {
        match self {
            Family::Ve => "ve",
            Family::Vp => "vp",
            Family::SubVp => "sub_vp",
        }
    }
}

/// The score in x at t as score = -x / V + b (linear in x).
fn score_coefficients(family: Family, t: f64) -> (f64, f64) {
    let (c, w) = family.marginal(t);
    let total = c * c * VARIANCE + w;
    (-1.0 / total, c * MU / total)
}

/// x' = a x + b + sqrt(v) z applied to the moments (mean, variance) of x.
fn affine(moments: (f64, f64), a: f64, b: f64, v: f64) -> (f64, f64) {
    (a * moments.0 + b, a * a * moments.1 + v)
}

#[derive(Clone, Copy)]
enum Step {
    ReverseDiffusion,
    Ancestral,
    EulerMaruyama,
}

/// One score_sde predictor step from t to t_next on the moments of x.
fn predictor(family: Family, step: Step, t: f64, t_next: f64, x: (f64, f64)) -> (f64, f64) {
    let dt = t - t_next;
    let (k, b) = score_coefficients(family, t);
    // score_sde's discretize(): f and G of the forward step (x_mean = x - f for reverse).
    let (f_coefficient, g2) = match family {
        Family::Ve => (
            0.0,
            Family::ve_sigma(t).powi(2) - Family::ve_sigma(t_next).powi(2),
        ),
        Family::Vp => {
            let beta = Family::beta(t) * dt;
            ((1.0 - beta).sqrt() - 1.0, beta)
        }
        Family::SubVp => {
            let (f, g2) = family.sde(t);
            (f * dt, g2 * dt)
        }
    };
    match (step, family) {
        // x - f + G^2 score + G z
        (Step::ReverseDiffusion, _) => affine(x, 1.0 - f_coefficient + g2 * k, g2 * b, g2),
        (Step::Ancestral, Family::Ve) => {
            let (s, s_next) = (Family::ve_sigma(t), Family::ve_sigma(t_next));
            affine(x, 1.0 + g2 * k, g2 * b, s_next * s_next * g2 / (s * s))
        }
        (Step::Ancestral, Family::Vp) => {
            let root = (1.0 - g2).sqrt();
            affine(x, (1.0 + g2 * k) / root, g2 * b / root, g2)
        }
        (Step::Ancestral, Family::SubVp) => unreachable!("score_sde has no sub-VP ancestral step"),
        // x - (f x - g^2 score) dt + g sqrt(dt) z
        (Step::EulerMaruyama, _) => {
            let (f, g2) = family.sde(t);
            affine(x, 1.0 - f * dt + g2 * dt * k, g2 * dt * b, g2 * dt)
        }
    }
}

/// score_sde's annealed Langevin corrector at t: eps = 2 alpha (r std)^2 with std the
/// marginal std in x, x + eps score + sqrt(2 eps) z.
fn ald(family: Family, t: f64, alpha: f64, snr: f64, x: (f64, f64)) -> (f64, f64) {
    let (k, b) = score_coefficients(family, t);
    let std = family.marginal(t).1.sqrt();
    let eps = 2.0 * alpha * (snr * std).powi(2);
    affine(x, 1.0 + eps * k, eps * b, 2.0 * eps)
}

/// The reference: N levels uniform in t from 1 to t_end, the corrector (if any) then the
/// predictor at each, Tweedie's denoising at the last. Returns (mean, variance) of x0.
fn reference(family: Family, step: Step, ald_snr: Option<f64>) -> (f64, f64) {
    let t_end = family.t_end();
    let times: Vec<f64> = (0..N)
        .map(|i| 1.0 + (t_end - 1.0) * i as f64 / (N - 1) as f64)
        .collect();
    let mut x = (0.0, family.prior_std().powi(2));
    for (i, &t) in times.iter().enumerate() {
        if let Some(snr) = ald_snr {
            // score_sde's alpha: 1 - beta_i for VP (the step to the next level, or to t = 0
            // from the last), 1 for VE.
            let alpha = match family {
                Family::Ve => 1.0,
                _ => 1.0 - Family::beta(t) * (t - times.get(i + 1).copied().unwrap_or(0.0)),
            };
            x = ald(family, t, alpha, snr, x);
        }
        match times.get(i + 1) {
            Some(&t_next) => x = predictor(family, step, t, t_next, x),
            None => {
                // Tweedie: x0 = (x + w score) / c.
                let (c, w) = family.marginal(t);
                let (k, b) = score_coefficients(family, t);
                x = affine(x, (1.0 + w * k) / c, w * b / c, 0.0);
            }
        }
    }
    x
}

/// The runner's `pc` with `sampler` on the family's schedule: (mean, variance) of its
/// samples, started from the prior.
fn runner(family: Family, sampler: &str) -> (f64, f64) {
    let text = format!(
        "data: {{kind: gmm, means: [[{MU}]], stds: [{}], weights: [1.0]}}\nschedule: {}\nweighting: sigma_squared\nnetwork: oracle\nsampler: {sampler}\n",
        VARIANCE.sqrt(),
        family.schedule()
    );
    let trials = resolve(&text, &[]).unwrap();
    let trial = &trials[0];
    let schedule = trial.schedule.as_ref();
    let grid = Grid::new(schedule, trial.sampler.grid());
    let mut rng = Rng::from_seed(7);
    let start: Vec<f32> = rng.normal_f32(SAMPLES);
    let x = (Tensor::from_vec(start, (SAMPLES, 1), &Device::Cpu).unwrap() * schedule.prior_std())
        .unwrap();
    let out = trial
        .sampler
        .sample(&Gaussian, x, &grid, &mut rng, &mut |_| {})
        .unwrap();
    let values = out.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let values = values.to_vec1::<f64>().unwrap();
    let mean = values.iter().sum::<f64>() / SAMPLES as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / SAMPLES as f64;
    (mean, variance)
}

/// The runner's output matches the reference to within five standard errors of a million
/// samples in the mean (5 sqrt(v / n) = 0.0025) and in the variance (5 v sqrt(2 / n), 0.7 %).
fn check(family: Family, step: Step, ald_snr: Option<f64>, sampler: &str) {
    let (mean, variance) = runner(family, sampler);
    let (want_mean, want_variance) = reference(family, step, ald_snr);
    let n = SAMPLES as f64;
    eprintln!(
        "{sampler} on {}: runner mean {mean:.4} var {:+.2}% | score_sde mean {want_mean:.4} var {:+.2}%",
        family.schedule(),
        100.0 * (variance / VARIANCE - 1.0),
        100.0 * (want_variance / VARIANCE - 1.0)
    );
    assert!(
        (mean - want_mean).abs() < 5.0 * (want_variance / n).sqrt(),
        "{sampler} on {}: mean {mean} against score_sde's {want_mean}",
        family.schedule()
    );
    assert!(
        (variance - want_variance).abs() < 5.0 * want_variance * (2.0 / n).sqrt(),
        "{sampler} on {}: variance {variance} against score_sde's {want_variance}",
        family.schedule()
    );
}

const REVERSE: &str = "{kind: pc, steps: 100, predictor: reverse_diffusion, corrector: none}";
const ANCESTRAL: &str = "{kind: pc, steps: 100, predictor: ancestral, corrector: none}";

#[test]
fn reverse_diffusion_is_score_sdes_on_every_family() {
    for family in [Family::Ve, Family::Vp, Family::SubVp] {
        check(family, Step::ReverseDiffusion, None, REVERSE);
    }
}

#[test]
fn ancestral_is_score_sdes_on_ve_and_vp() {
    for family in [Family::Ve, Family::Vp] {
        check(family, Step::Ancestral, None, ANCESTRAL);
    }
}

#[test]
fn euler_maruyama_and_annealed_langevin_are_score_sdes() {
    let em = "{kind: pc, steps: 100, predictor: euler_maruyama, corrector: none}";
    check(Family::Vp, Step::EulerMaruyama, None, em);
    let ald =
        "{kind: pc, steps: 100, predictor: reverse_diffusion, corrector: {kind: ald, snr: 0.16}}";
    check(Family::Ve, Step::ReverseDiffusion, Some(0.16), ald);
    check(Family::Vp, Step::ReverseDiffusion, Some(0.16), ald);
}

#[test]
fn the_ancestral_predictor_refuses_sub_vp_at_resolution() {
    let text = format!(
        "data: gmm\nschedule: sub_vp\nweighting: sigma_squared\nnetwork: oracle\nsampler: {ANCESTRAL}\n"
    );
    let message = resolve_error(&text, &[]);
    assert!(message.contains("sampler.predictor.kind"), "{message}");
    assert!(message.contains("reverse_diffusion"), "{message}");
}

#[test]
fn pc_records_its_predictor_and_corrector_resolved() {
    let text = "data: gmm\nschedule: vp\nweighting: sigma_squared\nnetwork: oracle\nsampler: {kind: pc, steps: 10}\n";
    let trials = resolve(text, &["sampler.corrector.snr=0.05"]).unwrap();
    let sampler = &trials[0].resolved["sampler"];
    assert_eq!(
        sampler["predictor"],
        serde_json::json!({"kind": "reverse_diffusion"})
    );
    assert_eq!(
        sampler["corrector"],
        serde_json::json!({"kind": "langevin", "snr": 0.05, "steps": 1})
    );
    assert_eq!(
        trials[0].sampler.step_size(),
        Some(("corrector.snr".into(), 0.05))
    );
}

/// `pc`'s errors name the part at fault by its key path, with the fix.
#[test]
fn pc_errors_name_the_predictor_or_corrector_key() {
    for [sampler, key, words] in [
        [
            "{kind: pc, predictor: reverse_difusion}",
            "predictor.kind",
            "reverse_diffusion",
        ],
        [
            "{kind: pc, corrector: langvin}",
            "corrector.kind",
            "langevin",
        ],
        [
            "{kind: pc, predictor: none, corrector: none}",
            "predictor",
            "nothing moves",
        ],
        [
            "{kind: pc, corrector: {kind: langevin, snr: 0}}",
            "corrector.snr",
            "must be in (0, 1]",
        ],
        [
            "{kind: pc, corrector_steps: 3}",
            "corrector_steps",
            "corrector's table",
        ],
        [
            "{kind: pc, predictor: {kind: ancestral, eta: 1}}",
            "predictor.eta",
            "unknown key",
        ],
    ] {
        let text = format!(
            "data: gmm\nschedule: ve\nweighting: sigma_squared\nnetwork: oracle\nsampler: {sampler}\n"
        );
        let message = resolve_error(&text, &[]);
        let named = message.contains(&format!("`sampler.{key}`"));
        assert!(named && message.contains(words), "{sampler}: {message}");
    }
}
