//! Evaluation of one trial: draw from the prior (and, where there are classes to target, a
//! target class per sample), run the sampler on the model as the trial's guidance presents
//! it, score the samples with every metric.
//! The engine, not the sampler, counts score evaluations, and traces one sample along the
//! way for the denoising strip of image data.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::dataset::Samples;
use crate::features::{FeatureSet, FeatureSpace};
use crate::metric::MetricInput;
use crate::network::counting::{CountingModel, Trace};
use crate::network::ScoreModel;
use crate::parameterisation::Model;
use crate::rng::{Rng, Stream};
use crate::sampler::StepInfo;
use crate::schedule::{Grid, Schedule};
use crate::trial::Trial;

pub struct Evaluation {
    /// With the shape of the data, and the class each was generated for where the model is
    /// class-conditional.
    pub samples: Samples,
    pub nfe: u64,
    pub sample_seconds: f64,
    /// In the order of the experiment's `eval` list.
    pub metrics: Vec<(String, f64)>,
    pub metric_seconds: f64,
    /// The feature space the metrics used, where one was.
    pub features_identity: Option<String>,
    /// For image data: (sigma, first sample) at every score evaluation of the run.
    pub trace: Trace,
    /// How each metric was measured, by metric name.
    pub protocols: BTreeMap<String, Protocol>,
    /// Metrics that failed (their values are NaN in `metrics`): why, one line each.
    pub failures: Vec<String>,
}

/// What a metric value needs beside it to be compared with another: how many samples it
/// saw, against which reference set of what size, and in which feature space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub samples: usize,
    /// `held_out`: data drawn from the dataset apart from the training set.
    pub reference: String,
    pub reference_size: usize,
    /// Score-network evaluations the sampler used per sample batch.
    pub nfe: u64,
    /// The feature extractor and its hash, for metrics computed in a feature space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// The metric's own estimator and settings ([`crate::metric::Metric::protocol`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("sampling failed in the tensor library: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("metric `{metric}` failed: {message}")]
    Metric { metric: String, message: String },
    #[error("feature extraction failed: {0}")]
    Features(String),
    #[error(
        "sampler `{sampler}` diverged: {bad} of {total} samples are non-finite (NaN or inf). \
         Fix: {fix}"
    )]
    NonFiniteSamples {
        sampler: String,
        bad: usize,
        total: usize,
        fix: String,
    },
}

/// The error for samples with non-finite values, naming the sampler's step size where it
/// has one.
fn diverged(trial: &Trial, samples: &Samples) -> Option<EvaluateError> {
    let bad = samples
        .rows()
        .filter(|r| r.iter().any(|v| !v.is_finite()))
        .count();
    if bad == 0 {
        return None;
    }
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
        bad,
        total: samples.len(),
        fix,
    })
}

