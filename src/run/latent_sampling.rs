//! A latent trial around sampling: the prior is drawn in the autoencoder's latent space, the
//! sampled latents (and the traced one) are decoded before the metrics, metrics that
//! evaluate the model on data points are refused, and feature metrics get the
//! autoencoder's own floor (training items encoded and decoded).

use candle_core::{Device, Tensor};

use crate::evaluate::SampleSpace;
use crate::latent::Prepared;
use crate::network::ScoreModel;

/// The latent space of one trial with its trained autoencoder.
pub(super) struct LatentSampling<'a> {
    pub prepared: &'a Prepared,
    pub dim: usize,
    pub device: Device,
    refusal: DataSpaceOnly,
}

impl<'a> LatentSampling<'a> {
    /// `name` is the latent plugin's (for the refusal's fix).
    pub fn new(prepared: &'a Prepared, name: &'static str, dim: usize, device: Device) -> Self {
        LatentSampling {
            prepared,
            dim,
            device,
            refusal: DataSpaceOnly { latent: name },
        }
    }
}

impl SampleSpace for LatentSampling<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn to_data(&self, items: &Tensor) -> candle_core::Result<Tensor> {
        self.prepared.decode(items)
    }

    fn model_for_metrics(&self) -> &dyn ScoreModel {
        &self.refusal
    }

    /// The training items' scaled posterior means, decoded.
    fn round_trip(&self, n: usize) -> candle_core::Result<Tensor> {
        let latents = self
            .prepared
            .training_latents
            .head(n)
            .to_tensor(&self.device)?;
        self.prepared.decode(&latents)
    }

    /// The autoencoder's training and the encoding of the training set (once per
    /// autoencoder).
    fn costs(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("autoencoder_s", self.prepared.history.seconds),
            ("encode_s", self.prepared.encode_seconds),
        ]
    }
}

/// What metrics see as the model of a latent trial: its score model scores latents, so a
/// metric that evaluates it on data-space points (a likelihood) gets this error instead.
struct DataSpaceOnly {
    latent: &'static str,
}

impl DataSpaceOnly {
    fn refuse(&self) -> candle_core::Error {
        candle_core::Error::Msg(format!(
            "it evaluates the score model on data-space points, but with `latent: {}` the \
             model scores the autoencoder's latents. Fix: remove it from `eval`, or set \
             `latent: identity`",
            self.latent
        ))
    }
}

impl ScoreModel for DataSpaceOnly {
    fn score(&self, _x: &Tensor, _sigma: &Tensor) -> candle_core::Result<Tensor> {
        Err(self.refuse())
    }

    fn denoise(&self, _x: &Tensor, _sigma: &Tensor) -> candle_core::Result<Tensor> {
        Err(self.refuse())
    }

    fn score_divergence(
        &self,
        _x: &Tensor,
        _sigma: &Tensor,
        _probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Err(self.refuse())
    }
}
