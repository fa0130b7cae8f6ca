//! The `unet` network: shapes in and out, conditioning on sigma and labels, a gradient for
//! every parameter, its exact size, dropout only in training, and build errors naming the key.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use scorelab::network::{Architecture, Instance, Network};
use scorelab::rng::Rng;

use crate::common::resolve;

/// The architecture an experiment with this `data` and `network` resolves to.
fn architecture(data: &str, network: &str) -> Result<Arc<dyn Architecture>, String> {
    let text = format!(
        "seed: 1\nnum_samples: 20\ndata: {data}\nschedule: {{kind: vp}}\nweighting: uniform\n\
         network: {network}\ntrain: {{steps: 1, batch_size: 4, train_size: 20}}\n\
         sampler: {{kind: euler, steps: 2}}\neval: [fd]\n"
    );
    match resolve(&text, &[]) {
        Ok(mut trials) => Ok(trials.remove(0).architecture),
        Err(error) => Err(error.to_string()),
    }
}

fn network(architecture: &dyn Architecture, seed: u64) -> Box<dyn Network> {
    match architecture
        .instantiate(&Device::Cpu, &mut Rng::from_seed(seed))
        .unwrap()
    {
        Instance::Trainable(network) => network,
        Instance::Exact(_) => panic!("unet is trainable"),
    }
}

fn build(data: &str, network_params: &str) -> Box<dyn Network> {
    let architecture = architecture(data, network_params).unwrap();
    network(architecture.as_ref(), 0)
}

fn random(n: usize, dim: usize, seed: u64) -> Tensor {
    Tensor::from_vec(
        Rng::from_seed(seed).normal_f32(n * dim),
        (n, dim),
        &Device::Cpu,
    )
    .unwrap()
}

fn sigmas(values: &[f32]) -> Tensor {
    Tensor::from_vec(values.to_vec(), (values.len(), 1), &Device::Cpu).unwrap()
}

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn unet_output_has_the_input_shape_and_depends_on_sigma() {
    for (data, params, dim) in [
        ("{kind: shapes, size: 8}", "unet", 64),
        (
            "{kind: shapes, size: 16, channels: 3}",
            "{kind: unet, channels: 16}",
            3 * 256,
        ),
        (
            "{kind: shapes, size: 16}",
            "{kind: unet, channels: 16, channel_mult: [1, 2, 2]}",
            256,
        ),
    ] {
        let network = build(data, params);
        let x = random(3, dim, 1);
        let y = network
            .forward(&x, &sigmas(&[0.5, 0.5, 0.5]), None)
            .unwrap();
        assert_eq!(y.dims(), &[3, dim], "{data} {params}");
        let other = network
            .forward(&x, &sigmas(&[5.0, 5.0, 5.0]), None)
            .unwrap();
        assert!(
            max_difference(&y, &other) > 1e-4,
            "{data} {params}: sigma changes nothing"
        );
        // Rows are independent: the first row alone gives the same output.
        let first = network
            .forward(&x.narrow(0, 0, 1).unwrap(), &sigmas(&[0.5]), None)
            .unwrap();
        assert!(
            max_difference(&first, &y.narrow(0, 0, 1).unwrap()) < 1e-5,
            "{data} {params}"
        );
    }
}

#[test]
fn unet_weights_follow_the_seed() {
    let architecture =
        architecture("{kind: shapes, size: 8}", "{kind: unet, channels: 8}").unwrap();
    let x = random(2, 64, 3);
    let s = sigmas(&[1.0, 0.1]);
    let run = |seed| {
        network(architecture.as_ref(), seed)
            .forward(&x, &s, None)
            .unwrap()
    };
    assert_eq!(max_difference(&run(4), &run(4)), 0.0);
    assert!(max_difference(&run(4), &run(5)) > 1e-4);
}

#[test]
fn unet_label_changes_the_output() {
    let network = build(
        "{kind: shapes, size: 8}",
        "{kind: unet, channels: 8, classes: 5}",
    );
    let x = random(2, 64, 2);
    let s = sigmas(&[1.0, 1.0]);
    let labels = |l: &[u32]| Tensor::from_vec(l.to_vec(), l.len(), &Device::Cpu).unwrap();
    let zero = network.forward(&x, &s, Some(&labels(&[0, 0]))).unwrap();
    let three = network.forward(&x, &s, Some(&labels(&[3, 3]))).unwrap();
    let null = network.forward(&x, &s, None).unwrap();
    let explicit_null = network.forward(&x, &s, Some(&labels(&[5, 5]))).unwrap();
    assert!(max_difference(&zero, &three) > 1e-4);
    assert!(max_difference(&zero, &null) > 1e-4);
    // No label is the null label, the table's last row.
    assert_eq!(max_difference(&null, &explicit_null), 0.0);
}

#[test]
fn unet_every_parameter_gets_a_gradient() {
    let network = build(
        "{kind: shapes, size: 16}",
        "{kind: unet, classes: 5, dropout: 0.1, embedding_kind: fourier}",
    );
    network.set_training(true);
    let x = random(2, 256, 4);
    let labels = Tensor::from_vec(vec![1u32, 4], 2, &Device::Cpu).unwrap();
    let y = network
        .forward(&x, &sigmas(&[0.3, 3.0]), Some(&labels))
        .unwrap();
    let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let variables = network.variables().data().lock().unwrap();
    assert!(variables.len() > 50);
    for (name, var) in variables.iter() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("`{name}` gets no gradient"));
        let size: f32 = grad.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(
            size > 0.0 && size.is_finite(),
            "`{name}` has gradient norm {size}"
        );
    }
}

