//! `identity`: no autoencoder. The diffusion runs on the data itself, exactly as without a
//! `latent:` section (the trial records no `latent` section, so its id and numbers are
//! those of an experiment without one).

use candle_core::Device;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::latent::{Autoencoder, AutoencoderTraining, Latent, LatentContext};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

pub struct Identity {
    shape: Vec<usize>,
}

impl Latent for Identity {
    fn neutral(&self) -> bool {
        true
    }

    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn training(&self) -> AutoencoderTraining {
        AutoencoderTraining {
            steps: 0,
            batch_size: 0,
            lr: 0.0,
            kl_weight: 0.0,
        }
    }

    fn instantiate(
        &self,
        _device: &Device,
        _rng: &mut Rng,
    ) -> candle_core::Result<Box<dyn Autoencoder>> {
        candle_core::bail!("`latent: identity` has no autoencoder to train")
    }
}

fn build(raw: &RawParams, context: &LatentContext) -> BuildResult<dyn Latent> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::<dyn Latent>::new(
        Box::new(Identity {
            shape: context.shape.to_vec(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "identity",
        about: "no autoencoder: diffusion on the data itself (the default)",
        params: NoParams::docs,
        build: Builder::Latent(build),
    }
}
