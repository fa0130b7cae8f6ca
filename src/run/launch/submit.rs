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
use super::status::{absolute, plan_jobs, survey, trial_line, Survey, TrialState};
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
    let target = Target::of(&mut prepared)?;
    if options.dry_run {
        return Ok(dry_run(prepared, &target, settings, out));
    }
    // Held while submitting and waiting: one submitter per folder.
    let _lock = open_folder(&prepared, (&target.root, options), file, overrides, out)?;
    let root = &target.root;
    let plan = Plan::new(&prepared, file, overrides, &target.cwd);
    let hash = plan.hash();
    let mut jobs = read_jobs(root);
    let all: Vec<String> = jobs.iter().map(|s| s.job.clone()).collect();
    let queue = slurm::query(&all).map_err(LaunchError::Slurm)?;
    refuse_other_sweep(root, &hash, &jobs, &queue)?;
    remove_leftovers_if_idle(root, &queue, out);
    super::super::reference::write_real_data_grids(&prepared.folder, &prepared.trials)?;
    plan.write(root)?;

    let before = survey(root, &plan, &jobs, &queue);
    let (reported, to_submit) = groups_to_submit(&plan, &before, out);
    if !to_submit.is_empty() {
        let submitting = Submitting {
            target: &target,
            settings,
            plan: &plan,
            hash: &hash,
            groups: &to_submit,
        };
        submitting.submit(&mut jobs, out)?;
    }
    let in_flight = !to_submit.is_empty() || before.in_flight();
    if no_wait && in_flight {
        return Ok(not_waiting(root, out));
    }
    let queue = if in_flight {
        monitor(root, &plan, settings.poll_seconds, reported, out)?
    } else {
        queue
    };
    Ok(Launched::Finished(collect_prepared(
        &prepared, &plan, &queue, out,
    )?))
}

/// `--no-wait` with tasks in flight: says how to follow them and returns.
fn not_waiting(root: &Path, out: &mut dyn Write) -> Launched {
    let _ = writeln!(
        out,
        "not waiting (--no-wait): `runner status {0}` shows progress; `runner collect {0}` \
         builds the tables once the tasks have finished",
        root.display()
    );
    Launched::Submitted {
        folder: root.to_path_buf(),
    }
}

/// Where and how the tasks run: the submitter's folder, the absolute results folder, the
/// job's name and the threads of each task.
struct Target {
    /// The submitter's working folder; the tasks run there.
    cwd: PathBuf,
    root: PathBuf,
    name: String,
    threads: usize,
}

impl Target {
    /// Reads the working folder and makes the sweep's folder absolute (in `prepared` too).
    fn of(prepared: &mut Prepared) -> Result<Target, LaunchError> {
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
        Ok(Target {
            cwd,
            root,
            name,
            threads,
        })
    }
}

/// `--dry-run`: prints the trials and the `sbatch` command that would submit them all.
fn dry_run(
    prepared: Prepared,
    target: &Target,
    settings: &LauncherSettings,
    out: &mut dyn Write,
) -> Launched {
    super::super::print_dry_run(&prepared, out);
    let groups: Vec<usize> = (0..super::super::training_groups(&prepared.trials).len()).collect();
    let args = slurm::sbatch_args(
        settings,
        &target.name,
        &groups,
        &logs_dir(&target.root),
        &target.cwd,
        target.threads,
    );
    let _ = writeln!(
        out,
        "would submit one Slurm job array of {} task(s), one per training group: sbatch {}",
        groups.len(),
        args.join(" ")
    );
    Launched::Finished(SweepReport {
        folder: prepared.folder,
        rows: Vec::new(),
        trials: prepared.trials.len(),
        skipped: 0,
        failed: 0,
    })
}