/// Samples `trial.settings.num_samples` items and computes the trial's metrics; `features`
/// is the prepared feature space of the trial's `features:` slot (needed only when a metric
/// uses features). Each feature metric is also computed on real training items in place of
/// samples, recorded as `<metric>_floor`: the value a perfect model would get.
pub fn evaluate(
    trial: &Trial,
    model: &Model,
    features: Option<&FeatureSpace>,
    on_step: &mut dyn FnMut(StepInfo),
) -> Result<Evaluation, EvaluateError> {
    let start = Instant::now();
    let mut rng = Rng::new(trial.settings.seed, Stream::Sampling);
    let n = trial.settings.num_samples;
    // A latent trial samples latents (decoded below); `identity`'s are the data's own.
    let latent = trial
        .latent
        .active()
        .then(|| trial.latent.require())
        .transpose()?;
    let prior = prior_sample(trial.schedule.as_ref(), n, trial.latent.dim(), &mut rng);
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
    let guided = trial.guidance.guide(model, labels.as_ref())?;
    let grid = Grid::new(trial.schedule.as_ref(), trial.sampler.grid());
    let shape = trial.dataset.shape();
    let counting = if shape.len() == 3 {
        CountingModel::tracing(guided.as_ref())
    } else {
        CountingModel::new(guided.as_ref())
    };
    let out = trial.sampler.sample(
        &counting,
        prior.to_tensor(&trial.device)?,
        &grid,
        &mut rng,
        on_step,
    )?;
    // Classifier-free guidance evaluates the model twice per call.
    let nfe = counting.calls() * trial.guidance.evaluations_per_call();
    let mut trace = counting.trace()?;
    let sample_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let out = match latent {
        Some(prepared) => {
            trace = decode_trace(prepared, trace, &trial.device)?;
            prepared.decode(&out)?
        }
        None => out,
    };
    let decode_seconds = start.elapsed().as_secs_f64();
    let mut samples = Samples::from_tensor(&out)?.reshaped(&shape);
    if let Some(targets) = targets {
        samples = samples.with_labels(targets);
    }
    if let Some(error) = diverged(trial, &samples) {
        return Err(error);
    }

    let start = Instant::now();
    let feature_set = match features {
        Some(space) if trial.metrics.iter().any(|(_, m)| m.uses_features()) => {
            Some(FeatureSet::of_samples(space, &samples).map_err(EvaluateError::Features)?)
        }
        _ => None,
    };
    let mut metrics = Vec::new();
    let mut protocols = BTreeMap::new();
    let mut failures = Vec::new();
    let recon_set = match (latent, features, &feature_set) {
        (Some(prepared), Some(space), Some(_)) => Some(reconstructions(prepared, space, trial)?),
        _ => None,
    };
    let latent_model = latent.map(|_| DataSpaceOnly {
        latent: trial.latent.name,
    });
    let metric_model: &dyn ScoreModel = match &latent_model {
        Some(guard) => guard,
        None => model,
    };
    for (name, metric) in &trial.metrics {
        let input = MetricInput {
            samples: &samples,
            reference: &trial.held_out,
            dataset: trial.dataset.as_ref(),
            seed: trial.settings.seed,
            model: metric_model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: feature_set.as_ref(),
        };
        // A failing metric is recorded as NaN with its message; the others still count.
        let measured = match metric.compute(&input) {
            Ok(measured) => measured,
            Err(message) => {
                failures.push(
                    EvaluateError::Metric {
                        metric: name.clone(),
                        message,
                    }
                    .to_string(),
                );
                metrics.push((name.clone(), f64::NAN));
                continue;
            }
        };
        protocols.insert(
            name.clone(),
            Protocol {
                samples: samples.len(),
                reference: "held_out".to_string(),
                reference_size: trial.held_out.len(),
                nfe,
                features: feature_set
                    .as_ref()
                    .filter(|_| metric.uses_features())
                    .map(|f| f.identity.clone()),
                settings: with_facts(metric.protocol(&input), &measured.facts),
            },
        );
        metrics.push((name.clone(), measured.value));
        for (detail, value) in measured.details {
            metrics.push((format!("{name}_{detail}"), value));
        }
        // The real-vs-real floor; metrics that need generated samples (class accuracy) have
        // none.
        if let Some(space) = features.filter(|_| metric.uses_features()) {
            let floor = MetricInput {
                features: Some(&space.floor),
                ..input
            };
            if let Ok(measured) = metric.compute(&floor) {
                metrics.push((format!("{name}_floor"), measured.value));
                for (detail, value) in measured.details {
                    metrics.push((format!("{name}_floor_{detail}"), value));
                }
            }
        }
        // A latent trial's autoencoder floor: the floor's training items encoded and decoded.
        if let (true, Some(recon)) = (metric.uses_features(), &recon_set) {
            let input = MetricInput {
                features: Some(recon),
                ..input
            };
            if let Ok(measured) = metric.compute(&input) {
                metrics.push((format!("{name}_recon"), measured.value));
                for (detail, value) in measured.details {
                    metrics.push((format!("{name}_recon_{detail}"), value));
                }
            }
        }
    }
    // Latent trials: the autoencoder's training and the training set's encoding (once per
    // autoencoder) and the decoding of these samples; sampling plus decoding per sample in
    // milliseconds.
    if let Some(prepared) = latent {
        metrics.push(("autoencoder_s".to_string(), prepared.history.seconds));
        metrics.push(("encode_s".to_string(), prepared.encode_seconds));
        metrics.push(("decode_s".to_string(), decode_seconds));
    }
    // In a sweep with latent trials, every trial (pixel ones too).
    if trial.latent.reports_time_per_image() {
        let per_image = 1000.0 * (sample_seconds + decode_seconds) / n as f64;
        metrics.push(("sample_ms_per_image".to_string(), per_image));
    }
    if let (Some(space), Some(_)) = (features, &feature_set) {
        for (fact, value) in space.map.facts() {
            metrics.push((format!("features_{fact}"), value));
        }
    }
    Ok(Evaluation {
        samples,
        nfe,
        sample_seconds,
        metrics,
        metric_seconds: start.elapsed().as_secs_f64(),
        features_identity: feature_set.map(|f| f.identity),
        trace,
        protocols,
        failures,
    })
}

