//! 2D convolution as im2col + gemm, so that training runs at matmul speed on the CPU.
//!
//! candle 0.11's own conv2d backward is slow on the CPU: the input gradient goes through
//! `conv_transpose2d`, a direct loop, and the weight gradient through a large convolution.
//! Here the layer is one custom op over (input, weight, bias) and its three gradients one
//! custom op too (one pass over chunks of items), without a backward of its own (candle
//! detaches gradients, so nothing differentiates them); the kernels are in
//! `crate::nn::conv_kernels` and call gemm on the operands where they lie. The bias is per
//! channel (out,) or per item and channel (n, out): a residual block adds its embedding's
//! projection there instead of in a separate pass over the activation. `conv_timing` in
//! tests/it/conv.rs (ignored; run it with `--ignored --nocapture`) times forward + backward
//! against candle's conv2d. Other devices fall back to candle's `Tensor::conv2d`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};
use candle_nn::Module;

use crate::nn::contiguous;
use crate::nn::conv_kernels;
use crate::nn::im2col::Geometry;

/// The elements of a CPU tensor argument in row-major order (respecting its layout).
fn gather<T: WithDType>(src: &[T], layout: &Layout) -> Vec<T> {
    match layout.contiguous_offsets() {
        Some((start, end)) => src[start..end].to_vec(),
        None => {
            let (dims, strides) = (layout.dims(), layout.stride());
            let count = layout.shape().elem_count();
            let mut values = Vec::with_capacity(count);
            let mut index = vec![0; dims.len()];
            for _ in 0..count {
                let offset: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
                values.push(src[layout.start_offset() + offset]);
                for d in (0..dims.len()).rev() {
                    index[d] += 1;
                    if index[d] < dims[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
            values
        }
    }
}

/// The convolution y = W * x + b, arguments (x, weight, bias).
#[derive(Clone, Copy, Debug)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

/// The weight as a contiguous (out, c·k·k) slice: borrowed when it is one already.
fn weight_rows<'a, T: WithDType>(data: &'a [T], layout: &Layout) -> std::borrow::Cow<'a, [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => std::borrow::Cow::Borrowed(&data[start..end]),
        None => std::borrow::Cow::Owned(gather(data, layout)),
    }
}

