//! The loss records of a training run: the running sums since the last record (overall and
//! per noise level), and the steps whose losses are still on the device.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The losses of the steps since the last record, still on the device.
#[derive(Default)]
pub(super) struct PendingLosses {
    steps: Vec<usize>,
    /// Per step: the weighted loss (a scalar) and the normalised loss of each example.
    losses: Vec<Tensor>,
    per_example: Vec<Tensor>,
    draws: Vec<Vec<(f64, usize)>>,
}

impl PendingLosses {
    pub(super) fn push(
        &mut self,
        step: usize,
        loss: Tensor,
        per_example: Tensor,
        draws: Vec<(f64, usize)>,
    ) {
        self.steps.push(step);
        self.losses.push(loss);
        self.per_example.push(per_example);
        self.draws.push(draws);
    }

    /// Copies the pending losses to the host in one transfer each and adds them, step by
    /// step, to `window` (and to `tail` past `tail_start`). Stops at the first step whose
    /// loss is not finite and returns it with that loss.
    pub(super) fn drain_into(
        &mut self,
        window: &mut LossWindow,
        tail: &mut LossWindow,
        tail_start: usize,
    ) -> candle_core::Result<Option<(usize, f64)>> {
        if self.steps.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(self);
        let losses = Tensor::stack(&pending.losses, 0)?.to_vec1::<f32>()?;
        let per_example = Tensor::stack(&pending.per_example, 0)?.to_vec2::<f32>()?;
        for (i, step) in pending.steps.iter().enumerate() {
            let loss = losses[i] as f64;
            if !loss.is_finite() {
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
pub(crate) struct LossWindow {
    total: f64,
    count: usize,
    level_sum: Vec<f64>,
    level_count: Vec<usize>,
}

impl LossWindow {
    pub(super) fn new(levels: usize) -> Self {
        LossWindow {
            total: 0.0,
            count: 0,
            level_sum: vec![0.0; levels],
            level_count: vec![0; levels],
        }
    }

    pub(super) fn add(&mut self, loss: f64, draws: &[(f64, usize)], per_example: &[f32]) {
        self.total += loss;
        self.count += 1;
        for ((_, level), value) in draws.iter().zip(per_example) {
            if let Some(sum) = self.level_sum.get_mut(*level) {
                *sum += *value as f64;
                self.level_count[*level] += 1;
            }
        }
    }

    pub(super) fn take(&mut self) -> (f64, Vec<f64>) {
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
