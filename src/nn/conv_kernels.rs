//! The CPU kernels of [`crate::nn::conv`]: forward, and the three gradients in one pass, each
//! a few gemm calls per chunk of items on the operands where they lie ([`crate::nn::gemm`]).
//!
//! With columns C (c·k·k, positions) of one item (see [`crate::nn::im2col`]) and W (out, c·k·k):
//! - forward: y_item (out, positions) = W · C_item, written straight into y, which holds the
//!   bias beforehand (per channel, or per item and channel);
//! - weight gradient: dW += G · Cᵀ over a chunk, G the output gradient's rows (out,
//!   items·positions), the columns unfolded again (they are k² times the input: recomputing
//!   them in cache is cheaper than keeping them);
//! - input gradient, stride 1: dx is itself a convolution, of the output gradient (padded by
//!   k − 1 − padding) with the kernel flipped in both axes and its in/out channels swapped:
//!   dx_item (c, h·w) = W' (c, out·k·k) · columns of G_item. A gather and a gemm with a long
//!   inner dimension, instead of a gemm with an inner dimension of `out` and a scatter-add;
//! - input gradient, other strides: col2im(Wᵀ · G).
//!
//! A 3x3 convolution with stride 1, padding 1 and at least 64 channels each side goes through
//! Winograd's F(2×2, 3×3) instead ([`crate::nn::winograd`]), forward and all gradients; a
//! narrower one in f32, on planes whose rows tile 16 lanes, through the direct kernels of
//! [`crate::nn::direct`] on a CPU with AVX-512F (no columns at all).
//!
//! A 1x1 convolution with stride 1 and no padding has its input as its columns: then the
//! gemms read the input itself. Every loop works on chunks of items whose columns (about 1 MB)
//! stay in cache.

use std::ops::Range;

use candle_core::{Layout, WithDType};

use crate::nn::gemm::{matmul, View};
use crate::nn::im2col::{col2im_add, extend_with_plane, im2col_into, Geometry};
use crate::nn::simd::multiversion;
use crate::nn::{direct, winograd};

/// The float types the kernels run on: f32 has the direct 3×3 kernels ([`crate::nn::direct`]).
pub(crate) trait Float: WithDType {
    /// y += conv(x, weight) through the direct kernel, if it covers this convolution (`false`
    /// and y untouched otherwise).
    fn direct_forward(
        x: &[Self],
        layout: &Layout,
        weight: &[Self],
        geometry: (&Geometry, usize),
        y: &mut [Self],
    ) -> bool;

    /// dx (unless empty) and dW through the direct kernels, if they cover this convolution
    /// (`false` and both untouched otherwise).
    fn direct_gradients(
        inputs: (&[Self], &[Self], &Layout),
        weight: &[Self],
        geometry: (&Geometry, usize),
        gradients: (&mut [Self], &mut [Self]),
    ) -> bool;
}

impl Float for f32 {
    fn direct_forward(
        x: &[f32],
        layout: &Layout,
        weight: &[f32],
        (g, out): (&Geometry, usize),
        y: &mut [f32],
    ) -> bool {
        let covered = direct::applies(g, out);
        if covered {
            direct::forward(x, layout, weight, g, out, y);
        }
        covered
    }

    fn direct_gradients(
        (grad, x, layout): (&[f32], &[f32], &Layout),
        weight: &[f32],
        (g, out): (&Geometry, usize),
        (dx, dw): (&mut [f32], &mut [f32]),
    ) -> bool {
        if !direct::applies(g, out) {
            return false;
        }
        direct::weight_gradient(grad, x, layout, g, out, dw);
        if !dx.is_empty() {
            // The forward of the output gradient with the flipped kernel (c outputs).
            let flipped_geometry = Geometry { c: out, ..*g };
            let layout = Layout::contiguous((g.n, out, g.h, g.w));
            let w_flipped = flipped(weight, out, g.c, 3);
            direct::forward(grad, &layout, &w_flipped, &flipped_geometry, g.c, dx);
        }
        true
    }
}

impl Float for f64 {
    fn direct_forward(
        _: &[f64],
        _: &Layout,
        _: &[f64],
        _: (&Geometry, usize),
        _: &mut [f64],
    ) -> bool {
        false
    }

