//! Plugin registration: one `inventory` record per plugin, collected at start-up into a
//! sorted index. Lookup by kind and name; unknown names list the registered ones.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use figment::value::{Dict, Value};

use crate::config::{ConfigError, ParamDoc, Provenance, RawParams};
use crate::dataset::Dataset;
use crate::features::{FeatureExtractor, FeaturesContext};
use crate::guidance::{Guidance, GuidanceContext};
use crate::latent::{Latent, LatentContext};
use crate::metric::{Metric, MetricContext};
use crate::network::{Architecture, NetworkContext};
use crate::sampler::{Corrector, Predictor, Sampler, SamplerContext};
use crate::schedule::{Schedule, ScheduleContext};
use crate::weighting::Weighting;

/// The plugin kinds, one per slot of an experiment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Dataset,
    Schedule,
    Weighting,
    Network,
    Sampler,
    Metric,
    Features,
    Guidance,
    Latent,
    Predictor,
    Corrector,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Dataset,
        Kind::Schedule,
        Kind::Weighting,
        Kind::Network,
        Kind::Sampler,
        Kind::Metric,
        Kind::Features,
        Kind::Guidance,
        Kind::Latent,
        Kind::Predictor,
        Kind::Corrector,
    ];

    /// The word used on the command line (`runner plugins sampler`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Schedule => "schedule",
            Kind::Weighting => "weighting",
            Kind::Network => "network",
            Kind::Sampler => "sampler",
            Kind::Metric => "metric",
            Kind::Features => "features",
            Kind::Guidance => "guidance",
            Kind::Latent => "latent",
            Kind::Predictor => "predictor",
            Kind::Corrector => "corrector",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Dataset => "datasets",
            Kind::Schedule => "schedules",
            Kind::Weighting => "weightings",
            Kind::Network => "networks",
            Kind::Sampler => "samplers",
            Kind::Metric => "metrics",
            Kind::Features => "features",
            Kind::Guidance => "guidance",
            Kind::Latent => "latents",
            Kind::Predictor => "predictors",
            Kind::Corrector => "correctors",
        }
    }

    /// The experiment file's key for this kind (`data:`, `eval:`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Kind::Dataset => "data",
            Kind::Metric => "eval",
            other => other.name(),
        }
    }

    /// A kind by its name, its plural or its key in experiment files (`data`, `eval`).
    pub fn parse(word: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == word || k.plural() == word || k.key() == word)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built plugin with its parameters as resolved (every default filled in), which go into
/// the trial's resolved config and its stable id.
pub struct Built<T: ?Sized> {
    pub plugin: Box<T>,
    pub params: serde_json::Value,
    /// Parameters that only shape sampling (a schedule's sampling grid): they are left out
    /// of the training config, so sweeping them never splits a training group.
    pub sampling_only: Vec<&'static str>,
}

impl<T: ?Sized> Built<T> {
    pub fn new(plugin: Box<T>, params: &impl serde::Serialize) -> Self {
        let params = serde_json::to_value(params).unwrap_or(serde_json::Value::Null);
        Built {
            plugin,
            params,
            sampling_only: Vec::new(),
        }
    }

