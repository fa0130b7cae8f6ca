//! Talking to Slurm through its own commands: `sbatch` submits the job array, `squeue -t all`
//! says what became of each task (no accounting database needed). Also what can be checked
//! here about the results folder being shared with the compute nodes.

use std::path::Path;
use std::process::Command;

use super::settings::LauncherSettings;

/// The Slurm commands in `PATH` answer: `Ok(version)`, or why not with the fix.
pub(super) fn check_available() -> Result<String, String> {
    let fix = "Fix: run the sweep on a host with Slurm's client commands (a cluster's login \
               node), set SLURM_CONF if your cluster needs it, or start a one-node Slurm here \
               with `eval \"$(scripts/slurm-local.sh up)\"`";
    let output = Command::new("sbatch")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run `sbatch` ({e}). {fix}"))?;
    if !output.status.success() {
        return Err(format!(
            "`sbatch --version` failed: {}. {fix}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    // squeue asks the controller: a dead or unreachable one shows here, before anything runs.
    let ping = Command::new("squeue")
        .args(["--noheader", "--jobs=0"])
        .output()
        .map_err(|e| format!("cannot run `squeue` ({e}). {fix}"))?;
    let said = String::from_utf8_lossy(&ping.stderr);
    if !ping.status.success() && !said.contains("Invalid job id") {
        return Err(format!(
            "the Slurm controller does not answer (`squeue`: {}). {fix}",
            said.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// One array task as `squeue` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TaskState {
    /// The array's job id.
    pub job: String,
    /// The array index (the plan's group).
    pub task: usize,
    /// Slurm's state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    pub state: String,
    /// Slurm's reason (why pending, or why it ended): `None` when it gives none.
    pub reason: String,
}

/// States after which a task runs no more (Slurm's job states).
const ENDED: [&str; 10] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "REVOKED",
];

/// States in which a task's process runs.
const RUNNING: [&str; 5] = [
    "RUNNING",
    "COMPLETING",
    "CONFIGURING",
    "STAGE_OUT",
    "SIGNALING",
];

impl TaskState {
    /// Whether the task has ended (any state not known to be final counts as in flight).
    pub fn ended(&self) -> bool {
        ENDED.contains(&self.state.as_str())
    }

    pub fn running(&self) -> bool {
        RUNNING.contains(&self.state.as_str())
    }
}

/// The tasks of `jobs` that `squeue -t all` still knows (finished ones stay for the
/// cluster's MinJobAge; a task cancelled while pending is not listed at all).
pub(super) fn query(jobs: &[String]) -> Result<Vec<TaskState>, String> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let output = Command::new("squeue")
        .args([
            "--array",
            "--noheader",
            "--states=all",
            &format!("--jobs={}", jobs.join(",")),
            "--Format=ArrayJobID:|,ArrayTaskID:|,State:|,Reason:|",
        ])
        .output()
        .map_err(|e| format!("cannot run `squeue`: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // Asked about one job only, squeue fails when the controller has forgotten it.
        if stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        return Err(format!("`squeue` failed: {}", stderr.trim()));
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&output.stdout)))
}

/// Lines `JOB|TASK|STATE|REASON|` as asked for by [`query`]; other lines are skipped.
pub(super) fn parse_squeue(text: &str) -> Vec<TaskState> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('|').map(str::trim);
            let job = fields.next()?.to_string();
            let task = fields.next()?.parse().ok()?;
            let state = fields.next()?.to_string();
            let reason = fields.next().unwrap_or("").to_string();
            (!job.is_empty() && !state.is_empty()).then_some(TaskState {
                job,
                task,
                state,
                reason,
            })
        })
        .collect()
}

/// Array indices as Slurm's `--array` takes them: `0-3,5,7-8`.
pub(super) fn array_spec(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// The `sbatch` arguments of one submission (the script's path comes last, added by the
/// caller). `threads` is the sweep's, the CPUs of a task unless `cpus_per_task` is set.
pub(super) fn sbatch_args(
    settings: &LauncherSettings,
    name: &str,
    groups: &[usize],
    logs: &Path,
    cwd: &Path,
    threads: usize,
) -> Vec<String> {
    let mut array = array_spec(groups);
    if settings.array_parallelism > 0 {
        array.push_str(&format!("%{}", settings.array_parallelism));
    }
    let cpus = if settings.cpus_per_task > 0 {
        settings.cpus_per_task
    } else {
        threads
    };
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name=scorelab-{name}"),
        format!("--array={array}"),
        format!("--output={}", logs.join("%A_%a.out").display()),
        format!("--chdir={}", cwd.display()),
        format!("--cpus-per-task={cpus}"),
    ];
    if !settings.partition.is_empty() {
        args.push(format!("--partition={}", settings.partition));
    }
    if !settings.time.is_empty() {
        args.push(format!("--time={}", settings.time));
    }
    if settings.gpus_per_task > 0 {
        args.push(format!("--gpus-per-task={}", settings.gpus_per_task));
    }
    // Near its time limit a task gets Ctrl-C's signal: training stops at the next step with
    // a checkpoint, which the resubmitted task resumes (Slurm's default, SIGTERM, kills it).
    if !settings
        .sbatch_args
        .iter()
        .any(|a| a.starts_with("--signal"))
    {
        args.push(format!("--signal=B:INT@{STOP_SECONDS}"));
    }
    args.extend(settings.sbatch_args.iter().cloned());
    args
}

/// Seconds before its time limit at which a task is asked to stop (SIGINT).
pub(super) const STOP_SECONDS: u32 = 120;

/// The batch script: each array task runs its training group.
pub(super) fn task_script(runner: &Path, root: &Path, plan_hash: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by `runner sweep --launcher slurm`: array task N runs training group N of\n\
         # the sweep in this folder (slurm/plan.json) and keeps slurm/status/N.json.\n\
         exec {} trial {} \"$SLURM_ARRAY_TASK_ID\" --plan {}\n",
        shell_quote(&runner.display().to_string()),
        shell_quote(&root.display().to_string()),
        shell_quote(plan_hash)
    )
}

/// `text` as one word for sh.
pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Submits `script` with `args`; Slurm's job id.
pub(super) fn submit(args: &[String], script: &Path) -> Result<String, String> {
    let output = Command::new("sbatch")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| format!("cannot run `sbatch`: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`sbatch {}` failed: {}. Fix: check the launcher options (partition, time, \
             sbatch_args) against your cluster's `sinfo`",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    let job = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`sbatch` answered `{}`, not a job id",
            stdout.trim()
        ));
    }
    Ok(job)
}

/// The filesystem type of the mount that holds `path` (Linux: `/proc/self/mountinfo`).
pub(super) fn filesystem_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in text.lines() {
        let (left, right) = line.split_once(" - ")?;
        let mount = unescape(left.split(' ').nth(4)?);
        let kind = right.split(' ').next()?.to_string();
        let mount = Path::new(&mount);
        if path.starts_with(mount) {
            let depth = mount.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, kind));
            }
        }
    }
    best.map(|(_, kind)| kind)
}

/// Mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(byte) => out.push(byte as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Filesystems that live in one host's memory: compute nodes never see them.
pub(super) const NODE_LOCAL: [&str; 2] = ["tmpfs", "ramfs"];
