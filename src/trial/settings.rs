//! An experiment's top-level settings and the keys of its sections: which are plugin slots,
//! which are sections, and which decide the trained model.

use crate::params;
use crate::registry::Kind;

params! {
    /// Top-level settings of an experiment.
    pub struct Settings {
        /// Name of the results folder (default: the experiment file's name without extension).
        name: Option<String> = None,
        /// Seed of every random draw (data, initialisation, training noise, sampling).
        seed: u64 = 0,
        /// `cpu`, `cuda` / `cuda:N` (builds with the `cuda` feature), or `auto` (CUDA when built
        /// with it and a GPU answers, else the CPU). Trials record `cpu` or `cuda`.
        device: String = "cpu".to_string(),
        /// Compute threads (candle's pools spin-wait: 1 is robust on a busy 2-core machine).
        threads: usize = 1 => 1..=4096,
        /// Samples generated per trial for evaluation; the held-out set has the same size.
        num_samples: usize = 2000 => 0..=crate::config::limits::MAX_ITEMS,
        /// Training steps between resumable checkpoints (weights, optimiser, EMA, random
        /// streams) of a model being trained; 0 for none (Ctrl-C still saves one).
        checkpoint_every: usize = 500 => 0..=crate::config::limits::MAX_STEPS,
        /// Seeds each configuration runs with (`seed`, `seed` + 1, ...); above 1, the tables
        /// add a per-configuration summary with the mean, standard deviation, n and a 95%
        /// Student-t confidence interval of every metric (`summary.csv`).
        seeds: usize = 1 => 0..=1_000_000,
        /// Rows the network sees at once while a trial is evaluated (sampling, likelihoods,
        /// guidance, features): memory follows it, not `num_samples`; the numbers do not.
        eval_batch: usize = crate::eval_batch::DEFAULT => 1..=crate::config::limits::MAX_ITEMS,
    }
}

/// The plugin slots of an experiment file and their kinds (`features`, optional, is read
/// with the metrics that use it). `guidance` and `latent` are optional: absent, they are
/// `none` and `identity`.
pub const PLUGIN_SLOTS: [(&str, Kind); 7] = [
    ("data", Kind::Dataset),
    ("schedule", Kind::Schedule),
    ("weighting", Kind::Weighting),
    ("network", Kind::Network),
    ("sampler", Kind::Sampler),
    ("guidance", Kind::Guidance),
    ("latent", Kind::Latent),
];

/// The guidance an experiment without a `guidance:` section gets.
pub const DEFAULT_GUIDANCE: &str = "none";

/// Keys that are not top-level settings.
pub(super) const SECTION_KEYS: [&str; 13] = [
    "data",
    "features",
    "schedule",
    "weighting",
    "network",
    "sampler",
    "guidance",
    "latent",
    "train",
    // Progressive distillation (`crate::trial::DistillSettings`).
    "distill",
    "eval",
    "sweep",
    // How the sweep is run (local or Slurm); read by the launcher, not part of any trial.
    "launcher",
];

/// Keys whose values decide the trained model: trials that agree on them share one.
pub const TRAINING_KEYS: [&str; 8] = [
    "seed",
    "device",
    "data",
    "schedule",
    "weighting",
    "network",
    "train",
    // Recorded only when not `identity`.
    "latent",
];
