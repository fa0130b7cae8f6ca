//! Scoring one trial's samples with each of its metrics: the value and its details, how it
//! was measured, and for feature metrics the floors beside it (real training items in place
//! of samples; in another sample space, those items mapped there and back). A failing
//! metric is recorded as NaN with its message; the others still count.

use std::collections::BTreeMap;

use super::outcome::{EvaluateError, Protocol};
use super::space::{Around, SampleSpace};
use crate::dataset::Samples;
use crate::features::{FeatureSet, FeatureSpace};
use crate::metric::{Metric, MetricInput};
use crate::network::ScoreModel;
use crate::parameterisation::Model;
use crate::trial::Trial;

/// The metrics of one trial, in the order of its `eval` list.
pub(super) struct Scored {
    pub values: Vec<(String, f64)>,
    pub protocols: BTreeMap<String, Protocol>,
    pub failures: Vec<String>,
    /// The feature space the metrics used, where one was.
    pub identity: Option<String>,
}

pub(super) fn score(
    trial: &Trial,
    model: &Model,
    samples: &Samples,
    around: &Around,
    nfe: u64,
) -> Result<Scored, EvaluateError> {
    let uses_features = trial.metrics.iter().any(|(_, m)| m.uses_features());
    let feature_set = match around.features {
        Some(space) if uses_features => {
            Some(FeatureSet::of_samples(space, samples).map_err(EvaluateError::Features)?)
        }
        _ => None,
    };
    let round_trip = match (around.space, around.features, &feature_set) {
        (Some(sample_space), Some(space), Some(_)) => {
            Some(round_trip_features(sample_space, space, trial)?)
        }
        _ => None,
    };
    let metric_model: &dyn ScoreModel = match around.space {
        Some(space) => space.model_for_metrics(),
        None => model,
    };
    let mut scored = Scored {
        values: Vec::new(),
        protocols: BTreeMap::new(),
        failures: Vec::new(),
        identity: None,
    };
    for (name, metric) in &trial.metrics {
        let input = MetricInput {
            samples,
            reference: &trial.held_out,
            dataset: trial.dataset.as_ref(),
            seed: trial.settings.seed,
            model: metric_model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: feature_set.as_ref(),
        };
        let floors = Floors {
            features: around.features,
            round_trip: round_trip.as_ref(),
        };
        scored.add(name, metric.as_ref(), &input, floors, nfe);
    }
    scored.identity = feature_set.map(|f| f.identity);
    Ok(scored)
}

/// The feature sets a feature metric is also computed on.
struct Floors<'a> {
    /// Real training items in place of samples (`<metric>_floor`).
    features: Option<&'a FeatureSpace>,
    /// Those items mapped into the sample space and back (`<metric>_recon`).
    round_trip: Option<&'a FeatureSet>,
}

impl Scored {
    /// One metric's value, details and protocol, then its floors.
    fn add(
        &mut self,
        name: &str,
        metric: &dyn Metric,
        input: &MetricInput,
        floors: Floors,
        nfe: u64,
    ) {
        let measured = match metric.compute(input) {
            Ok(measured) => measured,
            Err(message) => {
                let failure = EvaluateError::Metric {
                    metric: name.to_string(),
                    message,
                };
                self.failures.push(failure.to_string());
                self.values.push((name.to_string(), f64::NAN));
                return;
            }
        };
        self.protocols.insert(
            name.to_string(),
            Protocol {
                samples: input.samples.len(),
                reference: "held_out".to_string(),
                reference_size: input.reference.len(),
                nfe,
                features: input
                    .features
                    .filter(|_| metric.uses_features())
                    .map(|f| f.identity.clone()),
                settings: with_facts(metric.protocol(input), &measured.facts),
            },
        );
        self.values.push((name.to_string(), measured.value));
        for (detail, value) in measured.details {
            self.values.push((format!("{name}_{detail}"), value));
        }
        if !metric.uses_features() {
            // Metrics that need generated samples (class accuracy) have no floor.
            return;
        }
        if let Some(space) = floors.features {
            self.add_floor(name, "floor", metric, input, &space.floor);
        }
        if let Some(set) = floors.round_trip {
            self.add_floor(name, "recon", metric, input, set);
        }
    }

    /// The metric on another feature set, as `<metric>_<suffix>` (nothing when it fails).
    fn add_floor(
        &mut self,
        name: &str,
        suffix: &str,
        metric: &dyn Metric,
        input: &MetricInput,
        set: &FeatureSet,
    ) {
        let input = MetricInput {
            features: Some(set),
            ..*input
        };
        if let Ok(measured) = metric.compute(&input) {
            self.values
                .push((format!("{name}_{suffix}"), measured.value));
            for (detail, value) in measured.details {
                self.values
                    .push((format!("{name}_{suffix}_{detail}"), value));
            }
        }
    }
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

/// The features of the floor's training items mapped into the sample space and back.
fn round_trip_features(
    sample_space: &dyn SampleSpace,
    space: &FeatureSpace,
    trial: &Trial,
) -> Result<FeatureSet, EvaluateError> {
    let items = sample_space.round_trip(trial.settings.num_samples)?;
    let items = Samples::from_tensor(&items)?.reshaped(&trial.dataset.shape());
    Ok(FeatureSet {
        samples: space.map.extract(&items).map_err(EvaluateError::Features)?,
        reference: space.reference.clone(),
        predicted: None,
        intended: None,
        identity: space.map.identity(),
    })
}
