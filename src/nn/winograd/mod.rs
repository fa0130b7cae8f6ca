//! Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
//! Neural Networks", 2016) for the 3×3, stride-1, padding-1 convolutions that make most of a
//! U-Net's arithmetic: each 2×2 block of outputs costs 16 products per (in, out) channel pair
//! instead of 36.
//!
//! The output is cut into 2×2 tiles; tile t reads the 4×4 input patch d_t around it. With the
//! transforms Bᵀ (4×4), G (4×3) and Aᵀ (2×4) of F(2×2, 3×3):
//! - forward: y_t = Aᵀ [Σ_ci (G w G ᵀ)[o, ci] ⊙ (Bᵀ d_t B)[ci]] A. For each of the 16 entries of
//!   the 4×4 products this is one matrix product over channels, U (out, c) · V (c, tiles),
//!   so the work is 16 gemm calls on transformed weights and inputs, between two cheap
//!   transforms;
//! - input gradient: the forward of the output gradient with the kernel flipped and its
//!   channels swapped (as in `crate::nn::conv_kernels`);
//! - weight gradient: the forward's adjoint in w, dw[o, ci] = Gᵀ [Σ_t (A dy_t Aᵀ)[o] ⊙ V_t[ci]] G,
//!   again 16 gemm calls, Z (out, tiles) · Vᵀ (tiles, c), summed over chunks of items.
//!
//! Every transform is a handful of additions over whole planes (see `transforms`), so the loops
//! vectorise; a convolution with fewer than [`FEWEST_CHANNELS`] channels on either side stays
//! with im2col, where the transforms would cost what they save.
//! Rounding differs from the direct sum by a few ulps (the transforms add before they
//! multiply); tests/it/conv.rs compares values and gradients with candle's conv2d.
//!
//! Rows stay independent of their batch: the products over tiles are one gemm call per chunk
//! of items, at least [`fewest_rows`] tiles wide (padded with zero tiles), where gemm
//! computes every entry as the same ordered sum whatever the width (see `crate::nn::linear`).
//! So an item's output has the same bits alone, in a chunk of 7 or in the whole batch
//! (tests/it/row_invariance.rs).

use std::any::Any;
use std::cell::RefCell;
use std::ops::Range;

use candle_core::{Layout, WithDType};

mod transforms;
use transforms::{transform_gradient, transform_input, transform_output, Tiles};

use crate::nn::gemm::{matmul, View};
use crate::nn::im2col::Geometry;
use crate::nn::linear::fewest_rows;
use crate::nn::simd::multiversion;

/// Entries of a transformed 4×4 tile: one gemm each.
const COMPONENTS: usize = 16;

/// Channels below which a convolution stays with im2col. The transforms cost about as much as
/// the products they save at images.yaml's 16 and 32 channels (U-Net training 23.5-25.0
/// steps/s with Winograd from 8, 16 or 32 channels, 24.9-25.3 without), and win from 64
/// (the CIFAR-sized U-Net, 1.59-1.67 against 1.37 steps/s); `bench --worker`, one thread.
const FEWEST_CHANNELS: usize = 64;

/// Elements of one chunk's transformed tiles (16 · channels · tiles, 2 MB of f32): the
/// inputs' transform and the 16 products then stay in L2.
const CHUNK_ELEMENTS: usize = 1 << 19;

/// Whether a convolution of geometry `g` with `out` output channels is computed here.
pub(crate) fn applies(g: &Geometry, out: usize) -> bool {
    g.kernel == 3
        && g.stride == 1
        && g.padding == 1
        && g.c >= FEWEST_CHANNELS
        && out >= FEWEST_CHANNELS
}

/// The chunks of 0..g.n whose transformed tiles, with `channels` the larger of the two
/// channel counts, hold at most CHUNK_ELEMENTS (at least one item).
fn chunks(g: &Geometry, channels: usize) -> impl Iterator<Item = Range<usize>> {
    let per_item = COMPONENTS * channels * Tiles::new(g).per_item();
    let step = (CHUNK_ELEMENTS / per_item.max(1)).max(1);
    let n = g.n;
    (0..n)
        .step_by(step)
        .map(move |start| start..(start + step).min(n))
}

multiversion! {
    /// The weight (out, c, 3, 3) transformed, G w Gᵀ, as 16 row-major (out, c) matrices.
    fn transformed_weight<T: WithDType>(
        weight: &[T],
        out: usize,
        c: usize,
    ) -> Vec<T> = transformed_weight_body;
}

