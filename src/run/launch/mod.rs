//! Where a sweep's trials run. The `local` launcher runs them here, one training group after
//! another ([`super::sweep`]). The `slurm` launcher resolves and validates the sweep here,
//! writes its plan into the results folder (which must be on a filesystem the compute nodes
//! share) and submits one Slurm job array whose tasks each run one training group
//! (`runner trial RESULTS_DIR GROUP`), so a model shared by several trials is trained once.
//! Each task keeps a status file (exit code, timings, error, each trial's outcome) under
//! `slurm/status/`; the submitter polls `squeue` and those files, prints progress and every
//! failure as it happens, and builds the tables, plots and report exactly as the local
//! launcher does. A rerun submits only the trials that are neither finished nor in flight.

mod collect;
mod plan;
mod slurm;
mod status;
mod submit;
mod task;

pub use collect::collect;
pub use status::status;
pub use submit::LaunchError;
pub use task::run_task;

use std::io::Write;
use std::path::{Path, PathBuf};

use figment::value::Value;

use super::{RunError, SweepOptions, SweepReport};
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
        cpus_per_task: usize = 0,
        /// GPUs of each task (`sbatch --gpus-per-task`); 0 for none.
        gpus_per_task: usize = 0,
        /// Tasks that run at once (`sbatch --array=...%K`); 0 for Slurm's limit.
        array_parallelism: usize = 0,
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
    fn slurm_only_flags(&self) -> Vec<&'static str> {
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
    fn apply(&self, mut settings: LauncherSettings) -> LauncherSettings {
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

/// What `runner sweep` did.
pub enum Launched {
    /// The sweep ran to its end (here, or on Slurm while this process waited).
    Finished(SweepReport),
    /// Tasks were submitted (or were already in flight) and this process did not wait.
    Submitted { folder: PathBuf },
}

/// Runs a sweep with the launcher the command line or the experiment file's `launcher:`
/// section names (`local` by default).
pub fn sweep(
    file: &Path,
    overrides: &[String],
    options: &SweepOptions,
    args: &LauncherArgs,
    out: &mut dyn Write,
) -> Result<Launched, LaunchError> {
    let prepared = super::prepare(file, overrides, &options.results)?;
    let settings = args.apply(launcher_settings(&prepared.experiment)?);
    if let Some(poll) = args
        .poll_seconds
        .filter(|p| !(p.is_finite() && *p > 0.0 && *p <= 3600.0))
    {
        return Err(LaunchError::Usage(format!(
            "--poll-seconds must be in (0, 3600], not {poll}. Fix: give e.g. --poll-seconds 10"
        )));
    }
    match settings.kind.as_str() {
        "local" => {
            let flags = args.slurm_only_flags();
            if !flags.is_empty() {
                return Err(LaunchError::Usage(format!(
                    "{} appl{} to `--launcher slurm` only, and this sweep runs locally. Fix: add \
                     `--launcher slurm` (or `launcher: {{kind: slurm}}` in {}), or drop {}",
                    flags.join(", "),
                    if flags.len() == 1 { "ies" } else { "y" },
                    file.display(),
                    if flags.len() == 1 { "it" } else { "them" },
                )));
            }
            let report = super::run_local(prepared, file, overrides, options, out)?;
            Ok(Launched::Finished(report))
        }
        "slurm" if options.jobs > 1 => Err(LaunchError::Usage(format!(
            "--jobs runs training groups at once on this machine, and this sweep goes to Slurm \
             (from --launcher or `launcher.kind` in {}). Fix: drop --jobs; Slurm runs as many \
             tasks at once as `--array-parallelism` allows",
            file.display()
        ))),
        "slurm" => submit::sweep(
            prepared,
            file,
            overrides,
            options,
            &settings,
            args.no_wait,
            out,
        ),
        other => Err(LaunchError::Usage(format!(
            "unknown launcher `{other}` (from --launcher or `launcher.kind` in {}). Fix: use \
             `local` or `slurm`",
            file.display()
        ))),
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

impl From<RunError> for LaunchError {
    fn from(error: RunError) -> Self {
        LaunchError::Run(Box::new(error))
    }
}

impl From<ConfigError> for LaunchError {
    fn from(error: ConfigError) -> Self {
        LaunchError::Run(Box::new(RunError::from(error)))
    }
}
