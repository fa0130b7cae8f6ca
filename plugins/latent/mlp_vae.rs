//! `mlp_vae`: a small MLP VAE for points (any dimension), so latent diffusion runs on the 2D
//! toys in seconds. Encoder: `layers` SiLU layers of `hidden` units, then a linear map to
//! 2 · `latent_dim` (the posterior's mean and log-variance); decoder: `layers` SiLU layers
//! from the latent, then a linear map back to the data's dimension. The engine trains it
//! (see `scorelab::latent`).

use candle_core::{Device, Tensor};
use candle_nn::{Module, VarMap};
use scorelab::config::{Params, RawParams};
use scorelab::latent::{Autoencoder, AutoencoderTraining, Latent, LatentContext};
use scorelab::nn::init::linear;
use scorelab::nn::linear::Linear;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `mlp_vae`.
    pub struct MlpVaeParams {
        /// Coordinates of the latent.
        latent_dim: usize = 2 => 0..=scorelab::config::limits::MAX_WIDTH,
        /// Units of every hidden layer.
        hidden: usize = 64 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// Hidden layers of the encoder (and of the decoder).
        layers: usize = 2 => 0..=scorelab::config::limits::MAX_LAYERS,
        /// beta: the loss is MSE + beta · KL / D per point (D the data's dimension).
        kl_weight: f64 = 1e-3,
        /// Training steps.
        steps: usize = 2000 => 1..=scorelab::config::limits::MAX_STEPS,
        /// Points per step.
        batch_size: usize = 128 => 1..=scorelab::config::limits::MAX_BATCH,
        /// Adam's learning rate.
        lr: f64 = 2e-3,
    }
}

pub struct Mlp {
    variables: VarMap,
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
    latent_dim: usize,
}

fn stack(layers: &[Linear], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (i, layer) in layers.iter().enumerate() {
        h = layer.forward(&h)?;
        if i + 1 < layers.len() {
            h = candle_nn::ops::silu(&h)?;
        }
    }
    Ok(h)
}

impl Autoencoder for Mlp {
    fn encode(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let moments = stack(&self.encoder, x)?;
        Ok((
            moments.narrow(1, 0, self.latent_dim)?,
            moments.narrow(1, self.latent_dim, self.latent_dim)?,
        ))
    }

    fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        stack(&self.decoder, z)
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

pub struct MlpVae {
    params: MlpVaeParams,
    dim: usize,
}

impl Latent for MlpVae {
    fn shape(&self) -> Vec<usize> {
        vec![self.params.latent_dim]
    }

    fn training(&self) -> AutoencoderTraining {
        AutoencoderTraining {
            steps: self.params.steps,
            batch_size: self.params.batch_size,
            lr: self.params.lr,
            kl_weight: self.params.kl_weight,
        }
    }

    fn instantiate(
        &self,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Box<dyn Autoencoder>> {
        let variables = VarMap::new();
        let (hidden, latent) = (self.params.hidden, self.params.latent_dim);
        let layers = |name: &str, input: usize, output: usize, rng: &mut Rng| {
            let mut widths = vec![input];
            widths.extend(std::iter::repeat_n(hidden, self.params.layers));
            widths.push(output);
            widths
                .windows(2)
                .enumerate()
                .map(|(i, w)| linear(&variables, &format!("{name}.{i}"), w[0], w[1], device, rng))
                .collect::<candle_core::Result<Vec<_>>>()
        };
        let encoder = layers("encoder", self.dim, 2 * latent, rng)?;
        let decoder = layers("decoder", latent, self.dim, rng)?;
        Ok(Box::new(Mlp {
            variables,
            encoder,
            decoder,
            latent_dim: latent,
        }))
    }
}

fn build(raw: &RawParams, context: &LatentContext) -> BuildResult<dyn Latent> {
    let params = MlpVaeParams::from_raw(raw)?;
    let &[dim] = context.shape else {
        return Err(raw.invalid(
            "kind",
            format!(
                "`mlp_vae` encodes points; the data's items have shape {:?}",
                context.shape
            ),
            "use point data (e.g. `data: moons`), or `latent: vae` for images",
        ));
    };
    for (key, value, example) in [
        ("latent_dim", params.latent_dim, 2),
        ("hidden", params.hidden, 64),
        ("layers", params.layers, 2),
    ] {
        raw.check_within(
            key,
            value as f64,
            (1.0, 4096.0),
            "a size",
            &format!("set e.g. `{key}: {example}`"),
        )?;
    }
    let training = AutoencoderTraining {
        steps: params.steps,
        batch_size: params.batch_size,
        lr: params.lr,
        kl_weight: params.kl_weight,
    };
    training.check(raw)?;
    Ok(Built::<dyn Latent>::new(
        Box::new(MlpVae {
            params: params.clone(),
            dim,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "mlp_vae",
        about: "a small MLP VAE for points: diffusion on its latent_dim-dimensional latents",
        params: MlpVaeParams::docs,
        build: Builder::Latent(build),
    }
}
