//! `rings`: concentric noisy circles in 2D; each ring gets points in proportion to its
//! radius, so the density along every ring is the same.

use scorelab::config::{number, Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `rings`.
    pub struct RingsParams {
        /// Radius of each ring.
        radii: Vec<f64> = vec![1.0, 2.0, 3.0],
        /// Standard deviation of the Gaussian noise added to each coordinate.
        noise: f64 = 0.05,
    }
}

pub struct Rings {
    radii: Vec<f64>,
    noise: f64,
}

impl Dataset for Rings {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let radius = self.radii[rng.categorical(&self.radii)];
            let angle = 2.0 * std::f64::consts::PI * rng.uniform();
            data.push(radius * angle.cos() + self.noise * rng.normal());
            data.push(radius * angle.sin() + self.noise * rng.normal());
        }
        Samples::new(2, data)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = RingsParams::from_raw(raw)?;
    if params.radii.is_empty() {
        return Err(raw.invalid(
            "radii",
            "is empty: list at least one ring",
            "set e.g. `radii: [1, 2, 3]`",
        ));
    }
    for (i, &r) in params.radii.iter().enumerate() {
        if !(r > 0.0 && r <= 1e6) {
            return Err(raw.invalid_at(
                "radii",
                &format!("[{i}]"),
                format!(
                    "is {}; a radius must be a positive number up to 1e6",
                    number(r)
                ),
                "set e.g. `radii: [1, 2, 3]`",
            ));
        }
    }
    if !(params.noise >= 0.0 && params.noise <= 1e6) {
        return Err(raw.invalid(
            "noise",
            format!(
                "must be a finite number from 0 to 1e6, not {}",
                number(params.noise)
            ),
            "set e.g. `noise: 0.05`",
        ));
    }
    Ok(Built::new(
        Box::new(Rings {
            radii: params.radii.clone(),
            noise: params.noise,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "rings",
        about: "2D concentric noisy circles",
        params: RingsParams::docs,
        build: Builder::Dataset(build),
    }
}
