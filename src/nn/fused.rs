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
//! e^-v, the costly part, is taken a row at a time by [`expf::exp_in_place`], eight lanes at
//! once with the C library's results.
//!
//! `c` may also be one row (1, m) shared by every row: a batch at one noise level (a sampler's
//! step) has one embedding, so the `mlp` computes its product once; (c + d) is then formed
//! once per column, the same sums as per row.

pub mod expf;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::nn::contiguous;
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

/// The element types the op takes: e^x over a slice at a time, and the passes.
trait Float: Real {
    fn exp_slice(xs: &mut [Self]);

    fn forward(a: &[Self], c: &[Self], biases: &[Self], m: usize) -> Vec<Self> {
        forward(a, c, biases, m)
    }

    fn backward(grad: &[Self], a: &[Self], c: &[Self], biases: &[Self], m: usize) -> Vec<Self> {
        backward(grad, a, c, biases, m)
    }
}

impl Float for f32 {
    fn exp_slice(xs: &mut [f32]) {
        expf::exp_in_place(xs)
    }

    fn forward(a: &[f32], c: &[f32], biases: &[f32], m: usize) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { wide::forward(a, c, biases, m) };
        }
        forward(a, c, biases, m)
    }

    fn backward(grad: &[f32], a: &[f32], c: &[f32], biases: &[f32], m: usize) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { wide::backward(grad, a, c, biases, m) };
        }
        backward(grad, a, c, biases, m)
    }
}

