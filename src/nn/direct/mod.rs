//! Direct 3×3 convolution (stride 1, padding 1) for narrow layers on AVX-512: the U-Net's 1- to
//! 48-channel convolutions on 4×4 to 16×16 planes, where im2col's columns (nine copies of the
//! input, or of the output gradient) cost a third of what the product does.
//!
//! Each item's channel planes are copied once with a zero row above and below and a guard
//! element at each end, so that tap (ki, kj) of output position q is the padded plane's entry
//! q + ki·w + kj: sixteen consecutive outputs read sixteen consecutive entries, and the lanes
//! whose tap wrapped around a row's edge (the left tap at column 0, the right one at w − 1)
//! are masked off in the load. Then (`kernels`):
//! - forward: a register block of 8 output channels × 32 positions sums over (channel, tap)
//!   with one masked load per vector and one broadcast weight per channel, gemm's
//!   microkernel reading the input where it lies instead of from unfolded columns;
//! - input gradient: the forward of the output gradient with the kernel flipped and its
//!   channels swapped (as in `crate::nn::conv_kernels`);
//! - weight gradient: dW[o, ci, t] = Σ_items Σ_q G[o, q] · tap t of x[ci] at q, a block of 4
//!   output channels × 3 taps (one kernel row per pass) summed over a chunk of items, one
//!   horizontal sum per chunk.
//!
//! An item's outputs are sums in one order (from the bias, channel by channel, tap by tap)
//! whatever the batch, so rows stay chunk-invariant. Rounding differs from im2col's gemm by a
//! few ulps; tests/it/conv.rs compares values and gradients with candle's conv2d.

use std::cell::RefCell;

use candle_core::Layout;

use crate::nn::im2col::{extend_with_plane, Geometry};

#[cfg(target_arch = "x86_64")]
mod kernels;
#[cfg(target_arch = "x86_64")]
use kernels::{edge_masks, Planes, GRADIENT_OUTPUTS, LANES, OUTPUTS};

/// Elements of padded planes one forward pass over the channels reads (24 KB of f32, half
/// of L1); wider inputs are summed in passes of channels.
const L1_PLANES: usize = 6 * 1024;

/// Elements of padded planes per chunk of items in the weight gradient (256 KB, in L2).
const L2_PLANES: usize = 64 * 1024;

/// Whether a convolution of geometry `g` with `out` output channels is computed here: 3×3,
/// stride 1, padding 1, on planes whose rows tile 16-lane vectors (w a multiple or divisor
/// of 16), on a CPU with AVX-512F. The same holds for its input gradient's convolution.
pub(crate) fn applies(g: &Geometry, out: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let rows_tile = g.w.is_multiple_of(LANES) || LANES.is_multiple_of(g.w);
        g.kernel == 3
            && g.stride == 1
            && g.padding == 1
            && rows_tile
            && (g.h * g.w).is_multiple_of(LANES)
            && out > 0
            && g.c > 0
            && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, out);
        false
    }
}

/// The (left, right) tap masks of each vector of 16 positions of a plane.
#[cfg(target_arch = "x86_64")]
fn vector_masks(g: &Geometry) -> Vec<(u16, u16)> {
    (0..g.h * g.w / LANES)
        .map(|v| edge_masks(v * LANES, g.w))
        .collect()
}

/// Elements of one channel's padded plane: a guard, a zero row, h rows, a zero row, a guard.
fn plane_size(g: &Geometry) -> usize {
    (g.h + 2) * g.w + 2
}

/// Items `items` of x (n, c, h, w), any strides, appended to `dst` as padded planes, item by
/// item and channel by channel.
fn pad_items(
    x: &[f32],
    layout: &Layout,
    g: &Geometry,
    items: std::ops::Range<usize>,
    dst: &mut Vec<f32>,
) {
    dst.clear();
    for b in items {
        for ci in 0..g.c {
            dst.extend(std::iter::repeat_n(0.0, 1 + g.w));
            extend_with_plane(x, layout, g, (b, ci), dst);
            dst.extend(std::iter::repeat_n(0.0, g.w + 1));
        }
    }
}

