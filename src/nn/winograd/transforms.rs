//! The tile transforms of F(4×4, 3×3) (see the parent module): Bᵀ d B of the input's 6×6
//! patches, Aᵀ m A back to 4×4 outputs and A dy Aᵀ of the output gradient's 4×4 blocks (the
//! kernel's are in `kernel`). Each is a few passes over whole planes, split by row and column
//! phase (position mod 4), so that the loops vectorise.
//!
//! The matrices are Lavin & Gray's, at the points 0, ±1, ±2 and ∞:
//!
//! ```text
//!      ⎡4  0 −5  0  1  0⎤        ⎡ 1/4     0    0 ⎤
//!      ⎢0 −4 −4  1  1  0⎥        ⎢−1/6  −1/6 −1/6 ⎥        ⎡1  1  1  1  1  0⎤
//! Bᵀ = ⎢0  4 −4 −1  1  0⎥    G = ⎢−1/6   1/6 −1/6 ⎥   Aᵀ = ⎢0  1 −1  2 −2  0⎥
//!      ⎢0 −2 −1  2  1  0⎥        ⎢1/24  1/12  1/6 ⎥        ⎢0  1  1  4  4  0⎥
//!      ⎢0  2 −1 −2  1  0⎥        ⎢1/24 −1/12  1/6 ⎥        ⎣0  1 −1  8 −8  1⎦
//!      ⎣0  4  0 −5  0  1⎦        ⎣  0     0    1  ⎦
//! ```

use std::ops::Range;

use candle_core::{Layout, WithDType};

use super::passes::{four_planes, four_to_six, planes, six, six_to_four, six_to_six};
use crate::nn::im2col::Geometry;
use crate::nn::simd::multiversion;

/// Outputs along each side of a tile.
const TILE: usize = 4;

/// Entries along each side of a transformed tile (an input patch's side).
pub(super) const POINTS: usize = 6;

/// Entries of a transformed tile: one gemm each.
pub(super) const COMPONENTS: usize = POINTS * POINTS;

/// How one item's 4×4 output tiles lie in the transformed matrices: `rows` × ⌈w/4⌉ tiles,
/// each row of tiles followed by one spare column (so `stride` = columns + 1), which lets
/// every transform run as a few passes over whole planes: the spare column holds the values
/// a pass computes across a row's end, which no output reads (and which the weight
/// gradient multiplies by zero).
#[derive(Clone, Copy)]
pub(super) struct Tiles {
    pub rows: usize,
    pub stride: usize,
}

impl Tiles {
    pub fn new(g: &Geometry) -> Self {
        Self {
            rows: g.h.div_ceil(TILE),
            stride: g.w.div_ceil(TILE) + 1,
        }
    }

    /// Matrix columns per item.
    pub fn per_item(&self) -> usize {
        self.rows * self.stride
    }
}

/// Bᵀ d for a row (or column) d of an input patch.
#[inline(always)]
fn input_transform<T: WithDType>([d0, d1, d2, d3, d4, d5]: [T; 6]) -> [T; 6] {
    let (two, four, five) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(5.0));
    let (p, q) = (d4 - four * d2, d3 - four * d1);
    let (r, s) = (d4 - d2, two * (d3 - d1));
    [
        four * d0 - five * d2 + d4,
        p + q,
        p - q,
        r + s,
        r - s,
        four * d1 - five * d3 + d5,
    ]
}

/// Aᵀ m for a row (or column) m of a product tile.
#[inline(always)]
fn output_transform<T: WithDType>([m0, m1, m2, m3, m4, m5]: [T; 6]) -> [T; 4] {
    let (two, four, eight) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let (sum12, difference12) = (m1 + m2, m1 - m2);
    let (sum34, difference34) = (m3 + m4, m3 - m4);
    [
        m0 + sum12 + sum34,
        difference12 + two * difference34,
        sum12 + four * sum34,
        difference12 + eight * difference34 + m5,
    ]
}

/// A u for a row (or column) u of an output gradient's tile.
#[inline(always)]
fn gradient_transform<T: WithDType>([u0, u1, u2, u3]: [T; 4]) -> [T; 6] {
    let (two, four, eight) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let (even, odd) = (u0 + u2, u1 + u3);
    let (even2, odd2) = (u0 + four * u2, two * u1 + eight * u3);
    [u0, even + odd, even - odd, even2 + odd2, even2 - odd2, u3]
}

multiversion! {
    /// Bᵀ d B for every tile of the items `items` of x (n, c, h, w), any strides: into `v`
    /// as 36 (c, width) row-major matrices, tile (item i of the chunk, ty, tx) at column
    /// i·per_item + ty·stride + tx (see [`Tiles`]); the columns past the items' are left as
    /// they are.
    pub(super) fn transform_input<T: WithDType>(
        x: &[T],
        layout: &Layout,
        g: &Geometry,
        items: Range<usize>,
        v: &mut [T],
        width: usize,
    ) -> () = transform_input_body;
}

