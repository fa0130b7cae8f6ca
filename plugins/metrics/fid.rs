//! `fid`: Fréchet distance between Gaussian fits of the sample features and the reference
//! (held-out) features in the trial's feature space (`features:`; FID proper with
//! `features: inception`):
//! ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2}),
//! with unbiased covariances and the square roots from faer's self-adjoint eigendecomposition
//! (the same code as `fd`, which applies it to raw coordinates). Details `samples` and
//! `reference` record the two set sizes (FID is biased upwards at small sizes: compare only
//! values measured at the same counts and with the same extractor).

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::frechet::{frechet_distance, mean_and_covariance};
use scorelab::metric::{feature_set, require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

/// Fréchet distance between the Gaussian fits of two feature sets.
pub fn feature_frechet_distance(samples: &Samples, reference: &Samples) -> Result<f64, String> {
    assert_eq!(
        samples.dim(),
        reference.dim(),
        "fid compares sets of one feature dimension"
    );
    let (mu1, c1) = mean_and_covariance(samples);
    let (mu2, c2) = mean_and_covariance(reference);
    frechet_distance(&mu1, &c1, &mu2, &c2)
}

pub struct Fid;

impl Metric for Fid {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        let features = feature_set(input, "fid")?;
        let (x, y) = (&features.samples, &features.reference);
        if x.len() < 2 || y.len() < 2 {
            return Err(format!("`fid` needs at least 2 samples and 2 reference items, got {} and {}. Fix: raise `num_samples`", x.len(), y.len()));
        }
        require_finite(x, "sample features")?;
        Ok(feature_frechet_distance(x, y)?.into())
    }

    fn uses_features(&self) -> bool {
        true
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Fid), &params))
}

inventory::submit! {
    Plugin {
        name: "fid",
        about: "Fréchet distance of Gaussian fits in the feature space (`features:`; FID with `inception`)",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