thread_local! {
    /// Padded planes, kept between calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// y (n, out, h·w) += conv(x, weight) where [`applies`] holds; `weight` is (out, c, 3, 3)
/// contiguous and y holds the bias beforehand.
pub(crate) fn forward(
    x: &[f32],
    x_layout: &Layout,
    weight: &[f32],
    g: &Geometry,
    out: usize,
    y: &mut [f32],
) {
    assert!(applies(g, out), "direct convolution: geometry {g:?}");
    let positions = g.h * g.w;
    assert_eq!(
        y.len(),
        g.n * out * positions,
        "direct convolution: output size"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let packed = pack_weight(weight, out, g.c);
        let block_stride = g.c * 9 * OUTPUTS;
        let masks = vector_masks(g);
        let plane = plane_size(g);
        // Channels per pass, so that a pass's planes stay in L1.
        let passes = (g.c * plane).div_ceil(L1_PLANES).max(1);
        let per_pass = g.c.div_ceil(passes);
        PADDED.with_borrow_mut(|padded| {
            for b in 0..g.n {
                pad_items(x, x_layout, g, b..b + 1, padded);
                let y_item = &mut y[b * out * positions..][..out * positions];
                for first in (0..g.c).step_by(per_pass) {
                    let planes = Planes {
                        data: &padded[first * plane..],
                        stride: plane,
                        width: g.w,
                        masks: &masks,
                    };
                    let channels = per_pass.min(g.c - first);
                    let weights = (&packed[first * 9 * OUTPUTS..], block_stride);
                    // SAFETY: `applies` checked AVX-512F; `padded` holds the item's c padded
                    // planes, `masks` one pair per vector, y_item out · positions outputs
                    // and `packed` every block of all c channels.
                    unsafe { kernels::forward_item(planes, channels, weights, out, y_item) };
                }
            }
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, x_layout, weight);
}

/// The weight (out, c, 3, 3) as blocks of OUTPUTS output channels, each (c, 9, OUTPUTS) with
/// the last block's missing channels zero: one block's broadcasts are consecutive.
#[cfg(target_arch = "x86_64")]
fn pack_weight(weight: &[f32], out: usize, c: usize) -> Vec<f32> {
    let blocks = out.div_ceil(OUTPUTS);
    let mut packed = vec![0.0; blocks * c * 9 * OUTPUTS];
    for o in 0..out {
        let (block, lane) = (o / OUTPUTS, o % OUTPUTS);
        for ci in 0..c {
            for tap in 0..9 {
                packed[((block * c + ci) * 9 + tap) * OUTPUTS + lane] =
                    weight[(o * c + ci) * 9 + tap];
            }
        }
    }
    packed
}

/// dW (out, c, 3, 3) += the weight gradient of y = conv(x, W) for the output gradient `grad`
/// (n, out, h·w) contiguous, where [`applies`] holds.
pub(crate) fn weight_gradient(
    grad: &[f32],
    x: &[f32],
    x_layout: &Layout,
    g: &Geometry,
    out: usize,
    dw: &mut [f32],
) {
    assert!(applies(g, out), "direct convolution: geometry {g:?}");
    let positions = g.h * g.w;
    assert_eq!(
        grad.len(),
        g.n * out * positions,
        "direct convolution: gradient size"
    );
    assert_eq!(
        dw.len(),
        out * g.c * 9,
        "direct convolution: weight gradient size"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let masks = vector_masks(g);
        let plane = plane_size(g);
        let per_chunk = (L2_PLANES / (g.c * plane)).max(1);
        PADDED.with_borrow_mut(|padded| {
            for first in (0..g.n).step_by(per_chunk) {
                let items = per_chunk.min(g.n - first);
                pad_items(x, x_layout, g, first..first + items, padded);
                for ci in 0..g.c {
                    let planes = Planes {
                        data: &padded[ci * plane..],
                        stride: g.c * plane,
                        width: g.w,
                        masks: &masks,
                    };
                    let mut o = 0;
                    while o < out {
                        let rows = &grad[(first * out + o) * positions..];
                        let grad_rows = (rows, positions, out * positions);
                        // SAFETY: `applies` checked AVX-512F; `rows` holds the chunk's
                        // gradient rows from o on (at least one, two when o + 1 < out),
                        // `planes` channel ci's padded plane of every item in the chunk.
                        let sums: Vec<[f32; 9]> = unsafe {
                            match out - o >= GRADIENT_OUTPUTS {
                                true => kernels::weight_gradient_block::<GRADIENT_OUTPUTS>(
                                    grad_rows, planes, items,
                                )
                                .to_vec(),
                                false => {
                                    kernels::weight_gradient_block::<1>(grad_rows, planes, items)
                                        .to_vec()
                                }
                            }
                        };
                        for (offset, taps) in sums.iter().enumerate() {
                            let target = &mut dw[((o + offset) * g.c + ci) * 9..][..9];
                            for (d, s) in target.iter_mut().zip(taps) {
                                *d += s;
                            }
                        }
                        o += sums.len();
                    }
                }
            }
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, x_layout);
}
