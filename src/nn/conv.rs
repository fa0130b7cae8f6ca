//! 2D convolution as im2col + matmul, so that training runs at matmul speed on the CPU.
//!
//! candle 0.11's own conv2d backward is slow on the CPU: the input gradient goes through
//! `conv_transpose2d`, a direct loop, and the weight gradient through a large convolution. Here
//! [`Im2Col`] unfolds the input (n, c, h, w) into columns (c·k·k, n·h_out·w_out) (the layout of
//! Caffe's im2col with the batch folded into the columns), so the convolution is ONE matmul of
//! the weight (out, c·k·k) with the columns, and both gradients are single matmuls too (candle's
//! matmul autograd). The gradient of the columns goes back to the input through [`Col2Im`], the
//! adjoint of im2col (a scatter-add), whose own gradient is im2col again. Other devices fall
//! back to candle's `Tensor::conv2d`.

use std::time::{Duration, Instant};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor, Var, WithDType};
use candle_nn::Module;

use crate::rng::Rng;

/// Geometry of one square convolution: input (n, c, h, w), output (h_out, w_out).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    h_out: usize,
    w_out: usize,
}

impl Geometry {
    fn new(
        dims: (usize, usize, usize, usize),
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Self> {
        let (n, c, h, w) = dims;
        if kernel == 0 || stride == 0 {
            candle_core::bail!(
                "conv2d: kernel ({kernel}) and stride ({stride}) must be at least 1"
            );
        }
        if h + 2 * padding < kernel || w + 2 * padding < kernel {
            candle_core::bail!(
                "conv2d: input {h}x{w} with padding {padding} is smaller than the kernel {kernel}"
            );
        }
        let h_out = (h + 2 * padding - kernel) / stride + 1;
        let w_out = (w + 2 * padding - kernel) / stride + 1;
        Ok(Self {
            n,
            c,
            h,
            w,
            kernel,
            stride,
            padding,
            h_out,
            w_out,
        })
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    fn rows(&self) -> usize {
        self.c * self.kernel * self.kernel
    }

    /// Columns of the column matrix: one per (item, output row, output column).
    fn columns(&self) -> usize {
        self.n * self.h_out * self.w_out
    }

    /// The output columns `ox` whose input column ox·stride + offset - padding lies inside the
    /// image, for kernel column `offset` (the same formula gives the valid output rows).
    fn valid(&self, offset: usize, size: usize, out: usize) -> (usize, usize) {
        let s = self.stride;
        let low = if offset >= self.padding {
            0
        } else {
            (self.padding - offset).div_ceil(s)
        };
        let high = if size + self.padding > offset {
            ((size + self.padding - offset - 1) / s + 1).min(out)
        } else {
            0
        };
        (low.min(high), high)
    }
}

/// Unfolds (n, c, h, w) into columns (c·k·k, n·h_out·w_out): row (ci·k + ki)·k + kj, column
/// (b·h_out + oy)·w_out + ox holds x[b, ci, oy·stride + ki - padding, ox·stride + kj - padding]
/// (zero outside the image). The rows follow a (out, c, k, k) weight's memory order.
#[derive(Clone, Copy, Debug)]
pub struct Im2Col {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// The adjoint of [`Im2Col`] for an input of shape (batch, channels, height, width): sums each
/// column entry back into the pixel it was copied from.
#[derive(Clone, Copy, Debug)]
pub struct Col2Im {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

fn im2col<T: WithDType>(src: &[T], layout: &Layout, g: &Geometry) -> Vec<T> {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let per_item = g.h_out * g.w_out;
    let columns = g.columns();
    let stride = layout.stride();
    let (s0, s1, s2, s3) = (stride[0], stride[1], stride[2], stride[3]);
    let offset = layout.start_offset();
    let mut dst = vec![T::zero(); g.rows() * columns];
    for ci in 0..g.c {
        for ki in 0..k {
            let (oy_low, oy_high) = g.valid(ki, g.h, g.h_out);
            for kj in 0..k {
                let (ox_low, ox_high) = g.valid(kj, g.w, g.w_out);
                let row = ((ci * k + ki) * k + kj) * columns;
                for b in 0..g.n {
                    for oy in oy_low..oy_high {
                        let iy = oy * s + ki - p;
                        let base = offset + b * s0 + ci * s1 + iy * s2;
                        let out = &mut dst[row + b * per_item + oy * g.w_out..][..g.w_out];
                        if s == 1 && s3 == 1 {
                            let start = base + ox_low + kj - p;
                            out[ox_low..ox_high]
                                .copy_from_slice(&src[start..start + ox_high - ox_low]);
                        } else {
                            for (ox, value) in out.iter_mut().enumerate().take(ox_high).skip(ox_low)
                            {
                                *value = src[base + (ox * s + kj - p) * s3];
                            }
                        }
                    }
                }
            }
        }
    }
    dst
}

fn col2im<T: WithDType>(src: &[T], layout: &Layout, g: &Geometry) -> Vec<T> {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let per_item = g.h_out * g.w_out;
    let (row_stride, column_stride) = (layout.stride()[0], layout.stride()[1]);
    let offset = layout.start_offset();
    let mut dst = vec![T::zero(); g.n * g.c * g.h * g.w];
    for ci in 0..g.c {
        for ki in 0..k {
            let (oy_low, oy_high) = g.valid(ki, g.h, g.h_out);
            for kj in 0..k {
                let (ox_low, ox_high) = g.valid(kj, g.w, g.w_out);
                let row = offset + ((ci * k + ki) * k + kj) * row_stride;
                for b in 0..g.n {
                    for oy in oy_low..oy_high {
                        let iy = oy * s + ki - p;
                        let image = &mut dst[((b * g.c + ci) * g.h + iy) * g.w..][..g.w];
                        let first = row + (b * per_item + oy * g.w_out) * column_stride;
                        if s == 1 && column_stride == 1 {
                            let values = &src[first + ox_low..first + ox_high];
                            let start = ox_low + kj - p;
                            for (pixel, value) in
                                image[start..start + values.len()].iter_mut().zip(values)
                            {
                                *pixel += *value;
                            }
                        } else {
                            for ox in ox_low..ox_high {
                                image[ox * s + kj - p] += src[first + ox * column_stride];
                            }
                        }
                    }
                }
            }
        }
    }
    dst
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = match layout.dims() {
            &[n, c, h, w] => (n, c, h, w),
            other => {
                candle_core::bail!("im2col: expected an (n, c, h, w) input, got shape {other:?}")
            }
        };
        let g = Geometry::new(dims, self.kernel, self.stride, self.padding)?;
        let shape = Shape::from((g.rows(), g.columns()));
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(im2col(src, layout, &g)),
            CpuStorage::F64(src) => CpuStorage::F64(im2col(src, layout, &g)),
            other => candle_core::bail!(
                "im2col: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, shape))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (batch, channels, height, width) = arg.dims4()?;
        let adjoint = Col2Im {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            batch,
            channels,
            height,
            width,
        };
        Ok(Some(grad_res.apply_op1(adjoint)?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = (self.batch, self.channels, self.height, self.width);
        let g = Geometry::new(dims, self.kernel, self.stride, self.padding)?;
        if layout.dims() != [g.rows(), g.columns()] {
            candle_core::bail!(
                "col2im: expected columns of shape [{}, {}], got {:?}",
                g.rows(),
                g.columns(),
                layout.dims()
            );
        }
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(col2im(src, layout, &g)),
            CpuStorage::F64(src) => CpuStorage::F64(col2im(src, layout, &g)),
            other => candle_core::bail!(
                "col2im: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, Shape::from(dims)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let unfold = Im2Col {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        };
        Ok(Some(grad_res.apply_op1(unfold)?))
    }
}

/// Convolution of `x` (n, c, h, w) with `weight` (out, c, k, k) and an optional `bias` (out,):
/// im2col + matmul on the CPU, candle's `conv2d` elsewhere. Output (n, out, h_out, w_out).
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
    let y = if x.device().is_cpu() {
        let g = Geometry::new((n, c, h, w), k, stride, padding)?;
        let columns = x.apply_op1(Im2Col {
            kernel: k,
            stride,
            padding,
        })?;
        let y = weight.reshape((out, g.rows()))?.matmul(&columns)?;
        y.reshape((out, n, g.h_out, g.w_out))?.transpose(0, 1)?
    } else {
        x.conv2d(weight, padding, stride, 1, 1)?
    };
    match bias {
        // The broadcast add also makes the transposed product contiguous.
        Some(bias) => y.broadcast_add(&bias.reshape((1, out, 1, 1))?),
        None => y.contiguous(),
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

/// Mean time of one forward + backward pass (loss = sum of squares of the output) of a
/// `kernel`x`kernel` convolution, stride 1, padding kernel / 2, batch `batch`, `channels_in` ->
/// `channels_out`, on `size`x`size` images, over `repeats` passes after one warm-up: with
/// im2col + matmul (`candle: false`) or candle's own `Tensor::conv2d` (`candle: true`).
/// Threads follow RAYON_NUM_THREADS.
pub fn time_forward_backward(
    candle: bool,
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    size: usize,
    kernel: usize,
    repeats: usize,
) -> candle_core::Result<Duration> {
    let device = Device::Cpu;
    let mut rng = Rng::from_seed(0);
    let mut variable = |shape: &[usize]| -> candle_core::Result<Var> {
        let count = shape.iter().product();
        Var::from_tensor(&Tensor::from_vec(rng.normal_f32(count), shape, &device)?)
    };
    let x = variable(&[batch, channels_in, size, size])?;
    let weight = variable(&[channels_out, channels_in, kernel, kernel])?;
    let bias = variable(&[channels_out])?;
    let padding = kernel / 2;
    let pass = || -> candle_core::Result<()> {
        let y = if candle {
            x.as_tensor()
                .conv2d(weight.as_tensor(), padding, 1, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, channels_out, 1, 1))?)?
        } else {
            conv2d(
                x.as_tensor(),
                weight.as_tensor(),
                Some(bias.as_tensor()),
                1,
                padding,
            )?
        };
        let grads = y.sqr()?.sum_all()?.backward()?;
        for var in [&x, &weight, &bias] {
            if grads.get(var.as_tensor()).is_none() {
                candle_core::bail!("conv2d timing: a variable got no gradient");
            }
        }
        Ok(())
    };
    pass()?;
    let start = Instant::now();
    for _ in 0..repeats {
        pass()?;
    }
    Ok(start.elapsed() / repeats.max(1) as u32)
}
