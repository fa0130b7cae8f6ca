//! One sweep, end to end: resolve every trial, train once per distinct training config,
//! sample and score each trial, and write results. Finished trials are found by their
//! stable ids and skipped, so an interrupted sweep resumes where it stopped.

pub mod autoencoder;
pub mod disk;
mod distill;
mod error;
mod group;
mod guidance_prep;
pub mod history;
mod hparams;
mod jobs;
mod latent_sampling;
pub mod launch;
mod live;
pub mod lock;
pub mod memory;
mod models;
mod preflight;
mod progress;
mod record;
mod reference;
mod stages;
mod trial_folder;

pub use error::{Fault, RunError};
pub(crate) use group::GroupRunner;
pub use jobs::MAX_JOBS;
pub use progress::{set_mode as set_progress_mode, ProgressMode};

use error::write_error;
use record::experiment_record;
use reference::write_real_data_grids;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::registry;
use crate::results::charts;
use crate::results::combined::{self, FolderTrial};
use crate::results::nfe;
use crate::results::report;
use crate::results::seeds;
use crate::results::store::write_yaml;
use crate::results::{table, tidy, SweepFolder, TrialRow};
use crate::sweep::Experiment;
use crate::train::History;
use crate::trial::{self, display_value, short_key, Trial};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Parent folder of the sweep's results folder.
    pub results: PathBuf,
    /// Print the resolved trials and stop.
    pub dry_run: bool,
    /// Training groups the local launcher runs at once (`--jobs`), each with the sweep's
    /// `threads`.
    pub jobs: usize,
    /// Whether the free space is checked against the disk estimate first
    /// (`--no-space-check` turns it off).
    pub space_check: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            results: PathBuf::from("results"),
            dry_run: false,
            jobs: 1,
            space_check: true,
        }
    }
}

/// What a finished sweep produced.
pub struct SweepReport {
    pub folder: SweepFolder,
    /// One row per trial, in sweep order (empty for a dry run).
    pub rows: Vec<TrialRow>,
    pub trials: usize,
    /// Trials found finished from an earlier run.
    pub skipped: usize,
    /// Trials that failed (training, sampling or a metric); their rows say why.
    pub failed: usize,
}

/// A sweep resolved and validated, before anything runs: what every launcher starts from.
pub(crate) struct Prepared {
    pub experiment: Experiment,
    pub trials: Vec<Trial>,
    pub folder: SweepFolder,
}

/// Loads `file` with `overrides`, resolves and validates every trial, and names the sweep's
/// folder under `results`.
pub(crate) fn prepare(
    file: &Path,
    overrides: &[String],
    results: &Path,
) -> Result<Prepared, RunError> {
    registry::check().map_err(RunError::Registry)?;
    let experiment = Experiment::load(file, overrides)?;
    let trials = trial::resolve_all(&experiment)?;
    memory::check(&experiment, &trials)?;
    let name = trials[0]
        .settings
        .name
        .clone()
        .unwrap_or_else(|| experiment.stem.clone());
    let folder = SweepFolder::new(results, &name);
    Ok(Prepared {
        experiment,
        trials,
        folder,
    })
}

/// Prints every resolved trial, the plan and where results would go (`--dry-run`).
pub(crate) fn print_dry_run(prepared: &Prepared, out: &mut dyn Write) {
    let count = prepared.trials.len();
    for t in &prepared.trials {
        let _ = writeln!(
            out,
            "[{}/{count}] {}  (trial {}, model {})",
            t.index + 1,
            t.label,
            t.id,
            t.train_id
        );
        let yaml = serde_yaml::to_string(&t.resolved).unwrap_or_default();
        for line in yaml.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "{}", trial::plan_summary(&prepared.trials));
    let disk = disk::estimate(&prepared.folder, &prepared.trials);
    let _ = writeln!(
        out,
        "it would write about {} ({})",
        disk::bytes_text(disk.total()),
        disk.describe()
    );
    let _ = writeln!(out, "{}", memory::summary(&prepared.trials));
    let _ = writeln!(
        out,
        "results would go to {}",
        prepared.folder.root.display()
    );
}

