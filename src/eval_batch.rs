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
    /// The rows per call of the evaluation running on this thread, if one is.
    static SCOPE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` as an evaluation: at most `rows` rows per network call on this thread (at least
/// 1), and nothing in it backpropagates to the weights (see [`release`]).
pub fn scoped<T>(rows: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(SCOPE.with(|cell| cell.replace(Some(rows.max(1)))));
    f()
}

/// The rows per network call on this thread: the evaluation's, else [`DEFAULT`] (training
/// data mapped through an autoencoder, say).
pub fn rows() -> usize {
    SCOPE.with(Cell::get).unwrap_or(DEFAULT)
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

/// In an evaluation, a chunk's result without its op graph (which holds every activation of
/// the chunk's network call) unless a gradient may flow back to `input` (a likelihood's
/// divergence, a guidance classifier's gradient): stacked with the other chunks, it would
/// otherwise keep all their activations alive until the whole batch is done. Outside one
/// (training), the result keeps its graph for the weights' gradients.
pub fn release(result: Tensor, input: &Tensor) -> Tensor {
    let evaluating = SCOPE.with(Cell::get).is_some();
    match evaluating && !input.track_op() {
        true => result.detach(),
        false => result,
    }
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
        let weight = candle_core::Var::ones(2, candle_core::DType::F32, &candle_core::Device::Cpu);
        let weight = weight.unwrap();
        let input = Tensor::ones(2, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let output = input.mul(weight.as_tensor()).unwrap();
        assert!(
            release(output.clone(), &input).track_op(),
            "training keeps the graph"
        );
        let released = scoped(4, || release(output.clone(), &input));
        assert!(!released.track_op(), "an evaluation lets it go");
        let through_input = candle_core::Var::from_tensor(&input).unwrap();
        let kept = scoped(4, || release(output.clone(), through_input.as_tensor()));
        assert!(kept.track_op(), "unless a gradient flows to the input");
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
