//! The `inception` feature extractor: PyTorch-compatible pooling and resizing, the weights'
//! names and shapes, pool3 features of grey and RGB images from generated weights, and clear
//! errors for a missing file, a missing tensor and a wrong shape. The parity check against
//! pytorch-fid itself is `inception_parity` (ignored here; run by scripts/inception_parity.py).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use scorelab::dataset::Samples;
use scorelab::nn::inception::{conv_specs, expected_tensors, InceptionNet, FEATURES};
use scorelab::nn::pool;
use scorelab::plugins::features::inception::InceptionMap;
use scorelab::rng::Rng;
use sha2::{Digest, Sha256};

use crate::common;

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Writes `tensors` (name, shape, f32 values) as a safetensors file.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Random weights for every expected tensor: He-uniform convolutions and BatchNorm
/// statistics away from the identity, so activations stay of order one through the net.
fn random_weights(keep: impl Fn(&str) -> bool) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::from_seed(11);
    expected_tensors()
        .into_iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let mut draw = |low: f64, high: f64| -> Vec<f32> {
                (0..n)
                    .map(|_| (low + (high - low) * rng.uniform()) as f32)
                    .collect()
            };
            let v = if name.ends_with("conv.weight") {
                let bound = (6.0 / (n / shape[0]) as f64).sqrt();
                draw(-bound, bound)
            } else if name.ends_with("running_var") {
                draw(0.5, 1.5)
            } else if name.ends_with("bn.weight") {
                draw(0.8, 1.2)
            } else {
                draw(-0.1, 0.1)
            };
            (name, shape, v)
        })
        .collect()
}

/// A complete random weights file, written once per test run.
fn weights_file() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inception.safetensors");
        write_safetensors(&path, &random_weights(|_| true));
        (dir, path)
    });
    path
}

/// A small image experiment, to resolve.
const IMAGES: &str = "seed: 0
num_samples: 16
data: {kind: shapes, size: 8}
schedule: {kind: geometric, num_levels: 3, sigma_max: 1.0, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 8, layers: 1, embedding: 4}
train: {steps: 1, batch_size: 4, train_size: 16}
sampler: {kind: annealed_langevin, steps_per_level: 1}
eval: [fd]
";

fn load_error(path: &Path) -> String {
    match InceptionMap::load(path, 1, &Device::Cpu) {
        Ok(_) => panic!("expected an error loading {}", path.display()),
        Err(e) => e,
    }
}

#[test]
fn inception_avg_pool_leaves_padding_out_of_the_average() {
    // 3x3 input 1..9: a corner averages its 2x2 neighbourhood, an edge its 2x3, the centre all.
    let x = tensor(
        &(1..=9).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 3, 3],
    );
    let excluded = values(&pool::avg_pool2d(&x, 3, 1, 1, false).unwrap());
    let expected = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0];
    for (got, want) in excluded.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{excluded:?}");
    }
    // With the padding counted, the corner is (1 + 2 + 4 + 5) / 9.
    let included = values(&pool::avg_pool2d(&x, 3, 1, 1, true).unwrap());
    assert!((included[0] - 12.0 / 9.0).abs() < 1e-6);
    assert!((included[4] - 5.0).abs() < 1e-6);
}

#[test]
fn inception_max_pool_padding_never_wins() {
    // All values negative: zero padding would win every border window; ours must not.
    let x = tensor(
        &(1..=12).map(|v| -(v as f32)).collect::<Vec<_>>(),
        &[1, 1, 3, 4],
    );
    let pooled = values(&pool::max_pool2d(&x, 3, 1, 1).unwrap());
    let expected = [
        -1.0, -1.0, -2.0, -3.0, -1.0, -1.0, -2.0, -3.0, -5.0, -5.0, -6.0, -7.0,
    ];
    assert_eq!(pooled, expected);
    // 3x3 stride 2, no padding: floor mode, (7 - 3) / 2 + 1 = 3 outputs per axis.
    let x = tensor(
        &(0..49).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 7, 7],
    );
    let pooled = pool::max_pool2d(&x, 3, 2, 0).unwrap();
    assert_eq!(pooled.dims(), &[1, 1, 3, 3]);
    assert_eq!(
        values(&pooled),
        [16.0, 18.0, 20.0, 30.0, 32.0, 34.0, 44.0, 46.0, 48.0]
    );
}

