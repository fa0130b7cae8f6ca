//! One function on every device: each CPU kernel (convolution, GroupNorm with and without
//! SiLU, attention, the MLP's fused bias-add-SiLU, upsampling, Inception's convolution) and
//! the networks built from them, against the path a CUDA run takes — candle's ops, forced on
//! the CPU by `nn::path::with_candle_ops` — for values and every gradient.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, VarMap};

use scorelab::network::{Instance, Network};
use scorelab::nn::path::with_candle_ops;
use scorelab::rng::Rng;

use crate::common::resolve;
use crate::kernels::{compare_with_candle, random, relative_error};

/// (values, gradients) relative tolerances: the two paths sum in different orders in f32.
const TOLERANCE: (f64, f64) = (2e-5, 2e-4);

/// `layer` on its inputs, on our kernels and on candle's ops.
fn both_paths(case: &str, layer: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], seed: u64) {
    let fallback = |t: &[Tensor]| with_candle_ops(|| layer(t));
    let mut rng = Rng::from_seed(seed);
    compare_with_candle(case, layer, &fallback, inputs, &mut rng, TOLERANCE);
}

#[test]
fn convolutions_compute_the_same_on_both_paths() {
    use scorelab::nn::conv::conv2d;
    let mut rng = Rng::from_seed(1);
    // (input, out channels, kernel, stride, padding)
    let cases: [([usize; 4], usize, usize, usize, usize); 5] = [
        ([2, 3, 7, 5], 4, 3, 1, 0),
        ([2, 3, 6, 7], 2, 3, 1, 2),
        ([3, 4, 6, 6], 5, 1, 1, 0),
        ([2, 3, 9, 7], 4, 3, 2, 1),
        ([2, 8, 8, 8], 8, 3, 1, 1),
    ];
    for (i, &([n, c, h, w], out, k, stride, padding)) in cases.iter().enumerate() {
        let x = random(&mut rng, &[n, c, h, w], DType::F32);
        let weight = random(&mut rng, &[out, c, k, k], DType::F32);
        let per_channel = random(&mut rng, &[out], DType::F32);
        let per_item = random(&mut rng, &[n, out], DType::F32);
        for (what, bias) in [("channel", per_channel), ("item", per_item)] {
            both_paths(
                &format!("conv2d case {i}, bias per {what}"),
                &|t| conv2d(&t[0], &t[1], Some(&t[2]), stride, padding).unwrap(),
                &[x.clone(), weight.clone(), bias],
                i as u64,
            );
        }
    }
    // Inception's convolution (no bias): stride 1 has its own CPU path (strided ones are
    // candle's on both).
    for (stride, padding) in [(1, (1, 0)), (1, (0, 0)), (1, (2, 2))] {
        let x = random(&mut rng, &[2, 3, 8, 7], DType::F32);
        let weight = random(&mut rng, &[4, 3, 3, 1], DType::F32);
        both_paths(
            &format!("pool::conv2d stride {stride} padding {padding:?}"),
            &|t| scorelab::nn::pool::conv2d(&t[0], &t[1], stride, padding).unwrap(),
            &[x, weight],
            7,
        );
    }
}

#[test]
fn group_norm_with_and_without_silu_computes_the_same_on_both_paths() {
    use scorelab::nn::norm::GroupNorm;
    let mut rng = Rng::from_seed(2);
    for (shape, groups) in [([2, 8, 5, 3], 4), ([3, 6, 4, 4], 3), ([1, 4, 1, 1], 1)] {
        let x = random(&mut rng, &shape, DType::F32);
        let weight = random(&mut rng, &[shape[1]], DType::F32);
        let bias = random(&mut rng, &[shape[1]], DType::F32);
        for silu in [false, true] {
            both_paths(
                &format!("group norm {shape:?} groups {groups} silu {silu}"),
                &|t| {
                    let norm = GroupNorm::new(t[1].clone(), t[2].clone(), groups, 1e-5).unwrap();
                    match silu {
                        true => norm.forward_silu(&t[0]).unwrap(),
                        false => norm.forward(&t[0]).unwrap(),
                    }
                },
                &[x.clone(), weight.clone(), bias.clone()],
                3,
            );
        }
    }
}

