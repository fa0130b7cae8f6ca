//! The one training loop every trained thing goes through (diffusion models and what the
//! stages and plugins train): Adam over the trainee's variables in name order, the
//! weights' moving average, the loss records, a snapshot every `snapshot_every` steps and on
//! a stop request, resuming from a snapshot, and the kill point `train.step`. What a step
//! computes is the caller's: a closure draws its batch from the run's random stream and
//! returns the loss to minimise with what to record of it.

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use super::records::Records;
use super::snapshot::{Progress, Snapshot};
use super::TrainError;
use crate::network::Network;
use crate::optim::{sorted_vars, Adam, AdamParams, Ema};
use crate::rng::{Rng, RngState};

/// What is trained: its variables, and the streams and modes of its own that a snapshot
/// must carry (a network's dropout).
pub trait Trainee {
    fn variables(&self) -> &VarMap;

    /// Switches layers that act differently in training (dropout).
    fn set_training(&self, _training: bool) {}

    fn random_state(&self) -> Vec<RngState> {
        Vec::new()
    }

    fn restore_random_state(&self, states: &[RngState]) -> Result<(), String> {
        match states.is_empty() {
            true => Ok(()),
            false => Err("the snapshot has random streams this trainee does not".into()),
        }
    }
}

/// Plain variables: nothing but weights to train.
impl Trainee for VarMap {
    fn variables(&self) -> &VarMap {
        self
    }
}

/// A network, with its dropout streams and training mode.
pub struct NetworkTrainee<'a>(pub &'a dyn Network);

impl Trainee for NetworkTrainee<'_> {
    fn variables(&self) -> &VarMap {
        self.0.variables()
    }

    fn set_training(&self, training: bool) {
        self.0.set_training(training)
    }

    fn random_state(&self) -> Vec<RngState> {
        self.0.random_state()
    }

    fn restore_random_state(&self, states: &[RngState]) -> Result<(), String> {
        self.0.restore_random_state(states)
    }
}

/// One loss record as the loop reports it: progress shows the loss, TensorBoard every
/// figure.
#[derive(Debug, Clone, Copy)]
pub struct Logged<'r> {
    pub step: usize,
    pub steps: usize,
    /// The record's loss (the mean since the previous record).
    pub loss: f64,
    /// Its parts by name: each noise level's loss, or each component of a scalar loss.
    pub parts: &'r [(String, f64)],
    pub lr: f64,
    /// The decay the weights' moving average used at this step (0: no average).
    pub ema_decay: f64,
    /// Optimiser steps per second since the previous record.
    pub steps_per_second: f64,
}

impl Logged<'_> {
    /// The record's figures as TensorBoard tags under `section` (`train/loss`, `train/lr`,
    /// `train/level_loss/sigma_0.1000`, …); the moving average's decay only when there is one.
    pub fn figures(&self, section: &str) -> Vec<(String, f64)> {
        let mut figures = vec![
            ("loss", self.loss),
            ("lr", self.lr),
            ("steps_per_second", self.steps_per_second),
        ];
        if self.ema_decay > 0.0 {
            figures.push(("ema_decay", self.ema_decay));
        }
        figures
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .chain(self.parts.iter().cloned())
            .map(|(name, value)| (format!("{section}/{name}"), value))
            .collect()
    }
}

/// Progress callback: hears every loss record.
pub type OnStep<'a> = &'a mut dyn FnMut(&Logged);

/// Receives each snapshot (to save it).
pub type OnSnapshot<'a, S> = Box<dyn FnMut(&Snapshot<S>) -> Result<(), String> + 'a>;

/// How a training run reports progress, saves snapshots and is stopped.
pub struct Hooks<'a, S = super::records::LevelState> {
    /// Called at every loss record with (step, steps, mean loss since the previous record).
    pub on_log: OnStep<'a>,
    /// Steps between snapshots handed to `on_snapshot` (0: none, except when stopping).
    pub snapshot_every: usize,
    pub on_snapshot: OnSnapshot<'a, S>,
    /// Polled after every step; when it says yes, training saves a snapshot and returns
    /// [`TrainError::Interrupted`].
    pub stop_requested: &'a dyn Fn() -> bool,
}

impl<'a, S> Hooks<'a, S> {
    /// Progress to `on_log` only: no snapshots, never stopped.
    pub fn quiet(on_log: OnStep<'a>) -> Self {
        Hooks {
            on_log,
            snapshot_every: 0,
            on_snapshot: Box::new(|_| Ok(())),
            stop_requested: &|| false,
        }
    }
}

/// The shape of a run: its length, record interval, optimiser and average.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub steps: usize,
    /// Steps between loss records.
    pub log_every: usize,
    pub adam: AdamParams,
    /// Decay of the weights' moving average, which the trainee holds at the end (0: none).
    pub ema_decay: f64,
}

/// One step's loss: what to minimise and what to record.
pub type StepLoss<R> = Result<(Tensor, <R as Records>::Step), TrainError>;

/// A run in the making: plan, trainee, its random stream, its records and how divergence
/// is reported (from the step and the loss).
pub struct Fit<'a, R: Records> {
    pub plan: Plan,
    pub trainee: &'a dyn Trainee,
    pub rng: Rng,
    pub records: R,
    pub diverged: &'a dyn Fn(usize, f64) -> TrainError,
}

