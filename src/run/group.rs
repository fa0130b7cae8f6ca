//! One training group of a sweep: its model trained (or found) once, then each unfinished
//! trial sampled, scored and saved. Every launcher runs groups through [`GroupRunner`]: the
//! local one in turn or `--jobs` at once, a Slurm task one group per task.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::error::RunError;
use super::hparams;
use super::progress::{sample_with_progress, working_on};
use super::reference::feature_space;
use super::stages::{self, Staged};
use super::trial_folder::{finished_row, save_failed_trial, save_trial};
use crate::evaluate::{Around, SampleSpace};
use crate::features::FeatureSpace;
use crate::parameterisation::Model;
use crate::results::report;
use crate::results::{SweepFolder, TrialRow};
use crate::train::History;
use crate::trial::Trial;

/// A group's model with what the stages prepared for it.
type Trained = (Staged, (Model, History));

/// Runs training groups of one sweep, one after another, keeping what they share (prepared
/// feature extractors) and what they produce (each trial's row).
pub(crate) struct GroupRunner<'a> {
    file: &'a Path,
    trials: &'a [Trial],
    folder: &'a SweepFolder,
    feature_spaces: HashMap<String, FeatureSpace>,
    failed_features: HashMap<String, String>,
    /// Whether trials record their sampling time per item (see [`stages::time_per_item`]).
    time_per_item: bool,
    /// One row per trial of the sweep, by index, once it is finished (or found finished).
    pub rows: Vec<Option<TrialRow>>,
    /// Trials found finished by an earlier run.
    pub skipped: usize,
}

impl<'a> GroupRunner<'a> {
    pub(crate) fn new(file: &'a Path, trials: &'a [Trial], folder: &'a SweepFolder) -> Self {
        GroupRunner {
            file,
            trials,
            folder,
            feature_spaces: HashMap::new(),
            failed_features: HashMap::new(),
            time_per_item: stages::time_per_item(trials),
            rows: vec![None; trials.len()],
            skipped: 0,
        }
    }

    /// Runs the unfinished trials of one training group (`members`, indices into the
    /// sweep's trials): trains or loads their model once, then samples and scores each.
    /// `saved(index, row)` is called as each trial's folder is in place, failed or not.
    pub(crate) fn run(
        &mut self,
        train_id: &str,
        members: &[usize],
        out: &mut dyn Write,
        saved: &mut dyn FnMut(usize, &TrialRow),
    ) -> Result<(), RunError> {
        let pending = self.skip_finished(members, out);
        if pending.is_empty() {
            return Ok(());
        }
        stop_if_interrupted(&self.rows)?;
        working_on(pending[0], self.trials.len());
        let message = |source| {
            format!(
                "training the model {train_id} (shared by {} trial(s)) failed: {source}",
                members.len()
            )
        };
        let runs: Vec<_> = pending
            .iter()
            .map(|&i| self.folder.tensorboard(&self.trials[i].id))
            .collect();
        match self.train(&self.trials[pending[0]], &runs, out, message)? {
            Ok((staged, model)) => {
                for &i in &pending {
                    stop_if_interrupted(&self.rows)?;
                    let row = self.sample_and_score(i, &staged, &model, out)?;
                    self.finish(i, row, out, saved);
                }
            }
            // A training failure fails every trial of the group, and only them.
            Err(message) => {
                for &i in &pending {
                    let row = save_failed_trial(&self.trials[i], self.folder, &message, (0.0, 0))?;
                    self.finish(i, row, out, saved);
                }
            }
        }
        Ok(())
    }

    /// The members not finished by an earlier run; the finished ones' rows are read back.
    fn skip_finished(&mut self, members: &[usize], out: &mut dyn Write) -> Vec<usize> {
        let mut pending = Vec::new();
        for &i in members {
            let trial = &self.trials[i];
            match finished_row(self.folder, trial) {
                Some(row) => self.rows[i] = Some(row),
                None => pending.push(i),
            }
        }
        for &i in members.iter().filter(|i| !pending.contains(i)) {
            self.skipped += 1;
            let count = self.trials.len();
            let label = &self.trials[i].label;
            let _ = writeln!(
                out,
                "[{}/{count}] {label}: finished earlier, skipped",
                i + 1
            );
        }
        pending
    }

    /// The group's model, with what the stages prepared for it: `Ok(Err(message))` when its
    /// data or training failed (which fails the group's trials), `Err` when the sweep must
    /// stop.
    fn train(
        &self,
        first: &Trial,
        runs: &[std::path::PathBuf],
        out: &mut dyn Write,
        message: impl Fn(String) -> String,
    ) -> Result<Result<Trained, String>, RunError> {
        if let Some(message) = data_error(first) {
            return Ok(Err(message));
        }
        let staged = match stages::before_training(first, self.folder, out) {
            Ok(staged) => staged,
            Err(message) => return Ok(Err(message)),
        };
        match staged.model(first, (self.folder, self.file), runs, out) {
            Ok(model) => Ok(Ok((staged, model))),
            Err(RunError::Train { source, .. }) => Ok(Err(message(source.to_string()))),
            Err(other) => Err(other),
        }
    }