/// Checks Slurm answers, creates and locks the results folder, checks the trials fit and
/// records this invocation; warns when the folder is node-local. Returns the held lock.
fn open_folder(
    prepared: &Prepared,
    (root, options): (&Path, &SweepOptions),
    file: &Path,
    overrides: &[String],
    out: &mut dyn Write,
) -> Result<lock::SweepLock, LaunchError> {
    slurm::check_available().map_err(LaunchError::Slurm)?;
    let _ = writeln!(out, "{}", crate::trial::plan_summary(&prepared.trials));
    fs::create_dir_all(root).map_err(|e| RunError::from_write(root, e))?;
    let lock = lock::SweepLock::acquire(root, out)?;
    super::super::preflight::check(&prepared.folder, &prepared.trials, options.space_check)?;
    super::super::history::record_invocation(
        &prepared.folder,
        file,
        overrides,
        "slurm",
        &prepared.trials,
    )?;
    warn_if_node_local(root, out);
    Ok(lock)
}

/// Warns when `root` is on a filesystem in this host's memory, which other nodes cannot see.
fn warn_if_node_local(root: &Path, out: &mut dyn Write) {
    if let Some(kind) =
        slurm::filesystem_type(root).filter(|k| slurm::NODE_LOCAL.contains(&k.as_str()))
    {
        let _ = writeln!(
            out,
            "warning: {} is on a {kind} filesystem, in this host's memory: Slurm tasks on other \
             nodes cannot see it (fine on a one-node cluster). Fix: give --results a folder on a \
             filesystem shared with the compute nodes",
            root.display()
        );
    }
}

/// Fails when another sweep's plan (not of hash `hash`) in `root` still has tasks in flight.
fn refuse_other_sweep(
    root: &Path,
    hash: &str,
    jobs: &[Submission],
    queue: &[TaskState],
) -> Result<(), LaunchError> {
    if let Some(old) = Plan::read(root).map_err(LaunchError::Slurm)? {
        if old.hash() != hash && survey(root, &old, jobs, queue).in_flight() {
            return Err(LaunchError::Slurm(format!(
                "tasks of another sweep submitted into {} are still queued or running (job(s) \
                 {}). Fix: wait for them (`runner status {}`), cancel them with scancel, or give \
                 this sweep another --results",
                root.display(),
                plan_jobs(&old, jobs).join(", "),
                root.display()
            )));
        }
    }
    Ok(())
}

/// Removes what an interrupted run left in `root`, unless some task is still in the queue.
fn remove_leftovers_if_idle(root: &Path, queue: &[TaskState], out: &mut dyn Write) {
    if !queue.iter().any(|t| !t.ended()) {
        let leftovers = lock::remove_leftovers(root);
        if leftovers > 0 {
            let _ = writeln!(
                out,
                "removed {leftovers} temporary file(s) or partial folder(s) left by an interrupted run"
            );
        }
    }
}

/// The groups to submit: neither in flight nor finished. Returns which trials are reported
/// already (finished earlier, each said on `out`) and the groups' indices.
fn groups_to_submit(plan: &Plan, before: &Survey, out: &mut dyn Write) -> (Vec<bool>, Vec<usize>) {
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
    (reported, to_submit)
}

/// One submission of some of the plan's groups as a Slurm job array.
struct Submitting<'a> {
    target: &'a Target,
    settings: &'a LauncherSettings,
    plan: &'a Plan,
    hash: &'a str,
    /// The groups' indices in the plan: the array's indices.
    groups: &'a [usize],
}

