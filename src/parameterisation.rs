//! Parameterisations: how a raw network F becomes a denoiser D(x^; sigma) in sigma space,
//! as D = c_skip x^ + c_out F(c_in x^, sigma) (Karras et al. 2022, Table 1). A network
//! setting (`network.parameterisation`), so samplers see one denoiser and score whatever
//! the network predicts.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::eval_batch;
use crate::network::{Instance, Network, ScoreModel};
use crate::params;
use crate::schedule::Schedule;

/// What the raw network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameterisation {
    /// The score, with the output divided by sigma (NCSNv2, technique 3): F predicts -z, a
    /// target of unit scale; the input is not rescaled.
    Score,
    /// The noise: D = x^ - sigma F(c_in x^), c_in = 1 / sqrt(1 + sigma^2), so the network
    /// sees the variance-preserving input s x^ (DDPM).
    Eps,
    /// The clean data: D = F(c_in x^).
    X0,
    /// Salimans & Ho 2022's v = alpha eps - sigma_vp x0 with alpha = 1 / sqrt(1 + sigma^2),
    /// sigma_vp = sigma alpha: D = alpha^2 x^ - sigma_vp F(alpha x^).
    V,
    /// Karras et al. 2022: c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
    /// c_in = 1 / sqrt(sigma^2 + sd^2), with sd = `sigma_data`.
    Edm,
}

/// `network.parameterisation` as written: `auto` (the default) or one of the kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The schedule's own ([`crate::schedule::Schedule::natural_parameterisation`]).
    Auto,
    Fixed(Parameterisation),
}

impl Serialize for Choice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Choice::Auto => serializer.serialize_str("auto"),
            Choice::Fixed(kind) => kind.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        if word == "auto" {
            return Ok(Choice::Auto);
        }
        Parameterisation::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&word))
            .map(Choice::Fixed)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "unknown parameterisation `{word}`, expected one of auto, score, eps, x0, v, edm"
                ))
            })
    }
}

impl Parameterisation {
    /// The kind named `word` (`score`, `eps`, `x0`, `v`, `edm`).
    pub fn named(word: &str) -> Option<Parameterisation> {
        Parameterisation::deserialize(
            serde::de::value::StrDeserializer::<serde::de::value::Error>::new(word),
        )
        .ok()
    }
}

params! {
    /// The keys of the `network` slot that every trainable network takes, as written (the
    /// rest of the slot goes to the network plugin).
    pub struct ModelKeys {
        /// What the raw network predicts: auto (the schedule's own: score for NCSN's geometric levels and ve, eps for the VP family, edm for edm; the table in the README's "What experiments/parameterisation.yaml shows"), score, eps, x0, v or edm (Karras et al. 2022 preconditioning).
        parameterisation: Choice = Choice::Auto,
        /// Standard deviation of the data assumed by the `edm` parameterisation (EDM's 0.5 is for images in [-1, 1]).
        sigma_data: f64 = 0.5,
    }
}

/// The network keys resolved (`auto` replaced by the schedule's choice): what a trial
/// records and its model uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSettings {
    pub parameterisation: Parameterisation,
    pub sigma_data: f64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            parameterisation: Parameterisation::Score,
            sigma_data: 0.5,
        }
    }
}

impl ModelKeys {
    /// `auto` resolved to the schedule's own parameterisation.
    pub fn resolve(&self, schedule: &dyn Schedule) -> ModelSettings {
        let parameterisation = match self.parameterisation {
            Choice::Fixed(kind) => kind,
            Choice::Auto => Parameterisation::named(schedule.natural_parameterisation())
                .unwrap_or(Parameterisation::Score),
        };
        ModelSettings {
            parameterisation,
            sigma_data: self.sigma_data,
        }
    }
}

/// The warning for a parameterisation measured to train badly on the schedule (chosen by
/// hand: `auto` never picks one), naming what `auto` gives there.
pub fn measured_failure(
    settings: &ModelSettings,
    schedule: &dyn Schedule,
    schedule_name: &str,
) -> Option<String> {
    let chosen = serde_json::to_value(settings.parameterisation).ok()?;
    let chosen = chosen.as_str()?;
    let (_, measured) = schedule
        .poor_parameterisations()
        .iter()
        .find(|(poor, _)| *poor == chosen)?;
    Some(format!(
        "`network.parameterisation: {chosen}` trains badly on schedule `{schedule_name}` \
         (experiments/parameterisation.yaml, an mlp with sigma_squared: {measured}); \
         `auto` gives `{}`",
        schedule.natural_parameterisation()
    ))
}