#[test]
fn inception_resize_is_pytorch_bilinear_without_aligned_corners() {
    // Upsampling [0, 1] to 4 samples at (i + 0.5) / 2 - 0.5 = -0.25 (clamped), 0.25, 0.75,
    // 1.25 (clamped): 0, 0.25, 0.75, 1 (torch.nn.functional.interpolate gives the same).
    let x = tensor(&[0.0, 1.0], &[1, 1, 1, 2]);
    let up = values(&pool::resize_bilinear(&x, 1, 4).unwrap());
    assert_eq!(up, [0.0, 0.25, 0.75, 1.0]);
    // Downsampling 0..6 to 3 samples at (i + 0.5) * 2 - 0.5 = 0.5, 2.5, 4.5.
    let x = tensor(&(0..6).map(|v| v as f32).collect::<Vec<_>>(), &[1, 1, 6, 1]);
    assert_eq!(
        values(&pool::resize_bilinear(&x, 3, 1).unwrap()),
        [0.5, 2.5, 4.5]
    );
    // A plane a + b·i + c·j stays that plane inside the clamped border.
    let (h, w) = (5, 7);
    let plane: Vec<f32> = (0..h * w)
        .map(|k| 0.5 + 0.25 * (k / w) as f32 - 0.125 * (k % w) as f32)
        .collect();
    let big = values(&pool::resize_bilinear(&tensor(&plane, &[1, 1, h, w]), 2 * h, 2 * w).unwrap());
    for i in 1..2 * h - 1 {
        for j in 1..2 * w - 1 {
            let (si, sj) = ((i as f32 + 0.5) / 2.0 - 0.5, (j as f32 + 0.5) / 2.0 - 0.5);
            let want = 0.5 + 0.25 * si - 0.125 * sj;
            assert!((big[i * 2 * w + j] - want).abs() < 1e-5, "({i}, {j})");
        }
    }
}

#[test]
fn inception_unfold_then_matmul_is_candles_convolution() {
    // A 3x2 kernel with one row of padding above and below and none left and right.
    let mut rng = Rng::from_seed(3);
    let x: Vec<f32> = (0..2 * 3 * 6 * 7).map(|_| rng.normal() as f32).collect();
    let k: Vec<f32> = (0..4 * 3 * 3 * 2).map(|_| rng.normal() as f32).collect();
    let (x, k) = (tensor(&x, &[2, 3, 6, 7]), tensor(&k, &[4, 3, 3, 2]));
    let columns = pool::unfold(&x, 3, 2, 1, 0).unwrap();
    assert_eq!(columns.dims(), &[2, 3 * 3 * 2, 6 * 6]);
    let ours = k
        .reshape((4, 18))
        .unwrap()
        .broadcast_left(2)
        .unwrap()
        .matmul(&columns)
        .unwrap();
    let reference = pool::pad2d(&x, 1, 0)
        .unwrap()
        .conv2d(&k, 0, 1, 1, 1)
        .unwrap();
    assert_eq!(reference.dims(), &[2, 4, 6, 6]);
    for (a, b) in values(&ours).iter().zip(values(&reference)) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn inception_weights_cover_pytorch_fid_state_dict_names() {
    let tensors = expected_tensors();
    // 94 BasicConv2d (5 stem, 3 x 7 in A, 4 in B, 4 x 10 in C, 6 in D, 2 x 9 in E), 5 tensors each.
    assert_eq!(conv_specs().len(), 94);
    assert_eq!(tensors.len(), 94 * 5);
    let parameters: usize = tensors
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    // pytorch-fid's FID Inception without `fc`, as torch counts it (scripts/inception_parity.py).
    assert_eq!(parameters, 21_785_568);
    let find = |name: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    };
    assert_eq!(find("Conv2d_1a_3x3.conv.weight"), Some(vec![32, 3, 3, 3]));
    assert_eq!(
        find("Mixed_6b.branch7x7_2.conv.weight"),
        Some(vec![128, 128, 1, 7])
    );
    assert_eq!(
        find("Mixed_7c.branch3x3dbl_3b.conv.weight"),
        Some(vec![384, 384, 3, 1])
    );
    assert_eq!(find("Mixed_7c.branch_pool.bn.running_var"), Some(vec![192]));
}