impl Submitting<'_> {
    /// Writes the task script, submits the array, records the job in `jobs` (and its file)
    /// and says what was submitted.
    fn submit(&self, jobs: &mut Vec<Submission>, out: &mut dyn Write) -> Result<(), LaunchError> {
        let root = &self.target.root;
        let runner = self.runner()?;
        let script = slurm_dir(root).join("task.sh");
        write_atomic(
            &script,
            slurm::task_script(&runner, root, self.hash).as_bytes(),
        )
        .map_err(|e| RunError::from_write(&script, e))?;
        let logs = logs_dir(root);
        fs::create_dir_all(&logs).map_err(|e| RunError::from_write(&logs, e))?;
        let args = slurm::sbatch_args(
            self.settings,
            &self.target.name,
            self.groups,
            &logs,
            &self.target.cwd,
            self.target.threads,
        );
        let job = slurm::submit(&args, &script).map_err(LaunchError::Slurm)?;
        jobs.push(Submission {
            job: job.clone(),
            plan: self.hash.to_string(),
            groups: self.groups.to_vec(),
            submitted: now(),
        });
        write_jobs(root, jobs)?;
        let plan = self.plan;
        let trials: usize = self
            .groups
            .iter()
            .map(|&g| plan.groups[g].trials.len())
            .sum();
        let _ = writeln!(
            out,
            "submitted Slurm job {job}: {} task(s), one per training group, for {trials} trial(s) \
             (array {}); logs in {}",
            self.groups.len(),
            slurm::array_spec(self.groups),
            logs.display()
        );
        Ok(())
    }

    /// The runner binary the tasks run: `launcher.runner`, or this one; it must be a file.
    fn runner(&self) -> Result<PathBuf, LaunchError> {
        let runner = if self.settings.runner.is_empty() {
            std::env::current_exe().map_err(|e| {
                LaunchError::Slurm(format!(
                    "cannot find this runner's path for the tasks ({e}). Fix: set \
                     `launcher.runner` to the runner binary's path"
                ))
            })?
        } else {
            PathBuf::from(&self.settings.runner)
        };
        if !runner.is_file() {
            return Err(LaunchError::Slurm(format!(
                "the runner binary {} (launcher.runner) is not a file. Fix: give the path of a \
                 `runner` binary that the compute nodes can reach",
                runner.display()
            )));
        }
        Ok(runner)
    }
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
        let Some(queue) = query_again(root, plan, &jobs, &mut failures, out)? else {
            wait(poll, root)?;
            continue;
        };
        let survey = survey(root, plan, &jobs, &queue);
        let (confirmed, unconfirmed) = confirm_deaths(&survey, &mut suspects);
        report_outcomes(plan, &survey, &confirmed, &mut reported, out);
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

/// `squeue`'s answer about the plan's jobs, or `None` after a failure (noted on `out`); the
/// tenth failure in a row is an error. `failures` counts them.
fn query_again(
    root: &Path,
    plan: &Plan,
    jobs: &[Submission],
    failures: &mut usize,
    out: &mut dyn Write,
) -> Result<Option<Vec<TaskState>>, LaunchError> {
    match slurm::query(&plan_jobs(plan, jobs)) {
        Ok(queue) => {
            *failures = 0;
            Ok(Some(queue))
        }
        Err(message) => {
            *failures += 1;
            if *failures >= 10 {
                return Err(LaunchError::Slurm(format!(
                    "{message} ({failures} times in a row). The tasks may still run: \
                     `runner status {0}` and `runner collect {0}` pick them up later",
                    root.display()
                )));
            }
            let _ = writeln!(out, "note: {message}; trying again");
            Ok(None)
        }
    }
}

/// The groups seen dead at two looks in a row (confirmed), and whether some group was seen
/// dead for the first time (it is added to `suspects`).
fn confirm_deaths(survey: &Survey, suspects: &mut HashSet<usize>) -> (HashSet<usize>, bool) {
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
    (confirmed, unconfirmed)
}

/// Prints the outcome of each trial not `reported` yet that has one: finished, failed, or
/// lost with its group's death confirmed.
fn report_outcomes(
    plan: &Plan,
    survey: &Survey,
    confirmed: &HashSet<usize>,
    reported: &mut [bool],
    out: &mut dyn Write,
) {
    for (g, group) in plan.groups.iter().enumerate() {
        for t in &group.trials {
            let show = match &survey.trials[t.index] {
                TrialState::Done(_) | TrialState::Failed(_) => true,
                TrialState::Lost(_) => confirmed.contains(&g),
                _ => false,
            };
            if show && !reported[t.index] {
                reported[t.index] = true;
                let _ = writeln!(out, "{}", trial_line(plan, survey, t.index));
            }
        }
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
