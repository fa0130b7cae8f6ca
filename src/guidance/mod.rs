//! Guidance: bending a score model toward a class at sampling time (the experiment's
//! `guidance:` slot, default `none`). A guidance plugin chooses the class each sample is
//! generated for, may ask training to drop labels to the null label (classifier-free
//! guidance), and wraps the trained model into the score model that samplers see.
//!
//! Labels are per row of a batch, a (n,) u32 tensor; a label equal to the number of classes,
//! or no labels at all, is the null label: the unconditional score.
//!
//! A guidance that trains something (a classifier) does it in [`Guidance::prepare`], which the
//! engine calls before a trial samples, and keeps it in a folder of its own under the sweep's
//! `models/`, so its training time is not the trial's sampling time and later runs load it.
//!
//! The classifiers themselves are the engine's, so that plugins share them without naming
//! each other: the exact posterior of a Gaussian mixture (`oracle`), the trainable
//! noise-conditional networks (`noisy`: their trait, loss and accuracy; `mlp`, `cnn`) and a
//! trained one's folder in the artifact store (`trained`). Training them is the one loop's
//! (`train::guidance_classifier`), a layer above this one.

pub mod cnn;
pub mod mlp;
pub mod noisy;
pub mod oracle;
pub mod trained;

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RawParams};
use crate::dataset::{Dataset, Samples};
use crate::network::ScoreModel;
use crate::parameterisation::Model;
use crate::rng::{Rng, Stream};
use crate::schedule::Schedule;

/// The class each sample is generated for: `uniform` over the classes (drawn per sample from
/// the seed), or one fixed class for every sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetClass {
    Uniform,
    Fixed(u32),
}

impl Serialize for TargetClass {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TargetClass::Uniform => serializer.serialize_str("uniform"),
            TargetClass::Fixed(class) => serializer.serialize_u32(*class),
        }
    }
}

impl<'de> Deserialize<'de> for TargetClass {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Class(u32),
            Word(String),
        }
        match Either::deserialize(deserializer) {
            Ok(Either::Class(class)) => Ok(TargetClass::Fixed(class)),
            Ok(Either::Word(w)) if w == "uniform" => Ok(TargetClass::Uniform),
            Ok(Either::Word(w)) => Err(serde::de::Error::custom(format!(
                "expected a class number (0, 1, ...) or `uniform`, found `{w}`"
            ))),
            Err(_) => Err(serde::de::Error::custom(
                "expected a class number (0, 1, ...) or `uniform`",
            )),
        }
    }
}

impl TargetClass {
    /// One class per sample for `n` samples out of `classes` (> 0). `uniform` draws from the
    /// seed's target-class stream, so every trial of a seed targets the same classes.
    pub fn draw(self, classes: usize, n: usize, seed: u64) -> Vec<u32> {
        match self {
            TargetClass::Uniform => {
                let mut draw = Rng::new(seed, Stream::TargetClasses);
                (0..n).map(|_| draw.below(classes) as u32).collect()
            }
            TargetClass::Fixed(class) => vec![class; n],
        }
    }

