//! score_sde's `discretize()`: how each family turns its SDE into a chain of steps between two
//! grid levels, from which the reverse-diffusion and ancestral predictors are built (Song et
//! al. 2021, Appendix E and its code's `VESDE`, `VPSDE` and base `SDE.discretize`). A schedule
//! names its form ([`super::Schedule::discretization`]); the numbers come from the grid.

use super::Grid;

/// The family's form of the forward step from level i + 1 to level i (t_i > t_{i+1}), in x:
/// x_i = a x_{i+1} + sqrt(g2) z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discretization {
    /// Variance exploding (score_sde's `VESDE`): a = 1, g2 = sigma_i^2 - sigma_{i+1}^2.
    VarianceExploding,
    /// DDPM's chain (score_sde's `VPSDE`): a = sqrt(1 - beta_i), g2 = beta_i, with
    /// beta_i = g^2(t_i) (t_i - t_{i+1}), score_sde's beta(t_i) / N on a grid uniform in t.
    DdpmChain,
    /// Euler-Maruyama on the forward SDE (score_sde's default, which sub-VP uses):
    /// a = 1 + f(t_i) dt, g2 = g^2(t_i) dt with dt = t_i - t_{i+1}.
    EulerMaruyama,
}

/// One step of a [`Discretization`] on a grid: the coefficients a and g2 in x, with the
/// signal scales that convert the grid's sigma-space state x^ = x / s to x and back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardStep {
    pub form: Discretization,
    /// a: how much of x_{i+1} the forward step keeps.
    pub shrink: f64,
    /// g2: the variance the forward step adds.
    pub variance: f64,
    /// s(t_i) and s(t_{i+1}).
    pub scales: (f64, f64),
}

impl ForwardStep {
    /// The step from level i to level i + 1 of `grid` (both above 0) in the grid's schedule's form.
    pub fn at(grid: &Grid, i: usize) -> ForwardStep {
        let schedule = grid.schedule();
        let form = schedule.discretization();
        let (sigma, sigma_next) = (grid.sigmas()[i], grid.sigmas()[i + 1]);
        let (t, t_next) = (grid.t(i), grid.t(i + 1));
        let dt = t - t_next;
        let (shrink, variance) = match form {
            Discretization::VarianceExploding => {
                (1.0, (sigma * sigma - sigma_next * sigma_next).max(0.0))
            }
            Discretization::DdpmChain => {
                // A beta of 1 or more would divide by zero in the ancestral step.
                let beta = (schedule.diffusion_squared(t) * dt).clamp(0.0, 0.999);
                ((1.0 - beta).sqrt(), beta)
            }
            Discretization::EulerMaruyama => (
                1.0 + schedule.drift(t) * dt,
                (schedule.diffusion_squared(t) * dt).max(0.0),
            ),
        };
        ForwardStep {
            form,
            shrink,
            variance,
            scales: (grid.scale(i), grid.scale(i + 1)),
        }
    }
}
