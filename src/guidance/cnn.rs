//! The `cnn` noise-conditional classifier p(y | x, sigma) for images: the input scaled to
//! unit variance, x / sqrt(s_d^2 + sigma^2) (s_d the data's standard deviation), through three
//! 3x3 convolutions (`width`, 2 `width` and 4 `width` channels, the last two at stride 2),
//! each followed by SiLU, with the noise level's embedding (sinusoids of ln(sigma) / 4 and
//! a SiLU layer) added to every convolution's output channels; then a global average pool
//! and a linear layer to one logit per class. The convolutions are the repository's im2col
//! and gemm op, whose backward gives the input gradient classifier guidance needs. Trained
//! by the engine's one loop (`train::guidance_classifier`, 64 images a step).

use super::Classifier;
use crate::dataset::Samples;
use crate::nn::conv::Conv2d;
use crate::nn::embedding::{NoiseEmbedding, NoiseEmbeddingKind};
use crate::nn::init::{he_conv3x3, linear};
use crate::nn::linear::Linear;
use crate::rng::{Rng, Stream};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Module, VarMap};

use super::noisy::{data_std, log_probs_from, NoisyNet};

/// Size of the sinusoidal embedding of the noise level.
const EMBEDDING: usize = 32;
/// Images per training step.
pub const BATCH: usize = 64;
/// Adam's learning rate.
pub const LR: f64 = 2e-3;

/// One convolution stage: the convolution and the projection of the noise embedding that
/// shifts its output channels.
struct Stage {
    conv: Conv2d,
    shift: Linear,
}

pub struct NoisyCnn {
    classes: usize,
    shape: [usize; 3],
    data_std: f64,
    embedding: NoiseEmbedding,
    embed: Linear,
    stages: Vec<Stage>,
    output: Linear,
    variables: VarMap,
}

impl NoisyCnn {
    /// A freshly initialised classifier of images like `data`'s (shape [C, H, W]) into
    /// `classes` classes, `width` channels in its first convolution (seeded from `seed`).
    pub fn new(
        data: &Samples,
        classes: usize,
        width: usize,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<NoisyCnn> {
        let Some((c, h, w)) = data.image_shape() else {
            candle_core::bail!(
                "the `cnn` classifier takes images [C, H, W], and the data's items have shape {:?}",
                data.shape()
            );
        };
        let mut rng = Rng::new(seed, Stream::NetworkInit);
        let variables = VarMap::new();
        let embedding =
            NoiseEmbedding::new(NoiseEmbeddingKind::Sinusoidal, EMBEDDING, device, &mut rng)?;
        let hidden = 4 * width;
        let embed = linear(&variables, "embed", EMBEDDING, hidden, device, &mut rng)?;
        let mut stages = Vec::new();
        for (i, geometry) in [
            (c, width, 1),
            (width, 2 * width, 2),
            (2 * width, 4 * width, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let conv = he_conv3x3(
                &variables,
                &format!("conv{}", i + 1),
                geometry,
                device,
                &mut rng,
            )?;
            let shift = linear(
                &variables,
                &format!("shift{}", i + 1),
                hidden,
                geometry.1,
                device,
                &mut rng,
            )?;
            stages.push(Stage { conv, shift });
        }
        let output = linear(&variables, "output", 4 * width, classes, device, &mut rng)?;
        Ok(NoisyCnn {
            classes,
            shape: [c, h, w],
            data_std: data_std(data),
            embedding,
            embed,
            stages,
            output,
            variables,
        })
    }
}

impl NoisyNet for NoisyCnn {
    fn logits(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let [c, h, w] = self.shape;
        let sigma = sigma.to_dtype(DType::F32)?;
        let scale = ((sigma.sqr()? + self.data_std * self.data_std)?.sqrt()?).recip()?;
        let mut hidden = x
            .to_dtype(DType::F32)?
            .broadcast_mul(&scale)?
            .reshape((n, c, h, w))?;
        let embedding = self
            .embed
            .forward(&self.embedding.forward(&sigma)?)?
            .silu()?;
        for stage in &self.stages {
            let shift = stage.shift.forward(&embedding)?;
            hidden = stage.conv.forward_shifted(&hidden, &shift)?.silu()?;
        }
        let pooled = hidden.flatten_from(2)?.mean(2)?;
        self.output.forward(&pooled)
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

impl Classifier for NoisyCnn {
    fn classes(&self) -> usize {
        self.classes
    }

    fn log_probs(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        log_probs_from(&self.logits(x, sigma)?, x.dtype())
    }
}
