//! Group normalisation that trains, and trains fast. candle's fast LayerNorm drops gradients;
//! its GroupNorm trains, but its per-channel scale and shift get their gradients through a
//! reduction over the batch and both spatial axes at once, which candle runs on a slow strided
//! path (~10 ms for a 64 x 32 x 16 x 16 batch, against 0.1 ms for the same sum taken axis by
//! axis, last axes first). Here the normalisation is candle ops reducing over the last axis
//! only, and the scale and shift are one custom op ([`ChannelAffine`]) whose backward sums the
//! spatial axes first.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor, WithDType};
use candle_nn::{Module, VarMap};

use crate::nn::init::constant_variable;

/// PyTorch's GroupNorm eps.
pub const GROUP_NORM_EPS: f64 = 1e-5;

/// y[b, c, ...] = x[b, c, ...] · weight[c] + bias[c] for x of shape (n, channels, ...).
#[derive(Clone, Copy, Debug)]
pub struct ChannelAffine;

fn contiguous<'a, T>(
    (data, layout): (&'a [T], &Layout),
    what: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("channel affine: the {what} must be contiguous"),
    }
}

fn affine<T: WithDType>(
    x: (&[T], &Layout),
    weight: (&[T], &Layout),
    bias: (&[T], &Layout),
) -> candle_core::Result<Vec<T>> {
    let (x_data, weight_data, bias_data) = (
        contiguous(x, "input")?,
        contiguous(weight, "weight")?,
        contiguous(bias, "bias")?,
    );
    let dims = x.1.dims();
    let channels = dims[1];
    let rest: usize = dims[2..].iter().product();
    let mut y = Vec::with_capacity(x_data.len());
    for item in x_data.chunks_exact(channels * rest) {
        for ((plane, &w), &b) in item.chunks_exact(rest).zip(weight_data).zip(bias_data) {
            y.extend(plane.iter().map(|&v| v * w + b));
        }
    }
    Ok(y)
}

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel_affine"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = x_layout.dims();
        if dims.len() < 2 || weight_layout.dims() != [dims[1]] || bias_layout.dims() != [dims[1]] {
            candle_core::bail!(
                "channel affine: input {dims:?} needs weight and bias of shape [channels], got {:?} and {:?}",
                weight_layout.dims(),
                bias_layout.dims()
            );
        }
        let result = match (x, weight, bias) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                CpuStorage::F32(affine((x, x_layout), (w, weight_layout), (b, bias_layout))?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                CpuStorage::F64(affine((x, x_layout), (w, weight_layout), (b, bias_layout))?)
            }
            _ => candle_core::bail!(
                "channel affine: f32 or f64 only, all alike (input is {:?})",
                x.dtype()
            ),
        };
        Ok((result, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, channels) = (x.dim(0)?, x.dim(1)?);
        let mut shape = vec![1; x.rank()];
        shape[1] = channels;
        let grad_x = grad.broadcast_mul(&weight.reshape(shape)?)?;
        let per_channel = |t: &Tensor| t.reshape((n, channels, ()))?.sum(2)?.sum(0);
        let grad_weight = per_channel(&grad.mul(x)?)?;
        let grad_bias = per_channel(grad)?;
        Ok((Some(grad_x), Some(grad_weight), Some(grad_bias)))
    }
}

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

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let grouped = x.reshape((n, self.groups, ()))?;
        let size = grouped.dim(2)? as f64;
        let centred = grouped.broadcast_sub(&(grouped.sum_keepdim(2)? / size)?)?;
        let variance = (centred.sqr()?.sum_keepdim(2)? / size)?;
        let normed = centred
            .broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .reshape(x.shape())?;
        if normed.device().is_cpu() {
            normed.apply_op3(&self.weight, &self.bias, ChannelAffine)
        } else {
            let mut shape = vec![1; x.rank()];
            shape[1] = self.weight.dim(0)?;
            normed
                .broadcast_mul(&self.weight.reshape(shape.clone())?)?
                .broadcast_add(&self.bias.reshape(shape)?)
        }
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
