//! `cfg`: classifier-free guidance (Ho & Salimans 2022). Training replaces each label by the
//! null label with probability `p_uncond`, so one network learns the conditional score
//! s(x, y) and the unconditional s(x, null); sampling follows
//!
//!   (1 + w) s(x, y) - w s(x, null)  =  s(x, null) + (1 + w) (s(x, y) - s(x, null))
//!
//! with w = `scale`. This is the guidance scale s = 1 + w of the other common convention
//! (s(x, null) + s (s(x, y) - s(x, null)), e.g. a "CFG scale" of 7.5 is w = 6.5): w = 0 is
//! the conditional model alone (one evaluation per step), w = -1 the unconditional one, and
//! w > 0 sharpens toward the class, exp(log p(x|y) + w log p(y|x)) up to normalisation.
//! Denoisers combine the same way, as D = x + sigma^2 score is affine in the score.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::guidance::{
    Guidance, GuidanceContext, Labelled, LabelledScore, Prepared, TargetClass,
};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `cfg`.
    pub struct CfgParams {
        /// Guidance weight w: sampling follows (1 + w) s(x, y) - w s(x, null) (0: the conditional model; s = 1 + w in the other convention).
        scale: f64 = 1.0,
        /// Probability with which training replaces a label by the null label.
        p_uncond: f64 = 0.1,
        /// The class each sample is generated for: `uniform` (drawn per sample from the seed) or a class number.
        class: TargetClass = TargetClass::Uniform,
    }
}

pub struct ClassifierFree {
    scale: f64,
    p_uncond: f64,
    target: TargetClass,
}

/// The guided model: both scores per call, mixed.
struct Mixed<'a> {
    model: &'a dyn LabelledScore,
    labels: &'a Tensor,
    scale: f64,
}

impl Mixed<'_> {
    fn mix(&self, conditional: Tensor, unconditional: Tensor) -> candle_core::Result<Tensor> {
        (conditional * (1.0 + self.scale))? - (unconditional * self.scale)?
    }
}

impl ScoreModel for Mixed<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let conditional = self.model.score_given(x, sigma, Some(self.labels))?;
        let unconditional = self.model.score_given(x, sigma, None)?;
        self.mix(conditional, unconditional)
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let conditional = self.model.denoise_given(x, sigma, Some(self.labels))?;
        let unconditional = self.model.denoise_given(x, sigma, None)?;
        self.mix(conditional, unconditional)
    }
}

impl Guidance for ClassifierFree {
    fn target(&self) -> TargetClass {
        self.target
    }

    fn label_dropout(&self) -> f64 {
        self.p_uncond
    }

    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
        _prepared: &'a Prepared,
    ) -> candle_core::Result<Box<dyn ScoreModel + 'a>> {
        Ok(match labels {
            Some(labels) if self.scale != 0.0 => Box::new(Mixed {
                model,
                labels,
                scale: self.scale,
            }),
            _ => Box::new(Labelled { model, labels }),
        })
    }
}

fn build(raw: &RawParams, context: &GuidanceContext) -> BuildResult<dyn Guidance> {
    let params = CfgParams::from_raw(raw)?;
    if context.network_classes == 0 {
        return Err(raw.invalid(
            "kind",
            format!(
                "classifier-free guidance needs a class-conditional network, but network `{}` is unconditional",
                context.network
            ),
            "use a network that conditions on the data's labels (`unet` with `classes`, or `oracle` \
             on `gmm` data with `labelled: true`), or `guidance: {kind: classifier}`, which guides \
             an unconditional network",
        ));
    }
    raw.check_within(
        "scale",
        params.scale,
        (-1e6, 1e6),
        "a guidance weight",
        "set e.g. `scale: 1.0` (0: the conditional model, -1: the unconditional one)",
    )?;
    raw.check_within(
        "p_uncond",
        params.p_uncond,
        (0.0, 1.0),
        "a probability",
        "set e.g. `p_uncond: 0.1`",
    )?;
    let what = format!(
        "network `{}` conditions on {} classes",
        context.network, context.network_classes
    );
    params
        .class
        .check(raw, "class", context.network_classes, &what)?;
    Ok(Built::<dyn Guidance>::new(
        Box::new(ClassifierFree {
            scale: params.scale,
            p_uncond: params.p_uncond,
            target: params.class,
        }),
        &params,
    )
    .sampling_only(&["scale", "class"]))
}

inventory::submit! {
    Plugin {
        name: "cfg",
        about: "classifier-free guidance: labels dropped in training, (1 + w) s(x, y) - w s(x, null) in sampling",
        params: CfgParams::docs,
        build: Builder::Guidance(build),
    }
}