    /// Refuses a fixed class outside `0..classes` (`what` names where the classes come from,
    /// e.g. "the network conditions on 3 classes").
    pub fn check(
        self,
        raw: &RawParams,
        key: &str,
        classes: usize,
        what: &str,
    ) -> Result<(), ConfigError> {
        match self {
            TargetClass::Fixed(_) if classes == 0 => Err(raw.invalid(
                key,
                format!("a fixed target class needs classes, but {what}"),
                format!(
                    "remove `{}` (or set it to `uniform`), or use labelled data and a class-conditional network",
                    raw.key_path(key)
                ),
            )),
            TargetClass::Fixed(class) if class as usize >= classes => Err(raw.invalid(
                key,
                format!("class {class} does not exist: {what}"),
                format!(
                    "give a class from 0 to {}, or `uniform`",
                    classes.saturating_sub(1)
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// What a guidance plugin may check when it is built, and train a classifier on.
pub struct GuidanceContext<'a> {
    pub dataset: &'a Arc<dyn Dataset>,
    pub training_data: &'a Arc<Samples>,
    /// Held-out data from the same distribution (a classifier's accuracy is measured on it).
    pub held_out: &'a Arc<Samples>,
    pub schedule: &'a dyn Schedule,
    pub seed: u64,
    pub device: &'a Device,
    /// Identifies the training data and schedule (for caching what is trained on them).
    pub training_key: String,
    /// Classes of the data's labels (0: unlabelled).
    pub data_classes: usize,
    /// Classes the network is conditioned on (0: unconditional).
    pub network_classes: usize,
    /// The network's plugin name, for messages.
    pub network: &'a str,
    /// Whether the network is trained (an exact `oracle` is not): a trained class-conditional
    /// network has an unconditional score only where training dropped labels to the null label.
    pub network_trainable: bool,
}

/// What preparing a guidance may use (see [`Guidance::prepare`]).
pub struct GuidancePrepare<'a> {
    /// The sweep's `models/` folder: a guidance keeps what it trains in a folder of its own
    /// there, written under a temporary name and renamed into place when complete.
    pub models: &'a Path,
    /// Training steps between snapshots of what it trains (the trial's `checkpoint_every`), so
    /// a killed run resumes there.
    pub checkpoint_every: usize,
    /// Progress lines for the user.
    pub log: &'a mut dyn FnMut(&str),
    /// The loss records of what it trains, as they come (TensorBoard shows them live).
    pub live: crate::artifact::OnLiveRecord<'a>,
}

/// A guidance as configured.
pub trait Guidance: Send + Sync {
    /// True when it changes neither training nor sampling: the trial then records no
    /// `guidance` section, so its id is that of an experiment without one.
    fn neutral(&self) -> bool {
        false
    }

    /// The class each sample is generated for (when there are classes to target).
    fn target(&self) -> TargetClass;

    /// The number of classes targets are drawn from when the guidance brings its own (a
    /// classifier's); `None`: the network's.
    fn classes(&self) -> Option<usize> {
        None
    }

    /// Probability with which training replaces each example's label by the null label.
    fn label_dropout(&self) -> f64 {
        0.0
    }

    /// Makes the guidance ready to sample: loads what it trained from `models/` or trains
    /// and saves it, and returns it. The engine calls it before each trial samples and
    /// passes what it returns to [`Guidance::guide`]; the guidance itself, part of the
    /// resolved trial, never changes. The message of an error says what failed and how to
    /// fix it.
    fn prepare(&self, _context: &mut GuidancePrepare) -> Result<Prepared, String> {
        Ok(Prepared::default())
    }

    /// The model samplers see: `model` guided toward one class per row (`labels`; `None`
    /// when no class is targeted), with what [`Guidance::prepare`] made. (A guidance that
    /// needs a classifier and gets none, as when a library caller skips `prepare`, trains it
    /// in memory here.)
    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
        prepared: &'a Prepared,
    ) -> candle_core::Result<Box<dyn ScoreModel + 'a>>;
}

/// What preparing a guidance made at run time (its trained classifier), kept by the runner
/// and passed to [`Guidance::guide`].
#[derive(Default)]
pub struct Prepared {
    pub classifier: Option<Box<dyn Classifier>>,
}

/// A score model that takes per-row class labels (`None`, or a label equal to the number of
/// classes: the null label, the unconditional score).
pub trait LabelledScore {
    fn score_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor>;

    fn denoise_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor>;
}

/// A labelled model that counts its evaluations: given to a guidance to wrap, it counts
/// every evaluation the guided model makes (two per call for classifier-free guidance, with
/// and without the label), so the trial's NFE is counted in one place, whatever the
/// guidance does. The evaluations themselves run in chunks of [`crate::eval_batch`] rows.
pub struct CountedModel<'a> {
    model: &'a dyn LabelledScore,
    calls: std::cell::Cell<u64>,
}

impl<'a> CountedModel<'a> {
    pub fn new(model: &'a dyn LabelledScore) -> Self {
        CountedModel {
            model,
            calls: std::cell::Cell::new(0),
        }
    }

    /// Evaluations so far: one per call on the whole batch.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// `evaluate` on each chunk of [`crate::eval_batch`] rows of (x, sigma, labels), stacked.
    fn in_chunks(
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
        evaluate: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        crate::eval_batch::by_rows(n, |first, count| {
            let labels = match labels {
                Some(l) => Some(crate::eval_batch::narrow(l, n, first, count)?),
                None => None,
            };
            let out = evaluate(
                &x.narrow(0, first, count)?,
                &crate::eval_batch::narrow(sigma, n, first, count)?,
                labels.as_ref(),
            )?;
            Ok(crate::eval_batch::release(out, x))
        })
    }
}

impl LabelledScore for CountedModel<'_> {
    fn score_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        Self::in_chunks(x, sigma, labels, |x, sigma, labels| {
            self.model.score_given(x, sigma, labels)
        })
    }

