//! The procedural image dataset `shapes` is deterministic and draws what it says (the file
//! loaders are tested in `image_files.rs`).

use scorelab::dataset::Dataset;
use scorelab::plugins::datasets::shapes::{Background, Shape, Shapes, ShapesParams};
use scorelab::rng::Rng;

use crate::common::{resolve, resolve_error};

// ---------- shapes ----------

fn shapes(params: ShapesParams) -> Shapes {
    Shapes::new(params).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn shapes_same_seed_same_pixels_in_range_with_balanced_labels() {
    let data = shapes(ShapesParams::default());
    assert_eq!(data.shape(), vec![1, 16, 16]);
    assert_eq!((data.dim(), data.classes()), (256, 5));
    let a = data.sample(500, &mut Rng::from_seed(1));
    let b = data.sample(500, &mut Rng::from_seed(1));
    let c = data.sample(500, &mut Rng::from_seed(2));
    assert_eq!(a, b);
    assert_ne!(a.as_slice(), c.as_slice());
    assert_eq!(a.shape(), &[1, 16, 16]);
    assert!(a.as_slice().iter().all(|v| (-1.0..=1.0).contains(v)));
    let labels = a.labels().expect("labelled");
    let mut counts = [0usize; 5];
    for &l in labels {
        counts[l as usize] += 1;
    }
    // 100 expected per class; a binomial's 4-sigma band is about +-36.
    assert!(
        counts.iter().all(|&n| (60..=140).contains(&n)),
        "{counts:?}"
    );
}

/// Pixel (row, column) of channel 0 of one rendered item.
fn at(pixels: &[f64], size: usize, x: f64, y: f64) -> f64 {
    pixels[y.floor() as usize * size + x.floor() as usize]
}

#[test]
fn shapes_centre_pixels_tell_the_classes_apart() {
    let data = shapes(ShapesParams::default());
    let mut rng = Rng::from_seed(5);
    for _ in 0..40 {
        let mut item = data.item(&mut rng);
        let (fg, bg) = (item.foreground[0], item.background[0]);
        assert!((fg - bg).abs() >= 0.5, "contrast {fg} vs {bg}");
        let mut images = Vec::new();
        for shape in [
            Shape::Disc,
            Shape::Square,
            Shape::Triangle,
            Shape::Ring,
            Shape::Cross,
        ] {
            item.shape = shape;
            let pixels = data.render(&item, &mut rng);
            let centre = at(&pixels, 16, item.cx, item.cy);
            if shape == Shape::Ring {
                assert_eq!(centre, bg, "a ring's centre is background");
            } else {
                assert_eq!(centre, fg, "{shape:?}'s centre is its colour");
            }
            // Background shows, the shape covers some pixels at least mostly (a thin ring
            // may cover none fully), and nothing lies outside the two colours' range.
            assert!(pixels.contains(&bg), "{shape:?}");
            assert!(
                pixels
                    .iter()
                    .any(|v| (v - bg).abs() >= 0.6 * (fg - bg).abs()),
                "{shape:?}"
            );
            let (lo, hi) = (fg.min(bg), fg.max(bg));
            assert!(pixels.iter().all(|v| *v >= lo - 1e-12 && *v <= hi + 1e-12));
            images.push(pixels);
        }
        for i in 0..images.len() {
            for j in i + 1..images.len() {
                assert_ne!(images[i], images[j], "classes {i} and {j} look alike");
            }
        }
    }
    // The geometry itself: a cross is empty on its diagonals, a square is not.
    assert!(!Shape::Cross.contains(0.5, 0.5, 1.0) && Shape::Square.contains(0.5, 0.5, 1.0));
    assert!(!Shape::Triangle.contains(-0.9, -0.9, 1.0) && Shape::Triangle.contains(0.0, 0.9, 1.0));
}

#[test]
fn shapes_rgb_on_noise_and_label_order_follow_the_params() {
    let params = ShapesParams {
        shapes: vec![Shape::Ring, Shape::Disc],
        size: 32,
        channels: 3,
        background: Background::Noise,
        background_noise: 0.1,
        antialias: 2,
        quantise: false,
    };
    let data = shapes(params);
    assert_eq!((data.shape(), data.classes()), (vec![3, 32, 32], 2));
    let mut rng = Rng::from_seed(9);
    let item = data.item(&mut rng);
    assert_eq!(
        item.shape,
        [Shape::Ring, Shape::Disc][item.label as usize],
        "label = index in `shapes`"
    );
    let pixels = data.render(&item, &mut rng);
    assert_eq!(pixels.len(), 3 * 32 * 32);
    let contrast = (0..3)
        .map(|c| (item.foreground[c] - item.background[c]).abs())
        .fold(0.0, f64::max);
    assert!(contrast >= 0.5);
    // Corner pixels are background: within the noise amplitude of its level, and not flat.
    for (c, background) in item.background.iter().enumerate() {
        assert!((pixels[c * 1024] - background).abs() <= 0.1 + 1e-12);
    }
    let plane: Vec<f64> = pixels[..1024].to_vec();
    let distinct = plane.iter().filter(|v| **v != plane[0]).count();
    assert!(distinct > 500, "noisy background");
    let samples = data.sample(50, &mut Rng::from_seed(3));
    assert!(samples.as_slice().iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(samples.labels().unwrap().iter().all(|l| *l < 2));
}

const EXPERIMENT: &str = r#"
seed: 4
num_samples: NUM
data: DATA
schedule: {kind: vp}
weighting: sigma_squared
network: {kind: mlp, hidden: 8, layers: 1, embedding: 4}
train: {steps: 1, batch_size: 2, train_size: TRAIN}
sampler: {kind: euler, steps: 2}
"#;

pub fn experiment(data: &str, train: usize, held_out: usize) -> String {
    EXPERIMENT
        .replace("DATA", data)
        .replace("TRAIN", &train.to_string())
        .replace("NUM", &held_out.to_string())
}

#[test]
fn shapes_resolve_as_the_data_slot_and_bad_params_name_the_key() {
    let trials = resolve(&experiment("{kind: shapes, size: 8}", 20, 10), &[]).unwrap();
    let trial = &trials[0];
    assert_eq!(trial.training_data.shape(), &[1, 8, 8]);
    assert_eq!((trial.training_data.len(), trial.held_out.len()), (20, 10));
    assert!(trial.held_out.labels().is_some());
    assert_eq!(trial.dataset.classes(), 5);

    let message = resolve_error(&experiment("{kind: shapes, size: 100}", 20, 10), &[]);
    assert!(
        message.contains("`data.size`") && message.contains("8 to 64"),
        "{message}"
    );
    let message = resolve_error(
        &experiment("{kind: shapes, shapes: [disc, hexagon]}", 20, 10),
        &[],
    );
    assert!(
        message.contains("`data.shapes`") && message.contains("hexagon"),
        "{message}"
    );
}

// ---------- mnist ----------
