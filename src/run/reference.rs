//! What a sweep's samples are compared with, prepared once per sweep: grids of held-out
//! images beside the samples, and the feature spaces of FID-style metrics.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use super::error::{write_error, RunError};
use super::live::ArtifactRuns;
use crate::features::{FeatureSpace, PrepareContext};
use crate::results::SweepFolder;
use crate::trial::Trial;

/// A grid of held-out images once per dataset of the sweep, to set beside the samples:
/// `plots/real_data.png` (`real_data-2.png`, ... when the sweep has several datasets).
pub(super) fn write_real_data_grids(
    folder: &SweepFolder,
    trials: &[Trial],
) -> Result<(), RunError> {
    let mut seen: Vec<&Trial> = Vec::new();
    for trial in trials {
        if seen
            .iter()
            .any(|t| std::sync::Arc::ptr_eq(&t.held_out, &trial.held_out))
        {
            continue;
        }
        seen.push(trial);
        let name = match seen.len() {
            1 => "real_data.png".to_string(),
            n => format!("real_data-{n}.png"),
        };
        let path = folder.plots().join(name);
        crate::results::plots::image_grid_png(&path, &trial.held_out, 64)
            .map_err(|e| write_error(&path, e))?;
    }
    Ok(())
}

/// The trial's feature space when one of its metrics uses features: the extractor prepared
/// (trained or loaded from the sweep's cache) and the reference and floor features
/// extracted the first time its config is met, then shared.
pub(super) fn feature_space<'m>(
    trial: &Trial,
    folder: &SweepFolder,
    file: &Path,
    spaces: &'m mut HashMap<String, FeatureSpace>,
    out: &mut dyn Write,
) -> Result<Option<&'m FeatureSpace>, RunError> {
    if !trial.metrics.iter().any(|(_, m)| m.uses_features()) {
        return Ok(None);
    }
    if !spaces.contains_key(&trial.features_key) {
        let cache = folder.features();
        fs::create_dir_all(&cache).map_err(|e| write_error(&cache, e))?;
        let mut log = |line: &str| {
            let _ = writeln!(out, "  features: {line}");
        };
        let mut live = ArtifactRuns::new(&folder.root.join("tb"));
        let failed = |message: String| RunError::Features {
            file: file.display().to_string(),
            extractor: trial.names.features.to_string(),
            message,
        };
        let map = trial
            .features
            .prepare(&mut PrepareContext {
                training_data: &trial.training_data,
                held_out: &trial.held_out,
                cache: &cache,
                device: &trial.device,
                seed: trial.settings.seed,
                checkpoint_every: trial.settings.checkpoint_every,
                log: &mut log,
                live: &mut |record| live.record(record),
            })
            .map_err(failed);
        live.report(out);
        let map = map?;
        let space = FeatureSpace::new(
            map,
            &trial.training_data,
            &trial.held_out,
            trial.settings.num_samples,
        )
        .map_err(failed)?;
        spaces.insert(trial.features_key.clone(), space);
    }
    Ok(spaces.get(&trial.features_key))
}
