//! What became of each task and trial of a submitted sweep: the tasks' status files, Slurm's
//! own states (`squeue -t all`) and the trial folders, put together; `runner status`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::outcome::LaunchError;
use super::plan::{latest_job, log_path, read_jobs, status_path, Plan, Submission};
use super::slurm::{self, TaskState};
use crate::results::store::write_json;
use crate::results::{table, TrialRow};

/// A task's status file, `slurm/status/<group>.json`: rewritten (atomically) when the task
/// starts, after each trial and when it ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct TaskStatus {
    /// Slurm's `JOB_TASK` (empty when run outside Slurm).
    pub job: String,
    /// The plan's hash.
    pub plan: String,
    pub group: usize,
    pub train_id: String,
    pub host: String,
    pub pid: u32,
    /// `running`, `finished` (every trial has an outcome) or `error` (stopped by `error`).
    pub state: String,
    /// The task's exit status once it ended: 0, 2 (some trials failed) or 1 (an error).
    pub exit_code: Option<i32>,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub finished: Option<u64>,
    /// Wall-clock seconds of the whole task.
    pub seconds: f64,
    pub error: Option<String>,
    /// Each trial's outcome, in the order they were saved.
    pub trials: Vec<TrialStatus>,
}

/// One trial's outcome in a status file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct TrialStatus {
    pub index: usize,
    pub id: String,
    pub label: String,
    /// `ok` or `failed`.
    pub status: String,
    pub message: String,
    /// Wall-clock seconds of this trial in the task (its model's training included).
    pub seconds: f64,
}

impl TrialStatus {
    pub(super) fn of(index: usize, row: &TrialRow, seconds: f64) -> TrialStatus {
        TrialStatus {
            index,
            id: row.trial.clone(),
            label: row.label.clone(),
            status: row.status.clone(),
            message: row.message.clone(),
            seconds,
        }
    }
}

impl TaskStatus {
    pub(super) const RUNNING: &'static str = "running";
    pub(super) const FINISHED: &'static str = "finished";
    pub(super) const ERROR: &'static str = "error";

    pub(super) fn write(&self, path: &Path) -> Result<(), LaunchError> {
        write_json(path, self)
            .map_err(|e| LaunchError::from(super::super::error::write_error(path, e)))
    }

    pub(super) fn read(path: &Path) -> Option<TaskStatus> {
        serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
    }

    /// Whether the task wrote its last word.
    pub(super) fn ended(&self) -> bool {
        self.state != Self::RUNNING
    }
}

/// Where one trial stands.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TrialState {
    NotSubmitted,
    Queued,
    Running,
    Done(Box<TrialRow>),
    Failed(String),
    /// Its task ended without it: why, in Slurm's words.
    Lost(String),
}

/// Where one training group (one task) stands.
#[derive(Debug, Clone)]
pub(super) struct GroupView {
    /// `JOB_GROUP` of the latest submission that ran it.
    pub task: Option<String>,
    pub slurm: Option<TaskState>,
    /// Its status file, when written by that task.
    pub status: Option<TaskStatus>,
    pub in_flight: bool,
    /// Set when the task ended without a final status: what Slurm says, and the log.
    pub died: Option<String>,
}

/// The whole sweep: one view per group, one state per trial (by sweep index).
pub(super) struct Survey {
    pub groups: Vec<GroupView>,
    pub trials: Vec<TrialState>,
}

impl Survey {
    /// (queued, running, done, failed, not submitted) trial counts.
    pub(super) fn counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for state in &self.trials {
            let slot = match state {
                TrialState::Queued => 0,
                TrialState::Running => 1,
                TrialState::Done(_) => 2,
                TrialState::Failed(_) | TrialState::Lost(_) => 3,
                TrialState::NotSubmitted => 4,
            };
            counts[slot] += 1;
        }
        counts
    }

    pub(super) fn counts_line(&self) -> String {
        let [queued, running, done, failed, unsubmitted] = self.counts();
        let mut line = format!(
            "{} trial(s): {queued} queued, {running} running, {done} done, {failed} failed",
            self.trials.len()
        );
        if unsubmitted > 0 {
            line.push_str(&format!(", {unsubmitted} not submitted"));
        }
        line
    }

    pub(super) fn in_flight(&self) -> bool {
        self.groups.iter().any(|g| g.in_flight)
    }
}

