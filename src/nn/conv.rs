//! 2D convolution as im2col + matmul, so that training runs at matmul speed on the CPU.
//!
//! candle 0.11's own conv2d backward is slow on the CPU: the input gradient goes through
//! `conv_transpose2d`, a direct loop, and the weight gradient through a large convolution.
//! Here the forward pass unfolds the input into columns (see [`crate::nn::im2col`]) and
//! multiplies them by the weight (out, c·k·k); the backward pass gives the weight gradient as
//! the output gradient times the columns (unfolded again rather than kept: they are k² times
//! the input) and the input gradient as col2im of the weight times the output gradient. Each
//! pass works on a few items at a time, so that the columns of a chunk (about 1 MB) stay in
//! cache and no columns-sized buffer is ever allocated. The layer is one custom op over
//! (input, weight, bias); its gradients are custom ops too, without a backward of their own
//! (candle detaches gradients, so nothing differentiates them). Forward + backward of a 3x3
//! conv, batch 64, 32 -> 32 channels, 16x16, one thread (`time_forward_backward` in tests/it/conv.rs): 38–90 ms
//! against 120–440 ms for candle's conv2d on the shared 2-core machine (3–5x; the spread is
//! its load). Other devices fall back to candle's `Tensor::conv2d`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Device, Layout, Shape, Tensor, WithDType};
use candle_nn::Module;

use crate::nn::im2col::{col2im_add, im2col_into, Geometry};

/// Elements of the columns of one chunk of items (1 MB of f32): small enough for L2.
const CHUNK_ELEMENTS: usize = 1 << 18;

/// Items per chunk for this geometry (at least one).
fn chunk_items(g: &Geometry) -> usize {
    (CHUNK_ELEMENTS / (g.rows() * g.positions()).max(1)).max(1)
}

/// The chunks of 0..n.
fn chunks(g: &Geometry) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = chunk_items(g);
    let n = g.n;
    (0..n)
        .step_by(step)
        .map(move |start| start..(start + step).min(n))
}

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

/// The rows o of a contiguous output gradient (n, out, positions) for the items `items`, as an
/// (out, items·positions) matrix.
fn gradient_rows<T: WithDType>(
    grad: &[T],
    out: usize,
    positions: usize,
    items: std::ops::Range<usize>,
) -> Vec<T> {
    let mut rows = Vec::with_capacity(out * items.len() * positions);
    for o in 0..out {
        for b in items.clone() {
            rows.extend_from_slice(&grad[(b * out + o) * positions..][..positions]);
        }
    }
    rows
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("conv2d backward: the {what} must be contiguous"),
    }
}

/// The convolution y = W * x + b, arguments (x, weight, bias).
#[derive(Clone, Copy, Debug)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

fn conv_forward<T: WithDType>(
    x: (&[T], &Layout),
    weight: (&[T], &Layout),
    bias: (&[T], &Layout),
    g: &Geometry,
    out: usize,
) -> candle_core::Result<Vec<T>> {
    let device = Device::Cpu;
    let (rows, positions) = (g.rows(), g.positions());
    // The weight transposed, (c·k·k, out) contiguous: gemm runs fastest with the long
    // dimension (positions) as rows, so each chunk computes yᵀ = columnsᵀ · Wᵀ.
    let w = gather(weight.0, weight.1);
    let mut transposed = vec![T::zero(); rows * out];
    for (o, filter) in w.chunks_exact(rows).enumerate() {
        for (r, value) in filter.iter().enumerate() {
            transposed[r * out + o] = *value;
        }
    }
    let transposed = Tensor::from_vec(transposed, (rows, out), &device)?;
    let bias = gather(bias.0, bias.1);
    let mut y = Vec::with_capacity(g.n * out * positions);
    let mut columns = Vec::new();
    for items in chunks(g) {
        let count = items.len();
        im2col_into(x.0, x.1, g, items, &mut columns);
        let chunk = Tensor::from_vec(
            std::mem::take(&mut columns),
            (rows, count * positions),
            &device,
        )?;
        let product = chunk
            .t()?
            .matmul(&transposed)?
            .flatten_all()?
            .to_vec1::<T>()?;
        // (count·positions, out) -> (count, out, positions), adding the bias on the way.
        for item in product.chunks_exact(positions * out) {
            for (o, &bias) in bias.iter().enumerate() {
                y.extend((0..positions).map(|p| item[p * out + o] + bias));
            }
        }
    }
    Ok(y)
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
        let shape = Shape::from((n, out, g.h_out, g.w_out));
        let result = match (x, weight, bias) {
            (CpuStorage::F32(x), CpuStorage::F32(weight), CpuStorage::F32(bias)) => {
                CpuStorage::F32(conv_forward(
                    (x, x_layout),
                    (weight, weight_layout),
                    (bias, bias_layout),
                    &g,
                    out,
                )?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(weight), CpuStorage::F64(bias)) => {
                CpuStorage::F64(conv_forward(
                    (x, x_layout),
                    (weight, weight_layout),
                    (bias, bias_layout),
                    &g,
                    out,
                )?)
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
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let (out, _, kernel, _) = weight.dims4()?;
        let grad = grad.contiguous()?;
        let (stride, padding) = (self.stride, self.padding);
        let grad_x = grad.apply_op2_no_bwd(
            weight,
            &ConvInputGrad {
                kernel,
                stride,
                padding,
                input: (n, c, h, w),
            },
        )?;
        let grad_weight = grad.apply_op2_no_bwd(
            x,
            &ConvWeightGrad {
                kernel,
                stride,
                padding,
            },
        )?;
        let grad_bias = grad.reshape((n, out, ()))?.sum(2)?.sum(0)?;
        Ok((Some(grad_x), Some(grad_weight), Some(grad_bias)))
    }
}

/// The input gradient of [`Conv2dOp`], arguments (output gradient, weight): col2im of
/// Wᵀ · gradient, chunk by chunk.
struct ConvInputGrad {
    kernel: usize,
    stride: usize,
    padding: usize,
    input: (usize, usize, usize, usize),
}

fn input_grad<T: WithDType>(
    grad: &[T],
    weight: &[T],
    g: &Geometry,
    out: usize,
) -> candle_core::Result<Vec<T>> {
    let device = Device::Cpu;
    let (rows, positions) = (g.rows(), g.positions());
    let weight = Tensor::from_vec(weight.to_vec(), (out, rows), &device)?;
    let mut dx = vec![T::zero(); g.n * g.item_size()];
    for items in chunks(g) {
        let count = items.len();
        let rows_of_grad = Tensor::from_vec(
            gradient_rows(grad, out, positions, items.clone()),
            (out, count * positions),
            &device,
        )?;
        let columns = weight
            .t()?
            .matmul(&rows_of_grad)?
            .flatten_all()?
            .to_vec1::<T>()?;
        let chunk = Geometry { n: count, ..*g };
        let target = &mut dx[items.start * g.item_size()..items.end * g.item_size()];
        col2im_add(&columns, 0, (count * positions, 1), &chunk, target);
    }
    Ok(dx)
}

impl CustomOp2 for ConvInputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.input, self.kernel, self.stride, self.padding)?;
        let out = weight_layout.dims()[0];
        let result = match (grad, weight) {
            (CpuStorage::F32(grad), CpuStorage::F32(weight)) => {
                let weight = gather(weight, weight_layout);
                CpuStorage::F32(input_grad(
                    contiguous(grad, grad_layout, "gradient")?,
                    &weight,
                    &g,
                    out,
                )?)
            }
            (CpuStorage::F64(grad), CpuStorage::F64(weight)) => {
                let weight = gather(weight, weight_layout);
                CpuStorage::F64(input_grad(
                    contiguous(grad, grad_layout, "gradient")?,
                    &weight,
                    &g,
                    out,
                )?)
            }
            _ => candle_core::bail!(
                "conv2d backward: f32 or f64 only, all alike (gradient is {:?})",
                grad.dtype()
            ),
        };
        Ok((result, Shape::from(self.input)))
    }
}

