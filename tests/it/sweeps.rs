//! Sweep expansion, overrides and the equivalence of YAML and TOML.

use crate::common::{resolve, resolve_file, write, SMALL_GMM};

#[test]
fn grid_and_zip_expansion_counts() {
    let grid = format!(
        "{SMALL_GMM}sweep:\n  schedule.num_levels: [1, 3, 10]\n  sampler.steps_per_level: [2, 4]\n"
    );
    assert_eq!(resolve(&grid, &[]).unwrap().len(), 6);

    let zipped = format!(
        "{SMALL_GMM}sweep:\n  schedule.num_levels: [1, 3]\n  zip:\n    sampler.steps_per_level: [2, 4, 8]\n    sampler.eps: [0.1, 0.01, 0.001]\n"
    );
    let trials = resolve(&zipped, &[]).unwrap();
    assert_eq!(trials.len(), 6);
    // Zipped keys move together.
    for t in &trials {
        let steps = t.resolved["sampler"]["steps_per_level"].as_u64().unwrap();
        let eps = t.resolved["sampler"]["eps"].as_f64().unwrap();
        let expected = match steps {
            2 => 0.1,
            4 => 0.01,
            _ => 0.001,
        };
        assert_eq!(eps, expected);
    }
    let uneven = format!(
        "{SMALL_GMM}sweep:\n  zip:\n    sampler.steps_per_level: [2, 4]\n    sampler.eps: [0.1]\n"
    );
    let message = resolve(&uneven, &[]).err().unwrap().to_string();
    assert!(message.contains("same number of values"), "{message}");

    // Command-line sweeps multiply the file's.
    assert_eq!(resolve(&grid, &["seed=1,2"]).unwrap().len(), 12);
    assert_eq!(resolve(SMALL_GMM, &["seed=range(0,4)"]).unwrap().len(), 4);
}

#[test]
fn overrides_win_over_the_file_and_its_sweep() {
    let trials = resolve(SMALL_GMM, &["sampler.steps_per_level=7"]).unwrap();
    assert_eq!(trials[0].resolved["sampler"]["steps_per_level"], 7);

    let swept = format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4, 8]\n");
    let fixed = resolve(&swept, &["sampler.steps_per_level=3"]).unwrap();
    assert_eq!(
        fixed.len(),
        1,
        "a fixed override removes the file's sweep of that key"
    );
    assert_eq!(fixed[0].resolved["sampler"]["steps_per_level"], 3);

    let resweep = resolve(&swept, &["sampler.steps_per_level=5,6"]).unwrap();
    let values: Vec<_> = resweep
        .iter()
        .map(|t| t.resolved["sampler"]["steps_per_level"].as_u64().unwrap())
        .collect();
    assert_eq!(values, vec![5, 6]);
}

#[test]
fn defaults_are_filled_in_and_ids_are_stable() {
    let a = resolve(SMALL_GMM, &[]).unwrap();
    let b = resolve(SMALL_GMM, &["sampler.final_denoise=true"]).unwrap();
    assert_eq!(a[0].resolved["sampler"]["final_denoise"], true);
    assert_eq!(
        a[0].id, b[0].id,
        "writing a default explicitly does not change the trial"
    );
    let c = resolve(SMALL_GMM, &["sampler.final_denoise=false"]).unwrap();
    assert_ne!(a[0].id, c[0].id);
    assert_eq!(
        a[0].train_id, c[0].train_id,
        "a sampler change reuses the trained model"
    );
    let d = resolve(SMALL_GMM, &["train.steps=61"]).unwrap();
    assert_ne!(a[0].train_id, d[0].train_id);
}

#[test]
fn yaml_and_toml_resolve_identically() {
    let toml = r#"
seed = 3
num_samples = 400
eval = ["fd", "mmd", "mode_weights"]

[data]
kind = "gmm"
means = [[-5.0, -5.0], [5.0, 5.0]]
stds = [1.0, 1.0]
weights = [0.8, 0.2]

[schedule]
kind = "geometric"
num_levels = 5
sigma_max = "auto"
sigma_min = 0.1

[weighting]
kind = "sigma_squared"

[network]
kind = "mlp"
hidden = 32
layers = 2
embedding = 8

[train]
steps = 60
batch_size = 64
train_size = 500
log_every = 10

[sampler]
kind = "annealed_langevin"
steps_per_level = 5
eps = 0.002

[sweep]
schedule.num_levels = [1, 5]
"#;
    let dir = tempfile::tempdir().unwrap();
    let toml_file = write(dir.path(), "exp.toml", toml);
    let yaml_file = write(
        dir.path(),
        "exp.yaml",
        &format!("{SMALL_GMM}sweep:\n  schedule.num_levels: [1, 5]\n"),
    );
    let from_toml = resolve_file(&toml_file, &[]).unwrap();
    let from_yaml = resolve_file(&yaml_file, &[]).unwrap();
    assert_eq!(from_toml.len(), 2);
    for (t, y) in from_toml.iter().zip(&from_yaml) {
        assert_eq!(t.resolved, y.resolved);
        assert_eq!(t.id, y.id);
        assert_eq!(t.label, y.label);
    }
}

