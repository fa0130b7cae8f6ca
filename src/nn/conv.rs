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
//! (input, weight, bias); its three gradients are one custom op too (one pass over the chunks,
//! the output gradient's rows and the columns shared), without a backward of its own (candle
//! detaches gradients, so nothing differentiates them). Matmul products are read in place,
//! not copied out. Forward + backward of a 3x3
//! conv, batch 64, 32 -> 32 channels, 16x16, one thread (`time_forward_backward` in tests/it/conv.rs): 38–90 ms
//! against 120–440 ms for candle's conv2d on the shared 2-core machine (3–5x; the spread is
//! its load). Other devices fall back to candle's `Tensor::conv2d`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Storage, Tensor, WithDType};
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

/// Runs `f` on the elements of a contiguous CPU tensor (a matmul's product) without copying them.
fn read<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("conv2d: expected a CPU tensor");
    };
    let data = cpu.as_slice::<T>()?;
    Ok(f(contiguous(data, layout, "product")?))
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
        let product = chunk.t()?.matmul(&transposed)?;
        // (count·positions, out) -> (count, out, positions), adding the bias on the way.
        read(&product, |product: &[T]| {
            for item in product.chunks_exact(positions * out) {
                for (o, &bias) in bias.iter().enumerate() {
                    y.extend((0..positions).map(|p| item[p * out + o] + bias));
                }
            }
        })?;
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
        let packed = grad.contiguous()?.apply_op3_no_bwd(
            x,
            &weight.detach(),
            &ConvGrad {
                kernel,
                stride: self.stride,
                padding: self.padding,
            },
        )?;
        let (dx_size, dw_size) = (n * c * h * w, out * c * kernel * kernel);
        let grad_x = packed.narrow(0, 0, dx_size)?.reshape((n, c, h, w))?;
        let grad_weight = packed
            .narrow(0, dx_size, dw_size)?
            .reshape((out, c, kernel, kernel))?;
        let grad_bias = packed.narrow(0, dx_size + dw_size, out)?;
        Ok((Some(grad_x), Some(grad_weight), Some(grad_bias)))
    }
}

/// The gradients of [`Conv2dOp`], arguments (output gradient, input, weight), packed as one
/// vector [dx, dweight, dbias]. Chunk by chunk of items: the output gradient's rows G (out,
/// items·positions) give dbias (their sums), dweight += G · columnsᵀ (the chunk's columns
/// unfolded again) and dx = col2im(Wᵀ · G).
struct ConvGrad {
    kernel: usize,
    stride: usize,
    padding: usize,
}

fn conv_grad<T: WithDType>(
    grad: &[T],
    x: (&[T], &Layout),
    weight: &[T],
    g: &Geometry,
    out: usize,
) -> candle_core::Result<Vec<T>> {
    let device = Device::Cpu;
    let (rows, positions) = (g.rows(), g.positions());
    let (dx_size, dw_size) = (g.n * g.item_size(), out * rows);
    let mut packed = vec![T::zero(); dx_size + dw_size + out];
    let (dx, rest) = packed.split_at_mut(dx_size);
    let (dw, db) = rest.split_at_mut(dw_size);
    let weight = Tensor::from_vec(weight.to_vec(), (out, rows), &device)?;
    let mut columns = Vec::new();
    for items in chunks(g) {
        let count = items.len();
        let gradient = gradient_rows(grad, out, positions, items.clone());
        for (total, row) in db.iter_mut().zip(gradient.chunks_exact(count * positions)) {
            *total += row.iter().fold(T::zero(), |sum, &v| sum + v);
        }
        let gradient = Tensor::from_vec(gradient, (out, count * positions), &device)?;
        im2col_into(x.0, x.1, g, items.clone(), &mut columns);
        let chunk = Tensor::from_vec(
            std::mem::take(&mut columns),
            (rows, count * positions),
            &device,
        )?;
        read(&gradient.matmul(&chunk.t()?)?, |part: &[T]| {
            for (total, &value) in dw.iter_mut().zip(part) {
                *total += value;
            }
        })?;
        let unfolded = weight.t()?.matmul(&gradient)?;
        let geometry = Geometry { n: count, ..*g };
        let target = &mut dx[items.start * g.item_size()..items.end * g.item_size()];
        read(&unfolded, |columns: &[T]| {
            col2im_add(columns, 0, (count * positions, 1), &geometry, target)
        })?;
    }
    Ok(packed)
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
                CpuStorage::F32(conv_grad(
                    contiguous(grad, grad_layout, "gradient")?,
                    (x, x_layout),
                    &gather(weight, weight_layout),
                    &g,
                    out,
                )?)
            }
            (CpuStorage::F64(grad), CpuStorage::F64(x), CpuStorage::F64(weight)) => {
                CpuStorage::F64(conv_grad(
                    contiguous(grad, grad_layout, "gradient")?,
                    (x, x_layout),
                    &gather(weight, weight_layout),
                    &g,
                    out,
                )?)
            }
            _ => candle_core::bail!(
                "conv2d backward: f32 or f64 only, all alike (gradient is {:?})",
                grad.dtype()
            ),
        };
        let count = n * c * h * w + out * g.rows() + out;
        Ok((result, Shape::from(count)))
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
