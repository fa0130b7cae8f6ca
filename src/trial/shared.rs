//! Work shared between the trials of one resolution: each distinct data config is drawn
//! once, and its training set's largest pairwise distance (`sigma_max: auto`) is computed
//! once, however many trials (samplers, metrics, schedules) use it. The cache belongs to
//! one call of [`super::resolve_with_stats`]: nothing outlives the sweep that built it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::dataset::{Dataset, Samples};

/// A dataset with its training and held-out sets, shared by trials that draw the same data.
pub(super) type DataEntry = (Arc<dyn Dataset>, Arc<Samples>, Arc<Samples>);

/// The data of one resolution, keyed by the canonical form of the data config: the plugin,
/// its parameters with every default filled in, the seed and both sizes.
#[derive(Default)]
pub(super) struct DataCache {
    entries: HashMap<String, DataEntry>,
    draws: usize,
}

impl DataCache {
    /// The entry for `key`, drawing it with `draw` the first time.
    pub(super) fn get_or_draw(&mut self, key: &str, draw: impl FnOnce() -> DataEntry) -> DataEntry {
        if let Some(entry) = self.entries.get(key) {
            return entry.clone();
        }
        self.draws += 1;
        let entry = draw();
        self.entries.insert(key.to_string(), entry.clone());
        entry
    }

    pub(super) fn stats(&self, trials: usize, elapsed: Duration) -> ResolutionStats {
        ResolutionStats {
            trials,
            data_draws: self.draws,
            distances: self
                .entries
                .values()
                .filter(|(_, training, _)| training.known_max_pairwise_distance().is_some())
                .count(),
            elapsed,
        }
    }
}

/// What resolving a sweep cost (for the benchmark and the tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolutionStats {
    /// Trials resolved.
    pub trials: usize,
    /// Distinct data configs, each drawn once (training and held-out set).
    pub data_draws: usize,
    /// Training sets whose largest pairwise distance was computed (once each).
    pub distances: usize,
    /// Wall-clock time of the whole resolution.
    pub elapsed: Duration,
}