/// The recorded row of a trial folder (ok or failed), if any.
pub(super) fn recorded_row(root: &Path, id: &str) -> Option<TrialRow> {
    let dir = root.join("trials").join(id);
    serde_json::from_str(&fs::read_to_string(dir.join("metrics.json")).ok()?).ok()
}

/// A finished trial as a rerun sees it: an ok row, its config and its samples.
fn finished(root: &Path, id: &str) -> Option<TrialRow> {
    let dir = root.join("trials").join(id);
    let complete = dir.join("config.yaml").is_file()
        && ["samples.csv", "samples.safetensors"]
            .iter()
            .any(|name| dir.join(name).is_file());
    recorded_row(root, id).filter(|row| complete && !row.failed())
}

/// Puts together the status files, `squeue`'s answer for the plan's jobs and the trial
/// folders.
pub(super) fn survey(root: &Path, plan: &Plan, jobs: &[Submission], queue: &[TaskState]) -> Survey {
    let hash = plan.hash();
    let mut trials = vec![TrialState::NotSubmitted; plan.trials];
    let mut groups = Vec::new();
    for (g, group) in plan.groups.iter().enumerate() {
        let submission = latest_job(jobs, &hash, g);
        let task = submission.map(|s| format!("{}_{g}", s.job));
        let slurm = submission.and_then(|s| {
            queue
                .iter()
                .find(|t| t.job == s.job && t.task == g)
                .cloned()
        });
        let status = TaskStatus::read(&status_path(root, g))
            .filter(|s| Some(&s.job) == task.as_ref() && s.plan == hash);
        let ended = status.as_ref().is_some_and(TaskStatus::ended);
        let in_flight = !ended && task.is_some() && slurm.as_ref().is_none_or(|t| !t.ended());
        // Not listed at all while the status file says nothing final: gone.
        let in_flight = in_flight && slurm.is_some();
        let died = match (&task, ended, in_flight) {
            (Some(task), false, false) => Some(died_message(root, task, g, &slurm, &status)),
            _ => None,
        };
        let running = slurm.as_ref().is_some_and(TaskState::running);
        for t in &group.trials {
            let outcome = status
                .as_ref()
                .and_then(|s| s.trials.iter().find(|o| o.index == t.index));
            trials[t.index] = if let Some(row) = finished(root, &t.id) {
                TrialState::Done(Box::new(row))
            } else if let Some(o) = outcome.filter(|o| o.status != table::OK) {
                TrialState::Failed(o.message.clone())
            } else if in_flight {
                if running {
                    TrialState::Running
                } else {
                    TrialState::Queued
                }
            } else if let (Some(error), true) =
                (status.as_ref().and_then(|s| s.error.clone()), ended)
            {
                TrialState::Failed(format!("the task stopped: {error}"))
            } else if let Some(why) = &died {
                TrialState::Lost(why.clone())
            } else if let Some(row) = recorded_row(root, &t.id).filter(TrialRow::failed) {
                TrialState::Failed(row.message)
            } else {
                TrialState::NotSubmitted
            };
        }
        groups.push(GroupView {
            task,
            slurm,
            status,
            in_flight,
            died,
        });
    }
    Survey { groups, trials }
}

/// Why a task that ended without its final status did so, in Slurm's words, with its log.
fn died_message(
    root: &Path,
    task: &str,
    group: usize,
    slurm: &Option<TaskState>,
    status: &Option<TaskStatus>,
) -> String {
    let (job, _) = task.split_once('_').unwrap_or((task, ""));
    let log = log_path(root, job, group);
    let started = match status {
        Some(s) => format!(" after it started on {}", s.host),
        None => " without writing a status file".to_string(),
    };
    let mut text = match slurm {
        Some(t) => format!(
            "the Slurm task {task} ended {} (reason: {}){started}",
            t.state, t.reason
        ),
        None => format!(
            "the Slurm task {task} ended{started}: squeue no longer lists it (cancelled while \
             queued, or ended longer ago than the cluster's MinJobAge)"
        ),
    };
    if status.is_none() && !log.exists() && slurm.as_ref().is_some_and(|t| t.state != "CANCELLED") {
        text.push_str(
            " and left no log: the results folder may not be on a filesystem the compute nodes \
             share",
        );
    }
    match last_line(&log) {
        Some(line) => format!("{text}; its log {} ends: {line}", log.display()),
        None => format!("{text}; log: {}", log.display()),
    }
}

