//! A small noise-conditional classifier p(y | x, sigma) trained on noised data: an MLP on the
//! scaled input x / sqrt(s_d^2 + sigma^2) (s_d the data's standard deviation) and a
//! sinusoidal embedding of ln(sigma), with SiLU hidden layers and one logit per class.
//! Trained with Adam on cross-entropy at noise levels drawn log-uniformly between the
//! schedule's smallest loss level and its prior's standard deviation (the range samplers
//! visit); the same config, seed and data train the same weights.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarMap};
use scorelab::dataset::Samples;
use scorelab::guidance::{log_sum_exp_keepdim, Classifier};
use scorelab::nn::init::linear;
use scorelab::rng::{Rng, Stream};
use scorelab::train::{sorted_vars, Adam, AdamParams};

/// Size of the sinusoidal embedding of ln(sigma).
const EMBEDDING: usize = 16;
/// Examples per training step.
const BATCH: usize = 256;
/// Adam's learning rate.
const LR: f64 = 2e-3;

/// How to train one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub hidden: usize,
    pub steps: usize,
    /// Noise levels are drawn log-uniformly in this range.
    pub sigma_range: (f64, f64),
    pub seed: u64,
}

pub struct NoisyMlp {
    classes: usize,
    data_std: f64,
    layers: Vec<Linear>,
    output: Linear,
    frequencies: Tensor,
    variables: VarMap,
}

impl NoisyMlp {
    /// Trains a classifier of the labelled `data` (labels 0..classes).
    pub fn train(
        data: &Samples,
        classes: usize,
        settings: Settings,
        device: &Device,
    ) -> candle_core::Result<NoisyMlp> {
        let Some(labels) = data.labels() else {
            candle_core::bail!("the classifier needs labelled training data");
        };
        let dim = data.dim();
        let values = data.as_slice();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let data_std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / values.len() as f64)
            .sqrt()
            .max(1e-3);
        let mut init = Rng::new(settings.seed, Stream::NetworkInit);
        let variables = VarMap::new();
        let inputs = dim + EMBEDDING;
        let layers = vec![
            linear(
                &variables,
                "classifier.0",
                inputs,
                settings.hidden,
                device,
                &mut init,
            )?,
            linear(
                &variables,
                "classifier.1",
                settings.hidden,
                settings.hidden,
                device,
                &mut init,
            )?,
        ];
        let output = linear(
            &variables,
            "classifier.out",
            settings.hidden,
            classes,
            device,
            &mut init,
        )?;
        let frequencies: Vec<f32> = (1..=EMBEDDING / 2).map(|k| k as f32).collect();
        let frequencies = Tensor::from_vec(frequencies, (1, EMBEDDING / 2), device)?;
        let net = NoisyMlp {
            classes,
            data_std,
            layers,
            output,
            frequencies,
            variables,
        };
        let vars: Vec<_> = sorted_vars(&net.variables)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let mut adam = Adam::new(vars, AdamParams::with_lr(LR))?;
        let mut rng = Rng::new(settings.seed, Stream::TrainingNoise);
        let (low, high) = (settings.sigma_range.0.ln(), settings.sigma_range.1.ln());
        for _ in 0..settings.steps {
            let indices: Vec<usize> = (0..BATCH).map(|_| rng.below(data.len())).collect();
            let batch = data.gather(&indices);
            let targets: Vec<u32> = indices.iter().map(|&i| labels[i]).collect();
            let sigmas: Vec<f64> = (0..BATCH)
                .map(|_| (low + (high - low) * rng.uniform()).exp())
                .collect();
            let sigma = scorelab::network::sigma_column(&sigmas, device)?;
            let z = Tensor::from_vec(rng.normal_f32(BATCH * dim), (BATCH, dim), device)?;
            let noisy = batch.to_tensor(device)?.add(&z.broadcast_mul(&sigma)?)?;
            let logits = net.logits(&noisy, &sigma)?;
            let targets = Tensor::from_vec(targets, BATCH, device)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            adam.backward_step(&loss)?;
        }
        Ok(net)
    }

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
}

impl Classifier for NoisyMlp {
    fn classes(&self) -> usize {
        self.classes
    }

    fn log_probs(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let logits = self.logits(x, sigma)?;
        logits
            .broadcast_sub(&log_sum_exp_keepdim(&logits)?)?
            .to_dtype(x.dtype())
    }
}
