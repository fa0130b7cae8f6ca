//! Linear layers whose rows do not depend on each other's company: each output row is the
//! same bit for bit whether it is computed alone, in a chunk of 7 or in a batch of 10 000.
//! That is what lets evaluation run in chunks of any size (the experiment's `eval_batch`)
//! and still give the numbers of one whole batch.
//!
//! gemm, which candle's matmul calls, picks its path from the product's shape: one row goes
//! through a matrix-vector kernel, products of at most 256 entries through a kernel that sums
//! horizontally, and products of at most 64 × 64 entries split sums past 512 terms where
//! larger ones split them at a length set by the sum's length alone. So an entry of x·Wᵀ
//! changed in its last bits with the number of rows around it. Past those shapes gemm's
//! blocked path computes every entry as the same ordered sum of fused multiply-adds, whatever
//! the row count and wherever the row sits in a kernel tile. So a product of at least
//! [`fewest_rows`] rows is one gemm call, and a smaller one is padded with zero rows to that
//! many. The input gradient (d·W) is made the same way, so likelihoods, whose divergences
//! are gradients, are chunk-invariant as well; the weight gradient sums over rows and is
//! candle's matmul. tests/it/row_invariance.rs checks every path, so a gemm release that
//! changes them fails there.
//!
//! Off the CPU (and with [`crate::nn::path::with_candle_ops`]) the products are candle's.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor, WithDType};

use crate::nn::contiguous;
use crate::nn::gemm::{matmul, View};

/// The fewest rows of a product with `outputs` columns and sums of `inputs` terms for which
/// gemm takes its blocked path, with sums split at a length set by `inputs` alone (see the
/// module's documentation).
pub fn fewest_rows(outputs: usize, inputs: usize) -> usize {
    // One row is a matrix-vector product; rows · outputs ≤ 256 the horizontal kernel.
    let mut rows = (256 / outputs.max(1) + 1).max(2);
    if outputs <= 64 && inputs > 512 {
        // Products of at most 64 × 64 split long sums at 512 terms.
        rows = rows.max(65);
    }
    rows
}

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
/// x of shape (rows, in), of at least [`fewest_rows`] rows.
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
        let fewest = fewest_rows(outputs, inputs);
        if rows >= fewest {
            let mut y = vec![T::zero(); rows * outputs];
            let all = View::rows(x, 0, rows, inputs);
            matmul(&mut y, 0, (outputs, 1), false, all, rhs);
            return y;
        }
        // Too few rows for the blocked path: padded with zero rows to enough.
        let mut padded = vec![T::zero(); fewest * inputs];
        padded[..rows * inputs].copy_from_slice(x);
        let mut y = vec![T::zero(); fewest * outputs];
        matmul(
            &mut y,
            0,
            (outputs, 1),
            false,
            View::rows(&padded, 0, fewest, inputs),
            rhs,
        );
        y.truncate(rows * outputs);
        y
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
                contiguous(x, x_layout, "linear", "input")?,
                contiguous(w, weight_layout, "linear", "weight")?,
                sizes,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w)) => CpuStorage::F64(self.compute(
                contiguous(x, x_layout, "linear", "input")?,
                contiguous(w, weight_layout, "linear", "weight")?,
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
