//! `runner sweep FILE --launcher slurm`: the sweep is resolved and validated here, its plan
//! written into the results folder, and the training groups that are neither finished nor
//! in flight are submitted as one job array; then (unless `--no-wait`) this process watches
//! `squeue` and the tasks' status files, prints each trial's outcome as it appears and every
//! task that died, and collects the tables when nothing is left in flight.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::collect::collect_prepared;
use super::outcome::{LaunchError, Launched};
use super::plan::{logs_dir, now, read_jobs, slurm_dir, write_jobs, Plan, Submission};
use super::settings::LauncherSettings;
use super::slurm::{self, TaskState};
use super::status::{absolute, plan_jobs, survey, trial_line, TrialState};
use crate::results::write_atomic;
use crate::run::{lock, Prepared, RunError, SweepOptions, SweepReport};

/// Submits the sweep's unfinished training groups and, unless `no_wait`, waits for them and
/// collects the tables.
pub(super) fn sweep(
    mut prepared: Prepared,
    file: &Path,
    overrides: &[String],
    options: &SweepOptions,
    settings: &LauncherSettings,
    no_wait: bool,
    out: &mut dyn Write,
) -> Result<Launched, LaunchError> {
    let cwd = std::env::current_dir().map_err(|e| {
        LaunchError::Slurm(format!(
            "cannot read the current folder (the tasks run there): {e}"
        ))
    })?;
    let root = absolute(&prepared.folder.root);
    prepared.folder.root = root.clone();
    let name = root
        .file_name()
        .map_or("sweep".to_string(), |n| n.to_string_lossy().into_owned());
    let threads = prepared.trials[0].settings.threads;
    if options.dry_run {
        super::super::print_dry_run(&prepared, out);
        let groups: Vec<usize> =
            (0..super::super::training_groups(&prepared.trials).len()).collect();
        let args = slurm::sbatch_args(settings, &name, &groups, &logs_dir(&root), &cwd, threads);
        let _ = writeln!(
            out,
            "would submit one Slurm job array of {} task(s), one per training group: sbatch {}",
            groups.len(),
            args.join(" ")
        );
        return Ok(Launched::Finished(SweepReport {
            folder: prepared.folder,
            rows: Vec::new(),
            trials: prepared.trials.len(),
            skipped: 0,
            failed: 0,
        }));
    }
    slurm::check_available().map_err(LaunchError::Slurm)?;
    let _ = writeln!(out, "{}", crate::trial::plan_summary(&prepared.trials));
    fs::create_dir_all(&root).map_err(|e| RunError::from_write(&root, e))?;
    // Held while submitting and waiting: one submitter per folder.
    let _lock = lock::SweepLock::acquire(&root, out)?;
    super::super::preflight::check(&prepared.folder, &prepared.trials)?;
    super::super::history::record_invocation(
        &prepared.folder,
        file,
        overrides,
        "slurm",
        &prepared.trials,
    )?;
    if let Some(kind) =
        slurm::filesystem_type(&root).filter(|k| slurm::NODE_LOCAL.contains(&k.as_str()))
    {
        let _ = writeln!(
            out,
            "warning: {} is on a {kind} filesystem, in this host's memory: Slurm tasks on other \
             nodes cannot see it (fine on a one-node cluster). Fix: give --results a folder on a \
             filesystem shared with the compute nodes",
            root.display()
        );
    }

    let plan = Plan::new(&prepared, file, overrides, &cwd);
    let hash = plan.hash();
    let mut jobs = read_jobs(&root);
    let all: Vec<String> = jobs.iter().map(|s| s.job.clone()).collect();
    let queue = slurm::query(&all).map_err(LaunchError::Slurm)?;
    if let Some(old) = Plan::read(&root).map_err(LaunchError::Slurm)? {
        if old.hash() != hash && survey(&root, &old, &jobs, &queue).in_flight() {
            return Err(LaunchError::Slurm(format!(
                "tasks of another sweep submitted into {} are still queued or running (job(s) \
                 {}). Fix: wait for them (`runner status {}`), cancel them with scancel, or give \
                 this sweep another --results",
                root.display(),
                plan_jobs(&old, &jobs).join(", "),
                root.display()
            )));
        }
    }
    if !queue.iter().any(|t| !t.ended()) {
        let leftovers = lock::remove_leftovers(&root);
        if leftovers > 0 {
            let _ = writeln!(
                out,
                "removed {leftovers} temporary file(s) or partial folder(s) left by an interrupted run"
            );
        }
    }
    super::super::reference::write_real_data_grids(&prepared.folder, &prepared.trials)?;
    plan.write(&root)?;

    let before = survey(&root, &plan, &jobs, &queue);
    let mut reported = vec![false; plan.trials];
    let mut to_submit = Vec::new();
    for (g, group) in plan.groups.iter().enumerate() {
        let view = &before.groups[g];
        if view.in_flight {
            let _ = writeln!(
                out,
                "training group {g} ({} trial(s)) is still in flight as task {}: not submitted again",
                group.trials.len(),
                view.task.clone().unwrap_or_default()
            );
            continue;
        }
        for t in &group.trials {
            if let TrialState::Done(_) = before.trials[t.index] {
                reported[t.index] = true;
                let _ = writeln!(
                    out,
                    "[{}/{}] {}: finished earlier, skipped",
                    t.index + 1,
                    plan.trials,
                    t.label
                );
            }
        }
        if group.trials.iter().any(|t| !reported[t.index]) {
            to_submit.push(g);
        }
    }
    if !to_submit.is_empty() {
        let runner = if settings.runner.is_empty() {
            std::env::current_exe().map_err(|e| {
                LaunchError::Slurm(format!(
                    "cannot find this runner's path for the tasks ({e}). Fix: set \
                     `launcher.runner` to the runner binary's path"
                ))
            })?
        } else {
            PathBuf::from(&settings.runner)
        };
        if !runner.is_file() {
            return Err(LaunchError::Slurm(format!(
                "the runner binary {} (launcher.runner) is not a file. Fix: give the path of a \
                 `runner` binary that the compute nodes can reach",
                runner.display()
            )));
        }
        let script = slurm_dir(&root).join("task.sh");
        write_atomic(
            &script,
            slurm::task_script(&runner, &root, &hash).as_bytes(),
        )
        .map_err(|e| RunError::from_write(&script, e))?;
        let logs = logs_dir(&root);
        fs::create_dir_all(&logs).map_err(|e| RunError::from_write(&logs, e))?;
        let args = slurm::sbatch_args(settings, &name, &to_submit, &logs, &cwd, threads);
        let job = slurm::submit(&args, &script).map_err(LaunchError::Slurm)?;
        jobs.push(Submission {
            job: job.clone(),
            plan: hash.clone(),
            groups: to_submit.clone(),
            submitted: now(),
        });
        write_jobs(&root, &jobs)?;
        let trials: usize = to_submit.iter().map(|&g| plan.groups[g].trials.len()).sum();
        let _ = writeln!(
            out,
            "submitted Slurm job {job}: {} task(s), one per training group, for {trials} trial(s) \
             (array {}); logs in {}",
            to_submit.len(),
            slurm::array_spec(&to_submit),
            logs.display()
        );
    }
    let in_flight = !to_submit.is_empty() || before.in_flight();
    if no_wait && in_flight {
        let _ = writeln!(
            out,
            "not waiting (--no-wait): `runner status {0}` shows progress; `runner collect {0}` \
             builds the tables once the tasks have finished",
            root.display()
        );
        return Ok(Launched::Submitted { folder: root });
    }
    let queue = if in_flight {
        monitor(&root, &plan, settings.poll_seconds, reported, out)?
    } else {
        queue
    };
    Ok(Launched::Finished(collect_prepared(
        &prepared, &plan, &queue, out,
    )?))
}