#[test]
fn fused_bias_add_silu_and_upsampling_compute_the_same_on_both_paths() {
    use scorelab::nn::blocks::upsample_nearest2x;
    use scorelab::nn::fused::bias_add_silu;
    let mut rng = Rng::from_seed(3);
    let (n, m) = (9, 13);
    let a = random(&mut rng, &[n, m], DType::F32);
    let b = random(&mut rng, &[m], DType::F32);
    let d = random(&mut rng, &[m], DType::F32);
    // c per row, and one row shared by every row (a sampler's step at one noise level).
    for rows in [n, 1] {
        let c = random(&mut rng, &[rows, m], DType::F32);
        both_paths(
            &format!("bias_add_silu with {rows} row(s) of c"),
            &|t| bias_add_silu(&t[0], &t[1], &t[2], &t[3]).unwrap(),
            &[a.clone(), b.clone(), c, d.clone()],
            4,
        );
    }
    let x = random(&mut rng, &[2, 3, 4, 5], DType::F32);
    both_paths(
        "upsample_nearest2x",
        &|t| upsample_nearest2x(&t[0]).unwrap(),
        &[x],
        5,
    );
}

/// Gradients of sum(output * upstream) for `x` and every variable of `variables`.
fn all_gradients(output: &Tensor, upstream: &Tensor, x: &Var, variables: &VarMap) -> Vec<Tensor> {
    let grads = output
        .mul(upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let named = variables.data().lock().unwrap();
    let mut vars: Vec<(&String, &Var)> = named.iter().collect();
    vars.sort_by_key(|(name, _)| name.as_str());
    let vars: Vec<Var> = vars.into_iter().map(|(_, v)| v.clone()).collect();
    std::iter::once(x.as_tensor())
        .chain(vars.iter().map(Var::as_tensor))
        .map(|t| grads.get(t).expect("a gradient").clone())
        .collect()
}

/// `forward` on our kernels and on candle's ops: the outputs, and the gradients of the input
/// and of every variable.
fn compare_networks(
    case: &str,
    variables: &VarMap,
    x: &Tensor,
    forward: &dyn Fn(&Tensor) -> Tensor,
) {
    let x = Var::from_tensor(x).unwrap();
    let ours = forward(x.as_tensor());
    let theirs = with_candle_ops(|| forward(x.as_tensor()));
    let error = relative_error(&ours, &theirs);
    assert!(error < TOLERANCE.0, "{case}: output relative error {error}");
    let upstream = random(&mut Rng::from_seed(9), ours.dims(), DType::F32);
    let ours = all_gradients(&ours, &upstream, &x, variables);
    let theirs = all_gradients(&theirs, &upstream, &x, variables);
    assert!(ours.len() > 2, "{case}: no variables");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let error = relative_error(a, b);
        assert!(
            error < TOLERANCE.1,
            "{case}: gradient {i} relative error {error}"
        );
    }
}

fn network(data: &str, network: &str) -> Box<dyn Network> {
    let text = format!(
        "seed: 1\nnum_samples: 20\ndata: {data}\nschedule: {{kind: vp}}\nweighting: uniform\n\
         network: {network}\ntrain: {{steps: 1, batch_size: 4, train_size: 20}}\n\
         sampler: {{kind: euler, steps: 2}}\neval: [fd]\n"
    );
    let architecture = resolve(&text, &[]).unwrap().remove(0).architecture;
    match architecture
        .instantiate(&Device::Cpu, &mut Rng::from_seed(0))
        .unwrap()
    {
        Instance::Trainable(network) => network,
        Instance::Exact(_) => panic!("a trainable network"),
    }
}

#[test]
fn the_networks_compute_the_same_on_both_paths() {
    let sigma = |values: &[f32]| {
        Tensor::from_vec(values.to_vec(), (values.len(), 1), &Device::Cpu).unwrap()
    };
    // A U-Net with attention at 8x8, class labels and a per-item embedding in every block.
    let unet = network(
        "{kind: shapes, size: 16}",
        "{kind: unet, channels: 16, channel_mult: [1, 2], attention_resolutions: [8], classes: 5}",
    );
    let x = random(&mut Rng::from_seed(6), &[3, 256], DType::F32);
    let labels = Tensor::from_vec(vec![0u32, 4, 5], 3, &Device::Cpu).unwrap();
    let levels = sigma(&[0.2, 1.0, 5.0]);
    compare_networks("unet", unet.variables(), &x, &|x| {
        unet.forward(x, &levels, Some(&labels)).unwrap()
    });
    // The MLP, at per-row levels and at one level shared by a sampler's batch.
    let mlp = network("{kind: moons}", "{kind: mlp, hidden: 64, layers: 3}");
    let x = random(&mut Rng::from_seed(7), &[40, 2], DType::F32);
    for (what, levels) in [
        (
            "per row",
            Tensor::from_vec(Rng::from_seed(8).normal_f32(40), (40, 1), &Device::Cpu)
                .unwrap()
                .abs()
                .unwrap(),
        ),
        ("shared", sigma(&[0.7; 40])),
    ] {
        compare_networks(&format!("mlp, levels {what}"), mlp.variables(), &x, &|x| {
            mlp.forward(x, &levels, None).unwrap()
        });
    }
}
