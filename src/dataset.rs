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

    /// The grid every coordinate lies on, for quantised data (8-bit images): likelihoods then
    /// also report bits per dimension of the discrete data. `None` for continuous data.
    fn quantisation(&self) -> Option<Quantisation> {
        None
    }
}

/// How quantised data sit in model space: every coordinate is one of `bins` integer codes k,
/// stored as `low + (high - low) k / (bins - 1)` (bytes in [-1, 1]: k / 127.5 - 1). For a
/// likelihood the codes are dequantised the way score_sde does (Song et al. 2021,
/// `datasets.py`): `low + (high - low) (k + u) / bins` with u ~ U[0, 1), so bin k is
/// `[low + k w, low + (k + 1) w)` with the bin width w = (high - low) / bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantisation {
    /// Number of codes (256 for 8-bit data).
    pub bins: u32,
    /// The value of code 0 in model space.
    pub low: f64,
    /// The value of code `bins - 1` in model space.
    pub high: f64,
}

impl Quantisation {
    /// 8-bit data scaled to [-1, 1]: every image dataset read from files.
    pub const BYTES: Quantisation = Quantisation {
        bins: 256,
        low: -1.0,
        high: 1.0,
    };

    /// A code's stored value.
    pub fn value(&self, code: u32) -> f64 {
        self.low + (self.high - self.low) * f64::from(code) / f64::from(self.bins - 1)
    }

    /// The code nearest to `value` (clamped to the grid), rounding half away from zero.
    pub fn nearest_code(&self, value: f64) -> u32 {
        let scaled = (value - self.low) / (self.high - self.low) * f64::from(self.bins - 1);
        scaled.round().clamp(0.0, f64::from(self.bins - 1)) as u32
    }

    /// The code whose stored value `value` is, or `None` when it is off the grid (by more
    /// than rounding: 1e-6 of a step).
    pub fn code(&self, value: f64) -> Option<u32> {
        let code = self.nearest_code(value);
        let step = (self.high - self.low) / f64::from(self.bins - 1);
        ((value - self.value(code)).abs() <= 1e-6 * step).then_some(code)
    }

    /// The width of one dequantisation bin in model space, (high - low) / bins.
    pub fn bin_width(&self) -> f64 {
        (self.high - self.low) / f64::from(self.bins)
    }

    /// A point of bin `code` in model space, `u` in [0, 1) across it.
    pub fn dequantised(&self, code: u32, u: f64) -> f64 {
        self.low + self.bin_width() * (f64::from(code) + u)
    }

    /// Bits per dimension added to nats/dim / ln 2 to score the discrete data:
    /// -log2(bin width) = log2(bins / (high - low)); 7 for 256 bins in [-1, 1], 8 in [0, 1].
    pub fn bits_offset(&self) -> f64 {
        -self.bin_width().log2()
    }
}
