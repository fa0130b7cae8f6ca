//! The command line: `runner sweep FILE [key=value ...] [--device D] [--launcher slurm ...]`,
//! `runner plugins [KIND]`, `runner report DIR`, and for Slurm sweeps `runner trial`,
//! `runner status` and `runner collect`.
//! Thin: it parses arguments and calls the library. A crate with its own plugins can call
//! [`main`] from its binary to get the same CLI with its plugins registered.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::registry::{self, Kind};
use crate::run::launch::{self, LaunchError, Launched, LauncherArgs};
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

// Parsed once per process: the size of its largest variant (`sweep` with the launcher's
// options) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train, sample and evaluate every trial of an experiment file.
    Sweep {
        /// Experiment file (YAML or TOML).
        file: PathBuf,
        /// Overrides in Hydra's grammar, which win over the file and its sweep: `key.path=value`,
        /// `key=a,b,c` / `choice(...)` / `range(...)` / `glob(...)` to sweep, `key=null`, `~key`,
        /// `+key=value`, `++key=value`, `list.0=value` (README, "Overrides and sweeps").
        overrides: Vec<std::ffi::OsString>,
        /// Hydra's multirun switch, accepted for muscle memory and ignored: every run may sweep.
        #[arg(short = 'm', long = "multirun")]
        multirun: bool,
        /// Print every resolved trial and stop.
        #[arg(long)]
        dry_run: bool,
        /// Run the file's base config without its `sweep:` section (the override `~sweep`;
        /// `seeds` still applies).
        #[arg(long)]
        no_sweep: bool,
        /// How training and sampling show their progress: `bar` (redrawn in place), `plain`
        /// (a line every 10 s, `SCORELAB_PROGRESS_SECONDS`, and one at the end: for logs) or
        /// `none`. Default: `bar` on a terminal, `plain` otherwise.
        #[arg(long, value_enum)]
        progress: Option<crate::run::ProgressMode>,
        /// Training groups to run at once with the local launcher, each on its own thread
        /// with the sweep's `threads` (on 2 cores, `--jobs 2` nearly doubles the throughput
        /// of small trials). The tables do not depend on it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=crate::run::MAX_JOBS as u64))]
        jobs: u64,
        /// Parent folder for results.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// `auto`, `cpu`, `cuda` or `cuda:N`: the same as the override `device=...` (wins
        /// over the file and the other overrides).
        #[arg(long)]
        device: Option<String>,
        /// `local` (the default: the trials run here) or `slurm` (one Slurm job array, one
        /// task per training group; the results folder must be on a filesystem shared with
        /// the compute nodes). Also `launcher: {kind: ...}` in the experiment file.
        #[arg(long)]
        launcher: Option<String>,
        /// Slurm: the partition (`sbatch --partition`).
        #[arg(long)]
        partition: Option<String>,
        /// Slurm: each task's time limit (`sbatch --time`, e.g. 2:00:00).
        #[arg(long)]
        time: Option<String>,
        /// Slurm: CPUs per task (default: the sweep's `threads`).
        #[arg(long)]
        cpus_per_task: Option<usize>,
        /// Slurm: GPUs per task (`sbatch --gpus-per-task`).
        #[arg(long)]
        gpus_per_task: Option<usize>,
        /// Slurm: tasks that run at once (`--array=...%K`).
        #[arg(long)]
        array_parallelism: Option<usize>,
        /// Slurm: one more sbatch argument, e.g. `--sbatch-arg=--account=lab` (repeatable).
        #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
        sbatch_arg: Vec<String>,
        /// Slurm: seconds between looks at squeue while waiting (default 10; the first
        /// looks come sooner).
        #[arg(long)]
        poll_seconds: Option<f64>,
        /// Slurm: submit and return; `runner status DIR` and `runner collect DIR` follow up.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run one training group of a sweep submitted with `--launcher slurm` (what each Slurm
    /// array task runs); writes `RESULTS_DIR/slurm/status/GROUP.json`.
    Trial {
        /// The sweep's results folder.
        results_dir: PathBuf,
        /// The training group (the Slurm array index).
        group: usize,
        /// The plan's hash, checked against `RESULTS_DIR/slurm/plan.json`.
        #[arg(long)]
        plan: Option<String>,
    },
    /// Show each trial of a sweep submitted with `--launcher slurm`: queued, running, done or
    /// failed (with the error, or the state Slurm gives a task that died).
    Status {
        /// The sweep's results folder, e.g. `results/quickstart`.
        results_dir: PathBuf,
    },
    /// Build the tables, plots and report of a sweep submitted with `--launcher slurm` from
    /// what its tasks left (as the local launcher does at its end).
    Collect {
        /// The sweep's results folder, e.g. `results/quickstart`.
        results_dir: PathBuf,
    },
    /// What a sweep would run, and why: the base config (every default filled in) with where
    /// each value comes from (a default, the file, its sweep or the command line), then one
    /// line per trial with the keys that vary. Nothing is run or written.
    Show {
        /// Experiment file (YAML or TOML).
        file: PathBuf,
        /// Overrides, as for `sweep`.
        overrides: Vec<std::ffi::OsString>,
        /// Accepted and ignored, as for `sweep`.
        #[arg(short = 'm', long = "multirun")]
        multirun: bool,
        /// Show the file's base config without its `sweep:` section, as for `sweep`.
        #[arg(long)]
        no_sweep: bool,
    },
    /// (Re)build the sweep's self-contained HTML report, `RESULTS_DIR/report.html` (every
    /// sweep also writes it at its end).
    Report {
        /// A sweep's results folder, e.g. `results/quickstart`.
        results_dir: PathBuf,
    },
    /// The sweeps in a results folder and every invocation of each (`invocations/NNNN.yaml`):
    /// when, file, overrides, launcher, and how many of its trials are finished or failed.
    List {
        /// A results folder (the parent of the sweep folders).
        #[arg(default_value = "results")]
        results: PathBuf,
    },
    /// List registered plugins with their parameters and defaults.
    Plugins {
        /// Only this kind: dataset (or `data`), schedule, weighting, network, sampler, metric (or
        /// `eval`) or features.
        kind: Option<String>,
    },
    /// Print a shell completion script: `runner completions bash > ~/.local/share/bash-completion/completions/runner`
    /// (zsh: a file `_runner` on `$fpath`; fish: `~/.config/fish/completions/runner.fish`).
    /// It completes subcommands, flags, plugin kinds and the start of every override
    /// (`sampler=heun`, `sampler.steps=`, `train.lr=`), with the plugins of this binary.
    Completions {
        /// bash, zsh or fish.
        shell: String,
    },
}

