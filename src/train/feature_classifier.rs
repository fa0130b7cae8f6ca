//! Training the `classifier` feature extractor's network (`features::classifier`) through
//! the one loop, and keeping it in the artifact store: loaded from its complete folder in
//! the features cache, else trained (from the snapshot beside the folder when a run was
//! killed, with a snapshot every `checkpoint_every` steps and Ctrl-C as the stop request),
//! measured on the held-out items and put in place. The loop is this layer's, the network,
//! its loss and its folder's files are `features`'s, so the feature plugin calls here.

use std::cell::RefCell;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::checkpoint::Checkpoints;
use super::records::{ScalarRecords, ScalarState};
use super::resumable::{self, Fit, Hooks, Logged, Plan};
use super::{Snapshot, TrainError};
use crate::artifact::{Artifact, Obtained, OnLiveRecord, PlaceError};
use crate::dataset::Samples;
use crate::features::classifier::ClassifierNet;
use crate::features::trained::{CacheInfo, FeatureClassifier, TrainedClassifier, FILES};
use crate::features::{FeatureMap, PrepareContext};
use crate::optim::AdamParams;

/// Loss records per run: the mean cross-entropy over each tenth of training.
const RECORDS: usize = 10;

/// Trains `net` (a fresh network of `classifier`) on the labelled `training` items with
/// batches drawn from `seed`, continuing from `resume` when given; returns the training
/// seconds.
pub fn train_net(
    classifier: &FeatureClassifier,
    net: &ClassifierNet,
    training: &Samples,
    (seed, device): (u64, &Device),
    resume: Option<Snapshot<ScalarState>>,
    hooks: Hooks<ScalarState>,
) -> Result<f64, TrainError> {
    let Some(labels) = training.labels().filter(|_| !training.is_empty()) else {
        return Err(candle_core::Error::msg("the classifier needs labelled training items").into());
    };
    let spec = &classifier.spec;
    let [c, h, w] = classifier.shape;
    let images = training
        .to_tensor(device)?
        .reshape((training.len(), c, h, w))?;
    let labels = Tensor::from_vec(labels.to_vec(), training.len(), device)?;
    let diverged = |step, loss| TrainError::Diverged {
        step,
        loss,
        what: "the feature classifier's cross-entropy".into(),
        fix: format!("lower `features.lr` (now {})", spec.lr),
    };
    let fit = Fit {
        plan: Plan {
            steps: spec.steps,
            log_every: (spec.steps / RECORDS).max(1),
            adam: AdamParams::with_lr(spec.lr),
            ema_decay: 0.0,
        },
        trainee: net.variables(),
        rng: FeatureClassifier::batch_rng(seed),
        records: ScalarRecords::new(&["cross_entropy"]),
        diverged: &diverged,
    };
    let (_, seconds) = resumable::run(fit, resume, hooks, &mut |_, rng| {
        let loss = net.batch_loss(&images, &labels, spec.batch_size, rng)?;
        let recorded = loss.detach();
        Ok((loss, vec![recorded]))
    })?;
    Ok(seconds)
}

/// A failure to prepare the classifier, as the extractor reports it.
struct Failure(String);

impl From<PlaceError> for Failure {
    fn from(failure: PlaceError) -> Self {
        Failure(format!(
            "classifier: cannot write the cache file {failure}. Fix: check that the results \
             folder is writable"
        ))
    }
}

/// The trained feature map with what its cache folder records.
type Made = (TrainedClassifier, CacheInfo);