/// Waits until no task of the plan is in flight, printing each trial's outcome as it
/// appears, each task that died, and the counts whenever they change. Returns `squeue`'s
/// last answer.
fn monitor(
    root: &Path,
    plan: &Plan,
    poll_seconds: f64,
    mut reported: Vec<bool>,
    out: &mut dyn Write,
) -> Result<Vec<TaskState>, LaunchError> {
    // Short looks first (a small sweep's tasks end in seconds), then every `poll_seconds`.
    let longest = Duration::from_secs_f64(poll_seconds);
    let mut poll = Duration::from_millis(500).min(longest);
    let mut last_counts = None;
    // Groups seen ended without a final status once: confirmed at the next look (a status
    // file may reach this host a moment after Slurm's state on a network filesystem).
    let mut suspects: HashSet<usize> = HashSet::new();
    let mut failures = 0;
    loop {
        let jobs = read_jobs(root);
        let queue = match slurm::query(&plan_jobs(plan, &jobs)) {
            Ok(queue) => {
                failures = 0;
                queue
            }
            Err(message) => {
                failures += 1;
                if failures >= 10 {
                    return Err(LaunchError::Slurm(format!(
                        "{message} ({failures} times in a row). The tasks may still run: \
                         `runner status {0}` and `runner collect {0}` pick them up later",
                        root.display()
                    )));
                }
                let _ = writeln!(out, "note: {message}; trying again");
                wait(poll, root)?;
                continue;
            }
        };
        let survey = survey(root, plan, &jobs, &queue);
        let mut unconfirmed = false;
        let mut confirmed = HashSet::new();
        for (g, view) in survey.groups.iter().enumerate() {
            if view.died.is_some() {
                if suspects.contains(&g) {
                    confirmed.insert(g);
                } else {
                    suspects.insert(g);
                    unconfirmed = true;
                }
            }
        }
        for (g, group) in plan.groups.iter().enumerate() {
            for t in &group.trials {
                let show = match &survey.trials[t.index] {
                    TrialState::Done(_) | TrialState::Failed(_) => true,
                    TrialState::Lost(_) => confirmed.contains(&g),
                    _ => false,
                };
                if show && !reported[t.index] {
                    reported[t.index] = true;
                    let _ = writeln!(out, "{}", trial_line(plan, &survey, t.index));
                }
            }
        }
        let counts = survey.counts();
        if last_counts != Some(counts) {
            last_counts = Some(counts);
            let _ = writeln!(out, "slurm: {}", survey.counts_line());
        }
        if !survey.in_flight() && !unconfirmed {
            return Ok(queue);
        }
        wait(poll, root)?;
        poll = (poll * 2).min(longest);
    }
}

/// Sleeps `poll`, or stops waiting on Ctrl-C.
fn wait(poll: Duration, root: &Path) -> Result<(), LaunchError> {
    let start = Instant::now();
    while start.elapsed() < poll {
        if crate::interrupt::requested() {
            return Err(LaunchError::StoppedWaiting(format!(
                "stopped waiting; the submitted Slurm tasks keep running. `runner status {0}` \
                 shows them, `runner collect {0}` builds the tables once they have finished \
                 (`scancel JOB` stops them)",
                root.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50).min(poll));
    }
    Ok(())
}