    /// Prepares the trial's feature space and guidance, samples the model and scores the
    /// samples, and saves the trial's folder (failed, with its message, when any step
    /// failed).
    fn sample_and_score(
        &mut self,
        i: usize,
        staged: &Staged,
        (network, history): &(Model, History),
        out: &mut dyn Write,
    ) -> Result<TrialRow, RunError> {
        let (t, folder, time_per_item) = (&self.trials[i], self.folder, self.time_per_item);
        working_on(i, self.trials.len());
        let prepared = self.features_of(t, out)?.and_then(|features| {
            // A guidance trains what it needs (a classifier) here, outside the sampling time.
            super::guidance_prep::prepare_guidance(t, folder, out).map(|g| (features, g))
        });
        let (features, guidance) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => return save_failed_trial(t, folder, &message, (history.seconds, 0)),
        };
        let space = staged.sample_space(t);
        let around = Around {
            features,
            space: space.as_ref().map(|s| s as &dyn SampleSpace),
            guidance: Some(&guidance),
            time_per_item,
        };
        match sample_with_progress(t, network, &around) {
            Ok(evaluation) => save_trial(t, folder, &evaluation, history),
            Err(source) => {
                let spent = (history.seconds, source.nfe());
                save_failed_trial(t, folder, &source.to_string(), spent)
            }
        }
    }

    /// The trial's prepared feature space (`None` when no metric uses features). An
    /// extractor that cannot be prepared fails the trials that use it (`Ok(Err(message))`);
    /// it is tried once per sweep.
    fn features_of(
        &mut self,
        t: &Trial,
        out: &mut dyn Write,
    ) -> Result<Result<Option<&FeatureSpace>, String>, RunError> {
        if let Some(message) = self.failed_features.get(&t.features_key) {
            return Ok(Err(message.clone()));
        }
        match feature_space(t, self.folder, self.file, &mut self.feature_spaces, out) {
            Err(RunError::Features {
                extractor, message, ..
            }) => {
                let message =
                    format!("preparing the feature extractor `{extractor}` failed: {message}");
                self.failed_features
                    .insert(t.features_key.clone(), message.clone());
                Ok(Err(message))
            }
            other => Ok(Ok(other?)),
        }
    }

    /// Reports the trial's row and keeps it.
    fn finish(
        &mut self,
        i: usize,
        row: TrialRow,
        out: &mut dyn Write,
        saved: &mut dyn FnMut(usize, &TrialRow),
    ) {
        let (count, label) = (self.trials.len(), &self.trials[i].label);
        let run = self.folder.tensorboard(&row.trial);
        if let Err(message) = hparams::write_own_session(&run, &row) {
            let _ = writeln!(
                out,
                "  warning: no HParams session in {}: {message}",
                run.display()
            );
        }
        let _ = if row.failed() {
            writeln!(out, "[{}/{count}] {label}: FAILED: {}", i + 1, row.message)
        } else {
            writeln!(out, "[{}/{count}] {}", i + 1, report::progress_line(&row))
        };
        saved(i, &row);
        self.rows[i] = Some(row);
    }
}

/// Stops the sweep when Ctrl-C was pressed, between trials (finished ones are saved).
fn stop_if_interrupted(rows: &[Option<TrialRow>]) -> Result<(), RunError> {
    if !crate::interrupt::requested() {
        return Ok(());
    }
    let done = rows.iter().filter(|r| r.is_some()).count();
    Err(RunError::Interrupted {
        message: format!(
            "stopped between trials; {done} of {} trial(s) are finished",
            rows.len()
        ),
    })
}

/// Why the trial's training data rules out training, if it does: non-finite values come
/// from the `data` section, not from the optimiser.
fn data_error(trial: &Trial) -> Option<String> {
    if trial.training_data.all_finite() {
        return None;
    }
    let bad = trial
        .training_data
        .rows()
        .filter(|r| r.iter().any(|v| !v.is_finite()))
        .count();
    Some(format!(
        "data error: {bad} of {} training items drawn from the `data` section (kind `{}`) have \
         non-finite values (NaN or inf), so nothing was trained or sampled. Fix: check the \
         `data` section's parameters (means, stds, weights, scale) for NaN, inf or overflow",
        trial.training_data.len(),
        trial.names.data
    ))
}
