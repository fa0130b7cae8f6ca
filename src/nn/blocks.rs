//! Building blocks of noise-conditional convolutional networks (DDPM / NCSN++ style): residual
//! blocks that take an embedding, dropout with a seeded mask, and 2x resampling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor, WithDType};
use candle_nn::{Module, VarMap};

use crate::nn::conv::Conv2d;
use crate::nn::linear::Linear;
use crate::nn::norm::GroupNorm;
use crate::nn::{init, norm};
use crate::rng::Rng;

/// Dropout that is active only in training (see [`Dropout::set_training`]) and draws its masks
/// from our seeded generator, so a training run is reproducible (candle's `ops::dropout` draws
/// from an unseeded one). Inactive, it returns its input unchanged.
pub struct Dropout {
    rate: f64,
    training: AtomicBool,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Drops each element with probability `rate` (in [0, 1)) and scales the rest by
    /// 1 / (1 - rate). Starts in evaluation mode.
    pub fn new(rate: f64, rng: Rng) -> candle_core::Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            candle_core::bail!("dropout rate {rate} must be in [0, 1)");
        }
        Ok(Self {
            rate,
            training: AtomicBool::new(false),
            rng: Mutex::new(rng),
        })
    }

    pub fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    /// Where its mask generator stands (saved with training checkpoints).
    pub fn rng_state(&self) -> crate::rng::RngState {
        self.rng
            .lock()
            .expect("dropout generator lock poisoned")
            .state()
    }

    pub fn restore_rng_state(&self, state: &crate::rng::RngState) -> Result<(), String> {
        *self.rng.lock().expect("dropout generator lock poisoned") = Rng::from_state(state)?;
        Ok(())
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.rate == 0.0 || !self.training.load(Ordering::Relaxed) {
            return Ok(x.clone());
        }
        let keep = (1.0 / (1.0 - self.rate)) as f32;
        let mask: Vec<f32> = {
            let mut rng = self.rng.lock().expect("dropout generator lock poisoned");
            (0..x.elem_count())
                .map(|_| if rng.uniform() < self.rate { 0.0 } else { keep })
                .collect()
        };
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?)
    }
}

/// GroupNorm -> SiLU -> conv3x3 -> + Linear(embedding) -> GroupNorm -> SiLU -> dropout ->
/// conv3x3, plus the input (through a 1x1 convolution when the channel counts differ).
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    embedding: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    /// Parameters under `name.norm1`, `name.conv1`, `name.embedding` (absent when
    /// `embedding_dim` is 0), `name.norm2`, `name.conv2` and `name.skip` (when `input !=
    /// output`). `groups` must divide both channel counts.
    pub fn new(
        variables: &VarMap,
        name: &str,
        (input, output): (usize, usize),
        embedding_dim: usize,
        groups: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        let norm1 = norm::group_norm(variables, &format!("{name}.norm1"), groups, input, device)?;
        let conv1 = init::conv2d(
            variables,
            &format!("{name}.conv1"),
            (input, output),
            (3, 1, 1),
            device,
            rng,
        )?;
        let embedding = match embedding_dim {
            0 => None,
            dim => Some(init::linear(
                variables,
                &format!("{name}.embedding"),
                dim,
                output,
                device,
                rng,
            )?),
        };
        let norm2 = norm::group_norm(variables, &format!("{name}.norm2"), groups, output, device)?;
        let conv2 = init::conv2d(
            variables,
            &format!("{name}.conv2"),
            (output, output),
            (3, 1, 1),
            device,
            rng,
        )?;
        let skip = match input == output {
            true => None,
            false => Some(init::conv2d(
                variables,
                &format!("{name}.skip"),
                (input, output),
                (1, 1, 0),
                device,
                rng,
            )?),
        };
        Ok(Self {
            norm1,
            conv1,
            embedding,
            norm2,
            conv2,
            skip,
        })
    }

    /// x (n, input, h, w) and the activated embedding (n, embedding_dim) -> (n, output, h, w).
    pub fn forward(
        &self,
        x: &Tensor,
        embedding: Option<&Tensor>,
        dropout: &Dropout,
    ) -> candle_core::Result<Tensor> {
        let normed = self.norm1.forward_silu(x)?;
        // The embedding's projection is added per item and channel by the convolution itself.
        let h = match (&self.embedding, embedding) {
            (Some(layer), Some(embedding)) => self
                .conv1
                .forward_shifted(&normed, &layer.forward(embedding)?)?,
            _ => self.conv1.forward(&normed)?,
        };
        let h = self
            .conv2
            .forward(&dropout.forward(&self.norm2.forward_silu(&h)?)?)?;
        match &self.skip {
            Some(skip) => skip.forward(x)? + h,
            None => x + h,
        }
    }
}

/// Nearest-neighbour 2x upsampling, (n, c, h, w) -> (n, c, 2h, 2w). candle's
/// `upsample_nearest2d` costs ~10 ns per output element on the CPU; this is a plain copy. Its
/// gradient is [`SumPool2`].
#[derive(Clone, Copy, Debug)]
pub struct Upsample2;

