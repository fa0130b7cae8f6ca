//! `runner sweep` (and `trial`, `collect`): the sweep's flags made overrides and options,
//! its launch, and the exit status it ends with.

use std::path::PathBuf;

use super::args::Command;
use crate::run::launch::{self, LaunchError, Launched, LauncherArgs};
use crate::run::{self, SweepOptions};

/// The exit status of a sweep that ran to the end but in which some trials failed (1 is
/// for errors that stop the sweep).
pub const SOME_TRIALS_FAILED: u8 = 2;

/// Runs a `sweep` command; its exit status.
pub(super) fn run(command: Command, out: &mut dyn std::io::Write) -> Result<u8, String> {
    let Command::Sweep {
        file,
        overrides,
        multirun: _,
        dry_run,
        no_sweep,
        no_space_check,
        progress,
        jobs,
        results,
        device,
        launcher,
        partition,
        time,
        cpus_per_task,
        gpus_per_task,
        array_parallelism,
        sbatch_arg,
        poll_seconds,
        no_wait,
    } = command
    else {
        unreachable!("sweeping::run is given `sweep` commands")
    };
    crate::run::set_progress_mode(progress);
    let mut overrides = with_flags(utf8_overrides(&file, overrides)?, no_sweep);
    if let Some(device) = device {
        overrides.push(format!("device={device}"));
    }
    let options = SweepOptions {
        results,
        dry_run,
        jobs: jobs as usize,
        space_check: !no_space_check,
    };
    let args = LauncherArgs {
        launcher,
        partition,
        time,
        cpus_per_task,
        gpus_per_task,
        array_parallelism,
        sbatch_args: sbatch_arg,
        poll_seconds,
        no_wait,
        ..LauncherArgs::default()
    };
    let report = match launch::sweep(&file, &overrides, &options, &args, out) {
        Ok(Launched::Finished(report)) => report,
        Ok(Launched::Submitted { .. }) => return Ok(0),
        Err(e) => return launch_failure(e),
    };
    Ok(sweep_status(&report))
}

/// The overrides with the one `--no-sweep` stands for, `~sweep`, when it is given.
pub(super) fn with_flags(mut overrides: Vec<String>, no_sweep: bool) -> Vec<String> {
    if no_sweep {
        overrides.push("~sweep".to_string());
    }
    overrides
}

/// The exit status of a finished sweep: 0, or [`SOME_TRIALS_FAILED`] (said on stderr).
pub(super) fn sweep_status(report: &run::SweepReport) -> u8 {
    // A stop requested during the last trial found no later safe point: the sweep finished,
    // and the process still ends as the stop asked.
    if crate::interrupt::requested() {
        eprintln!(
            "interrupted: the stop came during the last trial, so the sweep ran to its end; \
             everything is saved"
        );
        return crate::interrupt::exit_code() as u8;
    }
    if report.failed > 0 {
        eprintln!(
            "{} of {} trials failed; see {}",
            report.failed,
            report.trials,
            report.folder.table("csv").display()
        );
        return SOME_TRIALS_FAILED;
    }
    0
}

/// An interrupted sweep's status (with what to do on stderr), or the error's message.
pub(super) fn launch_failure(error: LaunchError) -> Result<u8, String> {
    match error {
        LaunchError::Run(e) => match *e {
            run::RunError::Interrupted { message } => {
                eprintln!(
                    "interrupted: {message}. Finished trials and trained models are saved; \
                     run the same command again to resume"
                );
                Ok(crate::interrupt::exit_code() as u8)
            }
            other => Err(other.to_string()),
        },
        LaunchError::StoppedWaiting(message) => {
            eprintln!("{message}");
            Ok(crate::interrupt::exit_code() as u8)
        }
        other => Err(other.to_string()),
    }
}

/// `results_dir` made absolute (the plan's paths and the tasks' do not depend on where the
/// command runs).
pub(super) fn in_plan_folder(results_dir: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(results_dir).map_err(|e| {
        format!(
            "cannot make {} an absolute path: {e}",
            results_dir.display()
        )
    })
}

/// The overrides as text. Read here rather than by clap, so that a non-UTF-8 override names
/// the file.
pub(super) fn utf8_overrides(
    file: &std::path::Path,
    overrides: Vec<std::ffi::OsString>,
) -> Result<Vec<String>, String> {
    overrides
        .into_iter()
        .map(|o| {
            o.into_string().map_err(|o| {
                format!(
                    "in {} (command-line override `{}`): the override is not UTF-8 text. \
                     Fix: type it in UTF-8",
                    file.display(),
                    o.to_string_lossy()
                )
            })
        })
        .collect()
}