#[test]
fn inception_features_of_grey_and_rgb_images() {
    // One forward pass per image (~0.4 s each at 299 x 299 on one core): a grey image and
    // its repetition to three channels.
    let (h, w) = (20, 24);
    let mut rng = Rng::from_seed(5);
    let grey: Vec<f64> = (0..h * w).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let rgb: Vec<f64> = grey.iter().cycle().take(3 * h * w).copied().collect();
    let map = InceptionMap::load(weights_file(), 1, &Device::Cpu).unwrap();
    let extract = |shape: &[usize], pixels: Vec<f64>| {
        scorelab::features::FeatureMap::extract(&map, &Samples::with_shape(shape, pixels)).unwrap()
    };
    let features = extract(&[3, h, w], rgb);
    assert_eq!((features.len(), features.dim()), (1, FEATURES));
    assert!(features.all_finite());
    // Averages of ReLU outputs: non-negative, and the net is not dead.
    let row = features.row(0);
    assert!(row.iter().all(|&v| v >= 0.0));
    assert!(row.iter().filter(|&&v| v > 0.0).count() > FEATURES / 4);
    assert!(row.iter().any(|&v| v != row[0]), "features vary");
    // A grey image is its RGB repetition: the same features, bit for bit (and the forward
    // pass is deterministic).
    let grey_features = extract(&[1, h, w], grey);
    assert_eq!((grey_features.len(), grey_features.dim()), (1, FEATURES));
    assert_eq!(grey_features.row(0), features.row(0));
    // Identity: "inception-" and the first 16 hex digits of the file's SHA-256.
    let digest = Sha256::digest(std::fs::read(weights_file()).unwrap());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        scorelab::features::FeatureMap::identity(&map),
        format!("inception-{hex}")
    );
}

