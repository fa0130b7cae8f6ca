//! `scorelab::nn` layers against candle's own: im2col + matmul convolution (forward and every gradient), GroupNorm, nearest upsampling.

use candle_core::{DType, Device, Tensor, Var};
use std::time::{Duration, Instant};

use scorelab::nn::conv::conv2d;
use scorelab::nn::im2col::{Col2Im, Im2Col};
use scorelab::rng::Rng;

fn random(rng: &mut Rng, shape: &[usize], dtype: DType) -> Tensor {
    let count = shape.iter().product();
    Tensor::from_vec(rng.normal_f32(count), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// max |a - b| / max |b|.
fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let difference = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap();
    let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let difference = difference
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let scale = scale
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    difference / scale.max(1e-30)
}

/// Output and gradients (input, weight, bias) of sum(conv(x) * r), ours and candle's.
fn compare(
    shape: [usize; 4],
    out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dtype: DType,
) {
    compare_with((shape, out, kernel, stride, padding), dtype, true);
}

/// [`compare`], the input a variable or (`input_variable` false) a constant, whose gradient
/// the convolution then leaves out: the weight's and bias's must not change.
fn compare_with(
    (shape, out, kernel, stride, padding): ([usize; 4], usize, usize, usize, usize),
    dtype: DType,
    input_variable: bool,
) {
    let [n, c, _, _] = shape;
    let mut rng = Rng::from_seed((n * 1000 + c * 100 + kernel * 10 + stride + padding) as u64);
    let x = Var::from_tensor(&random(&mut rng, &shape, dtype)).unwrap();
    let weight = Var::from_tensor(&random(&mut rng, &[out, c, kernel, kernel], dtype)).unwrap();
    let bias = Var::from_tensor(&random(&mut rng, &[out], dtype)).unwrap();
    let input = match input_variable {
        true => x.as_tensor().clone(),
        false => x.as_tensor().detach(),
    };
    let ours = conv2d(
        &input,
        weight.as_tensor(),
        Some(bias.as_tensor()),
        stride,
        padding,
    )
    .unwrap();
    let reference = x
        .as_tensor()
        .conv2d(weight.as_tensor(), padding, stride, 1, 1)
        .unwrap()
        .broadcast_add(&bias.as_tensor().reshape((1, out, 1, 1)).unwrap())
        .unwrap();
    let case = format!(
        "{shape:?} -> {out}, k {kernel}, stride {stride}, padding {padding}, {dtype:?}, input variable {input_variable}"
    );
    assert_eq!(ours.dims(), reference.dims(), "{case}");
    assert!(ours.is_contiguous(), "{case}");
    let error = relative_error(&ours, &reference);
    assert!(error < 1e-5, "{case}: output relative error {error}");
    let upstream = random(&mut rng, reference.dims(), dtype);
    let ours = ours
        .mul(&upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let reference = reference
        .mul(&upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    if !input_variable {
        assert!(
            ours.get(x.as_tensor()).is_none(),
            "{case}: a constant's gradient"
        );
    }
    let checked = [("input", &x), ("weight", &weight), ("bias", &bias)];
    for (name, var) in &checked[usize::from(!input_variable)..] {
        let a = ours.get(var.as_tensor()).expect("our gradient");
        let b = reference.get(var.as_tensor()).expect("candle's gradient");
        let error = relative_error(a, b);
        assert!(
            error < 1e-4,
            "{case}: {name} gradient relative error {error}"
        );
    }
}

#[test]
fn conv_matches_candle_forward_and_gradients() {
    for (shape, out, kernel, stride, padding) in [
        ([2, 3, 8, 8], 4, 3, 1, 1),
        ([3, 2, 7, 9], 5, 3, 1, 0),
        ([2, 4, 8, 8], 3, 3, 2, 1),
        ([2, 3, 9, 7], 2, 3, 2, 0),
        ([4, 5, 6, 6], 6, 1, 1, 0),
        ([2, 3, 8, 8], 4, 1, 2, 0),
        ([2, 2, 5, 5], 3, 1, 1, 1),
        ([1, 1, 4, 4], 1, 3, 1, 1),
        // One output channel, in two chunks of items.
        ([9, 16, 16, 16], 1, 3, 1, 1),
        ([2, 3, 6, 6], 2, 2, 2, 0),
        // 144 x 256 columns per item: chunks of 7 items, so 9 items take two chunks (the
        // direct kernel's 3x3 same convolutions: 16x16, 8x8, 4x4 and 32x16 planes).
        ([9, 16, 16, 16], 8, 3, 1, 1),
        ([2, 40, 32, 16], 12, 3, 1, 1),
        ([9, 16, 32, 32], 4, 3, 2, 1),
        // Winograd F(2x2, 3x3): at least 64 channels each side, 3x3, stride 1, padding 1; odd
        // sizes cut the last tiles; 9 items of 64 channels at 16x16 take two chunks.
        ([3, 64, 8, 8], 64, 3, 1, 1),
        ([2, 64, 7, 5], 72, 3, 1, 1),
        ([2, 96, 4, 4], 64, 3, 1, 1),
        ([1, 64, 1, 3], 65, 3, 1, 1),
        ([9, 64, 16, 16], 64, 3, 1, 1),
    ] {
        compare(shape, out, kernel, stride, padding, DType::F32);
    }
    compare([2, 3, 8, 8], 4, 3, 1, 1, DType::F64);
    compare([2, 3, 9, 9], 4, 3, 2, 1, DType::F64);
    compare([2, 64, 6, 7], 64, 3, 1, 1, DType::F64);
}

/// A constant input (a network's image) gets no gradient, and each kernel path skips its work:
/// fewer input than output channels (the input unfolded), the gradient's flipped unfolding,
/// 1x1, stride 2 and Winograd.
#[test]
fn conv_of_a_constant_input_has_the_same_weight_gradients() {
    for geometry in [
        ([9, 1, 16, 16], 16, 3, 1, 1),
        ([3, 8, 8, 8], 4, 3, 1, 1),
        ([4, 5, 6, 6], 6, 1, 1, 0),
        ([2, 4, 8, 8], 3, 3, 2, 1),
        ([2, 64, 6, 6], 64, 3, 1, 1),
    ] {
        compare_with(geometry, DType::F32, false);
    }
    compare_with(([2, 2, 7, 7], 5, 3, 1, 1), DType::F64, false);
}

#[test]
fn conv_reads_strided_inputs() {
    let mut rng = Rng::from_seed(5);
    // A transposed view: (n, c, w, h) read as (n, c, h, w) without a copy.
    let x = random(&mut rng, &[2, 3, 6, 5], DType::F32)
        .transpose(2, 3)
        .unwrap();
    assert!(!x.is_contiguous());
    let weight = random(&mut rng, &[4, 3, 3, 3], DType::F32);
    let ours = conv2d(&x, &weight, None, 1, 1).unwrap();
    let reference = x.contiguous().unwrap().conv2d(&weight, 1, 1, 1, 1).unwrap();
    assert!(relative_error(&ours, &reference) < 1e-5);
    // The same through the direct kernel (planes whose rows tile 16 lanes).
    let x = random(&mut rng, &[2, 5, 8, 8], DType::F32)
        .transpose(2, 3)
        .unwrap();
    let weight = random(&mut rng, &[9, 5, 3, 3], DType::F32);
    let ours = conv2d(&x, &weight, None, 1, 1).unwrap();
    let reference = x.contiguous().unwrap().conv2d(&weight, 1, 1, 1, 1).unwrap();
    assert!(relative_error(&ours, &reference) < 1e-5);
    // The same through Winograd (64 channels or more).
    let x = random(&mut rng, &[2, 64, 6, 5], DType::F32)
        .transpose(2, 3)
        .unwrap();
    let weight = random(&mut rng, &[64, 64, 3, 3], DType::F32);
    let ours = conv2d(&x, &weight, None, 1, 1).unwrap();
    let reference = x.contiguous().unwrap().conv2d(&weight, 1, 1, 1, 1).unwrap();
    assert!(relative_error(&ours, &reference) < 1e-5);
}

/// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>, and each op's gradient is
/// the other (checked through a second-order product).
#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let mut rng = Rng::from_seed(9);
    for (kernel, stride, padding) in [(3, 1, 1), (3, 2, 1), (1, 2, 0), (2, 2, 0)] {
        let x = random(&mut rng, &[2, 3, 7, 6], DType::F64);
        let unfold = Im2Col {
            kernel,
            stride,
            padding,
        };
        let columns = x.apply_op1_no_bwd(&unfold).unwrap();
        let c = random(&mut rng, columns.dims(), DType::F64);
        let fold = Col2Im {
            kernel,
            stride,
            padding,
            batch: 2,
            channels: 3,
            height: 7,
            width: 6,
        };
        let folded = c.apply_op1_no_bwd(&fold).unwrap();
        let left = columns
            .mul(&c)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let right = x
            .mul(&folded)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            (left - right).abs() < 1e-9 * left.abs().max(1.0),
            "k {kernel} s {stride} p {padding}: {left} vs {right}"
        );

        // d/dc <col2im(c), x> = im2col(x): Col2Im's backward is Im2Col.
        let c = Var::from_tensor(&c).unwrap();
        let grads = c
            .as_tensor()
            .apply_op1(fold)
            .unwrap()
            .mul(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(relative_error(grads.get(c.as_tensor()).unwrap(), &columns) < 1e-12);
    }
}

/// Forward + backward time of a 3x3 conv, batch 64, 32 -> 32 channels, 16x16: ours against
/// candle's. `RAYON_NUM_THREADS=1 cargo test --release --test it conv_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn conv_timing() {
    let repeats = 10;
    let ours = time_forward_backward(false, 64, 32, 32, 16, 3, repeats).unwrap();
    let candle = time_forward_backward(true, 64, 32, 32, 16, 3, repeats).unwrap();
    println!(
        "conv 3x3, batch 64, 32 -> 32, 16x16, forward + backward: im2col + matmul {:.1} ms, candle {:.1} ms ({:.1}x)",
        ours.as_secs_f64() * 1e3,
        candle.as_secs_f64() * 1e3,
        candle.as_secs_f64() / ours.as_secs_f64()
    );
}

/// Our GroupNorm (normalisation by candle ops, scale and shift by one custom op) against
/// candle_nn's: output and the gradients of input, scale and shift.
#[test]
fn group_norm_matches_candle() {
    use candle_nn::Module;
    let mut rng = Rng::from_seed(11);
    for (shape, groups) in [([3, 8, 5, 4], 4), ([2, 6, 3, 3], 6), ([2, 4, 7, 2], 1)] {
        let channels = shape[1];
        let x = Var::from_tensor(&random(&mut rng, &shape, DType::F32)).unwrap();
        let weight = Var::from_tensor(&random(&mut rng, &[channels], DType::F32)).unwrap();
        let bias = Var::from_tensor(&random(&mut rng, &[channels], DType::F32)).unwrap();
        let (w, b) = (weight.as_tensor().clone(), bias.as_tensor().clone());
        let ours = scorelab::nn::norm::GroupNorm::new(w.clone(), b.clone(), groups, 1e-5).unwrap();
        let reference = candle_nn::GroupNorm::new(w, b, channels, groups, 1e-5).unwrap();
        let ours = ours.forward(x.as_tensor()).unwrap();
        let reference = reference.forward(x.as_tensor()).unwrap();
        assert!(relative_error(&ours, &reference) < 1e-5);
        let upstream = random(&mut rng, &shape, DType::F32);
        let ours = ours
            .mul(&upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let reference = reference
            .mul(&upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, var) in [("input", &x), ("weight", &weight), ("bias", &bias)] {
            let error = relative_error(
                ours.get(var.as_tensor()).unwrap(),
                reference.get(var.as_tensor()).unwrap(),
            );
            assert!(
                error < 1e-4,
                "{shape:?}, {groups} groups: {name} gradient relative error {error}"
            );
        }
    }
}

/// Nearest 2x upsampling against candle's, forward and gradient (strided input included).
#[test]
fn upsample_matches_candle() {
    let mut rng = Rng::from_seed(12);
    let x = Var::from_tensor(&random(&mut rng, &[2, 3, 4, 5], DType::F32)).unwrap();
    for input in [
        x.as_tensor().clone(),
        x.as_tensor().transpose(2, 3).unwrap(),
    ] {
        let (_, _, h, w) = input.dims4().unwrap();
        let ours = scorelab::nn::blocks::upsample_nearest2x(&input).unwrap();
        let reference = input.upsample_nearest2d(2 * h, 2 * w).unwrap();
        assert_eq!(relative_error(&ours, &reference), 0.0);
        let upstream = random(&mut rng, ours.dims(), DType::F32);
        let ours = ours
            .mul(&upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let reference = reference
            .mul(&upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let error = relative_error(
            ours.get(x.as_tensor()).unwrap(),
            reference.get(x.as_tensor()).unwrap(),
        );
        assert!(error < 1e-6, "upsample gradient relative error {error}");
    }
}

/// Mean time of one forward + backward pass (loss = sum of squares of the output) of a
/// `kernel`x`kernel` convolution, stride 1, padding kernel / 2, batch `batch`, `channels_in` ->
/// `channels_out`, on `size`x`size` images, over `repeats` passes after one warm-up: with
/// im2col + matmul (`candle: false`) or candle's own `Tensor::conv2d` (`candle: true`).
/// Threads follow RAYON_NUM_THREADS.
fn time_forward_backward(
    candle: bool,
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    size: usize,
    kernel: usize,
    repeats: usize,
) -> candle_core::Result<Duration> {
    let device = Device::Cpu;
    let mut rng = Rng::from_seed(0);
    let mut variable = |shape: &[usize]| -> candle_core::Result<Var> {
        let count = shape.iter().product();
        Var::from_tensor(&Tensor::from_vec(rng.normal_f32(count), shape, &device)?)
    };
    let x = variable(&[batch, channels_in, size, size])?;
    let weight = variable(&[channels_out, channels_in, kernel, kernel])?;
    let bias = variable(&[channels_out])?;
    let padding = kernel / 2;
    let pass = || -> candle_core::Result<()> {
        let y = if candle {
            x.as_tensor()
                .conv2d(weight.as_tensor(), padding, 1, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, channels_out, 1, 1))?)?
        } else {
            conv2d(
                x.as_tensor(),
                weight.as_tensor(),
                Some(bias.as_tensor()),
                1,
                padding,
            )?
        };
        let grads = y.sqr()?.sum_all()?.backward()?;
        for var in [&x, &weight, &bias] {
            if grads.get(var.as_tensor()).is_none() {
                candle_core::bail!("conv2d timing: a variable got no gradient");
            }
        }
        Ok(())
    };
    pass()?;
    let start = Instant::now();
    for _ in 0..repeats {
        pass()?;
    }
    Ok(start.elapsed() / repeats.max(1) as u32)
}
