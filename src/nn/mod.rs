//! Layers shared by networks and feature extractors (the U-Net, the classifier, Inception):
//! convolutions with a gemm backward, normalisation, attention, residual blocks, noise
//! embeddings, seeded initialisation and pooling. Built from candle ops that carry gradients
//! (see DEPENDENCIES.md).

pub mod attention;
pub mod attention_op;
pub mod blocks;
pub mod conv;
mod conv_kernels;
mod direct;
pub mod embedding;
pub mod fused;
pub(crate) mod gemm;
pub mod im2col;
pub mod inception;
pub mod init;
pub mod linear;
pub mod norm;
pub mod norm_op;
pub mod path;
pub mod pool;
mod simd;
mod winograd;

/// The values of a custom op's CPU argument, or an error naming the op and the argument when
/// its layout is not contiguous.
pub(crate) fn contiguous<'a, T>(
    data: &'a [T],
    layout: &candle_core::Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the {what} must be contiguous"),
    }
}
