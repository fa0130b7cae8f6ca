//! The `classifier` feature extractor's engine half: the classifier as configured (its
//! [`ClassifierSpec`], item shape and classes), its folder in the features cache, and the
//! trained feature map (features = the penultimate layer, classes = the argmax of the
//! logits, its held-out accuracy recorded as a fact).
//!
//! The trained weights are kept in `<cache>/classifier-<key>/` (`model.safetensors` and
//! `info.json`), the key a hash of the spec, the seed and the data (item shape, class count,
//! set sizes and the first items' values and labels of both sets): a second sweep loads
//! instead of training. Training it is `train::feature_classifier`'s.

use std::fs;
use std::path::Path;

use candle_core::{DType, Device, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::classifier::{ClassifierNet, ClassifierSpec};
use super::FeatureMap;
use crate::artifact::{write_atomic, write_json};
use crate::dataset::Samples;
use crate::rng::Rng;

/// Seed tags, so the classifier's draws differ from other users of the seed.
const INIT_TAG: u64 = 0x636c_6173_7369_6669;
const BATCH_TAG: u64 = 0x6261_7463_6865_7321;
/// Items of each set hashed into the cache key (with the set sizes and shapes).
const HASHED_ITEMS: usize = 256;

/// Files a finished cache folder holds.
pub const FILES: [&str; 2] = ["model.safetensors", "info.json"];

/// The classifier as configured: what to train, on items of which shape, into how many
/// classes.
#[derive(Debug, Clone)]
pub struct FeatureClassifier {
    pub spec: ClassifierSpec,
    pub shape: [usize; 3],
    pub classes: usize,
}

/// What `info.json` in a cache folder holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheInfo {
    pub held_out_accuracy: f64,
    pub train_seconds: f64,
    /// The spec it was trained with (named `params` since the plugin's parameters were it).
    pub params: ClassifierSpec,
}

fn hash_items(hasher: &mut Sha256, items: &Samples) {
    hasher.update((items.len() as u64).to_le_bytes());
    for &s in items.shape() {
        hasher.update((s as u64).to_le_bytes());
    }
    let head = items.head(HASHED_ITEMS);
    for v in head.as_slice() {
        hasher.update(v.to_le_bytes());
    }
    for l in head.labels().unwrap_or(&[]) {
        hasher.update(l.to_le_bytes());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FeatureClassifier {
    /// The cache key: a hash of the spec, seed, shape, classes and both data sets.
    pub fn cache_key(&self, training: &Samples, held_out: &Samples, seed: u64) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"scorelab classifier v1\0");
        hasher.update(
            serde_json::to_string(&self.spec)
                .unwrap_or_default()
                .as_bytes(),
        );
        hasher.update(seed.to_le_bytes());
        for s in self.shape {
            hasher.update((s as u64).to_le_bytes());
        }
        hasher.update((self.classes as u64).to_le_bytes());
        hash_items(&mut hasher, training);
        hash_items(&mut hasher, held_out);
        hex(&hasher.finalize())[..16].to_string()
    }

    /// The cache folder's name for this data and seed.
    pub fn folder_name(&self, training: &Samples, held_out: &Samples, seed: u64) -> String {
        format!("classifier-{}", self.cache_key(training, held_out, seed))
    }

    /// A freshly initialised network (its weights drawn from `seed`).
    pub fn new_net(&self, device: &Device, seed: u64) -> candle_core::Result<ClassifierNet> {
        let mut rng = Rng::from_seed(seed ^ INIT_TAG);
        let variables = VarMap::new();
        ClassifierNet::new(
            &variables,
            self.shape[0],
            self.classes,
            &self.spec,
            device,
            &mut rng,
        )
    }

    /// The stream training draws its batches from.
    pub fn batch_rng(seed: u64) -> Rng {
        Rng::from_seed(seed ^ BATCH_TAG)
    }

    /// The feature map of a trained `net` (its accuracy from training or the cache).
    pub fn feature_map(
        &self,
        net: ClassifierNet,
        device: &Device,
        held_out_accuracy: f64,
    ) -> TrainedClassifier {
        let mut hasher = Sha256::new();
        for (name, var) in crate::optim::sorted_vars(net.variables()) {
            hasher.update(name.as_bytes());
            let values = var
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .unwrap_or_default();
            for v in values {
                hasher.update(v.to_le_bytes());
            }
        }
        TrainedClassifier {
            net,
            shape: self.shape,
            device: device.clone(),
            held_out_accuracy,
            identity: format!("classifier-{}", &hex(&hasher.finalize())[..12]),
        }
    }

    /// Reads a complete cache folder: the network and its record, or why they cannot be used.
    pub fn load(
        &self,
        folder: &Path,
        device: &Device,
        seed: u64,
    ) -> Result<(ClassifierNet, CacheInfo), String> {
        let info_path = folder.join("info.json");
        let bytes = fs::read(&info_path).map_err(|e| format!("{}: {e}", info_path.display()))?;
        let info: CacheInfo =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", info_path.display()))?;
        let net = self.new_net(device, seed).map_err(|e| e.to_string())?;
        let path = folder.join("model.safetensors");
        let tensors = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        crate::optim::load_variables(net.variables(), &tensors)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((net, info))
    }

    /// Writes the files of a finished cache folder into `folder` (the artifact's partial one).
    pub fn write(folder: &Path, net: &ClassifierNet, info: &CacheInfo) -> Result<(), String> {
        let error = |path: &Path, e: &dyn std::fmt::Display| {
            format!(
                "classifier: cannot write the cache file {}: {e}. Fix: check that the results \
                 folder is writable",
                path.display()
            )
        };
        let model = folder.join("model.safetensors");
        let vars = crate::optim::sorted_vars(net.variables());
        let tensors = vars
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor()));
        let bytes = safetensors::serialize(tensors, None).map_err(|e| error(&model, &e))?;
        write_atomic(&model, &bytes).map_err(|e| error(&model, &e))?;
        let record = folder.join("info.json");
        write_json(&record, info).map_err(|e| error(&record, &e))
    }
}

