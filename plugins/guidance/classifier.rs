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
//! Classifiers: `oracle`, the exact posterior of a `gmm` dataset's components.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::guidance::{
    log_prob_gradient, Classifier, Guidance, GuidanceContext, Labelled, LabelledScore, TargetClass,
};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

use super::oracle_classifier::MixtureClassifier;

/// The classifiers `classifier` may name.
pub const CLASSIFIERS: [&str; 1] = ["oracle"];

params! {
    /// Parameters of `classifier`.
    pub struct ClassifierParams {
        /// Guidance weight w: sampling follows s(x, null) + w grad_x log p(y | x, sigma) (0: unguided, 1: the conditional under an exact classifier).
        scale: f64 = 1.0,
        /// The noise-conditional classifier p(y | x, sigma): `oracle` (the exact posterior of a `gmm` dataset's components).
        classifier: String = "oracle".to_string(),
        /// The class each sample is generated for: `uniform` (drawn per sample from the seed) or a class number.
        class: TargetClass = TargetClass::Uniform,
    }
}

pub struct ClassifierGuidance {
    scale: f64,
    target: TargetClass,
    classifier: Box<dyn Classifier>,
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
        Some(self.classifier.classes())
    }

    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
    ) -> Box<dyn ScoreModel + 'a> {
        match labels {
            Some(labels) if self.scale != 0.0 => Box::new(Guided {
                model,
                classifier: self.classifier.as_ref(),
                labels,
                scale: self.scale,
            }),
            _ => Box::new(Labelled {
                model,
                labels: None,
            }),
        }
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
    let classifier: Box<dyn Classifier> = match params.classifier.as_str() {
        "oracle" => match context.dataset.mixture() {
            Some(mixture) => Box::new(MixtureClassifier::new(mixture)),
            None => {
                return Err(raw.invalid(
                    "classifier",
                    "the oracle classifier needs data whose classes are the components of a \
                     known mixture",
                    "use `data: {kind: gmm, ...}` (its classes are the components)",
                ))
            }
        },
        other => {
            return Err(raw.invalid(
                "classifier",
                format!("unknown classifier `{other}`"),
                format!("use one of: {}", CLASSIFIERS.join(", ")),
            ))
        }
    };
    let what = format!(
        "the `{}` classifier has {} classes",
        params.classifier,
        classifier.classes()
    );
    params
        .class
        .check(raw, "class", classifier.classes(), &what)?;
    Ok(Built::<dyn Guidance>::new(
        Box::new(ClassifierGuidance {
            scale: params.scale,
            target: params.class,
            classifier,
        }),
        &params,
    )
    .sampling_only(&["scale", "class", "classifier"]))
}

inventory::submit! {
    Plugin {
        name: "classifier",
        about: "classifier guidance: s(x, null) + w grad_x log p(y | x, sigma) through a noise-conditional classifier",
        params: ClassifierParams::docs,
        build: Builder::Guidance(build),
    }
}
