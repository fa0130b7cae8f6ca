//! `none`: no guidance. Samples of a class-conditional network are generated for `class`
//! (uniform over the classes by default, as without a `guidance:` section); training uses
//! every label as it is.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::guidance::{
    Guidance, GuidanceContext, Labelled, LabelledScore, Prepared, TargetClass,
};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `none`.
    pub struct NoneParams {
        /// The class each sample of a class-conditional network is generated for: `uniform` (drawn per sample from the seed) or a class number.
        class: TargetClass = TargetClass::Uniform,
    }
}

pub struct NoGuidance {
    target: TargetClass,
}

impl Guidance for NoGuidance {
    fn neutral(&self) -> bool {
        self.target == TargetClass::Uniform
    }

    fn target(&self) -> TargetClass {
        self.target
    }

    fn guide<'a>(
        &'a self,
        model: &'a dyn LabelledScore,
        labels: Option<&'a Tensor>,
        _prepared: &'a Prepared,
    ) -> candle_core::Result<Box<dyn ScoreModel + 'a>> {
        Ok(Box::new(Labelled { model, labels }))
    }
}

fn build(raw: &RawParams, context: &GuidanceContext) -> BuildResult<dyn Guidance> {
    let params = NoneParams::from_raw(raw)?;
    let what = match context.network_classes {
        0 => format!("network `{}` is unconditional", context.network),
        n => format!("network `{}` conditions on {n} classes", context.network),
    };
    params
        .class
        .check(raw, "class", context.network_classes, &what)?;
    Ok(Built::<dyn Guidance>::new(
        Box::new(NoGuidance {
            target: params.class,
        }),
        &params,
    )
    .sampling_only(&["class"]))
}

inventory::submit! {
    Plugin {
        name: "none",
        about: "no guidance: the model as trained (a class-conditional one toward `class`)",
        params: NoneParams::docs,
        build: Builder::Guidance(build),
    }
}
