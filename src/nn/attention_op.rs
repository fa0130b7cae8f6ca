//! One-head self-attention over positions as one custom op with its own backward, for the CPU.
//!
//! From candle ops, attention is a dozen of them (three narrows, a transpose, two matmuls, a
//! division, softmax's five), each a full pass with a fresh buffer forward, and more backward,
//! where every edge also costs candle a zeroed buffer and an addition (a narrow's gradient is
//! a zero-padded copy of the whole input). Here, for qkv (n, 3c, positions) holding q, k and v
//! as consecutive blocks of c channels, per item:
//!
//!   S = qᵀk · scale (positions × positions), A = softmax of S's rows, out = v · Aᵀ (c × positions),
//!
//! (the softmax's e^x is the GroupNorm's polynomial `fast_exp`, within 3e-7 of e^x for f32),
//!
//! and the backward, from dO = dL/d(out) and A recomputed from q and k (cheaper than keeping it):
//!
//!   dv = dO · A,  dA = dOᵀ · v,  dS = A ⊙ (dA − rowsum(A ⊙ dA)),  dq = scale · k · dSᵀ,
//!   dk = scale · q · dS,
//!
//! every product a gemm on the operands where they lie ([`crate::nn::gemm`]).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use crate::nn::contiguous;
use crate::nn::gemm::{matmul, View};
use crate::nn::norm_op::Real;
use crate::nn::simd::multiversion;

/// out (n, c, positions) = attention of qkv (n, 3c, positions) with scores scaled by `scale`.
#[derive(Clone, Copy, Debug)]
pub struct AttentionOp {
    pub scale: f64,
}

/// The gradient of [`AttentionOp`], arguments (qkv, output gradient): dqkv (n, 3c, positions).
#[derive(Clone, Copy, Debug)]
struct AttentionGrad {
    scale: f64,
}

/// (n, c, positions) of a qkv argument.
fn geometry(layout: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    match layout.dims() {
        &[n, three_c, positions] if three_c % 3 == 0 && three_c > 0 => {
            Ok((n, three_c / 3, positions))
        }
        dims => {
            candle_core::bail!("attention: expected qkv of shape (n, 3c, positions), got {dims:?}")
        }
    }
}

/// The softmax weights A (positions × positions, row-major) of one item, its qkv block at
/// `item` (3c × positions, row-major), written into `a`.
fn weights<T: Real>(item: &[T], c: usize, positions: usize, scale: T, a: &mut [T]) {
    let q = View::rows(item, 0, c, positions);
    let k = View::rows(item, c * positions, c, positions);
    matmul(a, 0, (positions, 1), false, q.t(), k);
    softmax_rows(a, positions, scale);
}

multiversion! {
    /// Each row of `a` (rows of `positions` scores) replaced by softmax(row · scale).
    fn softmax_rows<T: Real>(a: &mut [T], positions: usize, scale: T) -> () = softmax_rows_body;
}

/// The maximum and the sum run in LANES independent lanes (so that they vectorise, in a fixed
/// order), e^x is [`Real::fast_exp`].
#[inline(always)]
fn softmax_rows_body<T: Real>(a: &mut [T], positions: usize, scale: T) {
    const LANES: usize = 16;
    let whole = positions / LANES * LANES;
    for row in a.chunks_exact_mut(positions) {
        let mut lanes = [T::from_f64(f64::NEG_INFINITY); LANES];
        for chunk in row[..whole].chunks_exact(LANES) {
            for l in 0..LANES {
                lanes[l] = if chunk[l] > lanes[l] {
                    chunk[l]
                } else {
                    lanes[l]
                };
            }
        }
        let max =
            lanes
                .iter()
                .chain(&row[whole..])
                .fold(
                    T::from_f64(f64::NEG_INFINITY),
                    |m, &v| if v > m { v } else { m },
                );
        for v in row.iter_mut() {
            *v = ((*v - max) * scale).fast_exp();
        }
        let mut sums = [T::zero(); LANES];
        for chunk in row[..whole].chunks_exact(LANES) {
            for l in 0..LANES {
                sums[l] += chunk[l];
            }
        }
        let sum = sums
            .iter()
            .chain(&row[whole..])
            .fold(T::zero(), |s, &v| s + v);
        let inverse = T::one() / sum;
        for v in row.iter_mut() {
            *v *= inverse;
        }
    }
}

