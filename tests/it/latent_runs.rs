//! Latent diffusion through the runner: `identity` is the experiment without a `latent:`
//! section bit for bit; latent diffusion on a 2D toy samples the data's distribution; the
//! autoencoder is cached (a rerun loads it and gives identical numbers); and what cannot
//! work in a latent space is refused with the key to change.

use std::path::Path;

use scorelab::run::{self, SweepOptions, SweepReport};

use crate::common::{resolve, resolve_error, write};

/// Moons with EDM's schedule and Heun: trains and samples in about a second.
const MOONS: &str = r#"
seed: 1
num_samples: 500
data: moons
schedule: edm
weighting: edm
network: {kind: mlp, hidden: 48, layers: 2, parameterisation: edm, sigma_data: 1.0}
train: {steps: 600, batch_size: 128, lr: 0.003, train_size: 1000, log_every: 50}
sampler: {kind: heun, steps: 12}
eval: [fd, mmd]
"#;

const MLP_VAE: &str = "latent: {kind: mlp_vae, latent_dim: 2, hidden: 32, steps: 500}\n";

fn sweep_text(dir: &Path, text: &str, results: &Path) -> (SweepReport, String) {
    sweep_jobs(dir, text, results, 1)
}

fn sweep_jobs(dir: &Path, text: &str, results: &Path, jobs: usize) -> (SweepReport, String) {
    let file = write(dir, "exp.yaml", text);
    let options = SweepOptions {
        results: results.to_path_buf(),
        dry_run: false,
        jobs,
        ..Default::default()
    };
    let mut out = Vec::new();
    let report = run::sweep(&file, &[], &options, &mut out).unwrap();
    (report, String::from_utf8_lossy(&out).to_string())
}

#[test]
fn identity_is_the_experiment_without_a_latent_section_bit_for_bit() {
    let without = resolve(MOONS, &[]).unwrap().remove(0);
    let with = resolve(&format!("{MOONS}latent: identity\n"), &[])
        .unwrap()
        .remove(0);
    assert_eq!(with.id, without.id);
    assert_eq!(with.train_id, without.train_id);
    assert_eq!(with.resolved, without.resolved);
    assert!(with.resolved.get("latent").is_none());
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = sweep_text(dir.path(), MOONS, &dir.path().join("a"));
    let (b, _) = sweep_text(
        dir.path(),
        &format!("{MOONS}latent: identity\n"),
        &dir.path().join("b"),
    );
    assert_eq!(a.rows[0].metrics, b.rows[0].metrics);
    assert!(!a.rows[0].metrics.contains_key("sample_ms_per_image"));
    let samples = |r: &SweepReport| {
        std::fs::read(r.folder.trial(&r.rows[0].trial).join("samples.csv")).unwrap()
    };
    assert_eq!(samples(&a), samples(&b));
}

#[test]
fn latent_diffusion_on_moons_samples_the_data_and_its_autoencoder_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let text = format!("{MOONS}{MLP_VAE}");
    let trial = resolve(&text, &[]).unwrap().remove(0);
    assert_eq!(trial.resolved["latent"]["kind"], "mlp_vae");
    assert_eq!(trial.training["latent"]["latent_dim"], 2);
    assert!(trial.latent.id.starts_with("latent-mlp_vae-"));
    let (first, out) = sweep_text(dir.path(), &text, &results);
    let row = &first.rows[0];
    assert!(!row.failed(), "{}", row.message);
    assert!(out.contains("trained in"), "{out}");
    let fd = row.metrics["fd"];
    eprintln!(
        "latent diffusion on moons: fd {fd:.4}, mmd {:.5}, encode {:.4} s, decode {:.4} s, {:.4} ms per sample",
        row.metrics["mmd"],
        row.metrics["encode_s"],
        row.metrics["decode_s"],
        row.metrics["sample_ms_per_image"]
    );
    // Decoded samples in data space: the Fréchet distance of their Gaussian fit to the
    // held-out moons is small (the data's covariance has entries near 0.25-0.75).
    assert!(fd < 0.05, "{fd}");
    for key in ["encode_s", "decode_s", "sample_ms_per_image"] {
        assert!(row.metrics[key] >= 0.0, "{key}");
    }
    let folder = &first.folder;
    let ae = folder.model(&trial.latent.id);
    let weights = std::fs::read(ae.join("autoencoder.safetensors")).unwrap();
    assert!(ae.join("latents.safetensors").is_file());

    // A rerun without the trials and the diffusion model: the autoencoder is loaded, the
    // diffusion model retrained on the loaded latents, and every number is the same.
    std::fs::remove_dir_all(folder.trial(&row.trial)).unwrap();
    std::fs::remove_dir_all(folder.model(&trial.train_id)).unwrap();
    let (second, out) = sweep_text(dir.path(), &text, &results);
    assert!(
        out.contains(&format!("autoencoder {}: loaded", trial.latent.id)),
        "{out}"
    );
    assert!(!out.contains("trained in"), "{out}");
    assert_eq!(
        std::fs::read(ae.join("autoencoder.safetensors")).unwrap(),
        weights
    );
    let numbers = |r: &SweepReport| {
        let m = &r.rows[0].metrics;
        (m["fd"].to_bits(), m["mmd"].to_bits())
    };
    assert_eq!(numbers(&first), numbers(&second));
}

