//! Optimisation shared by everything the engine trains: Adam with a savable state, the
//! exponential moving average of the weights, in-place updates on the CPU, and the
//! variables of a network in a reproducible order (saved and loaded by name).

mod adam;
pub mod inplace;

pub use adam::{Adam, AdamParams, AdamState};

use std::collections::HashMap;

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

/// The network's variables in name order, so optimisation is reproducible.
pub fn sorted_vars(variables: &VarMap) -> Vec<(String, Var)> {
    let data = variables.data().lock().expect("variable map lock poisoned");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Copies named tensors (a checkpoint) into the network's variables.
pub fn load_variables(variables: &VarMap, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
    for (name, var) in sorted_vars(variables) {
        let Some(value) = tensors.get(&name) else {
            return Err(format!("the checkpoint has no tensor `{name}`"));
        };
        var.set(value)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
    }
    Ok(())
}

/// An exponential moving average of the weights (what evaluation uses), with a warm-up so
/// early averages are not dominated by the random initialisation.
pub struct Ema {
    /// The ceiling of the decay (0: no average).
    decay: f64,
    /// In the variables' order; updated in place where the device allows.
    averages: Vec<Tensor>,
}

impl Ema {
    /// An average that starts at the variables' current values.
    pub fn new(vars: &[Var], decay: f64) -> candle_core::Result<Self> {
        let averages = vars
            .iter()
            .map(|v| v.as_tensor().copy().map(|t| t.detach()))
            .collect::<candle_core::Result<_>>()?;
        Ok(Ema { decay, averages })
    }

    /// Whether there is an average at all (decay above 0).
    pub fn enabled(&self) -> bool {
        self.decay > 0.0
    }

    /// The decay the average uses after step `step` (1-based): the ceiling, lowered early on
    /// by the warm-up (1 + step) / (10 + step); 0 without an average.
    pub fn decay_at(&self, step: usize) -> f64 {
        self.decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// Folds the variables in after optimiser step `step` (1-based).
    pub fn update(&mut self, vars: &[Var], step: usize) -> candle_core::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let decay = self.decay_at(step);
        for (var, average) in vars.iter().zip(self.averages.iter_mut()) {
            let var = var.as_tensor();
            if inplace::supported(&[average, var]) {
                let update = inplace::Average {
                    decay,
                    square: false,
                };
                average.inplace_op2(var, &update)?;
            } else {
                // Detached, or each average would hold the op graph of all earlier ones.
                *average = ((&*average * decay)? + (var * (1.0 - decay))?)?.detach();
            }
        }
        Ok(())
    }

    /// Copies of the averages (not sharing their storage, which updates change in place).
    pub fn copies(&self) -> candle_core::Result<Vec<Tensor>> {
        self.averages.iter().map(|t| t.copy()).collect()
    }

    /// Continues from saved averages (copied: they are updated in place).
    pub fn restore(&mut self, averages: &[Tensor]) -> candle_core::Result<()> {
        self.averages = averages
            .iter()
            .map(|t| t.detach().copy())
            .collect::<candle_core::Result<_>>()?;
        Ok(())
    }

    /// Sets the variables to their averages (nothing without an average).
    pub fn copy_into(&self, vars: &[Var]) -> candle_core::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        for (var, average) in vars.iter().zip(&self.averages) {
            var.set(average)?;
        }
        Ok(())
    }
}
