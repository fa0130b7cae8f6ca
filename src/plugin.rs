//! Writing a plugin: `use scorelab::plugin::prelude::*;` brings every name a plugin file
//! needs, in this repository (`plugins/<kind>/<name>.rs`) or in a crate of its own.
//!
//! A plugin crate depends on `scorelab` (under that name), `candle-core` when it touches
//! tensors, and `inventory` (or uses the re-export, `scorelab::plugin::prelude::inventory`);
//! the [`params!`](crate::params) macro reaches serde through this crate. Its binary calls
//! [`cli::main`](crate::cli::main) and can use the runner's allocator:
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: scorelab::Allocator = scorelab::Allocator;
//!
//! fn main() -> std::process::ExitCode {
//!     scorelab::cli::main()
//! }
//! ```

/// One glob import for plugin files.
pub mod prelude {
    pub use crate::config::{ConfigError, CountOrAuto, NoParams, NumberOrAuto, Params, RawParams};
    pub use crate::dataset::{Dataset, Samples};
    pub use crate::guidance::{
        log_prob_gradient, Classifier, Guidance, GuidanceContext, Labelled, LabelledScore,
        TargetClass,
    };
    pub use crate::metric::{Measured, Metric, MetricContext, MetricInput};
    pub use crate::network::{
        constant_sigma, sigma_column, Architecture, Instance, Network, NetworkContext, ScoreModel,
    };
    pub use crate::params;
    pub use crate::registry::{BuildResult, Builder, Built, Plugin};
    pub use crate::rng::Rng;
    pub use crate::sampler::{
        langevin_step, tweedie_denoise, Corrector, Predictor, Refusal, Sampler, SamplerContext,
        StepInfo,
    };
    pub use crate::schedule::{
        Discretization, Grid, GridRequest, Schedule, ScheduleContext, Spacing,
    };
    pub use crate::weighting::Weighting;
    /// `inventory::submit!` works through this re-export as well as from a direct dependency.
    pub use inventory;
}
