//! Embeddings of the noise level: EDM's c_noise = ln(sigma) / 4 mapped to sinusoids, either at
//! fixed geometric frequencies (DDPM's timestep embedding) or at random Gaussian frequencies
//! (NCSN++'s Fourier features).

use candle_core::{DType, Device, Tensor};

use crate::rng::Rng;

/// How c_noise becomes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseEmbeddingKind {
    /// sin/cos at frequencies 10000^(-i / (dim / 2)), i = 0 .. dim / 2 (DDPM, EDM's ADM).
    Sinusoidal,
    /// sin/cos of 2π·f·c_noise at fixed frequencies f ~ N(0, 16²) (NCSN++, EDM's DDPM++ on VE).
    Fourier,
}

/// The standard deviation of NCSN++'s Fourier frequencies.
pub const FOURIER_SCALE: f64 = 16.0;

pub struct NoiseEmbedding {
    /// Angular frequencies, (1, dim / 2); constants, not trained.
    frequencies: Tensor,
}

impl NoiseEmbedding {
    /// An embedding of even size `dim`; `rng` draws the Fourier frequencies (the sinusoidal
    /// kind draws nothing).
    pub fn new(
        kind: NoiseEmbeddingKind,
        dim: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        if dim < 2 || !dim.is_multiple_of(2) {
            candle_core::bail!("noise embedding: size {dim} must be even and at least 2");
        }
        let half = dim / 2;
        let frequencies: Vec<f32> = match kind {
            NoiseEmbeddingKind::Sinusoidal => (0..half)
                .map(|i| 10000f64.powf(-(i as f64) / half as f64) as f32)
                .collect(),
            NoiseEmbeddingKind::Fourier => (0..half)
                .map(|_| (2.0 * std::f64::consts::PI * FOURIER_SCALE * rng.normal()) as f32)
                .collect(),
        };
        Ok(Self {
            frequencies: Tensor::from_vec(frequencies, (1, half), device)?,
        })
    }

    /// sigma (n, 1) -> (n, dim): [cos(f·c_noise), sin(f·c_noise)] with c_noise = ln(sigma) / 4.
    pub fn forward(&self, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let c_noise = (sigma.to_dtype(DType::F32)?.log()? / 4.0)?;
        let angles = c_noise.broadcast_mul(&self.frequencies)?;
        Tensor::cat(&[angles.cos()?, angles.sin()?], 1)
    }
}
