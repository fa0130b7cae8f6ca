//! Sliding-window operations on (n, c, h, w) tensors with PyTorch's semantics, for feature
//! extractors that must reproduce a PyTorch network (Inception's FID variant): padded average
//! pooling that leaves the padding out of the average (`count_include_pad=False`), padded max
//! pooling, zero padding that differs between height and width, the windows as columns
//! (im2col) and the convolution with rectangular kernels (1×7, 7×1) built on them, and
//! bilinear resizing as `F.interpolate(..., mode="bilinear", align_corners=False)`.
//!
//! Meant for inference: the pooling and convolution carry gradients (candle ops), the resize
//! does not (see DEPENDENCIES.md). Networks that train use [`crate::nn::conv`].

use candle_core::{Result, Tensor};

/// Zero padding of `height` rows above and below and `width` columns left and right of an
/// (n, c, h, w) tensor.
pub fn pad2d(x: &Tensor, height: usize, width: usize) -> Result<Tensor> {
    let x = if height > 0 {
        x.pad_with_zeros(2, height, height)?
    } else {
        x.clone()
    };
    if width > 0 {
        x.pad_with_zeros(3, width, width)
    } else {
        Ok(x)
    }
}

/// Output length of a pooling window of `kernel` at `stride` over `size` cells padded by
/// `padding` on both sides (PyTorch's floor mode).
fn pooled_len(size: usize, kernel: usize, stride: usize, padding: usize) -> Result<usize> {
    if kernel == 0 || stride == 0 {
        candle_core::bail!("pooling: kernel ({kernel}) and stride ({stride}) must be at least 1");
    }
    if 2 * padding > kernel {
        candle_core::bail!(
            "pooling: padding ({padding}) must be at most half the kernel ({kernel})"
        );
    }
    if size + 2 * padding < kernel {
        candle_core::bail!("pooling: input of {size} cells (padding {padding}) is smaller than the kernel {kernel}");
    }
    Ok((size + 2 * padding - kernel) / stride + 1)
}

/// How many real (unpadded) cells each output position's window covers along one axis.
fn window_counts(size: usize, kernel: usize, stride: usize, padding: usize) -> Result<Vec<usize>> {
    let len = pooled_len(size, kernel, stride, padding)?;
    Ok((0..len)
        .map(|o| {
            // The window covers padded indices [o·stride, o·stride + kernel), real ones shifted
            // by `padding`.
            let start = (o * stride).max(padding);
            let end = (o * stride + kernel).min(size + padding);
            end.saturating_sub(start)
        })
        .collect())
}

/// Average pooling with a square `kernel`, `stride` and zero `padding` on every side, as
/// PyTorch's `F.avg_pool2d(x, kernel, stride, padding, count_include_pad=...)` (floor mode).
/// With `count_include_pad = false` each average is over the real cells of its window only
/// (TensorFlow's behaviour, which the FID Inception blocks reproduce).
pub fn avg_pool2d(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    count_include_pad: bool,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let rows = window_counts(h, kernel, stride, padding)?;
    let columns = window_counts(w, kernel, stride, padding)?;
    let pooled =
        pad2d(x, padding, padding)?.avg_pool2d_with_stride((kernel, kernel), (stride, stride))?;
    if count_include_pad || padding == 0 {
        return Ok(pooled);
    }
    // candle divided every window by kernel²: rescale each by kernel² / (its real cells).
    let full = (kernel * kernel) as f64;
    let scale: Vec<f32> = rows
        .iter()
        .flat_map(|&r| columns.iter().map(move |&c| (full / (r * c) as f64) as f32))
        .collect();
    let scale = Tensor::from_vec(scale, (1, 1, rows.len(), columns.len()), x.device())?
        .to_dtype(x.dtype())?;
    pooled.broadcast_mul(&scale)
}

/// Max pooling with a square `kernel`, `stride` and `padding` on every side, as PyTorch's
/// `F.max_pool2d(x, kernel, stride, padding)` (floor mode): padded cells never win.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    pooled_len(h, kernel, stride, padding)?;
    pooled_len(w, kernel, stride, padding)?;
    // Padding by repeating the edge is exact: padding is at most kernel / 2, so every window
    // that reaches into the padding also holds the edge cell the padding repeats.
    let x = if padding > 0 {
        x.pad_with_same(2, padding, padding)?
            .pad_with_same(3, padding, padding)?
    } else {
        x.clone()
    };
    x.max_pool2d_with_stride((kernel, kernel), (stride, stride))
}