/// Draws from the schedule's prior in sigma space, N(0, prior_std^2 I).
pub fn prior_sample(schedule: &dyn Schedule, n: usize, dim: usize, rng: &mut Rng) -> Samples {
    let std = schedule.prior_std();
    Samples::new(dim, (0..n * dim).map(|_| std * rng.normal()).collect())
}

/// A metric's protocol settings with the facts of one measurement in place of the settings of
/// the same name (what was used, e.g. a bandwidth chosen as `auto`).
fn with_facts(
    settings: Vec<(&'static str, String)>,
    facts: &[(&'static str, String)],
) -> BTreeMap<String, String> {
    settings
        .into_iter()
        .chain(facts.iter().cloned())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The trace of a latent run, decoded: each traced latent as the image it decodes to.
fn decode_trace(
    prepared: &crate::latent::Prepared,
    trace: Trace,
    device: &candle_core::Device,
) -> candle_core::Result<Trace> {
    if trace.is_empty() {
        return Ok(trace);
    }
    let dim = trace[0].1.len();
    let values: Vec<f32> = trace
        .iter()
        .flat_map(|(_, row)| row.iter().map(|v| *v as f32))
        .collect();
    let latents = Tensor::from_vec(values, (trace.len(), dim), device)?;
    let decoded = Samples::from_tensor(&prepared.decode(&latents)?)?;
    Ok(trace
        .iter()
        .zip(decoded.rows())
        .map(|((sigma, _), row)| (*sigma, row.to_vec()))
        .collect())
}

/// What metrics see as the model of a latent trial: its score model scores latents, so a
/// metric that evaluates it on data-space points (a likelihood) gets this error instead.
struct DataSpaceOnly {
    latent: &'static str,
}

impl DataSpaceOnly {
    fn refuse(&self) -> candle_core::Error {
        candle_core::Error::Msg(format!(
            "it evaluates the score model on data-space points, but with `latent: {}` the \
             model scores the autoencoder's latents. Fix: remove it from `eval`, or set \
             `latent: identity`",
            self.latent
        ))
    }
}

impl ScoreModel for DataSpaceOnly {
    fn score(&self, _x: &Tensor, _sigma: &Tensor) -> candle_core::Result<Tensor> {
        Err(self.refuse())
    }

    fn denoise(&self, _x: &Tensor, _sigma: &Tensor) -> candle_core::Result<Tensor> {
        Err(self.refuse())
    }

    fn score_divergence(
        &self,
        _x: &Tensor,
        _sigma: &Tensor,
        _probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Err(self.refuse())
    }
}

/// The features of the real-vs-real floor's training items after encode -> decode (their
/// scaled posterior means decoded): what a perfect latent model would reach.
fn reconstructions(
    prepared: &crate::latent::Prepared,
    space: &FeatureSpace,
    trial: &Trial,
) -> Result<FeatureSet, EvaluateError> {
    let latents = prepared
        .training_latents
        .head(trial.settings.num_samples)
        .to_tensor(&trial.device)?;
    let decoded =
        Samples::from_tensor(&prepared.decode(&latents)?)?.reshaped(&trial.dataset.shape());
    Ok(FeatureSet {
        samples: space
            .map
            .extract(&decoded)
            .map_err(EvaluateError::Features)?,
        reference: space.reference.clone(),
        predicted: None,
        intended: None,
        identity: space.map.identity(),
    })
}
