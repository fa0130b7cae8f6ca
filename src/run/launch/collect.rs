//! The end of a Slurm sweep: every trial's row read back from its folder, and the tables,
//! plots and report written by the same code as the local launcher's
//! ([`super::super::write_results`]); `runner collect`.

use std::io::Write;
use std::path::Path;

use super::outcome::LaunchError;
use super::plan::{read_jobs, Plan};
use super::slurm;
use super::status::{absolute, plan_jobs, recorded_row, survey, TrialState};
use crate::results::SweepFolder;
use crate::run::{lock, ResultsInput, SweepReport};

/// `runner collect RESULTS_DIR`: builds the tables, plots and report of a submitted sweep
/// from what its tasks left. Trials whose task ended without them are recorded as failed
/// (a rerun submits them again); trials still queued or running are left out, with a note.
pub fn collect(root: &Path, out: &mut dyn Write) -> Result<SweepReport, LaunchError> {
    let root = absolute(root);
    let plan = Plan::require(&root).map_err(LaunchError::Slurm)?;
    let file = plan.file_here();
    let mut prepared = super::super::prepare(&file, &plan.overrides, &root)?;
    prepared.folder = SweepFolder { root: root.clone() };
    plan.check_matches(&prepared).map_err(LaunchError::Slurm)?;
    let _lock = lock::SweepLock::acquire(&root, out)?;
    let jobs = read_jobs(&root);
    let queue = slurm::query(&plan_jobs(&plan, &jobs)).map_err(|message| {
        LaunchError::Slurm(format!(
            "{message}. Fix: collect where Slurm answers (the tables need to know which tasks \
             are still running)"
        ))
    })?;
    collect_prepared(&prepared, &plan, &queue, out)
}

/// Collects with the folder already locked and `squeue`'s answer at hand.
pub(super) fn collect_prepared(
    prepared: &super::super::Prepared,
    plan: &Plan,
    queue: &[slurm::TaskState],
    out: &mut dyn Write,
) -> Result<SweepReport, LaunchError> {
    let super::super::Prepared {
        experiment,
        trials,
        folder,
    } = prepared;
    let root = &folder.root;
    let jobs = read_jobs(root);
    let survey = survey(root, plan, &jobs, queue);
    let mut rows = Vec::new();
    let mut waiting = 0;
    for (i, trial) in trials.iter().enumerate() {
        let row = match &survey.trials[i] {
            TrialState::Done(_) => super::super::trial_folder::finished_row(folder, trial),
            TrialState::Queued | TrialState::Running => {
                waiting += 1;
                None
            }
            // Its task ended without it: recorded as failed, so that the tables and the
            // report show why and a rerun submits it again.
            TrialState::Lost(why) => Some(super::super::trial_folder::save_failed_trial(
                trial,
                folder,
                &format!("{why}. Fix: run the sweep again to resubmit it"),
                (0.0, 0),
            )?),
            TrialState::Failed(message) => match recorded_row(root, &trial.id) {
                Some(row) if row.failed() => Some(row),
                // The task stopped before it could record the trial.
                _ => Some(super::super::trial_folder::save_failed_trial(
                    trial,
                    folder,
                    message,
                    (0.0, 0),
                )?),
            },
            TrialState::NotSubmitted => None,
        };
        rows.extend(row);
    }
    let missing = trials.len() - rows.len() - waiting;
    if waiting > 0 || missing > 0 {
        let _ = writeln!(
            out,
            "note: the tables leave out {waiting} trial(s) still queued or running and {missing} \
             never submitted; run `runner collect {}` again when they have finished",
            root.display()
        );
    }
    let input = ResultsInput {
        experiment,
        overrides: &plan.overrides,
        trials,
        folder,
        rows,
        skipped: 0,
    };
    Ok(super::super::write_results(input, out)?)
}