/// The trials grouped by the model they share (its `train_id`), groups and members in sweep
/// order: one training group is trained once and then samples all its trials.
pub(crate) fn training_groups(trials: &[Trial]) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        match groups.iter_mut().find(|(id, _)| *id == t.train_id) {
            Some((_, members)) => members.push(i),
            None => groups.push((t.train_id.clone(), vec![i])),
        }
    }
    groups
}

/// Runs (or, with `dry_run`, lists) every trial of `file` with `overrides` applied.
/// Progress and the summary go to `out`.
pub fn sweep(
    file: &Path,
    overrides: &[String],
    options: &SweepOptions,
    out: &mut dyn Write,
) -> Result<SweepReport, RunError> {
    let prepared = prepare(file, overrides, &options.results)?;
    run_local(prepared, file, overrides, options, out)
}

/// The local launcher: runs every trial of a prepared sweep here, one training group after
/// another (or, with `dry_run`, lists them).
pub(crate) fn run_local(
    prepared: Prepared,
    file: &Path,
    overrides: &[String],
    options: &SweepOptions,
    out: &mut dyn Write,
) -> Result<SweepReport, RunError> {
    if options.dry_run {
        print_dry_run(&prepared, out);
        return Ok(SweepReport {
            folder: prepared.folder,
            rows: Vec::new(),
            trials: prepared.trials.len(),
            skipped: 0,
            failed: 0,
        });
    }
    let Prepared {
        experiment,
        trials,
        folder,
    } = &prepared;

    let _ = writeln!(out, "{}", trial::plan_summary(trials));
    let groups = training_groups(trials);
    let jobs = options.jobs.clamp(1, groups.len().max(1));
    memory::check_jobs(experiment, trials, &groups, jobs)?;
    use_threads(trials);
    fs::create_dir_all(&folder.root).map_err(|e| write_error(&folder.root, e))?;
    // Held until this function returns, whatever the outcome.
    let _lock = lock::SweepLock::acquire(&folder.root, out)?;
    preflight::check(folder, trials, options.space_check)?;
    history::record_invocation(folder, file, overrides, "local", trials)?;
    let leftovers = lock::remove_leftovers(&folder.root);
    if leftovers > 0 {
        let _ = writeln!(
            out,
            "removed {leftovers} temporary file(s) or partial folder(s) left by an interrupted run"
        );
    }
    write_real_data_grids(folder, trials)?;

    if jobs > 1 {
        let _ = writeln!(
            out,
            "running {jobs} training groups at once, each with {} thread(s)",
            trials[0].settings.threads
        );
    }
    let outcome = jobs::run_groups(file, trials, folder, &groups, jobs, out)?;
    let rows: Vec<TrialRow> = outcome.rows.into_iter().flatten().collect();
    let input = ResultsInput {
        experiment,
        overrides,
        trials,
        folder,
        rows,
        skipped: outcome.skipped,
    };
    write_results(input, out)
}

/// Sets candle's CPU thread pools to the sweep's `threads`.
pub(crate) fn use_threads(trials: &[Trial]) {
    // candle reads this for its CPU thread pools.
    std::env::set_var("RAYON_NUM_THREADS", trials[0].settings.threads.to_string());
}

/// What [`write_results`] writes from: the sweep and what this invocation produced.
pub(crate) struct ResultsInput<'a> {
    pub experiment: &'a Experiment,
    pub overrides: &'a [String],
    pub trials: &'a [Trial],
    pub folder: &'a SweepFolder,
    /// This invocation's results: one per trial with a result, in sweep order.
    pub rows: Vec<TrialRow>,
    /// Trials found finished from an earlier run.
    pub skipped: usize,
}

