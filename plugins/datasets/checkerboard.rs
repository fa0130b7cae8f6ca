//! `checkerboard`: points uniform on the dark squares of a square board centred at 0.

use scorelab::config::{number, Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `checkerboard`.
    pub struct CheckerboardParams {
        /// Squares along each side of the board.
        squares: usize = 4 => 0..=10_000,
        /// Side length of the whole board.
        size: f64 = 4.0,
    }
}

pub struct Checkerboard {
    squares: usize,
    size: f64,
}

impl Dataset for Checkerboard {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let cell = self.size / self.squares as f64;
        // Dark squares are those whose row + column is even.
        let dark: Vec<(usize, usize)> = (0..self.squares)
            .flat_map(|r| (0..self.squares).map(move |c| (r, c)))
            .filter(|(r, c)| (r + c) % 2 == 0)
            .collect();
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let (r, c) = dark[rng.below(dark.len())];
            data.push(-self.size / 2.0 + (c as f64 + rng.uniform()) * cell);
            data.push(-self.size / 2.0 + (r as f64 + rng.uniform()) * cell);
        }
        Samples::new(2, data)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = CheckerboardParams::from_raw(raw)?;
    if !(2..=10_000).contains(&params.squares) {
        return Err(raw.invalid(
            "squares",
            format!("must be 2 to 10000, not {}", params.squares),
            "set e.g. `squares: 4`",
        ));
    }
    if !(params.size > 0.0 && params.size <= 1e6) {
        return Err(raw.invalid(
            "size",
            format!(
                "must be a positive number up to 1e6, not {}",
                number(params.size)
            ),
            "set e.g. `size: 4.0`",
        ));
    }
    Ok(Built::new(
        Box::new(Checkerboard {
            squares: params.squares,
            size: params.size,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "checkerboard",
        about: "2D checkerboard: uniform on alternate squares",
        params: CheckerboardParams::docs,
        build: Builder::Dataset(build),
    }
}
