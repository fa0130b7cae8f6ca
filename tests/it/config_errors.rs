//! Every kind of bad input is answered with one paragraph naming the file, the key path and
//! the fix.

use crate::common::{replace_line, resolve_error, write, SMALL_GMM};

#[test]
fn unknown_plugin_names_file_key_and_nearest() {
    let text = replace_line(SMALL_GMM, "sampler:", "sampler: {kind: anealed_langevin}");
    let message = resolve_error(&text, &[]);
    assert!(message.contains("exp.yaml"), "{message}");
    assert!(message.contains("`sampler.kind`"), "{message}");
    assert!(
        message.contains("unknown sampler `anealed_langevin`"),
        "{message}"
    );
    assert!(
        message.contains("did you mean `annealed_langevin`"),
        "{message}"
    );
}

#[test]
fn misspelled_key_is_named_with_its_path_and_the_valid_keys() {
    let text = replace_line(
        SMALL_GMM,
        "sampler:",
        "sampler: {kind: annealed_langevin, step_per_level: 5}",
    );
    let message = resolve_error(&text, &[]);
    assert!(message.contains("`sampler.step_per_level`"), "{message}");
    assert!(
        message.contains("did you mean `steps_per_level`"),
        "{message}"
    );
    assert!(message.contains("exp.yaml"), "{message}");

    let top = resolve_error(&format!("{SMALL_GMM}sampelr: 1\n"), &[]);
    assert!(
        top.contains("`sampelr`") && top.contains("did you mean `sampler`"),
        "{top}"
    );
}

#[test]
fn wrong_type_names_key_and_expected_type() {
    let text = replace_line(SMALL_GMM, "train:", "train: {steps: 60, batch_size: lots}");
    let message = resolve_error(&text, &[]);
    assert!(message.contains("`train.batch_size`"), "{message}");
    assert!(message.contains("\"lots\""), "{message}");
    assert!(message.contains("usize"), "{message}");
}

#[test]
fn missing_file_and_malformed_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let message = crate::common::resolve_file(&missing, &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("nope.yaml") && message.contains("not found"),
        "{message}"
    );

    let bad = write(dir.path(), "bad.yaml", "seed: 1\ndata: {kind: gmm\n");
    let message = crate::common::resolve_file(&bad, &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("bad.yaml") && message.contains("cannot be parsed"),
        "{message}"
    );
    assert!(
        message.contains("line"),
        "the parser's position is given: {message}"
    );

    let odd = write(dir.path(), "exp.json", "{}");
    let message = crate::common::resolve_file(&odd, &[])
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("*.yaml"), "{message}");
}

#[test]
fn empty_sweep_list_is_rejected() {
    let message = resolve_error(
        &format!("{SMALL_GMM}sweep:\n  schedule.num_levels: []\n"),
        &[],
    );
    assert!(message.contains("`sweep.schedule.num_levels`"), "{message}");
    assert!(message.contains("empty"), "{message}");
    let message = resolve_error(SMALL_GMM, &["sampler.eps=,"]);
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn sigma_min_must_be_below_sigma_max() {
    let text = replace_line(
        SMALL_GMM,
        "schedule:",
        "schedule: {kind: geometric, sigma_max: 0.5, sigma_min: 1.0}",
    );
    let message = resolve_error(&text, &[]);
    // The one sigma_max check of every schedule blames `sigma_max` when both are numbers.
    assert!(message.contains("`schedule.sigma_max`"), "{message}");
    assert!(
        message.contains("sigma_max (0.5) must be above sigma_min (1)"),
        "{message}"
    );
    // With `auto`, the message gives the computed value and blames `sigma_min`, the level
    // that was written.
    let message = resolve_error(SMALL_GMM, &["schedule.sigma_min=100"]);
    assert!(
        message.contains("auto") && message.contains("largest pairwise distance"),
        "{message}"
    );
    assert!(message.contains("command-line override"), "{message}");
}

#[test]
fn override_errors_name_the_override() {
    let message = resolve_error(SMALL_GMM, &["sampler.eps=abc"]);
    assert!(message.contains("command-line override"), "{message}");
    assert!(message.contains("`sampler.eps`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["sampler.eps"]);
    assert!(message.contains("needs `=`"), "{message}");
}

#[test]
fn missing_section_lists_the_choices() {
    let text: String = SMALL_GMM
        .lines()
        .filter(|l| !l.starts_with("sampler:"))
        .collect::<Vec<_>>()
        .join("\n");
    let message = resolve_error(&text, &[]);
    assert!(
        message.contains("`sampler` section is missing"),
        "{message}"
    );
    assert!(message.contains("annealed_langevin"), "{message}");
}

#[test]
fn cuda_without_the_feature_says_how_to_get_it() {
    let message = resolve_error(&format!("{SMALL_GMM}device: cuda\n"), &[]);
    assert!(message.contains("`device`"), "{message}");
    assert!(message.contains("cuda feature"), "{message}");
}

#[test]
fn metrics_that_need_a_density_are_rejected_for_toy_data() {
    let text = replace_line(SMALL_GMM, "kind: gmm", "  kind: moons");
    let text = text
        .lines()
        .filter(|l| {
            !(l.starts_with("  means") || l.starts_with("  stds") || l.starts_with("  weights"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let message = resolve_error(&text, &[]);
    assert!(message.contains("`eval[2].kind`"), "{message}");
    assert!(
        message.contains("mode_weights needs mixture data"),
        "{message}"
    );
    let oracle = resolve_error(
        &text.replace("eval: [fd, mmd, mode_weights]", "eval: [fd]"),
        &["network=oracle"],
    );
    assert!(
        oracle.contains("`network.kind`") && oracle.contains("gmm"),
        "{oracle}"
    );
}

#[test]
fn non_finite_loss_fails_the_trial_with_advice_and_leaves_no_model() {
    let dir = tempfile::tempdir().unwrap();
    // A noise level of 1e20 squares to infinity in f32: the loss cannot be finite. (Data
    // that large is refused before training as a data error; see tests/it/validation.rs.)
    let text = SMALL_GMM.replace("sigma_max: auto", "sigma_max: 1.0e20");
    let file = write(dir.path(), "diverge.yaml", &text);
    let results = dir.path().join("results");
    // The trial fails alone: the sweep finishes and records why (tests/it/failures.rs).
    let report = crate::common::sweep(&file, &[], &results).expect("the sweep finishes");
    assert_eq!(report.failed, 1);
    let message = &report.rows[0].message;
    assert!(message.contains("diverged"), "{message}");
    assert!(message.contains("train.lr"), "{message}");
    assert!(
        !message.contains("use `weighting: sigma_squared`"),
        "not the weighting it already uses: {message}"
    );
    let trial = results
        .join("diverge")
        .join("trials")
        .join(&report.rows[0].trial);
    let record = std::fs::read_to_string(trial.join("metrics.json")).unwrap();
    assert!(record.contains("\"failed\""), "{record}");
    assert!(
        !results.join("diverge").join("models").exists(),
        "no partial model"
    );
}

#[test]
fn the_results_folder_name_cannot_leave_the_results_folder() {
    let message = resolve_error(&format!("{SMALL_GMM}name: ../elsewhere\n"), &[]);
    assert!(
        message.contains("`name`") && message.contains("plain folder name"),
        "{message}"
    );
}