    fn direct_gradients(
        _: (&[f64], &[f64], &Layout),
        _: &[f64],
        _: (&Geometry, usize),
        _: (&mut [f64], &mut [f64]),
    ) -> bool {
        false
    }
}

/// Elements of the columns of one chunk of items (1 MB of f32): small enough for L2.
const CHUNK_ELEMENTS: usize = 1 << 18;

/// The chunks of 0..g.n, each with at most CHUNK_ELEMENTS elements of columns (at least one
/// item).
fn chunks(g: &Geometry) -> impl Iterator<Item = Range<usize>> {
    let step = (CHUNK_ELEMENTS / (g.rows() * g.positions()).max(1)).max(1);
    let n = g.n;
    (0..n)
        .step_by(step)
        .map(move |start| start..(start + step).min(n))
}

/// Where the input's items start when it is its own columns (1x1, stride 1, no padding,
/// contiguous): the offset of item 0.
fn direct_input(g: &Geometry, layout: &Layout) -> Option<usize> {
    let own_columns = g.kernel == 1 && g.stride == 1 && g.padding == 0;
    match (own_columns, layout.contiguous_offsets()) {
        (true, Some((start, _))) => Some(start),
        _ => None,
    }
}

/// y (n, out, positions) = W · columns(x) + bias, `weight` (out, c·k·k) contiguous, `bias` of
/// `out` (per channel) or n·out (per item and channel) entries.
pub(crate) fn forward<T: Float>(
    x: &[T],
    x_layout: &Layout,
    weight: &[T],
    bias: &[T],
    g: &Geometry,
    out: usize,
) -> Vec<T> {
    let (rows, positions) = (g.rows(), g.positions());
    let per_item = bias.len() == g.n * out && g.n != 1;
    let mut y = Vec::with_capacity(g.n * out * positions);
    for b in 0..g.n {
        let row = if per_item {
            &bias[b * out..][..out]
        } else {
            bias
        };
        for &value in row {
            y.extend(std::iter::repeat_n(value, positions));
        }
    }
    if winograd::applies(g, out) {
        winograd::forward(x, x_layout, weight, g, out, &mut y);
        return y;
    }
    if T::direct_forward(x, x_layout, weight, (g, out), &mut y) {
        return y;
    }
    let w = View::rows(weight, 0, out, rows);
    let direct = direct_input(g, x_layout);
    let mut columns = Vec::new();
    for items in chunks(g) {
        let width = items.len() * positions;
        if direct.is_none() {
            im2col_into(x, x_layout, g, items.clone(), &mut columns);
        }
        for (i, b) in items.enumerate() {
            let c_item = match direct {
                Some(start) => View::rows(x, start + b * g.item_size(), rows, positions),
                None => View {
                    data: &columns,
                    offset: i * positions,
                    rows,
                    cols: positions,
                    row_stride: width,
                    col_stride: 1,
                },
            };
            matmul(&mut y, b * out * positions, (positions, 1), true, w, c_item);
        }
    }
    y
}

/// The rows o of a contiguous output gradient (n, out, positions) for the items `items`, as an
/// (out, items·positions) matrix in `dst`.
fn gradient_rows<T: WithDType>(
    grad: &[T],
    out: usize,
    positions: usize,
    items: Range<usize>,
    dst: &mut Vec<T>,
) {
    dst.clear();
    for o in 0..out {
        for b in items.clone() {
            dst.extend_from_slice(&grad[(b * out + o) * positions..][..positions]);
        }
    }
}

/// The kernel flipped in both spatial axes with in and out channels swapped, (c, out·k·k)
/// contiguous: the weight of the convolution that gives a stride-1 convolution's input
/// gradient.
fn flipped<T: WithDType>(weight: &[T], out: usize, c: usize, k: usize) -> Vec<T> {
    let mut result = vec![T::zero(); weight.len()];
    for o in 0..out {
        for ci in 0..c {
            for a in 0..k {
                for bb in 0..k {
                    result[((ci * out + o) * k + a) * k + bb] =
                        weight[((o * c + ci) * k + (k - 1 - a)) * k + (k - 1 - bb)];
                }
            }
        }
    }
    result
}