/// A trained classifier: the network, the item shape it takes and its held-out accuracy.
pub struct TrainedClassifier {
    net: ClassifierNet,
    shape: [usize; 3],
    device: Device,
    held_out_accuracy: f64,
    identity: String,
}

impl TrainedClassifier {
    /// Features and predicted classes of `items`, in chunks of [`crate::eval_batch`] rows.
    fn run(
        &self,
        items: &Samples,
        want_features: bool,
    ) -> Result<(Option<Samples>, Vec<u32>), String> {
        let [c, h, w] = self.shape;
        if items.dim() != c * h * w {
            return Err(format!(
                "the classifier takes items of shape [{c}, {h}, {w}] ({} values), got {} values \
                 per item",
                c * h * w,
                items.dim()
            ));
        }
        let run = || -> candle_core::Result<(Option<Samples>, Vec<u32>)> {
            let (mut features, mut classes) = (Vec::new(), Vec::new());
            let mut dim = 0;
            for (start, count) in crate::eval_batch::spans(items.len()) {
                let end = start + count;
                let chunk = items.gather(&(start..end).collect::<Vec<_>>());
                let x = chunk
                    .to_tensor(&self.device)?
                    .reshape((end - start, c, h, w))?;
                let f = self.net.features(&x)?;
                classes.extend(self.net.logits(&f)?.argmax(D::Minus1)?.to_vec1::<u32>()?);
                if want_features {
                    dim = f.dim(1)?;
                    features.extend(f.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
                }
            }
            let features = want_features.then(|| Samples::new(dim.max(1), features));
            Ok((features, classes))
        };
        run().map_err(|e| format!("classifier: {e}"))
    }

    /// Share of `items` classified as their labels.
    pub fn accuracy(&self, items: &Samples) -> Result<f64, String> {
        let labels = items
            .labels()
            .ok_or("classifier: the held-out items have no labels")?;
        let (_, predicted) = self.run(items, false)?;
        let hits = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(hits as f64 / items.len().max(1) as f64)
    }

    /// Records the held-out accuracy measured after training.
    pub fn set_held_out_accuracy(&mut self, accuracy: f64) {
        self.held_out_accuracy = accuracy;
    }

    pub fn held_out_accuracy(&self) -> f64 {
        self.held_out_accuracy
    }

    /// The trained network (to save it).
    pub fn net(&self) -> &ClassifierNet {
        &self.net
    }
}

impl FeatureMap for TrainedClassifier {
    fn extract(&self, items: &Samples) -> Result<Samples, String> {
        Ok(self.run(items, true)?.0.expect("features were asked for"))
    }

    fn classify(&self, items: &Samples) -> Option<Result<Vec<u32>, String>> {
        Some(self.run(items, false).map(|(_, classes)| classes))
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn facts(&self) -> Vec<(&'static str, f64)> {
        vec![("held_out_accuracy", self.held_out_accuracy)]
    }
}
