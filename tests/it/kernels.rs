//! Custom CPU kernels against candle's own ops and finite differences: the fused GroupNorm
//! (+ SiLU), the convolution's paths (bias per channel or per item), the
//! fused linear + bias + SiLU layer of the `mlp`, and the in-place Adam and EMA updates (bit
//! for bit against the tensor arithmetic they replace).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Module;

use scorelab::nn::norm::GroupNorm;
use scorelab::rng::Rng;

pub(crate) fn random(rng: &mut Rng, shape: &[usize], dtype: DType) -> Tensor {
    let count = shape.iter().product();
    Tensor::from_vec(rng.normal_f32(count), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// max |a - b| / max |b|.
pub(crate) fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (values(a), values(b));
    let difference = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    difference / scale.max(1e-30)
}

/// Gradients of sum(f(inputs) * upstream) with respect to every input.
fn gradients(f: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Var], upstream: &Tensor) -> Vec<Tensor> {
    let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = f(&tensors)
        .mul(upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    inputs
        .iter()
        .map(|v| grads.get(v.as_tensor()).expect("a gradient").clone())
        .collect()
}

/// Central differences (step 1e-6, f64) of sum(f(inputs) * upstream) at `probes` entries of
/// every input, against the analytic gradients.
pub(crate) fn check_finite_differences(
    case: &str,
    f: &dyn Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    rng: &mut Rng,
    probes: usize,
) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let output = f(inputs);
    let upstream = random(rng, output.dims(), DType::F64);
    let analytic = gradients(f, &vars, &upstream);
    let objective = |tensors: &[Tensor]| -> f64 {
        f(tensors)
            .mul(&upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let step = 1e-6;
    for (which, input) in inputs.iter().enumerate() {
        let base = values(input);
        let grad = values(&analytic[which]);
        for _ in 0..probes {
            let i = rng.below(base.len());
            let shifted = |delta: f64| {
                let mut moved = base.clone();
                moved[i] += delta;
                let mut tensors = inputs.to_vec();
                tensors[which] = Tensor::from_vec(moved, input.shape(), &Device::Cpu).unwrap();
                objective(&tensors)
            };
            let numeric = (shifted(step) - shifted(-step)) / (2.0 * step);
            let error = (numeric - grad[i]).abs() / numeric.abs().max(1.0);
            assert!(
                error < 1e-6,
                "{case}: input {which}, entry {i}: analytic {} vs finite differences {numeric}",
                grad[i]
            );
        }
    }
}

/// candle_nn's GroupNorm, then SiLU where asked: the reference for ours.
fn reference_group_norm(x: &Tensor, w: &Tensor, b: &Tensor, groups: usize, silu: bool) -> Tensor {
    let channels = w.dim(0).unwrap();
    let norm = candle_nn::GroupNorm::new(w.clone(), b.clone(), channels, groups, 1e-5).unwrap();
    let y = norm.forward(x).unwrap();
    if silu {
        y.silu().unwrap()
    } else {
        y
    }
}

fn our_group_norm(x: &Tensor, w: &Tensor, b: &Tensor, groups: usize, silu: bool) -> Tensor {
    let norm = GroupNorm::new(w.clone(), b.clone(), groups, 1e-5).unwrap();
    if silu {
        norm.forward_silu(x).unwrap()
    } else {
        norm.forward(x).unwrap()
    }
}

const GROUP_NORM_CASES: [(&[usize], usize); 6] = [
    (&[3, 8, 5, 4], 4),
    (&[2, 6, 3, 3], 6),
    (&[2, 4, 7, 2], 1),
    (&[1, 6, 2, 1], 3),
    (&[5, 9, 11], 3),
    (&[2, 12, 7, 9], 4),
];

#[test]
fn group_norm_silu_matches_candle_values_and_gradients() {
    let mut rng = Rng::from_seed(21);
    for (shape, groups) in GROUP_NORM_CASES {
        for silu in [false, true] {
            let channels = shape[1];
            let inputs = [
                Var::from_tensor(&random(&mut rng, shape, DType::F32)).unwrap(),
                Var::from_tensor(&random(&mut rng, &[channels], DType::F32)).unwrap(),
                Var::from_tensor(&random(&mut rng, &[channels], DType::F32)).unwrap(),
            ];
            let ours = |t: &[Tensor]| our_group_norm(&t[0], &t[1], &t[2], groups, silu);
            let reference = |t: &[Tensor]| reference_group_norm(&t[0], &t[1], &t[2], groups, silu);
            let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
            let case = format!("{shape:?}, {groups} groups, silu {silu}");
            let error = relative_error(&ours(&tensors), &reference(&tensors));
            assert!(error < 2e-6, "{case}: output relative error {error}");
            let upstream = random(&mut rng, shape, DType::F32);
            let a = gradients(&ours, &inputs, &upstream);
            let b = gradients(&reference, &inputs, &upstream);
            for (name, (a, b)) in ["input", "weight", "bias"].iter().zip(a.iter().zip(&b)) {
                let error = relative_error(a, b);
                assert!(
                    error < 2e-5,
                    "{case}: {name} gradient relative error {error}"
                );
            }
        }
    }
}

#[test]
fn group_norm_silu_gradients_match_finite_differences() {
    let mut rng = Rng::from_seed(22);
    for (shape, groups) in GROUP_NORM_CASES {
        for silu in [false, true] {
            let channels = shape[1];
            let inputs = [
                random(&mut rng, shape, DType::F64),
                random(&mut rng, &[channels], DType::F64),
                random(&mut rng, &[channels], DType::F64),
            ];
            let case = format!("{shape:?}, {groups} groups, silu {silu}");
            let f = |t: &[Tensor]| our_group_norm(&t[0], &t[1], &t[2], groups, silu);
            check_finite_differences(&case, &f, &inputs, &mut rng, 6);
        }
    }
}

#[test]
fn group_norm_reads_strided_inputs() {
    let mut rng = Rng::from_seed(23);
    let x = random(&mut rng, &[2, 4, 6, 5], DType::F32)
        .transpose(2, 3)
        .unwrap();
    assert!(!x.is_contiguous());
    let (w, b) = (
        random(&mut rng, &[4], DType::F32),
        random(&mut rng, &[4], DType::F32),
    );
    let ours = our_group_norm(&x, &w, &b, 2, true);
    let reference = reference_group_norm(&x.contiguous().unwrap(), &w, &b, 2, true);
    assert!(relative_error(&ours, &reference) < 2e-6);
}

/// Our convolution (im2col + gemm, one backward op for the three gradients) against finite
/// differences in f64, odd sizes and stride 2 included.
#[test]
fn conv_gradients_match_finite_differences() {
    let mut rng = Rng::from_seed(24);
    for (shape, out, kernel, stride, padding) in [
        ([2, 3, 5, 7], 4, 3, 1, 1),
        ([3, 2, 7, 5], 3, 3, 2, 1),
        ([2, 5, 6, 6], 3, 1, 1, 0),
        ([1, 2, 9, 9], 2, 3, 2, 0),
    ] {
        let [_, c, _, _] = shape;
        let inputs = [
            random(&mut rng, &shape, DType::F64),
            random(&mut rng, &[out, c, kernel, kernel], DType::F64),
            random(&mut rng, &[out], DType::F64),
        ];
        let case = format!("{shape:?} -> {out}, k {kernel}, stride {stride}, padding {padding}");
        let f = |t: &[Tensor]| {
            scorelab::nn::conv::conv2d(&t[0], &t[1], Some(&t[2]), stride, padding).unwrap()
        };
        check_finite_differences(&case, &f, &inputs, &mut rng, 6);
    }
}

/// The in-place moving average gives the tensor arithmetic's numbers bit for bit.
#[test]
fn in_place_average_matches_tensor_arithmetic() {
    use scorelab::optim::inplace::Average;
    let mut rng = Rng::from_seed(25);
    for dtype in [DType::F32, DType::F64] {
        for (decay, square) in [(0.9, false), (0.999, true), (0.5, false)] {
            let a = random(&mut rng, &[7, 13], dtype);
            let x = random(&mut rng, &[7, 13], dtype);
            let expected = if square {
                ((&a * decay).unwrap() + (x.sqr().unwrap() * (1.0 - decay)).unwrap()).unwrap()
            } else {
                ((&a * decay).unwrap() + (&x * (1.0 - decay)).unwrap()).unwrap()
            };
            let a = a.copy().unwrap();
            a.inplace_op2(&x, &Average { decay, square }).unwrap();
            assert_eq!(values(&a), values(&expected), "{dtype:?}, decay {decay}");
        }
    }
}

/// Adam on the CPU (in place) against the tensor arithmetic it replaces, over several steps:
/// the same weights bit for bit; and its saved state does not move with later steps.
#[test]
fn adam_in_place_matches_tensor_arithmetic() {
    use scorelab::optim::{Adam, AdamParams};
    let mut rng = Rng::from_seed(26);
    let shapes: [&[usize]; 3] = [&[5, 3], &[17], &[2, 3, 4]];
    let params = AdamParams::with_lr(0.01);
    let vars: Vec<Var> = shapes
        .iter()
        .map(|s| Var::from_tensor(&random(&mut rng, s, DType::F32)).unwrap())
        .collect();
    let mut expected: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap()).collect();
    let mut m: Vec<Tensor> = expected.iter().map(|t| t.zeros_like().unwrap()).collect();
    let mut v = m.clone();
    let mut adam = Adam::new(vars.clone(), params).unwrap();
    let mut saved = None;
    for step in 1..=5 {
        let upstream: Vec<Tensor> = shapes
            .iter()
            .map(|s| random(&mut rng, s, DType::F32))
            .collect();
        // The gradient of sum(w u) is u exactly.
        let loss = vars
            .iter()
            .zip(&upstream)
            .map(|(var, u)| var.as_tensor().mul(u).unwrap().sum_all().unwrap())
            .reduce(|a, b| (a + b).unwrap())
            .unwrap();
        let grads = upstream.clone();
        adam.backward_step(&loss).unwrap();
        let scale_m = 1.0 / (1.0 - params.beta1.powi(step));
        let scale_v = 1.0 / (1.0 - params.beta2.powi(step));
        for i in 0..vars.len() {
            let g = &grads[i];
            m[i] = ((&m[i] * params.beta1).unwrap() + (g * (1.0 - params.beta1)).unwrap()).unwrap();
            v[i] = ((&v[i] * params.beta2).unwrap()
                + (g.sqr().unwrap() * (1.0 - params.beta2)).unwrap())
            .unwrap();
            let m_hat = (&m[i] * scale_m).unwrap();
            let v_hat = (&v[i] * scale_v).unwrap();
            let update = (m_hat / (v_hat.sqrt().unwrap() + params.eps).unwrap()).unwrap();
            expected[i] = (&expected[i] - (update * params.lr).unwrap()).unwrap();
            assert_eq!(
                values(vars[i].as_tensor()),
                values(&expected[i]),
                "variable {i} after step {step}"
            );
        }
        if step == 2 {
            saved = Some((adam.state(), values(&m[0])));
        }
    }
    let (state, first_moment) = saved.unwrap();
    assert_eq!(values(&state.first_moment[0]), first_moment);
}

/// silu((a + b) + (c + d)) fused against the candle ops it replaces: the same numbers bit for
/// bit, forward and every gradient, in f32 and f64; and finite differences in f64.
#[test]
fn bias_add_silu_matches_candle_bit_for_bit() {
    use scorelab::nn::fused::bias_add_silu;
    let mut rng = Rng::from_seed(27);
    for dtype in [DType::F32, DType::F64] {
        for (n, m) in [(5, 3), (1, 7), (16, 33), (128, 64)] {
            let inputs = [
                Var::from_tensor(&random(&mut rng, &[n, m], dtype)).unwrap(),
                Var::from_tensor(&random(&mut rng, &[m], dtype)).unwrap(),
                Var::from_tensor(&random(&mut rng, &[n, m], dtype)).unwrap(),
                Var::from_tensor(&random(&mut rng, &[m], dtype)).unwrap(),
            ];
            let ours = |t: &[Tensor]| bias_add_silu(&t[0], &t[1], &t[2], &t[3]).unwrap();
            let reference = |t: &[Tensor]| {
                t[0].broadcast_add(&t[1])
                    .unwrap()
                    .add(&t[2].broadcast_add(&t[3]).unwrap())
                    .unwrap()
                    .silu()
                    .unwrap()
            };
            let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
            let case = format!("{n}x{m}, {dtype:?}");
            assert_eq!(
                values(&ours(&tensors)),
                values(&reference(&tensors)),
                "{case}"
            );
            let upstream = random(&mut rng, &[n, m], dtype);
            let a = gradients(&ours, &inputs, &upstream);
            let b = gradients(&reference, &inputs, &upstream);
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(values(a), values(b), "{case}: gradient of input {i}");
            }
            if dtype == DType::F64 {
                check_finite_differences(&case, &ours, &tensors, &mut rng, 4);
            }
        }
    }
}