#[test]
fn switching_a_slot_to_another_plugin_drops_the_files_parameters_for_it() {
    // The file's mlp keys (hidden, layers, embedding) do not apply to the oracle.
    let swept = format!("{SMALL_GMM}sweep:\n  network.kind: [mlp, oracle]\n");
    let trials = resolve(&swept, &[]).unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(
        trials[0].resolved["network"]["hidden"], 32,
        "the file's kind keeps its keys"
    );
    assert_eq!(
        trials[1].resolved["network"],
        serde_json::json!({"kind": "oracle"})
    );
    assert_eq!(trials[0].label, "network=mlp");
    assert!(!trials[1].architecture.trainable());
}

#[test]
fn a_plugin_chosen_by_name_on_the_command_line_takes_parameters_after_it() {
    let trials = resolve(
        SMALL_GMM,
        &["network=oracle", "network.kind=mlp", "network.hidden=16"],
    )
    .unwrap();
    assert_eq!(trials[0].resolved["network"]["hidden"], 16);
    let trials = resolve(
        SMALL_GMM,
        &["sampler=annealed_langevin", "sampler.steps_per_level=3"],
    )
    .unwrap();
    assert_eq!(trials[0].resolved["sampler"]["steps_per_level"], 3);
    // The same plugin as the file's: the file's other keys still apply.
    assert_eq!(trials[0].resolved["sampler"]["eps"], 0.002);
    // A shorthand followed by a parameter keeps the name it gave.
    let message =
        crate::common::resolve_error(SMALL_GMM, &["weighting=uniform", "weighting.power=2"]);
    assert!(
        message.contains("`weighting.power`") && message.contains("takes no parameters"),
        "{message}"
    );
}

#[test]
fn sweep_wide_settings_cannot_be_swept() {
    for key in ["threads", "eval_batch"] {
        let message = crate::common::resolve_error(SMALL_GMM, &[&format!("{key}=1,2")]);
        assert!(
            message.contains(&format!("`{key}`")) && message.contains("whole sweep"),
            "{message}"
        );
    }
}

#[test]
fn bracketed_values_are_one_value_not_a_sweep() {
    let trials = resolve(SMALL_GMM, &["data.weights=[0.5, 0.5]"]).unwrap();
    assert_eq!(trials.len(), 1);
    assert_eq!(
        trials[0].resolved["data"]["weights"],
        serde_json::json!([0.5, 0.5])
    );
    let trials = resolve(SMALL_GMM, &["data.weights=[0.5, 0.5],[0.9, 0.1]"]).unwrap();
    assert_eq!(trials.len(), 2, "a comma outside brackets sweeps");
    assert_eq!(
        trials[1].resolved["data"]["weights"],
        serde_json::json!([0.9, 0.1])
    );
}

/// A row added to a file's sweep with a zip, its new key `null` (the default) on the old
/// rows: the old rows keep their labels and ids, the new row names its key.
#[test]
fn null_in_a_sweep_list_is_left_out_of_the_label_so_added_rows_keep_the_old_ids() {
    let before = format!("{SMALL_GMM}sweep:\n  weighting.kind: [sigma_squared, uniform]\n");
    let after = format!(
        "{SMALL_GMM}sweep:\n  zip:\n    weighting.kind: [sigma_squared, uniform, uniform]\n    train.time_sampling: [null, null, importance]\n"
    );
    let old: Vec<String> = resolve(&before, &[])
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let new: Vec<String> = resolve(&after, &[])
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(new[..2], old[..]);
    assert!(
        new[2].starts_with("time_sampling=importance,weighting=uniform-"),
        "{}",
        new[2]
    );
}

/// `~sweep` (and `--no-sweep`) runs the file's base config as one trial: the same config, and
/// so the same id's hash and model, as the sweep point that equals it.
#[test]
fn no_sweep_runs_the_base_config_as_one_trial() {
    let file = format!("{SMALL_GMM}sweep:\n  weighting.kind: [sigma_squared, uniform]\n");
    let swept = resolve(&file, &[]).unwrap();
    let base = resolve(&file, &["~sweep"]).unwrap();
    assert_eq!(base.len(), 1);
    assert_eq!(base[0].label, "base");
    let hash = |id: &str| id.rsplit('-').next().unwrap().to_string();
    assert_eq!(hash(&base[0].id), hash(&swept[0].id));
    assert_eq!(base[0].train_id, swept[0].train_id);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "exp.yaml", &file);
    let path = path.to_str().unwrap();
    let (code, out, err) = crate::common::runner(&["sweep", path, "--no-sweep", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("plan: 1 trial(s)"), "{out}");
    // Other overrides of the sweep section are still refused, naming the way that works.
    let message = crate::common::resolve_error(&file, &["sweep.weighting.kind=edm"]);
    assert!(message.contains("~sweep"), "{message}");
}

/// A whole number written as a float (`1e3`) is accepted where an integer is expected, as
/// that integer; a fraction is still refused.
#[test]
fn whole_floats_are_accepted_as_integers() {
    let trials = resolve(
        SMALL_GMM,
        &["train.steps=1e2", "sampler.steps_per_level=2e1"],
    )
    .unwrap();
    assert_eq!(trials[0].resolved["train"]["steps"], 100);
    assert_eq!(trials[0].resolved["sampler"]["steps_per_level"], 20);
    let same = resolve(
        SMALL_GMM,
        &["train.steps=100", "sampler.steps_per_level=20"],
    )
    .unwrap();
    assert_eq!(trials[0].id, same[0].id);
    let message = crate::common::resolve_error(SMALL_GMM, &["train.steps=1.5"]);
    assert!(
        message.contains("`train.steps`") && message.contains("1.5"),
        "{message}"
    );
}
