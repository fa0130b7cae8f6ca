//! Training a guidance classifier (`guidance::noisy`: the `mlp` and `cnn` of classifier
//! guidance) through the one loop, and keeping it in the artifact store: loaded from its
//! complete folder under the sweep's `models/`, else trained (from the snapshot beside the
//! folder when a run was killed, with a snapshot every `checkpoint_every` steps and Ctrl-C
//! as the stop request) and put in place. The loop is this layer's, the network, its loss
//! and its folder's files are `guidance`'s, so the guidance plugin calls here.

use std::cell::RefCell;
use std::path::Path;

use candle_core::Device;

use super::checkpoint::Checkpoints;
use super::records::{ScalarRecords, ScalarState};
use super::resumable::{self, Fit, Hooks, Logged, Plan};
use super::{Snapshot, TrainError};
use crate::artifact::{Artifact, Obtained, OnLiveRecord, PlaceError};
use crate::dataset::Samples;
use crate::guidance::noisy::{self, LossHistory, NoisyNet, Training};
use crate::guidance::trained::{accuracy_line, Info, TrainedClassifier, FILES};
use crate::guidance::{Classifier, GuidancePrepare};
use crate::optim::AdamParams;
use crate::rng::{Rng, Stream};

/// Loss records per run: the mean cross-entropy over each tenth of training.
const RECORDS: usize = 10;

/// Trains `net` on the labelled `data` (continuing from `resume` when given); returns the
/// mean cross-entropy of each tenth of training and the training seconds.
pub fn train_noisy(
    net: &dyn NoisyNet,
    data: &Samples,
    training: &Training,
    device: &Device,
    resume: Option<Snapshot<ScalarState>>,
    hooks: Hooks<ScalarState>,
) -> Result<(LossHistory, f64), TrainError> {
    let diverged = |step, loss| TrainError::Diverged {
        step,
        loss,
        what: "the guidance classifier's cross-entropy".into(),
        fix: "check the training data for non-finite values, or guide with `classifier: oracle` \
              or `cfg`"
            .into(),
    };
    let fit = Fit {
        plan: Plan {
            steps: training.steps,
            log_every: (training.steps / RECORDS).max(1),
            adam: AdamParams::with_lr(training.lr),
            ema_decay: 0.0,
        },
        trainee: net.variables(),
        rng: Rng::new(training.seed, Stream::TrainingNoise),
        records: ScalarRecords::new(&["cross_entropy"]),
        diverged: &diverged,
    };
    let (records, seconds) = resumable::run(fit, resume, hooks, &mut |_, rng| {
        let loss = noisy::batch_loss(net, data, training, device, rng)?;
        let recorded = loss.detach();
        Ok((loss, vec![recorded]))
    })?;
    let state = records.finish();
    let history = state
        .steps
        .into_iter()
        .zip(state.means.iter().map(|m| m[0]));
    Ok((history.collect(), seconds))
}

/// The classifier trained in memory, for a library caller that skipped
/// [`crate::guidance::Guidance::prepare`] (the runner never does).
pub fn train_in_memory(trained: &TrainedClassifier) -> candle_core::Result<Box<dyn Classifier>> {
    let net = trained.fresh()?;
    train_noisy(
        net.as_ref(),
        trained.data(),
        &trained.training,
        trained.device(),
        None,
        Hooks::quiet(&mut |_| {}),
    )
    .map_err(candle_core::Error::msg)?;
    Ok(net)
}

/// A failure to obtain the classifier, as the guidance reports it.
struct Failure(String);

impl From<PlaceError> for Failure {
    fn from(failure: PlaceError) -> Self {
        Failure(format!(
            "cannot write {failure}. Fix: check that the results folder is writable"
        ))
    }
}

