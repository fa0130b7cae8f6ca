//! `classifier`: classifier guidance (Dhariwal & Nichol 2021). Bayes' rule for scores,
//! grad log p(x | y) = grad log p(x) + grad log p(y | x), at every noise level: sampling
//! follows
//!
//!   s(x, null) + w grad_x log p(y | x, sigma)
//!
//! with w = `scale`, the gradient taken by autograd through a noise-conditional classifier.
//! w = 0 is the unconditional model, w = 1 the exact conditional when the classifier is
//! exact, w > 1 sharper. The model's unconditional score is used (the null label of a
//! class-conditional network). Training is unchanged: every parameter only shapes sampling.
//! Classifiers: `oracle`, the exact posterior of a `gmm` dataset's components; `mlp`, a small
//! noise-conditional MLP trained on the labelled training data noised at the levels samplers
//! visit (see `noisy_mlp`), trained at the trial's first sampling and kept for the rest of the
//! process, so a sweep of the scale or class trains it once (not yet on disk).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{Device, Tensor};
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::guidance::{
    log_prob_gradient, Classifier, Guidance, GuidanceContext, Labelled, LabelledScore, TargetClass,
};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

use super::noisy_mlp::{self, NoisyMlp};
use super::oracle_classifier::MixtureClassifier;

/// The classifiers `classifier` may name.
pub const CLASSIFIERS: [&str; 2] = ["oracle", "mlp"];

/// Parameters that only the trained classifier reads (left out of an oracle's record).
const TRAINED_ONLY: [&str; 2] = ["classifier_steps", "classifier_hidden"];

params! {
    /// Parameters of `classifier`.
    pub struct ClassifierParams {
        /// Guidance weight w: sampling follows s(x, null) + w grad_x log p(y | x, sigma) (0: unguided, 1: the conditional under an exact classifier).
        scale: f64 = 1.0,
        /// The noise-conditional classifier p(y | x, sigma): `oracle` (the exact posterior of a `gmm` dataset's components) or `mlp` (trained on the labelled training data, noised).
        classifier: String = "oracle".to_string(),
        /// Training steps of the `mlp` classifier (256 examples each, Adam at 0.002).
        classifier_steps: usize = 1500,
        /// Width of the `mlp` classifier's two hidden layers.
        classifier_hidden: usize = 64,
        /// The class each sample is generated for: `uniform` (drawn per sample from the seed) or a class number.
        class: TargetClass = TargetClass::Uniform,
    }
}

pub struct ClassifierGuidance {
    scale: f64,
    target: TargetClass,
    classes: usize,
    classifier: Source,
}

/// The classifier, exact or trained on first use.
enum Source {
    Exact(Box<dyn Classifier>),
    Trained(Box<Training>),
}

struct Training {
    data: Arc<Samples>,
    settings: noisy_mlp::Settings,
    device: Device,
    /// The training data, schedule and settings: trials that agree on it share one classifier.
    key: String,
    trained: OnceLock<Arc<NoisyMlp>>,
}

/// Classifiers trained in this process, by [`Training::key`].
static TRAINED: Mutex<BTreeMap<String, Arc<NoisyMlp>>> = Mutex::new(BTreeMap::new());

impl Training {
    fn classifier(&self, classes: usize) -> candle_core::Result<&NoisyMlp> {
        if let Some(trained) = self.trained.get() {
            return Ok(trained);
        }
        let mut cache = TRAINED.lock().unwrap_or_else(|e| e.into_inner());
        let trained = match cache.get(&self.key) {
            Some(trained) => trained.clone(),
            None => {
                let trained = Arc::new(NoisyMlp::train(
                    &self.data,
                    classes,
                    self.settings,
                    &self.device,
                )?);
                cache.insert(self.key.clone(), trained.clone());
                trained
            }
        };
        Ok(self.trained.get_or_init(|| trained))
    }
}

/// The unconditional model plus the classifier's weighted log-probability gradient.
struct Guided<'a> {
    model: &'a dyn LabelledScore,
    classifier: &'a dyn Classifier,
    labels: &'a Tensor,
    scale: f64,
}

impl Guided<'_> {
    fn push(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let gradient = log_prob_gradient(self.classifier, x, sigma, self.labels)?;
        gradient.to_dtype(x.dtype())? * self.scale
    }
}

impl ScoreModel for Guided<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.model
            .score_given(x, sigma, None)?
            .add(&self.push(x, sigma)?)
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let push = self.push(x, sigma)?.broadcast_mul(&sigma.sqr()?)?;
        self.model.denoise_given(x, sigma, None)?.add(&push)
    }
}