/// The plane at `plane` padded (p(q, j) = x[q − 1, j − 1], zero outside the image) and split
/// by row and column phase: `parts[(4·(q mod 4) + j mod 4)·part + (q / 4)·stride + j / 4] =
/// p(q, j)`. Writes only the image's entries: the padding's stay as they were (zero), since
/// every plane has the same geometry.
#[inline(always)]
fn split_plane<T: WithDType>(
    x: &[T],
    plane: usize,
    g: &Geometry,
    (s2, s3): (usize, usize),
    parts: &mut [T],
) {
    let stride = Tiles::new(g).stride;
    let part = parts.len() / 16;
    for y in 0..g.h {
        let (q, row) = (y + 1, plane + y * s2);
        let start = (TILE * (q % TILE)) * part + (q / TILE) * stride;
        // x[y, j] = p(q, j + 1): column phase (j + 1) mod 4, at (j + 1) / 4.
        let mut columns = 0;
        if s3 == 1 {
            let [first, second, third, fourth] = four_planes(parts, start, part, stride);
            let quads = x[row..row + g.w].chunks_exact(TILE);
            columns = g.w - quads.remainder().len();
            let each = first[1..].iter_mut().zip(second).zip(third).zip(fourth);
            for (quad, (((p0, p1), p2), p3)) in quads.zip(each) {
                (*p1, *p2, *p3, *p0) = (quad[0], quad[1], quad[2], quad[3]);
            }
        }
        for j in columns..g.w {
            let phase = (j + 1) % TILE;
            parts[start + phase * part + (j + 1) / TILE] = x[row + j * s3];
        }
    }
}

#[inline(always)]
fn transform_input_body<T: WithDType>(
    x: &[T],
    layout: &Layout,
    g: &Geometry,
    items: Range<usize>,
    v: &mut [T],
    width: usize,
) {
    let tiles = Tiles::new(g);
    let (stride, per_item) = (tiles.stride, tiles.per_item());
    // Each phase part has rows + 1 rows of tiles.
    let part = per_item + stride;
    let strides = layout.stride();
    let offset = layout.start_offset();
    let zero = T::zero();
    let mut parts = vec![zero; 16 * part];
    // Bᵀ along the padded rows: entry b of the rows of phase r at (6r + b)·part. The last
    // entry is never computed (it would read past the part) and stays zero.
    let mut rows = vec![zero; TILE * POINTS * part];
    let component = g.c * width;
    for (i, b) in items.enumerate() {
        for ci in 0..g.c {
            let plane = offset + b * strides[0] + ci * strides[1];
            split_plane(x, plane, g, (strides[2], strides[3]), &mut parts);
            // A tile's row of patch entries d_j = p(q, 4t + j) is phase j at t for j < 4
            // and phase j − 4 at t + 1 after.
            for phase in 0..TILE {
                let inputs = six(|j| &parts[(TILE * phase + j % TILE) * part + j / TILE..]);
                let outputs = planes(&mut rows, POINTS * phase * part, part, part - 1);
                six_to_six(inputs, outputs, input_transform);
            }
            // Bᵀ across rows: a tile's rows 4ty … 4ty + 5 are the phases 0 … 3 at tile row
            // ty and phases 0 and 1 at ty + 1.
            let column = ci * width + i * per_item;
            for b in 0..POINTS {
                let inputs =
                    six(|r| &rows[(POINTS * (r % TILE) + b) * part + (r / TILE) * stride..]);
                let outputs = planes(v, b * component + column, POINTS * component, per_item);
                six_to_six(inputs, outputs, input_transform);
            }
        }
    }
}

multiversion! {
    /// y += Aᵀ m A for every tile, m the 36 (out, width) products in `m`, y (n, out, h, w)
    /// contiguous holding the items `items`.
    pub(super) fn transform_output<T: WithDType>(
        m: &[T],
        width: usize,
        g: &Geometry,
        out: usize,
        items: Range<usize>,
        y: &mut [T],
    ) -> () = transform_output_body;
}

