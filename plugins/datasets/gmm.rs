//! `gmm`: a Gaussian mixture in any dimension. It knows its log density and the exact score
//! of every noised marginal, which makes it the ground truth for samplers and metrics.

use scorelab::analytic::GaussianMixture;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use serde::{Deserialize, Serialize};

/// A component's standard deviation: one number (isotropic) or one per coordinate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Spread {
    Isotropic(f64),
    PerCoordinate(Vec<f64>),
}

params! {
    /// Parameters of `gmm`.
    pub struct GmmParams {
        /// Component means, one list of coordinates each (their length sets the dimension).
        means: Vec<Vec<f64>> = vec![vec![-5.0, -5.0], vec![5.0, 5.0]],
        /// Component standard deviations: a number each, or a list per coordinate.
        stds: Vec<Spread> = vec![Spread::Isotropic(1.0), Spread::Isotropic(1.0)],
        /// Mixture weights (normalised to sum to 1).
        weights: Vec<f64> = vec![0.8, 0.2],
    }
}

pub struct Gmm {
    mixture: GaussianMixture,
}

impl Dataset for Gmm {
    fn dim(&self) -> usize {
        self.mixture.dim()
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        self.mixture.sample(n, rng)
    }

    fn mixture(&self) -> Option<&GaussianMixture> {
        Some(&self.mixture)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = GmmParams::from_raw(raw)?;
    let dim = params.means.first().map_or(0, Vec::len);
    let stds = params
        .stds
        .iter()
        .map(|s| match s {
            Spread::Isotropic(v) => vec![*v; dim],
            Spread::PerCoordinate(v) => v.clone(),
        })
        .collect();
    let mixture = GaussianMixture::new(params.weights.clone(), params.means.clone(), stds)
        .map_err(|m| raw.invalid("means", m, "give `means`, `stds` and `weights` one entry per component"))?;
    Ok(Built::new(Box::new(Gmm { mixture }), &params))
}

inventory::submit! {
    Plugin {
        name: "gmm",
        about: "Gaussian mixture (any dimension) with exact density and noised scores",
        params: GmmParams::docs,
        build: Builder::Dataset(build),
    }
}
