//! Bits per dimension on quantised data: `nll_ode` of a quantised Gaussian with its exact
//! score against the discrete data's -log2 P(k) (bin masses of the Gaussian), `elbo` above it,
//! the datasets that say they are quantised, and `<metric>_bpd` in a sweep's table. On
//! continuous data the likelihoods report nats only.

use std::f64::consts::LN_2;

use scorelab::dataset::{Dataset, Quantisation, Samples};
use scorelab::metric::bits::scored_points;
use scorelab::metric::{Measured, Metric, MetricInput};
use scorelab::rng::Rng;
use scorelab::trial::Trial;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::common::{resolve, sweep, write};
use crate::image_data::experiment as image_experiment;
use crate::image_files::{idx_images, idx_labels};

/// One Gaussian, its mass inside [-1, 1] but for ~1e-5 (4.5 standard deviations or more).
const MEANS: [f64; 2] = [0.0, -0.1];
const STDS: [f64; 2] = [0.22, 0.2];

fn gaussian_trial(schedule: &str, eval: &str) -> Trial {
    let yaml = format!(
        r#"
seed: 3
num_samples: 1000
data: {{kind: gmm, means: [[{}, {}]], stds: [[{}, {}]], weights: [1.0]}}
schedule: {schedule}
weighting: {{kind: sigma_squared}}
network: {{kind: oracle}}
train: {{train_size: 100}}
sampler: {{kind: annealed_langevin}}
eval: {eval}
"#,
        MEANS[0], MEANS[1], STDS[0], STDS[1]
    );
    resolve(&yaml, &[]).unwrap().remove(0)
}

/// The Gaussian's draws quantised as 8-bit data in [-1, 1] are: bin k = floor((x + 1) / w),
/// w = 2/256, stored as k / 127.5 - 1.
struct QuantisedGaussian;

impl QuantisedGaussian {
    fn codes(points: &Samples) -> Vec<u32> {
        let w = Quantisation::BYTES.bin_width();
        points
            .as_slice()
            .iter()
            .map(|x| ((x + 1.0) / w).floor().clamp(0.0, 255.0) as u32)
            .collect()
    }

    fn quantised(points: &Samples) -> Samples {
        let values = Self::codes(points)
            .into_iter()
            .map(|k| Quantisation::BYTES.value(k))
            .collect();
        Samples::new(points.dim(), values)
    }
}

impl Dataset for QuantisedGaussian {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, _: usize, _: &mut Rng) -> Samples {
        unreachable!("the test quantises the trial's held-out draws itself")
    }

    fn quantisation(&self) -> Option<Quantisation> {
        Some(Quantisation::BYTES)
    }
}

/// Mean over points and coordinates of -log2 P(k), P(k) the Gaussian's mass in bin k.
fn discrete_bits_per_dim(codes: &[u32]) -> f64 {
    let w = Quantisation::BYTES.bin_width();
    let total: f64 = codes
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let normal = Normal::new(MEANS[i % 2], STDS[i % 2]).unwrap();
            let low = -1.0 + w * f64::from(k);
            -(normal.cdf(low + w) - normal.cdf(low)).log2()
        })
        .sum();
    total / codes.len() as f64
}

/// The expectation over the dequantisation noise of -ln N(y) per dimension, in bits with the
/// offset: y uniform in bin k has E(y - mu)^2 = (c - mu)^2 + w^2 / 12, c the bin's centre.
fn expected_dequantised_bits_per_dim(codes: &[u32]) -> f64 {
    let w = Quantisation::BYTES.bin_width();
    let total: f64 = codes
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let (mu, s) = (MEANS[i % 2], STDS[i % 2]);
            let centre = -1.0 + w * (f64::from(k) + 0.5);
            let square = (centre - mu).powi(2) + w * w / 12.0;
            0.5 * (2.0 * std::f64::consts::PI * s * s).ln() + square / (2.0 * s * s)
        })
        .sum();
    total / codes.len() as f64 / LN_2 + 7.0
}

/// -ln N(y; mu, s^2 + sigma^2) per dimension of the given points.
fn gaussian_nats_per_dim(points: &Samples, sigma: f64) -> f64 {
    let total: f64 = points
        .as_slice()
        .iter()
        .enumerate()
        .map(|(i, y)| {
            let var = STDS[i % 2].powi(2) + sigma * sigma;
            0.5 * (2.0 * std::f64::consts::PI * var).ln() + (y - MEANS[i % 2]).powi(2) / (2.0 * var)
        })
        .sum();
    total / points.as_slice().len() as f64
}

