//! Group normalisation that trains, and trains fast. candle's fast LayerNorm drops gradients;
//! its GroupNorm trains, but as a dozen candle ops forward and more backward, its scale and
//! shift gradients on a slow strided reduction. On the CPU the layer here is one custom op with
//! its own backward ([`crate::nn::norm_op::GroupNormOp`]), optionally fused with the SiLU that
//! follows it in residual blocks; on other devices it is candle ops.

use candle_core::Device;
use candle_core::Tensor;
use candle_nn::{Module, VarMap};

use crate::nn::init::constant_variable;
use crate::nn::norm_op::GroupNormOp;

/// PyTorch's GroupNorm eps.
pub const GROUP_NORM_EPS: f64 = 1e-5;

/// Group normalisation of (n, channels, ...) with a learned per-channel scale and shift.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// `weight` and `bias` of shape (channels,); `groups` must divide the channels.
    pub fn new(weight: Tensor, bias: Tensor, groups: usize, eps: f64) -> candle_core::Result<Self> {
        let channels = weight.dim(0)?;
        if groups == 0 || !channels.is_multiple_of(groups) || bias.dims() != weight.dims() {
            candle_core::bail!(
                "GroupNorm: {groups} groups for {channels} channels (bias {:?})",
                bias.dims()
            );
        }
        Ok(Self {
            weight,
            bias,
            groups,
            eps,
        })
    }
}

impl GroupNorm {
    /// silu(GroupNorm(x)), in one pass on the CPU.
    pub fn forward_silu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(x, true)
    }

    fn apply(&self, x: &Tensor, silu: bool) -> candle_core::Result<Tensor> {
        if crate::nn::path::cpu_kernels(x.device()) {
            let op = GroupNormOp {
                groups: self.groups,
                eps: self.eps,
                silu,
            };
            return x.contiguous()?.apply_op3(&self.weight, &self.bias, op);
        }
        let n = x.dim(0)?;
        let grouped = x.reshape((n, self.groups, ()))?;
        let size = grouped.dim(2)? as f64;
        let centred = grouped.broadcast_sub(&(grouped.sum_keepdim(2)? / size)?)?;
        let variance = (centred.sqr()?.sum_keepdim(2)? / size)?;
        let normed = centred
            .broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .reshape(x.shape())?;
        let mut shape = vec![1; x.rank()];
        shape[1] = self.weight.dim(0)?;
        let y = normed
            .broadcast_mul(&self.weight.reshape(shape.clone())?)?
            .broadcast_add(&self.bias.reshape(shape)?)?;
        if silu {
            y.silu()
        } else {
            Ok(y)
        }
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(x, false)
    }
}

/// Group normalisation over (n, channels, ...) with a learned per-channel scale (1) and shift
/// (0), registered as `name.weight` and `name.bias`. `groups` must divide `channels`.
pub fn group_norm(
    variables: &VarMap,
    name: &str,
    groups: usize,
    channels: usize,
    device: &Device,
) -> candle_core::Result<GroupNorm> {
    if groups == 0 || !channels.is_multiple_of(groups) {
        candle_core::bail!(
            "group_norm `{name}`: {groups} groups do not divide {channels} channels"
        );
    }
    let weight = constant_variable(variables, &format!("{name}.weight"), channels, 1.0, device)?;
    let bias = constant_variable(variables, &format!("{name}.bias"), channels, 0.0, device)?;
    GroupNorm::new(weight, bias, groups, GROUP_NORM_EPS)
}