    /// Marks parameters that only affect sampling.
    pub fn sampling_only(mut self, keys: &[&'static str]) -> Self {
        self.sampling_only.extend_from_slice(keys);
        self
    }
}

pub type BuildResult<T> = Result<Built<T>, ConfigError>;

/// How a plugin of each kind is built from its raw slot.
#[derive(Clone, Copy)]
pub enum Builder {
    Dataset(fn(&RawParams) -> BuildResult<dyn Dataset>),
    Schedule(fn(&RawParams, &ScheduleContext) -> BuildResult<dyn Schedule>),
    Weighting(fn(&RawParams) -> BuildResult<dyn Weighting>),
    Network(fn(&RawParams, &NetworkContext) -> BuildResult<dyn Architecture>),
    Sampler(fn(&RawParams, &SamplerContext) -> BuildResult<dyn Sampler>),
    Metric(fn(&RawParams, &MetricContext) -> BuildResult<dyn Metric>),
    Features(fn(&RawParams, &FeaturesContext) -> BuildResult<dyn FeatureExtractor>),
    Guidance(fn(&RawParams, &GuidanceContext) -> BuildResult<dyn Guidance>),
    Latent(fn(&RawParams, &LatentContext) -> BuildResult<dyn Latent>),
    Predictor(fn(&RawParams) -> BuildResult<dyn Predictor>),
    Corrector(fn(&RawParams) -> BuildResult<dyn Corrector>),
}

impl Builder {
    pub fn kind(&self) -> Kind {
        match self {
            Builder::Dataset(_) => Kind::Dataset,
            Builder::Schedule(_) => Kind::Schedule,
            Builder::Weighting(_) => Kind::Weighting,
            Builder::Network(_) => Kind::Network,
            Builder::Sampler(_) => Kind::Sampler,
            Builder::Metric(_) => Kind::Metric,
            Builder::Features(_) => Kind::Features,
            Builder::Guidance(_) => Kind::Guidance,
            Builder::Latent(_) => Kind::Latent,
            Builder::Predictor(_) => Kind::Predictor,
            Builder::Corrector(_) => Kind::Corrector,
        }
    }
}

/// A plugin kind as a type (`dyn Dataset`, `dyn Sampler`, ...): which [`Kind`] it is and
/// which [`Builder`] variant builds it. The one match from a builder to its typed function
/// is here, so code that asks the registry for a kind gets the function it can call.
pub trait PluginKind {
    const KIND: Kind;
    type Build: Copy;
    fn build_of(builder: &Builder) -> Option<Self::Build>;
}

macro_rules! plugin_kinds {
    ($($variant:ident: $plugin:ty => $build:ty;)*) => {$(
        impl PluginKind for $plugin {
            const KIND: Kind = Kind::$variant;
            type Build = $build;
            fn build_of(builder: &Builder) -> Option<$build> {
                match builder {
                    Builder::$variant(build) => Some(*build),
                    _ => None,
                }
            }
        }
    )*};
}

plugin_kinds! {
    Dataset: dyn Dataset => fn(&RawParams) -> BuildResult<dyn Dataset>;
    Schedule: dyn Schedule => fn(&RawParams, &ScheduleContext) -> BuildResult<dyn Schedule>;
    Weighting: dyn Weighting => fn(&RawParams) -> BuildResult<dyn Weighting>;
    Network: dyn Architecture => fn(&RawParams, &NetworkContext) -> BuildResult<dyn Architecture>;
    Sampler: dyn Sampler => fn(&RawParams, &SamplerContext) -> BuildResult<dyn Sampler>;
    Metric: dyn Metric => fn(&RawParams, &MetricContext) -> BuildResult<dyn Metric>;
    Features: dyn FeatureExtractor =>
        fn(&RawParams, &FeaturesContext) -> BuildResult<dyn FeatureExtractor>;
    Guidance: dyn Guidance => fn(&RawParams, &GuidanceContext) -> BuildResult<dyn Guidance>;
    Latent: dyn Latent => fn(&RawParams, &LatentContext) -> BuildResult<dyn Latent>;
    Predictor: dyn Predictor => fn(&RawParams) -> BuildResult<dyn Predictor>;
    Corrector: dyn Corrector => fn(&RawParams) -> BuildResult<dyn Corrector>;
}

/// A registered plugin of kind `K`: its name and its build function.
pub struct Found<K: PluginKind + ?Sized> {
    pub name: &'static str,
    pub build: K::Build,
}

impl<K: PluginKind + ?Sized> Found<K> {
    fn of(plugin: &'static Plugin) -> Self {
        Found {
            name: plugin.name,
            build: K::build_of(&plugin.build)
                .expect("the index files every plugin under its builder's kind"),
        }
    }
}

/// The registration record each plugin submits with `inventory::submit!`.
pub struct Plugin {
    pub name: &'static str,
    /// One line for `runner plugins`.
    pub about: &'static str,
    pub params: fn() -> Vec<ParamDoc>,
    pub build: Builder,
}

impl Plugin {
    pub fn kind(&self) -> Kind {
        self.build.kind()
    }
}

inventory::collect!(Plugin);

struct Index {
    by_kind: BTreeMap<Kind, BTreeMap<&'static str, &'static Plugin>>,
    duplicates: Vec<(Kind, &'static str)>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut by_kind: BTreeMap<Kind, BTreeMap<&'static str, &'static Plugin>> =
            Kind::ALL.iter().map(|k| (*k, BTreeMap::new())).collect();
        let mut duplicates = Vec::new();
        for plugin in inventory::iter::<Plugin> {
            let names = by_kind.entry(plugin.kind()).or_default();
            if names.insert(plugin.name, plugin).is_some() {
                duplicates.push((plugin.kind(), plugin.name));
            }
        }
        Index {
            by_kind,
            duplicates,
        }
    })
}

/// Fails when two plugins of one kind share a name (checked once at start-up).
pub fn check() -> Result<(), String> {
    let dups = &index().duplicates;
    if dups.is_empty() {
        Ok(())
    } else {
        let list: Vec<String> = dups.iter().map(|(k, n)| format!("{k} `{n}`")).collect();
        Err(format!(
            "plugins registered twice: {}; rename one of each pair",
            list.join(", ")
        ))
    }
}

/// Every plugin of a kind, sorted by name.
pub fn plugins(kind: Kind) -> Vec<&'static Plugin> {
    index()
        .by_kind
        .get(&kind)
        .map(|m| m.values().copied().collect())
        .unwrap_or_default()
}

pub fn names(kind: Kind) -> Vec<&'static str> {
    plugins(kind).iter().map(|p| p.name).collect()
}

/// Why a lookup failed: the registered names and the nearest one.
#[derive(Debug, Clone)]
pub struct Unknown {
    pub kind: Kind,
    pub name: String,
    pub known: Vec<&'static str>,
    pub suggestion: Option<&'static str>,
}

impl Unknown {
    pub fn message(&self) -> String {
        format!("unknown {} `{}`", self.kind, self.name)
    }