impl Guidance for ClassifierGuidance {
    fn target(&self) -> TargetClass {
        self.target
    }

    fn classes(&self) -> Option<usize> {
        Some(self.classes)
    }

    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
    ) -> candle_core::Result<Box<dyn ScoreModel + 'a>> {
        let unguided = Labelled {
            model,
            labels: None,
        };
        let Some(labels) = labels.filter(|_| self.scale != 0.0) else {
            return Ok(Box::new(unguided));
        };
        let classifier: &dyn Classifier = match &self.classifier {
            Source::Exact(classifier) => classifier.as_ref(),
            Source::Trained(training) => training.classifier(self.classes)?,
        };
        Ok(Box::new(Guided {
            model,
            classifier,
            labels,
            scale: self.scale,
        }))
    }
}

fn build(raw: &RawParams, context: &GuidanceContext) -> BuildResult<dyn Guidance> {
    let params = ClassifierParams::from_raw(raw)?;
    raw.check_within(
        "scale",
        params.scale,
        (-1e6, 1e6),
        "a guidance weight",
        "set e.g. `scale: 1.0` (0: unguided, 1: the exact conditional under an exact classifier)",
    )?;
    let (classifier, classes) = match params.classifier.as_str() {
        "oracle" => match context.dataset.mixture() {
            Some(mixture) => (
                Source::Exact(Box::new(MixtureClassifier::new(mixture))),
                mixture.num_components(),
            ),
            None => {
                return Err(raw.invalid(
                    "classifier",
                    "the oracle classifier needs data whose classes are the components of a \
                     known mixture",
                    "use `data: {kind: gmm, ...}` (its classes are the components)",
                ))
            }
        },
        "mlp" => (trained(raw, &params, context)?, context.data_classes),
        other => {
            return Err(raw.invalid(
                "classifier",
                format!("unknown classifier `{other}`"),
                format!("use one of: {}", CLASSIFIERS.join(", ")),
            ))
        }
    };
    let what = format!(
        "the `{}` classifier has {classes} classes",
        params.classifier
    );
    params.class.check(raw, "class", classes, &what)?;
    let oracle = matches!(classifier, Source::Exact(_));
    let mut built = Built::<dyn Guidance>::new(
        Box::new(ClassifierGuidance {
            scale: params.scale,
            target: params.class,
            classes,
            classifier,
        }),
        &params,
    );
    if let (true, Some(map)) = (oracle, built.params.as_object_mut()) {
        map.retain(|key, _| !TRAINED_ONLY.contains(&key.as_str()));
    }
    let sampling_only = ["scale", "class", "classifier"];
    Ok(built
        .sampling_only(&sampling_only)
        .sampling_only(&TRAINED_ONLY))
}

/// The `mlp` classifier's training, checked: labelled data, sizes within reason.
fn trained(
    raw: &RawParams,
    params: &ClassifierParams,
    context: &GuidanceContext,
) -> Result<Source, scorelab::config::ConfigError> {
    if context.data_classes == 0 || context.training_data.labels().is_none() {
        return Err(raw.invalid(
            "classifier",
            "the `mlp` classifier trains on the data's labels, but the data is unlabelled",
            "use labelled data (e.g. `gmm` with `labelled: true`), or `classifier: oracle` on `gmm` data",
        ));
    }
    raw.check_within(
        "classifier_steps",
        params.classifier_steps as f64,
        (1.0, 1e6),
        "training steps",
        "set e.g. `classifier_steps: 1500`",
    )?;
    raw.check_within(
        "classifier_hidden",
        params.classifier_hidden as f64,
        (1.0, 4096.0),
        "a layer width",
        "set e.g. `classifier_hidden: 64`",
    )?;
    let levels = context.schedule.loss_levels();
    let low = levels
        .iter()
        .copied()
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    let high = context.schedule.prior_std();
    let settings = noisy_mlp::Settings {
        hidden: params.classifier_hidden,
        steps: params.classifier_steps,
        sigma_range: (low.min(high), high),
        seed: context.seed,
    };
    Ok(Source::Trained(Box::new(Training {
        data: context.training_data.clone(),
        settings,
        device: context.device.clone(),
        key: format!(
            "{}/{settings:?}/{:?}",
            context.training_key,
            context.device.location()
        ),
        trained: OnceLock::new(),
    })))
}

inventory::submit! {
    Plugin {
        name: "classifier",
        about: "classifier guidance: s(x, null) + w grad_x log p(y | x, sigma) through a noise-conditional classifier",
        params: ClassifierParams::docs,
        build: Builder::Guidance(build),
    }
}