/// The preconditioning coefficients (c_skip, c_out, c_in) at one noise level, as numbers;
/// the score parameterisation has none (its output is scaled by 1/sigma, not a skip).
pub fn coefficients(kind: Parameterisation, sigma: f64, sigma_data: f64) -> (f64, f64, f64) {
    let vp_in = 1.0 / (1.0 + sigma * sigma).sqrt();
    match kind {
        Parameterisation::Score => (1.0, sigma, 1.0),
        Parameterisation::Eps => (1.0, -sigma, vp_in),
        Parameterisation::X0 => (0.0, 1.0, vp_in),
        Parameterisation::V => (vp_in * vp_in, -sigma * vp_in, vp_in),
        Parameterisation::Edm => {
            let total = sigma * sigma + sigma_data * sigma_data;
            (
                sigma_data * sigma_data / total,
                sigma * sigma_data / total.sqrt(),
                1.0 / total.sqrt(),
            )
        }
    }
}

/// EDM's loss weight lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 on ||D - x0||^2, which
/// makes the effective training target of F unit-variance: lambda c_out^2 = 1.
pub fn edm_loss_weight(sigma: f64, sigma_data: f64) -> f64 {
    (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data).powi(2)
}

/// A trained network under its parameterisation, or an exact score model: what training,
/// samplers and likelihoods use.
pub enum Model {
    Network {
        network: Box<dyn Network>,
        settings: ModelSettings,
    },
    Exact(Box<dyn ScoreModel + Send>),
}

impl Model {
    pub fn new(instance: Instance, settings: ModelSettings) -> Self {
        match instance {
            Instance::Trainable(network) => Model::Network { network, settings },
            Instance::Exact(model) => Model::Exact(model),
        }
    }

    /// The network to train, if there is one.
    pub fn network(&self) -> Option<&dyn Network> {
        match self {
            Model::Network { network, .. } => Some(network.as_ref()),
            Model::Exact(_) => None,
        }
    }

    /// Per example, (D - x0) / sigma for noisy = x0 + sigma z: half its squared norm is the
    /// loss normalised across levels, ||sigma s + z||^2 / 2, which a model that outputs
    /// D = noisy scores at dim / 2. The score parameterisation computes sigma s + z directly.
    pub fn training_residual(
        &self,
        x0: &Tensor,
        noisy: &Tensor,
        z: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Model::Network { settings, .. }
                if settings.parameterisation != Parameterisation::Score =>
            {
                self.denoise_given(noisy, sigma, labels)?
                    .sub(x0)?
                    .broadcast_div(sigma)
            }
            _ => self
                .score_given(noisy, sigma, labels)?
                .broadcast_mul(sigma)?
                .add(z),
        }
    }
}

/// c_in, c_skip and c_out as columns shaped like `sigma`, computed on its device (no copy
/// to the CPU per evaluation) in f64 with the operations of [`coefficients`] in its order, so
/// on the CPU they are the same numbers bit for bit.
fn coefficient_columns(
    kind: Parameterisation,
    sigma: &Tensor,
    sigma_data: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let s = sigma.to_dtype(candle_core::DType::F64)?;
    let ones = s.ones_like()?;
    let vp_in = || ones.div(&(s.sqr()? + 1.0)?.sqrt()?);
    let (skip, out, input) = match kind {
        Parameterisation::Score => (ones.clone(), s.clone(), ones.clone()),
        Parameterisation::Eps => (ones.clone(), s.neg()?, vp_in()?),
        Parameterisation::X0 => (s.zeros_like()?, ones.clone(), vp_in()?),
        Parameterisation::V => {
            let vp_in = vp_in()?;
            (vp_in.sqr()?, s.neg()?.mul(&vp_in)?, vp_in)
        }
        Parameterisation::Edm => {
            let data_squared = sigma_data * sigma_data;
            let total = (s.sqr()? + data_squared)?;
            let root = total.sqrt()?;
            (
                (&ones * data_squared)?.div(&total)?,
                (&s * sigma_data)?.div(&root)?,
                ones.div(&root)?,
            )
        }
    };
    let column = |t: Tensor| t.to_dtype(sigma.dtype());
    Ok((column(input)?, column(skip)?, column(out)?))
}