/// [dx, dweight, dbias] of y = conv(x, weight) + bias for the output gradient `grad` (n, out,
/// positions) contiguous; `bias_len` is out (per channel) or n·out (per item and channel).
/// Without `input_gradient` dx is left out (empty), and so is its work.
pub(crate) fn gradients<T: Float>(
    grad: &[T],
    x: &[T],
    x_layout: &Layout,
    weight: &[T],
    (bias_len, input_gradient): (usize, bool),
    g: &Geometry,
    out: usize,
) -> Vec<T> {
    let (rows, positions) = (g.rows(), g.positions());
    let dx_size = if input_gradient {
        g.n * g.item_size()
    } else {
        0
    };
    let dw_size = out * rows;
    let mut packed = vec![T::zero(); dx_size + dw_size + bias_len];
    let (dx, rest) = packed.split_at_mut(dx_size);
    let (dw, db) = rest.split_at_mut(dw_size);
    let per_item = bias_len == g.n * out && g.n != 1;
    for (index, sum) in plane_sums(grad, positions).into_iter().enumerate() {
        db[if per_item { index } else { index % out }] += sum;
    }
    if winograd::applies(g, out) {
        winograd::weight_gradient(grad, x, x_layout, g, out, dw);
        if input_gradient {
            winograd::input_gradient(grad, weight, g, out, dx);
        }
        return packed;
    }
    let direct = direct_input(g, x_layout);
    if T::direct_gradients((grad, x, x_layout), weight, (g, out), (&mut *dx, &mut *dw)) {
        return packed;
    }
    // Without dx, unfolding the input (c·k² rows) beats unfolding the gradient (out·k² rows)
    // when it is the narrower, as for a network's first convolution.
    let flipped_is_cheaper = input_gradient || out <= g.c;
    if g.stride == 1 && g.padding < g.kernel && direct.is_none() && flipped_is_cheaper {
        flipped_gradients(grad, x, x_layout, weight, g, (out, dx, dw));
    } else {
        unfolded_gradients((grad, x, x_layout), weight, g, (out, dx, dw), direct);
    }
    packed
}

/// dx (unless empty) and dW of a convolution from its input's columns (or the input itself,
/// at `direct`, when it is its own columns): dW = G · Cᵀ, dx = col2im(Wᵀ · G).
fn unfolded_gradients<T: WithDType>(
    (grad, x, x_layout): (&[T], &[T], &Layout),
    weight: &[T],
    g: &Geometry,
    (out, dx, dw): (usize, &mut [T], &mut [T]),
    direct: Option<usize>,
) {
    let (rows, positions) = (g.rows(), g.positions());
    let input_gradient = !dx.is_empty();
    let w = View::rows(weight, 0, out, rows);
    let (mut columns, mut rows_g, mut unfolded) = (Vec::new(), Vec::new(), Vec::new());
    // dW accumulates transposed, (c·k·k, out) row-major: gemm then reads the columns as they
    // lie instead of packing them (they are the large operand).
    let mut dw_t = vec![T::zero(); dw.len()];
    for items in chunks(g) {
        let width = items.len() * positions;
        match direct {
            Some(start) => {
                for b in items.clone() {
                    let g_item = View::rows(grad, b * out * positions, out, positions);
                    let x_item = View::rows(x, start + b * g.item_size(), rows, positions);
                    matmul(&mut dw_t, 0, (1, out), true, g_item, x_item.t());
                    if input_gradient {
                        matmul(dx, b * g.item_size(), (positions, 1), false, w.t(), g_item);
                    }
                }
            }
            None => {
                gradient_rows(grad, out, positions, items.clone(), &mut rows_g);
                im2col_into(x, x_layout, g, items.clone(), &mut columns);
                let g_chunk = View::rows(&rows_g, 0, out, width);
                let c_chunk = View::rows(&columns, 0, rows, width);
                matmul(&mut dw_t, 0, (1, out), true, g_chunk, c_chunk.t());
                if !input_gradient {
                    continue;
                }
                unfolded.clear();
                unfolded.resize(rows * width, T::zero());
                matmul(&mut unfolded, 0, (width, 1), false, w.t(), g_chunk);
                let geometry = Geometry {
                    n: items.len(),
                    ..*g
                };
                let target = &mut dx[items.start * g.item_size()..items.end * g.item_size()];
                col2im_add(&unfolded, 0, (width, 1), &geometry, target);
            }
        }
    }
    for (r, row) in dw_t.chunks_exact(out).enumerate() {
        for (o, &value) in row.iter().enumerate() {
            dw[o * rows + r] = value;
        }
    }
}

