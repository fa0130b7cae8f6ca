//! Linear layers whose rows do not depend on each other's company: each output row is the
//! same bit for bit whether it is computed alone, in a chunk of 7 or in a batch of 10 000.
//! That is what lets evaluation run in chunks of any size (the experiment's `eval_batch`)
//! and still give the numbers of one whole batch.
//!
//! gemm, which candle's matmul calls, picks its path from the product's shape: one row goes
//! through a matrix-vector kernel, a few rows through a kernel that sums horizontally, and
//! the depth at which it splits long sums depends on the row count too. So an entry of x·Wᵀ
//! changes in its last bits with the number of rows around it. Here every product is made in
//! gemm calls of exactly [`ROW_BLOCK`] rows (the last block padded with zeros): all calls of
//! a layer share one shape, hence one path and one order of sums, and a row's lanes in a
//! kernel tile do the same operations wherever the row sits. The input gradient (d·W, again
//! rows by rows) is made the same way, so likelihoods, whose divergences are gradients, are
//! chunk-invariant as well; the weight gradient sums over rows and is candle's matmul.
//!
//! Off the CPU (and with [`crate::nn::path::with_candle_ops`]) the products are candle's.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor, WithDType};

use crate::nn::gemm::{matmul, View};

/// Rows per gemm call. A multiple of every kernel tile height gemm uses (16 for f32 on AVX2,
/// 8 for f64), and large enough that packing the weight once per call costs little beside
/// the call's products.
pub const ROW_BLOCK: usize = 64;

/// y = x·Wᵀ + b for x of shape (…, in), W of shape (out, in) and b of shape (out,): candle's
/// `Linear`, with row-invariant products.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let product = times_transposed(x, &self.weight)?;
        match &self.bias {
            Some(bias) => product.broadcast_add(bias),
            None => Ok(product),
        }
    }
}

/// x·Wᵀ for x of shape (…, in) and W of shape (out, in), each row of the result computed the
/// same way whatever the other rows (see the module's documentation).
pub fn times_transposed(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    let Some((&inputs, leading)) = dims.split_last() else {
        candle_core::bail!("linear: a scalar input has no features");
    };
    let (outputs, weight_inputs) = weight.dims2()?;
    if weight_inputs != inputs {
        candle_core::bail!(
            "linear: input of {inputs} features for a weight of shape {outputs} x {weight_inputs}"
        );
    }
    let mut shape = leading.to_vec();
    shape.push(outputs);
    if !crate::nn::path::cpu_kernels(x.device()) {
        let rows = x.reshape(((), inputs))?;
        return rows.matmul(&weight.t()?)?.reshape(shape);
    }
    let rows = x.reshape(((), inputs))?.contiguous()?;
    rows.apply_op2(&weight.contiguous()?, RowProduct { transposed: true })?
        .reshape(shape)
}

/// x·Wᵀ (`transposed`, W of shape (out, in)) or x·W (W of shape (in, out)) for a contiguous
/// x of shape (rows, in), in calls of [`ROW_BLOCK`] rows.
#[derive(Clone, Copy, Debug)]
struct RowProduct {
    transposed: bool,
}

impl RowProduct {
    /// (inputs, outputs) of the weight as this product reads it.
    fn sides(self, weight: &[usize]) -> candle_core::Result<(usize, usize)> {
        match (weight, self.transposed) {
            (&[outputs, inputs], true) | (&[inputs, outputs], false) => Ok((inputs, outputs)),
            _ => candle_core::bail!("linear: the weight must be a matrix, not {weight:?}"),
        }
    }

    fn compute<T: WithDType>(
        self,
        x: &[T],
        weight: &[T],
        (rows, inputs, outputs): (usize, usize, usize),
    ) -> Vec<T> {
        let rhs = match self.transposed {
            true => View::rows(weight, 0, outputs, inputs).t(),
            false => View::rows(weight, 0, inputs, outputs),
        };
        let mut y = vec![T::zero(); rows * outputs];
        let whole = rows / ROW_BLOCK * ROW_BLOCK;
        for first in (0..whole).step_by(ROW_BLOCK) {
            let block = View::rows(x, first * inputs, ROW_BLOCK, inputs);
            matmul(&mut y, first * outputs, (outputs, 1), false, block, rhs);
        }
        if whole < rows {
            // The last rows, padded with zero rows to a whole block.
            let left = rows - whole;
            let mut padded = vec![T::zero(); ROW_BLOCK * inputs];
            padded[..left * inputs].copy_from_slice(&x[whole * inputs..]);
            let mut out = vec![T::zero(); ROW_BLOCK * outputs];
            let block = View::rows(&padded, 0, ROW_BLOCK, inputs);
            matmul(&mut out, 0, (outputs, 1), false, block, rhs);
            y[whole * outputs..].copy_from_slice(&out[..left * outputs]);
        }
        y
    }
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("linear: the {what} must be contiguous"),
    }
}

impl CustomOp2 for RowProduct {
    fn name(&self) -> &'static str {
        "row_product"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[rows, inputs] = x_layout.dims() else {
            candle_core::bail!(
                "linear: expected rows of features, got {:?}",
                x_layout.dims()
            );
        };
        let (weight_inputs, outputs) = self.sides(weight_layout.dims())?;
        if weight_inputs != inputs {
            candle_core::bail!("linear: {inputs} features against a weight of {weight_inputs}");
        }
        let sizes = (rows, inputs, outputs);
        let y = match (x, weight) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => CpuStorage::F32(self.compute(
                contiguous(x, x_layout, "input")?,
                contiguous(w, weight_layout, "weight")?,
                sizes,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w)) => CpuStorage::F64(self.compute(
                contiguous(x, x_layout, "input")?,
                contiguous(w, weight_layout, "weight")?,
                sizes,
            )),
            _ => candle_core::bail!(
                "linear: f32 or f64 only, both alike (input {:?}, weight {:?})",
                x.dtype(),
                weight.dtype()
            ),
        };
        Ok((y, Shape::from((rows, outputs))))
    }

    /// d·W (or d·Wᵀ) row by row for the input, the sum over rows for the weight.
    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _result: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let back = RowProduct {
            transposed: !self.transposed,
        };
        let input_grad = grad
            .contiguous()?
            .apply_op2_no_bwd(&weight.detach(), &back)?;
        let weight_grad = match self.transposed {
            true => grad.t()?.matmul(&x.detach())?,
            false => x.detach().t()?.matmul(grad)?,
        };
        Ok((Some(input_grad), Some(weight_grad)))
    }
}
