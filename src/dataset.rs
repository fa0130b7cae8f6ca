//! Datasets: generators of points (2D toys, Gaussian mixtures) and, where known, their
//! analytic density.

use candle_core::{Device, Tensor};

use crate::analytic::GaussianMixture;
use crate::rng::Rng;

/// A set of points, row-major (`len` rows of `dim` coordinates).
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    dim: usize,
    data: Vec<f64>,
}

impl Points {
    pub fn new(dim: usize, data: Vec<f64>) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "points need a whole number of rows"
        );
        Points { dim, data }
    }

    pub fn from_rows(rows: &[Vec<f64>]) -> Self {
        let dim = rows.first().map_or(1, |r| r.len());
        Points::new(dim, rows.iter().flatten().copied().collect())
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.data.chunks_exact(self.dim)
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The first `n` rows (all when fewer).
    pub fn head(&self, n: usize) -> Points {
        let n = n.min(self.len());
        Points::new(self.dim, self.data[..n * self.dim].to_vec())
    }

    /// Rows picked by index.
    pub fn gather(&self, indices: &[usize]) -> Points {
        let mut data = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Points::new(self.dim, data)
    }

    /// Whether every coordinate is finite (diverged samplers produce NaN).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// As an `(n, dim)` f32 tensor.
    pub fn to_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        let values: Vec<f32> = self.data.iter().map(|v| *v as f32).collect();
        Tensor::from_vec(values, (self.len(), self.dim), device)
    }

    pub fn from_tensor(tensor: &Tensor) -> candle_core::Result<Points> {
        let (_, dim) = tensor.dims2()?;
        let values = tensor
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(Points::new(dim, values))
    }

    /// The largest distance between any two points (NCSNv2's choice of sigma_max).
    pub fn max_pairwise_distance(&self) -> f64 {
        let mut best = 0.0f64;
        for i in 0..self.len() {
            let a = self.row(i);
            for j in i + 1..self.len() {
                let d2: f64 = a
                    .iter()
                    .zip(self.row(j))
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum();
                best = best.max(d2);
            }
        }
        best.sqrt()
    }
}

/// A source of data points.
pub trait Dataset: Send + Sync {
    fn dim(&self) -> usize;

    /// `n` independent points.
    fn sample(&self, n: usize, rng: &mut Rng) -> Points;

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
