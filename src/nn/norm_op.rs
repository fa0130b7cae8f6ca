//! Group normalisation with its scale and shift, optionally followed by SiLU, as one custom op
//! with its own backward ([`GroupNormOp`]), for the CPU.
//!
//! Built from candle ops the layer is a dozen full passes over the activation forward and more
//! than twice that backward (each with a fresh buffer, and candle's zeros + add per gradient
//! edge); here the forward is two passes (statistics, then the normalised, scaled, shifted and
//! activated output) and the backward three, all per (item, group) block, which stays in cache.
//! For x of shape (n, channels, ...) and groups of channels / groups consecutive channels:
//!
//!   x̂ = (x − μ) · r,  r = 1 / sqrt(σ² + eps),  u = x̂ · w[c] + b[c],  y = u or silu(u),
//!
//! μ and σ² (biased) over the group's channels and positions, sums taken in f64 (the
//! backward's sums over one channel's positions in the input's type). The backward
//! recomputes μ and r from x (cheaper than keeping them) and gives, with g = dL/du (dL/dy ·
//! silu'(u) where activated), dw[c] = Σ g·x̂, db[c] = Σ g and
//! dx = r · (g·w − mean(g·w) − x̂ · mean(g·w·x̂)), the means over the group.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};

use crate::nn::contiguous;
use crate::nn::simd::multiversion;

/// The float types the kernels run on.
pub(crate) trait Real: WithDType {
    fn exp(self) -> Self;
    /// e^x for the normalisation's SiLU: branch-free (so loops over it vectorise) with a
    /// relative error below 3e-7 (2.5 ulp) for f32; the library's exp for f64.
    fn fast_exp(self) -> Self;
}

impl Real for f32 {
    fn exp(self) -> Self {
        f32::exp(self)
    }

    #[inline(always)]
    fn fast_exp(self) -> Self {
        fast_exp_f32(self)
    }
}

impl Real for f64 {
    fn exp(self) -> Self {
        f64::exp(self)
    }

    #[inline(always)]
    fn fast_exp(self) -> Self {
        f64::exp(self)
    }
}

