//! The training and math of the stages the runner composes around the plain path: a
//! latent trial's autoencoder (trained, then the training set encoded: `latent`) and the
//! rounds of progressive distillation (the teacher's two-step DDIM walk each student learns
//! in one step: `distill`). Both train through the one loop of [`crate::train`].

pub mod distill;
pub mod latent;
pub mod student_grid;