#[test]
fn inception_rejects_points_and_other_channel_counts() {
    let map = InceptionMap::load(weights_file(), 1, &Device::Cpu).unwrap();
    let error = scorelab::features::FeatureMap::extract(
        &map,
        &Samples::with_shape(&[2, 4, 4], vec![0.0; 32]),
    )
    .unwrap_err();
    assert!(
        error.contains("1 or 3 channels") && error.contains("[2, 4, 4]"),
        "{error}"
    );
    let net_input = InceptionNet::preprocess(
        &Tensor::zeros((1, 4, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(net_input.is_err());
    let message = common::resolve_error(
        &common::SMALL_GMM.replace(
            "eval: [fd, mmd, mode_weights]",
            "features: {kind: inception}\neval: [fd]",
        ),
        &[],
    );
    assert!(
        message.contains("features")
            && message.contains("1 or 3 channels")
            && message.contains("[2]"),
        "{message}"
    );
}

#[test]
fn inception_missing_file_names_the_path_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.safetensors");
    let error = load_error(&path);
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("pt_inception-2015-12-05") && error.contains("features.weights"),
        "{error}"
    );
    // At resolve time, before anything runs: the key, the path and how to get the file.
    let experiment = format!(
        "{IMAGES}features: {{kind: inception, weights: '{}'}}\n",
        path.display()
    );
    let message = common::resolve_error(&experiment, &[]);
    assert!(
        message.contains("features.weights") && message.contains(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("pt_inception-2015-12-05"), "{message}");
    // Not a safetensors file.
    std::fs::write(&path, b"not weights").unwrap();
    let error = load_error(&path);
    assert!(
        error.contains("not a safetensors file") && error.contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn inception_missing_tensor_and_wrong_shape_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    // The stem only, less one tensor: the first one missing is named with its shape.
    let stem = |name: &str| name.starts_with("Conv2d_") && name != "Conv2d_2b_3x3.bn.running_var";
    let path = dir.path().join("partial.safetensors");
    write_safetensors(&path, &random_weights(stem));
    let error = load_error(&path);
    assert!(
        error.contains("`Conv2d_2b_3x3.bn.running_var`") && error.contains("[64]"),
        "{error}"
    );
    assert!(error.contains(&path.display().to_string()), "{error}");
    // A wrong shape: the tensor, what it has and what it should have.
    let mut tensors = random_weights(|name| name.starts_with("Conv2d_1a"));
    tensors[0] = (
        "Conv2d_1a_3x3.conv.weight".to_string(),
        vec![32, 3, 3, 2],
        vec![0.0; 32 * 18],
    );
    let path = dir.path().join("wrong.safetensors");
    write_safetensors(&path, &tensors);
    let error = load_error(&path);
    assert!(
        error.contains("`Conv2d_1a_3x3.conv.weight`")
            && error.contains("[32, 3, 3, 2]")
            && error.contains("[32, 3, 3, 3]"),
        "{error}"
    );
}

/// Reads one tensor of the parity data file as f64 values with its shape.
fn parity_tensor(
    data: &std::collections::HashMap<String, Tensor>,
    name: &str,
) -> (Vec<usize>, Vec<f64>) {
    let t = data
        .get(name)
        .unwrap_or_else(|| panic!("the parity data has no `{name}`"));
    let v = t
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    (t.dims().to_vec(), v)
}

/// Parity with pytorch-fid (scripts/inception_parity.py sets the files): our features of the
/// script's images against the reference network's, as the max relative error.
#[test]
#[ignore = "needs files from scripts/inception_parity.py"]
fn inception_parity() {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("set {name} (scripts/inception_parity.py does)"))
    };
    let weights = PathBuf::from(var("INCEPTION_PARITY_WEIGHTS"));
    let data = candle_core::safetensors::load(var("INCEPTION_PARITY_DATA"), &Device::Cpu).unwrap();
    let map = InceptionMap::load(&weights, 50, &Device::Cpu).unwrap();
    let mut worst = 0.0f64;
    for set in ["rgb", "grey"] {
        let (shape, pixels) = parity_tensor(&data, set);
        let (_, expected) = parity_tensor(&data, &format!("{set}_features"));
        let items = Samples::with_shape(&shape[1..], pixels);
        let start = std::time::Instant::now();
        let ours = scorelab::features::FeatureMap::extract(&map, &items).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let max_abs = ours
            .as_slice()
            .iter()
            .zip(&expected)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        // Per element, over the features that are not vanishingly small.
        let per_element = ours
            .as_slice()
            .iter()
            .zip(&expected)
            .filter(|(_, b)| b.abs() > 1e-3 * scale)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() / b.abs()));
        println!(
            "{set}: {} images {:?}: max |ours - torch| / max |torch| = {:.3e}; per element (|torch| > 1e-3 max) {:.3e}; max |torch| {scale:.4}; {:.2} images/s",
            items.len(),
            items.shape(),
            max_abs / scale,
            per_element,
            items.len() as f64 / seconds
        );
        worst = worst.max(max_abs / scale);
        // Against torch in float64 (the script exports it for the RGB set): our float32 error.
        if let (Some(_), "rgb") = (data.get("rgb_features64"), set) {
            let (_, exact) = parity_tensor(&data, "rgb_features64");
            let max_abs = ours
                .as_slice()
                .iter()
                .zip(&exact)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            println!(
                "{set}: max |ours - torch float64| / max |torch float64| = {:.3e}",
                max_abs / scale
            );
        }
    }
    println!("max relative error: {worst:.3e}");
    assert!(worst < 1e-4, "max relative error {worst:.3e} is above 1e-4");
}