/// [`transformed_weight`] as passes over whole (out, c) planes, so that they vectorise: the
/// weight's nine taps each gathered into a plane, then G along the kernel's rows and G along
/// its columns, plane by plane.
#[inline(always)]
fn transformed_weight_body<T: WithDType>(weight: &[T], out: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let pairs = out * c;
    let mut taps = vec![T::zero(); 9 * pairs];
    for (pair, kernel) in weight.chunks_exact(9).enumerate() {
        for (tap, &value) in kernel.iter().enumerate() {
            taps[tap * pairs + pair] = value;
        }
    }
    let tap = |t: usize| &taps[t * pairs..][..pairs];
    // Row a of G v for a 3-vector v: [v0, (v0 + v1 + v2)/2, (v0 − v1 + v2)/2, v2].
    let g_row = |a: usize, v: [&[T]; 3], dst: &mut [T]| {
        let each = v[0].iter().zip(v[1]).zip(v[2]).zip(dst.iter_mut());
        for (((&v0, &v1), &v2), d) in each {
            *d = match a {
                0 => v0,
                1 => (v0 + v1 + v2) * half,
                2 => (v0 - v1 + v2) * half,
                _ => v2,
            };
        }
    };
    let mut u = vec![T::zero(); COMPONENTS * pairs];
    // Row a of G w (over the kernel's rows), one plane per kernel column.
    let mut rows = vec![T::zero(); 3 * pairs];
    for a in 0..4 {
        for (j, row) in rows.chunks_exact_mut(pairs).enumerate() {
            g_row(a, [tap(j), tap(3 + j), tap(6 + j)], row);
        }
        let row = |j: usize| &rows[j * pairs..][..pairs];
        for (b, component) in u[a * 4 * pairs..][..4 * pairs]
            .chunks_exact_mut(pairs)
            .enumerate()
        {
            g_row(b, [row(0), row(1), row(2)], component);
        }
    }
    u
}

/// Runs `f` with two vectors of T that this thread keeps between calls (holding whatever the
/// last call left), so that a convolution's transformed tiles are allocated and zeroed once,
/// not at every call.
fn with_scratch<T: WithDType, R>(f: impl FnOnce(&mut Vec<T>, &mut Vec<T>) -> R) -> R {
    type Pair<T> = (Vec<T>, Vec<T>);
    thread_local! {
        static SCRATCH: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }
    let taken = SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let index = scratch.iter().position(|pair| pair.is::<Pair<T>>())?;
        scratch.swap_remove(index).downcast::<Pair<T>>().ok()
    });
    let mut pair = taken.unwrap_or_default();
    let result = f(&mut pair.0, &mut pair.1);
    SCRATCH.with(|scratch| scratch.borrow_mut().push(pair));
    result
}

/// The width of a chunk's products: its tiles, or more (zero tiles) when gemm would take a
/// path whose sums depend on the width.
fn padded_width(tile_count: usize, out: usize, c: usize) -> usize {
    tile_count.max(fewest_rows(out, c))
}

/// y += conv(x, weight) for a 3×3, stride-1, padding-1 convolution ([`applies`]): x (n, c, h,
/// w) any strides, `weight` (out, c, 3, 3) contiguous, y (n, out, h, w) contiguous (holding
/// the bias beforehand).
pub(crate) fn forward<T: WithDType>(
    x: &[T],
    x_layout: &Layout,
    weight: &[T],
    g: &Geometry,
    out: usize,
    y: &mut [T],
) {
    let u = transformed_weight(weight, out, g.c);
    let lhs = |k: usize| View::rows(&u, k * out * g.c, out, g.c);
    products(x, x_layout, lhs, (g, out), y);
}