/// e^x = 2^n · e^r with n = round(x / ln 2) and |r| <= ln 2 / 2, e^r by its degree-6 Taylor
/// polynomial (Horner; truncation error below 2e-8 there), 2^n put into the exponent bits. x
/// is clamped to [-87, 88], where 2^n stays a normal float (e^-87 ≈ 1.6e-38, so SiLU's
/// e^-u for u > 87 underflows harmlessly to nearly 0 instead of exactly 0).
#[inline(always)]
pub fn fast_exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a branch.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n sits in the low mantissa bits of `shifted` (an integer offset from ROUND's bits):
    // integer arithmetic on the bits gives 2^n and vectorises, where `n as i32` (saturating,
    // NaN to 0) became a scalar conversion per lane.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

/// y = GroupNorm(x) · weight + bias, then SiLU when `silu`; arguments (x, weight, bias), x of
/// shape (n, channels, ...) contiguous, weight and bias of shape (channels,).
#[derive(Clone, Copy, Debug)]
pub struct GroupNormOp {
    pub groups: usize,
    pub eps: f64,
    pub silu: bool,
}

/// The gradients of [`GroupNormOp`], arguments (x, output gradient, weight and bias
/// concatenated), packed as one vector [dx, dweight, dbias].
#[derive(Clone, Copy, Debug)]
struct GroupNormGrad {
    op: GroupNormOp,
}

/// (n, channels, positions per channel) of an activation of shape `dims`.
fn geometry(dims: &[usize], groups: usize) -> candle_core::Result<(usize, usize, usize)> {
    if dims.len() < 2 {
        candle_core::bail!("group norm: expected an (n, channels, ...) input, got {dims:?}");
    }
    let (n, channels) = (dims[0], dims[1]);
    if groups == 0 || !channels.is_multiple_of(groups) {
        candle_core::bail!("group norm: {groups} groups do not divide {channels} channels");
    }
    Ok((n, channels, dims[2..].iter().product()))
}

/// Mean and 1 / sqrt(variance + eps) of one group's values (two passes, f64 sums in
/// independent lanes so that the loops vectorise).
#[inline(always)]
fn statistics<T: Real>(block: &[T], eps: f64) -> (f64, f64) {
    const LANES: usize = 8;
    let lane_sum = |f: &dyn Fn(T) -> f64| -> f64 {
        let mut lanes = [0f64; LANES];
        let whole = block.len() / LANES * LANES;
        for chunk in block[..whole].chunks_exact(LANES) {
            for l in 0..LANES {
                lanes[l] += f(chunk[l]);
            }
        }
        lanes.iter().sum::<f64>() + block[whole..].iter().map(|&v| f(v)).sum::<f64>()
    };
    let count = block.len() as f64;
    let mean = lane_sum(&|v| v.to_f64()) / count;
    let variance = lane_sum(&|v| {
        let d = v.to_f64() - mean;
        d * d
    }) / count;
    (mean, 1.0 / (variance + eps).sqrt())
}

/// Σg and Σg·x̂ over one channel (x̂ = (x − mean)·rstd), in LANES independent accumulators
/// so that the loop vectorises, added up in f64.
#[inline(always)]
fn sums<T: Real>(g: &[T], x: &[T], mean: T, rstd: T) -> (f64, f64) {
    const LANES: usize = 8;
    let (mut plain, mut weighted) = ([T::zero(); LANES], [T::zero(); LANES]);
    let whole = g.len() / LANES * LANES;
    for (g, x) in g[..whole]
        .chunks_exact(LANES)
        .zip(x[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            plain[l] += g[l];
            weighted[l] += g[l] * ((x[l] - mean) * rstd);
        }
    }
    let mut totals = (0f64, 0f64);
    for l in 0..LANES {
        totals.0 += plain[l].to_f64();
        totals.1 += weighted[l].to_f64();
    }
    for (&g, &x) in g[whole..].iter().zip(&x[whole..]) {
        totals.0 += g.to_f64();
        totals.1 += (g * ((x - mean) * rstd)).to_f64();
    }
    totals
}

#[inline(always)]
fn sigmoid<T: Real>(u: T) -> T {
    T::one() / (T::one() + (T::zero() - u).fast_exp())
}

multiversion! {
    fn forward<T: Real>(
        x: &[T],
        weight: &[T],
        bias: &[T],
        dims: &[usize],
        op: &GroupNormOp,
    ) -> Vec<T> = forward_body;
}

#[inline(always)]
fn forward_body<T: Real>(
    x: &[T],
    weight: &[T],
    bias: &[T],
    dims: &[usize],
    op: &GroupNormOp,
) -> Vec<T> {
    let (_, channels, positions) = geometry(dims, op.groups).expect("checked by cpu_fwd");
    let per_group = channels / op.groups;
    let mut y = Vec::with_capacity(x.len());
    for (index, block) in x.chunks_exact(per_group * positions).enumerate() {
        let (mean, rstd) = statistics(block, op.eps);
        let first = (index % op.groups) * per_group;
        for (offset, plane) in block.chunks_exact(positions).enumerate() {
            let c = first + offset;
            let scale = rstd * weight[c].to_f64();
            let (scale, shift) = (
                T::from_f64(scale),
                T::from_f64(bias[c].to_f64() - mean * scale),
            );
            if op.silu {
                y.extend(plane.iter().map(|&v| {
                    let u = v * scale + shift;
                    u * sigmoid(u)
                }));
            } else {
                y.extend(plane.iter().map(|&v| v * scale + shift));
            }
        }
    }
    y
}

multiversion! {
    /// [dx, dweight, dbias] for input `x`, output gradient `grad`, and `affine` = [weight, bias].
    fn backward<T: Real>(
        x: &[T],
        grad: &[T],
        affine: &[T],
        dims: &[usize],
        op: &GroupNormOp,
    ) -> Vec<T> = backward_body;
}

#[inline(always)]
fn backward_body<T: Real>(
    x: &[T],
    grad: &[T],
    affine: &[T],
    dims: &[usize],
    op: &GroupNormOp,
) -> Vec<T> {
    let (_, channels, positions) = geometry(dims, op.groups).expect("checked by cpu_fwd");
    let (weight, bias) = affine.split_at(channels);
    let per_group = channels / op.groups;
    let block_size = per_group * positions;
    let mut out = vec![T::zero(); x.len() + 2 * channels];
    let (dx, rest) = out.split_at_mut(x.len());
    let mut dweight = vec![0f64; channels];
    let mut dbias = vec![0f64; channels];
    for (index, ((block, upstream), dx)) in x
        .chunks_exact(block_size)
        .zip(grad.chunks_exact(block_size))
        .zip(dx.chunks_exact_mut(block_size))
        .enumerate()
    {
        let (mean, rstd) = statistics(block, op.eps);
        let (mean, rstd) = (T::from_f64(mean), T::from_f64(rstd));
        let first = (index % op.groups) * per_group;
        let one = T::one();
        // dx holds g = dL/du for now. Per channel Σg (= dbias) and Σg·x̂ (= dweight); over
        // the group Σg·w = Σ_c w·Σg and Σg·w·x̂ = Σ_c w·Σg·x̂ (in f64).
        let (mut sum, mut sum_xhat) = (0f64, 0f64);
        for (offset, ((plane, up), out)) in block
            .chunks_exact(positions)
            .zip(upstream.chunks_exact(positions))
            .zip(dx.chunks_exact_mut(positions))
            .enumerate()
        {
            let c = first + offset;
            let (w, b) = (weight[c], bias[c]);
            // Element by element, no sums, so that it vectorises.
            if op.silu {
                for ((&v, &g), out) in plane.iter().zip(up).zip(out.iter_mut()) {
                    let u = (v - mean) * rstd * w + b;
                    let s = sigmoid(u);
                    *out = g * s * (one + u * (one - s));
                }
            } else {
                out.copy_from_slice(up);
            }
            let (db, dw) = sums(out, plane, mean, rstd);
            dweight[c] += dw;
            dbias[c] += db;
            sum += w.to_f64() * db;
            sum_xhat += w.to_f64() * dw;
        }
        let count = block_size as f64;
        let (mean_g, mean_gx) = (T::from_f64(sum / count), T::from_f64(sum_xhat / count));
        for (offset, (plane, out)) in block
            .chunks_exact(positions)
            .zip(dx.chunks_exact_mut(positions))
            .enumerate()
        {
            let w = weight[first + offset];
            for (&v, out) in plane.iter().zip(out.iter_mut()) {
                let xhat = (v - mean) * rstd;
                *out = rstd * (*out * w - mean_g - xhat * mean_gx);
            }
        }
    }
    for (slot, value) in rest.iter_mut().zip(dweight.iter().chain(&dbias)) {
        *slot = T::from_f64(*value);
    }
    out
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group_norm"
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
        let (_, channels, _) = geometry(dims, self.groups)?;
        if weight_layout.dims() != [channels] || bias_layout.dims() != [channels] {
            candle_core::bail!(
                "group norm: input {dims:?} needs weight and bias of shape [{channels}], got {:?} and {:?}",
                weight_layout.dims(),
                bias_layout.dims()
            );
        }
        let result = match (x, weight, bias) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                CpuStorage::F32(forward(
                    contiguous(x, x_layout, "group norm", "input")?,
                    contiguous(w, weight_layout, "group norm", "weight")?,
                    contiguous(b, bias_layout, "group norm", "bias")?,
                    dims,
                    self,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                CpuStorage::F64(forward(
                    contiguous(x, x_layout, "group norm", "input")?,
                    contiguous(w, weight_layout, "group norm", "weight")?,
                    contiguous(b, bias_layout, "group norm", "bias")?,
                    dims,
                    self,
                ))
            }
            _ => candle_core::bail!(
                "group norm: f32 or f64 only, all alike (input is {:?})",
                x.dtype()
            ),
        };
        Ok((result, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let channels = weight.dim(0)?;
        let size = x.elem_count();
        let affine = Tensor::cat(&[weight.detach(), bias.detach()], 0)?;
        let packed =
            x.apply_op3_no_bwd(&grad.contiguous()?, &affine, &GroupNormGrad { op: *self })?;
        let dx = packed.narrow(0, 0, size)?.reshape(x.shape())?;
        let dweight = packed.narrow(0, size, channels)?;
        let dbias = packed.narrow(0, size + channels, channels)?;
        Ok((Some(dx), Some(dweight), Some(dbias)))
    }
}

impl CustomOp3 for GroupNormGrad {
    fn name(&self) -> &'static str {
        "group_norm_grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
        affine: &CpuStorage,
        affine_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = x_layout.dims();
        let (_, channels, _) = geometry(dims, self.op.groups)?;
        if grad_layout.dims() != dims || affine_layout.dims() != [2 * channels] {
            candle_core::bail!(
                "group norm backward: gradient {:?} and affine {:?} for input {dims:?}",
                grad_layout.dims(),
                affine_layout.dims()
            );
        }
        let result = match (x, grad, affine) {
            (CpuStorage::F32(x), CpuStorage::F32(g), CpuStorage::F32(a)) => {
                CpuStorage::F32(backward(
                    contiguous(x, x_layout, "group norm", "input")?,
                    contiguous(g, grad_layout, "group norm", "gradient")?,
                    contiguous(a, affine_layout, "group norm", "weight")?,
                    dims,
                    &self.op,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(g), CpuStorage::F64(a)) => {
                CpuStorage::F64(backward(
                    contiguous(x, x_layout, "group norm", "input")?,
                    contiguous(g, grad_layout, "group norm", "gradient")?,
                    contiguous(a, affine_layout, "group norm", "weight")?,
                    dims,
                    &self.op,
                ))
            }
            _ => candle_core::bail!(
                "group norm backward: f32 or f64 only, all alike (input is {:?})",
                x.dtype()
            ),
        };
        let count = x_layout.shape().elem_count() + 2 * channels;
        Ok((result, Shape::from(count)))
    }
}
