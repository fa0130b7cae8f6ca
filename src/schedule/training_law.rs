//! The distribution a schedule draws its training noise levels from, described rather than
//! only sampled, so that training can reweight it: importance sampling of the levels
//! (`train.time_sampling: importance`) draws them in proportion to the loss weight and
//! needs the density it replaces. A schedule that gives a law must draw its
//! `training_sigmas` from exactly that law (tests/it/importance.rs checks every one).

use super::LogBins;

/// How a schedule's training levels are distributed.
#[derive(Debug, Clone)]
pub enum TrainingLaw {
    /// t ~ U(low, high) and sigma = sigma(t), sigma increasing in t (the continuous SDEs:
    /// `ve`, `vp`, `sub_vp`); `bins` gives each level's loss level.
    UniformTime { low: f64, high: f64, bins: LogBins },
    /// ln sigma ~ N(mean, std^2) (EDM's log-normal levels); `bins` as above.
    LogNormal { mean: f64, std: f64, bins: LogBins },
    /// One of these (sigma, loss level) pairs, each equally likely (NCSN's levels, the
    /// steps of a discrete chain).
    Levels(Vec<(f64, usize)>),
}
