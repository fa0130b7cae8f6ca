//! The network of the `classifier` feature extractor and what one training step of it
//! minimises. Three 3x3 convolutions (`width`, then 2 `width` and 4 `width` channels at
//! stride 2), each followed by SiLU, a global average pool, a linear layer to `features` units
//! and SiLU (the features), and a linear layer to the class logits; trained on the
//! cross-entropy of the training set's labels. The loop that trains it is the one loop
//! (`train::feature_classifier`), a layer above; the trained feature map and its cache
//! folder are `super::trained`.

use candle_core::{Device, Tensor};
use candle_nn::{Module, VarMap};
use serde::{Deserialize, Serialize};

use crate::nn::conv::Conv2d;
use crate::nn::init;
use crate::nn::linear::Linear;
use crate::rng::Rng;

/// What the plugin asks of the classifier: its training and its sizes. Serialised as the
/// plugin's parameters were (the same names, in the same order), so the cache keys and the
/// `info.json` of existing caches stay valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSpec {
    /// Training steps (Adam on the cross-entropy of the training labels).
    pub steps: usize,
    /// Training items per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Units of the penultimate layer: the feature dimension.
    pub features: usize,
    /// Channels of the first convolution (2x and 4x in the next two).
    pub width: usize,
}

/// The network: convolutions, pooled features, logits.
pub struct ClassifierNet {
    convs: Vec<Conv2d>,
    hidden: Linear,
    output: Linear,
    /// Its parameters (the map it was created in, shared).
    variables: VarMap,
}

impl ClassifierNet {
    /// A freshly initialised network for `[C, H, W]` items and `classes` classes, its
    /// parameters registered in `variables` (seeded: He-uniform convolution weights,
    /// PyTorch's default for the biases and the linear layers).
    pub fn new(
        variables: &VarMap,
        channels: usize,
        classes: usize,
        spec: &ClassifierSpec,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        let w = spec.width;
        let stages = [(channels, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2)];
        let mut convs = Vec::new();
        for (i, (input, output, stride)) in stages.into_iter().enumerate() {
            convs.push(init::he_conv3x3(
                variables,
                &format!("conv{}", i + 1),
                (input, output, stride),
                device,
                rng,
            )?);
        }
        let hidden = init::linear(variables, "hidden", 4 * w, spec.features, device, rng)?;
        let output = init::linear(variables, "output", spec.features, classes, device, rng)?;
        Ok(ClassifierNet {
            convs,
            hidden,
            output,
            variables: variables.clone(),
        })
    }

    /// Its parameters (trained, saved and loaded by name).
    pub fn variables(&self) -> &VarMap {
        &self.variables
    }

    /// Penultimate-layer features (n, features) of images (n, C, H, W).
    pub fn features(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for conv in &self.convs {
            h = conv.forward(&h)?.silu()?;
        }
        let pooled = h.flatten_from(2)?.mean(2)?;
        self.hidden.forward(&pooled)?.silu()
    }

    /// Class logits (n, classes) from features.
    pub fn logits(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        self.output.forward(features)
    }

    /// Mean cross-entropy of images (n, C, H, W) against labels (n,) u32.
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::loss::cross_entropy(&self.logits(&self.features(x)?)?, labels)
    }

    /// One training step's loss: the mean cross-entropy of `batch_size` of `images`
    /// (n, C, H, W) against their `labels` (n,) u32, drawn with replacement from `rng`.
    pub fn batch_loss(
        &self,
        images: &Tensor,
        labels: &Tensor,
        batch_size: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        let n = images.dim(0)?;
        let indices: Vec<u32> = (0..batch_size).map(|_| rng.below(n) as u32).collect();
        let indices = Tensor::from_vec(indices, batch_size, images.device())?;
        self.loss(
            &images.index_select(&indices, 0)?,
            &labels.index_select(&indices, 0)?,
        )
    }
}
