//! Evaluation of one trial: draw from the prior (and, where there are classes to target, a
//! target class per sample), run the sampler on the model as the trial's guidance presents
//! it, score the samples with every metric.
//! The engine, not the sampler, counts score evaluations, and traces one sample along the
//! way for the denoising strip of image data. What the runner composes around this path (a
//! space sampling runs in, feature spaces) comes in as [`Around`].

use std::time::Instant;

use candle_core::Tensor;

mod metrics;
mod outcome;
mod space;

pub use outcome::{EvaluateError, Evaluation, Protocol};
pub use space::{Around, SampleSpace};

use crate::dataset::Samples;
use crate::guidance::{CountedModel, Prepared};
use crate::network::counting::{CountingModel, Trace};
use crate::parameterisation::Model;
use crate::rng::{Rng, Stream};
use crate::sampler::StepInfo;
use crate::schedule::{Grid, Schedule};
use crate::trial::Trial;

/// How far a sample may lie from the origin, in multiples of the larger of the schedule's
/// sigma_max and the data's largest magnitude, before it counts as diverged: a sampler that
/// ran away but has not yet overflowed.
const RUNAWAY: f64 = 1e3;

/// The error for samples with non-finite values or values past the runaway bound, naming
/// the sampler's step size where it has one and the evaluations spent.
fn diverged(trial: &Trial, samples: &Samples, nfe: u64) -> Option<EvaluateError> {
    let data_scale = trial
        .held_out
        .rows()
        .flat_map(|r| r.iter().map(|v| v.abs()))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let bound = RUNAWAY * trial.schedule.sigma_max().max(data_scale);
    // Each sample counts once: as non-finite if any value is, else as runaway if any value
    // lies past the bound.
    let (mut non_finite, mut runaway) = (0, 0);
    for row in samples.rows() {
        if row.iter().any(|v| !v.is_finite()) {
            non_finite += 1;
        } else if row.iter().any(|v| v.abs() > bound) {
            runaway += 1;
        }
    }
    let total = samples.len();
    let beyond = format!(
        "beyond ±{bound:.3e} (10^3 × the larger of sigma_max and the data's largest value)"
    );
    let which = match (non_finite, runaway) {
        (0, 0) => return None,
        (n, 0) => format!("{n} of {total} samples are non-finite (NaN or inf)"),
        (0, r) => format!("{r} of {total} samples are {beyond}"),
        (n, r) => format!("{n} of {total} samples are non-finite (NaN or inf) and {r} {beyond}"),
    };
    let fix = match trial.sampler.step_size() {
        Some((key, value)) => format!(
            "lower the step size (`sampler.{key}`, now {}) or use more steps",
            crate::trial::display_value(&serde_json::json!(value))
        ),
        None => "lower the step size or use more steps, or try another sampler \
                 (`sampler.kind`)"
            .to_string(),
    };
    Some(EvaluateError::NonFiniteSamples {
        sampler: trial.names.sampler.to_string(),
        which,
        nfe,
        fix,
    })
}

/// Samples `trial.settings.num_samples` items and computes the trial's metrics, with the
/// stages `around` composes (see [`Around`]). Each feature metric is also computed on real
/// training items in place of samples, recorded as `<metric>_floor`: the value a perfect
/// model would get. Networks see at most `trial.settings.eval_batch` rows at once.
pub fn evaluate(
    trial: &Trial,
    model: &Model,
    around: &Around,
    on_step: &mut dyn FnMut(StepInfo),
) -> Result<Evaluation, EvaluateError> {
    crate::eval_batch::scoped(trial.settings.eval_batch, || {
        evaluate_in_chunks(trial, model, around, on_step)
    })
}

