//! Which path a layer computes on: our CPU kernels (im2col convolution, fused GroupNorm+SiLU,
//! attention, the MLP's fused bias-add-SiLU, upsampling, pooling) or candle's ops, which every
//! other device (CUDA) takes. Both must compute the same function, so a test can force the
//! CPU onto candle's ops ([`with_candle_ops`]) and compare the two on one machine: a CUDA
//! run's first test of its path is then not the first GPU run.

use std::cell::Cell;

use candle_core::Device;

thread_local! {
    /// Set while [`with_candle_ops`] runs on this thread.
    static FORCED: Cell<bool> = const { Cell::new(false) };
}

/// Whether layers on `device` use our CPU kernels: on the CPU, unless the calling thread
/// forced candle's ops.
pub fn cpu_kernels(device: &Device) -> bool {
    device.is_cpu() && !FORCED.with(Cell::get)
}

/// Runs `f` with every layer on this thread computing through candle's ops, as on a GPU (the
/// gradients of what `f` builds follow the same path, whenever they are taken).
pub fn with_candle_ops<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|forced| forced.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|forced| forced.replace(true)));
    f()
}