/// The weight gradient of [`Conv2dOp`], arguments (output gradient, input): the sum over
/// chunks of gradient · columnsᵀ.
struct ConvWeightGrad {
    kernel: usize,
    stride: usize,
    padding: usize,
}

fn weight_grad<T: WithDType>(
    grad: &[T],
    x: (&[T], &Layout),
    g: &Geometry,
    out: usize,
) -> candle_core::Result<Vec<T>> {
    let device = Device::Cpu;
    let (rows, positions) = (g.rows(), g.positions());
    let mut dw = vec![T::zero(); out * rows];
    let mut columns = Vec::new();
    for items in chunks(g) {
        let count = items.len();
        let rows_of_grad = Tensor::from_vec(
            gradient_rows(grad, out, positions, items.clone()),
            (out, count * positions),
            &device,
        )?;
        im2col_into(x.0, x.1, g, items, &mut columns);
        let chunk = Tensor::from_vec(
            std::mem::take(&mut columns),
            (rows, count * positions),
            &device,
        )?;
        let part = rows_of_grad
            .matmul(&chunk.t()?)?
            .flatten_all()?
            .to_vec1::<T>()?;
        for (total, value) in dw.iter_mut().zip(part) {
            *total += value;
        }
    }
    Ok(dw)
}

impl CustomOp2 for ConvWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (&[n, c, h, w], &[_, out, _, _]) = (x_layout.dims(), grad_layout.dims()) else {
            candle_core::bail!("conv2d backward: expected 4D input and gradient");
        };
        let g = Geometry::new((n, c, h, w), self.kernel, self.stride, self.padding)?;
        let result = match (grad, x) {
            (CpuStorage::F32(grad), CpuStorage::F32(x)) => CpuStorage::F32(weight_grad(
                contiguous(grad, grad_layout, "gradient")?,
                (x, x_layout),
                &g,
                out,
            )?),
            (CpuStorage::F64(grad), CpuStorage::F64(x)) => CpuStorage::F64(weight_grad(
                contiguous(grad, grad_layout, "gradient")?,
                (x, x_layout),
                &g,
                out,
            )?),
            _ => candle_core::bail!(
                "conv2d backward: f32 or f64 only, all alike (gradient is {:?})",
                grad.dtype()
            ),
        };
        Ok((result, Shape::from((out, c, self.kernel, self.kernel))))
    }
}

/// Convolution of `x` (n, c, h, w) with `weight` (out, c, k, k) and an optional `bias` (out,):
/// im2col + matmul on the CPU, candle's `conv2d` elsewhere. Output (n, out, h_out, w_out),
/// contiguous.
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
    if x.device().is_cpu() {
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
            Some(bias) => y.broadcast_add(&bias.reshape((1, out, 1, 1))?),
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
