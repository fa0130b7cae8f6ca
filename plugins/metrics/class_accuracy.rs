//! `class_accuracy`: the share of samples that the feature extractor's classifier assigns to
//! the class they were generated for (a class-conditional network with a classifier extractor,
//! `features: classifier`). Higher is better. Detail `samples` records the sample count.

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::plugins::metrics::fid::feature_set;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

/// Share of positions where `predicted` equals `intended` (equal lengths, at least one).
pub fn class_accuracy(predicted: &[u32], intended: &[u32]) -> f64 {
    assert_eq!(
        predicted.len(),
        intended.len(),
        "one predicted class per intended class"
    );
    assert!(!predicted.is_empty(), "class accuracy of no samples");
    let hits = predicted
        .iter()
        .zip(intended)
        .filter(|(p, i)| p == i)
        .count();
    hits as f64 / predicted.len() as f64
}

pub struct ClassAccuracy;

impl Metric for ClassAccuracy {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let features = feature_set(input, "class_accuracy")?;
        let predicted = features.predicted.as_deref().ok_or_else(|| {
            format!(
                "`class_accuracy` needs a feature extractor that classifies, and `{}` does not. Fix: set `features: classifier`",
                features.identity
            )
        })?;
        let intended = features.intended.as_deref().ok_or_else(|| {
            "`class_accuracy` needs samples generated for chosen classes, and these have none (the network is unconditional). Fix: make the network class-conditional (`network.classes`) on labelled data".to_string()
        })?;
        if predicted.len() != intended.len() || predicted.is_empty() {
            return Err(format!(
                "`class_accuracy` got {} predicted classes for {} intended ones",
                predicted.len(),
                intended.len()
            ));
        }
        require_finite(&features.samples, "sample features")?;
        Ok(class_accuracy(predicted, intended).into())
    }

    fn uses_features(&self) -> bool {
        true
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(ClassAccuracy), &params))
}

inventory::submit! {
    Plugin {
        name: "class_accuracy",
        about: "share of samples the classifier extractor assigns to their intended class; higher is better",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
