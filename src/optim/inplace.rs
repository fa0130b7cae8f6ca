//! The optimiser's and the weight average's per-step updates as in-place CPU ops: one pass
//! over each variable's storage, no new tensors (the tensor arithmetic they replace allocates
//! a dozen per variable per step). Each does the same float operations in the same order as
//! that arithmetic (candle's `t * c` is `t·c + 0`, `t + c` is `t·1 + c`), so results are the
//! same bit for bit.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor, WithDType};

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

fn contiguous_mut<'a, T>(
    data: &'a mut [T],
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// Whether the in-place updates apply: CPU tensors of f32 or f64, contiguous.
pub fn supported(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| {
        t.device().is_cpu()
            && matches!(t.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
            && t.is_contiguous()
    })
}

/// An exponential moving average, in place: a ← a·decay + x·(1 − decay) (Adam's moments with
/// x = g or g², the weight average with x = the weights).
#[derive(Clone, Copy, Debug)]
pub struct Average {
    pub decay: f64,
    /// Average the square of the argument (Adam's second moment).
    pub square: bool,
}

fn average<T: WithDType>(a: &mut [T], x: &[T], op: &Average) {
    let (decay, rest, zero) = (
        T::from_f64(op.decay),
        T::from_f64(1.0 - op.decay),
        T::zero(),
    );
    for (a, &x) in a.iter_mut().zip(x) {
        let x = if op.square { x * x } else { x };
        *a = (*a * decay + zero) + (x * rest + zero);
    }
}

impl InplaceOp2 for Average {
    fn name(&self) -> &'static str {
        "moving_average"
    }

    fn cpu_fwd(
        &self,
        a: &mut CpuStorage,
        a_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
    ) -> candle_core::Result<()> {
        if a_layout.dims() != x_layout.dims() {
            candle_core::bail!(
                "moving average of shape {:?} updated with {:?}",
                a_layout.dims(),
                x_layout.dims()
            );
        }
        match (a, x) {
            (CpuStorage::F32(a), CpuStorage::F32(x)) => average(
                contiguous_mut(a, a_layout, "the average")?,
                contiguous(x, x_layout, "the update")?,
                self,
            ),
            (CpuStorage::F64(a), CpuStorage::F64(x)) => average(
                contiguous_mut(a, a_layout, "the average")?,
                contiguous(x, x_layout, "the update")?,
                self,
            ),
            _ => candle_core::bail!("moving average: f32 or f64 only, both alike"),
        }
        Ok(())
    }
}

/// Adam's step on a variable given its moments (m, v), in place:
/// w ← w − lr · (m·scale_m) / (sqrt(v·scale_v) + eps).
#[derive(Clone, Copy, Debug)]
pub struct AdamUpdate {
    pub lr: f64,
    pub eps: f64,
    /// 1 / (1 − β1^t) and 1 / (1 − β2^t).
    pub scale_m: f64,
    pub scale_v: f64,
}

fn update<T: WithDType + num_sqrt::Sqrt>(w: &mut [T], m: &[T], v: &[T], op: &AdamUpdate) {
    let (one, zero) = (T::one(), T::zero());
    let (lr, eps) = (T::from_f64(op.lr), T::from_f64(op.eps));
    let (scale_m, scale_v) = (T::from_f64(op.scale_m), T::from_f64(op.scale_v));
    for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
        let m_hat = m * scale_m + zero;
        let v_hat = v * scale_v + zero;
        let step = m_hat / (v_hat.sqrt() * one + eps);
        *w -= step * lr + zero;
    }
}

/// Square roots of the two float types.
mod num_sqrt {
    pub trait Sqrt {
        fn sqrt(self) -> Self;
    }
    impl Sqrt for f32 {
        fn sqrt(self) -> Self {
            f32::sqrt(self)
        }
    }
    impl Sqrt for f64 {
        fn sqrt(self) -> Self {
            f64::sqrt(self)
        }
    }
}

impl InplaceOp3 for AdamUpdate {
    fn name(&self) -> &'static str {
        "adam_update"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        w_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<()> {
        if w_layout.dims() != m_layout.dims() || w_layout.dims() != v_layout.dims() {
            candle_core::bail!(
                "adam: variable {:?} with moments {:?} and {:?}",
                w_layout.dims(),
                m_layout.dims(),
                v_layout.dims()
            );
        }
        match (w, m, v) {
            (CpuStorage::F32(w), CpuStorage::F32(m), CpuStorage::F32(v)) => update(
                contiguous_mut(w, w_layout, "the variable")?,
                contiguous(m, m_layout, "the first moment")?,
                contiguous(v, v_layout, "the second moment")?,
                self,
            ),
            (CpuStorage::F64(w), CpuStorage::F64(m), CpuStorage::F64(v)) => update(
                contiguous_mut(w, w_layout, "the variable")?,
                contiguous(m, m_layout, "the first moment")?,
                contiguous(v, v_layout, "the second moment")?,
                self,
            ),
            _ => candle_core::bail!("adam: f32 or f64 only, all alike"),
        }
        Ok(())
    }
}
