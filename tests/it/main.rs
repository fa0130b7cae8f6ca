//! Integration tests, compiled as one binary. Small and fast; they assert math against
//! closed-form truth (Gaussian mixtures, Gaussian marginals) and the runner's contracts.

// The runner's allocator, so tests see the same memory behaviour.
#[global_allocator]
static ALLOCATOR: scorelab::Allocator = scorelab::Allocator;

mod artifacts;
mod attention_kernel;
mod bits_per_dim;
mod checkpoint;
mod classifier_resume;
mod cli;
mod common;
mod completions;
mod conditional_mlp;
mod config_errors;
mod conv;
mod corpus;
mod device;
mod distillation;
mod distillation_runs;
mod external_sampler;
mod failures;
mod features;
mod filesystem;
mod fuzz;
mod guidance;
mod guidance_classifier;
mod guidance_coverage;
mod guidance_trained;
mod history;
mod image_data;
mod image_files;
mod image_metrics;
mod image_sweep;
mod inception;
mod jobs;
mod kernels;
mod kill;
mod langevin;
mod latent;
mod latent_runs;
mod layering;
mod likelihood;
mod locking;
mod metrics;
mod mlp_inference;
mod oracle;
mod overrides_grammar;
mod parameterisation;
mod plugin_bounds;
mod registry;
mod report;
mod resolution;
mod results;
mod samplers;
mod schedules;
mod sde_schedules;
mod sde_sweeps;
mod seeds;
mod show;
mod slurm;
mod sweeps;
mod training;
mod unet;
mod validation;
mod weightings;
