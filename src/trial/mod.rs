//! Trial resolution: every trial of a sweep becomes a fully built, validated object before
//! the first one runs (plugins constructed, data generated, invariants checked).

mod distill;
mod jobs;
mod latent;
mod limits;
mod metrics;
mod naming;
mod plan;
mod settings;
mod shared;
mod slots;

use crate::config::limits::MAX_ITEMS;
pub use distill::{DistillPlan, DistillSettings, RoundModel, Rounds};
pub use latent::DEFAULT_LATENT;
pub use limits::duration_text;
pub use naming::{display_value, label_of, short_key, stable_hash};
pub use plan::plan_summary;
pub use settings::{Settings, DEFAULT_GUIDANCE, PLUGIN_SLOTS, TRAINING_KEYS};
pub use shared::ResolutionStats;
pub use slots::schedules_where;

use limits::{check_sweep_wide, check_threads, check_train_limits};
use naming::sanitize;
use settings::SECTION_KEYS;
use shared::DataCache;
use slots::{guidance_slot, optional_slot, plugin_slot, section_dict, training_part, with_kind};

use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use figment::value::Dict;

use crate::config::{self, number, ConfigError, Params, Provenance, RawParams};
use crate::dataset::{Dataset, Samples};
use crate::features::{FeatureExtractor, FeaturesContext};
use crate::guidance::{Guidance, GuidanceContext};
use crate::metric::{Metric, MetricContext};
use crate::network::{Architecture, NetworkContext};
use crate::parameterisation::{Model, ModelSettings};
use crate::registry::{Builder, Kind};
use crate::rng::Rng;
use crate::sampler::Sampler;
use crate::schedule::Schedule;
use crate::sweep::{Experiment, TrialSpec};
use crate::train::TrainSettings;
use crate::weighting::Weighting;

/// A fully resolved trial.
pub struct Trial {
    pub index: usize,
    /// Readable: the swept values, e.g. `num_levels=10,sigma_max=auto`.
    pub label: String,
    /// Folder name: the label and a stable hash of the resolved config.
    pub id: String,
    /// The trained model's folder name, shared by trials with the same training config.
    pub train_id: String,
    /// Swept key paths and this trial's values.
    pub assignments: Vec<(String, serde_json::Value)>,
    /// The complete config with every default filled in.
    pub resolved: serde_json::Value,
    /// The part of `resolved` that decides the trained model (its hash is `train_id`).
    pub training: serde_json::Value,
    pub settings: Settings,
    pub train: TrainSettings,
    pub device: Device,
    pub dataset: Arc<dyn Dataset>,
    pub schedule: Arc<dyn Schedule>,
    pub weighting: Arc<dyn Weighting>,
    /// The weighting's registered name (for messages).
    pub weighting_name: &'static str,
    pub architecture: Arc<dyn Architecture>,
    /// How the network's raw output becomes a denoiser (trainable networks only).
    pub model_settings: ModelSettings,
    pub sampler: Box<dyn Sampler>,
    /// How sampling is guided toward a class (the `guidance:` slot; default `none`), and
    /// whether training drops labels for it.
    pub guidance: Arc<dyn Guidance>,
    /// The latent space diffusion runs in (the `latent:` slot; default `identity`: the data).
    pub latent: Arc<crate::latent::LatentSpace>,
    pub metrics: Vec<(String, Box<dyn Metric>)>,
    /// The feature space of FID-style metrics (the `features:` slot; default `raw`).
    pub features: Arc<dyn FeatureExtractor>,
    /// Identifies the prepared extractor: its resolved config and the data it may train on.
    pub features_key: String,
    pub training_data: Arc<Samples>,
    pub held_out: Arc<Samples>,
    /// Progressive distillation: the rounds whose last student this trial samples.
    pub distill: Option<DistillPlan>,
}

