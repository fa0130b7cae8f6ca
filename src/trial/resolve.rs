//! Resolving one trial, as a list of named steps: the settings, the data (drawn once per
//! data config), then each plugin slot built and checked against the others, the resolved
//! config recorded (its hash is the trial's id) and the part of it that decides the model.

use std::sync::Arc;
use std::time::Instant;

use figment::value::Dict;

use super::limits::{check_sweep_wide, check_threads, check_train_limits};
use super::metrics::build_metrics;
use super::naming::{check_sweep_name, label_of, sanitize, stable_hash};
use super::network::{build_network, NetworkPart};
use super::settings::{Settings, SECTION_KEYS, TRAINING_KEYS};
use super::shared::{DataCache, ResolutionStats};
use super::slots::{section_dict, training_part, with_kind, SlotReader};
use super::{distill, latent, PluginNames, Trial};
use crate::config::{self, ConfigError, Params, Provenance, RawParams};
use crate::dataset::{Dataset, Samples};
use crate::device::Selection;
use crate::features::{FeatureExtractor, FeaturesContext};
use crate::guidance::GuidanceContext;
use crate::metric::MetricContext;
use crate::registry::Built;
use crate::sampler::{Sampler, SamplerContext};
use crate::schedule::Schedule;
use crate::sweep::{Experiment, TrialSpec};
use crate::train::TrainSettings;
use crate::weighting::Weighting;

/// Resolves every trial of the experiment, or returns the first error.
pub fn resolve_all(experiment: &Experiment) -> Result<Vec<Trial>, ConfigError> {
    resolve_with_stats(experiment).map(|(trials, _)| trials)
}

/// [`resolve_all`], with what it cost: its time, and how often data was drawn and
/// `sigma_max: auto` computed (once per distinct data config, whatever the trial count).
pub fn resolve_with_stats(
    experiment: &Experiment,
) -> Result<(Vec<Trial>, ResolutionStats), ConfigError> {
    let start = Instant::now();
    let mut data_cache = DataCache::default();
    let trials: Vec<Trial> = experiment
        .trials()
        .into_iter()
        .map(|spec| resolve(experiment, spec, &mut data_cache))
        .collect::<Result<_, _>>()?;
    check_replaced_base_values(experiment, &mut data_cache)?;
    let settings: Vec<&Settings> = trials.iter().map(|t| &t.settings).collect();
    check_sweep_wide(experiment, &settings)?;
    check_threads(experiment, &trials[0].settings)?;
    let stats = data_cache.stats(trials.len(), start.elapsed());
    Ok((trials, stats))
}

/// The file's base values that its own `sweep:` replaces in every trial are checked by the
/// plugins they reach too: `--no-sweep` runs them, and a typo there should not wait for it.
fn check_replaced_base_values(
    experiment: &Experiment,
    data_cache: &mut DataCache,
) -> Result<(), ConfigError> {
    for (keys, spec) in experiment.trials_with_replaced_base_values()? {
        if let Err(error) = resolve(experiment, spec, data_cache) {
            let keys = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
            let note = format!(
                " (the file's base value of {}, which its `sweep:` replaces in every trial but `--no-sweep` runs)",
                keys.join(", ")
            );
            return Err(match error {
                ConfigError::Key {
                    origin,
                    key,
                    message,
                    fix,
                } => ConfigError::Key {
                    origin,
                    key,
                    message: message + &note,
                    fix,
                },
                ConfigError::File { file, message, fix } => ConfigError::File {
                    file,
                    message: message + &note,
                    fix,
                },
            });
        }
    }
    Ok(())
}

/// The trial's data: the dataset plugin with its training and held-out sets, and the key
/// that identifies them (plugin, parameters, seed and sizes).
struct Data {
    name: &'static str,
    params: serde_json::Value,
    key: String,
    dataset: Arc<dyn Dataset>,
    training: Arc<Samples>,
    held_out: Arc<Samples>,
}