/// Writes the sweep folder's tables, summary, plots, HParams experiment, record and report
/// and prints the summary: the end of every sweep, whichever launcher ran its trials. The
/// input's `rows` are this invocation's results; the tables also show the finished trials
/// of the folder's earlier invocations, with an `invocation` column, labelled by every key
/// that differs between the trials.
pub(crate) fn write_results(
    input: ResultsInput,
    out: &mut dyn Write,
) -> Result<SweepReport, RunError> {
    let folder = input.folder;
    let shown = Shown::of(&input);
    let earlier = shown.rows.len() - input.rows.len();
    // The record goes first and comes back last, so that it never describes other tables
    // than those beside it: a run killed in between leaves the tables without a record.
    let _ = fs::remove_file(folder.experiment_file());
    crate::crash::point("tables");
    write_tables(folder, &shown.rows)?;
    let seed_summary = write_seed_summary(folder, &shown)?;
    write_charts(folder, &shown)?;
    write_hparams(input.experiment, folder, &shown.rows)?;
    crate::crash::point("experiment");
    write_record(&input, &shown.trials)?;
    let page = crate::results::html::write_report(&folder.root)
        .map_err(|message| RunError::Report { message })?;
    print_summary(folder, &shown.rows, earlier, seed_summary, &page, out);
    let failed = input.rows.iter().filter(|r| r.failed()).count();
    Ok(SweepReport {
        folder: folder.clone(),
        rows: input.rows,
        trials: input.trials.len(),
        skipped: input.skipped,
        failed,
    })
}

/// The trials the tables show (this invocation's and the folder's earlier ones), relabelled
/// by the keys that differ between them.
struct Shown {
    trials: Vec<FolderTrial>,
    /// Every key that differs between the trials, this sweep's axes first.
    axis_keys: Vec<String>,
    /// The rows of the trials that have one.
    rows: Vec<TrialRow>,
}

impl Shown {
    /// Gathers the folder's trials and labels them by the keys that differ.
    fn of(input: &ResultsInput) -> Shown {
        let mut trials = history::folder_trials(&input.folder.root, input.trials, &input.rows);
        let swept_now: Vec<String> = input
            .experiment
            .axes
            .iter()
            .flat_map(|a| a.keys.clone())
            .collect();
        let axis_keys = combined::axis_keys(&trials, &swept_now);
        combined::relabel(&mut trials, &axis_keys);
        let rows: Vec<TrialRow> = trials.iter().filter_map(|t| t.row.clone()).collect();
        Shown {
            trials,
            axis_keys,
            rows,
        }
    }
}

/// Writes the trial tables (CSV and Parquet, wide and long) and the protocols table.
fn write_tables(folder: &SweepFolder, rows: &[TrialRow]) -> Result<(), RunError> {
    table::write_tables(rows, &folder.table("csv"), &folder.table("parquet"))
        .map_err(|e| write_error(&folder.table("csv"), e))?;
    let (csv, parquet) = (
        folder.root.join("metrics_long.csv"),
        folder.root.join("metrics_long.parquet"),
    );
    let long = tidy::long_dataframe(rows).map_err(|e| write_error(&csv, e))?;
    table::write_csv_and_parquet(long, &csv, &parquet).map_err(|e| write_error(&csv, e))?;
    let protocols = folder.root.join("protocols.csv");
    table::write_protocols(rows, &protocols).map_err(|e| write_error(&protocols, e))
}

/// Seeds swept: writes one summary row per configuration, with confidence intervals, and
/// returns its console table; `None` when no seed is swept.
fn write_seed_summary(folder: &SweepFolder, shown: &Shown) -> Result<Option<String>, RunError> {
    if !shown.axis_keys.iter().any(|k| k == seeds::SEED_KEY) {
        return Ok(None);
    }
    let configurations = seeds::summarise(&shown.rows);
    let (csv, parquet) = (
        folder.root.join("summary.csv"),
        folder.root.join("summary.parquet"),
    );
    seeds::write_summary(&configurations, &csv, &parquet).map_err(|e| write_error(&csv, e))?;
    Ok(Some(seeds::console_table(&configurations)))
}

