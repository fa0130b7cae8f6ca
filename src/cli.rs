//! The command line: `runner sweep FILE [key=value ...] [--device D]` and `runner plugins [KIND]`.
//! Thin: it parses arguments and calls the library. A crate with its own plugins can call
//! [`main`] from its binary to get the same CLI with its plugins registered.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::registry::{self, Kind};
use crate::run::{self, SweepOptions};

#[derive(Parser, Debug)]
#[command(
    name = "runner",
    version,
    about = "Declarative experiments for score-based diffusion models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train, sample and evaluate every trial of an experiment file.
    Sweep {
        /// Experiment file (YAML or TOML).
        file: PathBuf,
        /// Overrides `key.path=value` (win over the file); `key=a,b,c` or `key=range(1,5)` sweep.
        overrides: Vec<std::ffi::OsString>,
        /// Print every resolved trial and stop.
        #[arg(long)]
        dry_run: bool,
        /// Parent folder for results.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// `auto`, `cpu`, `cuda` or `cuda:N`: the same as the override `device=...` (wins
        /// over the file and the other overrides).
        #[arg(long)]
        device: Option<String>,
    },
    /// (Re)build the sweep's self-contained HTML report, `RESULTS_DIR/report.html` (every
    /// sweep also writes it at its end).
    Report {
        /// A sweep's results folder, e.g. `results/quickstart`.
        results_dir: PathBuf,
    },
    /// List registered plugins with their parameters and defaults.
    Plugins {
        /// Only this kind: dataset, schedule, weighting, network, sampler or metric.
        kind: Option<String>,
    },
}

/// The exit status of a sweep that ran to the end but in which some trials failed (1 is
/// for errors that stop the sweep).
pub const SOME_TRIALS_FAILED: u8 = 2;

/// Parses the process arguments and runs; errors are printed as one paragraph.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::interrupt::install(
        "stopping at the next safe point (a training checkpoint, or the end of this trial's \
         sampling); press Ctrl-C again to quit at once",
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
        Command::Sweep {
            file,
            overrides,
            dry_run,
            results,
            device,
        } => {
            // Read here rather than by clap, so that a non-UTF-8 override names the file.
            let mut overrides = overrides
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
                .collect::<Result<Vec<String>, String>>()?;
            if let Some(device) = device {
                overrides.push(format!("device={device}"));
            }
            let options = SweepOptions { results, dry_run };
            let report = match run::sweep(&file, &overrides, &options, out) {
                Ok(report) => report,
                Err(run::RunError::Interrupted { message }) => {
                    eprintln!(
                        "interrupted: {message}. Finished trials and trained models are saved; \
                         run the same command again to resume"
                    );
                    return Ok(crate::interrupt::EXIT_CODE as u8);
                }
                Err(e) => return Err(e.to_string()),
            };
            if report.failed > 0 {
                eprintln!(
                    "{} of {} trials failed; see {}",
                    report.failed,
                    report.trials,
                    report.folder.table("csv").display()
                );
                return Ok(SOME_TRIALS_FAILED);
            }
            Ok(0)
        }
        Command::Report { results_dir } => {
            let page = crate::results::html::write_report(&results_dir)?;
            let _ = writeln!(out, "report: {}", page.display());
            Ok(0)
        }
        Command::Plugins { kind } => {
            let kinds = match kind {
                None => Kind::ALL.to_vec(),
                Some(word) => match Kind::parse(&word) {
                    Some(kind) => vec![kind],
                    None => {
                        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                        return Err(format!(
                            "unknown plugin kind `{word}`. Fix: use one of {}",
                            names.join(", ")
                        ));
                    }
                },
            };
            let _ = write!(out, "{}", plugin_listing(&kinds));
            Ok(0)
        }
    }
}

/// Every plugin of the given kinds with its description and parameters.
pub fn plugin_listing(kinds: &[Kind]) -> String {
    let mut text = String::new();
    for kind in kinds {
        text.push_str(&format!("{}:\n", kind.plural()));
        for plugin in registry::plugins(*kind) {
            text.push_str(&format!("  {:<20} {}\n", plugin.name, plugin.about));
            for param in (plugin.params)() {
                text.push_str(&param_line(&param));
            }
        }
        if *kind == Kind::Network {
            use crate::config::Params;
            text.push_str("  every trainable network also takes (the engine applies them):\n");
            for param in crate::parameterisation::ModelSettings::docs() {
                text.push_str(&param_line(&param));
            }
        }
        text.push('\n');
    }
    if kinds.len() > 1 {
        text.push_str(&settings_listing());
    }
    text
}

fn settings_listing() -> String {
    use crate::config::Params;
    let mut text = String::from("settings (not plugins):\n");
    for (section, docs) in [
        ("(top level)", crate::trial::Settings::docs()),
        ("train", crate::train::TrainSettings::docs()),
    ] {
        text.push_str(&format!("  {section}\n"));
        for param in docs {
            text.push_str(&param_line(&param));
        }
    }
    text
}

/// One parameter: name, type, default and meaning.
fn param_line(param: &crate::config::ParamDoc) -> String {
    format!(
        "      {:<18} {:<14} default {:<12} {}\n",
        param.name, param.ty, param.default, param.doc
    )
}
