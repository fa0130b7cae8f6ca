//! `classifier`: classifier guidance (Dhariwal & Nichol 2021). Bayes' rule for scores,
//! grad log p(x | y) = grad log p(x) + grad log p(y | x), at every noise level: sampling
//! follows
//!
//!   s(x, null) + w grad_x log p(y | x, sigma)
//!
//! with w = `scale`, the gradient taken by autograd through a noise-conditional classifier.
//! w = 0 is the unconditional model, w = 1 the exact conditional when the classifier is
//! exact, w > 1 sharper. The model's unconditional score is used: the null label of a
//! class-conditional network, which a trained network learns only where training drops labels
//! to it, so on a trained class-conditional network training drops them with probability
//! `p_uncond` as classifier-free guidance does (the model of `cfg` at the same `p_uncond`,
//! shared). Classifiers: `oracle`, the exact posterior of a `gmm` dataset's components; `mlp`
//! (points) and `cnn` (images), trained on the labelled training data noised at the levels
//! samplers visit (the engine's `guidance::noisy`), before the first trial samples, and kept
//! in the sweep's `models/` (`guidance::trained`, trained by `train::guidance_classifier`).
//! Every other parameter only shapes sampling.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::guidance::{
    log_prob_gradient, Classifier, Guidance, GuidanceContext, GuidancePrepare, Labelled,
    LabelledScore, Prepared, TargetClass,
};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

use scorelab::guidance::noisy::Training;
use scorelab::guidance::oracle::MixtureClassifier;
use scorelab::guidance::trained::{Net, TrainedClassifier};
use scorelab::guidance::{cnn, mlp};
use scorelab::train::guidance_classifier;

/// The classifiers `classifier` may name.
pub const CLASSIFIERS: [&str; 3] = ["oracle", "mlp", "cnn"];

/// Parameters that only a trained classifier reads (left out of an oracle's record), and
/// those of one network only.
const TRAINED_ONLY: [&str; 3] = ["classifier_steps", "classifier_hidden", "classifier_width"];
const MLP_ONLY: &str = "classifier_hidden";
const CNN_ONLY: &str = "classifier_width";

params! {
    /// Parameters of `classifier`.
    pub struct ClassifierParams {
        /// Guidance weight w: sampling follows s(x, null) + w grad_x log p(y | x, sigma) (0: unguided, 1: the conditional under an exact classifier).
        scale: f64 = 1.0,
        /// The noise-conditional classifier p(y | x, sigma): `oracle` (the exact posterior of a `gmm` dataset's components), `mlp` (points) or `cnn` (images), trained on the labelled training data, noised.
        classifier: String = "oracle".to_string(),
        /// Training steps of a trained classifier (Adam at 0.002; 256 points or 64 images a step).
        classifier_steps: usize = 1500 => 1..=scorelab::config::limits::MAX_STEPS,
        /// Width of the `mlp` classifier's two hidden layers.
        classifier_hidden: usize = 64 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// Channels of the `cnn` classifier's first convolution (2x and 4x in the next two).
        classifier_width: usize = 16 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// The class each sample is generated for: `uniform` (drawn per sample from the seed) or a class number.
        class: TargetClass = TargetClass::Uniform,
        /// On a trained class-conditional network: probability with which training replaces a label by the null label, whose score guidance uses (as `cfg`'s; recorded only there).
        p_uncond: f64 = 0.1,
    }
}

pub struct ClassifierGuidance {
    scale: f64,
    target: TargetClass,
    classes: usize,
    /// Label dropout asked of training (0 unless the network is trained and conditional).
    p_uncond: f64,
    classifier: Source,
}

/// The classifier, exact or trained.
enum Source {
    Exact(Box<dyn Classifier>),
    Trained(Box<TrainedClassifier>),
}

/// The unconditional model plus the classifier's weighted log-probability gradient.
struct Guided<'a> {
    model: &'a dyn LabelledScore,
    classifier: Held<'a>,
    labels: &'a Tensor,
    scale: f64,
}

/// The classifier a guided model uses: the exact or prepared one, or one trained in memory
/// for this call of `guide`.
enum Held<'a> {
    Borrowed(&'a dyn Classifier),
    Owned(Box<dyn Classifier>),
}

impl Held<'_> {
    fn get(&self) -> &dyn Classifier {
        match self {
            Held::Borrowed(classifier) => *classifier,
            Held::Owned(classifier) => classifier.as_ref(),
        }
    }
}

