//! Loss weightings lambda(sigma) in the denoising score matching objective
//! `lambda(sigma) / 2 * || s(x + sigma z, sigma) + z / sigma ||^2`.

pub trait Weighting: Send + Sync {
    fn lambda(&self, sigma: f64) -> f64;
}
