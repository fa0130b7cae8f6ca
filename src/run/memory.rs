//! Before anything runs (`--dry-run` too): a rough estimate of the memory each trial needs,
//! compared with the memory available, so that a sweep that cannot fit is refused naming the
//! trial, the estimate and the fix, instead of growing until the OOM killer ends it.
//!
//! What is assumed, per trial (values are 4-byte floats in networks, 8-byte in sample sets):
//! - **data**: the training set and the held-out set, held for the whole trial;
//! - **training** (a trainable network whose model is not built yet): weights, gradients,
//!   Adam's two moments and the EMA (5 × 4 bytes per parameter), and activations of one
//!   batch: the network's per-example activation count ([`crate::network::Footprint`]) × batch × 4 bytes × 3
//!   (values kept for the backward pass, their gradients, temporaries);
//! - **evaluation**: the weights and EMA, the samples, their reference and features (4 sets
//!   of `num_samples` × dim), the network's activations for one chunk of `eval_batch` rows
//!   (per-example activations × the smaller of `eval_batch` and `num_samples` × 4 bytes × 2,
//!   values and temporaries), and the largest metric working set
//!   ([`crate::metric::Metric::working_set`], e.g. three n × n kernel matrices).
//!
//! Training and evaluation do not overlap, so a trial needs its data plus the larger of the
//! two, plus the runner's own [`BASELINE`]. Under `--jobs N` the N training groups that need
//! most run at once in one process: their needs add up, with one baseline. The estimate is meant to be right within a small factor: it refuses what cannot fit
//! by far (a 10^6-wide layer), not what is tight. `SCORELAB_MEMORY_LIMIT` (bytes, or with a
//! `K`, `M`, `G` or `T` suffix) replaces the memory available (`MemAvailable` in
//! /proc/meminfo); `SCORELAB_MEMORY_LIMIT=off` turns the check off.

use crate::config::ConfigError;

use crate::sweep::Experiment;
use crate::trial::Trial;

use super::disk::bytes_text;
use super::error::RunError;

/// The runner itself (code, allocator, tables): the quickstart peaks at 62 MiB resident
/// where the parts below come to 23 MiB.
pub const BASELINE: u64 = 48 << 20;

/// The environment variable that sets (or, with `off`, disables) the memory limit.
pub const LIMIT_VARIABLE: &str = "SCORELAB_MEMORY_LIMIT";

/// Refuses the sweep if one of its trials needs more memory than is available.
pub(super) fn check(experiment: &Experiment, trials: &[Trial]) -> Result<(), RunError> {
    let Some((available, source)) = available() else {
        return Ok(());
    };
    for trial in trials {
        let estimate = estimate(trial);
        if estimate.total() > available {
            return Err(RunError::Config(Box::new(refusal(
                experiment, trial, &estimate, available, &source,
            ))));
        }
    }
    Ok(())
}

/// Refuses `--jobs jobs` if the `jobs` groups that need most, run at once, need more memory
/// than is available (each trial alone was checked by [`check`]); the fix names the most
/// jobs that fit.
pub(super) fn check_jobs(
    experiment: &Experiment,
    trials: &[Trial],
    groups: &[(String, Vec<usize>)],
    jobs: usize,
) -> Result<(), RunError> {
    let Some((available, source)) = available() else {
        return Ok(());
    };
    let mut needs: Vec<u64> = groups
        .iter()
        .map(|(_, members)| {
            let largest = members.iter().map(|&i| estimate(&trials[i]).total());
            largest.max().unwrap_or(0).saturating_sub(BASELINE)
        })
        .collect();
    needs.sort_unstable_by(|a, b| b.cmp(a));
    let at_once = |n: usize| {
        needs
            .iter()
            .take(n)
            .fold(BASELINE, |sum, need| sum.saturating_add(*need))
    };
    if at_once(jobs) <= available {
        return Ok(());
    }
    let fitting = (1..jobs)
        .rev()
        .find(|&n| at_once(n) <= available)
        .unwrap_or(1);
    Err(RunError::Config(Box::new(ConfigError::File {
        file: experiment.file.display().to_string(),
        message: format!(
            "--jobs {jobs} runs {jobs} training groups at once, which need about {} of memory \
             together (the largest {}), but {} is available ({source})",
            bytes_text(at_once(jobs)),
            bytes_text(needs[0].saturating_add(BASELINE)),
            bytes_text(available)
        ),
        fix: format!(
            "use --jobs {fitting} or fewer; if the estimate is wrong for this machine, set \
             {LIMIT_VARIABLE} (e.g. `64G`, or `off`)"
        ),
    })))
}

/// The dry run's line: the largest trial's estimate beside the memory available.
pub(super) fn summary(trials: &[Trial]) -> String {
    let largest = trials
        .iter()
        .map(|t| (estimate(t).total(), t.index + 1))
        .max()
        .unwrap_or((0, 0));
    let available = available().map_or(
        "the check is off or memory unknown".to_string(),
        |(b, s)| format!("{} available ({s})", bytes_text(b)),
    );
    format!(
        "memory: about {} for the largest trial ({}); {available}",
        bytes_text(largest.0),
        largest.1
    )
}