    pub fn fix(&self) -> String {
        let known = if self.known.is_empty() {
            "none are registered".to_string()
        } else {
            self.known.join(", ")
        };
        match self.suggestion {
            Some(near) => format!(
                "did you mean `{near}`? Registered {}: {known}",
                self.kind.plural()
            ),
            None => format!("use one of the registered {}: {known}", self.kind.plural()),
        }
    }
}

/// The plugin of kind `K` called `name`, ready to build.
pub fn find_of<K: PluginKind + ?Sized>(name: &str) -> Result<Found<K>, Unknown> {
    find(K::KIND, name).map(Found::of)
}

/// Every plugin of kind `K`, sorted by name, ready to build.
pub fn all_of<K: PluginKind + ?Sized>() -> Vec<Found<K>> {
    plugins(K::KIND).into_iter().map(Found::of).collect()
}

pub fn find(kind: Kind, name: &str) -> Result<&'static Plugin, Unknown> {
    if let Some(plugin) = index().by_kind.get(&kind).and_then(|m| m.get(name)) {
        return Ok(plugin);
    }
    let known = names(kind);
    Err(Unknown {
        kind,
        name: name.to_string(),
        suggestion: crate::config::nearest(name, known.iter().copied()),
        known,
    })
}

/// The plugin a slot's value chooses, a name or a `{kind: NAME, ...}` table, with the slot's
/// other keys as its raw parameters under `path`. Errors name the key path and, for an
/// unknown name, the registered ones.
pub fn plugin_from_value<'p, K: PluginKind + ?Sized>(
    value: &Value,
    path: &str,
    provenance: &'p Provenance,
) -> Result<(Found<K>, RawParams<'p>), ConfigError> {
    let kind = K::KIND;
    let (name_value, mut dict) = match value {
        Value::String(..) => (value.clone(), Dict::new()),
        Value::Dict(_, dict) => match dict.get("kind") {
            Some(name) => (name.clone(), dict.clone()),
            None => {
                return Err(provenance.key_error(
                    value,
                    &format!("{path}.kind"),
                    "no `kind` given".into(),
                    format!(
                        "add `kind: NAME` with one of the registered {}: {}",
                        kind.plural(),
                        names(kind).join(", ")
                    ),
                ))
            }
        },
        _ => {
            return Err(provenance.key_error(
                value,
                path,
                format!("must be a {kind} name or a table with `kind`"),
                format!("write `{path}: {{kind: NAME, ...}}`"),
            ))
        }
    };
    dict.remove("kind");
    let Some(name) = name_value.as_str() else {
        return Err(provenance.key_error(
            &name_value,
            &format!("{path}.kind"),
            "must be a name".into(),
            format!("write the {kind} name as a string"),
        ));
    };
    let plugin = find_of::<K>(name).map_err(|unknown| {
        provenance.key_error(
            &name_value,
            &format!("{path}.kind"),
            unknown.message(),
            unknown.fix(),
        )
    })?;
    Ok((
        plugin,
        RawParams::new(path, dict, provenance).with_kind_value(name_value.clone()),
    ))
}

/// The plugin of kind `K` that the key `key` of a plugin's own table chooses (`pc`'s
/// `predictor`), a name or a `{kind: NAME, ...}` table, or `default` when the key or the
/// table's `kind` is absent (so `sampler.corrector.snr=0.1` tunes the default corrector); its
/// raw parameters are under the key's path (`sampler.predictor`).
pub fn sub_plugin<'p, K: PluginKind + ?Sized>(
    raw: &RawParams<'p>,
    key: &str,
    default: &str,
) -> Result<(Found<K>, RawParams<'p>), ConfigError> {
    let default_name = || Value::from(default.to_string());
    let value = match raw.get(key) {
        None => default_name(),
        Some(Value::Dict(tag, table)) if !table.contains_key("kind") => {
            let mut table = table.clone();
            table.insert("kind".into(), default_name());
            Value::Dict(*tag, table)
        }
        Some(value) => value.clone(),
    };
    plugin_from_value::<K>(&value, &raw.key_path(key), raw.provenance())
}

/// The registered schedules that, built with their defaults (on a two-point stand-in for
/// the training data), satisfy `holds`: a plugin's fix lists them (e.g. `elbo` the discrete
/// chains it accepts).
pub fn schedules_where(holds: impl Fn(&dyn Schedule) -> bool) -> Vec<&'static str> {
    let stand_in = crate::samples::Samples::new(1, vec![-1.0, 1.0]);
    let provenance =
        crate::config::Provenance::new(std::path::Path::new("(defaults)"), figment::Figment::new());
    let context = ScheduleContext {
        training_data: &stand_in,
    };
    all_of::<dyn Schedule>()
        .into_iter()
        .filter(|schedule| {
            let raw = RawParams::new("schedule", figment::value::Dict::new(), &provenance);
            (schedule.build)(&raw, &context).is_ok_and(|built| holds(built.plugin.as_ref()))
        })
        .map(|schedule| schedule.name)
        .collect()
}
