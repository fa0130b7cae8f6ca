//! Networks and the models samplers see. A network is a raw function F(x, sigma) with
//! trainable variables; a parameterisation (see [`crate::parameterisation`]) turns it into a
//! denoiser D(x^; sigma) and a score (D - x^) / sigma^2 in sigma space. Analytic networks
//! (the oracle) are score models already.

pub mod counting;

use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

use crate::dataset::Dataset;
use crate::rng::Rng;

/// Anything that gives the score of the noised data in sigma space for a batch `x` of shape
/// (n, dim) at per-row noise levels `sigma` of shape (n, 1). This is all a sampler sees.
pub trait ScoreModel {
    /// grad_x log p_sigma(x).
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor>;

    /// The score for per-row class `labels` (a (n,) u32 tensor; a label equal to the number
    /// of classes, or `None`, is the null label: the unconditional score). Exact models that
    /// know their classes override it; by default labels are ignored.
    fn score_labelled(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        _labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.score(x, sigma)
    }

    /// The denoiser D(x; sigma) = E[x0 | x] = x + sigma^2 score (Tweedie).
    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        x.add(&self.score(x, sigma)?.broadcast_mul(&sigma.sqr()?)?)
    }

    /// The score and, per row, the divergence of the score field: the exact trace of its
    /// Jacobian when `probes` is empty, else Hutchinson's estimate, the mean over probes of
    /// eps^T (d score / dx) eps. Default: reverse-mode autograd through `score` (one
    /// backward pass per dimension, or per probe).
    fn score_divergence(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let input = Var::from_tensor(&x.detach())?;
        let score = self.score(input.as_tensor(), sigma)?;
        let (n, dim) = x.dims2()?;
        let gradient_of = |scalar: Tensor| -> candle_core::Result<Tensor> {
            let grads = scalar.backward()?;
            match grads.get(input.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => Tensor::zeros((n, dim), x.dtype(), x.device()),
            }
        };
        let mut total = Tensor::zeros(n, x.dtype(), x.device())?;
        if probes.is_empty() {
            // Rows are independent: the gradient of the batch sum of score[:, i] holds
            // d score_i / dx for every row; its i-th column is the diagonal entry.
            for i in 0..dim {
                let row_sum = score.narrow(1, i, 1)?.sum_all()?;
                let column = gradient_of(row_sum)?.narrow(1, i, 1)?.squeeze(1)?;
                total = total.add(&column)?;
            }
        } else {
            for probe in probes {
                let projected = score.mul(probe)?.sum_all()?;
                let vjp = gradient_of(projected)?;
                total = total.add(&vjp.mul(probe)?.sum(1)?)?;
            }
            total = (total / probes.len() as f64)?;
        }
        Ok((score.detach(), total.detach()))
    }
}

/// One instantiated network: the raw function F(x_in, sigma) that a parameterisation turns
/// into a denoiser. Networks receive sigma itself and embed it as they see fit (EDM's
/// c_noise = ln(sigma) / 4 is an affine map of the log-sigma embedding every network uses).
pub trait Network: Send {
    /// F(x, sigma) for a flat (n, dim) batch at per-row noise levels (n, 1). `labels` (a (n,)
    /// u32 tensor) reaches class-conditional networks; `None` asks for the unconditional
    /// output (the null label), and so does a row whose label equals the number of classes
    /// (classifier-free guidance drops labels to it per row).
    fn forward(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor>;

    /// Switches layers that act differently in training (dropout). Default: none do.
    fn set_training(&self, _training: bool) {}

    /// Where the network's own random streams (dropout) stand, saved with training
    /// snapshots. Default: it has none.
    fn random_state(&self) -> Vec<crate::rng::RngState> {
        Vec::new()
    }

    /// Continues the streams from [`Network::random_state`]'s record.
    fn restore_random_state(&self, states: &[crate::rng::RngState]) -> Result<(), String> {
        if states.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the snapshot has {} random stream(s) for a network that has none",
                states.len()
            ))
        }
    }

    /// The trainable variables.
    fn variables(&self) -> &VarMap;
}

/// What instantiating an architecture gives: a network to train, or an exact score model.
pub enum Instance {
    Trainable(Box<dyn Network>),
    Exact(Box<dyn ScoreModel + Send>),
}

/// What a network plugin may need when it is built.
pub struct NetworkContext<'a> {
    pub dim: usize,
    /// One item's shape: `[dim]` for points, `[C, H, W]` for images.
    pub shape: &'a [usize],
    /// Number of classes of the data's labels (0: unlabelled).
    pub classes: usize,
    pub dataset: &'a Arc<dyn Dataset>,
}

impl NetworkContext<'_> {
    /// Refuses a network parameter `key` (under `raw`) asking for `classes` > 0 class labels
    /// the data does not have.
    pub fn check_classes(
        &self,
        raw: &crate::config::RawParams,
        key: &str,
        classes: usize,
    ) -> Result<(), crate::config::ConfigError> {
        if classes == 0 || classes == self.classes {
            return Ok(());
        }
        let (message, fix) = match self.classes {
            0 => (
                format!("conditions on {classes} classes, but the data is unlabelled"),
                format!("set `{key}: 0` or use labelled data"),
            ),
            data => (
                format!("conditions on {classes} classes, but the data has {data}"),
                format!("set `{key}: {data}` (or 0 for an unconditional network)"),
            ),
        };
        Err(raw.invalid(key, message, fix))
    }
}

/// A network as configured: instantiates fresh weights for a training run.
pub trait Architecture: Send + Sync {
    fn instantiate(&self, device: &Device, rng: &mut Rng) -> candle_core::Result<Instance>;

    /// False for analytic networks: there is nothing to train and no parameterisation.
    fn trainable(&self) -> bool {
        true
    }

    /// Number of classes the network is conditioned on (0: unconditional). Training passes
    /// the data's labels; sampling draws a target class per sample.
    fn classes(&self) -> usize {
        0
    }

    /// Roughly how much memory one instance takes, computed from the parameters alone
    /// (nothing is built): the memory estimate refuses a sweep whose networks cannot fit
    /// before anything runs. `None` where the network cannot say (it is then left out).
    fn footprint(&self) -> Option<Footprint> {
        None
    }
}

/// An architecture's size, for the memory estimate ([`Architecture::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    /// Trainable values (weights and biases).
    pub parameters: u64,
    /// Values of activations per example in a forward pass (the sum of every layer's output
    /// sizes); the memory estimate multiplies them by the batch and a factor for what the
    /// backward pass keeps.
    pub activations: u64,
}

/// Per-row noise levels as a column tensor, the shape `ScoreModel::score` takes.
pub fn sigma_column(sigmas: &[f64], device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = sigmas.iter().map(|s| *s as f32).collect();
    Tensor::from_vec(values, (sigmas.len(), 1), device)
}

/// One noise level for every row of a batch of `n`.
pub fn constant_sigma(sigma: f64, n: usize, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::full(sigma as f32, (n, 1), device)
}