fn detail(measured: &Measured, name: &str) -> Option<f64> {
    measured
        .details
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}

/// The trial's metric `index` on `reference` held out from `dataset`, with the exact model.
fn measure(
    trial: &Trial,
    index: usize,
    dataset: &dyn Dataset,
    reference: &Samples,
) -> (Measured, Vec<(&'static str, String)>, Samples) {
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let input = MetricInput {
        samples: reference,
        reference,
        dataset,
        seed: trial.settings.seed,
        model: &model,
        schedule: trial.schedule.as_ref(),
        device: &trial.device,
        features: None,
    };
    let metric: &dyn Metric = trial.metrics[index].1.as_ref();
    let scored = scored_points(&input, reference.len()).unwrap();
    (
        metric.compute(&input).unwrap(),
        metric.protocol(&input),
        scored,
    )
}

#[test]
fn nll_ode_bits_per_dim_of_a_quantised_gaussian_is_its_discrete_nll() {
    let trial = gaussian_trial(
        "{kind: ve, sigma_max: 1000, sigma_min: 0.001}",
        "[{kind: nll_ode, points: 1000}]",
    );
    let reference = QuantisedGaussian::quantised(&trial.held_out);
    let codes = QuantisedGaussian::codes(&trial.held_out);
    assert!(
        codes.iter().all(|&k| k > 0 && k < 255),
        "no draw in the clamped end bins: {:?} {:?} {}",
        codes.iter().min(),
        codes.iter().max(),
        codes.len()
    );
    let (measured, protocol, scored) = measure(&trial, 0, &QuantisedGaussian, &reference);
    let bpd = detail(&measured, "bpd").unwrap();
    let discrete = discrete_bits_per_dim(&codes);
    let expected = expected_dequantised_bits_per_dim(&codes);
    let sigma_end = trial.schedule.sigma(trial.schedule.t_end());
    let same_draw = gaussian_nats_per_dim(&scored, sigma_end);
    println!(
        "quantised gaussian: nll_ode {:.6} nats/dim (closed form on the same dequantised points {same_draw:.6}), bpd {bpd:.5}; discrete -log2 P(k) {discrete:.5}, E_u closed form {expected:.5}, diff {:.2e}",
        measured.value,
        bpd - discrete
    );
    // The scored points are the codes dequantised: each inside its own bin, none on the grid.
    for (y, &k) in scored.as_slice().iter().zip(&codes) {
        let start = Quantisation::BYTES.dequantised(k, 0.0);
        assert!(
            *y >= start && *y < start + 2.0 / 256.0,
            "{y} outside bin {k}"
        );
    }
    assert!((measured.value - same_draw).abs() < 2e-4, "{same_draw}");
    assert!((bpd - (measured.value / LN_2 + 7.0)).abs() < 1e-12);
    // One noise draw per coordinate: its Monte-Carlo error over 2000 coordinates is ~3e-4 bits;
    // the dequantised NLL exceeds the discrete one by ~w^2 / (24 s^2 ln 2) ~ 4e-5 bits.
    assert!((bpd - expected).abs() < 2e-3, "{bpd} vs {expected}");
    assert!((bpd - discrete).abs() < 2e-3, "{bpd} vs {discrete}");
    assert!((expected - discrete) > 0.0 && expected - discrete < 1e-4);
    let setting = |key: &str| {
        protocol
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        setting("dequantisation"),
        "uniform, 256 bins of width 0.0078125 in [-1, 1]"
    );
    assert_eq!(setting("bits_offset"), "7");
}

#[test]
fn elbo_bits_per_dim_bound_the_discrete_nll_from_the_same_dequantised_points() {
    let schedule = "{kind: geometric, num_levels: 100, sigma_max: 100, sigma_min: 0.001}";
    let trial = gaussian_trial(
        schedule,
        "[{kind: elbo, points: 1000}, {kind: nll_ode, points: 1000}]",
    );
    let reference = QuantisedGaussian::quantised(&trial.held_out);
    let discrete = discrete_bits_per_dim(&QuantisedGaussian::codes(&trial.held_out));
    let (elbo, _, elbo_points) = measure(&trial, 0, &QuantisedGaussian, &reference);
    let (nll, _, nll_points) = measure(&trial, 1, &QuantisedGaussian, &reference);
    let (elbo_bpd, nll_bpd) = (detail(&elbo, "bpd").unwrap(), detail(&nll, "bpd").unwrap());
    println!(
        "quantised gaussian, geometric 100: elbo {:.5} nats/dim = {elbo_bpd:.5} bpd, nll_ode {nll_bpd:.5} bpd, discrete {discrete:.5}",
        elbo.value
    );
    assert_eq!(
        elbo_points, nll_points,
        "both score the same dequantised points"
    );
    assert!((elbo_bpd - (elbo.value / LN_2 + 7.0)).abs() < 1e-12);
    assert!(elbo_bpd > nll_bpd && elbo_bpd > discrete, "{elbo_bpd}");
    assert!((nll_bpd - discrete).abs() < 5e-3, "{nll_bpd} vs {discrete}");
}

#[test]
fn on_continuous_data_the_likelihoods_report_nats_only() {
    let trial = gaussian_trial(
        "{kind: geometric, num_levels: 20, sigma_max: 100, sigma_min: 0.01}",
        "[{kind: nll_ode, points: 20}, {kind: elbo, points: 20}]",
    );
    assert_eq!(trial.dataset.quantisation(), None);
    for index in 0..2 {
        let (measured, protocol, scored) =
            measure(&trial, index, trial.dataset.as_ref(), &trial.held_out);
        let names: Vec<&str> = measured.details.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["nfe"]);
        assert!(protocol
            .iter()
            .all(|(k, _)| *k != "dequantisation" && *k != "bits_offset"));
        assert!(scored == *trial.held_out, "points are scored as drawn");
    }
}

