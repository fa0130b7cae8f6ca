//! Adam (Kingma & Ba 2015) whose moments can be saved and restored. candle-nn's `AdamW`
//! keeps its state private, so a checkpoint could not resume it; this one does the same
//! arithmetic in the same order (no weight decay), so results match it bit for bit. On the CPU
//! the moments and the variable are updated in place (`super::inplace`), one pass each, with
//! the same float operations; elsewhere by tensor arithmetic.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::inplace::{self, AdamUpdate, Average};

/// Adam's hyper-parameters (PyTorch's defaults besides the learning rate).
#[derive(Debug, Clone, Copy)]
pub struct AdamParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamParams {
    pub fn with_lr(lr: f64) -> Self {
        AdamParams {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The optimiser over a fixed list of variables.
pub struct Adam {
    vars: Vec<Var>,
    first_moment: Vec<Tensor>,
    second_moment: Vec<Tensor>,
    steps: usize,
    params: AdamParams,
}

/// What Adam carries from one step to the next, in the variables' order.
pub struct AdamState {
    pub steps: usize,
    pub first_moment: Vec<Tensor>,
    pub second_moment: Vec<Tensor>,
}

impl Adam {
    pub fn new(vars: Vec<Var>, params: AdamParams) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Adam {
            first_moment: vars.iter().map(zeros).collect::<Result<_>>()?,
            second_moment: vars.iter().map(zeros).collect::<Result<_>>()?,
            vars,
            steps: 0,
            params,
        })
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let AdamParams {
            lr,
            beta1,
            beta2,
            eps,
        } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(self.steps as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(self.steps as i32));
        for ((var, m), v) in self
            .vars
            .iter()
            .zip(self.first_moment.iter_mut())
            .zip(self.second_moment.iter_mut())
        {
            let Some(g) = grads.get(var) else { continue };
            if inplace::supported(&[var.as_tensor(), m, v, g]) {
                m.inplace_op2(
                    g,
                    &Average {
                        decay: beta1,
                        square: false,
                    },
                )?;
                v.inplace_op2(
                    g,
                    &Average {
                        decay: beta2,
                        square: true,
                    },
                )?;
                let step = AdamUpdate {
                    lr,
                    eps,
                    scale_m,
                    scale_v,
                };
                var.as_tensor().inplace_op3(m, v, &step)?;
                continue;
            }
            let next_m = ((&*m * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((&*v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            var.set(&(var.as_tensor() - (update * lr)?)?)?;
            // Detached: a gradient can carry the op graph of the forward pass (a variable's
            // gradient computed from activations), and the moments would then hold every
            // step's graph, growing by the activations' size each step.
            *m = next_m.detach();
            *v = next_v.detach();
        }
        Ok(())
    }

    /// A copy of the moments (not sharing their storage, which steps update in place) and the
    /// step count.
    pub fn state(&self) -> AdamState {
        let copy = |moments: &[Tensor]| moments.iter().map(|t| t.copy()).collect::<Result<_>>();
        AdamState {
            steps: self.steps,
            first_moment: copy(&self.first_moment).expect("a copy of a moment"),
            second_moment: copy(&self.second_moment).expect("a copy of a moment"),
        }
    }

    /// Continues from `state`, checking that it fits these variables.
    pub fn restore(&mut self, state: AdamState) -> std::result::Result<(), String> {
        let fits = |moments: &[Tensor]| {
            moments.len() == self.vars.len()
                && moments
                    .iter()
                    .zip(&self.vars)
                    .all(|(m, v)| m.shape() == v.shape())
        };
        if !fits(&state.first_moment) || !fits(&state.second_moment) {
            return Err("the optimiser state does not fit the network's variables".into());
        }
        // Copies, contiguous: steps update them in place.
        let copy = |moments: Vec<Tensor>| -> std::result::Result<Vec<Tensor>, String> {
            moments
                .iter()
                .map(|t| t.detach().copy())
                .collect::<Result<_>>()
                .map_err(|e| e.to_string())
        };
        self.steps = state.steps;
        self.first_moment = copy(state.first_moment)?;
        self.second_moment = copy(state.second_moment)?;
        Ok(())
    }
}
