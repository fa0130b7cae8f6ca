//! Image datasets read from files (`mnist`, `cifar10`, `image_folder`): the decoded items kept
//! as raw bytes, the split into training and held-out sets that never share an item, and the
//! small file helpers (gzip, load errors, a cache so a sweep reads each file set once).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::dataset::{Dataset, Quantisation, Samples};
use crate::rng::{Rng, Stream};

/// Which part of a dataset distributed as separate training and test files to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

/// Why a dataset's files could not be read: what is wrong (naming the file) and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub message: String,
    pub fix: String,
}

impl LoadError {
    pub fn new(message: impl Into<String>, fix: impl Into<String>) -> Self {
        LoadError {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}. Fix: {}", self.message, self.fix)
    }
}

/// A pixel byte in [-1, 1]: p / 127.5 - 1 (the code's value under [`Quantisation::BYTES`]).
pub fn unit(p: u8) -> f64 {
    f64::from(p) / 127.5 - 1.0
}

/// Labelled images as bytes, each item `channels x height x width` (planes, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// One item's shape, `[C, H, W]`.
    pub shape: [usize; 3],
    /// Every item's bytes, one after another.
    pub pixels: Vec<u8>,
    /// One label per item.
    pub labels: Vec<u32>,
    /// Number of classes (labels are below it).
    pub classes: usize,
}

impl ImageSet {
    /// Bytes per item.
    pub fn item_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One item's bytes.
    pub fn item(&self, i: usize) -> &[u8] {
        let d = self.item_len();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// The items picked by index, in [-1, 1], with their labels.
    pub fn samples(&self, indices: &[usize]) -> Samples {
        let mut data = Vec::with_capacity(indices.len() * self.item_len());
        for &i in indices {
            data.extend(self.item(i).iter().map(|&p| unit(p)));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Samples::with_shape(&self.shape, data).with_labels(labels)
    }

    /// Disjoint item indices for the held-out and training sets: a seeded shuffle of the
    /// items, held-out first. The held-out set takes at most all items but one; the training
    /// set takes what remains, up to `train`.
    pub fn split_indices(
        &self,
        train: usize,
        held_out: usize,
        seed: u64,
    ) -> (Vec<usize>, Vec<usize>) {
        let n = self.len();
        let held = held_out.min(n.saturating_sub(1));
        let kept = train.min(n - held);
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::new(seed, Stream::HeldOut);
        // A partial Fisher-Yates shuffle: the first `held + kept` places are a uniform draw.
        for i in 0..held + kept {
            let j = i + rng.below(n - i);
            order.swap(i, j);
        }
        let training = order[held..held + kept].to_vec();
        order.truncate(held);
        (training, order)
    }
}

/// A dataset of images read from files; both sets come from its items without overlap.
pub struct ImageDataset {
    set: Arc<ImageSet>,
}

impl ImageDataset {
    pub fn new(set: Arc<ImageSet>) -> Self {
        ImageDataset { set }
    }

    pub fn images(&self) -> &ImageSet {
        &self.set
    }
}

impl Dataset for ImageDataset {
    fn dim(&self) -> usize {
        self.set.item_len()
    }

    fn shape(&self) -> Vec<usize> {
        self.set.shape.to_vec()
    }

    fn classes(&self) -> usize {
        self.set.classes
    }

    /// Bytes scaled to [-1, 1].
    fn quantisation(&self) -> Option<Quantisation> {
        Some(Quantisation::BYTES)
    }

    /// `n` items drawn uniformly with replacement.
    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let indices: Vec<usize> = (0..n).map(|_| rng.below(self.set.len())).collect();
        self.set.samples(&indices)
    }

    /// Held-out items first, then training items, from one seeded shuffle: the two sets never
    /// share an item. When `train + held_out` exceed the items, the held-out set keeps at most
    /// all but one item and the training set gets what remains.
    fn draw(&self, train: usize, held_out: usize, seed: u64) -> (Samples, Samples) {
        let (training, held) = self.set.split_indices(train, held_out, seed);
        (self.set.samples(&training), self.set.samples(&held))
    }
}

/// Checks that a dataset has enough items to split into training and held-out sets.
pub fn check_items(set: &ImageSet, source: &Path) -> Result<(), LoadError> {
    if set.len() < 2 {
        return Err(LoadError::new(
            format!(
                "{} holds {} image(s); a training and a held-out set need at least 2",
                source.display(),
                set.len()
            ),
            "add images, or point `path` at the full dataset",
        ));
    }
    Ok(())
}

/// A file's bytes, gunzipped when they start with the gzip magic number.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| {
        LoadError::new(
            format!("cannot read {}: {e}", path.display()),
            "check the file exists and is readable",
        )
    })?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                LoadError::new(
                    format!("{} is not a valid gzip file: {e}", path.display()),
                    "download the file again (gzipped or not)",
                )
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Size and modification time of a file, for cache keys: a changed file is read again.
pub fn stamp(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{}:{modified}", path.display(), meta.len())
        }
        Err(_) => format!("{}:missing", path.display()),
    }
}

/// The image set for `key`, loaded once while any dataset still holds it: every trial of a
/// sweep builds its dataset, and large files should be read only once.
pub fn cached(
    key: String,
    load: impl FnOnce() -> Result<ImageSet, LoadError>,
) -> Result<Arc<ImageSet>, LoadError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Weak<ImageSet>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(set) = lock(cache).get(&key).and_then(Weak::upgrade) {
        return Ok(set);
    }
    let set = Arc::new(load()?);
    let mut map = lock(cache);
    map.retain(|_, weak| weak.strong_count() > 0);
    map.insert(key, Arc::downgrade(&set));
    Ok(set)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first of `candidates` that exists.
pub fn first_existing(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find(|p| p.is_file()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            shape: [1, 1, 2],
            pixels: (0..2 * n).map(|i| i as u8).collect(),
            labels: (0..n as u32).collect(),
            classes: n,
        }
    }

    #[test]
    fn split_is_disjoint_seeded_and_capped() {
        let s = set(50);
        let (train, held) = s.split_indices(30, 10, 7);
        assert_eq!((train.len(), held.len()), (30, 10));
        assert!(train.iter().all(|i| !held.contains(i)));
        assert_eq!(s.split_indices(30, 10, 7), (train.clone(), held.clone()));
        assert_ne!(s.split_indices(30, 10, 8).1, held);
        // The held-out set does not depend on the training size.
        assert_eq!(s.split_indices(5, 10, 7).1, held);
        // Too many asked for: held-out keeps all but one, training gets the rest.
        let (train, held) = s.split_indices(100, 100, 1);
        assert_eq!((train.len(), held.len()), (1, 49));
        let (train, held) = s.split_indices(100, 20, 1);
        assert_eq!((train.len(), held.len()), (30, 20));
        let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn unit_maps_bytes_onto_minus_one_one() {
        assert_eq!(unit(0), -1.0);
        assert_eq!(unit(255), 1.0);
        assert!((unit(128) - 0.003_921_568_627_451).abs() < 1e-12);
    }
}