#[test]
fn unet_dropout_acts_only_in_training() {
    let network = build(
        "{kind: shapes, size: 8}",
        "{kind: unet, channels: 8, dropout: 0.5}",
    );
    let x = random(2, 64, 5);
    let s = sigmas(&[1.0, 1.0]);
    let run = || network.forward(&x, &s, None).unwrap();
    assert_eq!(max_difference(&run(), &run()), 0.0);
    network.set_training(true);
    assert!(max_difference(&run(), &run()) > 1e-4);
    network.set_training(false);
    let evaluation = run();
    assert_eq!(max_difference(&evaluation, &run()), 0.0);
}

/// The default configuration on 1x16x16 (channels 32, channel_mult [1, 2], one block per
/// level, attention at 8x8 and in the middle, no classes), counted by hand. A residual block
/// in -> out with a 128-wide embedding has 2·in (norm1) + 9·in·out + out (conv1) + 128·out + out
/// (embedding) + 2·out (norm2) + 9·out² + out (conv2) + in·out + out (1x1 skip, if in != out);
/// attention on c channels has 2c (norm) + 3c² + 3c (qkv) + c² + c (output).
///   embedding MLP: (32·128 + 128) + (128·128 + 128)                          =  20736
///   input conv 1 -> 32: 9·32 + 32                                            =    320
///   down 0 (16x16): res 32->32 22752; downsample 32·32·9 + 32 = 9248         =  32000
///   down 1 (8x8): res 32->64 65984, attention(64) 16768                      =  82752
///   middle: res 64->64 82368, attention 16768, res 64->64 82368              = 181504
///   up 1 (8x8): res 128->64 127616 + attention 16768, res 96->64 107072
///               + attention 16768, upsample conv 64·64·9 + 64 = 36928        = 305152
///   up 0 (16x16): res 96->32 44416, res 64->32 34112                         =  78528
///   output: norm 2·32, conv 32 -> 1: 9·32 + 1                                =    353
///   total                                                                    = 701345
#[test]
fn unet_default_parameter_count() {
    let network = build("{kind: shapes, size: 16}", "unet");
    let variables = network.variables().data().lock().unwrap();
    let count: usize = variables.values().map(|v| v.as_tensor().elem_count()).sum();
    assert_eq!(count, 701_345);
}

#[test]
fn unet_build_errors_name_the_key() {
    let points = "{kind: gmm, means: [[0.0, 0.0]], stds: [1.0], weights: [1.0]}";
    let error = architecture(points, "unet")
        .err()
        .expect("points are not images");
    assert!(
        error.contains("network.kind") && error.contains("[C, H, W]") && error.contains("[2]"),
        "{error}"
    );
    for (data, params, key, fix) in [
        (
            "{kind: shapes, size: 16}",
            "{kind: unet, channels: 32, groups: 12}",
            "network.groups",
            "groups",
        ),
        (
            "{kind: shapes, size: 10}",
            "{kind: unet, channel_mult: [1, 2, 2]}",
            "network.channel_mult",
            "fewer levels",
        ),
        (
            "{kind: shapes, size: 16}",
            "{kind: unet, classes: 3}",
            "network.classes",
            "classes: 5",
        ),
        (
            "{kind: shapes, size: 16}",
            "{kind: unet, dropout: 1.0}",
            "network.dropout",
            "dropout: 0.1",
        ),
        (
            "{kind: shapes, size: 16}",
            "{kind: unet, embedding_kind: gaussian}",
            "network.embedding_kind",
            "",
        ),
    ] {
        let error = architecture(data, params)
            .err()
            .unwrap_or_else(|| panic!("{params} should fail"));
        assert!(
            error.contains(key) && error.contains(fix),
            "{params}: {error}"
        );
    }
}

/// Forward + backward time of the default `unet` on 1x16x16 at batch 64:
/// `RAYON_NUM_THREADS=1 cargo test --release --test it unet_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn unet_timing() {
    let network = build("{kind: shapes, size: 16}", "unet");
    network.set_training(true);
    let x = random(64, 256, 6);
    let s = Tensor::full(1.0f32, (64, 1), &Device::Cpu).unwrap();
    let step = || {
        let y = network.forward(&x, &s, None).unwrap();
        y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    };
    step();
    let repeats = 5;
    let start = std::time::Instant::now();
    for _ in 0..repeats {
        step();
    }
    let both = start.elapsed().as_secs_f64() * 1e3 / repeats as f64;
    let start = std::time::Instant::now();
    for _ in 0..repeats {
        network.forward(&x, &s, None).unwrap();
    }
    let forward = start.elapsed().as_secs_f64() * 1e3 / repeats as f64;
    println!(
        "unet default 1x16x16, batch 64: forward + backward {both:.0} ms, forward {forward:.0} ms"
    );
}
