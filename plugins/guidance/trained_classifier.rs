//! A trained noise-conditional classifier for classifier guidance (`mlp` or `cnn`), kept on
//! disk like a model: `models/classifier-<hash>/` holds `model.safetensors` (its config in the
//! metadata), `classifier.yaml` (what the hash covers: the network, its training, the
//! training data and schedule, the device) and `info.json` (training seconds, the loss every
//! tenth of training, accuracy on noised held-out items). A complete folder is loaded; a
//! missing or incomplete one is trained into a partial folder renamed into place, so every
//! trial and later run with the same classifier, data and schedule shares it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use candle_core::Device;
use scorelab::dataset::Samples;
use scorelab::guidance::Classifier;
use scorelab::results::store::{write_json, write_yaml};
use scorelab::results::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use scorelab::guidance::cnn::NoisyCnn;
use scorelab::guidance::mlp::NoisyMlp;
use scorelab::guidance::noisy::{self, LossHistory, NoisedAccuracy, NoisyNet, Training};

/// The network of a trained classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Net {
    Mlp { hidden: usize },
    Cnn { width: usize },
}

/// What `info.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub train_seconds: f64,
    pub loss: LossHistory,
    pub held_out_items: usize,
    pub accuracy: Vec<NoisedAccuracy>,
}

/// Files a finished classifier folder holds.
const FILES: [&str; 3] = ["model.safetensors", "classifier.yaml", "info.json"];

/// Distinguishes partial folders of concurrent trainings in one process.
static PARTIALS: AtomicUsize = AtomicUsize::new(0);

pub struct TrainedClassifier {
    pub net: Net,
    pub classes: usize,
    pub training: Training,
    data: Arc<Samples>,
    held_out: Arc<Samples>,
    device: Device,
    /// What identifies it (hashed into the folder name, written as `classifier.yaml`).
    config: serde_json::Value,
    ready: OnceLock<Box<dyn NoisyNet>>,
}

impl TrainedClassifier {
    /// `training_key` identifies the training data and schedule.
    pub fn new(
        net: Net,
        classes: usize,
        training: Training,
        data: Arc<Samples>,
        held_out: Arc<Samples>,
        device: Device,
        training_key: &str,
    ) -> Self {
        let config = serde_json::json!({
            "network": net,
            "classes": classes,
            "training": training,
            "data_and_schedule": training_key,
            "device": format!("{:?}", device.location()),
        });
        TrainedClassifier {
            net,
            classes,
            training,
            data,
            held_out,
            device,
            config,
            ready: OnceLock::new(),
        }
    }

