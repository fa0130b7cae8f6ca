//! The loss records of a training run: what each step leaves on the device until the next
//! record reads it in one copy, the running sums since the last record, and the history.
//! Two kinds: per noise level (for losses over noise levels, as denoising score matching's)
//! and named scalars (a reconstruction, a cross-entropy).

use candle_core::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::History;

/// The records a training run keeps, as the loop sees them.
pub trait Records {
    /// What one step leaves to record (its losses, still on the device).
    type Step;
    /// What a snapshot saves of the records.
    type State: Clone + Serialize + DeserializeOwned;

    fn push(&mut self, step: usize, losses: Self::Step);

    /// Reads the pending steps into the running sums; the first step whose loss diverged
    /// (not finite, or beyond [`Scale`]'s bound), with that loss, if any.
    fn settle(&mut self) -> candle_core::Result<Option<(usize, f64)>>;

    /// Closes a record at `step` (after [`Records::settle`]): the value progress shows and
    /// its parts by name.
    fn record(&mut self, step: usize) -> Record;

    fn state(&self) -> Self::State;

    fn restore(&mut self, state: Self::State);
}

/// One closed record: the loss progress shows, and its parts by name (the loss of each
/// noise level drawn since the previous record, or each component of a scalar loss), as
/// TensorBoard tags under the run's section.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub loss: f64,
    pub parts: Vec<(String, f64)>,
}

/// The run's loss scale: a loss more than `FACTOR` times the first step's (the loss of the
/// initial weights, before any update, a property of the model and the data) has diverged,
/// though still finite — a learning rate far too high drives a squared error to 1e16 long
/// before it overflows. Kept in the records' state, so a resumed run keeps its reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scale {
    first: Option<f64>,
}

impl Scale {
    /// How far above the first step's loss a loss may go.
    pub const FACTOR: f64 = 1e6;
    /// The least reference, so that a first loss of about zero does not make every later
    /// loss a divergence.
    const FLOOR: f64 = 1e-6;

    /// Whether `loss` diverged: not finite, or beyond the bound (the first loss seen sets it).
    pub fn diverged(&mut self, loss: f64) -> bool {
        if !loss.is_finite() {
            return true;
        }
        match self.first {
            None => {
                self.first = Some(loss.abs());
                false
            }
            Some(first) => loss.abs() > Self::FACTOR * first.max(Self::FLOOR),
        }
    }
}

/// The tag of one noise level's loss (`level_loss/sigma_0.0100`).
pub fn level_tag(sigma: f64) -> String {
    format!("level_loss/sigma_{sigma:.4}")
}

/// Per-level records of a denoising loss: the weighted loss of each step and the normalised
/// loss of each example with the level it was drawn at.
pub struct LevelRecords {
    pending: PendingLosses,
    state: LevelState,
    /// Steps after this one count toward the final per-level loss.
    tail_start: usize,
}

/// What a snapshot keeps of [`LevelRecords`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelState {
    window: LossWindow,
    tail: LossWindow,
    history: History,
    #[serde(default)]
    scale: Scale,
}

/// One step of a denoising loss: (weighted loss, normalised loss per example, (sigma, level)
/// per example).
pub type LevelStep = (Tensor, Tensor, Vec<(f64, usize)>);

impl LevelRecords {
    /// Records over the loss levels `levels` of a run of `steps` steps.
    pub fn new(levels: Vec<f64>, steps: usize) -> Self {
        LevelRecords {
            pending: PendingLosses::default(),
            state: LevelState {
                window: LossWindow::new(levels.len()),
                tail: LossWindow::new(levels.len()),
                history: History {
                    levels,
                    ..History::default()
                },
                scale: Scale::default(),
            },
            tail_start: steps - steps / 4,
        }
    }

    /// The history, with the per-level loss of the last quarter of training.
    pub fn finish(mut self, seconds: f64) -> History {
        self.state.history.final_level_loss = self.state.tail.take().1;
        self.state.history.seconds = seconds;
        self.state.history
    }
}