/// Mean over the spatial dimensions: (n, c, h, w) -> (n, c) (PyTorch's
/// `AdaptiveAvgPool2d((1, 1))` followed by a flatten).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(2)
}

/// Bilinear resize of an (n, c, h, w) tensor to (n, c, height, width) as PyTorch's
/// `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)` (no
/// antialiasing): output pixel i samples the input at (i + 0.5)·(in / out) − 0.5, clamped at
/// 0, from its two neighbours on each axis. candle's `upsample_bilinear2d` computes exactly
/// this in size mode (in its CPU kernel, for up- and downsampling alike); the same size is
/// returned unchanged.
pub fn resize_bilinear(x: &Tensor, height: usize, width: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if (h, w) == (height, width) {
        return Ok(x.clone());
    }
    if height == 0 || width == 0 {
        candle_core::bail!("resize: target size {height}x{width} must be at least 1x1");
    }
    x.upsample_bilinear2d(height, width, false)
}

/// The kh × kw windows (stride 1, `height` and `width` zero padding on each side) of an
/// (n, c, h, w) tensor as columns (n, c·kh·kw, h_out·w_out), rows ordered like a convolution
/// weight (out, c, kh, kw) flattened to (out, c·kh·kw): a stride-1 convolution is then one
/// matmul of that weight with these columns (im2col).
pub fn unfold(x: &Tensor, kh: usize, kw: usize, height: usize, width: usize) -> Result<Tensor> {
    let padded = pad2d(x, height, width)?;
    let (n, c, h, w) = padded.dims4()?;
    if kh == 0 || kw == 0 || h < kh || w < kw {
        candle_core::bail!("unfold: {kh}x{kw} windows do not fit a padded {h}x{w} input");
    }
    let (h_out, w_out) = (h - kh + 1, w - kw + 1);
    let mut shifted = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            shifted.push(
                padded
                    .narrow(2, i, h_out)?
                    .narrow(3, j, w_out)?
                    .contiguous()?,
            );
        }
    }
    Tensor::stack(&shifted, 2)?.reshape((n, c * kh * kw, h_out * w_out))
}

/// Convolution of (n, c, h, w) by a weight (out, c, kh, kw) with `stride` and zero padding
/// (height, width) on each side, no bias: PyTorch's `F.conv2d(x, weight, stride=stride,
/// padding=padding)`. On the CPU stride-1 convolutions run as [`unfold`] and one matmul per
/// image (a 1×1 input is its own columns), 2–4 times faster than candle's `conv2d` at
/// Inception's sizes; other cases use candle's `conv2d`.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: (usize, usize),
) -> Result<Tensor> {
    let (c_out, c_in, kh, kw) = weight.dims4()?;
    let (n, c, h, w) = x.dims4()?;
    let (ph, pw) = padding;
    if c != c_in || h + 2 * ph < kh || w + 2 * pw < kw {
        candle_core::bail!(
            "conv2d: input {:?} does not fit weight {:?} with padding {padding:?}",
            x.dims(),
            weight.dims()
        );
    }
    if stride == 1 && crate::nn::path::cpu_kernels(x.device()) {
        let columns = if (kh, kw) == (1, 1) && padding == (0, 0) {
            x.reshape((n, c, h * w))?
        } else {
            unfold(x, kh, kw, ph, pw)?
        };
        let (h_out, w_out) = (h + 2 * ph + 1 - kh, w + 2 * pw + 1 - kw);
        let weight = weight.reshape((c_out, c_in * kh * kw))?.broadcast_left(n)?;
        weight.matmul(&columns)?.reshape((n, c_out, h_out, w_out))
    } else if ph == pw {
        x.conv2d(weight, ph, stride, 1, 1)
    } else {
        pad2d(x, ph, pw)?.conv2d(weight, 0, stride, 1, 1)
    }
}