    /// The folder name: `classifier-` and a hash of its config.
    pub fn folder_name(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"scorelab guidance classifier v1\0");
        hasher.update(self.config.to_string().as_bytes());
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("classifier-{}", &hex[..16])
    }

    fn fresh(&self) -> candle_core::Result<Box<dyn NoisyNet>> {
        let seed = self.training.seed;
        Ok(match self.net {
            Net::Mlp { hidden } => Box::new(NoisyMlp::new(
                &self.data,
                self.classes,
                hidden,
                seed,
                &self.device,
            )?),
            Net::Cnn { width } => Box::new(NoisyCnn::new(
                &self.data,
                self.classes,
                width,
                seed,
                &self.device,
            )?),
        })
    }

    fn train(&self, log: &mut dyn FnMut(&str)) -> Result<(Box<dyn NoisyNet>, Info), String> {
        let run = |log: &mut dyn FnMut(&str)| -> candle_core::Result<(Box<dyn NoisyNet>, Info)> {
            let start = Instant::now();
            let net = self.fresh()?;
            let loss = noisy::train(net.as_ref(), &self.data, &self.training, &self.device, log)?;
            let train_seconds = start.elapsed().as_secs_f64();
            let held_out = self.held_out.head(1000);
            let accuracy = noisy::noised_accuracy(
                net.as_ref(),
                &held_out,
                &noisy::report_levels(self.training.sigma_range),
                self.training.seed,
                &self.device,
            )?;
            let info = Info {
                train_seconds,
                loss,
                held_out_items: held_out.len(),
                accuracy,
            };
            Ok((net, info))
        };
        run(log).map_err(|e| format!("training the classifier failed: {e}"))
    }

    /// The classifier, loaded from `models/` or trained and saved there.
    pub fn prepare(&self, models: &Path, log: &mut dyn FnMut(&str)) -> Result<(), String> {
        if self.ready.get().is_some() {
            return Ok(());
        }
        let folder = models.join(self.folder_name());
        match self.load(&folder) {
            Ok((net, info)) => {
                log(&format!(
                    "classifier: loaded {} ({})",
                    folder.display(),
                    accuracy_line(&info)
                ));
                let _ = self.ready.set(net);
                return Ok(());
            }
            Err(Some(problem)) => log(&format!(
                "classifier: {} is incomplete or unreadable ({problem}); training it again",
                folder.display()
            )),
            Err(None) => {}
        }
        log(&format!(
            "classifier: training `{}` for {} steps of {} on {} items into {}",
            self.config["network"]["kind"].as_str().unwrap_or("?"),
            self.training.steps,
            self.training.batch_size,
            self.data.len(),
            folder.display()
        ));
        let mut progress = |line: &str| log(&format!("classifier: {line}"));
        let (net, info) = self.train(&mut progress)?;
        log(&format!(
            "classifier: trained in {:.1} s ({})",
            info.train_seconds,
            accuracy_line(&info)
        ));
        self.save(&folder, net.as_ref(), &info)?;
        let _ = self.ready.set(net);
        Ok(())
    }

    /// The prepared classifier; one not prepared (a library caller that skipped
    /// [`TrainedClassifier::prepare`]) is trained in memory now.
    pub fn classifier(&self) -> candle_core::Result<&dyn Classifier> {
        if self.ready.get().is_none() {
            let (net, _) = self.train(&mut |_| {}).map_err(candle_core::Error::msg)?;
            let _ = self.ready.set(net);
        }
        let net = self.ready.get().expect("set above");
        Ok(net.as_classifier())
    }

    /// `Err(None)`: no folder; `Err(Some(why))`: one that cannot be used.
    fn load(&self, folder: &Path) -> Result<(Box<dyn NoisyNet>, Info), Option<String>> {
        if !folder.exists() {
            return Err(None);
        }
        if let Some(missing) = FILES.iter().find(|f| !folder.join(f).is_file()) {
            return Err(Some(format!("no {missing}")));
        }
        let info_path = folder.join("info.json");
        let info: Info = fs::read(&info_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", info_path.display()))?;
        let path = folder.join("model.safetensors");
        let tensors: HashMap<_, _> = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                candle_core::safetensors::load_buffer(&bytes, &self.device)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let net = self.fresh().map_err(|e| e.to_string())?;
        scorelab::optim::load_variables(net.variables(), &tensors)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((net, info))
    }

    fn save(&self, folder: &Path, net: &dyn NoisyNet, info: &Info) -> Result<(), String> {
        let error = |path: &Path, e: &dyn std::fmt::Display| {
            format!(
                "cannot write {}: {e}. Fix: check that the results folder is writable",
                path.display()
            )
        };
        let parent = folder.parent().unwrap_or(Path::new("."));
        let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("c");
        let partial: PathBuf = parent.join(format!(
            ".partial-{name}-{}-{}",
            std::process::id(),
            PARTIALS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&partial).map_err(|e| error(&partial, &e))?;
        let metadata = HashMap::from([("config".to_string(), self.config.to_string())]);
        let tensors = scorelab::optim::sorted_vars(net.variables());
        let bytes = safetensors::serialize(
            tensors
                .iter()
                .map(|(name, var)| (name.clone(), var.as_tensor())),
            Some(metadata),
        )
        .map_err(|e| error(&partial.join("model.safetensors"), &e))?;
        write_atomic(&partial.join("model.safetensors"), &bytes)
            .map_err(|e| error(&partial, &e))?;
        write_yaml(&partial.join("classifier.yaml"), &self.config)
            .map_err(|e| error(&partial, &e))?;
        write_json(&partial.join("info.json"), info).map_err(|e| error(&partial, &e))?;
        // A concurrent job may have finished the same classifier (same numbers): keep its.
        if FILES.iter().all(|f| folder.join(f).is_file()) {
            let _ = fs::remove_dir_all(&partial);
            return Ok(());
        }
        let _ = fs::remove_dir_all(folder);
        fs::rename(&partial, folder).map_err(|e| error(folder, &e))
    }
}

/// Accuracy on noised held-out items, for the log.
fn accuracy_line(info: &Info) -> String {
    let levels: Vec<String> = info
        .accuracy
        .iter()
        .map(|a| format!("{:.3} at sigma {}", a.accuracy, short(a.sigma)))
        .collect();
    format!(
        "held-out accuracy {} on {} items",
        levels.join(", "),
        info.held_out_items
    )
}

fn short(x: f64) -> String {
    format!("{x:.3}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}
