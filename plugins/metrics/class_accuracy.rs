//! `class_accuracy`: the share of samples assigned to the class they were generated for
//! (fidelity under guidance). On a labelled mixture (`gmm` with `labelled: true`, whose
//! classes are its components) a sample's class is its most likely component under the
//! exact clean posterior p(k | x), and no feature space is needed; on other data it is the
//! class the feature extractor's classifier assigns (`features: classifier`). Higher is better. The
//! samples need intended classes: a class-conditional network, or classifier guidance.

use scorelab::analytic::GaussianMixture;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::metric::{feature_set, require_finite, Measured, Metric, MetricContext, MetricInput};
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

/// The most likely component of each point under the exact clean posterior (ties: the first).
pub fn most_likely_components(mixture: &GaussianMixture, points: &[&[f64]]) -> Vec<u32> {
    points
        .iter()
        .map(|x| {
            let posterior = mixture.responsibilities(x, 0.0);
            let mut best = 0;
            for (k, p) in posterior.iter().enumerate() {
                if *p > posterior[best] {
                    best = k;
                }
            }
            best as u32
        })
        .collect()
}

pub struct ClassAccuracy {
    /// The data's mixture, whose posterior classifies (else the feature classifier does).
    mixture: Option<GaussianMixture>,
}

const NO_TARGETS: &str = "`class_accuracy` needs samples generated for chosen classes, and these have none (the network is unconditional and no classifier guides it). Fix: make the network class-conditional (`network.classes`) on labelled data, or use `guidance: {kind: classifier}`";

impl Metric for ClassAccuracy {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        if let Some(mixture) = &self.mixture {
            let intended = input.samples.labels().ok_or(NO_TARGETS)?;
            require_finite(input.samples, "samples")?;
            if intended.is_empty() {
                return Err("`class_accuracy` got no samples".into());
            }
            let rows: Vec<&[f64]> = input.samples.rows().collect();
            let predicted = most_likely_components(mixture, &rows);
            return Ok(class_accuracy(&predicted, intended).into());
        }
        let features = feature_set(input, "class_accuracy")?;
        let predicted = features.predicted.as_deref().ok_or_else(|| {
            format!(
                "`class_accuracy` needs a feature extractor that classifies, and `{}` does not. Fix: set `features: classifier`",
                features.identity
            )
        })?;
        let intended = features.intended.as_deref().ok_or(NO_TARGETS)?;
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
        self.mixture.is_none()
    }
}

fn build(raw: &RawParams, context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    // A labelled mixture's classes are its components; other data need the classifier.
    let mixture = context
        .dataset
        .mixture()
        .filter(|_| context.dataset.classes() > 0)
        .cloned();
    Ok(Built::new(Box::new(ClassAccuracy { mixture }), &params))
}

inventory::submit! {
    Plugin {
        name: "class_accuracy",
        about: "share of samples assigned to their intended class (exact posterior on a labelled `gmm`, else the classifier extractor); higher is better",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
