//! The `mlp`'s inference path against the plain ops it stands for, bit for bit: the
//! vectorised e^x of its fused SiLU against the C library's, the fused op with one condition
//! row shared by the batch, and the whole network at one noise level (a sampler's step,
//! where the condition products are taken once) and at per-row levels (training).

use candle_core::{DType, Device, Tensor, Var};
use scorelab::nn::fused::bias_add_silu;
use scorelab::nn::fused::expf::{exp_in_place, exp_in_place_with, probes, vector_path, Path};
use scorelab::nn::linear::times_transposed;
use scorelab::rng::Rng;

use crate::common::resolve;

fn bits(t: &Tensor) -> Vec<u64> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        _ => t
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
    }
}

fn random(rng: &mut Rng, shape: &[usize], dtype: DType) -> Tensor {
    let count = shape.iter().product();
    Tensor::from_vec(rng.normal_f32(count), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn assert_same_exp(xs: &[f32], ys: &[f32]) {
    for (x, y) in xs.iter().zip(ys) {
        let want = x.exp();
        assert!(
            want.to_bits() == y.to_bits() || (want.is_nan() && y.is_nan()),
            "exp({x:e}) = {y:e}, the library gives {want:e}"
        );
    }
}

/// Every 257th float of [-110, 110] (across the library's branch at |x| = 88), the probes and
/// the specials, at several alignments of the 8-lane chunks and as short tails: each result
/// is `f32::exp`'s bit for bit, by each path this CPU can run (`Library` where it cannot).
/// All 2^32 inputs were checked once by both vector paths, 0 mismatches.
#[test]
fn vector_exp_is_the_library_exp() {
    let mut xs: Vec<f32> = probes().collect();
    let (low, high) = ((-110.0f32).to_bits(), 110.0f32.to_bits());
    xs.extend((0..high).step_by(257).map(f32::from_bits));
    xs.extend((0x8000_0000..low).step_by(257).map(f32::from_bits));
    xs.extend([
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        88.7,
        -103.5,
        -104.0,
    ]);
    for path in [Path::Avx512, Path::Avx2] {
        for offset in [0, 3, 7] {
            let mut ys = xs[offset..].to_vec();
            exp_in_place_with(path, &mut ys);
            assert_same_exp(&xs[offset..], &ys);
        }
    }
    for tail in xs.chunks(7).step_by(97) {
        let mut ys = tail.to_vec();
        exp_in_place(&mut ys);
        assert_same_exp(tail, &ys);
    }
    // On an x86-64 CPU with AVX2 and FMA and glibc's expf, a vector path is on.
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert_ne!(vector_path(), Path::Library);
    }
}

/// silu((a + b) + (c + d)) with c one row for the whole batch: the output and the gradients
/// of a and of the biases are those of c broadcast to every row, bit for bit; c's gradient is
/// its rows' sum (as candle's broadcast gives it, to rounding).
#[test]
fn shared_condition_row_matches_the_broadcast() {
    let mut rng = Rng::from_seed(5);
    for dtype in [DType::F32, DType::F64] {
        for (n, m) in [(1, 7), (3, 5), (40, 33), (128, 64)] {
            let a = Var::from_tensor(&random(&mut rng, &[n, m], dtype)).unwrap();
            let b = Var::from_tensor(&random(&mut rng, &[m], dtype)).unwrap();
            let c = Var::from_tensor(&random(&mut rng, &[1, m], dtype)).unwrap();
            let d = Var::from_tensor(&random(&mut rng, &[m], dtype)).unwrap();
            let upstream = random(&mut rng, &[n, m], dtype);
            let ours = bias_add_silu(&a, &b, &c, &d).unwrap();
            let full = c.broadcast_as((n, m)).unwrap().contiguous().unwrap();
            let expected = bias_add_silu(&a, &b, &full, &d).unwrap();
            let reference = a
                .broadcast_add(&b)
                .unwrap()
                .broadcast_add(&c.broadcast_add(&d).unwrap())
                .unwrap()
                .silu()
                .unwrap();
            let case = format!("{n}x{m} {dtype:?}");
            assert_eq!(bits(&ours), bits(&expected), "{case}");
            assert_eq!(bits(&ours), bits(&reference), "{case}: against candle");
            let grads = ours
                .mul(&upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let wanted = reference
                .mul(&upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (name, var) in [("a", &a), ("b", &b), ("d", &d)] {
                let (got, want) = (grads.get(var).unwrap(), wanted.get(var).unwrap());
                assert_eq!(bits(got), bits(want), "{case}: gradient of {name}");
            }
            let (got, want) = (grads.get(&c).unwrap(), wanted.get(&c).unwrap());
            assert_eq!(got.dims(), [1, m]);
            let gap = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let tolerance = if dtype == DType::F32 { 1e-4 } else { 1e-12 };
            assert!(gap < tolerance, "{case}: c's gradient off by {gap}");
        }
    }
}

/// The `mlp` as the ops its documentation names: the log-sigma embedding
/// [sin(k ln sigma), cos(k ln sigma)], silu(h Wᵀ + b + (e Vᵀ + d)) per hidden layer, a linear
/// output; candle's ops but for the row-invariant products (tests/it/row_invariance.rs
/// compares those with candle's matmul).
fn reference_forward(
    variables: &candle_nn::VarMap,
    layers: usize,
    x: &Tensor,
    sigma: &Tensor,
) -> Tensor {
    let data = variables.data().lock().unwrap();
    let var = |name: &str| data[name].as_tensor().clone();
    let linear = |h: &Tensor, name: &str| {
        times_transposed(h, &var(&format!("{name}.weight")))
            .unwrap()
            .broadcast_add(&var(&format!("{name}.bias")))
            .unwrap()
    };
    let half = var("condition0.weight").dim(1).unwrap() / 2;
    let frequencies: Vec<f32> = (1..=half).map(|k| k as f32).collect();
    let frequencies = Tensor::from_vec(frequencies, (1, half), &Device::Cpu).unwrap();
    let angles = sigma.log().unwrap().broadcast_mul(&frequencies).unwrap();
    let embedding = Tensor::cat(&[angles.sin().unwrap(), angles.cos().unwrap()], 1).unwrap();
    let mut h = x.clone();
    for layer in 0..layers {
        let name = if layer == 0 {
            "input".to_string()
        } else {
            format!("hidden{layer}")
        };
        let condition = linear(&embedding, &format!("condition{layer}"));
        h = linear(&h, &name).add(&condition).unwrap().silu().unwrap();
    }
    linear(&h, "output")
}

/// Whole-network forward at one noise level for the batch (where the `mlp` takes the
/// condition products on one row and shares it) and at per-row levels, for several widths,
/// embeddings of 2 (gemm's 2-term path) and 32, batches of 1, 16, 17 and 300: the same bits
/// as the plain ops.
#[test]
fn mlp_forward_matches_plain_ops_bit_for_bit() {
    let experiment = r#"
seed: 1
num_samples: 10
data: {kind: gmm, means: [[-1.0, 0.0], [1.0, 0.0]], stds: [0.3, 0.3], weights: [0.5, 0.5]}
schedule: {kind: geometric, num_levels: 5, sigma_max: 3.0, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp}
train: {steps: 1, batch_size: 8, train_size: 50}
sampler: {kind: euler, steps: 2}
eval: []
"#;
    let mut rng = Rng::from_seed(11);
    for (hidden, layers, embedding) in [(8, 2, 32), (17, 2, 32), (128, 3, 32), (64, 2, 2)] {
        let overrides = [
            format!("network.hidden={hidden}"),
            format!("network.layers={layers}"),
            format!("network.embedding={embedding}"),
        ];
        let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
        let trial = resolve(experiment, &overrides).unwrap().remove(0);
        let model = trial.new_model(&mut Rng::from_seed(3)).unwrap();
        let network = model.network().unwrap();
        for n in [1, 16, 17, 300] {
            let x = random(&mut rng, &[n, 2], DType::F32);
            let levels: Vec<f32> = (0..n).map(|i| 0.05 + 0.01 * i as f32).collect();
            for (levels, sigma) in [
                (
                    "one level",
                    Tensor::full(0.7f32, (n, 1), &Device::Cpu).unwrap(),
                ),
                (
                    "per row",
                    Tensor::from_vec(levels, (n, 1), &Device::Cpu).unwrap(),
                ),
            ] {
                let ours = network.forward(&x, &sigma, None).unwrap();
                let theirs = reference_forward(network.variables(), layers, &x, &sigma);
                assert_eq!(
                    bits(&ours),
                    bits(&theirs),
                    "hidden {hidden}, embedding {embedding}, batch {n}, {levels}"
                );
            }
        }
    }
}
