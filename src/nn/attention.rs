//! Self-attention over the positions of a feature map (DDPM's AttnBlock): group norm, q/k/v by
//! one 1x1 convolution, softmax(qᵀk / sqrt(c)) over the keys, an output 1x1 convolution and a
//! residual connection. One head. On the CPU the attention itself is one op with its own
//! backward ([`crate::nn::attention_op`]); elsewhere candle ops, the softmax
//! `candle_nn::ops::softmax`, which carries gradients (`softmax_last_dim` does not).

use candle_core::{Device, Tensor, D};
use candle_nn::{Module, VarMap};

use crate::nn::attention_op::AttentionOp;
use crate::nn::conv::Conv2d;
use crate::nn::norm::GroupNorm;
use crate::nn::{init, norm};
use crate::rng::Rng;

pub struct SelfAttention {
    norm: GroupNorm,
    qkv: Conv2d,
    output: Conv2d,
    channels: usize,
}

impl SelfAttention {
    /// Parameters under `name.norm`, `name.qkv` (c -> 3c) and `name.output` (c -> c).
    pub fn new(
        variables: &VarMap,
        name: &str,
        channels: usize,
        groups: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        let norm = norm::group_norm(variables, &format!("{name}.norm"), groups, channels, device)?;
        let qkv = init::conv2d(
            variables,
            &format!("{name}.qkv"),
            (channels, 3 * channels),
            (1, 1, 0),
            device,
            rng,
        )?;
        let output = init::conv2d(
            variables,
            &format!("{name}.output"),
            (channels, channels),
            (1, 1, 0),
            device,
            rng,
        )?;
        Ok(Self {
            norm,
            qkv,
            output,
            channels,
        })
    }
}

impl Module for SelfAttention {
    /// x (n, c, h, w) -> x + attention(x), same shape.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let positions = h * w;
        let qkv = self.qkv.forward(&self.norm.forward(x)?)?;
        if crate::nn::path::cpu_kernels(x.device()) {
            let scale = 1.0 / (self.channels as f64).sqrt();
            let attended = qkv
                .reshape((n, 3 * c, positions))?
                .apply_op1(AttentionOp { scale })?
                .reshape((n, c, h, w))?;
            return x + self.output.forward(&attended)?;
        }
        let qkv = qkv.reshape((n, 3, c, positions))?;
        let part = |i: usize| qkv.narrow(1, i, 1)?.reshape((n, c, positions));
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = (q.transpose(1, 2)?.matmul(&k)? / (self.channels as f64).sqrt())?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        // out[:, :, i] = sum_j v[:, :, j] weights[i, j]
        let attended = v.matmul(&weights.transpose(1, 2)?)?.reshape((n, c, h, w))?;
        x + self.output.forward(&attended)?
    }
}
