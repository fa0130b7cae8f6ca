//! im2col and its adjoint col2im: the unfolding that turns a convolution into a matmul.
//!
//! Columns of an (n, c, h, w) input are a (c·k·k, n·h_out·w_out) matrix (Caffe's layout, the
//! batch folded into the columns): row (ci·k + ki)·k + kj, column (b·h_out + oy)·w_out + ox
//! holds x[b, ci, oy·stride + ki - padding, ox·stride + kj - padding] (zero outside the image).
//! The rows follow a (out, c, k, k) weight's memory order, so W (out, c·k·k) · columns is the
//! convolution. [`Im2Col`] and [`Col2Im`] are the two as candle ops, each the other's gradient;
//! the convolution itself (`crate::nn::conv`) calls the functions below on a few items at a
//! time so that the columns stay in cache.

use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};

use crate::nn::simd::multiversion;

/// Geometry of one square convolution: input (n, c, h, w), output (h_out, w_out).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub h_out: usize,
    pub w_out: usize,
}

impl Geometry {
    pub fn new(
        dims: (usize, usize, usize, usize),
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Self> {
        let (n, c, h, w) = dims;
        if kernel == 0 || stride == 0 {
            candle_core::bail!(
                "conv2d: kernel ({kernel}) and stride ({stride}) must be at least 1"
            );
        }
        if h + 2 * padding < kernel || w + 2 * padding < kernel {
            candle_core::bail!(
                "conv2d: input {h}x{w} with padding {padding} is smaller than the kernel {kernel}"
            );
        }
        let h_out = (h + 2 * padding - kernel) / stride + 1;
        let w_out = (w + 2 * padding - kernel) / stride + 1;
        Ok(Self {
            n,
            c,
            h,
            w,
            kernel,
            stride,
            padding,
            h_out,
            w_out,
        })
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    pub fn rows(&self) -> usize {
        self.c * self.kernel * self.kernel
    }

    /// Output positions of one item.
    pub fn positions(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Elements of one input item.
    pub fn item_size(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The output indices whose input index o·stride + offset - padding lies inside [0, size),
    /// for kernel offset `offset`, as a range low..high of 0..out.
    fn valid(&self, offset: usize, size: usize, out: usize) -> (usize, usize) {
        let s = self.stride;
        let low = if offset >= self.padding {
            0
        } else {
            (self.padding - offset).div_ceil(s)
        };
        let high = if size + self.padding > offset {
            ((size + self.padding - offset - 1) / s + 1).min(out)
        } else {
            0
        };
        (low.min(high), high)
    }
}

multiversion! {
    /// Columns of the items `items` of `src` (an (n, c, h, w) tensor with any strides), written
    /// to `dst` (cleared first) as a (rows, items.len()·positions) matrix. Meant for a chunk of
    /// items whose columns fit in cache. Every entry is written once, in order (the padding's
    /// zeros included), straight into `dst`'s spare capacity: no clearing pass, no per-run calls.
    pub(crate) fn im2col_into<T: WithDType>(
        src: &[T],
        layout: &Layout,
        g: &Geometry,
        items: Range<usize>,
        dst: &mut Vec<T>,
    ) -> () = im2col_body;
}

#[inline(always)]
fn im2col_body<T: WithDType>(
    src: &[T],
    layout: &Layout,
    g: &Geometry,
    items: Range<usize>,
    dst: &mut Vec<T>,
) {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let stride = layout.stride();
    let (s0, s1, s2, s3) = (stride[0], stride[1], stride[2], stride[3]);
    let offset = layout.start_offset();
    let zero = T::zero();
    let total = g.rows() * items.len() * g.positions();
    dst.clear();
    if total == 0 {
        return;
    }
    dst.reserve(total);
    let spare = &mut dst.spare_capacity_mut()[..total];
    let mut rows = spare.chunks_exact_mut(items.len() * g.positions());
    // Stride 1 with an output the input's size, rows contiguous: each row of an item's columns
    // is its channel's plane shifted by (ki − p)·w + (kj − p), the columns that wrapped around
    // an edge then zeroed: one copy per row instead of one per line.
    let same = s == 1 && s3 == 1 && s2 == g.w && g.w_out == g.w && g.h_out == g.h;
    for ci in 0..g.c {
        for ki in 0..k {
            let (oy_low, oy_high) = g.valid(ki, g.h, g.h_out);
            for kj in 0..k {
                let (ox_low, ox_high) = g.valid(kj, g.w, g.w_out);
                let row = rows.next().expect("one row per (channel, ki, kj)");
                if same {
                    for (b, item) in items.clone().zip(row.chunks_exact_mut(g.positions())) {
                        let plane = &src[offset + b * s0 + ci * s1..][..g.h * g.w];
                        shifted_plane(
                            plane,
                            item,
                            g,
                            (ki, kj),
                            (oy_low, oy_high),
                            (ox_low, ox_high),
                        );
                    }
                    continue;
                }
                for (b, item) in items.clone().zip(row.chunks_exact_mut(g.positions())) {
                    for (oy, line) in item.chunks_exact_mut(g.w_out).enumerate() {
                        if oy < oy_low || oy >= oy_high {
                            line.iter_mut().for_each(|v| {
                                v.write(zero);
                            });
                            continue;
                        }
                        let base = offset + b * s0 + ci * s1 + (oy * s + ki - p) * s2;
                        let (head, rest) = line.split_at_mut(ox_low);
                        let (body, tail) = rest.split_at_mut(ox_high - ox_low);
                        head.iter_mut().for_each(|v| {
                            v.write(zero);
                        });
                        tail.iter_mut().for_each(|v| {
                            v.write(zero);
                        });
                        if s == 1 && s3 == 1 {
                            let start = base + ox_low + kj - p;
                            let values = &src[start..start + body.len()];
                            for (v, &x) in body.iter_mut().zip(values) {
                                v.write(x);
                            }
                        } else {
                            for (v, ox) in body.iter_mut().zip(ox_low..) {
                                v.write(src[base + (ox * s + kj - p) * s3]);
                            }
                        }
                    }
                }
            }
        }
    }
    // SAFETY: the loops above wrote every one of the `total` entries: `rows` splits them into
    // c·k·k rows, each row into one item's positions per item; `shifted_plane` writes all of
    // an item's positions, and otherwise each item splits into h_out lines of w_out entries,
    // every line written whole (zeros, or head + body + tail).
    unsafe { dst.set_len(total) };
}

/// One row of one item's columns for a stride-1 convolution whose output has the input's size:
/// `dst[oy·w + ox] = plane[(oy + ki − p)·w + ox + kj − p]`, zero where that falls outside the
/// image. Writes every entry of `dst` (h·w of them).
#[inline(always)]
fn shifted_plane<T: WithDType>(
    plane: &[T],
    dst: &mut [MaybeUninit<T>],
    g: &Geometry,
    (ki, kj): (usize, usize),
    (oy_low, oy_high): (usize, usize),
    (ox_low, ox_high): (usize, usize),
) {
    let zero = T::zero();
    let w = g.w;
    let shift = (ki * w + kj) as isize - (g.padding * w + g.padding) as isize;
    let (low, high) = (oy_low * w, oy_high * w);
    dst[..low].iter_mut().for_each(|v| {
        v.write(zero);
    });
    dst[high..].iter_mut().for_each(|v| {
        v.write(zero);
    });
    // Inside rows low..high, the entries whose source lies inside the plane; the others are
    // wrapped-around edge columns, zeroed below with the rest of them.
    let first = low.max((-shift).max(0) as usize);
    let last = high.min((plane.len() as isize - shift).max(0) as usize);
    if first < last {
        let source = &plane[(first as isize + shift) as usize..(last as isize + shift) as usize];
        for (v, &x) in dst[first..last].iter_mut().zip(source) {
            v.write(x);
        }
    }
    // Column by column down the rows (at most `padding` columns each side): a line's edge is
    // one or two entries, too short for the memset call a contiguous loop becomes.
    for column in (0..ox_low).chain(ox_high..w) {
        dst[low..high]
            .iter_mut()
            .skip(column)
            .step_by(w)
            .for_each(|v| {
                v.write(zero);
            });
    }
}

/// Appends plane (item `b`, channel `ci`) of x (n, c, h, w), any strides, to `dst`, row by row:
/// one copy when its rows are contiguous.
pub(crate) fn extend_with_plane<T: WithDType>(
    x: &[T],
    layout: &Layout,
    g: &Geometry,
    (b, ci): (usize, usize),
    dst: &mut Vec<T>,
) {
    let stride = layout.stride();
    let (s2, s3) = (stride[2], stride[3]);
    let plane = layout.start_offset() + b * stride[0] + ci * stride[1];
    if s3 == 1 && s2 == g.w {
        dst.extend_from_slice(&x[plane..plane + g.h * g.w]);
    } else {
        for y in 0..g.h {
            dst.extend((0..g.w).map(|i| x[plane + y * s2 + i * s3]));
        }
    }
}

/// Adds columns `src` back into the images they came from: `src[offset + r·row_stride +
/// j·column_stride]` is column entry (r, j) of a (rows, g.n·positions) matrix, and `dst` holds
/// g.n items (n, c, h, w), contiguous.
pub(crate) fn col2im_add<T: WithDType>(
    src: &[T],
    offset: usize,
    strides: (usize, usize),
    g: &Geometry,
    dst: &mut [T],
) {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let per_item = g.positions();
    let (row_stride, column_stride) = strides;
    for ci in 0..g.c {
        for ki in 0..k {
            let (oy_low, oy_high) = g.valid(ki, g.h, g.h_out);
            for kj in 0..k {
                let (ox_low, ox_high) = g.valid(kj, g.w, g.w_out);
                let row = offset + ((ci * k + ki) * k + kj) * row_stride;
                for b in 0..g.n {
                    for oy in oy_low..oy_high {
                        let iy = oy * s + ki - p;
                        let image = &mut dst[((b * g.c + ci) * g.h + iy) * g.w..][..g.w];
                        let first = row + (b * per_item + oy * g.w_out) * column_stride;
                        if s == 1 && column_stride == 1 {
                            let values = &src[first + ox_low..first + ox_high];
                            let start = ox_low + kj - p;
                            for (pixel, value) in
                                image[start..start + values.len()].iter_mut().zip(values)
                            {
                                *pixel += *value;
                            }
                        } else {
                            for ox in ox_low..ox_high {
                                image[ox * s + kj - p] += src[first + ox * column_stride];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Unfolds (n, c, h, w) into columns (c·k·k, n·h_out·w_out) (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Im2Col {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// The adjoint of [`Im2Col`] for an input of shape (batch, channels, height, width): sums each
/// column entry back into the pixel it was copied from.
#[derive(Clone, Copy, Debug)]
pub struct Col2Im {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = match layout.dims() {
            &[n, c, h, w] => (n, c, h, w),
            other => {
                candle_core::bail!("im2col: expected an (n, c, h, w) input, got shape {other:?}")
            }
        };
        let g = Geometry::new(dims, self.kernel, self.stride, self.padding)?;
        let shape = Shape::from((g.rows(), g.n * g.positions()));
        fn unfold<T: WithDType>(src: &[T], layout: &Layout, g: &Geometry) -> Vec<T> {
            let mut dst = Vec::new();
            im2col_into(src, layout, g, 0..g.n, &mut dst);
            dst
        }
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(unfold(src, layout, &g)),
            CpuStorage::F64(src) => CpuStorage::F64(unfold(src, layout, &g)),
            other => candle_core::bail!(
                "im2col: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, shape))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (batch, channels, height, width) = arg.dims4()?;
        let adjoint = Col2Im {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            batch,
            channels,
            height,
            width,
        };
        Ok(Some(grad_res.apply_op1(adjoint)?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = (self.batch, self.channels, self.height, self.width);
        let g = Geometry::new(dims, self.kernel, self.stride, self.padding)?;
        if layout.dims() != [g.rows(), g.n * g.positions()] {
            candle_core::bail!(
                "col2im: expected columns of shape [{}, {}], got {:?}",
                g.rows(),
                g.n * g.positions(),
                layout.dims()
            );
        }
        fn fold<T: WithDType>(src: &[T], layout: &Layout, g: &Geometry) -> Vec<T> {
            let mut dst = vec![T::zero(); g.n * g.item_size()];
            let strides = (layout.stride()[0], layout.stride()[1]);
            col2im_add(src, layout.start_offset(), strides, g, &mut dst);
            dst
        }
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(fold(src, layout, &g)),
            CpuStorage::F64(src) => CpuStorage::F64(fold(src, layout, &g)),
            other => candle_core::bail!(
                "col2im: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, Shape::from(dims)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let unfold = Im2Col {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        };
        Ok(Some(grad_res.apply_op1(unfold)?))
    }
}
