//! The latent autoencoders themselves: a small convolutional VAE on 8x8 shapes and an MLP
//! VAE on 2D points, trained by the engine's loop. Reconstruction error falls with
//! training, encode -> decode reproduces the training data, and the scaled training latents
//! have unit variance; every parameter receives a gradient.

use candle_core::{Device, Var};
use scorelab::dataset::Samples;
use scorelab::latent::Prepared;
use scorelab::train::Hooks;
use scorelab::trial::Trial;

use crate::common::resolve;

/// 8x8 grey shapes (five classes); the diffusion settings are never used here.
const SHAPES: &str = r#"
seed: 2
num_samples: 64
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1], attention_resolutions: [], groups: 4, parameterisation: edm}
train: {steps: 10, batch_size: 16, train_size: 512}
sampler: {kind: heun, steps: 4}
"#;

const MOONS: &str = r#"
seed: 2
num_samples: 200
data: moons
schedule: edm
weighting: edm
network: {kind: mlp, hidden: 32, layers: 2, parameterisation: edm}
train: {steps: 10, batch_size: 64, train_size: 1000}
sampler: {kind: heun, steps: 4}
"#;

fn trial(text: &str, latent: &str) -> Trial {
    resolve(&format!("{text}latent: {latent}\n"), &[])
        .unwrap()
        .remove(0)
}

fn train(trial: &Trial) -> Prepared {
    scorelab::stages::latent::train_and_encode(
        &trial.latent,
        &trial.training_data,
        (trial.settings.seed, &Device::Cpu),
        None,
        Hooks::quiet(&mut |_| {}),
    )
    .unwrap()
}

/// Mean squared error of encode (posterior mean) -> decode over `data`, divided by the
/// data's variance (1: no better than the mean image; 0: exact).
fn relative_round_trip_error(prepared: &Prepared, data: &Samples) -> f64 {
    let x = data.to_tensor(&Device::Cpu).unwrap();
    let (mean, _) = prepared.autoencoder.encode(&x).unwrap();
    let back = prepared.autoencoder.decode(&mean).unwrap();
    let mse = back
        .sub(&x)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    let values = data.as_slice();
    let m = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64;
    mse / var
}

/// Mean and variance of every coordinate of `samples` together.
fn moments(samples: &Samples) -> (f64, f64) {
    let v = samples.as_slice();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64,
    )
}

#[test]
fn conv_vae_learns_round_trips_and_scales_its_latents_to_unit_variance() {
    let t = trial(
        SHAPES,
        "{kind: vae, downsample: 2, latent_channels: 4, channels: 8, groups: 4, steps: 400, batch_size: 16, lr: 0.003}",
    );
    assert_eq!(t.latent.shape, vec![4, 4, 4]);
    let prepared = train(&t);
    let recon = &prepared.history.recon;
    let (first, last) = (recon[0], *recon.last().unwrap());
    let error = relative_round_trip_error(&prepared, &t.training_data);
    let (mean, var) = moments(&prepared.training_latents);
    eprintln!(
        "vae on 8x8 shapes: recon MSE {first:.4} (first 6 steps) -> {last:.4} (last 6); \
         round trip {error:.4} of the data's variance; scaled latents mean {mean:.4} var {var:.6}"
    );
    // Falls with training: the first window's MSE is the untrained network's (about the
    // data's variance), the last far below it.
    assert!(last < 0.25 * first, "{first} -> {last}");
    // 400 steps of a [4, 4, 4] latent for 8x8 images: within 10% of the variance
    // (an autoencoder that ignored its input would score 1).
    assert!(error < 0.10, "{error}");
    // The scale is 1 / std of these very values (rounded to f32 once).
    assert!((var - 1.0).abs() < 1e-4, "{var}");
    // The training latents are the scaled posterior means of the training data, labelled.
    let (means, _) = prepared
        .autoencoder
        .encode(&t.training_data.head(4).to_tensor(&Device::Cpu).unwrap())
        .unwrap();
    let means: Vec<f32> = means.flatten_all().unwrap().to_vec1().unwrap();
    for (a, b) in means.iter().zip(prepared.training_latents.as_slice()) {
        assert_eq!(((*a as f64) * prepared.scale) as f32 as f64, *b);
    }
    assert_eq!(
        prepared.training_latents.labels(),
        t.training_data.labels(),
        "labels kept"
    );
}

#[test]
fn every_vae_parameter_receives_a_gradient() {
    for (text, latent) in [
        (
            SHAPES,
            "{kind: vae, downsample: 4, latent_channels: 2, channels: 8, groups: 2}",
        ),
        (MOONS, "{kind: mlp_vae, latent_dim: 2, hidden: 16}"),
    ] {
        let t = trial(text, latent);
        let mut rng = scorelab::rng::Rng::from_seed(0);
        let ae = t.latent.plugin.instantiate(&Device::Cpu, &mut rng).unwrap();
        let x = t.training_data.head(8).to_tensor(&Device::Cpu).unwrap();
        let (mean, log_var) = ae.encode(&x).unwrap();
        let loss = (ae.decode(&mean).unwrap().sqr().unwrap().sum_all().unwrap()
            + log_var.sqr().unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let vars: Vec<(String, Var)> = scorelab::optim::sorted_vars(ae.variables());
        assert!(vars.len() > 4);
        for (name, var) in vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{latent}: no gradient for {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "{latent}: zero gradient for {name}");
        }
    }
}

#[test]
fn mlp_vae_round_trips_2d_points() {
    let t = trial(
        MOONS,
        "{kind: mlp_vae, latent_dim: 2, hidden: 32, steps: 600, kl_weight: 0.001}",
    );
    assert_eq!(t.latent.shape, vec![2]);
    let prepared = train(&t);
    let recon = &prepared.history.recon;
    let error = relative_round_trip_error(&prepared, &t.training_data);
    let (_, var) = moments(&prepared.training_latents);
    eprintln!(
        "mlp_vae on moons: recon MSE {:.4} -> {:.5}; round trip {error:.5} of the variance; latent var {var:.6}",
        recon[0],
        recon.last().unwrap()
    );
    assert!(*recon.last().unwrap() < 0.1 * recon[0]);
    // A 2 -> 2 bottleneck loses nothing in principle: within 2% after 600 steps.
    assert!(error < 0.02, "{error}");
    assert!((var - 1.0).abs() < 1e-4, "{var}");
    // Decoding goes through 1 / scale: decode(scale * mean) is decode(mean) exactly.
    let x = t.training_data.head(5).to_tensor(&Device::Cpu).unwrap();
    let (mean, _) = prepared.autoencoder.encode(&x).unwrap();
    let direct: Vec<f32> = prepared
        .autoencoder
        .decode(&mean)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let scaled = (mean * prepared.scale).unwrap();
    let through: Vec<f32> = prepared
        .decode(&scaled)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for (a, b) in direct.iter().zip(&through) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}
