//! `classifier`: a small CNN trained on the dataset's labels; the features are its penultimate
//! layer. Three 3x3 convolutions (`width`, then 2 `width` and 4 `width` channels at stride 2),
//! each followed by SiLU, a global average pool, a linear layer to `features` units and SiLU
//! (the features), and a linear layer to the class logits. Trained with Adam on the
//! cross-entropy of the training set's labels, deterministic by seed; its accuracy on the
//! held-out set is recorded (`held_out_accuracy`).
//!
//! The trained weights are cached under the results folder, in
//! `<cache>/classifier-<hash>/` (`model.safetensors` and `info.json`), the hash covering the
//! extractor's parameters, the seed and the data (item shape, class count, set sizes and the
//! first items' values and labels of both sets): a second sweep loads instead of training.
//! The network and its training loop are in `classifier_net.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::features::{FeatureExtractor, FeatureMap, FeaturesContext, PrepareContext};
use scorelab::params;
use scorelab::plugins::features::classifier_net::{train_classifier, ClassifierNet};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::results::store::write_atomic;
use scorelab::rng::Rng;
use sha2::{Digest, Sha256};

params! {
    /// Parameters of `classifier`.
    pub struct ClassifierParams {
        /// Training steps (Adam on the cross-entropy of the training labels).
        steps: usize = 600,
        /// Training items per step.
        batch_size: usize = 64,
        /// Adam's learning rate.
        lr: f64 = 0.005,
        /// Units of the penultimate layer: the feature dimension.
        features: usize = 128,
        /// Channels of the first convolution (2x and 4x in the next two).
        width: usize = 16,
    }
}

/// Seed tags, so the classifier's draws differ from other users of the seed.
const INIT_TAG: u64 = 0x636c_6173_7369_6669;
const BATCH_TAG: u64 = 0x6261_7463_6865_7321;
/// Items of each set hashed into the cache key (with the set sizes and shapes).
const HASHED_ITEMS: usize = 256;
/// Items per forward pass when extracting features.
const CHUNK: usize = 500;

/// A trained classifier: the network, the item shape it takes and its held-out accuracy.
pub struct TrainedClassifier {
    net: ClassifierNet,
    shape: [usize; 3],
    device: Device,
    held_out_accuracy: f64,
    identity: String,
}

