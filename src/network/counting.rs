//! A model that counts its calls, so the engine (not the sampler, nor a metric) says how
//! many network evaluations a run took, and optionally traces one sample along the way.

use std::cell::{Cell, RefCell};

use candle_core::Tensor;

use super::ScoreModel;

/// (sigma, first row of x) at each score evaluation of a sampling run.
pub type Trace = Vec<(f64, Vec<f64>)>;

/// Wraps a model and counts its calls: one call on the whole batch is one NFE. When tracing,
/// it also keeps the first row of every input with its noise level, on the model's device
/// until the run ends (no copy to the CPU per step).
pub struct CountingModel<'a> {
    inner: &'a dyn ScoreModel,
    calls: Cell<u64>,
    trace: Option<RefCell<Vec<(Tensor, Tensor)>>>,
}

impl<'a> CountingModel<'a> {
    pub fn new(inner: &'a dyn ScoreModel) -> Self {
        CountingModel {
            inner,
            calls: Cell::new(0),
            trace: None,
        }
    }

    /// Also records (sigma, first row of x) at every call.
    pub fn tracing(inner: &'a dyn ScoreModel) -> Self {
        CountingModel {
            trace: Some(RefCell::new(Vec::new())),
            ..CountingModel::new(inner)
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// The recorded (sigma, first row) pairs, in call order, copied to the CPU.
    pub fn trace(self) -> candle_core::Result<Trace> {
        let on_cpu = |t: Tensor| t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
        self.trace
            .map(RefCell::into_inner)
            .unwrap_or_default()
            .into_iter()
            .map(|(sigma, x)| Ok((on_cpu(sigma)?[0], on_cpu(x)?)))
            .collect()
    }

    fn count(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<()> {
        self.calls.set(self.calls.get() + 1);
        if let Some(trace) = &self.trace {
            // `* 1.0` copies the row into a buffer of its own (a view would keep the whole
            // batch alive); exact, as is the later widening to f64.
            let first = |t: &Tensor| -> candle_core::Result<Tensor> {
                Ok((t.narrow(0, 0, 1)?.flatten_all()? * 1.0)?.detach())
            };
            trace.borrow_mut().push((first(sigma)?, first(x)?));
        }
        Ok(())
    }
}

// Sampling never backpropagates: without the detaches every step's output would keep the
// whole chain of earlier steps alive through the weights' op graph.
impl ScoreModel for CountingModel<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.count(x, sigma)?;
        Ok(self.inner.score(x, sigma)?.detach())
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.count(x, sigma)?;
        Ok(self.inner.denoise(x, sigma)?.detach())
    }

    fn score_divergence(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        self.count(x, sigma)?;
        self.inner.score_divergence(x, sigma, probes)
    }
}