/// The branch-free exp of the fused GroupNorm + SiLU: relative error below 3e-7 against f64's
/// exp over the range where it is not clamped, finite and positive at the clamps.
#[test]
fn fast_exp_is_accurate() {
    use scorelab::nn::norm_op::fast_exp_f32;
    let mut worst = 0f64;
    for i in 0..=200_000 {
        let x = -87.0 + 175.0 * i as f32 / 200_000.0;
        let exact = (x as f64).exp();
        worst = worst.max((fast_exp_f32(x) as f64 - exact).abs() / exact);
    }
    assert!(worst < 3e-7, "relative error {worst}");
    for x in [-1e4f32, -100.0, 100.0, 1e4] {
        let y = fast_exp_f32(x);
        assert!(y.is_finite() && y > 0.0, "e^{x} gave {y}");
    }
    assert_eq!(fast_exp_f32(0.0), 1.0);
}

/// Values and gradients of `ours` against `reference` (candle's own ops) on `inputs`, within
/// relative errors `tolerance` (values, gradients).
pub(crate) fn compare_with_candle(
    case: &str,
    ours: &dyn Fn(&[Tensor]) -> Tensor,
    reference: &dyn Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    rng: &mut Rng,
    tolerance: (f64, f64),
) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (ours(&tensors), reference(&tensors));
    let error = relative_error(&a, &b);
    assert!(error < tolerance.0, "{case}: output relative error {error}");
    let upstream = random(rng, b.dims(), b.dtype());
    let ours = gradients(ours, &vars, &upstream);
    let reference = gradients(reference, &vars, &upstream);
    for (which, (a, b)) in ours.iter().zip(&reference).enumerate() {
        let error = relative_error(a, b);
        assert!(
            error < tolerance.1,
            "{case}: gradient of input {which}: relative error {error}"
        );
    }
}

