//! Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
//! Neural Networks", 2016) for the 3×3, stride-1, padding-1 convolutions that make most of a
//! U-Net's arithmetic: each 4×4 block of outputs costs 36 products per (in, out) channel pair
//! instead of 144.
//!
//! The output is cut into 4×4 tiles; tile t reads the 6×6 input patch d_t around it. With the
//! transforms Bᵀ (6×6), G (6×3) and Aᵀ (4×6) of F(4×4, 3×3) (written out in `transforms`):
//! - forward: y_t = Aᵀ [Σ_ci (G w Gᵀ)[o, ci] ⊙ (Bᵀ d_t B)[ci]] A. For each of the 36 entries of
//!   the 6×6 products this is one matrix product over channels, U (out, c) · V (c, tiles),
//!   so the work is 36 gemm calls on transformed weights and inputs, between two cheap
//!   transforms;
//! - input gradient: the forward of the output gradient with the kernel flipped and its
//!   channels swapped (as in `crate::nn::conv_kernels`);
//! - weight gradient: the forward's adjoint in w, dw[o, ci] = Gᵀ [Σ_t (A dy_t Aᵀ)[o] ⊙ V_t[ci]] G,
//!   again 36 gemm calls, Z (out, tiles) · Vᵀ (tiles, c), summed over chunks of items.
//!
//! Every transform is a few passes over whole planes (see `transforms`), so the loops
//! vectorise; a convolution with fewer than [`FEWEST_CHANNELS`] channels on either side stays
//! with the direct kernel or im2col, where the transforms would cost what they save.
//! F(2×2, 3×3) (16 products per 2×2 block) came before: F(4×4, 3×3) trains the CIFAR-sized
//! U-Net 5-6% faster (2.15-2.18 against 2.05-2.06 steps/s, `bench --worker unet-cifar 6`,
//! one thread), its gemm calls falling from 47% of the step to 35%.
//!
//! Rounding differs from the direct sum more than F(2×2, 3×3)'s did, since the transforms
//! scale by up to 8 and 1/24 before the products: in f32, up to 7e-6 of the largest output
//! and gradient entry against candle's conv2d at 64-96 channels (tests/it/conv.rs bounds it
//! by 1e-5 and 1e-4), where cuDNN's Winograd kernels make the same trade.
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

mod kernel;
mod passes;
mod transforms;
use kernel::{transformed_weight, weight_from_components};
use transforms::{transform_gradient, transform_input, transform_output, Tiles, COMPONENTS};

use crate::nn::gemm::{matmul, View};
use crate::nn::im2col::Geometry;
use crate::nn::linear::fewest_rows;

/// Channels below which a convolution stays with the direct kernel (or im2col). The direct
/// kernel wins there: images.yaml's U-Net (16 and 32 channels) trains at 38.9-40.2 steps/s
/// with it, 28.6-28.8 with Winograd from 32 channels (`bench --worker unet 100`, one
/// thread); from 64 Winograd wins (the CIFAR-sized U-Net).
const FEWEST_CHANNELS: usize = 64;

/// Elements of one chunk's transformed tiles (36 · channels · tiles, 1 MB of f32): the
/// inputs' transform and the 36 products then stay in L2. CIFAR-sized U-Net training took
/// 2.09-2.33 steps/s with chunks of 2^19, 2.28-2.36 with 2^18 and 2.28 with 2^17
/// (`bench --worker unet-cifar 6`, one thread, interleaved).
const CHUNK_ELEMENTS: usize = 1 << 18;

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
    let u = transformed_weight(weight, out, g.c, false);
    let lhs = |k: usize| View::rows(&u, k * out * g.c, out, g.c);
    products(x, x_layout, lhs, (g, out), y);
}

/// dx (n, c, h, w) += the input gradient of a convolution [`applies`] to, of geometry `g`
/// with `out` outputs and weight (out, c, 3, 3), for its output gradient `grad` (n, out, h,
/// w) contiguous: the forward of `grad` with the kernel flipped and its channels swapped.
///
/// That kernel's transform is the forward's with each kernel read in reverse, its channels
/// swapped by reading each (out, c) matrix as a transposed view.
pub(crate) fn input_gradient<T: WithDType>(
    grad: &[T],
    weight: &[T],
    g: &Geometry,
    out: usize,
    dx: &mut [T],
) {
    let flipped_geometry = Geometry { c: out, ..*g };
    let layout = Layout::contiguous((g.n, out, g.h, g.w));
    let u = transformed_weight(weight, out, g.c, true);
    let lhs = |k: usize| View::rows(&u, k * out * g.c, out, g.c).t();
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
    // Σ over tiles of Z ⊙ V, per component: 36 (out, c) matrices.
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
    weight_from_components(&p, out, c, dw);
}
