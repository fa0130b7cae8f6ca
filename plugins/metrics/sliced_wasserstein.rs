//! `sliced_wasserstein`: the sliced 2-Wasserstein distance, sqrt of the mean over random
//! unit directions of the squared 1D 2-Wasserstein distance between the projections (each
//! computed exactly from sorted quantiles).

use scorelab::config::{Params, RawParams};
use scorelab::metric::{Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::{Rng, Stream};

params! {
    /// Parameters of `sliced_wasserstein`.
    pub struct SlicedWassersteinParams {
        /// Number of random projection directions.
        projections: usize = 128,
    }
}

pub struct SlicedWasserstein {
    projections: usize,
}

/// Quantile of sorted values at level q in (0, 1), by the nearest order statistic.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[index]
}

/// Squared 2-Wasserstein distance between two 1D empirical distributions.
pub fn wasserstein_1d_squared(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let levels = a.len().max(b.len());
    (0..levels)
        .map(|i| {
            let q = (i as f64 + 0.5) / levels as f64;
            (quantile(&a, q) - quantile(&b, q)).powi(2)
        })
        .sum::<f64>()
        / levels as f64
}

impl Metric for SlicedWasserstein {
    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        if !input.samples.all_finite() {
            return Ok(f64::NAN.into());
        }
        let dim = input.samples.dim();
        let mut rng = Rng::new(input.seed, Stream::Metrics);
        let mut total = 0.0;
        for _ in 0..self.projections {
            let mut direction: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let norm = direction.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            direction.iter_mut().for_each(|v| *v /= norm);
            let project = |p: &scorelab::dataset::Samples| -> Vec<f64> {
                p.rows().map(|r| r.iter().zip(&direction).map(|(a, b)| a * b).sum()).collect()
            };
            total += wasserstein_1d_squared(project(input.samples), project(input.reference));
        }
        Ok((total / self.projections as f64).sqrt().into())
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = SlicedWassersteinParams::from_raw(raw)?;
    if params.projections == 0 {
        return Err(raw.invalid("projections", "must be at least 1", "set e.g. `projections: 128`"));
    }
    Ok(Built::new(Box::new(SlicedWasserstein { projections: params.projections }), &params))
}

inventory::submit! {
    Plugin {
        name: "sliced_wasserstein",
        about: "sliced 2-Wasserstein distance over random projections",
        params: SlicedWassersteinParams::docs,
        build: Builder::Metric(build),
    }
}
