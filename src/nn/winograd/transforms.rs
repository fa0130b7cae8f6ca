//! The tile transforms of F(2×2, 3×3) (see the parent module): Bᵀ d B of the input's 4×4
//! patches, Aᵀ m A back to 2×2 outputs, and A dy Aᵀ of the output gradient's 2×2 blocks, each
//! a few passes over whole planes split by row and column parity.

use std::ops::Range;

use candle_core::{Layout, WithDType};

use crate::nn::im2col::Geometry;
use crate::nn::simd::multiversion;

/// How one item's 2×2 output tiles lie in the transformed matrices: `rows` × `columns` tiles,
/// each row of tiles followed by one spare column (so `stride` = columns + 1), which lets
/// every transform run as a few passes over whole planes: the spare column holds the values
/// a pass computes across a row's end, which no output reads (and which the weight
/// gradient multiplies by zero).
#[derive(Clone, Copy)]
pub(super) struct Tiles {
    pub rows: usize,
    pub columns: usize,
    pub stride: usize,
}

impl Tiles {
    pub fn new(g: &Geometry) -> Self {
        let columns = g.w.div_ceil(2);
        Self {
            rows: g.h.div_ceil(2),
            columns,
            stride: columns + 1,
        }
    }

    /// Matrix columns per item.
    pub fn per_item(&self) -> usize {
        self.rows * self.stride
    }
}

#[inline(always)]
fn add<T: WithDType>(dst: &mut [T], a: &[T], b: &[T]) {
    for (d, (&p, &q)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *d = p + q;
    }
}

#[inline(always)]
fn difference<T: WithDType>(dst: &mut [T], a: &[T], b: &[T]) {
    for (d, (&p, &q)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *d = p - q;
    }
}

#[inline(always)]
fn negate<T: WithDType>(dst: &mut [T], a: &[T]) {
    for (d, &p) in dst.iter_mut().zip(a) {
        *d = T::zero() - p;
    }
}

/// dst = a + b + c.
#[inline(always)]
fn add3<T: WithDType>(dst: &mut [T], a: &[T], b: &[T], c: &[T]) {
    for (d, ((&p, &q), &r)) in dst.iter_mut().zip(a.iter().zip(b).zip(c)) {
        *d = p + q + r;
    }
}

/// dst = a − b − c.
#[inline(always)]
fn subtract3<T: WithDType>(dst: &mut [T], a: &[T], b: &[T], c: &[T]) {
    for (d, ((&p, &q), &r)) in dst.iter_mut().zip(a.iter().zip(b).zip(c)) {
        *d = p - q - r;
    }
}

