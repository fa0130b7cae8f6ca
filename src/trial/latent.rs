//! Resolving a trial's `latent:` slot (absent: `identity`): the latent space the diffusion
//! runs in, where its autoencoder is kept, and the options it rules out. A latent trial's
//! network is built for the latent shape; what needs data-space facts while resolving, or
//! scores data-space points, is refused with the key to change:
//! - a schedule that measures the training data (`sigma_max: auto`): the latents exist only
//!   once the autoencoder is trained, after resolution (detected by building the schedule
//!   on two stand-in latent sets: its levels must not depend on them);
//! - an exact network (`oracle`): it scores the data, not latents;
//! - a guidance that brings its own classifier: the classifier reads data-space points.
//!
//! Metrics that evaluate the score model on data-space points (likelihoods) are refused
//! with the `eval` list (`trial::metrics`); `crate::evaluate` still hands them a model that
//! fails saying why, should a library caller build such a trial by hand.

use std::sync::Arc;

use super::naming::stable_hash;
use super::slots::{with_kind, SlotReader};
use crate::config::{ConfigError, RawParams};
use crate::dataset::Samples;
use crate::guidance::Guidance;
use crate::latent::{Latent, LatentContext, LatentSpace};
use crate::registry::{BuildResult, Found};
use crate::schedule::{Schedule, ScheduleContext};

/// The latent plugin an experiment without a `latent:` section gets.
pub const DEFAULT_LATENT: &str = "identity";

/// The resolved `latent:` slot: the space, its raw section (for later errors) and the
/// section to record (`None` for a neutral plugin, which is not recorded).
pub(super) struct Resolved<'p> {
    pub space: LatentSpace,
    pub raw: RawParams<'p>,
    pub section: Option<serde_json::Value>,
}

/// Builds the `latent:` slot for data items of `shape`. `data_section` and `train_size`
/// (with the seed and device) identify the training set the autoencoder learns from.
pub(super) fn latent_slot<'p>(
    slots: &SlotReader<'p>,
    shape: &[usize],
    data_section: &serde_json::Value,
    (seed, train_size, device): (u64, usize, &str),
) -> Result<Resolved<'p>, ConfigError> {
    let (plugin, raw) = slots.optional::<dyn Latent>("latent", DEFAULT_LATENT)?;
    let built = (plugin.build)(&raw, &LatentContext { shape })?;
    let section = with_kind(plugin.name, built.params);
    let config = serde_json::json!({
        "data": data_section,
        "seed": seed,
        "train_size": train_size,
        "device": device,
        "latent": &section,
    });
    let id = format!("latent-{}-{}", plugin.name, stable_hash(&config));
    let latent_shape = built.plugin.shape();
    let space = LatentSpace::new(
        plugin.name,
        Arc::from(built.plugin),
        id,
        config,
        latent_shape,
    );
    let section = space.active().then_some(section);
    Ok(Resolved {
        space,
        raw,
        section,
    })
}

/// Two stand-in training sets of latents (different spreads): a schedule built on either
/// must come out the same.
fn stand_ins(shape: &[usize]) -> [Samples; 2] {
    let dim: usize = shape.iter().product();
    let set = |spread: f64| {
        let mut values = vec![0.0; dim];
        values.extend((0..dim).map(|i| if i % 2 == 0 { spread } else { -spread }));
        Samples::with_shape(shape, values)
    };
    [set(1.0), set(3.0)]
}

/// Builds the schedule: on the training data for `identity`; for a latent space on stand-in
/// latents, refusing a schedule that measures its training data.
pub(super) fn build_schedule(
    schedule: &Found<dyn Schedule>,
    raw: &RawParams,
    training_data: &Samples,
    latent: &Resolved,
) -> BuildResult<dyn Schedule> {
    let (build, name) = (schedule.build, schedule.name);
    if !latent.space.active() {
        return build(raw, &ScheduleContext { training_data });
    }
    let [a, b] = stand_ins(&latent.space.shape);
    let first = build(raw, &ScheduleContext { training_data: &a })?;
    let second = build(raw, &ScheduleContext { training_data: &b })?;
    let (s, t) = (first.plugin.as_ref(), second.plugin.as_ref());
    if s.sigma_max() == t.sigma_max()
        && s.sigma_min() == t.sigma_min()
        && s.prior_std() == t.prior_std()
        && s.loss_levels() == t.loss_levels()
    {
        return Ok(first);
    }
    let auto_keys: Vec<String> = first
        .params
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(_, v)| v.as_str() == Some("auto"))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let key = auto_keys.first().map(String::as_str).unwrap_or("kind");
    let what = match auto_keys.first() {
        Some(k) => format!("`{}: auto`", raw.key_path(k)),
        None => "its levels".to_string(),
    };
    Err(raw.invalid(
        key,
        format!(
            "schedule `{name}` measures the training data while resolving ({what}), but with \
             `latent: {}` the diffusion runs on latents that exist only once the autoencoder \
             is trained",
            latent.space.name
        ),
        format!(
            "give `{}` a number (the latents are scaled to unit variance: e.g. 80, as EDM \
             uses for data of std 0.5), or set `latent: identity`",
            raw.key_path(key)
        ),
    ))
}

/// Refuses what cannot work in a latent space: an exact network, a guidance with its own
/// classifier.
pub(super) fn check(
    latent: &Resolved,
    (network, trainable): (&str, bool),
    guidance: (&str, &dyn Guidance),
) -> Result<(), ConfigError> {
    if !latent.space.active() {
        return Ok(());
    }
    let name = latent.space.name;
    if !trainable {
        return Err(latent.raw.invalid(
            "kind",
            format!(
                "network `{network}` is exact: it scores the data itself, but `latent: \
                 {name}` trains the network on the autoencoder's latents"
            ),
            "use a trainable network (e.g. `network: mlp` or `unet`), or set `latent: identity`",
        ));
    }
    if guidance.1.classes().is_some() {
        return Err(latent.raw.invalid(
            "kind",
            format!(
                "guidance `{}` guides with its own classifier of data-space points, but with \
                 `latent: {name}` sampling runs on latents",
                guidance.0
            ),
            "use `guidance: cfg` (the network's own labels work in latent space), or set \
             `latent: identity`",
        ));
    }
    Ok(())
}
