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

/// Where a generator stands: its seed, stream and word position. Saved with training
/// checkpoints so that a resumed run draws exactly what an uninterrupted one would.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    /// The 32-byte ChaCha key, as hex.
    pub seed: String,
    pub stream: u64,
    /// Words consumed so far (a u128 in decimal, which JSON numbers cannot hold exactly).
    pub word_pos: String,
}

impl Rng {
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream as u64);
        Rng(inner)
    }

    /// The generator's position, to restore later with [`Rng::from_state`].
    pub fn state(&self) -> RngState {
        RngState {
            seed: self
                .0
                .get_seed()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            stream: self.0.get_stream(),
            word_pos: self.0.get_word_pos().to_string(),
        }
    }

    /// A generator that continues exactly where `state` was taken.
    pub fn from_state(state: &RngState) -> Result<Self, String> {
        let bad = || format!("invalid generator state {state:?}");
        if state.seed.len() != 64 || !state.seed.is_ascii() {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&state.seed[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let mut inner = ChaCha8Rng::from_seed(seed);
        inner.set_stream(state.stream);
        inner.set_word_pos(state.word_pos.parse().map_err(|_| bad())?);
        Ok(Rng(inner))
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
