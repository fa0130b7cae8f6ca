//! Loss weightings lambda(sigma) in the denoising score matching objective in sigma space,
//! `lambda / 2 * || s(x0 + sigma z, sigma) + z / sigma ||^2` (Song & Ermon 2019's
//! convention: lambda = sigma^2 puts every level on one scale). On the denoiser the same
//! loss reads lambda / (2 sigma^4) ||D - x0||^2, so a weight w on ||D - x0||^2 (EDM's
//! convention) is lambda = sigma^4 w.

use crate::schedule::Schedule;

pub trait Weighting: Send + Sync {
    /// lambda at noise level `sigma` of `schedule` (a weighting may need the schedule's
    /// SDE, as the likelihood weighting g^2 does).
    fn lambda(&self, sigma: f64, schedule: &dyn Schedule) -> f64;

    /// Whether lambda = sigma^2, which puts every level's loss on one scale (a divergence
    /// report suggests such a weighting to trials that use another).
    fn equalises_levels(&self) -> bool {
        false
    }

    /// The loss factor lambda / sigma^2 integrated over time in closed form, where it is the
    /// same function of sigma on every schedule: importance sampling of uniform training
    /// times (`train.time_sampling: importance`) then inverts its CDF exactly instead of
    /// tabulating it. `None` unless the weighting knows one.
    fn factor_primitive(&self) -> Option<FactorPrimitive> {
        None
    }
}

/// F(sigma) with d F(sigma(t)) / dt = lambda(sigma(t)) / sigma(t)^2 for every schedule's
/// sigma(t), and its inverse: the likelihood weighting's is 2 ln sigma, since its
/// lambda / sigma^2 = g^2 / (s sigma)^2 = 2 sigma' / sigma.
#[derive(Debug, Clone, Copy)]
pub struct FactorPrimitive {
    pub of_sigma: fn(f64) -> f64,
    pub sigma_of: fn(f64) -> f64,
}
