//! The command line: `runner sweep FILE [key=value ...] [--device D] [--launcher slurm ...]`,
//! `runner plugins [KIND]`, `runner report DIR`, and for Slurm sweeps `runner trial`,
//! `runner status` and `runner collect`.
//! Thin: it parses arguments and calls the library. A crate with its own plugins can call
//! [`main`] from its binary to get the same CLI with its plugins registered.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod listing;
mod sweeping;

pub use args::{Cli, Command};

pub use listing::plugin_listing;
pub use sweeping::SOME_TRIALS_FAILED;
use sweeping::{in_plan_folder, launch_failure, sweep_status, utf8_overrides, with_flags};

use crate::registry;
use crate::run::launch;

/// Parses the process arguments and runs; errors are printed as one paragraph.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::interrupt::install(
        "stopping at the next safe point (a training checkpoint, or the end of this trial's \
         sampling); press Ctrl-C (or send the signal) again to quit at once",
    );
    match execute_status(cli, &mut std::io::stdout()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command, writing its output to `out`.
pub fn execute(cli: Cli, out: &mut dyn std::io::Write) -> Result<(), String> {
    execute_status(cli, out).map(|_| ())
}

/// Runs one parsed command, writing its output to `out`; returns the exit status: 0, or
/// [`SOME_TRIALS_FAILED`] when a sweep finished with failed trials.
pub fn execute_status(cli: Cli, out: &mut dyn std::io::Write) -> Result<u8, String> {
    match cli.command {
        command @ Command::Sweep { .. } => sweeping::run(command, out),
        Command::Trial {
            results_dir,
            group,
            plan,
        } => {
            let root = in_plan_folder(&results_dir)?;
            launch::run_task(&root, group, plan.as_deref(), out).or_else(launch_failure)
        }
        Command::Status { results_dir } => {
            launch::status(&results_dir, out).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Collect { results_dir } => {
            let root = in_plan_folder(&results_dir)?;
            match launch::collect(&root, out) {
                Ok(report) => Ok(sweep_status(&report)),
                Err(e) => launch_failure(e),
            }
        }
        Command::Show {
            file,
            overrides,
            no_sweep,
            ..
        } => {
            let overrides = with_flags(utf8_overrides(&file, overrides)?, no_sweep);
            registry::check().map_err(|e| e.to_string())?;
            let experiment =
                crate::sweep::Experiment::load(&file, &overrides).map_err(|e| e.to_string())?;
            let trials = crate::trial::resolve_all(&experiment).map_err(|e| e.to_string())?;
            let _ = write!(out, "{}", crate::show::describe(&experiment, &trials));
            Ok(0)
        }
        Command::List { results } => {
            let _ = write!(out, "{}", crate::run::history::list(&results)?);
            Ok(0)
        }
        Command::Report { results_dir } => {
            let page = crate::results::html::write_report(&results_dir)?;
            let _ = writeln!(out, "report: {}", page.display());
            Ok(0)
        }
        Command::NewPlugin {
            kind,
            name,
            dir,
            scorelab_path,
            git,
            rev,
        } => {
            let created = crate::scaffold::create(&crate::scaffold::Request {
                kind: &kind,
                name: &name,
                dir: dir.as_deref(),
                scorelab_path: scorelab_path.as_deref(),
                git: git.as_deref(),
                rev: rev.as_deref(),
            })?;
            let _ = write!(out, "{}", crate::scaffold::summary(&created));
            Ok(0)
        }
        Command::Complete { words } => Ok(complete(&words, out)),
        Command::Completions { shell } => completion_script(&shell, out),
        Command::Plugins { kind } => {
            let _ = write!(out, "{}", listing::plugins_of(kind.as_deref())?);
            Ok(0)
        }
    }
}

/// `runner __complete WORDS…`: the candidates for the last word, one per line (status 1 when
/// the runner has none to offer and the shell should fall back to its own).
fn complete(words: &[String], out: &mut dyn std::io::Write) -> u8 {
    let command = <Cli as clap::CommandFactory>::command();
    match crate::completions::line::complete(&command, words) {
        Some(candidates) => {
            for candidate in candidates {
                let _ = writeln!(out, "{candidate}");
            }
            0
        }
        None => 1,
    }
}

/// `runner completions SHELL`: the shell's completion script.
fn completion_script(shell: &str, out: &mut dyn std::io::Write) -> Result<u8, String> {
    let Some(shell) = crate::completions::shell(shell) else {
        return Err(format!(
            "no completions for the shell `{shell}`. Fix: use one of {}",
            crate::completions::SHELLS.join(", ")
        ));
    };
    crate::completions::write_script(shell, <Cli as clap::CommandFactory>::command(), out);
    Ok(0)
}
