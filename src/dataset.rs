//! Datasets: generators of points (2D toys, Gaussian mixtures) and images, with their
//! analytic density where known.

pub use crate::samples::{
    max_pairwise_distance, max_pairwise_distance_brute_force, squared_distance, Samples,
};

use crate::analytic::GaussianMixture;
use crate::rng::{Rng, Stream};

/// A source of data: points or images, labelled or not.
pub trait Dataset: Send + Sync {
    /// Coordinates per item.
    fn dim(&self) -> usize;

    /// One item's shape: `[dim]` for points, `[C, H, W]` for images.
    fn shape(&self) -> Vec<usize> {
        vec![self.dim()]
    }

    /// Number of classes of the labels `sample` attaches (0: unlabelled).
    fn classes(&self) -> usize {
        0
    }

    /// `n` independent items.
    fn sample(&self, n: usize, rng: &mut Rng) -> Samples;

    /// The training set and the held-out set. Generators draw them independently; datasets
    /// read from files override this to split their items, so the two never share one.
    fn draw(&self, train: usize, held_out: usize, seed: u64) -> (Samples, Samples) {
        (
            self.sample(train, &mut Rng::new(seed, Stream::TrainingData)),
            self.sample(held_out, &mut Rng::new(seed, Stream::HeldOut)),
        )
    }

    /// The exact mixture the data come from, when the dataset is one: its density and the
    /// score of every noised marginal are then known in closed form.
    fn mixture(&self) -> Option<&GaussianMixture> {
        None
    }

    /// Log density of the data distribution, where known.
    fn log_density(&self, x: &[f64]) -> Option<f64> {
        self.mixture().map(|m| m.log_density(x, 0.0))
    }
}