/// What the slots built, before the resolved config is recorded.
struct Parts {
    settings: Settings,
    device: Selection,
    train: TrainSettings,
    data: Data,
    schedule: (&'static str, Built<dyn Schedule>),
    weighting: (&'static str, Built<dyn Weighting>),
    network: NetworkPart,
    sampler: (&'static str, Built<dyn Sampler>),
    guidance: (&'static str, Built<dyn crate::guidance::Guidance>),
    /// The latent space and its section to record (`None` when neutral).
    latent: (crate::latent::LatentSpace, Option<serde_json::Value>),
    metrics: super::metrics::BuiltMetrics,
    features: (&'static str, Built<dyn FeatureExtractor>),
}

fn resolve(
    experiment: &Experiment,
    spec: TrialSpec,
    data_cache: &mut DataCache,
) -> Result<Trial, ConfigError> {
    let provenance = Provenance::new(&experiment.file, spec.figment.clone());
    let root = config::root_dict(&spec.figment, &experiment.file)?;
    check_top_level_keys(&root, &provenance)?;
    let (settings, device) = read_settings(experiment, &root, &provenance)?;
    let (train, train_raw) = read_train(&root, &provenance)?;
    let distill_raw = distill::section(&root, &provenance)?;
    let slots = SlotReader {
        experiment,
        spec: &spec,
        root: &root,
        provenance: &provenance,
    };
    let data = draw_data(&slots, &settings, &train, data_cache)?;
    let (schedule_plugin, schedule_raw) = slots.plugin::<dyn Schedule>("schedule")?;
    let id_parts = (settings.seed, train.train_size, device.name);
    let data_section = with_kind(data.name, data.params.clone());
    let latent = latent::latent_slot(&slots, &data.dataset.shape(), &data_section, id_parts)?;
    let schedule =
        latent::build_schedule(&schedule_plugin, &schedule_raw, &data.training, &latent)?;
    let schedule_facts = (schedule.plugin.as_ref(), schedule_plugin.name);
    let weighting = read_weighting(&slots, schedule_facts, (&train, &train_raw))?;
    let network = build_network(
        &slots,
        &latent,
        &data.dataset,
        (schedule_plugin.name, schedule.plugin.as_ref()),
    )?;
    let (sampler_plugin, sampler_raw) = slots.plugin::<dyn Sampler>("sampler")?;
    let context = SamplerContext {
        schedule: schedule.plugin.as_ref(),
    };
    let sampler = (sampler_plugin.build)(&sampler_raw, &context)?;
    let distill_settings = distill::read(&distill_raw, sampler.plugin.grid().steps)?;
    let schedule = (schedule_plugin.name, schedule);
    let guidance = slots.guidance(&guidance_context(
        &data, &schedule, &network, &settings, &device,
    ))?;
    let network_facts = (network.name, network.built.plugin.trainable());
    latent::check(
        &latent,
        network_facts,
        (guidance.0, guidance.1.plugin.as_ref()),
    )?;
    let metrics = build_metrics(
        &root,
        &provenance,
        &MetricContext {
            dataset: data.dataset.as_ref(),
            schedule: schedule.1.plugin.as_ref(),
            schedule_name: schedule.0,
            likelihood_points: None,
        },
        settings.num_samples,
        latent.space.active().then_some(latent.space.name),
    )?;
    let features = build_features(&slots, &data.dataset)?;
    let parts = Parts {
        settings,
        device,
        train,
        data,
        schedule,
        weighting,
        network,
        sampler: (sampler_plugin.name, sampler),
        guidance,
        latent: (latent.space, latent.section),
        metrics,
        features,
    };
    assemble(&spec, parts, (distill_settings, &distill_raw), &sampler_raw)
}

/// The `train:` section, checked, with its raw keys (for later checks' errors).
fn read_train<'p>(
    root: &Dict,
    provenance: &'p Provenance,
) -> Result<(TrainSettings, RawParams<'p>), ConfigError> {
    let train_raw = RawParams::new(
        "train",
        section_dict(root, "train", provenance)?,
        provenance,
    );
    let train = TrainSettings::from_raw(&train_raw)?;
    train.validate(&train_raw)?;
    check_train_limits(&train, &train_raw)?;
    Ok((train, train_raw))
}

/// The `weighting:` slot, optional (an oracle trains nothing, and a trained network gets its
/// schedule's own), checked against the training's time sampling.
fn read_weighting(
    slots: &SlotReader,
    (schedule, schedule_name): (&dyn Schedule, &'static str),
    (train, train_raw): (&TrainSettings, &RawParams),
) -> Result<(&'static str, Built<dyn Weighting>), ConfigError> {
    let natural = schedule.natural_weighting();
    let (plugin, raw) = slots.optional::<dyn Weighting>("weighting", natural)?;
    let weighting = (plugin.build)(&raw)?;
    train.check_time_sampling(
        train_raw,
        (schedule, schedule_name),
        weighting.plugin.as_ref(),
    )?;
    Ok((plugin.name, weighting))
}

/// Every top-level key is a setting or a section; an unknown one names the nearest.
fn check_top_level_keys(root: &Dict, provenance: &Provenance) -> Result<(), ConfigError> {
    let setting_names: Vec<&str> = Settings::docs().iter().map(|d| d.name).collect();
    let all_keys: Vec<&str> = setting_names.iter().copied().chain(SECTION_KEYS).collect();
    for (key, value) in root {
        if !all_keys.contains(&key.as_str()) {
            let fix = match config::nearest(key, all_keys.iter().copied()) {
                Some(near) => format!(
                    "did you mean `{near}`? (top-level keys: {})",
                    all_keys.join(", ")
                ),
                None => format!("remove it (top-level keys: {})", all_keys.join(", ")),
            };
            return Err(provenance.key_error(value, key, format!("unknown key `{key}`"), fix));
        }
    }
    Ok(())
}

/// The top-level settings (seed, device, sizes, ...), checked, and the device opened.
fn read_settings(
    experiment: &Experiment,
    root: &Dict,
    provenance: &Provenance,
) -> Result<(Settings, Selection), ConfigError> {
    let scalars: Dict = root
        .iter()
        .filter(|(k, _)| !SECTION_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let raw = RawParams::new("", scalars, provenance);
    let settings = Settings::from_raw(&raw)?;
    let device = crate::device::select(&settings.device)
        .map_err(|e| raw.invalid("device", e.message, e.fix))?;
    crate::device::announce(&device);
    check_sweep_name(settings.name.as_deref(), &experiment.stem, &raw)?;
    if settings.threads == 0 {
        return Err(raw.invalid("threads", "must be at least 1", "set `threads: 1`"));
    }
    if settings.num_samples < 2 {
        return Err(raw.invalid(
            "num_samples",
            "must be at least 2",
            "set e.g. `num_samples: 2000`",
        ));
    }
    Ok((settings, device))
}

/// The `data:` slot, drawn once per distinct data config, seed and sizes.
fn draw_data(
    slots: &SlotReader,
    settings: &Settings,
    train: &TrainSettings,
    data_cache: &mut DataCache,
) -> Result<Data, ConfigError> {
    let (plugin, raw) = slots.plugin::<dyn Dataset>("data")?;
    let built = (plugin.build)(&raw)?;
    let key = serde_json::json!([
        plugin.name,
        &built.params,
        settings.seed,
        train.train_size,
        settings.num_samples
    ])
    .to_string();
    let params = built.params;
    let (dataset, training, held_out) = data_cache.get_or_draw(&key, || {
        let dataset: Arc<dyn Dataset> = Arc::from(built.plugin);
        let (training, held_out) =
            dataset.draw(train.train_size, settings.num_samples, settings.seed);
        (dataset, Arc::new(training), Arc::new(held_out))
    });
    Ok(Data {
        name: plugin.name,
        params,
        key,
        dataset,
        training,
        held_out,
    })
}

/// What a guidance plugin may check and train against: the data, the schedule, the
/// network's classes.
fn guidance_context<'a>(
    data: &'a Data,
    (schedule_name, schedule): &'a (&'static str, Built<dyn Schedule>),
    network: &'a NetworkPart,
    settings: &Settings,
    device: &'a Selection,
) -> GuidanceContext<'a> {
    GuidanceContext {
        dataset: &data.dataset,
        training_data: &data.training,
        held_out: &data.held_out,
        schedule: schedule.plugin.as_ref(),
        seed: settings.seed,
        device: &device.device,
        training_key: serde_json::json!([&data.key, schedule_name, &schedule.params]).to_string(),
        data_classes: data.dataset.classes(),
        network_classes: network.built.plugin.classes(),
        network: network.name,
        network_trainable: network.built.plugin.trainable(),
    }
}

/// The `features:` slot (absent: `raw`): the feature space of FID-style metrics.
fn build_features(
    slots: &SlotReader,
    dataset: &Arc<dyn Dataset>,
) -> Result<(&'static str, Built<dyn FeatureExtractor>), ConfigError> {
    let (plugin, raw) = slots.optional::<dyn FeatureExtractor>("features", "raw")?;
    let built = (plugin.build)(
        &raw,
        &FeaturesContext {
            shape: &dataset.shape(),
            classes: dataset.classes(),
        },
    )?;
    Ok((plugin.name, built))
}

/// The trial from its parts: the resolved config recorded (every default filled in; its
/// hash is the id), the part of it that decides the model (its hash is the model's id), and
/// the distillation plan applied.
fn assemble(
    spec: &TrialSpec,
    parts: Parts,
    distill_slot: (Option<distill::DistillSettings>, &RawParams),
    sampler_raw: &RawParams,
) -> Result<Trial, ConfigError> {
    let resolved = record(&parts, distill_slot.0.as_ref());
    let training = model_config(&parts, &resolved);
    let network = &parts.network;
    let train_id = format!("{}-{}", network.name, stable_hash(&training));
    let (train_id, training, sampler, distill) = distill::apply(
        distill_slot,
        (train_id, training),
        (network.name, network.built.plugin.as_ref()),
        parts.schedule.1.plugin.as_ref(),
        (parts.sampler.1.plugin, sampler_raw, parts.sampler.0),
    )?;
    let assignments: Vec<(String, serde_json::Value)> = spec
        .assignments
        .iter()
        .map(|(k, v)| (k.clone(), config::to_json(v)))
        .collect();
    let label = label_of(&assignments);
    let names = PluginNames {
        data: parts.data.name,
        schedule: parts.schedule.0,
        weighting: parts.weighting.0,
        network: parts.network.name,
        sampler: parts.sampler.0,
        guidance: parts.guidance.0,
        latent: parts.latent.0.name,
        features: parts.features.0,
    };
    let features_section = with_kind(parts.features.0, parts.features.1.params);
    Ok(Trial {
        index: spec.index,
        id: format!("{}-{}", sanitize(&label), stable_hash(&resolved)),
        label,
        train_id,
        assignments,
        resolved,
        training,
        names,
        settings: parts.settings,
        train: parts.train,
        device: parts.device.device,
        device_name: parts.device.name,
        dataset: parts.data.dataset,
        schedule: Arc::from(parts.schedule.1.plugin),
        weighting: Arc::from(parts.weighting.1.plugin),
        architecture: Arc::from(parts.network.built.plugin),
        model_settings: parts.network.model_settings,
        warnings: parts.network.warning.into_iter().collect(),
        sampler,
        guidance: Arc::from(parts.guidance.1.plugin),
        latent: Arc::new(parts.latent.0),
        metrics: parts.metrics.0,
        features: Arc::from(parts.features.1.plugin),
        features_key: serde_json::json!([&features_section, &parts.data.key]).to_string(),
        training_data: parts.data.training,
        held_out: parts.data.held_out,
        distill,
    })
}

/// The complete config with every default filled in, section by section.
fn record(parts: &Parts, distill: Option<&distill::DistillSettings>) -> serde_json::Value {
    let mut resolved = serde_json::Map::new();
    resolved.insert("seed".into(), parts.settings.seed.into());
    resolved.insert("device".into(), parts.device.name.into());
    resolved.insert("num_samples".into(), parts.settings.num_samples.into());
    let mut section = |key: &str, (name, params): (&str, &serde_json::Value)| {
        resolved.insert(key.into(), with_kind(name, params.clone()));
    };
    section("data", (parts.data.name, &parts.data.params));
    section("schedule", (parts.schedule.0, &parts.schedule.1.params));
    section("weighting", (parts.weighting.0, &parts.weighting.1.params));
    section("sampler", (parts.sampler.0, &parts.sampler.1.params));
    let mut network = with_kind(parts.network.name, parts.network.built.params.clone());
    if parts.network.built.plugin.trainable() {
        if let (Some(map), Ok(serde_json::Value::Object(extra))) = (
            network.as_object_mut(),
            serde_json::to_value(&parts.network.model_settings),
        ) {
            map.extend(extra);
        }
    }
    resolved.insert("network".into(), network);
    resolved.insert("train".into(), parts.train.recorded());
    // A guidance that changes nothing (`none` toward uniform classes) is not recorded, so
    // experiments without a `guidance:` section keep their ids.
    if !parts.guidance.1.plugin.neutral() {
        let (name, guidance) = &parts.guidance;
        resolved.insert("guidance".into(), with_kind(name, guidance.params.clone()));
    }
    if let Some(section) = &parts.latent.1 {
        resolved.insert("latent".into(), section.clone());
    }
    distill::record(&mut resolved, distill);
    resolved.insert(
        "eval".into(),
        serde_json::Value::Array(parts.metrics.1.clone()),
    );
    // Only experiments with feature metrics record the feature space, so the ids of trials
    // without them stay as they were.
    if parts
        .metrics
        .0
        .iter()
        .any(|(_, metric)| metric.uses_features())
    {
        let (name, features) = &parts.features;
        resolved.insert("features".into(), with_kind(name, features.params.clone()));
    }
    serde_json::Value::Object(resolved)
}

/// The part of the resolved config that decides the trained model: the training sections
/// without a schedule's sampling-only parameters, and a guidance's training parameters.
fn model_config(parts: &Parts, resolved: &serde_json::Value) -> serde_json::Value {
    let mut training: serde_json::Map<String, serde_json::Value> = TRAINING_KEYS
        .iter()
        .filter_map(|k| resolved.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if let Some(section) = training.get_mut("schedule").and_then(|v| v.as_object_mut()) {
        for key in &parts.schedule.1.sampling_only {
            section.remove(*key);
        }
    }
    // Only a guidance's training parameters (classifier-free guidance's label dropout)
    // decide the model; its scale and target class only shape sampling.
    let (name, guidance) = &parts.guidance;
    let section = with_kind(name, guidance.params.clone());
    if let Some(part) = training_part(&section, &guidance.sampling_only) {
        training.insert("guidance".into(), part);
    }
    serde_json::Value::Object(training)
}
