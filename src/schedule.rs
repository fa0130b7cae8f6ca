//! Noise schedules: the noise levels used in training, the grid a sampler walks, and the
//! prior at sigma_max. In the shared perturbation x = s(t) (x0 + sigma(t) z) this issue's
//! schedules have s = 1 (variance exploding); others add their own s(t).

use crate::dataset::Points;
use crate::rng::Rng;

/// What a schedule may need to know when it is built.
pub struct ScheduleContext<'a> {
    /// The training set (`sigma_max: auto` is its largest pairwise distance).
    pub training_data: &'a Points,
}

pub trait Schedule: Send + Sync {
    fn sigma_min(&self) -> f64;
    fn sigma_max(&self) -> f64;

    /// The noise levels whose losses are reported separately ("per-level loss"), ascending
    /// or descending as the schedule defines them; continuous schedules give bin centres.
    fn loss_levels(&self) -> Vec<f64>;

    /// Noise levels for one training batch, each with the index of its loss level.
    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)>;

    /// The sampling grid, descending and ending in 0 (k-diffusion's convention): `steps` of
    /// `None` means the schedule's own levels.
    fn sampling_sigmas(&self, steps: Option<usize>) -> Vec<f64>;

    /// Draws from the prior at sigma_max, N(0, sigma_max^2 I).
    fn prior_sample(&self, n: usize, dim: usize, rng: &mut Rng) -> Points {
        let sigma = self.sigma_max();
        Points::new(dim, (0..n * dim).map(|_| sigma * rng.normal()).collect())
    }
}
