//! The command line's grammar: the commands, their flags and their help texts (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        /// Skip the check of the free space against the sweep's disk estimate (for a disk
        /// that reports less than it has, or when you know the sweep fits).
        #[arg(long)]
        no_space_check: bool,
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
    /// (Re)build the sweep's HTML report, `RESULTS_DIR/report.html` (every sweep also writes
    /// it at its end; its pictures are embedded while they are small, else linked).
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
    /// Write a crate of one's own with a new plugin, ready to build: Cargo.toml (depending on
    /// scorelab, with scorelab's Cargo.lock and release profile, building into the checkout's
    /// target/ so the first build reuses what it compiled), src/NAME.rs from the kind's template, a main that runs this command
    /// line with the plugin registered, experiments/NAME.yaml and a test that runs it.
    NewPlugin {
        /// dataset (or `data`), schedule, weighting, network, sampler, metric (or `eval`),
        /// features, guidance, latent, predictor or corrector.
        kind: String,
        /// The plugin's name, a lowercase identifier (`my_sampler`): also the crate's and its
        /// binary's.
        name: String,
        /// A new or empty folder for the crate (default: ./NAME).
        dir: Option<PathBuf>,
        /// The scorelab checkout to depend on (default: the one this runner was built from).
        #[arg(long, value_name = "PATH", conflicts_with = "git")]
        scorelab_path: Option<PathBuf>,
        /// Depend on scorelab from this git repository instead of a checkout.
        #[arg(long, value_name = "URL")]
        git: Option<String>,
        /// With --git: the commit, tag or branch to build.
        #[arg(long, requires = "git")]
        rev: Option<String>,
    },
    /// What the completion scripts ask while an override is typed: the candidates for the
    /// last of WORDS (the command line after `runner`), one a line; exit status 1 where it is
    /// no override (the script then completes it itself).
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        words: Vec<String>,
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
