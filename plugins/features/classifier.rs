//! `classifier`: a small CNN trained on the dataset's labels; the features are its penultimate
//! layer. Three 3x3 convolutions (`width`, then 2 `width` and 4 `width` channels at stride 2),
//! each followed by SiLU, a global average pool, a linear layer to `features` units and SiLU
//! (the features), and a linear layer to the class logits. Trained with Adam on the
//! cross-entropy of the training set's labels, deterministic by seed; its accuracy on the
//! held-out set is recorded (`held_out_accuracy`).
//!
//! The trained weights are cached under the results folder, in
//! `<cache>/classifier-<hash>/` (`model.safetensors` and `info.json`), the hash covering the
//! extractor's parameters, the seed and the data (item shape, class count, set sizes and the
//! first items' values and labels of both sets): a second sweep loads instead of training,
//! and a killed one resumes from the checkpoint beside the folder. The network, its feature
//! map and cache are the engine's (`features::classifier`, `features::trained`), trained by
//! the one loop (`train::feature_classifier`); this file holds the parameters and checks.

use scorelab::config::{Params, RawParams};
use scorelab::features::classifier::ClassifierSpec;
use scorelab::features::trained::FeatureClassifier;
use scorelab::features::{FeatureExtractor, FeatureMap, FeaturesContext, PrepareContext};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `classifier`.
    pub struct ClassifierParams {
        /// Training steps (Adam on the cross-entropy of the training labels).
        steps: usize = 600 => 1..=scorelab::config::limits::MAX_STEPS,
        /// Training items per step.
        batch_size: usize = 64 => 1..=scorelab::config::limits::MAX_BATCH,
        /// Adam's learning rate.
        lr: f64 = 0.005,
        /// Units of the penultimate layer: the feature dimension.
        features: usize = 128 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// Channels of the first convolution (2x and 4x in the next two).
        width: usize = 16 => 1..=scorelab::config::limits::MAX_WIDTH,
    }
}

impl ClassifierParams {
    /// What the engine's classifier is asked to be.
    pub fn spec(&self) -> ClassifierSpec {
        ClassifierSpec {
            steps: self.steps,
            batch_size: self.batch_size,
            lr: self.lr,
            features: self.features,
            width: self.width,
        }
    }
}

/// The extractor as configured: the engine's classifier, trained (or loaded from the
/// features cache) by the one loop when the sweep first needs it.
pub struct Classifier(pub FeatureClassifier);

impl FeatureExtractor for Classifier {
    fn prepare(&self, context: &mut PrepareContext) -> Result<Box<dyn FeatureMap>, String> {
        scorelab::train::feature_classifier::prepare(&self.0, context)
    }
}

fn build(raw: &RawParams, context: &FeaturesContext) -> BuildResult<dyn FeatureExtractor> {
    let params = ClassifierParams::from_raw(raw)?;
    if context.classes == 0 {
        return Err(raw.invalid(
            "kind",
            "`classifier` trains on the data's labels, and this dataset has none",
            "use labelled data (e.g. `data: shapes`) or `features: raw`",
        ));
    }
    let &[c, h, w] = context.shape else {
        return Err(raw.invalid("kind", format!("`classifier` takes images of shape [C, H, W], and the data's items have shape {:?}", context.shape), "use image data (e.g. `data: shapes`) or `features: raw`"));
    };
    for (key, value) in [
        ("steps", params.steps),
        ("batch_size", params.batch_size),
        ("features", params.features),
        ("width", params.width),
    ] {
        if value == 0 {
            return Err(raw.invalid(
                key,
                "must be at least 1",
                format!("set e.g. `{key}: {}`", field_default(key)),
            ));
        }
    }
    if !(params.lr > 0.0 && params.lr.is_finite()) {
        return Err(raw.invalid(
            "lr",
            format!("must be positive, not {}", params.lr),
            "set e.g. `lr: 0.005`",
        ));
    }
    let classifier = Classifier(FeatureClassifier {
        spec: params.spec(),
        shape: [c, h, w],
        classes: context.classes,
    });
    Ok(Built::new(Box::new(classifier), &params))
}

/// A field's default, for fixes.
fn field_default(key: &str) -> String {
    ClassifierParams::docs()
        .into_iter()
        .find(|d| d.name == key)
        .map(|d| d.default)
        .unwrap_or_default()
}

inventory::submit! {
    Plugin {
        name: "classifier",
        about: "a small CNN trained on the data's labels (cached); features = its penultimate layer",
        params: ClassifierParams::docs,
        build: Builder::Features(build),
    }
}
