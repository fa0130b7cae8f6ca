//! The `network:` slot of a trial: the network plugin, and the keys every trainable network
//! takes, which belong to the engine (the parameterisation, `auto` resolved on the trial's
//! schedule, and a warning where the choice is measured to train badly there).

use std::sync::Arc;

use super::latent;
use super::slots::SlotReader;
use crate::config::{number, ConfigError, Params};
use crate::dataset::Dataset;
use crate::network::{Architecture, NetworkContext};
use crate::parameterisation::{measured_failure, ModelKeys, ModelSettings};
use crate::registry::Built;
use crate::schedule::Schedule;

/// The `network:` slot: the network plugin and the engine's parameterisation settings.
pub(super) struct NetworkPart {
    pub name: &'static str,
    pub built: Built<dyn Architecture>,
    pub model_settings: ModelSettings,
    /// A parameterisation measured to train badly on the trial's schedule, said at the plan.
    pub warning: Option<String>,
}

/// The `network:` slot: the parameterisation keys belong to the engine, the rest to the
/// network plugin, which sees the space diffusion runs in (the data's or the latents').
pub(super) fn build_network(
    slots: &SlotReader,
    latent: &latent::Resolved,
    dataset: &Arc<dyn Dataset>,
    (schedule_name, schedule): (&str, &dyn Schedule),
) -> Result<NetworkPart, ConfigError> {
    let (plugin, mut network_raw) = slots.plugin::<dyn Architecture>("network")?;
    let model_keys: Vec<&str> = ModelKeys::docs().iter().map(|d| d.name).collect();
    let mut model_raw = network_raw.clone();
    model_raw
        .dict
        .retain(|k, _| model_keys.contains(&k.as_str()));
    network_raw
        .dict
        .retain(|k, _| !model_keys.contains(&k.as_str()));
    let built = (plugin.build)(
        &network_raw,
        &NetworkContext {
            dim: latent.space.dim(),
            shape: &latent.space.shape,
            classes: dataset.classes(),
            dataset,
        },
    )?;
    let model_keys_written = ModelKeys::from_raw(&model_raw)?;
    let model_settings = model_keys_written.resolve(schedule);
    if !built.plugin.trainable() {
        if let Some(key) = model_keys.iter().find(|k| model_raw.get(k).is_some()) {
            return Err(model_raw.invalid(
                key,
                format!(
                    "network `{}` is exact: it has no parameterisation",
                    plugin.name
                ),
                format!("remove `network.{key}`, or use a trainable network such as `mlp`"),
            ));
        }
    }
    if !(model_settings.sigma_data > 0.0 && model_settings.sigma_data.is_finite()) {
        return Err(model_raw.invalid(
            "sigma_data",
            format!(
                "must be positive and finite, not {}",
                number(model_settings.sigma_data)
            ),
            "set e.g. `sigma_data: 0.5`",
        ));
    }
    let warning = built
        .plugin
        .trainable()
        .then(|| measured_failure(&model_settings, schedule, schedule_name))
        .flatten();
    Ok(NetworkPart {
        name: plugin.name,
        built,
        model_settings,
        warning,
    })
}