#[test]
fn image_files_and_quantised_shapes_say_they_are_bytes_in_minus_one_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..4 * 16).map(|k| (k * 37 % 256) as u8).collect();
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        idx_images(4, 4, 4, &pixels),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx_labels(&[0, 1, 0, 1]),
    )
    .unwrap();
    let mnist = format!("{{kind: mnist, path: '{}'}}", dir.path().display());
    let trial = &resolve(&image_experiment(&mnist, 2, 2), &[]).unwrap()[0];
    assert_eq!(trial.dataset.quantisation(), Some(Quantisation::BYTES));

    let quantised = &resolve(
        &image_experiment("{kind: shapes, size: 8, quantise: true}", 20, 30),
        &[],
    )
    .unwrap()[0];
    let continuous =
        &resolve(&image_experiment("{kind: shapes, size: 8}", 20, 30), &[]).unwrap()[0];
    assert_eq!(quantised.dataset.quantisation(), Some(Quantisation::BYTES));
    assert_eq!(continuous.dataset.quantisation(), None);
    // The same images, each pixel moved to its nearest byte level (at most half a step).
    let q = Quantisation::BYTES;
    let mut moved = 0;
    for (a, b) in quantised
        .held_out
        .as_slice()
        .iter()
        .zip(continuous.held_out.as_slice())
    {
        assert!(q.code(*a).is_some(), "{a} is off the byte grid");
        assert!((a - b).abs() <= 0.5 / 127.5 + 1e-12, "{a} vs {b}");
        moved += usize::from(a != b);
    }
    assert!(moved > 0, "anti-aliased edges are not all on the grid");
    assert_eq!(quantised.held_out.labels(), continuous.held_out.labels());
}

#[test]
fn a_sweep_on_quantised_shapes_records_bits_per_dim_beside_nats() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bpd.yaml",
        r#"
name: bpd
seed: 2
num_samples: 6
data: {kind: shapes, size: 8, quantise: true}
schedule: {kind: geometric, num_levels: 10, sigma_max: 20}
weighting: sigma_squared
network: {kind: mlp, hidden: 16, layers: 1, embedding: 4}
train: {steps: 2, batch_size: 4, train_size: 20}
sampler: {kind: euler, steps: 2}
eval:
  - {kind: nll_ode, points: 3, rtol: 1e-3, atol: 1e-3}
  - {kind: elbo, points: 3}
"#,
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    let row = &report.rows[0];
    for metric in ["nll_ode", "elbo"] {
        let (nats, bits) = (row.metrics[metric], row.metrics[&format!("{metric}_bpd")]);
        println!("{metric}: {nats} nats/dim, {bits} bits/dim");
        assert!(nats.is_finite(), "{metric}");
        assert!(
            (bits - (nats / LN_2 + 7.0)).abs() < 1e-9,
            "{metric}: {bits}"
        );
        let settings = &row.protocols[metric].settings;
        assert_eq!(settings["bits_offset"], "7", "{settings:?}");
        assert!(settings["dequantisation"].starts_with("uniform, 256 bins"));
    }
}
