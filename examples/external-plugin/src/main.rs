//! `iterated_denoiser`: jumps to Tweedie's denoised mean at every level.

use candle_core::Tensor;
use scorelab::plugin::prelude::*;

params! {
    /// Parameters of `iterated_denoiser`.
    pub struct IteratedDenoiserParams {
        /// Use only every n-th level of the grid.
        stride: usize = 1,
    }
}

pub struct IteratedDenoiser {
    stride: usize,
}

impl Sampler for IteratedDenoiser {
    fn sample(
        &self,
        model: &dyn ScoreModel,
        mut x: Tensor,
        grid: &Grid,
        _rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let levels: Vec<f64> = grid
            .sigmas()
            .iter()
            .copied()
            .filter(|s| *s > 0.0)
            .step_by(self.stride)
            .collect();
        for (i, &sigma) in levels.iter().enumerate() {
            let score = model.score(&x, &constant_sigma(sigma, x.dim(0)?, x.device())?)?;
            x = tweedie_denoise(&x, &score, sigma)?;
            on_step(StepInfo {
                step: i + 1,
                total: levels.len(),
                sigma,
            });
        }
        Ok(x)
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = IteratedDenoiserParams::from_raw(raw)?;
    if params.stride == 0 {
        return Err(raw.invalid("stride", "must be at least 1", "set `stride: 1`"));
    }
    let sampler = IteratedDenoiser {
        stride: params.stride,
    };
    Ok(Built::new(Box::new(sampler), &params))
}

inventory::submit! {
    Plugin { name: "iterated_denoiser", about: "Tweedie's denoised mean at every level",
             params: IteratedDenoiserParams::docs, build: Builder::Sampler(build) }
}

// --- end of the README example ---

use std::process::ExitCode;

// The runner's allocator: candle allocates a buffer per tensor op, and glibc's is slower.
#[global_allocator]
static GLOBAL: scorelab::Allocator = scorelab::Allocator;

fn main() -> ExitCode {
    scorelab::cli::main()
}