/// (input shape, out channels, kernel, stride, padding): every path of the convolution's
/// kernels. Stride 1 with padding below the kernel takes both gradients from the output
/// gradient's columns (padded by k - 1 - padding: 2 for padding 0, 0 for padding 2), 1x1 with
/// stride 1 and no padding multiplies the input itself, the rest unfolds it and folds back.
const CONV_CASES: &[([usize; 4], usize, usize, usize, usize)] = &[
    ([2, 3, 7, 5], 4, 3, 1, 0),
    ([2, 3, 6, 7], 2, 3, 1, 2),
    ([3, 2, 9, 8], 3, 5, 1, 2),
    ([2, 5, 5, 5], 3, 5, 1, 1),
    ([3, 4, 6, 6], 5, 1, 1, 0),
    ([2, 4, 7, 7], 3, 1, 2, 0),
    ([2, 3, 9, 7], 4, 3, 2, 1),
    ([1, 2, 4, 4], 3, 3, 1, 1),
    // 288 x 256 columns of the output gradient per item: three items per chunk, three chunks.
    ([9, 16, 16, 16], 32, 3, 1, 1),
];

/// Our convolution with a bias per channel or per item (a residual block's embedding), on
/// contiguous and transposed (strided) inputs, against candle's conv2d + broadcast_add.
#[test]
fn conv_paths_and_per_item_bias_match_candle() {
    use scorelab::nn::conv::conv2d;
    let mut rng = Rng::from_seed(26);
    for &([n, c, h, w], out, kernel, stride, padding) in CONV_CASES {
        for (per_item, strided) in [(false, false), (true, false), (true, true)] {
            let bias_shape = if per_item { vec![n, out] } else { vec![out] };
            // A strided input is read as the transpose of an (n, c, w, h) tensor.
            let stored = if strided { [n, c, w, h] } else { [n, c, h, w] };
            let inputs = [
                random(&mut rng, &stored, DType::F32),
                random(&mut rng, &[out, c, kernel, kernel], DType::F32),
                random(&mut rng, &bias_shape, DType::F32),
            ];
            let input = |t: &Tensor| match strided {
                true => t.transpose(2, 3).unwrap(),
                false => t.clone(),
            };
            let ours =
                |t: &[Tensor]| conv2d(&input(&t[0]), &t[1], Some(&t[2]), stride, padding).unwrap();
            let reference = |t: &[Tensor]| {
                let bias = match per_item {
                    true => t[2].reshape((n, out, 1, 1)).unwrap(),
                    false => t[2].reshape((1, out, 1, 1)).unwrap(),
                };
                input(&t[0])
                    .contiguous()
                    .unwrap()
                    .conv2d(&t[1], padding, stride, 1, 1)
                    .unwrap()
                    .broadcast_add(&bias)
                    .unwrap()
            };
            let case = format!(
                "{:?} -> {out}, k {kernel}, stride {stride}, padding {padding}, bias per item {per_item}, strided {strided}",
                [n, c, h, w]
            );
            assert!(ours(&inputs).is_contiguous(), "{case}");
            compare_with_candle(&case, &ours, &reference, &inputs, &mut rng, (1e-5, 1e-4));
        }
    }
}

/// A per-item bias's gradient and the new paths against finite differences in f64.
#[test]
fn conv_per_item_bias_matches_finite_differences() {
    let mut rng = Rng::from_seed(27);
    for &(shape, out, kernel, stride, padding) in &CONV_CASES[..7] {
        let [n, c, _, _] = shape;
        let inputs = [
            random(&mut rng, &shape, DType::F64),
            random(&mut rng, &[out, c, kernel, kernel], DType::F64),
            random(&mut rng, &[n, out], DType::F64),
        ];
        let case = format!("{shape:?} -> {out}, k {kernel}, stride {stride}, padding {padding}");
        let f = |t: &[Tensor]| {
            scorelab::nn::conv::conv2d(&t[0], &t[1], Some(&t[2]), stride, padding).unwrap()
        };
        check_finite_differences(&case, &f, &inputs, &mut rng, 4);
    }
}
