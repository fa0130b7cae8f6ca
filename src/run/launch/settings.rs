//! The launcher's settings: the `launcher:` section of an experiment file
//! ([`LauncherSettings`], decoded by [`launcher_settings`]) and the command line's options
//! that win over it ([`LauncherArgs`]).

use std::path::PathBuf;

use figment::value::Value;

use crate::config::{ConfigError, Params, Provenance, RawParams};
use crate::params;

params! {
    /// The `launcher:` section of an experiment file: where the sweep's trials run. The
    /// command line's `--launcher`, `--partition`, ... win over it.
    pub struct LauncherSettings {
        /// `local` (here, one training group after another) or `slurm` (one Slurm job array,
        /// one task per training group; the results folder must be on a shared filesystem).
        kind: String = "local".to_string(),
        /// Slurm partition (`sbatch --partition`); empty for the cluster's default.
        partition: String = String::new(),
        /// Time limit of each task (`sbatch --time`, e.g. `2:00:00`); empty for the
        /// partition's default.
        time: String = String::new(),
        /// CPUs of each task (`sbatch --cpus-per-task`); 0 for the sweep's `threads`.
        cpus_per_task: usize = 0 => 0..=4096,
        /// GPUs of each task (`sbatch --gpus-per-task`); 0 for none.
        gpus_per_task: usize = 0 => 0..=64,
        /// Tasks that run at once (`sbatch --array=...%K`); 0 for Slurm's limit.
        array_parallelism: usize = 0 => 0..=100_000,
        /// More `sbatch` arguments, one word each (e.g. `[--account=lab, --qos=short]`).
        sbatch_args: Vec<String> = Vec::new(),
        /// Seconds between two looks at `squeue` and the status files while waiting.
        poll_seconds: f64 = 10.0,
        /// The runner binary each task starts; empty for this one. It must be reachable at
        /// that path from the compute nodes.
        runner: String = String::new(),
    }
}

/// Launcher options given on the command line (they win over the file's `launcher:`).
#[derive(Debug, Clone, Default)]
pub struct LauncherArgs {
    pub launcher: Option<String>,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub gpus_per_task: Option<usize>,
    pub array_parallelism: Option<usize>,
    pub sbatch_args: Vec<String>,
    /// Seconds between polls (tests use short ones).
    pub poll_seconds: Option<f64>,
    /// The runner binary the tasks start (default: the running one).
    pub runner: Option<PathBuf>,
    /// Submit and return without waiting (Slurm only).
    pub no_wait: bool,
}

impl LauncherArgs {
    /// The Slurm-only options given, by their flags (an error with the local launcher).
    pub(super) fn slurm_only_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        let given = [
            (self.partition.is_some(), "--partition"),
            (self.time.is_some(), "--time"),
            (self.cpus_per_task.is_some(), "--cpus-per-task"),
            (self.gpus_per_task.is_some(), "--gpus-per-task"),
            (self.array_parallelism.is_some(), "--array-parallelism"),
            (!self.sbatch_args.is_empty(), "--sbatch-arg"),
            (self.poll_seconds.is_some(), "--poll-seconds"),
            (self.no_wait, "--no-wait"),
        ];
        for (set, flag) in given {
            if set {
                flags.push(flag);
            }
        }
        flags
    }

    /// `settings` with the command line's values put over them.
    pub(super) fn apply(&self, mut settings: LauncherSettings) -> LauncherSettings {
        if let Some(kind) = &self.launcher {
            settings.kind = kind.clone();
        }
        if let Some(v) = &self.partition {
            settings.partition = v.clone();
        }
        if let Some(v) = &self.time {
            settings.time = v.clone();
        }
        if let Some(v) = self.cpus_per_task {
            settings.cpus_per_task = v;
        }
        if let Some(v) = self.gpus_per_task {
            settings.gpus_per_task = v;
        }
        if let Some(v) = self.array_parallelism {
            settings.array_parallelism = v;
        }
        settings
            .sbatch_args
            .extend(self.sbatch_args.iter().cloned());
        if let Some(v) = self.poll_seconds {
            settings.poll_seconds = v;
        }
        if let Some(v) = &self.runner {
            settings.runner = v.display().to_string();
        }
        settings
    }
}

/// The experiment's `launcher:` section (after overrides), validated; the defaults when it
/// has none. `launcher: slurm` is short for `launcher: {kind: slurm}`.
pub fn launcher_settings(
    experiment: &crate::sweep::Experiment,
) -> Result<LauncherSettings, ConfigError> {
    for axis in &experiment.axes {
        if let Some(key) = axis
            .keys
            .iter()
            .find(|k| *k == "launcher" || k.starts_with("launcher."))
        {
            return Err(ConfigError::Key {
                origin: experiment.file.display().to_string(),
                key: key.clone(),
                message: "the launcher is swept, but it applies to the whole sweep".to_string(),
                fix: "set it once, outside `sweep` (or with --launcher)".to_string(),
            });
        }
    }
    let figment = experiment.base_figment();
    let root = crate::config::root_dict(&figment, &experiment.file)?;
    let provenance = Provenance::new(&experiment.file, figment);
    settings_from(root.get("launcher"), &provenance)
}

/// Decodes one `launcher:` value.
fn settings_from(
    value: Option<&Value>,
    provenance: &Provenance,
) -> Result<LauncherSettings, ConfigError> {
    let dict = match value {
        None => return Ok(LauncherSettings::default()),
        Some(Value::String(_, kind)) => {
            let mut dict = figment::value::Dict::new();
            dict.insert("kind".into(), Value::from(kind.clone()));
            dict
        }
        Some(Value::Dict(_, dict)) => dict.clone(),
        Some(other) => {
            return Err(provenance.key_error(
                other,
                "launcher",
                "must be a table of launcher settings or a launcher name".to_string(),
                "write e.g. `launcher: {kind: slurm, partition: gpu}` or `launcher: local`"
                    .to_string(),
            ))
        }
    };
    let raw = RawParams::new("launcher", dict, provenance);
    let settings = LauncherSettings::from_raw(&raw)?;
    if !["local", "slurm"].contains(&settings.kind.as_str()) {
        return Err(raw.invalid(
            "kind",
            format!("unknown launcher `{}`", settings.kind),
            "use `local` or `slurm`",
        ));
    }
    if !(settings.poll_seconds.is_finite()
        && settings.poll_seconds > 0.0
        && settings.poll_seconds <= 3600.0)
    {
        return Err(raw.invalid(
            "poll_seconds",
            format!("must be in (0, 3600], not {}", settings.poll_seconds),
            "set e.g. `poll_seconds: 10`",
        ));
    }
    Ok(settings)
}
