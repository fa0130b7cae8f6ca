//! Seeded randomness. Every random draw in a trial comes from a ChaCha stream derived from
//! the experiment seed and a purpose, so the same config and seed give the same numbers.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The independent streams of one trial, so that e.g. changing the sampler never changes
/// the training data.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    TrainingData = 1,
    HeldOut = 2,
    NetworkInit = 3,
    TrainingNoise = 4,
    Sampling = 5,
    Metrics = 6,
    /// The class each sample of a class-conditional model is generated for.
    TargetClasses = 7,
}

/// A reproducible random number generator.
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream as u64);
        Rng(inner)
    }

    /// A generator for tests and one-off uses.
    pub fn from_seed(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    pub fn normal_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| StandardNormal.sample(&mut self.0)).collect()
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// Index drawn with probability proportional to `weights`.
    pub fn categorical(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut u = self.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }

    /// Standard normal noise shaped like `like`, on its device.
    pub fn normal_like(
        &mut self,
        like: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        let values = self.normal_f32(like.elem_count());
        candle_core::Tensor::from_vec(values, like.shape(), like.device())?.to_dtype(like.dtype())
    }
}
