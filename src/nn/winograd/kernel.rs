//! The kernel's side of F(4×4, 3×3): its transform G w Gᵀ for the products, and the adjoint
//! Gᵀ q G that turns the products' weight gradient back into 3×3 taps.

use candle_core::WithDType;

use super::passes::{planes, six, six_to_three, three_to_six};
use super::transforms::{COMPONENTS, POINTS};
use crate::nn::simd::multiversion;

/// G v for a row (or column) v of a kernel.
#[inline(always)]
fn kernel_transform<T: WithDType>([v0, v1, v2]: [T; 3]) -> [T; 6] {
    let (quarter, half, sixth) = (T::from_f64(0.25), T::from_f64(0.5), T::from_f64(1.0 / 6.0));
    let (outer, inner) = (quarter * v0 + v2, half * v1);
    [
        quarter * v0,
        T::zero() - (v0 + v1 + v2) * sixth,
        (v1 - v0 - v2) * sixth,
        (outer + inner) * sixth,
        (outer - inner) * sixth,
        v2,
    ]
}

/// Gᵀ q for a row (or column) q of a weight gradient's transformed tile.
#[inline(always)]
fn kernel_adjoint<T: WithDType>([q0, q1, q2, q3, q4, q5]: [T; 6]) -> [T; 3] {
    let (quarter, half, sixth) = (T::from_f64(0.25), T::from_f64(0.5), T::from_f64(1.0 / 6.0));
    let (sum12, sum34) = (q1 + q2, q3 + q4);
    [
        quarter * q0 + (quarter * sum34 - sum12) * sixth,
        (q2 - q1 + half * (q3 - q4)) * sixth,
        (sum34 - sum12) * sixth + q5,
    ]
}

multiversion! {
    /// The weight (out, c, 3, 3) transformed, G w Gᵀ, as 36 row-major (out, c) matrices,
    /// component a·6 + b at a·6 + b planes of out·c; with `reversed`, w is each kernel
    /// flipped in both axes (its taps read in reverse).
    pub(super) fn transformed_weight<T: WithDType>(
        weight: &[T],
        out: usize,
        c: usize,
        reversed: bool,
    ) -> Vec<T> = transformed_weight_body;
}

#[inline(always)]
fn transformed_weight_body<T: WithDType>(
    weight: &[T],
    out: usize,
    c: usize,
    reversed: bool,
) -> Vec<T> {
    let pairs = out * c;
    let mut taps = vec![T::zero(); 9 * pairs];
    for (pair, kernel) in weight.chunks_exact(9).enumerate() {
        for (tap, &value) in kernel.iter().enumerate() {
            let tap = if reversed { 8 - tap } else { tap };
            taps[tap * pairs + pair] = value;
        }
    }
    // G along the kernel's rows (one pass per kernel column j), then along its columns.
    let mut rows = vec![T::zero(); POINTS * 3 * pairs];
    for j in 0..3 {
        let tap = |i: usize| &taps[(3 * i + j) * pairs..][..pairs];
        let outputs = planes(&mut rows, j * pairs, 3 * pairs, pairs);
        three_to_six([tap(0), tap(1), tap(2)], outputs, kernel_transform);
    }
    let mut u = vec![T::zero(); COMPONENTS * pairs];
    for a in 0..POINTS {
        let row = |j: usize| &rows[(3 * a + j) * pairs..][..pairs];
        let outputs = planes(&mut u, POINTS * a * pairs, pairs, pairs);
        three_to_six([row(0), row(1), row(2)], outputs, kernel_transform);
    }
    u
}

multiversion! {
    /// dw (out, c, 3, 3) = Gᵀ q G, q the weight gradient's 36 transformed (out, c) matrices
    /// in `p`: the adjoint of [`transformed_weight`].
    pub(super) fn weight_from_components<T: WithDType>(
        p: &[T],
        out: usize,
        c: usize,
        dw: &mut [T],
    ) -> () = weight_from_components_body;
}

#[inline(always)]
fn weight_from_components_body<T: WithDType>(p: &[T], out: usize, c: usize, dw: &mut [T]) {
    let pairs = out * c;
    // Gᵀ over a (the tiles' rows) for each b, then over b: tap (i, j) at plane 3i + j.
    let mut columns = vec![T::zero(); 3 * POINTS * pairs];
    for b in 0..POINTS {
        let inputs = six(|a| &p[(POINTS * a + b) * pairs..][..pairs]);
        let outputs = planes(&mut columns, b * pairs, POINTS * pairs, pairs);
        six_to_three(inputs, outputs, kernel_adjoint);
    }
    let mut taps = vec![T::zero(); 9 * pairs];
    for i in 0..3 {
        let inputs = six(|b| &columns[(POINTS * i + b) * pairs..][..pairs]);
        let outputs = planes(&mut taps, 3 * i * pairs, pairs, pairs);
        six_to_three(inputs, outputs, kernel_adjoint);
    }
    for (pair, kernel) in dw.chunks_exact_mut(9).enumerate() {
        for (tap, value) in kernel.iter_mut().enumerate() {
            *value = taps[tap * pairs + pair];
        }
    }
}