#[test]
fn a_likelihood_metric_in_a_latent_trial_is_refused_while_resolving() {
    for metric in ["nll_ode", "elbo"] {
        let plain = MOONS
            .replace("eval: [fd, mmd]", &format!("eval: [fd, {metric}]"))
            .replace("schedule: edm", "schedule: ddpm");
        let message = resolve_error(&format!("{plain}{MLP_VAE}"), &[]);
        assert!(message.contains("exp.yaml"), "{message}");
        assert!(message.contains("eval[1]"), "{message}");
        assert!(
            message.contains(&format!(
                "metric `{metric}` evaluates the score model on data points"
            )),
            "{message}"
        );
        assert!(
            message.contains("remove eval[1], or set `latent: identity`"),
            "{message}"
        );
        // Without a latent space the same list resolves.
        resolve(&plain, &[]).unwrap();
    }
}

#[test]
fn bad_latent_input_is_refused_with_the_key_and_the_fix() {
    let message = resolve_error(&format!("{MOONS}latent: vqgan\n"), &[]);
    assert!(message.contains("unknown latent `vqgan`"), "{message}");
    assert!(message.contains("identity, mlp_vae, vae"), "{message}");
    assert!(message.contains("latent.kind"), "{message}");

    let message = resolve_error(&format!("{MOONS}latent: vae\n"), &[]);
    assert!(message.contains("`vae` encodes images"), "{message}");
    assert!(message.contains("latent: mlp_vae"), "{message}");

    // `sigma_max: auto` measures the training data while resolving: there are no latents yet.
    let auto = MOONS.replace(
        "schedule: edm",
        "schedule: {kind: geometric, num_levels: 5, sigma_max: auto, sigma_min: 0.01}",
    );
    let message = resolve_error(&format!("{auto}{MLP_VAE}"), &[]);
    assert!(message.contains("exp.yaml"), "{message}");
    assert!(message.contains("schedule.sigma_max"), "{message}");
    assert!(
        message.contains("give `schedule.sigma_max` a number"),
        "{message}"
    );
    // A number is fine, and so is `auto` without a latent space.
    resolve(&auto.replace("sigma_max: auto", "sigma_max: 20"), &[]).unwrap();
    resolve(&format!("{auto}latent: identity\n"), &[]).unwrap();

    let gmm = r#"
num_samples: 100
data: {kind: gmm, means: [[-2.0, 0.0], [2.0, 0.0]], stds: [0.5, 0.5], weights: [0.5, 0.5], labelled: true}
schedule: edm
weighting: edm
network: oracle
sampler: {kind: heun, steps: 4}
"#;
    let message = resolve_error(&format!("{gmm}{MLP_VAE}"), &[]);
    assert!(message.contains("network `oracle` is exact"), "{message}");
    assert!(message.contains("latent.kind"), "{message}");

    let classifier = gmm.replace("network: oracle", "network: {kind: mlp, hidden: 8}");
    let message = resolve_error(
        &format!("{classifier}{MLP_VAE}guidance: {{kind: classifier, classifier: oracle}}\n"),
        &[],
    );
    assert!(message.contains("own classifier"), "{message}");
    assert!(message.contains("guidance: cfg"), "{message}");

    let shapes = r#"
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1], attention_resolutions: [], groups: 4}
sampler: {kind: heun, steps: 4}
"#;
    let message = resolve_error(
        &format!("{shapes}latent: {{kind: vae, downsample: 3}}\n"),
        &[],
    );
    assert!(message.contains("latent.downsample"), "{message}");
    let message = resolve_error(
        &format!("{shapes}latent: {{kind: vae, channels: 12, groups: 8}}\n"),
        &[],
    );
    assert!(message.contains("latent.groups"), "{message}");
    // The U-Net is built for the latent shape: a [4, 1, 1] latent cannot be halved.
    let message = resolve_error(
        &format!(
            "{}latent: {{kind: vae, downsample: 8}}\n",
            shapes.replace("channel_mult: [1]", "channel_mult: [1, 2]")
        ),
        &[],
    );
    assert!(message.contains("1x1"), "{message}");
}

