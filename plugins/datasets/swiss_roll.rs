//! `swiss_roll`: the 2D Swiss roll spiral, (t cos t, t sin t) / 5 for t in [1.5 pi, 4.5 pi].

use scorelab::config::{number, Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `swiss_roll`.
    pub struct SwissRollParams {
        /// Standard deviation of the Gaussian noise added to each coordinate.
        noise: f64 = 0.1,
    }
}

pub struct SwissRoll {
    noise: f64,
}

impl Dataset for SwissRoll {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let t = 1.5 * std::f64::consts::PI * (1.0 + 2.0 * rng.uniform());
            data.push(t * t.cos() / 5.0 + self.noise * rng.normal());
            data.push(t * t.sin() / 5.0 + self.noise * rng.normal());
        }
        Samples::new(2, data)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = SwissRollParams::from_raw(raw)?;
    if !(params.noise >= 0.0 && params.noise <= 1e6) {
        return Err(raw.invalid(
            "noise",
            format!(
                "must be a finite number from 0 to 1e6, not {}",
                number(params.noise)
            ),
            "set e.g. `noise: 0.1`",
        ));
    }
    Ok(Built::new(
        Box::new(SwissRoll {
            noise: params.noise,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "swiss_roll",
        about: "2D Swiss roll spiral",
        params: SwissRollParams::docs,
        build: Builder::Dataset(build),
    }
}