/// dx (n, c, h, w) += the input gradient of a convolution [`applies`] to, of geometry `g`
/// with `out` outputs and weight (out, c, 3, 3), for its output gradient `grad` (n, out, h,
/// w) contiguous: the forward of `grad` with the kernel flipped and its channels swapped.
///
/// That kernel needs no transform of its own. Reversing a 3-vector v swaps entries 0 and 3 of
/// G v (G rev(v) = [v2, (v0 + v1 + v2)/2, (v0 − v1 + v2)/2, v0]), so component (a, b) of the
/// flipped kernel's G w Gᵀ is component (m(a), m(b)) of the forward's, m swapping 0 and 3;
/// and swapping the channels transposes each (out, c) matrix, which gemm reads as a
/// transposed view.
pub(crate) fn input_gradient<T: WithDType>(
    grad: &[T],
    weight: &[T],
    g: &Geometry,
    out: usize,
    dx: &mut [T],
) {
    let flipped_geometry = Geometry { c: out, ..*g };
    let layout = Layout::contiguous((g.n, out, g.h, g.w));
    let u = transformed_weight(weight, out, g.c);
    let mirrored = |a: usize| if a == 0 || a == 3 { 3 - a } else { a };
    let lhs = |k: usize| {
        let component = 4 * mirrored(k / 4) + mirrored(k % 4);
        View::rows(&u, component * out * g.c, out, g.c).t()
    };
    products(grad, &layout, lhs, (&flipped_geometry, g.c), dx);
}

/// y += the convolution of x with a transformed weight whose component k, an (out, c)
/// matrix, is `lhs(k)` (see [`forward`]).
fn products<'u, T: WithDType>(
    x: &[T],
    x_layout: &Layout,
    lhs: impl Fn(usize) -> View<'u, T>,
    (g, out): (&Geometry, usize),
    y: &mut [T],
) {
    let c = g.c;
    let per_item = Tiles::new(g).per_item();
    with_scratch(|v: &mut Vec<T>, m: &mut Vec<T>| {
        for items in chunks(g, c.max(out)) {
            let tile_count = items.len() * per_item;
            let width = padded_width(tile_count, out, c);
            // Every column is written below, the padding's zeros included.
            v.resize(COMPONENTS * c * width, T::zero());
            m.resize(COMPONENTS * out * width, T::zero());
            transform_input(x, x_layout, g, items.clone(), v, width);
            if width > tile_count {
                for row in v.chunks_exact_mut(width) {
                    row[tile_count..].fill(T::zero());
                }
            }
            for k in 0..COMPONENTS {
                let rhs = View::rows(v, k * c * width, c, width);
                matmul(m, k * out * width, (width, 1), false, lhs(k), rhs);
            }
            transform_output(m, width, g, out, items, y);
        }
    })
}

/// dw (out, c, 3, 3) of a convolution [`applies`] to, from its input x (n, c, h, w) any
/// strides and its output gradient (n, out, h, w) contiguous; overwrites `dw`.
pub(crate) fn weight_gradient<T: WithDType>(
    grad: &[T],
    x: &[T],
    x_layout: &Layout,
    g: &Geometry,
    out: usize,
    dw: &mut [T],
) {
    let c = g.c;
    let per_item = Tiles::new(g).per_item();
    // Σ over tiles of Z ⊙ V, per component: 16 (out, c) matrices.
    let mut p = vec![T::zero(); COMPONENTS * out * c];
    with_scratch(|v: &mut Vec<T>, z: &mut Vec<T>| {
        for items in chunks(g, c.max(out)) {
            // Every entry is written by the transforms.
            let width = items.len() * per_item;
            v.resize(COMPONENTS * c * width, T::zero());
            z.resize(COMPONENTS * out * width, T::zero());
            transform_input(x, x_layout, g, items.clone(), v, width);
            transform_gradient(grad, g, out, items, z, width);
            for k in 0..COMPONENTS {
                let lhs = View::rows(z, k * out * width, out, width);
                let rhs = View::rows(v, k * c * width, c, width).t();
                matmul(&mut p, k * out * c, (c, 1), true, lhs, rhs);
            }
        }
    });
    // dw = Gᵀ q G, Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]], per (o, ci).
    let half = T::from_f64(0.5);
    let g_transposed = |q: [T; 4]| {
        [
            q[0] + (q[1] + q[2]) * half,
            (q[1] - q[2]) * half,
            (q[1] + q[2]) * half + q[3],
        ]
    };
    for o in 0..out {
        for ci in 0..c {
            let q = |a: usize, b: usize| p[((a * 4 + b) * out + o) * c + ci];
            let columns: [[T; 3]; 4] =
                std::array::from_fn(|b| g_transposed([q(0, b), q(1, b), q(2, b), q(3, b)]));
            for a in 0..3 {
                let row =
                    g_transposed([columns[0][a], columns[1][a], columns[2][a], columns[3][a]]);
                dw[(o * c + ci) * 9 + a * 3..][..3].copy_from_slice(&row);
            }
        }
    }
}
