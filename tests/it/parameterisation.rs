//! Parameterisations: EDM's coefficients and loss weight, and every parameterisation turning
//! the raw network output into the same denoiser and score.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use scorelab::network::{Network, ScoreModel};
use scorelab::parameterisation::{
    coefficients, edm_loss_weight, Model, ModelSettings, Parameterisation,
};

const SIGMA_DATA: f64 = 0.5;

/// (c_skip, c_out, c_in) as the papers write them (DESIGN.md's crib), independently of the
/// engine's `coefficients`.
fn paper_coefficients(kind: Parameterisation, sigma: f64) -> (f64, f64, f64) {
    let alpha = 1.0 / (1.0 + sigma * sigma).sqrt();
    match kind {
        // D = x + sigma^2 score, score = F / sigma.
        Parameterisation::Score => (1.0, sigma, 1.0),
        // D = x - sigma eps, the net seeing the VP input s x = alpha x.
        Parameterisation::Eps => (1.0, -sigma, alpha),
        Parameterisation::X0 => (0.0, 1.0, alpha),
        // x0 = alpha x_vp - sigma_vp v with x_vp = alpha x and sigma_vp = sigma alpha.
        Parameterisation::V => (alpha * alpha, -sigma * alpha, alpha),
        Parameterisation::Edm => {
            let total = sigma * sigma + SIGMA_DATA * SIGMA_DATA;
            (
                SIGMA_DATA * SIGMA_DATA / total,
                sigma * SIGMA_DATA / total.sqrt(),
                1.0 / total.sqrt(),
            )
        }
    }
}

/// The target denoiser D*(x, sigma) = 0.3 x + 1.
fn target(x: f64) -> f64 {
    0.3 * x + 1.0
}

/// A network whose raw output makes D = D* under `kind`: it recovers x = input / c_in and
/// returns F = (D*(x) - c_skip x) / c_out.
struct Inverting {
    kind: Parameterisation,
    variables: VarMap,
}

impl Network for Inverting {
    fn forward(
        &self,
        input: &Tensor,
        sigma: &Tensor,
        _labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let rows = input.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        let sigmas = sigma
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let mut out = Vec::new();
        for (row, s) in rows.iter().zip(&sigmas) {
            let (c_skip, c_out, c_in) = paper_coefficients(self.kind, *s);
            for value in row {
                let x = value / c_in;
                out.push(((target(x) - c_skip * x) / c_out) as f32);
            }
        }
        Tensor::from_vec(out, input.shape(), input.device())
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

#[test]
fn edm_coefficients_skip_at_zero_noise_and_have_unit_weighted_output() {
    let (c_skip, c_out, c_in) = coefficients(Parameterisation::Edm, 0.0, SIGMA_DATA);
    assert_eq!((c_skip, c_out), (1.0, 0.0), "D = x at sigma = 0");
    assert_eq!(c_in, 1.0 / SIGMA_DATA);
    for sigma in [0.002, 0.1, 0.5, 1.0, 7.0, 80.0] {
        let (c_skip, c_out, c_in) = coefficients(Parameterisation::Edm, sigma, SIGMA_DATA);
        let weighted = edm_loss_weight(sigma, SIGMA_DATA) * c_out * c_out;
        assert!(
            (weighted - 1.0).abs() < 1e-12,
            "lambda c_out^2 at {sigma}: {weighted}"
        );
        let (skip, out, input) = paper_coefficients(Parameterisation::Edm, sigma);
        assert!(
            (c_skip - skip).abs() < 1e-15
                && (c_out - out).abs() < 1e-12
                && (c_in - input).abs() < 1e-15
        );
        // The network input c_in (x0 + sigma n) has unit variance when x0 has sd sigma_data.
        let input_variance = c_in * c_in * (SIGMA_DATA * SIGMA_DATA + sigma * sigma);
        assert!((input_variance - 1.0).abs() < 1e-12);
    }
}

#[test]
fn every_parameterisation_gives_the_same_denoiser_and_score() {
    let device = Device::Cpu;
    let sigmas = [0.01f32, 0.1, 0.5, 1.0, 2.0, 10.0, 50.0, 80.0];
    let n = sigmas.len();
    let xs: Vec<f32> = (0..2 * n)
        .map(|i| ((i as f32) * 0.37).sin() * 3.0)
        .collect();
    let x = Tensor::from_vec(xs.clone(), (n, 2), &device).unwrap();
    let sigma = Tensor::from_vec(sigmas.to_vec(), (n, 1), &device).unwrap();
    let kinds = [
        Parameterisation::Score,
        Parameterisation::Eps,
        Parameterisation::X0,
        Parameterisation::V,
        Parameterisation::Edm,
    ];
    for kind in kinds {
        let network = Box::new(Inverting {
            kind,
            variables: VarMap::new(),
        });
        let settings = ModelSettings {
            parameterisation: kind,
            sigma_data: SIGMA_DATA,
        };
        let model = Model::Network { network, settings };
        let denoised = model.denoise(&x, &sigma).unwrap().to_vec2::<f32>().unwrap();
        let score = model.score(&x, &sigma).unwrap().to_vec2::<f32>().unwrap();
        for i in 0..n {
            let s = sigmas[i] as f64;
            for j in 0..2 {
                let xv = xs[2 * i + j] as f64;
                let d = target(xv);
                let got = denoised[i][j] as f64;
                assert!(
                    (got - d).abs() < 1e-4 * d.abs().max(1.0),
                    "{kind:?} D at sigma {s}: {got} vs {d}"
                );
                let expected = (d - xv) / (s * s);
                let got = score[i][j] as f64;
                assert!(
                    (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
                    "{kind:?} score at sigma {s}: {got} vs {expected}"
                );
            }
        }
    }
}

/// `auto` (the default) is the schedule's own parameterisation, recorded resolved; a choice
/// measured to train badly gets a warning with the plan, `auto` never does.
#[test]
fn auto_is_the_schedules_own_and_poor_choices_are_warned() {
    for (schedule, natural) in [("geometric", "score"), ("vp", "edm"), ("edm", "edm")] {
        let trials =
            crate::common::resolve(crate::common::SMALL_GMM, &[&format!("schedule={schedule}")])
                .unwrap();
        assert_eq!(trials[0].resolved["network"]["parameterisation"], natural);
        assert!(trials[0].warnings.is_empty(), "{:?}", trials[0].warnings);
    }
    let trials = crate::common::resolve(
        crate::common::SMALL_GMM,
        &["schedule=vp", "network.parameterisation=score"],
    )
    .unwrap();
    let plan = scorelab::trial::plan_summary(&trials);
    assert!(
        plan.contains("warning: `network.parameterisation: score` trains badly on schedule `vp`")
            && plan.contains("`auto` gives `edm`"),
        "{plan}"
    );
    let message =
        crate::common::resolve_error(crate::common::SMALL_GMM, &["network.parameterisation=atuo"]);
    assert!(
        message.contains("auto, score, eps, x0, v, edm"),
        "{message}"
    );
}
