//! `sliced_wasserstein`: the sliced 2-Wasserstein distance, sqrt of the mean over random
//! unit directions of the squared 1D 2-Wasserstein distance between the projections. Each 1D
//! distance is exact, for equal and unequal set sizes alike (merged quantiles); the only
//! approximation is the finite number of directions.

use scorelab::config::{Params, RawParams};
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::{Rng, Stream};

params! {
    /// Parameters of `sliced_wasserstein`.
    pub struct SlicedWassersteinParams {
        /// Number of random projection directions.
        projections: usize = 128 => 1..=scorelab::config::limits::MAX_REPEATS,
    }
}

pub struct SlicedWasserstein {
    projections: usize,
}

/// Squared 2-Wasserstein distance between two 1D empirical distributions (each point of a
/// set weighing 1/len), exactly: the integral over q in (0, 1) of (F_a^-1(q) - F_b^-1(q))^2,
/// summed over the intervals between the merged breakpoints i/n and j/m, on each of which
/// both quantile functions are constant.
pub fn wasserstein_1d_squared(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    if n == m {
        // Every interval has width 1/n: the mean squared difference of order statistics.
        return a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / n as f64;
    }
    // Positions in units of 1/(n m): a's i-th point covers [i m, (i+1) m), b's j-th
    // [j n, (j+1) n).
    let (mut i, mut j, mut position, mut total) = (0, 0, 0, 0.0);
    while i < n && j < m {
        let end = ((i + 1) * m).min((j + 1) * n);
        total += (end - position) as f64 * (a[i] - b[j]).powi(2);
        position = end;
        if end == (i + 1) * m {
            i += 1;
        }
        if end == (j + 1) * n {
            j += 1;
        }
    }
    total / (n * m) as f64
}

impl Metric for SlicedWasserstein {
    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        vec![("projections", self.projections.to_string())]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        require_finite(input.samples, "samples")?;
        let dim = input.samples.dim();
        let mut rng = Rng::new(input.seed, Stream::Metrics);
        let mut total = 0.0;
        for _ in 0..self.projections {
            let mut direction: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let norm = direction
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            direction.iter_mut().for_each(|v| *v /= norm);
            let project = |p: &scorelab::dataset::Samples| -> Vec<f64> {
                p.rows()
                    .map(|r| r.iter().zip(&direction).map(|(a, b)| a * b).sum())
                    .collect()
            };
            total += wasserstein_1d_squared(project(input.samples), project(input.reference));
        }
        Ok((total / self.projections as f64).sqrt().into())
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = SlicedWassersteinParams::from_raw(raw)?;
    if params.projections == 0 {
        return Err(raw.invalid(
            "projections",
            "must be at least 1",
            "set e.g. `projections: 128`",
        ));
    }
    Ok(Built::new(
        Box::new(SlicedWasserstein {
            projections: params.projections,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "sliced_wasserstein",
        about: "sliced 2-Wasserstein distance over random projections",
        params: SlicedWassersteinParams::docs,
        build: Builder::Metric(build),
    }
}