#[test]
fn an_image_latent_trial_decodes_its_samples_and_reports_the_autoencoder_floor() {
    let text = r#"
seed: 4
num_samples: 200
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1], attention_resolutions: [], groups: 4, parameterisation: edm}
train: {steps: 20, batch_size: 16, train_size: 400, log_every: 10}
sampler: {kind: heun, steps: 4}
latent: {kind: vae, downsample: 2, latent_channels: 4, channels: 8, groups: 4, steps: 400, batch_size: 16, lr: 0.003}
features: raw
eval: [fid]
"#;
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sweep_text(dir.path(), text, &dir.path().join("r"));
    let row = &report.rows[0];
    assert!(!row.failed(), "{}", row.message);
    let m = &row.metrics;
    let (fid, recon, floor) = (m["fid"], m["fid_recon"], m["fid_floor"]);
    eprintln!("8x8 shapes in pixel features: fid {fid:.3} (20 training steps), autoencoder floor {recon:.3}, real floor {floor:.3}");
    // Reconstructions of real images are far closer to the data than 20-step samples, and
    // no closer than real images themselves.
    assert!(floor < recon && recon < 0.5 * fid, "{floor} {recon} {fid}");
    // Samples are images of the data's shape; the denoising strip shows decoded latents.
    let trial = report.folder.trial(&row.trial);
    let saved = candle_core::safetensors::load(
        trial.join("samples.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(saved["images"].dims(), &[200, 1, 8, 8]);
    assert!(trial.join("denoising.png").is_file());
}

#[test]
fn models_that_share_an_autoencoder_train_it_once_even_at_once() {
    let text = format!("{MOONS}{MLP_VAE}sweep:\n  network.hidden: [16, 24]\n")
        .replace("steps: 600", "steps: 100");
    let dir = tempfile::tempdir().unwrap();
    let (sequential, out) = sweep_text(dir.path(), &text, &dir.path().join("a"));
    assert_eq!(out.matches("trained in").count(), 1, "{out}");
    assert!(out.contains(": loaded"), "{out}");
    let (parallel, out) = sweep_jobs(dir.path(), &text, &dir.path().join("b"), 2);
    assert_eq!(out.matches("autoencoder latent-").count(), 2, "{out}");
    let rows = &parallel.rows;
    assert_ne!(rows[0].train_id, rows[1].train_id);
    assert_eq!(
        rows[0].metrics["autoencoder_s"],
        rows[1].metrics["autoencoder_s"]
    );
    for (a, b) in sequential.rows.iter().zip(rows) {
        assert_eq!(a.metrics["fd"].to_bits(), b.metrics["fd"].to_bits());
    }
    // Quality against sampling time per item: one chart per quality metric, none for the
    // timings themselves.
    let plots = dir.path().join("a/exp/plots");
    for metric in ["fd", "mmd"] {
        let chart = plots.join(format!("quality_vs_time_{metric}.png"));
        assert!(chart.is_file(), "{}", chart.display());
    }
    assert!(!plots.join("quality_vs_time_decode_s.png").exists());
    assert!(!plots
        .join("quality_vs_time_sample_ms_per_image.png")
        .exists());
}
