//! How the SDE family's settings meet sweeps: sampler ablations keep the file's tuned
//! sampler, sampling settings never split a training group, and parameterisations are
//! checked before anything runs.

use std::path::Path;

use crate::common::{resolve, resolve_error, resolve_file, sweep, write, SMALL_GMM};

#[test]
fn a_sampler_ablation_keeps_the_files_tuned_sampler_as_its_baseline() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.yaml");
    let trials = resolve_file(
        &quickstart,
        &["sampler=annealed_langevin,test_iterated_denoiser"],
    )
    .unwrap();
    let langevin: Vec<_> = trials
        .iter()
        .filter(|t| t.resolved["sampler"]["kind"] == "annealed_langevin")
        .collect();
    assert_eq!(langevin.len(), 2, "one per weighting");
    for trial in langevin {
        assert_eq!(trial.resolved["sampler"]["steps_per_level"], 50);
        assert_eq!(trial.resolved["sampler"]["eps"], 0.0005);
    }
    let other = trials
        .iter()
        .find(|t| t.resolved["sampler"]["kind"] == "test_iterated_denoiser")
        .unwrap();
    assert_eq!(
        other.resolved["sampler"],
        serde_json::json!({"kind": "test_iterated_denoiser"}),
        "the other sampler does not inherit annealed Langevin's keys"
    );
}

