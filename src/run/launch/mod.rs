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
mod outcome;
mod plan;
mod settings;
mod slurm;
mod status;
mod submit;
mod task;

pub use collect::collect;
pub use outcome::{LaunchError, Launched};
pub use settings::{launcher_settings, LauncherArgs, LauncherSettings};
pub use status::status;
pub use task::run_task;

use std::io::Write;
use std::path::Path;

use super::SweepOptions;

/// The launchers `--launcher` and `launcher: {kind: ...}` take.
pub const LAUNCHERS: [&str; 2] = ["local", "slurm"];

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