impl Records for LevelRecords {
    type Step = LevelStep;
    type State = LevelState;

    fn push(&mut self, step: usize, (loss, per_example, draws): LevelStep) {
        self.pending.push(step, loss, per_example, draws);
    }

    fn settle(&mut self) -> candle_core::Result<Option<(usize, f64)>> {
        let state = &mut self.state;
        let windows = (&mut state.window, &mut state.tail);
        self.pending
            .drain_into(windows, self.tail_start, &mut state.scale)
    }

    fn record(&mut self, step: usize) -> Record {
        let (mean, per_level) = self.state.window.take();
        let history = &mut self.state.history;
        let parts = history
            .levels
            .iter()
            .zip(&per_level)
            .filter(|(_, loss)| loss.is_finite())
            .map(|(sigma, loss)| (level_tag(*sigma), *loss))
            .collect();
        history.steps.push(step);
        history.loss.push(mean);
        history.level_loss.push(per_level);
        Record { loss: mean, parts }
    }

    fn state(&self) -> LevelState {
        self.state.clone()
    }

    fn restore(&mut self, state: LevelState) {
        self.state = state;
    }
}

/// Records of named scalar losses (a reconstruction and a KL term, a cross-entropy): each
/// record is the mean of every component since the previous one.
pub struct ScalarRecords {
    pending: Vec<(usize, Vec<Tensor>)>,
    state: ScalarState,
    /// Each component's name (its TensorBoard tag).
    names: Vec<String>,
}

/// What a snapshot keeps of [`ScalarRecords`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScalarState {
    /// Per component, the sum since the last record, and how many steps it holds.
    sums: Vec<f64>,
    count: usize,
    /// Steps at which a record was closed, and each record's mean per component.
    pub steps: Vec<usize>,
    pub means: Vec<Vec<f64>>,
    #[serde(default)]
    scale: Scale,
}

impl ScalarRecords {
    /// Records of one scalar a step per name (`["mse", "kl"]`); the first is what progress
    /// shows.
    pub fn new(names: &[&str]) -> Self {
        ScalarRecords {
            pending: Vec::new(),
            state: ScalarState {
                sums: vec![0.0; names.len()],
                ..ScalarState::default()
            },
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// Every record: its step and the mean of each component.
    pub fn finish(self) -> ScalarState {
        self.state
    }
}

impl Records for ScalarRecords {
    /// Each component a scalar tensor.
    type Step = Vec<Tensor>;
    type State = ScalarState;

    fn push(&mut self, step: usize, losses: Vec<Tensor>) {
        self.pending.push((step, losses));
    }

    fn settle(&mut self) -> candle_core::Result<Option<(usize, f64)>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(&mut self.pending);
        let flat: Vec<Tensor> = pending.iter().flat_map(|(_, l)| l.clone()).collect();
        let values = Tensor::stack(&flat, 0)?.to_vec1::<f32>()?;
        let width = self.state.sums.len();
        for ((step, _), row) in pending.iter().zip(values.chunks(width)) {
            if let Some(bad) = row.iter().find(|v| !v.is_finite()) {
                return Ok(Some((*step, *bad as f64)));
            }
            // The components' magnitudes together: any of them may be the one that runs away.
            let magnitude: f64 = row.iter().map(|v| (*v as f64).abs()).sum();
            if self.state.scale.diverged(magnitude) {
                return Ok(Some((*step, magnitude)));
            }
            for (sum, value) in self.state.sums.iter_mut().zip(row) {
                *sum += *value as f64;
            }
            self.state.count += 1;
        }
        Ok(None)
    }

    fn record(&mut self, step: usize) -> Record {
        let count = self.state.count.max(1) as f64;
        let means: Vec<f64> = self.state.sums.iter().map(|s| s / count).collect();
        self.state.sums.iter_mut().for_each(|s| *s = 0.0);
        self.state.count = 0;
        self.state.steps.push(step);
        let loss = means.first().copied().unwrap_or(f64::NAN);
        let parts = self
            .names
            .iter()
            .cloned()
            .zip(means.iter().copied())
            .collect();
        self.state.means.push(means);
        Record { loss, parts }
    }

    fn state(&self) -> ScalarState {
        self.state.clone()
    }

    fn restore(&mut self, state: ScalarState) {
        self.state = state;
    }
}

/// The losses of the steps since the last record, still on the device.
#[derive(Default)]
struct PendingLosses {
    steps: Vec<usize>,
    /// Per step: the weighted loss (a scalar) and the normalised loss of each example.
    losses: Vec<Tensor>,
    per_example: Vec<Tensor>,
    draws: Vec<Vec<(f64, usize)>>,
}

impl PendingLosses {
    fn push(&mut self, step: usize, loss: Tensor, per_example: Tensor, draws: Vec<(f64, usize)>) {
        self.steps.push(step);
        self.losses.push(loss);
        self.per_example.push(per_example);
        self.draws.push(draws);
    }