/// The adjoint of [`Upsample2`]: (n, c, 2h, 2w) -> (n, c, h, w), each output the sum of its 2x2
/// block. Its gradient is [`Upsample2`].
#[derive(Clone, Copy, Debug)]
pub struct SumPool2;

fn dims4(layout: &Layout, what: &str) -> candle_core::Result<([usize; 4], [usize; 4])> {
    match (layout.dims(), layout.stride()) {
        (&[n, c, h, w], &[s0, s1, s2, s3]) => Ok(([n, c, h, w], [s0, s1, s2, s3])),
        (dims, _) => {
            candle_core::bail!("{what}: expected an (n, c, h, w) input, got shape {dims:?}")
        }
    }
}

fn upsample2<T: WithDType>(src: &[T], layout: &Layout) -> candle_core::Result<Vec<T>> {
    let ([n, c, h, w], [s0, s1, s2, s3]) = dims4(layout, "upsample2")?;
    let offset = layout.start_offset();
    let mut dst = Vec::with_capacity(n * c * 4 * h * w);
    let mut row = Vec::with_capacity(2 * w);
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                let base = offset + b * s0 + ch * s1 + y * s2;
                row.clear();
                row.extend((0..w).flat_map(|x| [src[base + x * s3]; 2]));
                dst.extend_from_slice(&row);
                dst.extend_from_slice(&row);
            }
        }
    }
    Ok(dst)
}

fn sum_pool2<T: WithDType>(src: &[T], layout: &Layout) -> candle_core::Result<Vec<T>> {
    let ([n, c, h2, w2], [s0, s1, s2, s3]) = dims4(layout, "sum_pool2")?;
    if h2 % 2 != 0 || w2 % 2 != 0 {
        candle_core::bail!("sum_pool2: height and width must be even, got {h2}x{w2}");
    }
    let (h, w) = (h2 / 2, w2 / 2);
    let offset = layout.start_offset();
    let mut dst = Vec::with_capacity(n * c * h * w);
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                let top = offset + b * s0 + ch * s1 + 2 * y * s2;
                let bottom = top + s2;
                dst.extend((0..w).map(|x| {
                    let (left, right) = (2 * x * s3, (2 * x + 1) * s3);
                    src[top + left] + src[top + right] + src[bottom + left] + src[bottom + right]
                }));
            }
        }
    }
    Ok(dst)
}

impl CustomOp1 for Upsample2 {
    fn name(&self) -> &'static str {
        "upsample2"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ([n, c, h, w], _) = dims4(layout, "upsample2")?;
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(upsample2(src, layout)?),
            CpuStorage::F64(src) => CpuStorage::F64(upsample2(src, layout)?),
            other => candle_core::bail!(
                "upsample2: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, Shape::from((n, c, 2 * h, 2 * w))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.apply_op1(SumPool2)?))
    }
}

impl CustomOp1 for SumPool2 {
    fn name(&self) -> &'static str {
        "sum_pool2"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ([n, c, h, w], _) = dims4(layout, "sum_pool2")?;
        let result = match storage {
            CpuStorage::F32(src) => CpuStorage::F32(sum_pool2(src, layout)?),
            CpuStorage::F64(src) => CpuStorage::F64(sum_pool2(src, layout)?),
            other => candle_core::bail!(
                "sum_pool2: dtype {:?} is not supported (f32, f64)",
                other.dtype()
            ),
        };
        Ok((result, Shape::from((n, c, h / 2, w / 2))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.apply_op1(Upsample2)?))
    }
}

/// Nearest-neighbour 2x upsampling: [`Upsample2`] on the CPU, candle's `upsample_nearest2d`
/// elsewhere.
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    if crate::nn::path::cpu_kernels(x.device()) {
        x.apply_op1(Upsample2)
    } else {
        let (_, _, h, w) = x.dims4()?;
        x.upsample_nearest2d(2 * h, 2 * w)
    }
}

/// Nearest-neighbour 2x upsampling followed by a 3x3 convolution (DDPM's Upsample).
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    pub fn new(
        variables: &VarMap,
        name: &str,
        channels: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            conv: init::conv2d(
                variables,
                &format!("{name}.conv"),
                (channels, channels),
                (3, 1, 1),
                device,
                rng,
            )?,
        })
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.conv.forward(&upsample_nearest2x(x)?)
    }
}

/// A 3x3 convolution with stride 2 (DDPM's Downsample): halves the height and width.
pub fn downsample(
    variables: &VarMap,
    name: &str,
    channels: usize,
    device: &Device,
    rng: &mut Rng,
) -> candle_core::Result<Conv2d> {
    init::conv2d(
        variables,
        &format!("{name}.conv"),
        (channels, channels),
        (3, 2, 1),
        device,
        rng,
    )
}
