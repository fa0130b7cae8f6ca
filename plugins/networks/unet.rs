//! `unet`: a noise-conditional U-Net for images in the style of DDPM / NCSN++ (small). The
//! flat (n, C·H·W) batch is reshaped to (n, C, H, W); c_noise = ln(sigma) / 4 is embedded
//! (sinusoids or Fourier features), passed through an MLP (Linear, SiLU, Linear) to 4 ×
//! `channels` and added, through a Linear of its own, inside every residual block. The encoder
//! has one level per `channel_mult` entry (`blocks_per_level` residual blocks each, a stride-2
//! convolution between levels), the middle is residual block, self-attention, residual block,
//! and the decoder mirrors the encoder with one more block per level, each taking the matching
//! encoder activation as a skip connection, and nearest-neighbour 2x upsampling + conv3x3
//! between levels. Self-attention follows the blocks at the listed resolutions. With
//! `classes` above 0 a learned label embedding (one more row for the null label, used when no
//! label is given, for classifier-free guidance) is added to the noise embedding. Every
//! convolution is `scorelab::nn::conv` (im2col + matmul), every GroupNorm
//! `scorelab::nn::norm`'s. Dropout is active only while training.

use candle_core::{Device, Tensor};
use candle_nn::{Embedding, Module, VarMap};
use scorelab::config::{Params, RawParams};
use scorelab::network::{Architecture, Footprint, Instance, Network, NetworkContext};
use scorelab::nn::attention::SelfAttention;
use scorelab::nn::blocks::{downsample, Dropout, ResBlock, Upsample};
use scorelab::nn::conv::Conv2d;
use scorelab::nn::embedding::{NoiseEmbedding, NoiseEmbeddingKind};
use scorelab::nn::linear::Linear;
use scorelab::nn::norm::GroupNorm;
use scorelab::nn::{init, norm};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use serde::{Deserialize, Serialize};

/// How the noise level is embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingKind {
    /// sin/cos of c_noise at geometric frequencies 1 .. 1/10000 (DDPM).
    Sinusoidal,
    /// sin/cos of 2π·f·c_noise at fixed random frequencies f ~ N(0, 16²) (NCSN++).
    Fourier,
}

params! {
    /// Parameters of `unet`.
    pub struct UnetParams {
        /// Channels of the first level (and the size of the noise embedding; the embedding MLP
        /// is 4 × this wide).
        channels: usize = 32 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// Channel multiplier of each level: level i has channels × channel_mult[i] channels
        /// and works at 1 / 2^i of the image size (height and width must divide by
        /// 2^(levels - 1)).
        channel_mult: Vec<usize> = vec![1, 2] => 1..=scorelab::config::limits::MAX_CHANNEL_MULT,
        /// Residual blocks per encoder level (the decoder has one more per level).
        blocks_per_level: usize = 1 => 0..=scorelab::config::limits::MAX_LAYERS,
        /// Feature-map heights at which self-attention follows each residual block (the middle
        /// block always has one).
        attention_resolutions: Vec<usize> = vec![8] => 0..=scorelab::config::limits::MAX_SIDE,
        /// Dropout rate inside the residual blocks, in [0, 1); active only while training.
        dropout: f64 = 0.0,
        /// GroupNorm groups; must divide every level's channel count.
        groups: usize = 8 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// `sinusoidal` or `fourier` embedding of c_noise = ln(sigma) / 4.
        embedding_kind: EmbeddingKind = EmbeddingKind::Sinusoidal,
        /// Number of classes to condition on (0: unconditional); must match the data's labels.
        classes: usize = 0 => 0..=scorelab::config::limits::MAX_CLASSES,
    }
}

pub struct UnetArchitecture {
    image: (usize, usize, usize),
    params: UnetParams,
}

/// One residual block, and self-attention after it at the listed resolutions.
struct Stage {
    block: ResBlock,
    attention: Option<SelfAttention>,
}

impl Stage {
    fn forward(
        &self,
        x: &Tensor,
        embedding: &Tensor,
        dropout: &Dropout,
    ) -> candle_core::Result<Tensor> {
        let h = self.block.forward(x, Some(embedding), dropout)?;
        match &self.attention {
            Some(attention) => attention.forward(&h),
            None => Ok(h),
        }
    }
}

pub struct Unet {
    variables: VarMap,
    image: (usize, usize, usize),
    noise: NoiseEmbedding,
    map1: Linear,
    map2: Linear,
    labels: Option<(Embedding, u32)>,
    input: Conv2d,
    down: Vec<Level<Conv2d>>,
    middle: (ResBlock, SelfAttention, ResBlock),
    up: Vec<Level<Upsample>>,
    output_norm: GroupNorm,
    output: Conv2d,
    dropout: Dropout,
}

