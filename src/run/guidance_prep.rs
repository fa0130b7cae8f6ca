//! A trial's guidance made ready before it samples: what the guidance trains (a
//! noise-conditional classifier) is loaded from a folder of its own under the sweep's
//! `models/`, or trained and saved there, so its training time is not the trial's sampling
//! time and every trial and later run with the same classifier shares it.

use std::fs;
use std::io::Write;

use super::live::ArtifactRuns;
use crate::guidance::{GuidancePrepare, Prepared};
use crate::results::SweepFolder;
use crate::trial::Trial;

/// Prepares `trial`'s guidance (what it returns goes to sampling); the error is the message
/// its trial fails with.
pub(super) fn prepare_guidance(
    trial: &Trial,
    folder: &SweepFolder,
    out: &mut dyn Write,
) -> Result<Prepared, String> {
    let models = folder.root.join("models");
    let kind = trial.names.guidance;
    fs::create_dir_all(&models).map_err(|e| {
        format!(
            "preparing the guidance `{kind}` failed: cannot create {}: {e}. Fix: check that \
             the results folder is writable",
            models.display()
        )
    })?;
    let mut log = |line: &str| {
        let _ = writeln!(out, "  guidance: {line}");
    };
    let mut live = ArtifactRuns::new(&folder.root.join("tb"));
    let prepared = trial
        .guidance
        .prepare(&mut GuidancePrepare {
            models: &models,
            checkpoint_every: trial.settings.checkpoint_every,
            log: &mut log,
            live: &mut |record| live.record(record),
        })
        .map_err(|message| format!("preparing the guidance `{kind}` failed: {message}"));
    live.report(out);
    prepared
}
