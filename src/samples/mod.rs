//! The items a dataset yields and a sampler returns: points or images with optional labels,
//! and the exact largest pairwise distance among them (NCSNv2's `sigma_max: auto`).

mod distance;

pub use distance::{max_pairwise_distance, max_pairwise_distance_brute_force, squared_distance};

use std::sync::OnceLock;

use candle_core::{Device, Tensor};

/// A set of items: points of `dim` coordinates, or images of shape (C, H, W), stored
/// row-major one flat row per item, with optional integer labels. The engine trains and
/// samples on flat (n, dim) tensors; networks and plots that care about images read the
/// shape.
#[derive(Debug, Clone)]
pub struct Samples {
    shape: Vec<usize>,
    data: Vec<f64>,
    labels: Option<Vec<u32>>,
    /// [`Samples::max_pairwise_distance`], computed at most once: trials that share these
    /// samples (one draw per distinct data config) share it. The values never change after
    /// construction (every method that alters a `Samples` consumes it and keeps the points).
    max_distance: OnceLock<f64>,
}

/// Equal items, shapes and labels (whether the largest distance is known yet is no part
/// of the value).
impl PartialEq for Samples {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data && self.labels == other.labels
    }
}

impl Samples {
    /// Points of `dim` coordinates.
    pub fn new(dim: usize, data: Vec<f64>) -> Self {
        Samples::with_shape(&[dim], data)
    }

    /// Items of the given shape (e.g. `[C, H, W]`), one flat row each.
    pub fn with_shape(shape: &[usize], data: Vec<f64>) -> Self {
        let dim: usize = shape.iter().product();
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "samples need a whole number of items"
        );
        Samples {
            shape: shape.to_vec(),
            data,
            labels: None,
            max_distance: OnceLock::new(),
        }
    }

    /// The same items with a class label each.
    pub fn with_labels(mut self, labels: Vec<u32>) -> Self {
        assert_eq!(labels.len(), self.len(), "one label per item");
        self.labels = Some(labels);
        self
    }

    pub fn from_rows(rows: &[Vec<f64>]) -> Self {
        let dim = rows.first().map_or(1, |r| r.len());
        Samples::new(dim, rows.iter().flatten().copied().collect())
    }

    /// Coordinates per item (the product of the shape).
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// One item's shape: `[dim]` for points, `[C, H, W]` for images.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// (channels, height, width) when the items are images.
    pub fn image_shape(&self) -> Option<(usize, usize, usize)> {
        match self.shape[..] {
            [c, h, w] => Some((c, h, w)),
            _ => None,
        }
    }

    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let dim = self.dim();
        &self.data[i * dim..(i + 1) * dim]
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.data.chunks_exact(self.dim())
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The first `n` items (all when fewer).
    pub fn head(&self, n: usize) -> Samples {
        let n = n.min(self.len());
        self.gather(&(0..n).collect::<Vec<_>>())
    }

    /// Items picked by index, with their labels.
    pub fn gather(&self, indices: &[usize]) -> Samples {
        let mut data = Vec::with_capacity(indices.len() * self.dim());
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Samples {
            shape: self.shape.clone(),
            data,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&i| labels[i]).collect()),
            max_distance: OnceLock::new(),
        }
    }

    /// The same values seen as items of another shape with as many coordinates.
    pub fn reshaped(mut self, shape: &[usize]) -> Samples {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.dim(),
            "reshape keeps the size"
        );
        self.shape = shape.to_vec();
        self
    }

    /// Whether every coordinate is finite (diverged samplers produce NaN).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// As an `(n, dim)` f32 tensor: the flat layout the engine trains and samples in.
    pub fn to_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        let values: Vec<f32> = self.data.iter().map(|v| *v as f32).collect();
        Tensor::from_vec(values, (self.len(), self.dim()), device)
    }

    /// The labels as a (n,) u32 tensor, when there are labels.
    pub fn labels_tensor(&self, device: &Device) -> candle_core::Result<Option<Tensor>> {
        self.labels
            .as_ref()
            .map(|labels| Tensor::from_slice(labels, labels.len(), device))
            .transpose()
    }

    /// Points from an `(n, dim)` tensor.
    pub fn from_tensor(tensor: &Tensor) -> candle_core::Result<Samples> {
        let (_, dim) = tensor.dims2()?;
        let values = tensor
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(Samples::new(dim, values))
    }

    /// The largest distance between any two items (NCSNv2's choice of sigma_max), computed
    /// on first use and remembered. Exact: bit for bit the brute force over every pair
    /// ([`max_pairwise_distance_brute_force`]), found without summing most pairs (ball-tree
    /// bounds, and in high dimension blockwise gemm estimates ‖a‖² + ‖b‖² − 2a·b checked
    /// against their rounding error; see [`max_pairwise_distance`]).
    pub fn max_pairwise_distance(&self) -> f64 {
        *self
            .max_distance
            .get_or_init(|| max_pairwise_distance(&self.data, self.dim()))
    }

    /// The largest pairwise distance if it has been computed already (for resolution's
    /// account of its shared work).
    pub fn known_max_pairwise_distance(&self) -> Option<f64> {
        self.max_distance.get().copied()
    }
}
