//! `vae`: a small convolutional VAE for images (the first stage of latent diffusion,
//! Rombach et al. 2022, at toy size). Encoder: a 3x3 convolution to `channels`, then per
//! halving GroupNorm + SiLU and a stride-2 3x3 convolution, a residual block at the latent
//! resolution, GroupNorm + SiLU and a 3x3 convolution to 2 · `latent_channels` (the
//! posterior's mean and log-variance). Decoder, mirrored: a 3x3 convolution from the
//! latents, a residual block, per doubling nearest-neighbour 2x upsampling and a 3x3
//! convolution (each after GroupNorm + SiLU), GroupNorm + SiLU and a 3x3 convolution to the
//! image's channels. A [C, H, W] image becomes a [`latent_channels`, H / `downsample`,
//! W / `downsample`] latent. The engine trains it (see `scorelab::latent`).

use candle_core::{Device, Tensor};
use candle_nn::{Module, VarMap};
use scorelab::config::{Params, RawParams};
use scorelab::latent::{Autoencoder, AutoencoderTraining, Latent, LatentContext};
use scorelab::nn::blocks::upsample_nearest2x;
use scorelab::nn::conv::Conv2d;
use scorelab::nn::init;
use scorelab::nn::norm::{group_norm, GroupNorm};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `vae`.
    pub struct VaeParams {
        /// Spatial downsampling factor (1, 2, 4 or 8: one stride-2 convolution per halving); the image's sides must divide by it.
        downsample: usize = 2 => 0..=1024,
        /// Channels of the latent.
        latent_channels: usize = 4 => 0..=scorelab::config::limits::MAX_WIDTH,
        /// Hidden width of every convolution.
        channels: usize = 32 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// GroupNorm groups (must divide `channels`).
        groups: usize = 8 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// beta: the loss is MSE + beta · KL / D per image (D pixels · channels).
        kl_weight: f64 = 1e-4,
        /// Training steps.
        steps: usize = 2000 => 1..=scorelab::config::limits::MAX_STEPS,
        /// Images per step.
        batch_size: usize = 64 => 1..=scorelab::config::limits::MAX_BATCH,
        /// Adam's learning rate.
        lr: f64 = 2e-3,
    }
}

/// silu(GroupNorm(x)) then a convolution.
struct NormConv {
    norm: GroupNorm,
    conv: Conv2d,
}