    fn denoise_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        Self::in_chunks(x, sigma, labels, |x, sigma, labels| {
            self.model.denoise_given(x, sigma, labels)
        })
    }
}

/// Trained networks take labels through their parameterisation; exact models through
/// [`ScoreModel::score_labelled`]. Without labels both are exactly the unguided model.
impl LabelledScore for Model {
    fn score_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match (self, labels) {
            (Model::Exact(model), Some(labels)) => model.score_labelled(x, sigma, Some(labels)),
            _ => Model::score_given(self, x, sigma, labels),
        }
    }

    fn denoise_given(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match (self, labels) {
            (Model::Exact(model), Some(labels)) => {
                let score = model.score_labelled(x, sigma, Some(labels))?;
                x.add(&score.broadcast_mul(&sigma.sqr()?)?)
            }
            _ => Model::denoise_given(self, x, sigma, labels),
        }
    }
}

/// The model conditioned on fixed labels, unguided: what samplers see without guidance.
pub struct Labelled<'a> {
    pub model: &'a dyn LabelledScore,
    pub labels: Option<&'a Tensor>,
}

impl ScoreModel for Labelled<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.model.score_given(x, sigma, self.labels)
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.model.denoise_given(x, sigma, self.labels)
    }
}

/// A noise-conditional classifier p(y | x, sigma) on sigma-space inputs.
pub trait Classifier: Send + Sync {
    fn classes(&self) -> usize;

    /// log p(y | x, sigma) for every class: (n, classes) for a batch `x` of (n, dim) at
    /// per-row noise levels `sigma` (n, 1), differentiable with respect to `x`.
    fn log_probs(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor>;
}

/// grad_x log p(y_i | x_i, sigma_i) per row, by reverse-mode autograd through the classifier
/// (rows are independent, so one backward pass of the batch sum gives every row's gradient),
/// in chunks of [`crate::eval_batch`] rows.
pub fn log_prob_gradient(
    classifier: &dyn Classifier,
    x: &Tensor,
    sigma: &Tensor,
    labels: &Tensor,
) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    crate::eval_batch::by_rows(n, |first, count| {
        let rows = |t: &Tensor| crate::eval_batch::narrow(t, n, first, count);
        chunk_log_prob_gradient(classifier, &rows(x)?, &rows(sigma)?, &rows(labels)?)
    })
}

fn chunk_log_prob_gradient(
    classifier: &dyn Classifier,
    x: &Tensor,
    sigma: &Tensor,
    labels: &Tensor,
) -> candle_core::Result<Tensor> {
    let input = Var::from_tensor(&x.detach())?;
    let log_probs = classifier.log_probs(input.as_tensor(), sigma)?;
    let (n, classes) = log_probs.dims2()?;
    let columns = Tensor::arange(0u32, classes as u32, x.device())?.reshape((1, classes))?;
    let one_hot = labels
        .reshape((n, 1))?
        .broadcast_eq(&columns)?
        .to_dtype(log_probs.dtype())?;
    let chosen = log_probs.mul(&one_hot)?.sum_all()?;
    let grads = chosen.backward()?;
    match grads.get(input.as_tensor()) {
        Some(gradient) => Ok(gradient.detach()),
        None => x.zeros_like(),
    }
}

/// Replaces each label by `null` with probability `p`, one uniform draw per label from `rng`
/// (classifier-free guidance's label dropout; deterministic from the generator's state).
pub fn drop_labels(labels: &[u32], p: f64, null: u32, rng: &mut Rng) -> Vec<u32> {
    labels
        .iter()
        .map(|&label| if rng.uniform() < p { null } else { label })
        .collect()
}

/// log-sum-exp over the last axis, keeping it (size 1), with the maximum held constant so
/// autograd goes through exp and log only.
pub fn log_sum_exp_keepdim(t: &Tensor) -> candle_core::Result<Tensor> {
    let last = t.rank() - 1;
    let max = t.max_keepdim(last)?.detach();
    let shifted = t.broadcast_sub(&max)?;
    shifted.exp()?.sum_keepdim(last)?.log()?.broadcast_add(&max)
}