impl Guided<'_> {
    fn push(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let gradient = log_prob_gradient(self.classifier.get(), x, sigma, self.labels)?;
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

    fn label_dropout(&self) -> f64 {
        self.p_uncond
    }

    fn prepare(&self, context: &mut GuidancePrepare) -> Result<Prepared, String> {
        let classifier = match &self.classifier {
            Source::Trained(trained) => Some(guidance_classifier::prepare(trained, context)?),
            Source::Exact(_) => None,
        };
        Ok(Prepared { classifier })
    }

    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
        prepared: &'a Prepared,
    ) -> candle_core::Result<Box<dyn ScoreModel + 'a>> {
        let unguided = Labelled {
            model,
            labels: None,
        };
        let Some(labels) = labels.filter(|_| self.scale != 0.0) else {
            return Ok(Box::new(unguided));
        };
        let classifier = match (&self.classifier, &prepared.classifier) {
            (Source::Exact(classifier), _) => Held::Borrowed(classifier.as_ref()),
            (Source::Trained(_), Some(classifier)) => Held::Borrowed(classifier.as_ref()),
            (Source::Trained(trained), None) => {
                Held::Owned(guidance_classifier::train_in_memory(trained)?)
            }
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
        "mlp" | "cnn" => (trained(raw, &params, context)?, context.data_classes),
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
    // Only a trained class-conditional network needs its null label trained.
    let dropout = context.network_trainable && context.network_classes > 0;
    if dropout && !(params.p_uncond > 0.0 && params.p_uncond <= 1.0) {
        return Err(raw.invalid(
            "p_uncond",
            format!(
                "must be in (0, 1], not {}: classifier guidance follows the unconditional score, \
                 which network `{}` learns only from labels dropped to its null label",
                params.p_uncond, context.network
            ),
            "set e.g. `p_uncond: 0.1`, or train an unconditional network (`network.classes: 0`)",
        ));
    }
    let unused: Vec<&str> = match params.classifier.as_str() {
        "oracle" => TRAINED_ONLY.to_vec(),
        "mlp" => vec![CNN_ONLY],
        _ => vec![MLP_ONLY],
    };
    let mut built = Built::<dyn Guidance>::new(
        Box::new(ClassifierGuidance {
            scale: params.scale,
            target: params.class,
            classes,
            p_uncond: if dropout { params.p_uncond } else { 0.0 },
            classifier,
        }),
        &params,
    );
    if let Some(map) = built.params.as_object_mut() {
        map.retain(|key, _| !unused.contains(&key.as_str()) && (dropout || key != "p_uncond"));
    }
    let sampling_only = ["scale", "class", "classifier"];
    Ok(built
        .sampling_only(&sampling_only)
        .sampling_only(&TRAINED_ONLY))
}

/// A trained classifier's training, checked: labelled data (images for `cnn`), sizes within
/// reason; noise levels from the schedule's smallest loss level to its prior's std.
fn trained(
    raw: &RawParams,
    params: &ClassifierParams,
    context: &GuidanceContext,
) -> Result<Source, scorelab::config::ConfigError> {
    let name = params.classifier.as_str();
    if context.data_classes == 0 || context.training_data.labels().is_none() {
        return Err(raw.invalid(
            "classifier",
            format!("the `{name}` classifier trains on the data's labels, but the data is unlabelled"),
            "use labelled data (e.g. `gmm` with `labelled: true`, or `shapes`), or `classifier: oracle` on `gmm` data",
        ));
    }
    raw.check_within(
        "classifier_steps",
        params.classifier_steps as f64,
        (1.0, 1e6),
        "training steps",
        "set e.g. `classifier_steps: 1500`",
    )?;
    let (net, batch_size, lr) = if name == "cnn" {
        if context.training_data.image_shape().is_none() {
            return Err(raw.invalid(
                "classifier",
                format!(
                    "the `cnn` classifier takes images [C, H, W], and the data's items have shape {:?}",
                    context.training_data.shape()
                ),
                "use `classifier: mlp` on points, or image data (e.g. `data: shapes`)",
            ));
        }
        raw.check_within(
            "classifier_width",
            params.classifier_width as f64,
            (1.0, 1024.0),
            "a channel count",
            "set e.g. `classifier_width: 16`",
        )?;
        let width = params.classifier_width;
        (Net::Cnn { width }, cnn::BATCH, cnn::LR)
    } else {
        raw.check_within(
            "classifier_hidden",
            params.classifier_hidden as f64,
            (1.0, 4096.0),
            "a layer width",
            "set e.g. `classifier_hidden: 64`",
        )?;
        let hidden = params.classifier_hidden;
        (Net::Mlp { hidden }, mlp::BATCH, mlp::LR)
    };
    let levels = context.schedule.loss_levels();
    let low = levels
        .iter()
        .copied()
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    let high = context.schedule.prior_std();
    let training = Training {
        steps: params.classifier_steps,
        batch_size,
        lr,
        sigma_range: (low.min(high), high),
        seed: context.seed,
    };
    Ok(Source::Trained(Box::new(TrainedClassifier::new(
        net,
        context.data_classes,
        training,
        context.training_data.clone(),
        context.held_out.clone(),
        context.device.clone(),
        &context.training_key,
    ))))
}

inventory::submit! {
    Plugin {
        name: "classifier",
        about: "classifier guidance: s(x, null) + w grad_x log p(y | x, sigma) through a noise-conditional classifier",
        params: ClassifierParams::docs,
        build: Builder::Guidance(build),
    }
}