impl Trial {
    /// A fresh model for this trial: the network with newly drawn weights under its
    /// parameterisation, or the exact model.
    pub fn new_model(&self, rng: &mut Rng) -> candle_core::Result<Model> {
        let instance = self.architecture.instantiate(&self.device, rng)?;
        Ok(Model::new(instance, self.model_settings.clone()))
    }
}

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
    let settings: Vec<&Settings> = trials.iter().map(|t| &t.settings).collect();
    check_sweep_wide(experiment, &settings)?;
    check_threads(experiment, &trials[0].settings)?;
    latent::report_times(&trials);
    let stats = data_cache.stats(trials.len(), start.elapsed());
    Ok((trials, stats))
}

fn resolve(
    experiment: &Experiment,
    spec: TrialSpec,
    data_cache: &mut DataCache,
) -> Result<Trial, ConfigError> {
    let provenance = Provenance::new(&experiment.file, spec.figment.clone());
    let root = config::root_dict(&spec.figment, &experiment.file)?;

    let setting_names: Vec<&str> = Settings::docs().iter().map(|d| d.name).collect();
    let all_keys: Vec<&str> = setting_names.iter().copied().chain(SECTION_KEYS).collect();
    for (key, value) in &root {
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
    let scalars: Dict = root
        .iter()
        .filter(|(k, _)| !SECTION_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let settings_raw = RawParams::new("", scalars, &provenance);
    let settings = Settings::from_raw(&settings_raw)?;
    let device = crate::device::select(&settings.device)
        .map_err(|e| settings_raw.invalid("device", e.message, e.fix))?;
    crate::device::announce(&device);
    naming::check_sweep_name(settings.name.as_deref(), &experiment.stem, &settings_raw)?;
    if settings.threads == 0 {
        return Err(settings_raw.invalid("threads", "must be at least 1", "set `threads: 1`"));
    }
    if settings.num_samples < 2 {
        return Err(settings_raw.invalid(
            "num_samples",
            "must be at least 2",
            "set e.g. `num_samples: 2000`",
        ));
    }
    if settings.num_samples > MAX_ITEMS {
        return Err(settings_raw.invalid(
            "num_samples",
            format!(
                "{} is more than the limit of {} (the samples and an equal held-out set are held in memory)",
                settings.num_samples,
                number(MAX_ITEMS as f64)
            ),
            "set e.g. `num_samples: 2000`",
        ));
    }

    let train_raw = RawParams::new(
        "train",
        section_dict(&root, "train", &provenance)?,
        &provenance,
    );
    let train = TrainSettings::from_raw(&train_raw)?;
    train.validate(&train_raw)?;
    check_train_limits(&train, &train_raw)?;
    let distill_raw = distill::section(&root, &provenance)?;

    // Data: generated once per distinct data config, seed and sizes.
    let (data_plugin, data_raw) =
        plugin_slot(experiment, &spec, &root, "data", Kind::Dataset, &provenance)?;
    let Builder::Dataset(build_data) = data_plugin.build else {
        unreachable!("kind checked")
    };
    let data_built = build_data(&data_raw)?;
    let data_key = serde_json::json!([
        data_plugin.name,
        &data_built.params,
        settings.seed,
        train.train_size,
        settings.num_samples
    ])
    .to_string();
    let data_params = data_built.params;
    let (dataset, training_data, held_out) = data_cache.get_or_draw(&data_key, || {
        let dataset: Arc<dyn Dataset> = Arc::from(data_built.plugin);
        let (training, held_out) =
            dataset.draw(train.train_size, settings.num_samples, settings.seed);
        (dataset, Arc::new(training), Arc::new(held_out))
    });

    let (schedule_plugin, schedule_raw) = plugin_slot(
        experiment,
        &spec,
        &root,
        "schedule",
        Kind::Schedule,
        &provenance,
    )?;
    let Builder::Schedule(build_schedule) = schedule_plugin.build else {
        unreachable!("kind checked")
    };
    let data_section = with_kind(data_plugin.name, data_params.clone());
    let id_parts = (settings.seed, train.train_size, device.name);
    let latent = latent::latent_slot(
        experiment,
        &spec,
        &root,
        &provenance,
        &dataset.shape(),
        &data_section,
        id_parts,
    )?;
    let schedule_slot = (schedule_plugin.name, &schedule_raw);
    let schedule = latent::build_schedule(build_schedule, schedule_slot, &training_data, &latent)?;

    let (weighting_plugin, weighting_raw) = plugin_slot(
        experiment,
        &spec,
        &root,
        "weighting",
        Kind::Weighting,
        &provenance,
    )?;
    let Builder::Weighting(build_weighting) = weighting_plugin.build else {
        unreachable!("kind checked")
    };
    let weighting = build_weighting(&weighting_raw)?;

    let (network_plugin, mut network_raw) = plugin_slot(
        experiment,
        &spec,
        &root,
        "network",
        Kind::Network,
        &provenance,
    )?;
    let Builder::Network(build_network) = network_plugin.build else {
        unreachable!("kind checked")
    };
    // The parameterisation keys belong to the engine, the rest to the network plugin.
    let model_keys: Vec<&str> = ModelSettings::docs().iter().map(|d| d.name).collect();
    let mut model_raw = network_raw.clone();
    model_raw
        .dict
        .retain(|k, _| model_keys.contains(&k.as_str()));
    network_raw
        .dict
        .retain(|k, _| !model_keys.contains(&k.as_str()));
    let network = build_network(
        &network_raw,
        &NetworkContext {
            dim: latent.space.dim(),
            shape: &latent.space.shape,
            classes: dataset.classes(),
            dataset: &dataset,
        },
    )?;
    let model_settings = ModelSettings::from_raw(&model_raw)?;
    if !network.plugin.trainable() {
        if let Some(key) = model_keys.iter().find(|k| model_raw.get(k).is_some()) {
            return Err(model_raw.invalid(
                key,
                format!(
                    "network `{}` is exact: it has no parameterisation",
                    network_plugin.name
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

    let (sampler_plugin, sampler_raw) = plugin_slot(
        experiment,
        &spec,
        &root,
        "sampler",
        Kind::Sampler,
        &provenance,
    )?;
    let Builder::Sampler(build_sampler) = sampler_plugin.build else {
        unreachable!("kind checked")
    };
    let sampler = build_sampler(&sampler_raw)?;
    let distill_settings = distill::read(&distill_raw, sampler.plugin.grid().steps)?;

    let context = GuidanceContext {
        dataset: &dataset,
        training_data: &training_data,
        held_out: &held_out,
        schedule: schedule.plugin.as_ref(),
        seed: settings.seed,
        device: &device.device,
        training_key: serde_json::json!([&data_key, schedule_plugin.name, &schedule.params])
            .to_string(),
        data_classes: dataset.classes(),
        network_classes: network.plugin.classes(),
        network: network_plugin.name,
        network_trainable: network.plugin.trainable(),
    };
    let (guidance_name, guidance) = guidance_slot(experiment, &spec, &root, &provenance, &context)?;
    let network_facts = (network_plugin.name, network.plugin.trainable());
    latent::check(
        &latent,
        network_facts,
        (guidance_name, guidance.plugin.as_ref()),
    )?;

    let (metrics, metric_params) = metrics::build_metrics(
        &root,
        &provenance,
        &MetricContext {
            dataset: dataset.as_ref(),
            schedule: schedule.plugin.as_ref(),
            schedule_name: schedule_plugin.name,
        },
        settings.num_samples,
        latent.space.active().then_some(latent.space.name),
    )?;

    let (features_plugin, features_raw) = optional_slot(
        experiment,
        &spec,
        &root,
        "features",
        (Kind::Features, "raw"),
        &provenance,
    )?;
    let Builder::Features(build_features) = features_plugin.build else {
        unreachable!("kind checked")
    };
    let features = build_features(
        &features_raw,
        &FeaturesContext {
            shape: &dataset.shape(),
            classes: dataset.classes(),
        },
    )?;
    let features_params = with_kind(features_plugin.name, features.params);
    let features_key = serde_json::json!([&features_params, &data_key]).to_string();

    let mut resolved = serde_json::Map::new();
    resolved.insert("seed".into(), settings.seed.into());
    resolved.insert("device".into(), device.name.into());
    resolved.insert("num_samples".into(), settings.num_samples.into());
    resolved.insert("data".into(), with_kind(data_plugin.name, data_params));
    resolved.insert(
        "schedule".into(),
        with_kind(schedule_plugin.name, schedule.params),
    );
    resolved.insert(
        "weighting".into(),
        with_kind(weighting_plugin.name, weighting.params),
    );
    let mut network_params = with_kind(network_plugin.name, network.params);
    if network.plugin.trainable() {
        if let (Some(map), Ok(serde_json::Value::Object(extra))) = (
            network_params.as_object_mut(),
            serde_json::to_value(&model_settings),
        ) {
            map.extend(extra);
        }
    }
    resolved.insert("network".into(), network_params);
    resolved.insert(
        "train".into(),
        serde_json::to_value(&train).unwrap_or_default(),
    );
    resolved.insert(
        "sampler".into(),
        with_kind(sampler_plugin.name, sampler.params),
    );
    // A guidance that changes nothing (`none` toward uniform classes) is not recorded, so
    // experiments without a `guidance:` section keep their ids.
    let guidance_section = with_kind(guidance_name, guidance.params);
    if !guidance.plugin.neutral() {
        resolved.insert("guidance".into(), guidance_section.clone());
    }
    if let Some(section) = latent.section {
        resolved.insert("latent".into(), section);
    }
    distill::record(&mut resolved, distill_settings.as_ref());
    resolved.insert("eval".into(), serde_json::Value::Array(metric_params));
    // Only experiments with feature metrics record the feature space, so the ids of trials
    // without them stay as they were.
    if metrics.iter().any(|(_, metric)| metric.uses_features()) {
        resolved.insert("features".into(), features_params);
    }
    let resolved = serde_json::Value::Object(resolved);

    let mut training = training_config(&resolved);
    if let Some(section) = training.get_mut("schedule").and_then(|v| v.as_object_mut()) {
        for key in &schedule.sampling_only {
            section.remove(*key);
        }
    }
    // Only a guidance's training parameters (classifier-free guidance's label dropout)
    // decide the model; its scale and target class only shape sampling.
    if let (Some(part), Some(map)) = (
        training_part(&guidance_section, &guidance.sampling_only),
        training.as_object_mut(),
    ) {
        map.insert("guidance".into(), part);
    }
    let train_id = format!("{}-{}", network_plugin.name, stable_hash(&training));
    let network_part = (network_plugin.name, network.plugin.as_ref());
    let sampler_part = (sampler.plugin, &sampler_raw, sampler_plugin.name);
    let (train_id, training, sampler, distill) = distill::apply(
        (distill_settings, &distill_raw),
        (train_id, training),
        network_part,
        schedule.plugin.as_ref(),
        sampler_part,
    )?;

    let assignments: Vec<(String, serde_json::Value)> = spec
        .assignments
        .iter()
        .map(|(k, v)| (k.clone(), config::to_json(v)))
        .collect();
    let label = label_of(&assignments);
    let id = format!("{}-{}", sanitize(&label), stable_hash(&resolved));

    Ok(Trial {
        index: spec.index,
        label,
        id,
        train_id,
        assignments,
        resolved,
        training,
        settings,
        train,
        device: device.device,
        dataset,
        schedule: Arc::from(schedule.plugin),
        weighting: Arc::from(weighting.plugin),
        weighting_name: weighting_plugin.name,
        architecture: Arc::from(network.plugin),
        model_settings,
        sampler,
        guidance: Arc::from(guidance.plugin),
        latent: Arc::new(latent.space),
        metrics,
        features: Arc::from(features.plugin),
        features_key,
        training_data,
        held_out,
        distill,
    })
}

/// The sections of a resolved config that decide the trained model (before a schedule's
/// sampling-only parameters are removed).
fn training_config(resolved: &serde_json::Value) -> serde_json::Value {
    let part: serde_json::Map<String, serde_json::Value> = TRAINING_KEYS
        .iter()
        .filter_map(|k| resolved.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    serde_json::Value::Object(part)
}