/// Loads the classifier from `models/`, or trains and saves it there (resuming from its
/// snapshot), and returns it. Progress goes to `context.log`.
pub fn prepare(
    trained: &TrainedClassifier,
    context: &mut GuidancePrepare,
) -> Result<Box<dyn Classifier>, String> {
    let folder = context.models.join(trained.folder_name());
    let artifact = Artifact::new(&folder, &FILES);
    // Loading, training and the outcome all report to the one log.
    let log = RefCell::new(&mut *context.log);
    let say = |line: &str| (*log.borrow_mut())(line);
    if folder.exists() {
        if let Some(missing) = FILES.iter().find(|f| !folder.join(f).is_file()) {
            say(&format!(
                "classifier: {} is incomplete or unreadable (no {missing}); training it again",
                folder.display()
            ));
        }
    }
    let reuse = |dir: &Path| match trained.load(dir) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(problem) => {
            say(&format!(
                "classifier: {} is incomplete or unreadable ({problem}); training it again",
                dir.display()
            ));
            Ok(None)
        }
    };
    let make = || {
        let mut log = log.borrow_mut();
        let every = context.checkpoint_every;
        train_with_checkpoints(trained, &artifact, every, (&mut **log, &mut *context.live))
    };
    let write = |(net, info): &(Box<dyn NoisyNet>, Info), partial: &Path| {
        trained.write(partial, net.as_ref(), info).map_err(Failure)
    };
    let obtained = artifact
        .obtain(reuse, make, write)
        .map_err(|failure| failure.0)?;
    let (net, _) = match obtained {
        Obtained::Loaded(loaded) => {
            say(&format!(
                "classifier: loaded {} ({})",
                folder.display(),
                accuracy_line(&loaded.1)
            ));
            loaded
        }
        Obtained::Made(made) => {
            say(&format!(
                "classifier: trained in {:.1} s ({})",
                made.1.train_seconds,
                accuracy_line(&made.1)
            ));
            made
        }
    };
    Ok(net)
}

/// Trains a fresh network from the artifact's snapshot when one fits, saving one every
/// `every` steps, and measures it on the held-out items.
fn train_with_checkpoints(
    trained: &TrainedClassifier,
    artifact: &Artifact,
    every: usize,
    (log, live): (&mut dyn FnMut(&str), OnLiveRecord),
) -> Result<(Box<dyn NoisyNet>, Info), Failure> {
    let artifact_name = artifact.name();
    let failed =
        |e: &dyn std::fmt::Display| Failure(format!("training the classifier failed: {e}"));
    let net = trained.fresh().map_err(|e| failed(&e))?;
    let training = &trained.training;
    let checkpoints = Checkpoints::new(
        artifact.checkpoint(),
        net.variables(),
        trained.config().to_string(),
        every,
    );
    let name = trained.folder_name();
    log(&format!(
        "classifier: training `{}` for {} steps of {} on {} items into {}",
        trained.kind(),
        training.steps,
        training.batch_size,
        trained.data().len(),
        artifact.folder.display()
    ));
    let resume = checkpoints.resume(trained.device(), &mut |found| match found {
        Ok(snapshot) => log(&format!(
            "classifier: resuming {name} from its checkpoint at step {} of {}",
            snapshot.progress.step, training.steps
        )),
        Err(message) => log(&format!(
            "classifier: ignoring the checkpoint {} ({message}); training from step 0",
            checkpoints.path.display()
        )),
    });
    let mut progress =
        |logged: &Logged| super::report_classifier(logged, &artifact_name, (&mut *log, &mut *live));
    let outcome = train_noisy(
        net.as_ref(),
        trained.data(),
        training,
        trained.device(),
        resume,
        checkpoints.hooks(&mut progress),
    );
    let (loss, seconds) = outcome.map_err(|e| match e {
        TrainError::Interrupted { step, steps } => Failure(format!(
            "training the classifier {name} stopped after step {step} of {steps}; its checkpoint \
             is {}",
            checkpoints.path.display()
        )),
        e => failed(&e),
    })?;
    let info = trained
        .measure(net.as_ref(), loss, seconds)
        .map_err(|e| failed(&e))?;
    Ok((net, info))
}
