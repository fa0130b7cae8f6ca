//! The `mlp` noise-conditional classifier p(y | x, sigma): an MLP on the scaled input
//! x / sqrt(s_d^2 + sigma^2) (s_d the data's standard deviation) and a sinusoidal embedding
//! of ln(sigma), with two SiLU hidden layers and one logit per class. Trained by
//! the engine's one loop (`train::guidance_classifier`, 256 examples a step).

use super::Classifier;
use crate::dataset::Samples;
use crate::nn::init::linear;
use crate::nn::linear::Linear;
use crate::rng::{Rng, Stream};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Module, VarMap};

use super::noisy::{data_std, log_probs_from, NoisyNet};

/// Size of the sinusoidal embedding of ln(sigma).
const EMBEDDING: usize = 16;
/// Examples per training step.
pub const BATCH: usize = 256;
/// Adam's learning rate.
pub const LR: f64 = 2e-3;

pub struct NoisyMlp {
    classes: usize,
    data_std: f64,
    layers: Vec<Linear>,
    output: Linear,
    frequencies: Tensor,
    variables: VarMap,
}

impl NoisyMlp {
    /// A freshly initialised classifier of items like `data`'s into `classes` classes, with
    /// `hidden` units per layer (seeded from `seed`).
    pub fn new(
        data: &Samples,
        classes: usize,
        hidden: usize,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<NoisyMlp> {
        let dim = data.dim();
        let mut init = Rng::new(seed, Stream::NetworkInit);
        let variables = VarMap::new();
        let inputs = dim + EMBEDDING;
        let layers = vec![
            linear(
                &variables,
                "classifier.0",
                inputs,
                hidden,
                device,
                &mut init,
            )?,
            linear(
                &variables,
                "classifier.1",
                hidden,
                hidden,
                device,
                &mut init,
            )?,
        ];
        let output = linear(
            &variables,
            "classifier.out",
            hidden,
            classes,
            device,
            &mut init,
        )?;
        let frequencies: Vec<f32> = (1..=EMBEDDING / 2).map(|k| k as f32).collect();
        let frequencies = Tensor::from_vec(frequencies, (1, EMBEDDING / 2), device)?;
        Ok(NoisyMlp {
            classes,
            data_std: data_std(data),
            layers,
            output,
            frequencies,
            variables,
        })
    }
}

impl NoisyNet for NoisyMlp {
    fn logits(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let sigma = sigma.to_dtype(DType::F32)?;
        let scale = ((sigma.sqr()? + self.data_std * self.data_std)?.sqrt()?).recip()?;
        let scaled = x.to_dtype(DType::F32)?.broadcast_mul(&scale)?;
        let angles = sigma.log()?.broadcast_mul(&self.frequencies)?;
        let embedding = Tensor::cat(&[angles.sin()?, angles.cos()?], 1)?;
        let mut h = Tensor::cat(&[scaled, embedding], 1)?;
        for layer in &self.layers {
            h = candle_nn::ops::silu(&layer.forward(&h)?)?;
        }
        self.output.forward(&h)
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

impl Classifier for NoisyMlp {
    fn classes(&self) -> usize {
        self.classes
    }

    fn log_probs(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        log_probs_from(&self.logits(x, sigma)?, x.dtype())
    }
}