/// Writes the plots and, where NFE is swept, the quality-vs-NFE table and charts: they show
/// the trials that have results. TensorBoard's `charts` run gets the same pictures.
fn write_charts(folder: &SweepFolder, shown: &Shown) -> Result<(), RunError> {
    let ok_rows: Vec<TrialRow> = shown.rows.iter().filter(|r| !r.failed()).cloned().collect();
    let histories = loss_histories(folder, &ok_rows);
    let plots = folder.plots();
    let mut pictures = charts::write_plots(&plots, &shown.axis_keys, &ok_rows, &histories)
        .map_err(|e| write_error(&plots, e))?;
    if nfe::applies(&shown.axis_keys) && !ok_rows.is_empty() {
        let path = folder.root.join("quality_vs_nfe.csv");
        table::write_csv(nfe::table(&ok_rows), &path).map_err(|e| write_error(&path, e))?;
        pictures.extend(nfe::write_charts(&plots, &ok_rows).map_err(|e| write_error(&plots, e))?);
    }
    pictures.extend(nfe::write_time_charts(&plots, &ok_rows).map_err(|e| write_error(&plots, e))?);
    charts::remove_stale(&plots, &pictures).map_err(|e| write_error(&plots, e))?;
    let tb = folder.root.join("tb");
    charts::write_tensorboard(&tb, &pictures).map_err(|e| write_error(&tb, e))
}

/// Writes the TensorBoard HParams experiment of the rows under `tb/`, and their sessions.
fn write_hparams(
    experiment: &Experiment,
    folder: &SweepFolder,
    rows: &[TrialRow],
) -> Result<(), RunError> {
    let tb = folder.root.join("tb");
    hparams::write_experiment(&tb, &experiment.file.display().to_string(), rows)
        .map_err(|e| write_error(&tb, e))
}

/// Writes the experiment record of the shown trials and the folder's invocations.
fn write_record(input: &ResultsInput, shown: &[FolderTrial]) -> Result<(), RunError> {
    let folder = input.folder;
    let invocations = history::invocations(&folder.root);
    write_yaml(
        &folder.experiment_file(),
        &experiment_record(
            input.experiment,
            input.overrides,
            input.trials,
            shown,
            &invocations,
        ),
    )
    .map_err(|e| write_error(&folder.experiment_file(), e))
}

/// Prints the summary table, how many rows come from earlier invocations, the seed summary
/// and where the results and the report are.
fn print_summary(
    folder: &SweepFolder,
    rows: &[TrialRow],
    earlier: usize,
    seed_summary: Option<String>,
    page: &Path,
    out: &mut dyn Write,
) {
    let _ = writeln!(out, "\n{}", report::summary_table(rows));
    if earlier > 0 {
        let _ = writeln!(
            out,
            "({earlier} of these trials come from earlier invocations into this folder: `runner list {}`)",
            folder.root.parent().unwrap_or(Path::new(".")).display()
        );
    }
    if let Some(text) = seed_summary {
        let _ = writeln!(out, "\n{text}");
    }
    let _ = writeln!(out, "results: {}", folder.root.display());
    let _ = writeln!(out, "report: {}", page.display());
}

/// The loss history of every trained model the rows sampled, in row order, named by the
/// rows' values of the training keys (`weighting=uniform`), read from the models' folders.
fn loss_histories(folder: &SweepFolder, rows: &[TrialRow]) -> Vec<(String, History)> {
    let mut seen: Vec<&str> = Vec::new();
    rows.iter()
        .filter(|r| {
            let new = !seen.contains(&r.train_id.as_str());
            seen.push(&r.train_id);
            new
        })
        .filter_map(|r| {
            let history = models::read_history(&folder.model(&r.train_id))?;
            Some((train_label(&r.axes), history))
        })
        .collect()
}

/// The training-relevant values among a trial's swept values, naming its model in plots.
fn train_label(axes: &[(String, serde_json::Value)]) -> String {
    let parts: Vec<String> = axes
        .iter()
        .filter(|(key, _)| {
            !key.starts_with("sampler") && !key.starts_with("eval") && key != "num_samples"
        })
        .map(|(key, value)| format!("{}={}", short_key(key), display_value(value)))
        .collect();
    if parts.is_empty() {
        "model".to_string()
    } else {
        parts.join(",")
    }
}