multiversion! {
    /// The sum of each plane (`positions` consecutive entries) of `grad`: the bias gradient's
    /// terms.
    fn plane_sums<T: WithDType>(grad: &[T], positions: usize) -> Vec<T> = plane_sums_body;
}

/// [`plane_sums`] in 16 independent lanes, so that it vectorises (one running sum is a
/// chain of dependent additions, one per entry).
#[inline(always)]
fn plane_sums_body<T: WithDType>(grad: &[T], positions: usize) -> Vec<T> {
    const LANES: usize = 16;
    let whole = positions / LANES * LANES;
    grad.chunks_exact(positions)
        .map(|plane| {
            let mut lanes = [T::zero(); LANES];
            for chunk in plane[..whole].chunks_exact(LANES) {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += v;
                }
            }
            lanes
                .iter()
                .chain(&plane[whole..])
                .fold(T::zero(), |sum, &v| sum + v)
        })
        .collect()
}

/// The planes of the items `items` of x (n, c, h, w), any strides, as a (c, items·h·w) matrix
/// in `dst`.
fn plane_rows<T: WithDType>(
    x: &[T],
    layout: &Layout,
    g: &Geometry,
    items: Range<usize>,
    dst: &mut Vec<T>,
) {
    dst.clear();
    for ci in 0..g.c {
        for b in items.clone() {
            extend_with_plane(x, layout, g, (b, ci), dst);
        }
    }
}

/// dx and dW of a stride-1 convolution from the columns of its output gradient G alone (padded
/// by k − 1 − padding, so that they have h·w positions), the input's columns never unfolded:
/// - dx is the convolution of G with the kernel flipped in both axes and its channels swapped:
///   dx_item (c, h·w) = W' (c, out·k·k) · columns(G)_item;
/// - dW[o, ci, a, b] = Σ_q x[ci, q] · G[o, q − (a, b) + padding], which is entry
///   ((o, k−1−a, k−1−b), ci) of columns(G) · Xᵀ, X the input's planes (c, items·h·w).
fn flipped_gradients<T: WithDType>(
    grad: &[T],
    x: &[T],
    x_layout: &Layout,
    weight: &[T],
    g: &Geometry,
    (out, dx, dw): (usize, &mut [T], &mut [T]),
) {
    let k = g.kernel;
    let geometry = Geometry::new((g.n, out, g.h_out, g.w_out), k, 1, k - 1 - g.padding)
        .expect("a stride-1 convolution's gradient geometry is valid");
    debug_assert_eq!((geometry.h_out, geometry.w_out), (g.h, g.w));
    let layout = Layout::contiguous((g.n, out, g.h_out, g.w_out));
    let w_flipped = flipped(weight, out, g.c, k);
    let lhs = View::rows(&w_flipped, 0, g.c, geometry.rows());
    let pixels = g.h * g.w;
    // Entry (r, ci) of columns(G) · Xᵀ, (out·k·k, c) row-major: gemm reads the columns as they
    // lie (the large operand) and packs only X.
    let mut product = vec![T::zero(); geometry.rows() * g.c];
    let (mut columns, mut planes) = (Vec::new(), Vec::new());
    for items in chunks(&geometry) {
        let width = items.len() * pixels;
        im2col_into(grad, &layout, &geometry, items.clone(), &mut columns);
        plane_rows(x, x_layout, g, items.clone(), &mut planes);
        let all = View::rows(&columns, 0, geometry.rows(), width);
        let planes_view = View::rows(&planes, 0, g.c, width);
        matmul(&mut product, 0, (1, g.c), true, planes_view, all.t());
        // dx is empty when the input needs no gradient.
        let wanted = if dx.is_empty() { 0 } else { items.len() };
        for (i, b) in items.enumerate().take(wanted) {
            let c_item = View {
                offset: i * pixels,
                cols: pixels,
                ..all
            };
            matmul(dx, b * g.item_size(), (pixels, 1), false, lhs, c_item);
        }
    }
    for o in 0..out {
        for ci in 0..g.c {
            for a in 0..k {
                for bb in 0..k {
                    let r = (o * k + (k - 1 - a)) * k + (k - 1 - bb);
                    dw[((o * g.c + ci) * k + a) * k + bb] = product[r * g.c + ci];
                }
            }
        }
    }
}