#[test]
fn a_sweep_of_samplers_trains_exactly_one_model() {
    let yaml = format!(
        "{}sweep:\n  sampler.kind: [euler, heun, ddim, dpmpp_2m]\n",
        SMALL_GMM
            .replace("train: {steps: 60,", "train: {steps: 20,")
            .replace(
                "schedule: {kind: geometric, num_levels: 5, sigma_max: auto,",
                "schedule: {kind: ve, sigma_max: 15.0,"
            )
            .replace(
                "sampler: {kind: annealed_langevin, steps_per_level: 5, eps: 0.002}",
                "sampler: euler"
            )
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "samplers.yaml", &yaml);
    let overrides = ["sampler.steps=2,4", "schedule.sampling_eps=0.001,0.01"];
    let trials = resolve_file(&file, &overrides).unwrap();
    assert_eq!(trials.len(), 16);
    assert!(
        trials.iter().all(|t| t.train_id == trials[0].train_id),
        "sampler settings and the schedule's sampling end never split a training group"
    );
    let report = sweep(&file, &overrides, &dir.path().join("r")).unwrap();
    assert_eq!(report.rows.len(), 16);
    let models = std::fs::read_dir(report.folder.root.join("models")).unwrap();
    assert_eq!(models.count(), 1, "one model for every sampler");
    assert!(
        report.folder.root.join("quality_vs_nfe.csv").is_file()
            && report
                .folder
                .root
                .join("plots/quality_vs_nfe_mode_weights_sampling_eps-0.01.png")
                .is_file(),
        "a sampler sweep writes the quality-vs-NFE table and charts"
    );

    // One chart per sampling end, one line per sampler, its step counts along the line.
    let table = std::fs::read_to_string(report.folder.root.join("quality_vs_nfe.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["chart", "line", "nfe"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 16);
    let heun: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r[1] == "sampler=heun")
        .map(|r| (r[0], r[2]))
        .collect();
    assert_eq!(
        heun,
        [
            ("sampling_eps=0.001", "3"),
            ("sampling_eps=0.001", "7"),
            ("sampling_eps=0.01", "3"),
            ("sampling_eps=0.01", "7")
        ],
        "Heun's 2N - 1 evaluations for 2 and 4 levels, in NFE order within each chart"
    );
}

#[test]
fn the_parameterisation_is_a_checked_network_setting() {
    let trials = resolve(SMALL_GMM, &["network.parameterisation=edm"]).unwrap();
    assert_eq!(trials[0].resolved["network"]["parameterisation"], "edm");
    assert_eq!(trials[0].resolved["network"]["sigma_data"], 0.5);
    let default = resolve(SMALL_GMM, &[]).unwrap();
    assert_ne!(
        default[0].train_id, trials[0].train_id,
        "the parameterisation decides the trained model"
    );

    let message = resolve_error(SMALL_GMM, &["network.parameterisation=epsilon"]);
    assert!(
        message.contains("`network.parameterisation`") && message.contains("eps"),
        "{message}"
    );
    let message = resolve_error(
        SMALL_GMM,
        &["network=oracle", "network.parameterisation=x0"],
    );
    assert!(
        message.contains("`network.parameterisation`") && message.contains("exact"),
        "{message}"
    );
    let message = resolve_error(SMALL_GMM, &["network.sigma_data=0"]);
    assert!(message.contains("`network.sigma_data`"), "{message}");
}

#[test]
fn a_plugin_named_by_shorthand_keeps_its_name_under_a_swept_parameter() {
    let trials = resolve(SMALL_GMM, &["schedule=edm", "schedule.rho=5,7"]).unwrap();
    assert_eq!(trials.len(), 2);
    for (trial, rho) in trials.iter().zip([5.0, 7.0]) {
        assert_eq!(trials[0].resolved["schedule"]["kind"], "edm");
        assert_eq!(trial.resolved["schedule"]["rho"], rho);
    }
    assert_eq!(
        trials[0].train_id, trials[1].train_id,
        "rho only shapes the sampling grid"
    );
}

#[test]
fn a_swept_plugin_table_brings_its_own_settings() {
    // The file's `steps: 10` belongs to its euler; the swept heun table sets its own, even
    // when the value coincides with the file's.
    let yaml = format!(
        "{}sweep:\n  sampler:\n    - {{kind: euler, steps: 7}}\n    - {{kind: heun, steps: 10}}\n    - {{kind: ddim, eta: 1.0}}\n",
        SMALL_GMM.replace(
            "sampler: {kind: annealed_langevin, steps_per_level: 5, eps: 0.002}",
            "sampler: {kind: euler, steps: 10}"
        )
    );
    let trials = resolve(&yaml, &[]).unwrap();
    assert_eq!(trials[0].resolved["sampler"]["steps"], 7);
    assert_eq!(trials[1].resolved["sampler"]["kind"], "heun");
    assert_eq!(trials[1].resolved["sampler"]["steps"], 10);
    assert_eq!(trials[2].resolved["sampler"]["eta"], 1.0);
    assert_ne!(
        trials[2].resolved["sampler"]["steps"], 10,
        "ddim takes its own default, not euler's steps from the file"
    );
    assert_eq!(trials[1].label, "sampler=heun(steps=10)");
}

#[test]
fn annealed_langevin_walks_l_levels_of_any_schedule() {
    let run = |overrides: &[&str]| {
        let trials = resolve(SMALL_GMM, overrides).unwrap();
        let trial = &trials[0];
        let model = trial
            .new_model(&mut scorelab::rng::Rng::from_seed(0))
            .unwrap();
        scorelab::evaluate::evaluate(
            trial,
            &model,
            &scorelab::evaluate::Around::default(),
            &mut |_| {},
        )
        .unwrap()
    };
    // The file's geometric schedule has 5 levels and 5 steps per level: 25 + the denoising step.
    assert_eq!(run(&["network=oracle"]).nfe, 26);
    let on_vp = run(&[
        "network=oracle",
        "schedule=vp",
        "sampler.levels=4",
        "sampler.steps_per_level=3",
        // The file's eps is sized for its geometric levels; VP's smallest sigma is far smaller
        // (eps scales the step by sigma^2 / sigma_min^2), so it takes experiments/samplers.yaml's.
        "sampler.eps=0.00002",
    ]);
    assert_eq!(on_vp.nfe, 4 * 3 + 1);
    let message = resolve_error(SMALL_GMM, &["sampler.levels=0"]);
    assert!(message.contains("`sampler.levels`"), "{message}");
}