impl NormConv {
    fn new(
        vars: &VarMap,
        name: &str,
        (input, output): (usize, usize),
        stride: usize,
        groups: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        Ok(NormConv {
            norm: group_norm(vars, &format!("{name}.norm"), groups, input, device)?,
            conv: init::conv2d(
                vars,
                &format!("{name}.conv"),
                (input, output),
                (3, stride, 1),
                device,
                rng,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.conv.forward(&self.norm.forward_silu(x)?)
    }
}

pub struct ConvVae {
    variables: VarMap,
    image: (usize, usize, usize),
    latent: (usize, usize, usize),
    encoder_in: Conv2d,
    down: Vec<NormConv>,
    encoder_mid: [NormConv; 2],
    encoder_out: NormConv,
    decoder_in: Conv2d,
    decoder_mid: [NormConv; 2],
    up: Vec<NormConv>,
    decoder_out: NormConv,
}

impl ConvVae {
    fn new(
        params: &VaeParams,
        image: (usize, usize, usize),
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        let vars = VarMap::new();
        let (c, h, w) = image;
        let (ch, g, lc) = (params.channels, params.groups, params.latent_channels);
        let halvings = params.downsample.trailing_zeros() as usize;
        let conv = |vars: &VarMap, name: &str, i, o, rng: &mut Rng| {
            init::conv2d(vars, name, (i, o), (3, 1, 1), device, rng)
        };
        let encoder_in = conv(&vars, "encoder.in", c, ch, rng)?;
        let down = (0..halvings)
            .map(|i| {
                NormConv::new(
                    &vars,
                    &format!("encoder.down{i}"),
                    (ch, ch),
                    2,
                    g,
                    device,
                    rng,
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let encoder_mid = [
            NormConv::new(&vars, "encoder.mid0", (ch, ch), 1, g, device, rng)?,
            NormConv::new(&vars, "encoder.mid1", (ch, ch), 1, g, device, rng)?,
        ];
        let encoder_out = NormConv::new(&vars, "encoder.out", (ch, 2 * lc), 1, g, device, rng)?;
        let decoder_in = conv(&vars, "decoder.in", lc, ch, rng)?;
        let decoder_mid = [
            NormConv::new(&vars, "decoder.mid0", (ch, ch), 1, g, device, rng)?,
            NormConv::new(&vars, "decoder.mid1", (ch, ch), 1, g, device, rng)?,
        ];
        let up = (0..halvings)
            .map(|i| {
                NormConv::new(
                    &vars,
                    &format!("decoder.up{i}"),
                    (ch, ch),
                    1,
                    g,
                    device,
                    rng,
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let decoder_out = NormConv::new(&vars, "decoder.out", (ch, c), 1, g, device, rng)?;
        let f = params.downsample;
        Ok(ConvVae {
            variables: vars,
            image,
            latent: (lc, h / f, w / f),
            encoder_in,
            down,
            encoder_mid,
            encoder_out,
            decoder_in,
            decoder_mid,
            up,
            decoder_out,
        })
    }

    fn residual(blocks: &[NormConv; 2], h: Tensor) -> candle_core::Result<Tensor> {
        let inner = blocks[1].forward(&blocks[0].forward(&h)?)?;
        h.add(&inner)
    }
}

impl Autoencoder for ConvVae {
    fn encode(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (c, h, w) = self.image;
        let n = x.dim(0)?;
        let mut h = self.encoder_in.forward(&x.reshape((n, c, h, w))?)?;
        for down in &self.down {
            h = down.forward(&h)?;
        }
        let h = Self::residual(&self.encoder_mid, h)?;
        let moments = self.encoder_out.forward(&h)?;
        let lc = self.latent.0;
        let mean = moments.narrow(1, 0, lc)?.reshape((n, ()))?;
        let log_var = moments.narrow(1, lc, lc)?.reshape((n, ()))?;
        Ok((mean, log_var))
    }

    fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let (lc, lh, lw) = self.latent;
        let n = z.dim(0)?;
        let h = self.decoder_in.forward(&z.reshape((n, lc, lh, lw))?)?;
        let mut h = Self::residual(&self.decoder_mid, h)?;
        for up in &self.up {
            h = up.forward(&upsample_nearest2x(&h)?)?;
        }
        self.decoder_out.forward(&h)?.reshape((n, ()))
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

pub struct Vae {
    params: VaeParams,
    image: (usize, usize, usize),
}

impl Latent for Vae {
    fn shape(&self) -> Vec<usize> {
        let (_, h, w) = self.image;
        let f = self.params.downsample;
        vec![self.params.latent_channels, h / f, w / f]
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
        Ok(Box::new(ConvVae::new(
            &self.params,
            self.image,
            device,
            rng,
        )?))
    }
}

fn build(raw: &RawParams, context: &LatentContext) -> BuildResult<dyn Latent> {
    let params = VaeParams::from_raw(raw)?;
    let &[c, h, w] = context.shape else {
        return Err(raw.invalid(
            "kind",
            format!(
                "`vae` encodes images of shape [C, H, W]; the data's items have shape {:?}",
                context.shape
            ),
            "use image data (e.g. `data: shapes`), or `latent: mlp_vae` for points",
        ));
    };
    let f = params.downsample;
    if ![1, 2, 4, 8].contains(&f) {
        return Err(raw.invalid(
            "downsample",
            format!("must be 1, 2, 4 or 8, not {f}"),
            "set e.g. `downsample: 2`",
        ));
    }
    if h % f != 0 || w % f != 0 {
        return Err(raw.invalid(
            "downsample",
            format!("the data's {h}x{w} images do not divide by {f}"),
            "use a factor that divides the image's sides (e.g. `downsample: 2`)",
        ));
    }
    for (key, value, example) in [
        ("latent_channels", params.latent_channels, 4),
        ("channels", params.channels, 32),
    ] {
        raw.check_within(
            key,
            value as f64,
            (1.0, 4096.0),
            "a channel count",
            &format!("set e.g. `{key}: {example}`"),
        )?;
    }
    if params.groups == 0 || !params.channels.is_multiple_of(params.groups) {
        return Err(raw.invalid(
            "groups",
            format!(
                "{} groups do not divide {} channels",
                params.groups, params.channels
            ),
            "choose `groups` dividing `channels` (e.g. 8 for 32 channels)",
        ));
    }
    let training = AutoencoderTraining {
        steps: params.steps,
        batch_size: params.batch_size,
        lr: params.lr,
        kl_weight: params.kl_weight,
    };
    training.check(raw)?;
    Ok(Built::<dyn Latent>::new(
        Box::new(Vae {
            params: params.clone(),
            image: (c, h, w),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "vae",
        about: "a small convolutional VAE for images: diffusion on its [latent_channels, H/f, W/f] latents",
        params: VaeParams::docs,
        build: Builder::Latent(build),
    }
}
