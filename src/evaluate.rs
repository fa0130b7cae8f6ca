//! Evaluation of one trial: draw from the prior, run the sampler on the model, score the
//! samples with every metric. The engine, not the sampler, counts score evaluations.

use std::cell::Cell;
use std::time::Instant;

use candle_core::Tensor;

use crate::dataset::Samples;
use crate::metric::MetricInput;
use crate::network::ScoreModel;
use crate::rng::{Rng, Stream};
use crate::sampler::StepInfo;
use crate::schedule::{Grid, Schedule};
use crate::trial::Trial;

/// Wraps a model and counts its calls: one call on the whole batch is one NFE.
pub struct CountingModel<'a> {
    inner: &'a dyn ScoreModel,
    calls: Cell<u64>,
}

impl<'a> CountingModel<'a> {
    pub fn new(inner: &'a dyn ScoreModel) -> Self {
        CountingModel {
            inner,
            calls: Cell::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.get()
    }
}

// Sampling never backpropagates: without the detaches every step's output would keep the
// whole chain of earlier steps alive through the weights' op graph.
impl ScoreModel for CountingModel<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        Ok(self.inner.score(x, sigma)?.detach())
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        Ok(self.inner.denoise(x, sigma)?.detach())
    }

    fn score_divergence(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        self.calls.set(self.calls.get() + 1);
        self.inner.score_divergence(x, sigma, probes)
    }
}

pub struct Evaluation {
    pub samples: Samples,
    pub nfe: u64,
    pub sample_seconds: f64,
    /// In the order of the experiment's `eval` list.
    pub metrics: Vec<(String, f64)>,
    pub metric_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("sampling failed in the tensor library: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("metric `{metric}` failed: {message}")]
    Metric { metric: String, message: String },
}

/// Samples `trial.settings.num_samples` points and computes the trial's metrics.
pub fn evaluate(
    trial: &Trial,
    model: &dyn ScoreModel,
    on_step: &mut dyn FnMut(StepInfo),
) -> Result<Evaluation, EvaluateError> {
    let start = Instant::now();
    let mut rng = Rng::new(trial.settings.seed, Stream::Sampling);
    let prior = prior_sample(
        trial.schedule.as_ref(),
        trial.settings.num_samples,
        trial.dataset.dim(),
        &mut rng,
    );
    let grid = Grid::new(trial.schedule.as_ref(), trial.sampler.grid());
    let counting = CountingModel::new(model);
    let out = trial.sampler.sample(
        &counting,
        prior.to_tensor(&trial.device)?,
        &grid,
        &mut rng,
        on_step,
    )?;
    let samples = Samples::from_tensor(&out)?;
    let sample_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut metrics = Vec::new();
    for (name, metric) in &trial.metrics {
        let input = MetricInput {
            samples: &samples,
            reference: &trial.held_out,
            dataset: trial.dataset.as_ref(),
            seed: trial.settings.seed,
            model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
        };
        let measured = metric
            .compute(&input)
            .map_err(|message| EvaluateError::Metric {
                metric: name.clone(),
                message,
            })?;
        metrics.push((name.clone(), measured.value));
        for (detail, value) in measured.details {
            metrics.push((format!("{name}_{detail}"), value));
        }
    }
    Ok(Evaluation {
        samples,
        nfe: counting.calls(),
        sample_seconds,
        metrics,
        metric_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Draws from the schedule's prior in sigma space, N(0, prior_std^2 I).
pub fn prior_sample(schedule: &dyn Schedule, n: usize, dim: usize, rng: &mut Rng) -> Samples {
    let std = schedule.prior_std();
    Samples::new(dim, (0..n * dim).map(|_| std * rng.normal()).collect())
}
