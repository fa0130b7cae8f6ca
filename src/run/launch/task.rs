//! One Slurm array task: `runner trial RESULTS_DIR GROUP` runs the unfinished trials of one
//! training group of the submitted plan and keeps `slurm/status/GROUP.json` up to date (state,
//! exit code, timings, the error that stopped it, each trial's outcome as it is saved).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::outcome::LaunchError;
use super::plan::{now, status_path, Plan, PlanGroup};
use super::status::{TaskStatus, TrialStatus};
use crate::results::{SweepFolder, TrialRow};

/// Runs group `group` of the plan in `root` (a sweep's results folder). `plan_hash`, when
/// given, must be the plan's (the task was submitted for that plan). Returns the exit
/// status: 0, or 2 when some of the group's trials failed; an error is also written to the
/// status file before it is returned.
pub fn run_task(
    root: &Path,
    group: usize,
    plan_hash: Option<&str>,
    out: &mut dyn Write,
) -> Result<u8, LaunchError> {
    let host = hostname();
    let plan = read_plan(root, &host)?;
    let hash = plan.hash();
    check_submitted(root, &hash, plan_hash)?;
    let entry = group_entry(root, &plan, group)?;
    let started = Instant::now();
    let mut status = running_status(hash, group, entry, host);
    let path = status_path(root, group);
    status.write(&path)?;

    let result = run_group(&plan, root, group, &mut status, &path, out);
    let code = finish(&mut status, &result, started);
    status.write(&path)?;
    result.map(|()| code)
}

/// The plan in `root`, or an error saying the folder must be shared with this host.
fn read_plan(root: &Path, host: &str) -> Result<Plan, LaunchError> {
    Plan::require(root).map_err(|message| {
        LaunchError::Slurm(format!(
            "on host {host}: {message}. The results folder must be on a filesystem shared by \
             the host that submitted the sweep and the compute nodes (not /tmp or another \
             node-local disk)"
        ))
    })
}

/// Fails when the plan (of hash `hash`) is not the one the task was submitted for.
fn check_submitted(root: &Path, hash: &str, plan_hash: Option<&str>) -> Result<(), LaunchError> {
    if let Some(expected) = plan_hash {
        if expected != hash {
            return Err(LaunchError::Slurm(format!(
                "{} changed after this task was submitted (plan {expected}, now {hash}): \
                 another sweep was submitted into {}. Fix: submit this sweep again",
                super::plan::plan_path(root).display(),
                root.display()
            )));
        }
    }
    Ok(())
}

/// The plan's group `group`, or an error naming the groups it has.
fn group_entry<'p>(
    root: &Path,
    plan: &'p Plan,
    group: usize,
) -> Result<&'p PlanGroup, LaunchError> {
    plan.groups.get(group).ok_or_else(|| {
        LaunchError::Slurm(format!(
            "the plan in {} has {} training group(s), no group {group}. Fix: give a group \
             from 0 to {}",
            root.display(),
            plan.groups.len(),
            plan.groups.len().saturating_sub(1)
        ))
    })
}

/// This task's Slurm name (`JOB_TASK`), or empty outside a Slurm array task.
fn array_task() -> String {
    match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(job), Ok(task)) => format!("{job}_{task}"),
        _ => String::new(),
    }
}

/// The status of a task starting now on `host` for group `group` of the plan `hash`.
fn running_status(hash: String, group: usize, entry: &PlanGroup, host: String) -> TaskStatus {
    TaskStatus {
        job: array_task(),
        plan: hash,
        group,
        train_id: entry.train_id.clone(),
        host,
        pid: std::process::id(),
        state: TaskStatus::RUNNING.to_string(),
        exit_code: None,
        started: now(),
        finished: None,
        seconds: 0.0,
        error: None,
        trials: Vec::new(),
    }
}

/// Marks the status ended by `result` (timings, state, error) and returns the exit code:
/// 0, 2 when some trial failed, 1 on an error.
fn finish(status: &mut TaskStatus, result: &Result<(), LaunchError>, started: Instant) -> u8 {
    status.seconds = started.elapsed().as_secs_f64();
    status.finished = Some(now());
    let code = match result {
        Ok(())
            if status
                .trials
                .iter()
                .any(|t| t.status != crate::results::table::OK) =>
        {
            2
        }
        Ok(()) => 0,
        Err(e) => {
            status.error = Some(e.to_string());
            1
        }
    };
    status.state = if result.is_ok() {
        TaskStatus::FINISHED
    } else {
        TaskStatus::ERROR
    }
    .to_string();
    status.exit_code = Some(code as i32);
    code
}

/// Resolves the plan's sweep, checks it is the one submitted, and runs the group.
fn run_group(
    plan: &Plan,
    root: &Path,
    group: usize,
    status: &mut TaskStatus,
    path: &Path,
    out: &mut dyn Write,
) -> Result<(), LaunchError> {
    let file = plan.file_here();
    let mut prepared = super::super::prepare(&file, &plan.overrides, root)?;
    prepared.folder = SweepFolder {
        root: root.to_path_buf(),
    };
    plan.check_matches(&prepared).map_err(LaunchError::Slurm)?;
    super::super::use_threads(&prepared.trials);
    let entry = &plan.groups[group];
    let members: Vec<usize> = entry.trials.iter().map(|t| t.index).collect();
    let mut runner = super::super::GroupRunner::new(&file, &prepared.trials, &prepared.folder);
    let mut last = Instant::now();
    let mut write_error = None;
    let result = runner.run(&entry.train_id, &members, out, &mut |i, row| {
        status
            .trials
            .push(TrialStatus::of(i, row, last.elapsed().as_secs_f64()));
        last = Instant::now();
        // Each outcome is written as it comes, so the submitter reports it at once.
        if let Err(e) = status.write(path) {
            write_error.get_or_insert(e);
        }
    });
    result?;
    add_finished_earlier(status, &members, &runner.rows);
    match write_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Adds the members an earlier run finished (they are the group's too), then sorts the
/// status's trials by index.
fn add_finished_earlier(status: &mut TaskStatus, members: &[usize], rows: &[Option<TrialRow>]) {
    for &i in members {
        if !status.trials.iter().any(|t| t.index == i) {
            if let Some(row) = &rows[i] {
                let mut finished = TrialStatus::of(i, row, 0.0);
                finished.message = "finished earlier, skipped".to_string();
                status.trials.push(finished);
            }
        }
    }
    status.trials.sort_by_key(|t| t.index);
}

/// This host's name, for status files and messages.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