#[inline(always)]
fn transform_output_body<T: WithDType>(
    m: &[T],
    width: usize,
    g: &Geometry,
    out: usize,
    items: Range<usize>,
    y: &mut [T],
) {
    let tiles = Tiles::new(g);
    let (stride, per_item) = (tiles.stride, tiles.per_item());
    let (h, w) = (g.h, g.w);
    let component = out * width;
    let zero = T::zero();
    // Aᵀ m over the tile's rows: output row i, entry b at 6i + b, per tile.
    let mut rows = vec![zero; TILE * POINTS * per_item];
    // (Aᵀ m) A: output (i, j) at 4i + j, per tile.
    let mut outputs = vec![zero; TILE * TILE * per_item];
    for (i, item) in items.enumerate() {
        for o in 0..out {
            let start = o * width + i * per_item;
            let entry = |a: usize, b: usize| &m[(POINTS * a + b) * component + start..];
            for b in 0..POINTS {
                let inputs = six(|a| entry(a, b));
                let targets = planes(&mut rows, b * per_item, POINTS * per_item, per_item);
                six_to_four(inputs, targets, output_transform);
            }
            for a in 0..TILE {
                let inputs = six(|b| &rows[(POINTS * a + b) * per_item..]);
                let targets = planes(&mut outputs, TILE * a * per_item, per_item, per_item);
                six_to_four(inputs, targets, output_transform);
            }
            let plane = &mut y[(item * out + o) * h * w..][..h * w];
            for (yy, line) in plane.chunks_exact_mut(w).enumerate() {
                let (ty, a) = (yy / TILE, yy % TILE);
                let phase = |j: usize| &outputs[(TILE * a + j) * per_item + ty * stride..];
                let (p0, p1, p2, p3) = (phase(0), phase(1), phase(2), phase(3));
                let full = w - w % TILE;
                let quads = line.chunks_exact_mut(TILE);
                let each = p0.iter().zip(p1).zip(p2).zip(p3);
                for (quad, (((&v0, &v1), &v2), &v3)) in quads.zip(each) {
                    quad[0] += v0;
                    quad[1] += v1;
                    quad[2] += v2;
                    quad[3] += v3;
                }
                for (j, value) in line.iter_mut().enumerate().skip(full) {
                    *value += phase(j % TILE)[j / TILE];
                }
            }
        }
    }
}

multiversion! {
    /// A dy Aᵀ for every tile of the items `items` of the output gradient (n, out, h, w)
    /// contiguous: into `z` as 36 (out, width) row-major matrices, columns as in
    /// [`transform_input`].
    pub(super) fn transform_gradient<T: WithDType>(
        grad: &[T],
        g: &Geometry,
        out: usize,
        items: Range<usize>,
        z: &mut [T],
        width: usize,
    ) -> () = transform_gradient_body;
}

#[inline(always)]
fn transform_gradient_body<T: WithDType>(
    grad: &[T],
    g: &Geometry,
    out: usize,
    items: Range<usize>,
    z: &mut [T],
    width: usize,
) {
    let tiles = Tiles::new(g);
    let (stride, per_item) = (tiles.stride, tiles.per_item());
    let (h, w) = (g.h, g.w);
    let component = out * width;
    let zero = T::zero();
    // The gradient's tiles by (row, column) phase: phases[(4r + s)·per_item + ty·stride + tx]
    // = dy[4ty + r, 4tx + s]. Entries past the image (and the spare column) are never
    // written and stay zero, so the spare columns of z are zero.
    let mut phases = vec![zero; TILE * TILE * per_item];
    // A dy over the tile's rows: entry k of column phase s at 4k + s.
    let mut rows = vec![zero; POINTS * TILE * per_item];
    for (i, b) in items.enumerate() {
        for o in 0..out {
            let plane = &grad[(b * out + o) * h * w..][..h * w];
            for (yy, line) in plane.chunks_exact(w).enumerate() {
                let start = TILE * (yy % TILE) * per_item + (yy / TILE) * stride;
                let [p0, p1, p2, p3] = four_planes(&mut phases, start, per_item, stride);
                let quads = line.chunks_exact(TILE);
                let full = w - quads.remainder().len();
                let each = p0.iter_mut().zip(p1).zip(p2).zip(p3);
                for (quad, (((e0, e1), e2), e3)) in quads.zip(each) {
                    (*e0, *e1, *e2, *e3) = (quad[0], quad[1], quad[2], quad[3]);
                }
                for (j, &value) in line.iter().enumerate().skip(full) {
                    phases[start + (j % TILE) * per_item + j / TILE] = value;
                }
            }
            for s in 0..TILE {
                let phase = |r: usize| &phases[(TILE * r + s) * per_item..];
                let inputs = [phase(0), phase(1), phase(2), phase(3)];
                let outputs = planes(&mut rows, s * per_item, TILE * per_item, per_item);
                four_to_six(inputs, outputs, gradient_transform);
            }
            let start = o * width + i * per_item;
            for k in 0..POINTS {
                let row = |s: usize| &rows[(TILE * k + s) * per_item..];
                let inputs = [row(0), row(1), row(2), row(3)];
                let outputs = planes(z, POINTS * k * component + start, component, per_item);
                four_to_six(inputs, outputs, gradient_transform);
            }
        }
    }
}