/// The last non-empty line of a task's log (its last 4 KiB), shortened: often the error.
fn last_line(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    let short: String = line.chars().take(300).collect();
    Some(if short.len() < line.len() {
        format!("{short}…")
    } else {
        short
    })
}

/// The job ids of the plan's submissions.
pub(super) fn plan_jobs(plan: &Plan, jobs: &[Submission]) -> Vec<String> {
    let hash = plan.hash();
    let mut ids: Vec<String> = jobs
        .iter()
        .filter(|s| s.plan == hash)
        .map(|s| s.job.clone())
        .collect();
    ids.dedup();
    ids
}

/// One trial's line: `[3/6] label: running (task 12_1 on node7)`.
pub(super) fn trial_line(plan: &Plan, survey: &Survey, index: usize) -> String {
    let label = plan
        .groups
        .iter()
        .flat_map(|g| &g.trials)
        .find(|t| t.index == index)
        .map_or("?", |t| t.label.as_str());
    let group = plan
        .groups
        .iter()
        .position(|g| g.trials.iter().any(|t| t.index == index));
    let view = group.map(|g| &survey.groups[g]);
    let task = view.and_then(|v| v.task.clone()).unwrap_or_default();
    let prefix = format!("[{}/{}]", index + 1, plan.trials);
    match &survey.trials[index] {
        TrialState::NotSubmitted => format!("{prefix} {label}: not submitted"),
        TrialState::Queued => {
            let reason = view
                .and_then(|v| v.slurm.as_ref())
                .map(|s| format!(", {}", s.reason))
                .unwrap_or_default();
            format!("{prefix} {label}: queued (task {task}{reason})")
        }
        TrialState::Running => {
            let host = view
                .and_then(|v| v.status.as_ref())
                .map(|s| format!(" on {}", s.host))
                .unwrap_or_default();
            format!("{prefix} {label}: running (task {task}{host})")
        }
        TrialState::Done(row) => format!("{prefix} {}", crate::results::report::progress_line(row)),
        TrialState::Failed(message) => format!("{prefix} {label}: FAILED: {message}"),
        TrialState::Lost(why) => format!("{prefix} {label}: FAILED: {why}"),
    }
}

/// `runner status RESULTS_DIR`: every trial's state and the counts. Reads the plan, the
/// status files, the trial folders and `squeue`; changes nothing.
pub fn status(root: &Path, out: &mut dyn Write) -> Result<(), LaunchError> {
    let root = &absolute(root);
    let plan = Plan::require(root).map_err(LaunchError::Slurm)?;
    let jobs = read_jobs(root);
    let ids = plan_jobs(&plan, &jobs);
    let queue = match slurm::query(&ids) {
        Ok(queue) => queue,
        Err(message) => {
            let _ = writeln!(
                out,
                "note: {message}; tasks are shown from their status files only"
            );
            Vec::new()
        }
    };
    let survey = survey(root, &plan, &jobs, &queue);
    let _ = writeln!(
        out,
        "{}: {} trial(s) in {} training group(s); Slurm job(s): {}",
        root.display(),
        plan.trials,
        plan.groups.len(),
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    );
    for index in 0..plan.trials {
        let _ = writeln!(out, "{}", trial_line(&plan, &survey, index));
    }
    let _ = writeln!(out, "{}", survey.counts_line());
    if survey.in_flight() {
        let _ = writeln!(
            out,
            "tasks are still queued or running; `runner collect {}` builds the tables once \
             they have finished",
            root.display()
        );
    }
    Ok(())
}

/// `root` made absolute (the tasks and later commands may run elsewhere).
pub(super) fn absolute(root: &Path) -> PathBuf {
    std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf())
}