multiversion! {
    /// Bᵀ d B for every tile of the items `items` of x (n, c, h, w), any strides: into `v`
    /// as 16 (c, width) row-major matrices, tile (item i of the chunk, ty, tx) at column
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
/// by row and column parity: `parts[2·rp + cp][r·stride + t] = p(2r + rp, 2t + cp)`. Writes
/// only the image's entries: the padding's stay as they were (zero), since every plane has
/// the same geometry.
#[inline(always)]
fn split_plane<T: WithDType>(
    x: &[T],
    plane: usize,
    g: &Geometry,
    (s2, s3): (usize, usize),
    parts: &mut [Vec<T>],
) {
    let stride = Tiles::new(g).stride;
    for y in 0..g.h {
        let row = plane + y * s2;
        let (q, [even, odd]) = (y + 1, &mut parts[2 * ((y + 1) % 2)..][..2]) else {
            unreachable!()
        };
        let at = (q / 2) * stride;
        let (even, odd) = (&mut even[at..at + stride], &mut odd[at..at + stride]);
        // x[y, 2t] = p(q, 2t + 1) = odd[t], x[y, 2t + 1] = p(q, 2t + 2) = even[t + 1].
        if s3 == 1 {
            let pairs = x[row..row + g.w].chunks_exact(2);
            if let [last] = pairs.remainder() {
                odd[g.w / 2] = *last;
            }
            for (pair, (o, e)) in pairs.zip(odd.iter_mut().zip(&mut even[1..])) {
                *o = pair[0];
                *e = pair[1];
            }
        } else {
            for j in 0..g.w {
                let value = x[row + j * s3];
                match j % 2 {
                    0 => odd[j / 2] = value,
                    _ => even[j / 2 + 1] = value,
                }
            }
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
    // Each parity part has rows + 1 rows of the padded plane.
    let part = per_item + stride;
    let strides = layout.stride();
    let offset = layout.start_offset();
    let zero = T::zero();
    let mut parts = vec![vec![zero; part]; 4];
    // Bᵀ along the rows, entry j of each row parity rp at 4·rp + j. The last entry is never
    // computed (it would read past the part) and stays zero.
    let mut rows = vec![vec![zero; part]; 8];
    let component = g.c * width;
    for (i, b) in items.enumerate() {
        for ci in 0..g.c {
            let plane = offset + b * strides[0] + ci * strides[1];
            split_plane(x, plane, g, (strides[2], strides[3]), &mut parts);
            // A tile's row d = [p(2t), p(2t+1), p(2t+2), p(2t+3)] = [e_t, o_t, e_t+1, o_t+1]
            // and Bᵀ d = [d0 − d2, d1 + d2, d2 − d1, d1 − d3], for all rows in one pass.
            for rp in 0..2 {
                let (even, odd) = (&parts[2 * rp], &parts[2 * rp + 1]);
                let (e0, e1) = (&even[..part - 1], &even[1..]);
                let (o0, o1) = (&odd[..part - 1], &odd[1..]);
                let out = &mut rows[4 * rp..4 * rp + 4];
                difference(&mut out[0], e0, e1);
                add(&mut out[1], o0, e1);
                difference(&mut out[2], e1, o0);
                difference(&mut out[3], o0, o1);
            }
            // Bᵀ across rows: a tile's rows 2ty … 2ty + 3 are even row ty, odd row ty, even
            // row ty + 1 and odd row ty + 1.
            let column = ci * width + i * per_item;
            for j in 0..4 {
                let (d0, d1) = (&rows[j][..per_item], &rows[4 + j][..per_item]);
                let (d2, d3) = (&rows[j][stride..], &rows[4 + j][stride..]);
                let at = |a: usize| (a * 4 + j) * component + column;
                difference(&mut v[at(0)..][..per_item], d0, d2);
                add(&mut v[at(1)..][..per_item], d1, d2);
                difference(&mut v[at(2)..][..per_item], d2, d1);
                difference(&mut v[at(3)..][..per_item], d1, d3);
            }
        }
    }
}

multiversion! {
    /// y += Aᵀ m A for every tile, m the 16 (out, width) products in `m`, y (n, out, h, w)
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
    let (stride, per_item, columns) = (tiles.stride, tiles.per_item(), tiles.columns);
    let (h, w) = (g.h, g.w);
    let component = out * width;
    let zero = T::zero();
    // Aᵀ m, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]: row a, entry j at 4a + j, per tile.
    let mut rows = vec![vec![zero; per_item]; 8];
    // (Aᵀ m) A: row a's outputs at even columns (2a) and odd columns (2a + 1), per tile.
    let mut outputs = vec![vec![zero; per_item]; 4];
    for (i, b) in items.enumerate() {
        for o in 0..out {
            let start = o * width + i * per_item;
            let entry = |a: usize, j: usize| &m[(a * 4 + j) * component + start..][..per_item];
            for j in 0..4 {
                add3(&mut rows[j], entry(0, j), entry(1, j), entry(2, j));
                subtract3(&mut rows[4 + j], entry(1, j), entry(2, j), entry(3, j));
            }
            for a in 0..2 {
                let row = &rows[4 * a..4 * a + 4];
                add3(&mut outputs[2 * a], &row[0], &row[1], &row[2]);
                subtract3(&mut outputs[2 * a + 1], &row[1], &row[2], &row[3]);
            }
            let plane = &mut y[(b * out + o) * h * w..][..h * w];
            for (yy, line) in plane.chunks_exact_mut(w).enumerate() {
                let (ty, a) = (yy / 2, yy % 2);
                let even = &outputs[2 * a][ty * stride..][..columns];
                let odd = &outputs[2 * a + 1][ty * stride..][..columns];
                let pairs = line.chunks_exact_mut(2);
                for (pair, (&p, &q)) in pairs.zip(even.iter().zip(odd)) {
                    pair[0] += p;
                    pair[1] += q;
                }
                if w % 2 == 1 {
                    line[w - 1] += even[columns - 1];
                }
            }
        }
    }
}

multiversion! {
    /// A dy Aᵀ for every tile of the items `items` of the output gradient (n, out, h, w)
    /// contiguous: into `z` as 16 (out, width) row-major matrices, columns as in
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
    // The gradient's tiles by (row, column) parity: phases[2r + s][ty·stride + tx] =
    // dy[2ty + r, 2tx + s]. Entries past the image (and the spare column) are never written
    // and stay zero, so the spare columns of z are zero.
    let mut phases = vec![vec![zero; per_item]; 4];
    // A dy, A = [[1, 0], [1, 1], [1, −1], [0, −1]]: row i's two columns at 2i and 2i + 1.
    let mut rows = vec![vec![zero; per_item]; 8];
    for (i, b) in items.enumerate() {
        for o in 0..out {
            let plane = &grad[(b * out + o) * h * w..][..h * w];
            for (yy, line) in plane.chunks_exact(w).enumerate() {
                let (ty, r) = (yy / 2, yy % 2);
                let [even, odd] = &mut phases[2 * r..2 * r + 2] else {
                    unreachable!()
                };
                let at = ty * stride;
                let (even, odd) = (&mut even[at..at + stride], &mut odd[at..at + stride]);
                let pairs = line.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    even[w / 2] = *last;
                }
                for (pair, (e, o)) in pairs.zip(even.iter_mut().zip(odd.iter_mut())) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            for s in 0..2 {
                let (d0, d1) = (&phases[s], &phases[2 + s]);
                rows[s].copy_from_slice(d0);
                add(&mut rows[2 + s], d0, d1);
                difference(&mut rows[4 + s], d0, d1);
                negate(&mut rows[6 + s], d1);
            }
            let start = o * width + i * per_item;
            for r in 0..4 {
                // (u, v) Aᵀ = [u, u + v, u − v, −v].
                let (u, v) = (&rows[2 * r], &rows[2 * r + 1]);
                let at = |j: usize| (r * 4 + j) * component + start;
                z[at(0)..][..per_item].copy_from_slice(u);
                add(&mut z[at(1)..][..per_item], u, v);
                difference(&mut z[at(2)..][..per_item], u, v);
                negate(&mut z[at(3)..][..per_item], v);
            }
        }
    }
}
