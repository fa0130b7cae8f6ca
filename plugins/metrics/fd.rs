//! `fd`: Fréchet distance between Gaussian fits of the samples and the held-out data, the
//! FID formula applied to raw coordinates:
//! ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2}).

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::metric::frechet::{frechet_distance, mean_and_covariance};
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

pub struct FrechetDistance;

impl Metric for FrechetDistance {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        require_finite(input.samples, "samples")?;
        let (mu1, c1) = mean_and_covariance(input.samples);
        let (mu2, c2) = mean_and_covariance(input.reference);
        Ok(frechet_distance(&mu1, &c1, &mu2, &c2)?.into())
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(FrechetDistance), &params))
}

inventory::submit! {
    Plugin {
        name: "fd",
        about: "Fréchet distance of Gaussian fits (the FID formula on raw coordinates)",
        params: NoParams::docs,
        build: Builder::Metric(build),
    }
}