fn forward<T: Real>(qkv: &[T], n: usize, c: usize, positions: usize, scale: T) -> Vec<T> {
    let mut out = vec![T::zero(); n * c * positions];
    let mut a = vec![T::zero(); positions * positions];
    for (b, item) in qkv.chunks_exact(3 * c * positions).enumerate() {
        weights(item, c, positions, scale, &mut a);
        let v = View::rows(item, 2 * c * positions, c, positions);
        let a_t = View::rows(&a, 0, positions, positions).t();
        matmul(&mut out, b * c * positions, (positions, 1), false, v, a_t);
    }
    out
}

fn backward<T: Real>(
    qkv: &[T],
    grad: &[T],
    n: usize,
    c: usize,
    positions: usize,
    scale: T,
) -> Vec<T> {
    let block = c * positions;
    let mut dqkv = vec![T::zero(); n * 3 * block];
    let (mut a, mut da) = (
        vec![T::zero(); positions * positions],
        vec![T::zero(); positions * positions],
    );
    for (b, (item, d_out)) in qkv
        .chunks_exact(3 * block)
        .zip(grad.chunks_exact(block))
        .enumerate()
    {
        weights(item, c, positions, scale, &mut a);
        let q = View::rows(item, 0, c, positions);
        let k = View::rows(item, block, c, positions);
        let v = View::rows(item, 2 * block, c, positions);
        let d_o = View::rows(d_out, 0, c, positions);
        let base = b * 3 * block;
        let a_view = View::rows(&a, 0, positions, positions);
        // dv = dO · A
        matmul(
            &mut dqkv,
            base + 2 * block,
            (positions, 1),
            false,
            d_o,
            a_view,
        );
        // dA = dOᵀ · v, then dS = A ⊙ (dA − rowsum(A ⊙ dA)) · scale, in place.
        matmul(&mut da, 0, (positions, 1), false, d_o.t(), v);
        for (row_a, row_d) in a
            .chunks_exact(positions)
            .zip(da.chunks_exact_mut(positions))
        {
            let dot = row_a
                .iter()
                .zip(row_d.iter())
                .fold(T::zero(), |s, (&p, &d)| s + p * d);
            for (&p, d) in row_a.iter().zip(row_d.iter_mut()) {
                *d = p * (*d - dot) * scale;
            }
        }
        let ds = View::rows(&da, 0, positions, positions);
        // dq = k · dSᵀ, dk = q · dS (the scale is in dS).
        matmul(&mut dqkv, base, (positions, 1), false, k, ds.t());
        matmul(&mut dqkv, base + block, (positions, 1), false, q, ds);
    }
    dqkv
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, positions) = geometry(layout)?;
        let result = match storage {
            CpuStorage::F32(qkv) => CpuStorage::F32(forward(
                contiguous(qkv, layout, "attention", "qkv")?,
                n,
                c,
                positions,
                self.scale as f32,
            )),
            CpuStorage::F64(qkv) => CpuStorage::F64(forward(
                contiguous(qkv, layout, "attention", "qkv")?,
                n,
                c,
                positions,
                self.scale,
            )),
            other => candle_core::bail!(
                "attention: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, Shape::from((n, c, positions))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(
            &grad,
            &AttentionGrad { scale: self.scale },
        )?))
    }
}

impl CustomOp2 for AttentionGrad {
    fn name(&self) -> &'static str {
        "attention_grad"
    }

    fn cpu_fwd(
        &self,
        qkv: &CpuStorage,
        qkv_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, positions) = geometry(qkv_layout)?;
        if grad_layout.dims() != [n, c, positions] {
            candle_core::bail!(
                "attention backward: gradient {:?} for qkv {:?}",
                grad_layout.dims(),
                qkv_layout.dims()
            );
        }
        let result = match (qkv, grad) {
            (CpuStorage::F32(qkv), CpuStorage::F32(grad)) => CpuStorage::F32(backward(
                contiguous(qkv, qkv_layout, "attention", "qkv")?,
                contiguous(grad, grad_layout, "attention", "gradient")?,
                n,
                c,
                positions,
                self.scale as f32,
            )),
            (CpuStorage::F64(qkv), CpuStorage::F64(grad)) => CpuStorage::F64(backward(
                contiguous(qkv, qkv_layout, "attention", "qkv")?,
                contiguous(grad, grad_layout, "attention", "gradient")?,
                n,
                c,
                positions,
                self.scale,
            )),
            _ => candle_core::bail!(
                "attention backward: f32 or f64 only, both alike (qkv is {:?})",
                qkv.dtype()
            ),
        };
        Ok((result, qkv_layout.shape().clone()))
    }
}