fn evaluate_in_chunks(
    trial: &Trial,
    model: &Model,
    around: &Around,
    on_step: &mut dyn FnMut(StepInfo),
) -> Result<Evaluation, EvaluateError> {
    let start = Instant::now();
    let run = sample(trial, model, around, on_step)?;
    let sample_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (out, trace) = match around.space {
        Some(space) => (
            space.to_data(&run.out)?,
            map_trace(space, run.trace, trial)?,
        ),
        None => (run.out, run.trace),
    };
    let map_seconds = start.elapsed().as_secs_f64();
    let mut samples = Samples::from_tensor(&out)?.reshaped(&trial.dataset.shape());
    if let Some(targets) = run.targets {
        samples = samples.with_labels(targets);
    }
    if let Some(error) = diverged(trial, &samples, run.nfe) {
        return Err(error);
    }

    let start = Instant::now();
    let scored = metrics::score(trial, model, &samples, around, run.nfe)?;
    let mut metrics = scored.values;
    if let Some(space) = around.space {
        for (name, seconds) in space.costs() {
            metrics.push((name.to_string(), seconds));
        }
        metrics.push(("decode_s".to_string(), map_seconds));
    }
    if around.time_per_item {
        let per_item = 1000.0 * (sample_seconds + map_seconds) / samples.len() as f64;
        metrics.push(("sample_ms_per_image".to_string(), per_item));
    }
    if let (Some(space), Some(_)) = (around.features, &scored.identity) {
        for (fact, value) in space.map.facts() {
            metrics.push((format!("features_{fact}"), value));
        }
    }
    Ok(Evaluation {
        samples,
        nfe: run.nfe,
        sample_seconds,
        metrics,
        metric_seconds: start.elapsed().as_secs_f64(),
        features_identity: scored.identity,
        trace,
        protocols: scored.protocols,
        failures: scored.failures,
    })
}

/// One sampling run: the sampler's output (in the space it ran in), the class each sample
/// was generated for, the network evaluations and the traced first sample.
struct Run {
    out: Tensor,
    targets: Option<Vec<u32>>,
    nfe: u64,
    trace: Trace,
}

/// Draws the prior (in `space` when given) and a target class per sample where there are
/// classes to target, and runs the sampler on the model as the guidance presents it.
fn sample(
    trial: &Trial,
    model: &Model,
    around: &Around,
    on_step: &mut dyn FnMut(StepInfo),
) -> Result<Run, EvaluateError> {
    let mut rng = Rng::new(trial.settings.seed, Stream::Sampling);
    let n = trial.settings.num_samples;
    let dim = around.space.map_or(trial.dataset.dim(), |s| s.dim());
    let prior = prior_sample(trial.schedule.as_ref(), n, dim, &mut rng);
    // The classes of a guidance's own classifier, else those the network conditions on.
    let classes = trial
        .guidance
        .classes()
        .unwrap_or(trial.architecture.classes());
    let targets: Option<Vec<u32>> = (classes > 0).then(|| {
        trial
            .guidance
            .target()
            .draw(classes, n, trial.settings.seed)
    });
    let labels = match &targets {
        Some(t) => Some(Tensor::from_slice(t, t.len(), &trial.device)?),
        None => None,
    };
    // Counted beneath the guidance, so every evaluation it makes is one.
    let counted = CountedModel::new(model);
    let unprepared = Prepared::default();
    let prepared = around.guidance.unwrap_or(&unprepared);
    let guided = trial.guidance.guide(&counted, labels.as_ref(), prepared)?;
    let grid = Grid::new(trial.schedule.as_ref(), trial.sampler.grid());
    // The sampler sees the guided model detached from the weights' graph, and for image
    // data traces its first sample.
    let sampled = if trial.dataset.shape().len() == 3 {
        CountingModel::tracing(guided.as_ref())
    } else {
        CountingModel::new(guided.as_ref())
    };
    let out = trial.sampler.sample(
        &sampled,
        prior.to_tensor(&trial.device)?,
        &grid,
        &mut rng,
        on_step,
    )?;
    let nfe = counted.calls();
    Ok(Run {
        out,
        targets,
        nfe,
        trace: sampled.trace()?,
    })
}

/// Draws from the schedule's prior in sigma space, N(0, prior_std^2 I).
pub fn prior_sample(schedule: &dyn Schedule, n: usize, dim: usize, rng: &mut Rng) -> Samples {
    let std = schedule.prior_std();
    Samples::new(dim, (0..n * dim).map(|_| std * rng.normal()).collect())
}

/// The trace of a run in another space, mapped back: each traced item as the data-space
/// item it stands for.
fn map_trace(space: &dyn SampleSpace, trace: Trace, trial: &Trial) -> candle_core::Result<Trace> {
    if trace.is_empty() {
        return Ok(trace);
    }
    let dim = trace[0].1.len();
    let values: Vec<f32> = trace
        .iter()
        .flat_map(|(_, row)| row.iter().map(|v| *v as f32))
        .collect();
    let items = Tensor::from_vec(values, (trace.len(), dim), &trial.device)?;
    let mapped = Samples::from_tensor(&space.to_data(&items)?)?;
    Ok(trace
        .iter()
        .zip(mapped.rows())
        .map(|((sigma, _), row)| (*sigma, row.to_vec()))
        .collect())
}