impl TrainedClassifier {
    /// Features and predicted classes of `items`, in chunks.
    fn run(
        &self,
        items: &Samples,
        want_features: bool,
    ) -> Result<(Option<Samples>, Vec<u32>), String> {
        let [c, h, w] = self.shape;
        if items.dim() != c * h * w {
            return Err(format!("the classifier takes items of shape [{c}, {h}, {w}] ({} values), got {} values per item", c * h * w, items.dim()));
        }
        let run = || -> candle_core::Result<(Option<Samples>, Vec<u32>)> {
            let (mut features, mut classes) = (Vec::new(), Vec::new());
            let mut dim = 0;
            for start in (0..items.len()).step_by(CHUNK) {
                let end = (start + CHUNK).min(items.len());
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

/// The extractor as configured.
pub struct Classifier {
    pub params: ClassifierParams,
    pub shape: [usize; 3],
    pub classes: usize,
}

/// What `info.json` in a cache folder holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheInfo {
    held_out_accuracy: f64,
    train_seconds: f64,
    params: ClassifierParams,
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

impl Classifier {
    /// The cache key: a hash of the parameters, seed, shape, classes and both data sets.
    pub fn cache_key(&self, training: &Samples, held_out: &Samples, seed: u64) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"scorelab classifier v1\0");
        hasher.update(
            serde_json::to_string(&self.params)
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

    fn new_net(
        &self,
        variables: &VarMap,
        device: &Device,
        seed: u64,
    ) -> candle_core::Result<ClassifierNet> {
        let mut rng = Rng::from_seed(seed ^ INIT_TAG);
        ClassifierNet::new(
            variables,
            self.shape[0],
            self.classes,
            &self.params,
            device,
            &mut rng,
        )
    }

    /// Trains a fresh network on `training` (labelled) and returns it with its variables.
    fn train(
        &self,
        training: &Samples,
        device: &Device,
        seed: u64,
        log: &mut dyn FnMut(&str),
    ) -> Result<(VarMap, ClassifierNet), String> {
        let labels = training.labels().filter(|_| !training.is_empty()).ok_or("classifier: no labelled training items. Fix: use labelled data (e.g. `data: shapes`) or `features: raw`")?;
        let [c, h, w] = self.shape;
        let mut train = || -> candle_core::Result<(VarMap, ClassifierNet)> {
            let variables = VarMap::new();
            let net = self.new_net(&variables, device, seed)?;
            let images = training
                .to_tensor(device)?
                .reshape((training.len(), c, h, w))?;
            let labels = Tensor::from_vec(labels.to_vec(), training.len(), device)?;
            let mut rng = Rng::from_seed(seed ^ BATCH_TAG);
            train_classifier(
                &net,
                &variables,
                &images,
                &labels,
                &self.params,
                &mut rng,
                log,
            )?;
            Ok((variables, net))
        };
        train().map_err(|e| format!("classifier: training failed: {e}"))
    }

    fn finish(
        &self,
        net: ClassifierNet,
        variables: &VarMap,
        device: &Device,
        held_out_accuracy: f64,
    ) -> TrainedClassifier {
        let mut hasher = Sha256::new();
        let data = variables.data().lock().expect("variable map lock poisoned");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            hasher.update(name.as_bytes());
            let values = data[name]
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

    /// Loads a cached network from `folder`: `Err(None)` when there is none, `Err(Some(why))`
    /// when it cannot be read.
    fn load(
        &self,
        folder: &Path,
        device: &Device,
        seed: u64,
    ) -> Result<(VarMap, ClassifierNet, CacheInfo), Option<String>> {
        let info_path = folder.join("info.json");
        let Ok(bytes) = fs::read(&info_path) else {
            return Err(None);
        };
        let info: CacheInfo =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", info_path.display()))?;
        let mut variables = VarMap::new();
        let net = self
            .new_net(&variables, device, seed)
            .map_err(|e| e.to_string())?;
        variables
            .load(folder.join("model.safetensors"))
            .map_err(|e| e.to_string())?;
        Ok((variables, net, info))
    }

    fn save(folder: &Path, variables: &VarMap, info: &CacheInfo) -> Result<(), String> {
        let error = |path: &Path, e: &dyn std::fmt::Display| {
            format!("classifier: cannot write the cache file {}: {e}. Fix: check that the results folder is writable", path.display())
        };
        fs::create_dir_all(folder).map_err(|e| error(folder, &e))?;
        let model = folder.join("model.safetensors");
        let temporary = tempfile::Builder::new()
            .prefix(".model-")
            .tempfile_in(folder)
            .map_err(|e| error(folder, &e))?;
        variables
            .save(temporary.path())
            .map_err(|e| error(&model, &e))?;
        temporary
            .persist(&model)
            .map_err(|e| error(&model, &e.error))?;
        let text =
            serde_json::to_string_pretty(info).map_err(|e| error(&folder.join("info.json"), &e))?;
        write_atomic(&folder.join("info.json"), text.as_bytes())
            .map_err(|e| error(&folder.join("info.json"), &e))
    }
}

impl FeatureExtractor for Classifier {
    fn prepare(&self, context: &mut PrepareContext) -> Result<Box<dyn FeatureMap>, String> {
        if context.held_out.labels().is_none() {
            return Err("classifier: the held-out items have no labels, so its accuracy cannot be measured. Fix: use labelled data (e.g. `data: shapes`) or `features: raw`".into());
        }
        let key = self.cache_key(context.training_data, context.held_out, context.seed);
        let folder: PathBuf = context.cache.join(format!("classifier-{key}"));
        let loaded = self.load(&folder, context.device, context.seed);
        if let Err(Some(problem)) = &loaded {
            (context.log)(&format!(
                "classifier: the cache {} is unreadable ({problem}); training again",
                folder.display()
            ));
        }
        if let Ok((variables, net, info)) = loaded {
            (context.log)(&format!(
                "classifier: loaded from cache {} (held-out accuracy {:.4})",
                folder.display(),
                info.held_out_accuracy
            ));
            return Ok(Box::new(self.finish(
                net,
                &variables,
                context.device,
                info.held_out_accuracy,
            )));
        }
        (context.log)(&format!(
            "classifier: training {} steps on {} items (cache {})",
            self.params.steps,
            context.training_data.len(),
            folder.display()
        ));
        let start = Instant::now();
        let (variables, net) = self.train(
            context.training_data,
            context.device,
            context.seed,
            &mut *context.log,
        )?;
        let train_seconds = start.elapsed().as_secs_f64();
        let mut trained = self.finish(net, &variables, context.device, f64::NAN);
        trained.held_out_accuracy = trained.accuracy(context.held_out)?;
        (context.log)(&format!(
            "classifier: held-out accuracy {:.4} on {} items (trained in {train_seconds:.1} s)",
            trained.held_out_accuracy,
            context.held_out.len()
        ));
        let info = CacheInfo {
            held_out_accuracy: trained.held_out_accuracy,
            train_seconds,
            params: self.params.clone(),
        };
        Self::save(&folder, &variables, &info)?;
        Ok(Box::new(trained))
    }
}

fn build(raw: &RawParams, context: &FeaturesContext) -> BuildResult<dyn FeatureExtractor> {
    let params = ClassifierParams::from_raw(raw)?;
    if context.classes == 0 {
        return Err(raw.invalid(
            "kind",
            "`classifier` trains on the data's labels, and this dataset has none",
            "use labelled data (e.g. `data: shapes`) or `features: raw`",
        ));
    }
    let &[c, h, w] = context.shape else {
        return Err(raw.invalid("kind", format!("`classifier` takes images of shape [C, H, W], and the data's items have shape {:?}", context.shape), "use image data (e.g. `data: shapes`) or `features: raw`"));
    };
    for (key, value) in [
        ("steps", params.steps),
        ("batch_size", params.batch_size),
        ("features", params.features),
        ("width", params.width),
    ] {
        if value == 0 {
            return Err(raw.invalid(
                key,
                "must be at least 1",
                format!("set e.g. `{key}: {}`", field_default(key)),
            ));
        }
    }
    if !(params.lr > 0.0 && params.lr.is_finite()) {
        return Err(raw.invalid(
            "lr",
            format!("must be positive, not {}", params.lr),
            "set e.g. `lr: 0.005`",
        ));
    }
    let classifier = Classifier {
        params: params.clone(),
        shape: [c, h, w],
        classes: context.classes,
    };
    Ok(Built::new(Box::new(classifier), &params))
}

/// A field's default, for fixes.
fn field_default(key: &str) -> String {
    ClassifierParams::docs()
        .into_iter()
        .find(|d| d.name == key)
        .map(|d| d.default)
        .unwrap_or_default()
}

inventory::submit! {
    Plugin {
        name: "classifier",
        about: "a small CNN trained on the data's labels (cached); features = its penultimate layer",
        params: ClassifierParams::docs,
        build: Builder::Features(build),
    }
}