/// One trial's estimate, in bytes, by part.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Estimate {
    pub data: u64,
    /// Weights, gradients, Adam's moments and EMA.
    pub parameters: u64,
    /// Activations of one training batch.
    pub activations: u64,
    /// Samples, reference, features, weights and the network's activations for one chunk of rows
    /// at evaluation.
    pub evaluation: u64,
    /// The largest metric working set, and the metric's name.
    pub metric: (u64, Option<String>),
}

impl Estimate {
    pub fn training(&self) -> u64 {
        self.parameters.saturating_add(self.activations)
    }

    pub fn total(&self) -> u64 {
        let evaluation = self.evaluation.saturating_add(self.metric.0);
        let trial = self.data.saturating_add(self.training().max(evaluation));
        trial.saturating_add(BASELINE)
    }
}

/// The memory one trial needs (see the module's notes for what is assumed).
pub fn estimate(trial: &Trial) -> Estimate {
    let set = |n: usize, dim: usize| (n as u64).saturating_mul(dim as u64).saturating_mul(8);
    let data = set(trial.training_data.len(), trial.training_data.dim())
        .saturating_add(set(trial.held_out.len(), trial.held_out.dim()));
    let footprint = trial.architecture.footprint().unwrap_or_default();
    let trains = trial.architecture.trainable();
    let (parameters, activations) = match trains {
        true => (
            footprint.parameters.saturating_mul(5 * 4),
            footprint
                .activations
                .saturating_mul(trial.train.batch_size as u64)
                .saturating_mul(4 * 3),
        ),
        false => (0, 0),
    };
    let samples = trial.settings.num_samples;
    let sampling_activations = footprint
        .activations
        .saturating_mul(samples.min(trial.settings.eval_batch) as u64)
        .saturating_mul(4 * 2);
    let evaluation = set(samples, trial.held_out.dim())
        .saturating_mul(4)
        .saturating_add(footprint.parameters.saturating_mul(2 * 4))
        .saturating_add(sampling_activations);
    let metric = trial
        .metrics
        .iter()
        .map(|(name, metric)| (metric.working_set(samples).saturating_mul(8), name))
        .max_by_key(|(bytes, _)| *bytes)
        .map_or((0, None), |(bytes, name)| (bytes, Some(name.clone())));
    Estimate {
        data,
        parameters,
        activations,
        evaluation,
        metric,
    }
}

/// The error for a trial that cannot fit: the estimate by part and the fix for the part
/// that dominates.
fn refusal(
    experiment: &Experiment,
    trial: &Trial,
    estimate: &Estimate,
    available: u64,
    source: &str,
) -> ConfigError {
    let metric_name = estimate.metric.1.clone().unwrap_or_default();
    let parts = [
        (estimate.parameters, "network", "use a smaller `network` (fewer or narrower layers: `runner plugins network` lists their sizes)".to_string()),
        (estimate.activations, "train.batch_size", "lower `train.batch_size`, or use a smaller `network`".to_string()),
        (estimate.metric.0, "eval", format!("lower `num_samples` or the `max_points` / `subset_size` of metric `{metric_name}`")),
        (estimate.evaluation, "num_samples", "lower `num_samples`, or `eval_batch` (rows per network call)".to_string()),
        (estimate.data, "train.train_size", "lower `train.train_size` or `num_samples`".to_string()),
    ];
    let (_, key, fix) = parts
        .iter()
        .max_by_key(|(bytes, _, _)| *bytes)
        .cloned()
        .unwrap_or((0, "network", String::new()));
    let message = format!(
        "trial {} ({}) needs about {} of memory, but {} is available ({source}): training {} (weights, gradients, Adam's moments and EMA {}; activations of a batch of {} {}), evaluation {} (weights, EMA, samples, features and the network's activations for a chunk of eval_batch rows {}; metric working set {}{}), data {}",
        trial.index + 1,
        trial.label,
        bytes_text(estimate.total()),
        bytes_text(available),
        bytes_text(estimate.training()),
        bytes_text(estimate.parameters),
        trial.train.batch_size,
        bytes_text(estimate.activations),
        bytes_text(estimate.evaluation.saturating_add(estimate.metric.0)),
        bytes_text(estimate.evaluation),
        bytes_text(estimate.metric.0),
        estimate.metric.1.as_ref().map_or(String::new(), |m| format!(" of `{m}`")),
        bytes_text(estimate.data),
    ) + &format!(", the runner itself {}", bytes_text(BASELINE));
    ConfigError::Key {
        origin: experiment.file.display().to_string(),
        key: key.to_string(),
        message,
        fix: format!(
            "{fix}; if the estimate is wrong for this machine, set {LIMIT_VARIABLE} (e.g. `64G`, or `off`)"
        ),
    }
}

/// The memory available, and where the figure came from; `None` where it cannot be told or
/// the check is off.
fn available() -> Option<(u64, String)> {
    if let Ok(text) = std::env::var(LIMIT_VARIABLE) {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return None;
        }
        if let Some(bytes) = parse_bytes(text) {
            return Some((bytes, format!("{LIMIT_VARIABLE}={text}")));
        }
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        kib.saturating_mul(1024),
        "MemAvailable in /proc/meminfo".to_string(),
    ))
}

/// `123`, `64G`, `512M`, `1.5T` (powers of 1024) as bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let (number, scale) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let power = "KMGT".find(c.to_ascii_uppercase())? as i32 + 1;
            (&text[..i], 1024f64.powi(power))
        }
        _ => (text, 1.0),
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value * scale) as u64)
}
