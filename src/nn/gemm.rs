//! Matrix products on strided views of plain slices, through the `gemm` crate (the one candle's
//! CPU matmul calls, same version), so that the convolutions multiply their operands where they
//! lie: a weight read transposed, one item's columns inside a chunk, an output gradient item by
//! item, with no copy, no transpose and no tensor around them. Bounds are checked here, once
//! per product, so the single `unsafe` call below stays inside its slices.

use candle_core::WithDType;

/// An (rows, cols) matrix inside a slice: entry (i, j) is `data[offset + i·row_stride +
/// j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> View<'a, T> {
    /// A row-major (rows, cols) matrix starting at `offset`.
    pub fn rows(data: &'a [T], offset: usize, rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transposed matrix (same memory).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// One past the largest index an (rows, cols) matrix at `offset` with these strides touches.
fn extent(offset: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        return offset;
    }
    offset + (rows - 1) * row_stride + (cols - 1) * col_stride + 1
}

/// The compute threads candle uses (its matmul's parallelism, kept the same here).
fn parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        threads => gemm::Parallelism::Rayon(threads),
    }
}

/// dst = lhs · rhs, or dst += lhs · rhs with `accumulate`, dst being the (lhs.rows, rhs.cols)
/// matrix at `offset` of `dst` with strides `(row_stride, col_stride)`. f32 and f64 only.
pub(crate) fn matmul<T: WithDType>(
    dst: &mut [T],
    offset: usize,
    strides: (usize, usize),
    accumulate: bool,
    lhs: View<T>,
    rhs: View<T>,
) {
    assert!(
        matches!(T::DTYPE, candle_core::DType::F32 | candle_core::DType::F64),
        "matmul: f32 or f64 only, not {:?}",
        T::DTYPE
    );
    assert_eq!(lhs.cols, rhs.rows, "matmul: inner dimensions differ");
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    for (name, view) in [("lhs", &lhs), ("rhs", &rhs)] {
        let end = extent(
            view.offset,
            view.rows,
            view.cols,
            view.row_stride,
            view.col_stride,
        );
        assert!(
            end <= view.data.len(),
            "matmul: {name} reaches {end}, past its {}",
            view.data.len()
        );
    }
    let end = extent(offset, m, n, strides.0, strides.1);
    assert!(
        end <= dst.len(),
        "matmul: dst reaches {end}, past its {}",
        dst.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[offset + i * strides.0 + j * strides.1] = T::zero();
                }
            }
        }
        return;
    }
    // SAFETY: every index of the three matrices lies inside its slice (checked above), `dst`
    // is borrowed mutably and so overlaps neither operand, and T is f32 or f64 (checked
    // above), the types gemm dispatches on. gemm reads dst only when `accumulate`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            strides.1 as isize,
            strides.0 as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism(),
        );
    }
}