/// The bias's entries: (out,) per channel or (n, out) per item and channel.
fn check_bias(bias: &Layout, n: usize, out: usize) -> candle_core::Result<()> {
    match bias.dims() {
        [o] if *o == out => Ok(()),
        [b, o] if *b == n && *o == out => Ok(()),
        dims => candle_core::bail!(
            "conv2d: bias of shape {dims:?} for {n} items and {out} output channels (expected [{out}] or [{n}, {out}])"
        ),
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d_im2col"
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
        let (&[n, c, h, w], &[out, _, k, _]) = (x_layout.dims(), weight_layout.dims()) else {
            candle_core::bail!("conv2d: expected 4D input and weight");
        };
        let g = Geometry::new((n, c, h, w), k, self.stride, self.padding)?;
        check_bias(bias_layout, n, out)?;
        let shape = Shape::from((n, out, g.h_out, g.w_out));
        let result = match (x, weight, bias) {
            (CpuStorage::F32(x), CpuStorage::F32(weight), CpuStorage::F32(bias)) => {
                CpuStorage::F32(conv_kernels::forward(
                    x,
                    x_layout,
                    &weight_rows(weight, weight_layout),
                    &weight_rows(bias, bias_layout),
                    &g,
                    out,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(weight), CpuStorage::F64(bias)) => {
                CpuStorage::F64(conv_kernels::forward(
                    x,
                    x_layout,
                    &weight_rows(weight, weight_layout),
                    &weight_rows(bias, bias_layout),
                    &g,
                    out,
                ))
            }
            _ => candle_core::bail!(
                "conv2d: input, weight and bias must all be f32 or all f64, got {:?}, {:?}, {:?}",
                x.dtype(),
                weight.dtype(),
                bias.dtype()
            ),
        };
        Ok((result, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let (out, _, kernel, _) = weight.dims4()?;
        let bias_len = bias.elem_count();
        // An input no variable flows into (the network's input image) needs no gradient.
        let input_gradient = x.track_op();
        let packed = grad.contiguous()?.apply_op3_no_bwd(
            x,
            &weight.detach(),
            &ConvGrad {
                kernel,
                stride: self.stride,
                padding: self.padding,
                bias_len,
                input_gradient,
            },
        )?;
        let dx_size = if input_gradient { n * c * h * w } else { 0 };
        let dw_size = out * c * kernel * kernel;
        let grad_x = match input_gradient {
            true => Some(packed.narrow(0, 0, dx_size)?.reshape((n, c, h, w))?),
            false => None,
        };
        let grad_weight = packed
            .narrow(0, dx_size, dw_size)?
            .reshape((out, c, kernel, kernel))?;
        let grad_bias = packed
            .narrow(0, dx_size + dw_size, bias_len)?
            .reshape(bias.shape())?;
        Ok((grad_x, Some(grad_weight), Some(grad_bias)))
    }
}

/// The gradients of [`Conv2dOp`], arguments (output gradient, input, weight), packed as one
/// vector [dx, dweight, dbias], dx left out without `input_gradient` (see
/// `crate::nn::conv_kernels::gradients`).
struct ConvGrad {
    kernel: usize,
    stride: usize,
    padding: usize,
    /// Entries of the bias: out, or n·out for a bias per item.
    bias_len: usize,
    input_gradient: bool,
}

impl CustomOp3 for ConvGrad {
    fn name(&self) -> &'static str {
        "conv2d_grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (&[n, c, h, w], &[_, out, _, _]) = (x_layout.dims(), grad_layout.dims()) else {
            candle_core::bail!("conv2d backward: expected 4D input and gradient");
        };
        let g = Geometry::new((n, c, h, w), self.kernel, self.stride, self.padding)?;
        let result = match (grad, x, weight) {
            (CpuStorage::F32(grad), CpuStorage::F32(x), CpuStorage::F32(weight)) => {
                CpuStorage::F32(conv_kernels::gradients(
                    contiguous(grad, grad_layout, "conv2d backward", "gradient")?,
                    x,
                    x_layout,
                    &weight_rows(weight, weight_layout),
                    (self.bias_len, self.input_gradient),
                    &g,
                    out,
                ))
            }
            (CpuStorage::F64(grad), CpuStorage::F64(x), CpuStorage::F64(weight)) => {
                CpuStorage::F64(conv_kernels::gradients(
                    contiguous(grad, grad_layout, "conv2d backward", "gradient")?,
                    x,
                    x_layout,
                    &weight_rows(weight, weight_layout),
                    (self.bias_len, self.input_gradient),
                    &g,
                    out,
                ))
            }
            _ => candle_core::bail!(
                "conv2d backward: f32 or f64 only, all alike (gradient is {:?})",
                grad.dtype()
            ),
        };
        let dx_size = if self.input_gradient {
            n * c * h * w
        } else {
            0
        };
        let count = dx_size + out * g.rows() + self.bias_len;
        Ok((result, Shape::from(count)))
    }
}

/// Convolution of `x` (n, c, h, w) with `weight` (out, c, k, k) and an optional `bias`, per
/// channel (out,) or per item and channel (n, out): im2col + gemm on the CPU, candle's `conv2d`
/// elsewhere. Output (n, out, h_out, w_out), contiguous.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (out, c_weight, k, k_w) = weight.dims4()?;
    if c != c_weight || k != k_w {
        candle_core::bail!(
            "conv2d: input has {c} channels, weight is {:?} (expected (out, {c}, k, k))",
            weight.dims()
        );
    }
    Geometry::new((n, c, h, w), k, stride, padding)?;
    let bias_shape = match bias.map(|b| b.dims()) {
        None => (1, out, 1, 1),
        Some(&[o]) if o == out => (1, out, 1, 1),
        Some(&[b, o]) if b == n && o == out => (n, out, 1, 1),
        Some(dims) => candle_core::bail!(
            "conv2d: bias of shape {dims:?} for {n} items and {out} output channels (expected [{out}] or [{n}, {out}])"
        ),
    };
    if crate::nn::path::cpu_kernels(x.device()) {
        let zeros;
        let bias = match bias {
            Some(bias) => bias,
            None => {
                zeros = Tensor::zeros(out, weight.dtype(), weight.device())?;
                &zeros
            }
        };
        x.apply_op3(weight, bias, Conv2dOp { stride, padding })
    } else {
        let y = x.conv2d(weight, padding, stride, 1, 1)?;
        match bias {
            Some(bias) => y.broadcast_add(&bias.reshape(bias_shape)?),
            None => Ok(y),
        }
    }
}

/// A 2D convolution layer with a square kernel (see [`conv2d`]); build one with
/// [`crate::nn::init::conv2d`].
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// `weight` (out, in, k, k), `bias` (out,).
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Self> {
        let (out, _, k, k_w) = weight.dims4()?;
        if k != k_w {
            candle_core::bail!("Conv2d: kernels must be square, got {k}x{k_w}");
        }
        if let Some(bias) = &bias {
            if bias.dims() != [out] {
                candle_core::bail!(
                    "Conv2d: bias of shape {:?} for {out} output channels",
                    bias.dims()
                );
            }
        }
        if stride == 0 {
            candle_core::bail!("Conv2d: stride must be at least 1");
        }
        Ok(Self {
            weight,
            bias,
            stride,
            padding,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Conv2d {
    /// The convolution with `shift` (n, out) added to each item's channels (on top of the
    /// bias), in the same pass: a residual block's embedding projection.
    pub fn forward_shifted(&self, x: &Tensor, shift: &Tensor) -> candle_core::Result<Tensor> {
        let bias = match &self.bias {
            Some(bias) => shift.broadcast_add(bias)?,
            None => shift.clone(),
        };
        conv2d(x, &self.weight, Some(&bias), self.stride, self.padding)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        conv2d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
        )
    }
}