impl Architecture for UnetArchitecture {
    fn instantiate(&self, device: &Device, rng: &mut Rng) -> candle_core::Result<Instance> {
        let p = &self.params;
        let (image_channels, height, _) = self.image;
        let variables = VarMap::new();
        let v = &variables;
        let width = p.channels;
        let embedding_dim = 4 * width;
        let kind = match p.embedding_kind {
            EmbeddingKind::Sinusoidal => NoiseEmbeddingKind::Sinusoidal,
            EmbeddingKind::Fourier => NoiseEmbeddingKind::Fourier,
        };
        let noise = NoiseEmbedding::new(kind, width, device, rng)?;
        let map1 = init::linear(v, "embedding.map1", width, embedding_dim, device, rng)?;
        let map2 = init::linear(
            v,
            "embedding.map2",
            embedding_dim,
            embedding_dim,
            device,
            rng,
        )?;
        let labels = match p.classes {
            0 => None,
            classes => {
                // nn.Embedding's N(0, 1); the last row is the null label.
                let table = Tensor::from_vec(
                    rng.normal_f32((classes + 1) * embedding_dim),
                    (classes + 1, embedding_dim),
                    device,
                )?;
                let table = init::register(v, "embedding.labels", table)?;
                Some((Embedding::new(table, embedding_dim), classes as u32))
            }
        };
        let input = init::conv2d(v, "input", (image_channels, width), (3, 1, 1), device, rng)?;
        let layers = Layers {
            v,
            p,
            embedding_dim,
            height,
            device,
        };
        let (down, mut skips, channels) = layers.encoder(rng)?;
        let middle = layers.middle(channels, rng)?;
        let (up, channels) = layers.decoder(channels, &mut skips, rng)?;
        let output_norm = norm::group_norm(v, "output.norm", p.groups, channels, device)?;
        let output = init::conv2d(
            v,
            "output.conv",
            (channels, image_channels),
            (3, 1, 1),
            device,
            rng,
        )?;
        let dropout_seed = (rng.uniform() * (1u64 << 53) as f64) as u64;
        let dropout = Dropout::new(p.dropout, Rng::from_seed(dropout_seed))?;
        Ok(Instance::Trainable(Box::new(Unet {
            variables,
            image: self.image,
            noise,
            map1,
            map2,
            labels,
            input,
            down,
            middle,
            up,
            output_norm,
            output,
            dropout,
        })))
    }

    fn classes(&self) -> usize {
        self.params.classes
    }

    /// A rough count (within a small factor; nothing is built): each residual block of a
    /// level with c channels has about 27 c² weights (two 3×3 convolutions, the decoder's
    /// taking the skip's channels too) and E × c for the embedding, each attention 4 c²;
    /// each block keeps about 8 c × h × w activations per example, each attention also its
    /// (h × w)² weights.
    fn footprint(&self) -> Option<Footprint> {
        let p = &self.params;
        let (channels, height, width) = self.image;
        let embedding = 4 * p.channels as u64;
        let mut parameters = embedding * embedding + p.channels as u64 * embedding;
        parameters += (p.classes as u64 + 1) * embedding * (p.classes > 0) as u64;
        parameters += 18 * (channels * p.channels) as u64;
        let mut activations = 0u64;
        let levels = p.channel_mult.len();
        for (level, mult) in p.channel_mult.iter().enumerate() {
            let c = (p.channels * mult) as u64;
            let (h, w) = ((height >> level) as u64, (width >> level) as u64);
            // Encoder and decoder blocks, and the middle's two at the last level.
            let blocks = (2 * p.blocks_per_level + 1 + 2 * (level + 1 == levels) as usize) as u64;
            let attention = p.attention_resolutions.contains(&(height >> level)) as u64;
            let attentions = blocks * attention + (level + 1 == levels) as u64;
            parameters += blocks * (27 * c * c + embedding * c) + attentions * 4 * c * c;
            activations += blocks * 8 * c * h * w + attentions * (h * w * h * w + 4 * c * h * w);
        }
        Some(Footprint {
            parameters,
            activations,
        })
    }
}

/// What building the U-Net's layers shares: where their variables go, the parameters, the
/// embedding width and the image height (for the attention resolutions). Layers are drawn
/// from `rng` in the order they are built, encoder, middle, decoder.
struct Layers<'a> {
    v: &'a VarMap,
    p: &'a UnetParams,
    embedding_dim: usize,
    height: usize,
    device: &'a Device,
}