/// The overrides with the one `--no-sweep` stands for, `~sweep`, when it is given.
fn with_flags(mut overrides: Vec<String>, no_sweep: bool) -> Vec<String> {
    if no_sweep {
        overrides.push("~sweep".to_string());
    }
    overrides
}

/// The exit status of a sweep that ran to the end but in which some trials failed (1 is
/// for errors that stop the sweep).
pub const SOME_TRIALS_FAILED: u8 = 2;

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
        Command::Sweep {
            file,
            overrides,
            multirun: _,
            dry_run,
            no_sweep,
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
        } => {
            crate::run::set_progress_mode(progress);
            let mut overrides = with_flags(utf8_overrides(&file, overrides)?, no_sweep);
            if let Some(device) = device {
                overrides.push(format!("device={device}"));
            }
            let options = SweepOptions {
                results,
                dry_run,
                jobs: jobs as usize,
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
        Command::Completions { shell } => {
            let Some(shell) = crate::completions::shell(&shell) else {
                return Err(format!(
                    "no completions for the shell `{shell}`. Fix: use one of {}",
                    crate::completions::SHELLS.join(", ")
                ));
            };
            crate::completions::write_script(shell, <Cli as clap::CommandFactory>::command(), out);
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

/// The exit status of a finished sweep: 0, or [`SOME_TRIALS_FAILED`] (said on stderr).
fn sweep_status(report: &run::SweepReport) -> u8 {
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
fn launch_failure(error: LaunchError) -> Result<u8, String> {
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
fn in_plan_folder(results_dir: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(results_dir).map_err(|e| {
        format!(
            "cannot make {} an absolute path: {e}",
            results_dir.display()
        )
    })
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
            for param in crate::parameterisation::ModelKeys::docs() {
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
        ("distill", crate::trial::DistillSettings::docs()),
        ("launcher", launch::LauncherSettings::docs()),
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
        "      {:<18} {:<14} default {:<12} {}{}\n",
        param.name,
        param.ty,
        param.default,
        param.doc,
        param
            .bound
            .as_ref()
            .map_or(String::new(), |b| format!(" [{b}]"))
    )
}

/// The overrides as text. Read here rather than by clap, so that a non-UTF-8 override names
/// the file.
fn utf8_overrides(
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