/// The same passes compiled for AVX2: eight lanes per instruction instead of SSE2's four.
/// The float operations are the same (Rust never fuses a multiply and an add by itself).
#[cfg(target_arch = "x86_64")]
mod wide {
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn forward(a: &[f32], c: &[f32], biases: &[f32], m: usize) -> Vec<f32> {
        super::forward(a, c, biases, m)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn backward(
        grad: &[f32],
        a: &[f32],
        c: &[f32],
        biases: &[f32],
        m: usize,
    ) -> Vec<f32> {
        super::backward(grad, a, c, biases, m)
    }
}

impl Float for f64 {
    fn exp_slice(xs: &mut [f64]) {
        for x in xs {
            *x = Real::exp(*x);
        }
    }
}

/// Row `i` of `c`: its own, or the one row every row shares.
fn row<T>(c: &[T], i: usize, m: usize) -> &[T] {
    if c.len() == m {
        c
    } else {
        &c[i * m..(i + 1) * m]
    }
}

/// One row for the backward: v = (a + b) + (c + d) into `v`, e^(0 - v) into `e`.
#[inline(always)]
fn pre_activation<T: Float>(a: &[T], c: &[T], b: &[T], d: &[T], v: &mut [T], e: &mut [T]) {
    for ((((v, e), &a), &c), (&b, &d)) in v
        .iter_mut()
        .zip(e.iter_mut())
        .zip(a)
        .zip(c)
        .zip(b.iter().zip(d))
    {
        *v = (a + b) + (c + d);
        *e = T::zero() - *v;
    }
    T::exp_slice(e);
}

#[inline(always)]
fn forward<T: Float>(a: &[T], c: &[T], biases: &[T], m: usize) -> Vec<T> {
    let (b, d) = biases.split_at(m);
    let mut y = Vec::with_capacity(a.len());
    let mut e = vec![T::zero(); m];
    for (i, a) in a.chunks_exact(m).enumerate() {
        let start = y.len();
        // v row by row into the output, never zeroed first (it is an inference step's
        // largest buffer), then y = v / (1 + e^(0 - v)) in place.
        let v = a
            .iter()
            .zip(row(c, i, m))
            .zip(b.iter().zip(d))
            .map(|((&a, &c), (&b, &d))| (a + b) + (c + d));
        y.extend(v);
        let y = &mut y[start..];
        for (e, &v) in e.iter_mut().zip(y.iter()) {
            *e = T::zero() - v;
        }
        T::exp_slice(&mut e);
        for (y, &e) in y.iter_mut().zip(&e) {
            *y /= T::one() + e;
        }
    }
    y
}

#[inline(always)]
fn backward<T: Float>(grad: &[T], a: &[T], c: &[T], biases: &[T], m: usize) -> Vec<T> {
    let (b, d) = biases.split_at(m);
    let (one, zero) = (T::one(), T::zero());
    let mut out = vec![zero; grad.len() + m];
    let (du, sums) = out.split_at_mut(grad.len());
    let mut e = vec![zero; m];
    let rows = du
        .chunks_exact_mut(m)
        .zip(grad.chunks_exact(m))
        .zip(a.chunks_exact(m));
    for (i, ((du, g), a)) in rows.enumerate() {
        pre_activation(a, row(c, i, m), b, d, du, &mut e);
        for (((du, &g), &e), sum) in du.iter_mut().zip(g).zip(&e).zip(sums.iter_mut()) {
            // e^-v once: candle's forward divides by 1 + e^-v, its backward by e^-v·1 + 1.
            let v = *du;
            let y = v / (one + e);
            let s = one / (e * one + one);
            let slope = s * (y * (zero - one) + one) + y;
            *du = zero + g * slope;
            *sum += *du;
        }
    }
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
        let shared = c_layout.dims() == [1, m];
        if (c_layout.dims() != a_layout.dims() && !shared) || biases_layout.dims() != [2, m] {
            candle_core::bail!(
                "bias_add_silu: products {:?} and {:?} with biases {:?}",
                a_layout.dims(),
                c_layout.dims(),
                biases_layout.dims()
            );
        }
        let result = match (a, c, biases) {
            (CpuStorage::F32(a), CpuStorage::F32(c), CpuStorage::F32(b)) => {
                CpuStorage::F32(f32::forward(
                    contiguous(a, a_layout, "bias_add_silu", "product")?,
                    contiguous(c, c_layout, "bias_add_silu", "product")?,
                    contiguous(b, biases_layout, "bias_add_silu", "biases")?,
                    m,
                ))
            }
            (CpuStorage::F64(a), CpuStorage::F64(c), CpuStorage::F64(b)) => {
                CpuStorage::F64(f64::forward(
                    contiguous(a, a_layout, "bias_add_silu", "product")?,
                    contiguous(c, c_layout, "bias_add_silu", "product")?,
                    contiguous(b, biases_layout, "bias_add_silu", "biases")?,
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
        // A shared row of c gets every row's gradient: the column sums.
        let c_grad = if c.dim(0)? == n {
            du.clone()
        } else {
            sums.reshape((1, m))?
        };
        Ok((Some(du), Some(c_grad), Some(biases)))
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
                CpuStorage::F32(f32::backward(
                    contiguous(g, grad_layout, "bias_add_silu", "gradient")?,
                    contiguous(a, a_layout, "bias_add_silu", "product")?,
                    contiguous(c, c_layout, "bias_add_silu", "product")?,
                    contiguous(b, layout, "bias_add_silu", "biases")?,
                    m,
                ))
            }
            (CpuStorage::F64(g), CpuStorage::F64(a), CpuStorage::F64(c), CpuStorage::F64(b)) => {
                CpuStorage::F64(f64::backward(
                    contiguous(g, grad_layout, "bias_add_silu", "gradient")?,
                    contiguous(a, a_layout, "bias_add_silu", "product")?,
                    contiguous(c, c_layout, "bias_add_silu", "product")?,
                    contiguous(b, layout, "bias_add_silu", "biases")?,
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

/// silu((a + b) + (c + d)): `a` of shape (n, m), `c` of shape (n, m) or (1, m) (one row for
/// all), the products x·Wᵀ, e·Vᵀ; `b`, `d` of shape (m,). One op with its own backward on
/// the CPU, candle ops elsewhere.
pub fn bias_add_silu(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
) -> candle_core::Result<Tensor> {
    if !crate::nn::path::cpu_kernels(a.device()) {
        return a
            .broadcast_add(b)?
            .broadcast_add(&c.broadcast_add(d)?)?
            .silu();
    }
    let biases = Tensor::stack(&[b, d], 0)?;
    a.contiguous()?
        .apply_op3(&c.contiguous()?, &biases, BiasAddSilu)
}