/// One level of the encoder or decoder: its stages and the resampling after them.
type Level<R> = (Vec<Stage>, Option<R>);

/// The encoder's levels, the skip channels and the channels it ends with.
type Encoder = (Vec<Level<Conv2d>>, Vec<usize>, usize);

impl Layers<'_> {
    /// A residual block from `input` to `output` channels, with attention at the listed
    /// resolutions.
    fn stage(
        &self,
        name: String,
        (input, output): (usize, usize),
        level: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Stage> {
        let (v, p, device) = (self.v, self.p, self.device);
        let block = ResBlock::new(
            v,
            &name,
            (input, output),
            self.embedding_dim,
            p.groups,
            device,
            rng,
        )?;
        let attention = match p.attention_resolutions.contains(&(self.height >> level)) {
            true => Some(SelfAttention::new(
                v,
                &format!("{name}.attention"),
                output,
                p.groups,
                device,
                rng,
            )?),
            false => None,
        };
        Ok(Stage { block, attention })
    }

    /// The encoder's levels, the channel count of every activation the decoder will take
    /// (`skips`), and the channels it ends with.
    fn encoder(&self, rng: &mut Rng) -> candle_core::Result<Encoder> {
        let (p, width) = (self.p, self.p.channels);
        let levels = p.channel_mult.len();
        let mut channels = width;
        let mut skips = vec![channels];
        let mut down = Vec::new();
        for (level, mult) in p.channel_mult.iter().enumerate() {
            let mut stages = Vec::new();
            for block in 0..p.blocks_per_level {
                let name = format!("down{level}.block{block}");
                stages.push(self.stage(name, (channels, width * mult), level, rng)?);
                channels = width * mult;
                skips.push(channels);
            }
            let resample = match level + 1 < levels {
                true => {
                    skips.push(channels);
                    let name = format!("down{level}.downsample");
                    Some(downsample(self.v, &name, channels, self.device, rng)?)
                }
                false => None,
            };
            down.push((stages, resample));
        }
        Ok((down, skips, channels))
    }

    /// The middle: a residual block, self-attention, a residual block.
    fn middle(
        &self,
        channels: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<(ResBlock, SelfAttention, ResBlock)> {
        let (v, groups, device) = (self.v, self.p.groups, self.device);
        let both = (channels, channels);
        let block = |name: &str, rng: &mut Rng| {
            ResBlock::new(v, name, both, self.embedding_dim, groups, device, rng)
        };
        // Drawn in this order: the first block, the attention, the second block.
        let first = block("middle.block0", rng)?;
        let attention = SelfAttention::new(v, "middle.attention", channels, groups, device, rng)?;
        Ok((first, attention, block("middle.block1", rng)?))
    }

    /// The decoder's levels, each block taking one of the encoder's `skips`, and the channels
    /// it ends with.
    fn decoder(
        &self,
        mut channels: usize,
        skips: &mut Vec<usize>,
        rng: &mut Rng,
    ) -> candle_core::Result<(Vec<Level<Upsample>>, usize)> {
        let (p, width) = (self.p, self.p.channels);
        let mut up = Vec::new();
        for (level, mult) in p.channel_mult.iter().enumerate().rev() {
            let mut stages = Vec::new();
            for block in 0..=p.blocks_per_level {
                let skip = skips.pop().expect("one skip activation per decoder block");
                let name = format!("up{level}.block{block}");
                stages.push(self.stage(name, (channels + skip, width * mult), level, rng)?);
                channels = width * mult;
            }
            let resample = match level > 0 {
                true => {
                    let name = format!("up{level}.upsample");
                    Some(Upsample::new(self.v, &name, channels, self.device, rng)?)
                }
                false => None,
            };
            up.push((stages, resample));
        }
        Ok((up, channels))
    }
}

impl Network for Unet {
    fn forward(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (n, dim) = x.dims2()?;
        let (c, h, w) = self.image;
        let mut embedding = self
            .map2
            .forward(&self.map1.forward(&self.noise.forward(sigma)?)?.silu()?)?;
        if let Some((table, null)) = &self.labels {
            let labels = match labels {
                Some(labels) => labels.clone(),
                None => Tensor::full(*null, n, x.device())?,
            };
            embedding = embedding.add(&table.forward(&labels)?)?;
        }
        let embedding = embedding.silu()?;
        let d = &self.dropout;
        let mut h = self.input.forward(&x.reshape((n, c, h, w))?)?;
        let mut skips = vec![h.clone()];
        for (stages, resample) in &self.down {
            for stage in stages {
                h = stage.forward(&h, &embedding, d)?;
                skips.push(h.clone());
            }
            if let Some(resample) = resample {
                h = resample.forward(&h)?;
                skips.push(h.clone());
            }
        }
        let (block0, attention, block1) = &self.middle;
        h = block0.forward(&h, Some(&embedding), d)?;
        h = attention.forward(&h)?;
        h = block1.forward(&h, Some(&embedding), d)?;
        for (stages, resample) in &self.up {
            for stage in stages {
                let skip = skips.pop().expect("one skip activation per decoder block");
                h = stage.forward(&Tensor::cat(&[&h, &skip], 1)?, &embedding, d)?;
            }
            if let Some(resample) = resample {
                h = resample.forward(&h)?;
            }
        }
        let h = self.output.forward(&self.output_norm.forward_silu(&h)?)?;
        h.reshape((n, dim))
    }

    fn set_training(&self, training: bool) {
        self.dropout.set_training(training);
    }

    fn random_state(&self) -> Vec<scorelab::rng::RngState> {
        vec![self.dropout.rng_state()]
    }

    fn restore_random_state(&self, states: &[scorelab::rng::RngState]) -> Result<(), String> {
        match states {
            [state] => self.dropout.restore_rng_state(state),
            _ => Err(format!(
                "the snapshot has {} random stream(s); the U-Net has one (dropout)",
                states.len()
            )),
        }
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

fn build(raw: &RawParams, context: &NetworkContext) -> BuildResult<dyn Architecture> {
    let params = UnetParams::from_raw(raw)?;
    let &[c, h, w] = context.shape else {
        return Err(raw.invalid(
            "kind",
            format!("`unet` needs image data of shape [C, H, W]; the data's items have shape {:?}", context.shape),
            "use an image dataset (e.g. `data: shapes`, `mnist`, `cifar10`, `image_folder`) or a network for points (`network: mlp`)",
        ));
    };
    if params.channels == 0 || !params.channels.is_multiple_of(2) {
        return Err(raw.invalid(
            "channels",
            format!("must be even and at least 2, not {}", params.channels),
            "set e.g. `channels: 32`",
        ));
    }
    if params.channel_mult.is_empty() || params.channel_mult.contains(&0) {
        return Err(raw.invalid(
            "channel_mult",
            format!(
                "needs at least one level and no zero multiplier, got {:?}",
                params.channel_mult
            ),
            "set e.g. `channel_mult: [1, 2]`",
        ));
    }
    let factor = 1usize << (params.channel_mult.len() - 1);
    if h % factor != 0 || w % factor != 0 {
        return Err(raw.invalid(
            "channel_mult",
            format!(
                "{} levels halve the image {} times, but the data's {h}x{w} images do not divide by {factor}",
                params.channel_mult.len(),
                params.channel_mult.len() - 1
            ),
            "use fewer levels or images whose sides divide by 2^(levels - 1)",
        ));
    }
    if params.blocks_per_level == 0 {
        return Err(raw.invalid(
            "blocks_per_level",
            "must be at least 1",
            "set e.g. `blocks_per_level: 1`",
        ));
    }
    if !(0.0..1.0).contains(&params.dropout) {
        return Err(raw.invalid(
            "dropout",
            format!("must be in [0, 1), not {}", params.dropout),
            "set e.g. `dropout: 0.1`",
        ));
    }
    let widths: Vec<usize> = params
        .channel_mult
        .iter()
        .map(|m| params.channels * m)
        .collect();
    if params.groups == 0
        || std::iter::once(params.channels)
            .chain(widths.iter().copied())
            .any(|c| !c.is_multiple_of(params.groups))
    {
        return Err(raw.invalid(
            "groups",
            format!(
                "{} GroupNorm groups must divide every level's channel count ({} and {widths:?})",
                params.groups, params.channels
            ),
            "choose `groups` dividing `channels` × every `channel_mult` entry (e.g. 8 with `channels: 32`)",
        ));
    }
    context.check_classes(raw, "classes", params.classes)?;
    let architecture = UnetArchitecture {
        image: (c, h, w),
        params: params.clone(),
    };
    Ok(Built::new(Box::new(architecture), &params))
}

inventory::submit! {
    Plugin {
        name: "unet",
        about: "noise-conditional U-Net for images (DDPM / NCSN++ style): residual blocks, attention, optional class labels",
        params: UnetParams::docs,
        build: Builder::Network(build),
    }
}
