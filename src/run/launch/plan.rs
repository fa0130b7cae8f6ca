//! What the Slurm launcher keeps in `<results>/slurm/`: the plan (the experiment file, the
//! overrides and every training group with its trials), the submissions (job ids and the
//! groups each ran), the batch script, the tasks' logs and their status files.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::error::write_error;
use super::super::{training_groups, Prepared, RunError};
use crate::results::store::write_json;
use crate::trial::stable_hash;

/// The launcher's folder inside the sweep's folder.
pub(super) const SLURM_DIR: &str = "slurm";

pub(super) fn slurm_dir(root: &Path) -> PathBuf {
    root.join(SLURM_DIR)
}

pub(super) fn plan_path(root: &Path) -> PathBuf {
    slurm_dir(root).join("plan.json")
}

pub(super) fn jobs_path(root: &Path) -> PathBuf {
    slurm_dir(root).join("jobs.json")
}

pub(super) fn logs_dir(root: &Path) -> PathBuf {
    slurm_dir(root).join("logs")
}

/// Slurm's output file of one task (`--output`'s `%A_%a`).
pub(super) fn log_path(root: &Path, job: &str, task: usize) -> PathBuf {
    logs_dir(root).join(format!("{job}_{task}.out"))
}

pub(super) fn status_path(root: &Path, group: usize) -> PathBuf {
    slurm_dir(root).join("status").join(format!("{group}.json"))
}

/// One trial as the plan lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct PlanTrial {
    /// Position in the sweep (0-based).
    pub index: usize,
    pub id: String,
    pub label: String,
}

/// The trials that share one trained model: one Slurm task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct PlanGroup {
    pub train_id: String,
    pub trials: Vec<PlanTrial>,
}

/// The sweep as submitted: each task resolves the same file and overrides from the same
/// working folder and checks that its trials have the ids listed here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Plan {
    /// The experiment file as given, relative to `cwd` unless absolute.
    pub file: PathBuf,
    pub overrides: Vec<String>,
    /// The submitter's working folder; the tasks run there (`sbatch --chdir`).
    pub cwd: PathBuf,
    pub trials: usize,
    /// Training groups in sweep order; a group's position is its Slurm array index.
    pub groups: Vec<PlanGroup>,
}

impl Plan {
    pub(super) fn new(prepared: &Prepared, file: &Path, overrides: &[String], cwd: &Path) -> Plan {
        let trials = &prepared.trials;
        let groups = training_groups(trials)
            .into_iter()
            .map(|(train_id, members)| PlanGroup {
                train_id,
                trials: members
                    .iter()
                    .map(|&i| PlanTrial {
                        index: i,
                        id: trials[i].id.clone(),
                        label: trials[i].label.clone(),
                    })
                    .collect(),
            })
            .collect();
        Plan {
            file: file.to_path_buf(),
            overrides: overrides.to_vec(),
            cwd: cwd.to_path_buf(),
            trials: trials.len(),
            groups,
        }
    }

    /// A short hash of the plan: tasks are given it, and refuse a plan that has changed.
    pub(super) fn hash(&self) -> String {
        stable_hash(&serde_json::to_value(self).unwrap_or_default())
    }

    /// The experiment file as this process can open it.
    pub(super) fn file_here(&self) -> PathBuf {
        if self.file.is_absolute() || std::env::current_dir().ok().as_ref() == Some(&self.cwd) {
            self.file.clone()
        } else {
            self.cwd.join(&self.file)
        }
    }

    pub(super) fn write(&self, root: &Path) -> Result<(), RunError> {
        let path = plan_path(root);
        write_json(&path, self).map_err(|e| write_error(&path, e))
    }

    /// The plan in `root`, or `None` when the folder has none.
    pub(super) fn read(root: &Path) -> Result<Option<Plan>, String> {
        let path = plan_path(root);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                format!(
                    "cannot read {}: {e}. Fix: submit the sweep again with `runner sweep FILE \
                     --launcher slurm`",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// The plan in `root`; an error naming the folder and the fix when there is none.
    pub(super) fn require(root: &Path) -> Result<Plan, String> {
        Plan::read(root)?.ok_or_else(|| {
            format!(
                "{} has no Slurm plan ({} is missing): it is not the results folder of a sweep \
                 submitted with `--launcher slurm`, or it is not visible from this host. Fix: \
                 give the sweep's folder (e.g. results/<experiment>), on a filesystem shared \
                 by the submitting host and the compute nodes",
                root.display(),
                plan_path(root).display()
            )
        })
    }

    /// Checks that `prepared` (resolved again from the plan's file) has the plan's trials.
    pub(super) fn check_matches(&self, prepared: &Prepared) -> Result<(), String> {
        let trials = &prepared.trials;
        let mismatch = self
            .groups
            .iter()
            .flat_map(|g| &g.trials)
            .find(|t| trials.get(t.index).map(|r| &r.id) != Some(&t.id));
        if trials.len() != self.trials || mismatch.is_some() {
            let what = match mismatch {
                Some(t) => format!(
                    "trial {} was `{}` when submitted and is now `{}`",
                    t.index + 1,
                    t.id,
                    trials.get(t.index).map_or("missing", |r| r.id.as_str())
                ),
                None => format!(
                    "{} trials when submitted, {} now",
                    self.trials,
                    trials.len()
                ),
            };
            return Err(format!(
                "{} (with overrides {:?}) no longer resolves to the submitted sweep: {what}. \
                 Fix: restore the file as it was, or submit the sweep again with `runner sweep \
                 FILE --launcher slurm` (finished trials are kept)",
                self.file_here().display(),
                self.overrides
            ));
        }
        Ok(())
    }
}

/// One `sbatch` of this folder's sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Submission {
    /// Slurm's job id of the array.
    pub job: String,
    /// The hash of the plan it ran.
    pub plan: String,
    /// The groups (array indices) it ran.
    pub groups: Vec<usize>,
    /// Seconds since the Unix epoch.
    pub submitted: u64,
}

/// Every submission of the folder, oldest first.
pub(super) fn read_jobs(root: &Path) -> Vec<Submission> {
    fs::read_to_string(jobs_path(root))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

pub(super) fn write_jobs(root: &Path, jobs: &[Submission]) -> Result<(), RunError> {
    let path = jobs_path(root);
    write_json(&path, &jobs).map_err(|e| write_error(&path, e))
}

/// The latest submission that ran `group` of the plan `hash`, with the group's Slurm task id.
pub(super) fn latest_job<'a>(
    jobs: &'a [Submission],
    hash: &str,
    group: usize,
) -> Option<&'a Submission> {
    jobs.iter()
        .rev()
        .find(|s| s.plan == hash && s.groups.contains(&group))
}

/// Seconds since the Unix epoch.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