    /// Copies the pending losses to the host in one transfer each and adds them, step by
    /// step, to `window` (and to `tail` past `tail_start`). Stops at the first step whose
    /// loss diverged (`scale`) and returns it with that loss.
    fn drain_into(
        &mut self,
        (window, tail): (&mut LossWindow, &mut LossWindow),
        tail_start: usize,
        scale: &mut Scale,
    ) -> candle_core::Result<Option<(usize, f64)>> {
        if self.steps.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(self);
        let losses = Tensor::stack(&pending.losses, 0)?.to_vec1::<f32>()?;
        let per_example = Tensor::stack(&pending.per_example, 0)?.to_vec2::<f32>()?;
        for (i, step) in pending.steps.iter().enumerate() {
            let loss = losses[i] as f64;
            if scale.diverged(loss) {
                return Ok(Some((*step, loss)));
            }
            window.add(loss, &pending.draws[i], &per_example[i]);
            if *step > tail_start {
                tail.add(loss, &pending.draws[i], &per_example[i]);
            }
        }
        Ok(None)
    }
}

/// Running sums of the loss, overall and per level.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LossWindow {
    total: f64,
    count: usize,
    level_sum: Vec<f64>,
    level_count: Vec<usize>,
}

impl LossWindow {
    fn new(levels: usize) -> Self {
        LossWindow {
            total: 0.0,
            count: 0,
            level_sum: vec![0.0; levels],
            level_count: vec![0; levels],
        }
    }

    fn add(&mut self, loss: f64, draws: &[(f64, usize)], per_example: &[f32]) {
        self.total += loss;
        self.count += 1;
        for ((_, level), value) in draws.iter().zip(per_example) {
            if let Some(sum) = self.level_sum.get_mut(*level) {
                *sum += *value as f64;
                self.level_count[*level] += 1;
            }
        }
    }

    fn take(&mut self) -> (f64, Vec<f64>) {
        let mean = self.total / self.count.max(1) as f64;
        let per_level = self
            .level_sum
            .iter()
            .zip(&self.level_count)
            .map(|(s, c)| if *c == 0 { f64::NAN } else { s / *c as f64 })
            .collect();
        *self = LossWindow::new(self.level_sum.len());
        (mean, per_level)
    }
}

#[cfg(test)]
mod tests {
    use super::Scale;

    #[test]
    fn a_loss_a_million_times_the_first_diverges_and_a_non_finite_one_at_once() {
        let mut scale = Scale::default();
        assert!(!scale.diverged(2.0), "the first loss sets the scale");
        assert!(!scale.diverged(2.0e6 * 0.999));
        assert!(scale.diverged(2.0e6 * 1.001));
        assert!(scale.diverged(f64::NAN));
        let mut from_nothing = Scale::default();
        assert!(
            from_nothing.diverged(f64::INFINITY),
            "even as the first loss"
        );
        let mut near_zero = Scale::default();
        assert!(!near_zero.diverged(0.0));
        assert!(
            !near_zero.diverged(0.5),
            "a first loss of zero is floored at 1e-6"
        );
        assert!(near_zero.diverged(1.5));
    }
}
