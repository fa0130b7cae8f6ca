//! The network of the `classifier` feature extractor and its training loop (the plugin,
//! its cache and its feature map are in `classifier.rs`).

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarMap};
use scorelab::nn::conv::Conv2d;
use scorelab::nn::init;
use scorelab::plugins::features::classifier::ClassifierParams;
use scorelab::rng::Rng;

/// The network: convolutions, pooled features, logits.
pub struct ClassifierNet {
    convs: Vec<Conv2d>,
    hidden: Linear,
    output: Linear,
}

impl ClassifierNet {
    /// A freshly initialised network for `[C, H, W]` items and `classes` classes, its
    /// parameters registered in `variables` (seeded: He-uniform convolution weights,
    /// PyTorch's default for the biases and the linear layers).
    pub fn new(
        variables: &VarMap,
        channels: usize,
        classes: usize,
        params: &ClassifierParams,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        let w = params.width;
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
        let hidden = init::linear(variables, "hidden", 4 * w, params.features, device, rng)?;
        let output = init::linear(variables, "output", params.features, classes, device, rng)?;
        Ok(ClassifierNet {
            convs,
            hidden,
            output,
        })
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
}

/// Trains `net` (its parameters in `variables`) with Adam on the mean cross-entropy of
/// batches of `images` (n, C, H, W) against `labels` (n,) u32, drawn with replacement from
/// `rng`; logs the running loss ten times.
pub fn train_classifier(
    net: &ClassifierNet,
    variables: &VarMap,
    images: &Tensor,
    labels: &Tensor,
    params: &ClassifierParams,
    rng: &mut Rng,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let mut vars: Vec<_> = variables
        .data()
        .lock()
        .expect("variable map lock poisoned")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let adam = ParamsAdamW {
        lr: params.lr,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(vars.into_iter().map(|(_, v)| v).collect(), adam)?;
    let n = images.dim(0)?;
    let (steps, report) = (params.steps, (params.steps / 10).max(1));
    // Each step's loss stays on the device until the next report reads them in one copy.
    let mut pending: Vec<Tensor> = Vec::new();
    for step in 1..=steps {
        let indices: Vec<u32> = (0..params.batch_size)
            .map(|_| rng.below(n) as u32)
            .collect();
        let indices = Tensor::from_vec(indices, params.batch_size, images.device())?;
        let loss = net.loss(
            &images.index_select(&indices, 0)?,
            &labels.index_select(&indices, 0)?,
        )?;
        optimizer.backward_step(&loss)?;
        pending.push(loss.detach());
        if step % report == 0 || step == steps {
            let values = Tensor::stack(&pending, 0)?.to_vec1::<f32>()?;
            let first = step + 1 - values.len();
            if let Some((k, value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                candle_core::bail!(
                    "the loss became {value} at step {}; lower `features.lr` (now {})",
                    first + k,
                    params.lr
                );
            }
            let running: f64 = values.iter().map(|v| *v as f64).sum();
            log(&format!(
                "classifier: step {step}/{steps} cross-entropy {:.4}",
                running / values.len() as f64
            ));
            pending.clear();
        }
    }
    Ok(())
}