impl Model {
    /// The score for per-row class `labels` (`None`: unconditional, the null label).
    pub fn score_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Model::Exact(model) => model.score(x, sigma),
            Model::Network { network, settings } => match settings.parameterisation {
                Parameterisation::Score => network.forward(x, sigma, labels)?.broadcast_div(sigma),
                Parameterisation::Eps => {
                    let (c_in, _, _) = coefficient_columns(Parameterisation::Eps, sigma, 1.0)?;
                    // (D - x) / sigma^2 = -eps / sigma, without the cancellation.
                    network
                        .forward(&x.broadcast_mul(&c_in)?, sigma, labels)?
                        .neg()?
                        .broadcast_div(sigma)
                }
                _ => self
                    .denoise_given(x, sigma, labels)?
                    .sub(x)?
                    .broadcast_div(&sigma.sqr()?),
            },
        }
    }

    /// The denoiser for per-row class `labels` (`None`: unconditional).
    pub fn denoise_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Model::Exact(model) => model.denoise(x, sigma),
            Model::Network { network, settings } => match settings.parameterisation {
                Parameterisation::Score => x.add(
                    &self
                        .score_given(x, sigma, labels)?
                        .broadcast_mul(&sigma.sqr()?)?,
                ),
                kind => {
                    let (c_in, c_skip, c_out) =
                        coefficient_columns(kind, sigma, settings.sigma_data)?;
                    let raw = network.forward(&x.broadcast_mul(&c_in)?, sigma, labels)?;
                    x.broadcast_mul(&c_skip)?.add(&raw.broadcast_mul(&c_out)?)
                }
            },
        }
    }
}

/// What metrics query (scores, denoisers, divergences of held-out points or samples), in
/// chunks of [`crate::eval_batch`] rows.
impl ScoreModel for Model {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        eval_batch::by_rows(n, |first, count| {
            let sigma = eval_batch::narrow(sigma, n, first, count)?;
            let score = self.score_given(&x.narrow(0, first, count)?, &sigma, None)?;
            Ok(eval_batch::release(score, x))
        })
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        eval_batch::by_rows(n, |first, count| {
            let sigma = eval_batch::narrow(sigma, n, first, count)?;
            let denoised = self.denoise_given(&x.narrow(0, first, count)?, &sigma, None)?;
            Ok(eval_batch::release(denoised, x))
        })
    }

    /// Rows are independent, so each chunk's divergence is its rows' own.
    fn score_divergence(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let whole = |x: &Tensor, sigma: &Tensor, probes: &[Tensor]| match self {
            // The exact model may know its divergence in closed form.
            Model::Exact(model) => model.score_divergence(x, sigma, probes),
            Model::Network { .. } => default_divergence(self, x, sigma, probes),
        };
        let n = x.dim(0)?;
        if n <= eval_batch::rows() {
            return whole(x, sigma, probes);
        }
        let (mut scores, mut divergences) = (Vec::new(), Vec::new());
        for (first, count) in eval_batch::spans(n) {
            let rows = |t: &Tensor| eval_batch::narrow(t, n, first, count);
            let probes = probes
                .iter()
                .map(rows)
                .collect::<candle_core::Result<Vec<_>>>()?;
            let (score, divergence) = whole(&rows(x)?, &rows(sigma)?, &probes)?;
            scores.push(score);
            divergences.push(divergence);
        }
        Ok((Tensor::cat(&scores, 0)?, Tensor::cat(&divergences, 0)?))
    }
}

/// The trait's autograd divergence, callable from an override.
fn default_divergence(
    model: &Model,
    x: &Tensor,
    sigma: &Tensor,
    probes: &[Tensor],
) -> candle_core::Result<(Tensor, Tensor)> {
    struct Plain<'a>(&'a Model);
    impl ScoreModel for Plain<'_> {
        fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
            self.0.score(x, sigma)
        }
    }
    Plain(model).score_divergence(x, sigma, probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The columns computed on the device are the scalar coefficients rounded to f32, bit
    /// for bit (so moving them off the CPU changed no number).
    #[test]
    fn coefficient_columns_are_the_scalar_coefficients() {
        let sigmas = [0.002f32, 0.1, 0.5, 1.0, 3.7, 80.0, 1e4];
        let sigma = Tensor::from_slice(&sigmas, (sigmas.len(), 1), &Device::Cpu).unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            values.iter().map(|v| v.to_bits()).collect()
        };
        for kind in [
            Parameterisation::Score,
            Parameterisation::Eps,
            Parameterisation::X0,
            Parameterisation::V,
            Parameterisation::Edm,
        ] {
            let (c_in, c_skip, c_out) = coefficient_columns(kind, &sigma, 0.5).unwrap();
            assert_eq!(c_in.dims(), sigma.dims());
            let (mut skip, mut out, mut input) = (vec![], vec![], vec![]);
            for s in sigmas {
                let (c_skip, c_out, c_in) = coefficients(kind, s as f64, 0.5);
                skip.push((c_skip as f32).to_bits());
                out.push((c_out as f32).to_bits());
                input.push((c_in as f32).to_bits());
            }
            assert_eq!(bits(&c_in), input, "{kind:?} c_in");
            assert_eq!(bits(&c_skip), skip, "{kind:?} c_skip");
            assert_eq!(bits(&c_out), out, "{kind:?} c_out");
        }
    }
}
