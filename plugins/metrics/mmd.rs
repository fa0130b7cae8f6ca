//! `mmd`: the unbiased estimate of the squared maximum mean discrepancy with an RBF kernel
//! k(x, y) = exp(-||x - y||^2 / (2 h^2)) (Gretton et al. 2012, eq. 3). Near 0 (and possibly
//! slightly negative) when the two sets come from one distribution. The bandwidth used is
//! recorded in the value's protocol (`protocols.csv`, the report) as `bandwidth`.

use scorelab::config::{NumberOrAuto, Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::metric::{require_finite, Measured, Metric, MetricContext, MetricInput};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `mmd`.
    pub struct MmdParams {
        /// Kernel bandwidth h, or `auto`: the upper median of the pairwise distances among the first 500 held-out points (it depends on the reference only, so every trial of a sweep uses the same kernel).
        bandwidth: NumberOrAuto = NumberOrAuto::Auto,
        /// At most this many points of each set are used (the cost is quadratic).
        max_points: usize = 2000 => 0..=scorelab::config::limits::MAX_POINTS,
    }
}

pub struct Mmd {
    params: MmdParams,
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The upper median (element n/2 of the sorted list) of the pairwise distances among the
/// first 500 of `points`.
pub fn median_distance(points: &Samples) -> f64 {
    let subset = points.head(500);
    let mut distances = Vec::new();
    for i in 0..subset.len() {
        for j in i + 1..subset.len() {
            distances.push(squared_distance(subset.row(i), subset.row(j)).sqrt());
        }
    }
    if distances.is_empty() {
        return 1.0;
    }
    distances.sort_by(f64::total_cmp);
    distances[distances.len() / 2]
}

/// Unbiased MMD^2 between two sets with bandwidth `h`.
pub fn mmd_squared(x: &Samples, y: &Samples, h: f64) -> f64 {
    let gamma = 1.0 / (2.0 * h * h);
    let kernel = |a: &[f64], b: &[f64]| (-gamma * squared_distance(a, b)).exp();
    let within = |p: &Samples| {
        let n = p.len();
        let mut sum = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                sum += kernel(p.row(i), p.row(j));
            }
        }
        2.0 * sum / (n * (n - 1)) as f64
    };
    let mut cross = 0.0;
    for a in x.rows() {
        for b in y.rows() {
            cross += kernel(a, b);
        }
    }
    within(x) + within(y) - 2.0 * cross / (x.len() * y.len()) as f64
}

impl Metric for Mmd {
    /// Three m × m matrices of distances or kernel values (samples, reference, across), m
    /// the points used.
    fn working_set(&self, samples: usize) -> u64 {
        let m = samples.min(self.params.max_points) as u64;
        3 * m * m
    }

    fn protocol(&self, _input: &MetricInput) -> Vec<(&'static str, String)> {
        let bandwidth = match self.params.bandwidth {
            NumberOrAuto::Number(h) => scorelab::config::number(h),
            NumberOrAuto::Auto => "auto (upper median of held-out distances)".to_string(),
        };
        vec![
            ("bandwidth", bandwidth),
            ("max_points", self.params.max_points.to_string()),
        ]
    }

    fn compute(&self, input: &MetricInput) -> Result<Measured, String> {
        require_finite(input.samples, "samples")?;
        let x = input.samples.head(self.params.max_points);
        let y = input.reference.head(self.params.max_points);
        let h = match self.params.bandwidth {
            NumberOrAuto::Number(h) => h,
            NumberOrAuto::Auto => median_distance(&y),
        };
        let bandwidth = match self.params.bandwidth {
            NumberOrAuto::Number(_) => scorelab::config::number(h),
            NumberOrAuto::Auto => format!(
                "{} (auto: upper median of held-out distances)",
                scorelab::config::number(h)
            ),
        };
        Ok(Measured {
            value: mmd_squared(&x, &y, h),
            details: Vec::new(),
            facts: vec![("bandwidth", bandwidth)],
        })
    }
}

fn build(raw: &RawParams, _context: &MetricContext) -> BuildResult<dyn Metric> {
    let params = MmdParams::from_raw(raw)?;
    if let NumberOrAuto::Number(h) = params.bandwidth {
        if !(h > 0.0 && h.is_finite()) {
            return Err(raw.invalid(
                "bandwidth",
                format!("must be positive, not {h}"),
                "set a positive number or `auto`",
            ));
        }
    }
    if params.max_points < 2 {
        return Err(raw.invalid(
            "max_points",
            "must be at least 2",
            "set e.g. `max_points: 2000`",
        ));
    }
    Ok(Built::new(
        Box::new(Mmd {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "mmd",
        about: "unbiased squared MMD with an RBF kernel (median-distance bandwidth by default)",
        params: MmdParams::docs,
        build: Builder::Metric(build),
    }
}