/// Runs `fit` to its last step (or from `resume`'s), calling `step_loss` for each step's
/// loss; returns the records and the training seconds (including those before `resume`).
pub fn run<R: Records>(
    mut fit: Fit<R>,
    resume: Option<Snapshot<R::State>>,
    mut hooks: Hooks<R::State>,
    step_loss: &mut dyn FnMut(usize, &mut Rng) -> StepLoss<R>,
) -> Result<(R, f64), TrainError> {
    let start = Instant::now();
    let mut optimised = Optimised::new(fit.trainee, &fit.plan)?;
    let (first_step, seconds_before) = match resume {
        Some(snapshot) => optimised.restore(&mut fit, snapshot)?,
        None => (1, 0.0),
    };
    let seconds = || seconds_before + start.elapsed().as_secs_f64();
    fit.trainee.set_training(true);
    let outcome = take_steps(
        &mut fit,
        &mut optimised,
        (first_step, &mut hooks),
        step_loss,
        &seconds,
    );
    fit.trainee.set_training(false);
    outcome?;
    optimised.ema.copy_into(&optimised.vars)?;
    Ok((fit.records, seconds()))
}

/// Steps `first_step..=steps`: loss, update, records, the kill point, snapshots and the
/// stop request.
fn take_steps<R: Records>(
    fit: &mut Fit<R>,
    optimised: &mut Optimised,
    (first_step, hooks): (usize, &mut Hooks<R::State>),
    step_loss: &mut dyn FnMut(usize, &mut Rng) -> StepLoss<R>,
    seconds: &dyn Fn() -> f64,
) -> Result<(), TrainError> {
    let steps = fit.plan.steps;
    let mut since_record = (first_step - 1, Instant::now());
    for step in first_step..=steps {
        let (loss, recorded) = step_loss(step, &mut fit.rng)?;
        optimised.adam.backward_step(&loss)?;
        // Kept on the device and read once per record (no per-step copy to the host).
        fit.records.push(step, recorded);
        optimised.ema.update(&optimised.vars, step)?;

        let stopping = step < steps && (hooks.stop_requested)();
        let snapshot_due = stopping
            || (hooks.snapshot_every > 0 && step % hooks.snapshot_every == 0 && step < steps);
        let record_due = step % fit.plan.log_every == 0 || step == steps;
        if record_due || snapshot_due {
            if let Some((step, loss)) = fit.records.settle()? {
                return Err((fit.diverged)(step, loss));
            }
        }
        if record_due {
            let record = fit.records.record(step);
            let elapsed = since_record.1.elapsed().as_secs_f64();
            (hooks.on_log)(&Logged {
                step,
                steps,
                loss: record.loss,
                parts: &record.parts,
                lr: fit.plan.adam.lr,
                ema_decay: optimised.ema.decay_at(step),
                steps_per_second: (step - since_record.0) as f64 / elapsed.max(1e-9),
            });
            since_record = (step, Instant::now());
        }
        crate::crash::point("train.step");
        if snapshot_due {
            let frozen = optimised.freeze(step, fit, seconds())?;
            (hooks.on_snapshot)(&frozen)
                .map_err(|message| TrainError::Snapshot { step, message })?;
            if stopping {
                return Err(TrainError::Interrupted { step, steps });
            }
        }
    }
    Ok(())
}

/// The trainee's variables in name order with their optimiser and moving average.
struct Optimised {
    vars: Vec<Var>,
    adam: Adam,
    ema: Ema,
}

impl Optimised {
    fn new(trainee: &dyn Trainee, plan: &Plan) -> Result<Self, TrainError> {
        let vars: Vec<Var> = sorted_vars(trainee.variables())
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        Ok(Optimised {
            adam: Adam::new(vars.clone(), plan.adam)?,
            ema: Ema::new(&vars, plan.ema_decay)?,
            vars,
        })
    }

    /// Puts the run back where `snapshot` left it: weights, optimiser, average, random
    /// streams and records. Returns the first step to take and the seconds already spent.
    fn restore<R: Records>(
        &mut self,
        fit: &mut Fit<R>,
        snapshot: Snapshot<R::State>,
    ) -> Result<(usize, f64), TrainError> {
        let progress = snapshot.progress;
        for (var, value) in self.vars.iter().zip(&snapshot.weights) {
            var.set(value)?;
        }
        self.adam
            .restore(snapshot.adam)
            .map_err(TrainError::Resume)?;
        self.ema.restore(&snapshot.ema)?;
        fit.rng = Rng::from_state(&progress.rng).map_err(TrainError::Resume)?;
        fit.trainee
            .restore_random_state(&progress.network_rngs)
            .map_err(TrainError::Resume)?;
        fit.records.restore(progress.records);
        Ok((progress.step + 1, progress.seconds))
    }

    /// The run after `step`, to resume from.
    fn freeze<R: Records>(
        &self,
        step: usize,
        fit: &Fit<R>,
        seconds: f64,
    ) -> Result<Snapshot<R::State>, TrainError> {
        Ok(Snapshot {
            progress: Progress {
                step,
                adam_steps: self.adam.state().steps,
                rng: fit.rng.state(),
                network_rngs: fit.trainee.random_state(),
                records: fit.records.state(),
                seconds,
            },
            // Copies: the weights and their average are updated in place after this.
            weights: self
                .vars
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect::<Result<_, _>>()?,
            adam: self.adam.state(),
            ema: self.ema.copies()?,
        })
    }
}