/// The classifier's feature map: loaded from its folder in `context.cache`, or trained
/// (resuming from its snapshot), measured on the held-out items and saved there.
pub fn prepare(
    classifier: &FeatureClassifier,
    context: &mut PrepareContext,
) -> Result<Box<dyn FeatureMap>, String> {
    if context.held_out.labels().is_none() {
        return Err(
            "classifier: the held-out items have no labels, so its accuracy cannot be \
                    measured. Fix: use labelled data (e.g. `data: shapes`) or `features: raw`"
                .into(),
        );
    }
    let (seed, device) = (context.seed, context.device);
    let name = classifier.folder_name(context.training_data, context.held_out, seed);
    let folder = context.cache.join(name);
    let artifact = Artifact::new(&folder, &FILES);
    // Loading, training and the outcome all report to the one log.
    let log = RefCell::new(&mut *context.log);
    let say = |line: &str| (*log.borrow_mut())(line);
    let reuse = |dir: &Path| match classifier.load(dir, device, seed) {
        Ok((net, info)) => {
            let map = classifier.feature_map(net, device, info.held_out_accuracy);
            Ok(Some((map, info)))
        }
        Err(problem) => {
            say(&format!(
                "classifier: the cache {} is unreadable ({problem}); training again",
                dir.display()
            ));
            Ok(None)
        }
    };
    let make = || {
        let mut log = log.borrow_mut();
        let data = (context.training_data, context.held_out);
        let every = context.checkpoint_every;
        train_and_measure(
            classifier,
            &artifact,
            data,
            (seed, device, every),
            (&mut **log, &mut *context.live),
        )
    };
    let write = |(map, info): &Made, partial: &Path| {
        FeatureClassifier::write(partial, map.net(), info).map_err(Failure)
    };
    let obtained = artifact.obtain(reuse, make, write).map_err(|f| f.0)?;
    let (map, _) = match obtained {
        Obtained::Loaded(loaded) => {
            say(&format!(
                "classifier: loaded from cache {} (held-out accuracy {:.4})",
                folder.display(),
                loaded.1.held_out_accuracy
            ));
            loaded
        }
        Obtained::Made(made) => made,
    };
    Ok(Box::new(map))
}

/// Trains a fresh network from the artifact's snapshot when one fits (a snapshot every
/// `every` steps) and measures its held-out accuracy.
fn train_and_measure(
    classifier: &FeatureClassifier,
    artifact: &Artifact,
    (training, held_out): (&Samples, &Samples),
    (seed, device, every): (u64, &Device, usize),
    (log, live): (&mut dyn FnMut(&str), OnLiveRecord),
) -> Result<Made, Failure> {
    let artifact_name = artifact.name();
    if training.labels().filter(|_| !training.is_empty()).is_none() {
        return Err(Failure(
            "classifier: no labelled training items. Fix: use labelled data (e.g. `data: \
             shapes`) or `features: raw`"
                .into(),
        ));
    }
    let failed = |e: &dyn std::fmt::Display| Failure(format!("classifier: training failed: {e}"));
    let net = classifier.new_net(device, seed).map_err(|e| failed(&e))?;
    let config = serde_json::json!({
        "cache": artifact.folder.file_name().map(|n| n.to_string_lossy()),
        "params": classifier.spec,
    });
    let checkpoints = Checkpoints::new(
        artifact.checkpoint(),
        net.variables(),
        config.to_string(),
        every,
    );
    let steps = classifier.spec.steps;
    log(&format!(
        "classifier: training {steps} steps on {} items (cache {})",
        training.len(),
        artifact.folder.display()
    ));
    let resume = checkpoints.resume(device, &mut |found| match found {
        Ok(snapshot) => log(&format!(
            "classifier: resuming from its checkpoint at step {} of {steps}",
            snapshot.progress.step
        )),
        Err(message) => log(&format!(
            "classifier: ignoring the checkpoint {} ({message}); training from step 0",
            checkpoints.path.display()
        )),
    });
    let mut progress =
        |logged: &Logged| super::report_classifier(logged, &artifact_name, (&mut *log, &mut *live));
    let hooks = checkpoints.hooks(&mut progress);
    let outcome = train_net(classifier, &net, training, (seed, device), resume, hooks);
    let train_seconds = outcome.map_err(|e| match e {
        TrainError::Interrupted { step, steps } => Failure(format!(
            "classifier: training stopped after step {step} of {steps}; its checkpoint is {}",
            checkpoints.path.display()
        )),
        e => failed(&e),
    })?;
    let mut map = classifier.feature_map(net, device, f64::NAN);
    let accuracy = map.accuracy(held_out).map_err(Failure)?;
    map.set_held_out_accuracy(accuracy);
    log(&format!(
        "classifier: held-out accuracy {accuracy:.4} on {} items (trained in {train_seconds:.1} s)",
        held_out.len()
    ));
    let info = CacheInfo {
        held_out_accuracy: accuracy,
        train_seconds,
        params: classifier.spec.clone(),
    };
    Ok((map, info))
}
