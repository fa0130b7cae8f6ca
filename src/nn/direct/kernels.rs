//! The AVX-512 register blocks of the direct convolution (see `crate::nn::direct`): the
//! forward's (output channels × positions, summed over channels and taps) and the weight
//! gradient's (output channels × taps, summed over items and positions). Both read padded
//! planes, where tap (ki, kj) of output position q is entry q + ki·w + kj of its channel's
//! plane, the lanes whose tap wrapped around a row's edge masked off in the load.

use std::arch::x86_64::*;

/// Positions per vector (f32 lanes of AVX-512).
pub(super) const LANES: usize = 16;

/// Output channels per forward register block.
pub(super) const OUTPUTS: usize = 8;

/// Vectors of positions per forward register block: 8 × 2 accumulators, independent chains.
pub(super) const VECTORS: usize = 2;

/// Output channels per weight-gradient register block: 4 × 3 tap accumulators.
pub(super) const GRADIENT_OUTPUTS: usize = 4;

/// Padded planes of one item (or the first of several): `data` holds `channels` planes of
/// `stride` elements, rows `width` long; `masks[v]` are the (left, right) tap masks of
/// positions 16·v.. (see [`edge_masks`]).
#[derive(Clone, Copy)]
pub(super) struct Planes<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub width: usize,
    pub masks: &'a [(u16, u16)],
}

/// The lanes of the 16 positions from `first` whose left (kj = 0) and right (kj = 2) taps lie
/// inside their row, as load masks.
pub(super) fn edge_masks(first: usize, w: usize) -> (u16, u16) {
    let (mut left, mut right) = (0u16, 0u16);
    for lane in 0..LANES {
        let column = (first + lane) % w;
        left |= u16::from(column != 0) << lane;
        right |= u16::from(column != w - 1) << lane;
    }
    (left, right)
}

/// Tap (ki, kj) of the 16 positions at `at` (already offset by ki·w + kj), edge lanes zero.
#[inline(always)]
unsafe fn tap(at: *const f32, kj: usize, (left, right): (u16, u16)) -> __m512 {
    match kj {
        0 => _mm512_maskz_loadu_ps(left, at),
        1 => _mm512_loadu_ps(at),
        _ => _mm512_maskz_loadu_ps(right, at),
    }
}

/// y (out, positions) += Σ_ci Σ_taps weight · tap of the `planes` channels, for one item:
/// every block of OUTPUTS channels × VECTORS vectors, then the last vectors one at a time.
/// `packed` holds the weight blocks of these channels ((c, 9, OUTPUTS) each, `block_stride`
/// apart).
///
/// # Safety
/// The CPU must have AVX-512F; `planes.data` must hold the channels' padded planes,
/// `planes.masks` one pair per vector of positions, y out · positions entries and `packed`
/// every block.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_item(
    planes: Planes,
    channels: usize,
    (packed, block_stride): (&[f32], usize),
    out: usize,
    y: &mut [f32],
) {
    let vectors = planes.masks.len();
    let positions = vectors * LANES;
    debug_assert!(planes.data.len() >= channels * planes.stride);
    debug_assert_eq!(y.len(), out * positions);
    for block in 0..out.div_ceil(OUTPUTS) {
        debug_assert!(packed.len() >= block * block_stride + channels * 9 * OUTPUTS);
        let weights = packed.as_ptr().add(block * block_stride);
        let outputs = OUTPUTS.min(out - block * OUTPUTS);
        let target = (
            y.as_mut_ptr().add(block * OUTPUTS * positions),
            outputs,
            positions,
        );
        let mut v = 0;
        while v + VECTORS <= vectors {
            forward_tile::<VECTORS>(planes, (weights, channels), v, target);
            v += VECTORS;
        }
        while v < vectors {
            forward_tile::<1>(planes, (weights, channels), v, target);
            v += 1;
        }
    }
}

/// Vectors `first..first + V` of the `outputs` channels at `y` (rows `positions` apart) +=
/// the sum over the channels and taps.
#[inline(always)]
unsafe fn forward_tile<const V: usize>(
    planes: Planes,
    (weights, channels): (*const f32, usize),
    first: usize,
    (y, outputs, positions): (*mut f32, usize, usize),
) {
    let masks: [(u16, u16); V] = std::array::from_fn(|v| planes.masks[first + v]);
    let start = first * LANES;
    let mut acc = [[_mm512_setzero_ps(); V]; OUTPUTS];
    for (o, row) in acc.iter_mut().enumerate().take(outputs) {
        for (v, a) in row.iter_mut().enumerate() {
            *a = _mm512_loadu_ps(y.add(o * positions + start + v * LANES));
        }
    }
    for ci in 0..channels {
        let channel = planes.data.as_ptr().add(ci * planes.stride + start);
        let w_channel = weights.add(ci * 9 * OUTPUTS);
        for ki in 0..3 {
            for kj in 0..3 {
                let source = channel.add(ki * planes.width + kj);
                let x: [__m512; V] =
                    std::array::from_fn(|v| tap(source.add(v * LANES), kj, masks[v]));
                let w_tap = w_channel.add((ki * 3 + kj) * OUTPUTS);
                for (o, row) in acc.iter_mut().enumerate() {
                    let weight = _mm512_set1_ps(*w_tap.add(o));
                    for (v, a) in row.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(weight, x[v], *a);
                    }
                }
            }
        }
    }
    for (o, row) in acc.iter().enumerate().take(outputs) {
        for (v, a) in row.iter().enumerate() {
            _mm512_storeu_ps(y.add(o * positions + start + v * LANES), *a);
        }
    }
}

/// Σ over `items` items and every position of G[o, q] · tap t of channel plane x[q], for the
/// O output gradient rows at `grad` (rows `row_stride` apart, items `item_stride` apart) and
/// the channel's padded plane in `planes` (items `planes.stride` apart): the weight
/// gradient's [o][t] entries for that channel. One pass per kernel row, O × 3 accumulators
/// (all nine taps at once spill), one horizontal sum per entry.
///
/// # Safety
/// The CPU must have AVX-512F; `grad` must hold the O rows of every item and `planes.data`
/// the padded plane of every item.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weight_gradient_block<const O: usize>(
    (grad, row_stride, item_stride): (&[f32], usize, usize),
    planes: Planes,
    items: usize,
) -> [[f32; 9]; O] {
    let positions = planes.masks.len() * LANES;
    debug_assert!(grad.len() >= (items - 1) * item_stride + (O - 1) * row_stride + positions);
    let mut sums = [[0f32; 9]; O];
    for ki in 0..3 {
        let mut acc = [[_mm512_setzero_ps(); 3]; O];
        for b in 0..items {
            let rows = grad.as_ptr().add(b * item_stride);
            let plane = planes
                .data
                .as_ptr()
                .add(b * planes.stride + ki * planes.width);
            for (v, &masks) in planes.masks.iter().enumerate() {
                let start = v * LANES;
                let g: [__m512; O] =
                    std::array::from_fn(|o| _mm512_loadu_ps(rows.add(o * row_stride + start)));
                for kj in 0..3 {
                    let x = tap(plane.add(start + kj), kj, masks);
                    for (o, row) in acc.iter_mut().enumerate() {
                        row[kj] = _mm512_fmadd_ps(g[o], x, row[kj]);
                    }
                }
            }
        }
        for (row, sum) in acc.iter().zip(sums.iter_mut()) {
            for (kj, a) in row.iter().enumerate() {
                sum[ki * 3 + kj] = _mm512_reduce_add_ps(*a);
            }
        }
    }
    sums
}
