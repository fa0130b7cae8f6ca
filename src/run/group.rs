//! One training group of a sweep: its model trained (or found) once, then each unfinished
//! trial sampled, scored and saved. Every launcher runs groups through [`GroupRunner`]: the
//! local one in turn or `--jobs` at once, a Slurm task one group per task.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::error::RunError;
use super::hparams;
use super::progress::sample_with_progress;
use super::reference::feature_space;
use super::stages;
use super::trial_folder::{finished_row, save_failed_trial, save_trial};
use crate::evaluate::{Around, SampleSpace};
use crate::features::FeatureSpace;
use crate::results::report;
use crate::results::{SweepFolder, TrialRow};
use crate::trial::Trial;

/// Runs training groups of one sweep, one after another, keeping what they share (prepared
/// feature extractors) and what they produce (each trial's row).
pub(crate) struct GroupRunner<'a> {
    file: &'a Path,
    trials: &'a [Trial],
    folder: &'a SweepFolder,
    swept: Vec<crate::results::tensorboard::HParam>,
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
            swept: hparams::swept(trials.iter().map(|t| t.assignments.as_slice())),
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
        let (trials, folder, file) = (self.trials, self.folder, self.file);
        let count = trials.len();
        let rows = &mut self.rows;
        let pending: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| match finished_row(folder, &trials[i]) {
                Some(row) => {
                    rows[i] = Some(row);
                    false
                }
                None => true,
            })
            .collect();
        for &i in members.iter().filter(|i| !pending.contains(i)) {
            self.skipped += 1;
            let _ = writeln!(
                out,
                "[{}/{count}] {}: finished earlier, skipped",
                i + 1,
                trials[i].label
            );
        }
        if pending.is_empty() {
            return Ok(());
        }
        stop_if_interrupted(&self.rows)?;
        let first = &trials[pending[0]];
        // A training failure fails every trial of the group, and only them.
        let staged = match data_error(first) {
            Some(message) => Err(message),
            None => stages::before_training(first, folder, out),
        };
        let obtained = match staged {
            Err(message) => Err(message),
            Ok(staged) => match staged.model(first, folder, file, out) {
                Ok(model) => Ok((staged, model)),
                Err(RunError::Train { source, .. }) => Err(format!(
                    "training the model {train_id} (shared by {} trial(s)) failed: {source}",
                    members.len()
                )),
                Err(other) => return Err(other),
            },
        };
        let (staged, (network, history)) = match obtained {
            Ok(model) => model,
            Err(message) => {
                for &i in &pending {
                    let row = save_failed_trial(&trials[i], folder, &message, 0.0)?;
                    let _ = writeln!(
                        out,
                        "[{}/{count}] {}: FAILED: {message}",
                        i + 1,
                        trials[i].label
                    );
                    saved(i, &row);
                    self.rows[i] = Some(row);
                }
                return Ok(());
            }
        };
        for &i in &pending {
            let t = &trials[i];
            stop_if_interrupted(&self.rows)?;
            // A feature extractor that cannot be prepared fails the trials that use it (it
            // is tried once per sweep).
            let prepared = match self.failed_features.get(&t.features_key) {
                Some(message) => Err(message.clone()),
                None => match feature_space(t, folder, file, &mut self.feature_spaces, out) {
                    Err(RunError::Features {
                        extractor, message, ..
                    }) => {
                        let message = format!(
                            "preparing the feature extractor `{extractor}` failed: {message}"
                        );
                        self.failed_features
                            .insert(t.features_key.clone(), message.clone());
                        Err(message)
                    }
                    other => Ok(other?),
                },
            };
            // A guidance trains what it needs (a classifier) here, outside the sampling time.
            let prepared = prepared.and_then(|features| {
                super::guidance_prep::prepare_guidance(t, folder, out).map(|()| features)
            });
            let space = staged.sample_space(t);
            let around = |features| Around {
                features,
                space: space.as_ref().map(|s| s as &dyn SampleSpace),
                time_per_item: self.time_per_item,
            };
            let row = match prepared {
                Err(message) => save_failed_trial(t, folder, &message, history.seconds)?,
                Ok(features) => match sample_with_progress(t, &network, &around(features)) {
                    Ok(evaluation) => save_trial(
                        t,
                        folder,
                        &evaluation,
                        &history,
                        &hparams::session(t, &self.swept),
                    )?,
                    Err(source) => {
                        save_failed_trial(t, folder, &source.to_string(), history.seconds)?
                    }
                },
            };
            if row.failed() {
                let _ = writeln!(
                    out,
                    "[{}/{count}] {}: FAILED: {}",
                    i + 1,
                    t.label,
                    row.message
                );
            } else {
                let _ = writeln!(out, "[{}/{count}] {}", i + 1, report::progress_line(&row));
            }
            saved(i, &row);
            self.rows[i] = Some(row);
        }
        Ok(())
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
