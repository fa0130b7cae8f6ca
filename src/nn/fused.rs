//! silu((a + b) + (c + d)) for matmul products a, c (n, m) and biases b, d (m,): the bias
//! adds, the sum and the activation of a noise-conditional MLP layer
//! (silu(linear(h) + linear(embedding))) as one custom op with its own backward, for the CPU.
//!
//! As candle ops this is four passes forward (two broadcast adds, an add, SiLU) and more
//! backward, where each bias gradient is a sum over the batch that candle takes on its slow
//! strided path. Here the forward is one pass and the backward one pass that gives dL/du
//! (shared by a and c) and the column sums (shared by b and d). The float operations are
//! candle's own, in its order (SiLU as v / (1 + e^-v), its derivative as s·(1 − y) + y with
//! s = 1 / (e^-v + 1), the column sums row by row), so the results are the same bit for bit.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::nn::norm_op::Real;

/// The forward op, arguments (a, c, [b; d] of shape (2, m)).
#[derive(Clone, Copy, Debug)]
struct BiasAddSilu;

/// The backward op, arguments (output gradient, a, c), the biases carried along: [dL/du
/// (n, m), Σ_rows dL/du (m)] packed.
#[derive(Clone, Debug)]
struct BiasAddSiluGrad {
    biases: Tensor,
}

fn slice<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("bias_add_silu: the {what} must be contiguous"),
    }
}

fn forward<T: Real>(a: &[T], c: &[T], biases: &[T], m: usize) -> Vec<T> {
    let (b, d) = biases.split_at(m);
    let mut y = Vec::with_capacity(a.len());
    for (a, c) in a.chunks_exact(m).zip(c.chunks_exact(m)) {
        y.extend(
            a.iter()
                .zip(c)
                .zip(b.iter().zip(d))
                .map(|((&a, &c), (&b, &d))| {
                    let v = (a + b) + (c + d);
                    v / (T::one() + (T::zero() - v).exp())
                }),
        );
    }
    y
}

fn backward<T: Real>(grad: &[T], a: &[T], c: &[T], biases: &[T], m: usize) -> Vec<T> {
    let (b, d) = biases.split_at(m);
    let (one, zero) = (T::one(), T::zero());
    let mut out = Vec::with_capacity(grad.len() + m);
    let mut sums = vec![zero; m];
    for ((g, a), c) in grad
        .chunks_exact(m)
        .zip(a.chunks_exact(m))
        .zip(c.chunks_exact(m))
    {
        for j in 0..m {
            let v = (a[j] + b[j]) + (c[j] + d[j]);
            // e^-v once: candle's forward divides by 1 + e^-v, its backward by e^-v·1 + 1.
            let e = (zero - v).exp();
            let y = v / (one + e);
            let s = one / (e * one + one);
            let slope = s * (y * (zero - one) + one) + y;
            let du = zero + g[j] * slope;
            sums[j] += du;
            out.push(du);
        }
    }
    out.extend(sums);
    out
}

impl CustomOp3 for BiasAddSilu {
    fn name(&self) -> &'static str {
        "bias_add_silu"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        a_layout: &Layout,
        c: &CpuStorage,
        c_layout: &Layout,
        biases: &CpuStorage,
        biases_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[_, m] = a_layout.dims() else {
            candle_core::bail!(
                "bias_add_silu: expected an (n, m) product, got {:?}",
                a_layout.dims()
            );
        };
        if c_layout.dims() != a_layout.dims() || biases_layout.dims() != [2, m] {
            candle_core::bail!(
                "bias_add_silu: products {:?} and {:?} with biases {:?}",
                a_layout.dims(),
                c_layout.dims(),
                biases_layout.dims()
            );
        }
        let result = match (a, c, biases) {
            (CpuStorage::F32(a), CpuStorage::F32(c), CpuStorage::F32(b)) => {
                CpuStorage::F32(forward(
                    slice(a, a_layout, "product")?,
                    slice(c, c_layout, "product")?,
                    slice(b, biases_layout, "biases")?,
                    m,
                ))
            }
            (CpuStorage::F64(a), CpuStorage::F64(c), CpuStorage::F64(b)) => {
                CpuStorage::F64(forward(
                    slice(a, a_layout, "product")?,
                    slice(c, c_layout, "product")?,
                    slice(b, biases_layout, "biases")?,
                    m,
                ))
            }
            _ => candle_core::bail!("bias_add_silu: f32 or f64 only, all alike"),
        };
        Ok((result, a_layout.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        c: &Tensor,
        biases: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, m) = a.dims2()?;
        let op = BiasAddSiluGrad {
            biases: biases.detach(),
        };
        let packed = grad
            .contiguous()?
            .apply_op3_no_bwd(&a.detach(), &c.detach(), &op)?;
        let du = packed.narrow(0, 0, n * m)?.reshape((n, m))?;
        let sums = packed.narrow(0, n * m, m)?;
        let biases = Tensor::stack(&[&sums, &sums], 0)?;
        Ok((Some(du.clone()), Some(du), Some(biases)))
    }
}

impl CustomOp3 for BiasAddSiluGrad {
    fn name(&self) -> &'static str {
        "bias_add_silu_grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        a: &CpuStorage,
        a_layout: &Layout,
        c: &CpuStorage,
        c_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[n, m] = a_layout.dims() else {
            candle_core::bail!("bias_add_silu backward: expected (n, m) products");
        };
        let (storage, layout) = self.biases.storage_and_layout();
        let candle_core::Storage::Cpu(biases) = &*storage else {
            candle_core::bail!("bias_add_silu backward: the biases must be on the CPU");
        };
        let result = match (grad, a, c, biases) {
            (CpuStorage::F32(g), CpuStorage::F32(a), CpuStorage::F32(c), CpuStorage::F32(b)) => {
                CpuStorage::F32(backward(
                    slice(g, grad_layout, "gradient")?,
                    slice(a, a_layout, "product")?,
                    slice(c, c_layout, "product")?,
                    slice(b, layout, "biases")?,
                    m,
                ))
            }
            (CpuStorage::F64(g), CpuStorage::F64(a), CpuStorage::F64(c), CpuStorage::F64(b)) => {
                CpuStorage::F64(backward(
                    slice(g, grad_layout, "gradient")?,
                    slice(a, a_layout, "product")?,
                    slice(c, c_layout, "product")?,
                    slice(b, layout, "biases")?,
                    m,
                ))
            }
            _ => candle_core::bail!(
                "bias_add_silu backward: f32 or f64 only, all alike (gradient is {:?})",
                grad.dtype()
            ),
        };
        Ok((result, Shape::from(n * m + m)))
    }
}

/// silu((a + b) + (c + d)): `a`, `c` of shape (n, m) (the products x·Wᵀ, e·Vᵀ), `b`, `d` of
/// shape (m,). One op with its own backward on the CPU, candle ops elsewhere.
pub fn bias_add_silu(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
) -> candle_core::Result<Tensor> {
    if !a.device().is_cpu() {
        return a.broadcast_add(b)?.add(&c.broadcast_add(d)?)?.silu();
    }
    let biases = Tensor::stack(&[b, d], 0)?;
    a.contiguous()?
        .apply_op3(&c.contiguous()?, &biases, BiasAddSilu)
}
