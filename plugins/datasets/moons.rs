//! `moons`: two interleaving half circles in 2D, centred on the origin.

use scorelab::config::{number, Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `moons`.
    pub struct MoonsParams {
        /// Standard deviation of the Gaussian noise added to each coordinate.
        noise: f64 = 0.05,
    }
}

pub struct Moons {
    noise: f64,
}

impl Dataset for Moons {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let theta = std::f64::consts::PI * rng.uniform();
            // Upper moon (cos, sin) and lower moon (1 - cos, 0.5 - sin), shifted to centre.
            let (x, y) = if rng.uniform() < 0.5 {
                (theta.cos(), theta.sin())
            } else {
                (1.0 - theta.cos(), 0.5 - theta.sin())
            };
            data.push(x - 0.5 + self.noise * rng.normal());
            data.push(y - 0.25 + self.noise * rng.normal());
        }
        Samples::new(2, data)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = MoonsParams::from_raw(raw)?;
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
        Box::new(Moons {
            noise: params.noise,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "moons",
        about: "2D two interleaving half circles",
        params: MoonsParams::docs,
        build: Builder::Dataset(build),
    }
}
