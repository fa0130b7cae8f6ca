//! A trainable noise-conditional classifier p(y | x, sigma) (the `mlp` and `cnn` of
//! classifier guidance): its trait, what one training step minimises (the cross-entropy of
//! labelled training items noised at levels drawn log-uniformly between the schedule's
//! smallest loss level and its prior's standard deviation, the range samplers visit), and its
//! accuracy on noised held-out items. The loop that trains it is the engine's one loop
//! (`train::guidance_classifier`), which this module is below.

use super::{log_sum_exp_keepdim, Classifier};
use crate::dataset::Samples;
use crate::rng::{Rng, Stream};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

/// A trainable noise-conditional classifier on sigma-space inputs (n, dim).
pub trait NoisyNet: Classifier {
    /// Class logits (n, classes) of `x` (n, dim) at per-row levels `sigma` (n, 1).
    fn logits(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor>;

    /// Its parameters (saved and loaded by name).
    fn variables(&self) -> &VarMap;
}

/// log p(y | x, sigma) for every class from class logits: the log-softmax, in `dtype`.
pub fn log_probs_from(logits: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    logits
        .broadcast_sub(&log_sum_exp_keepdim(logits)?)?
        .to_dtype(dtype)
}

/// The standard deviation of every coordinate of `data` pooled (at least 1e-3).
pub fn data_std(data: &Samples) -> f64 {
    let values = data.as_slice();
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len().max(1) as f64)
        .sqrt()
        .max(1e-3)
}

/// How one is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Training {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Noise levels are drawn log-uniformly in this range.
    pub sigma_range: (f64, f64),
    pub seed: u64,
}

/// The mean cross-entropy over each tenth of training: (last step, mean loss).
pub type LossHistory = Vec<(usize, f64)>;

/// One training step's loss: a batch of `training.batch_size` labelled items of `data`
/// drawn with replacement from `rng`, each noised at a level drawn log-uniformly in
/// `training.sigma_range`, and the mean cross-entropy of `net`'s logits against their
/// labels. The draws come in one order (indices, levels, noise), so the same stream trains
/// the same weights whichever loop runs it.
pub fn batch_loss(
    net: &dyn NoisyNet,
    data: &Samples,
    training: &Training,
    device: &Device,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let Some(labels) = data.labels() else {
        candle_core::bail!("the classifier needs labelled training data");
    };
    let (dim, batch) = (data.dim(), training.batch_size);
    let (low, high) = (training.sigma_range.0.ln(), training.sigma_range.1.ln());
    let indices: Vec<usize> = (0..batch).map(|_| rng.below(data.len())).collect();
    let items = data.gather(&indices);
    let targets: Vec<u32> = indices.iter().map(|&i| labels[i]).collect();
    let sigmas: Vec<f64> = (0..batch)
        .map(|_| (low + (high - low) * rng.uniform()).exp())
        .collect();
    let sigma = crate::network::sigma_column(&sigmas, device)?;
    let z = Tensor::from_vec(rng.normal_f32(batch * dim), (batch, dim), device)?;
    let noisy = items.to_tensor(device)?.add(&z.broadcast_mul(&sigma)?)?;
    let logits = net.logits(&noisy, &sigma)?;
    let targets = Tensor::from_vec(targets, batch, device)?;
    candle_nn::loss::cross_entropy(&logits, &targets)
}

/// The classifier's accuracy on one noise level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoisedAccuracy {
    pub sigma: f64,
    pub accuracy: f64,
}

/// Items per forward pass when measuring accuracy.
const CHUNK: usize = 500;

/// Accuracy on the labelled `items` noised at each of `sigmas` (one draw of noise each, from
/// `seed`).
pub fn noised_accuracy(
    net: &dyn NoisyNet,
    items: &Samples,
    sigmas: &[f64],
    seed: u64,
    device: &Device,
) -> candle_core::Result<Vec<NoisedAccuracy>> {
    let Some(labels) = items.labels() else {
        candle_core::bail!("the held-out items have no labels");
    };
    let mut rng = Rng::new(seed, Stream::Metrics);
    let dim = items.dim();
    let mut out = Vec::new();
    for &sigma in sigmas {
        let mut hits = 0;
        for start in (0..items.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(items.len());
            let chunk = items.gather(&(start..end).collect::<Vec<_>>());
            let n = end - start;
            let z = Tensor::from_vec(rng.normal_f32(n * dim), (n, dim), device)?;
            let x = (chunk.to_tensor(device)? + (z * sigma)?)?;
            let s = crate::network::constant_sigma(sigma, n, device)?;
            let predicted = net.logits(&x, &s)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
            hits += predicted
                .iter()
                .zip(&labels[start..end])
                .filter(|(p, l)| p == l)
                .count();
        }
        out.push(NoisedAccuracy {
            sigma,
            accuracy: hits as f64 / items.len().max(1) as f64,
        });
    }
    Ok(out)
}

/// The levels accuracy is reported at: a fixed ladder within the trained range, with its ends.
pub fn report_levels(range: (f64, f64)) -> Vec<f64> {
    let mut levels = vec![range.0];
    for s in [0.1, 0.3, 1.0, 3.0, 10.0] {
        if s > range.0 * 1.5 && s < range.1 / 1.5 {
            levels.push(s);
        }
    }
    levels.push(range.1);
    levels
}
