//! The evaluation batch: how many rows a network sees at once while a trial is evaluated
//! (the experiment's `eval_batch`). Sampling, the traced denoising strip, likelihoods,
//! metrics that query the model, classifier guidance and feature extraction split their
//! batches into chunks of at most this many rows, so that memory follows the chunk, not the
//! sample count.
//!
//! The numbers do not depend on the chunk: rows never mix inside a network (GroupNorm and
//! attention work per item, convolutions item by item) and the linear layers' products are
//! row-invariant ([`crate::nn::linear`]), so a chunk of 1, of 7 or the whole batch give the
//! same bytes on the CPU. Solvers and samplers still see the whole batch (an adaptive step
//! size is chosen for all samples at once), only the network calls are split.
//!
//! The size is scoped to a thread, like [`crate::nn::path::with_candle_ops`]: evaluation sets
//! it once around a trial and every layer below reads it, rather than threading it through
//! every sampler, metric and guidance signature.

use std::cell::Cell;

use candle_core::Tensor;

/// Rows per network call unless the experiment says otherwise: past it, a larger chunk buys
/// no speed (the U-Net's cost per image is flat from 64 rows, the mlp's from a few hundred;
/// `bench --chunks` measures it) and only costs memory.
pub const DEFAULT: usize = 256;

thread_local! {
    static ROWS: Cell<usize> = const { Cell::new(DEFAULT) };
}

/// Runs `f` with at most `rows` rows per network call on this thread (at least 1).
pub fn scoped<T>(rows: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            ROWS.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(ROWS.with(|cell| cell.replace(rows.max(1))));
    f()
}

/// The rows per network call on this thread.
pub fn rows() -> usize {
    ROWS.with(Cell::get)
}

/// (first row, row count) of each chunk of `n` rows.
pub fn spans(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let rows = rows();
    (0..n)
        .step_by(rows)
        .map(move |first| (first, rows.min(n - first)))
}

/// `each(first, count)` for every chunk of `n` rows, the results stacked along rows: one call
/// with no copy when `n` fits one chunk.
pub fn by_rows(
    n: usize,
    mut each: impl FnMut(usize, usize) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    if n <= rows() {
        return each(0, n);
    }
    let parts = spans(n)
        .map(|(first, count)| each(first, count))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&parts, 0)
}

/// Rows `first..first + count` of a per-row tensor, or the tensor itself where it has one row
/// for all (a noise level shared by the batch).
pub fn narrow(t: &Tensor, n: usize, first: usize, count: usize) -> candle_core::Result<Tensor> {
    match t.dims().first() {
        Some(&rows) if rows == n => t.narrow(0, first, count),
        _ => Ok(t.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_rows_in_order_and_the_scope_ends() {
        assert_eq!(rows(), DEFAULT);
        let spans = scoped(7, || spans(20).collect::<Vec<_>>());
        assert_eq!(spans, [(0, 7), (7, 7), (14, 6)]);
        assert_eq!(rows(), DEFAULT, "the scope restores the size");
        assert_eq!(scoped(0, rows), 1, "at least one row");
        let stacked = scoped(3, || {
            by_rows(8, |first, count| {
                Tensor::arange(
                    first as u32,
                    (first + count) as u32,
                    &candle_core::Device::Cpu,
                )
            })
        })
        .unwrap();
        assert_eq!(
            stacked.to_vec1::<u32>().unwrap(),
            (0..8).collect::<Vec<_>>()
        );
        let shared = Tensor::zeros((1, 1), candle_core::DType::F32, &candle_core::Device::Cpu);
        let shared = shared.unwrap();
        assert_eq!(narrow(&shared, 8, 3, 3).unwrap().dims(), [1, 1]);
    }
}
