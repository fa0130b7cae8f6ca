//! Validation before anything runs: every numeric field, the experiment file itself and the
//! limits of the machine are checked at resolve time (so `--dry-run` catches them), each with
//! the key path or file and the fix.

use crate::common::{replace_line, resolve, resolve_error, resolve_file, write, SMALL_GMM};

fn with_data(data: &str) -> String {
    let text: String = SMALL_GMM
        .lines()
        .filter(|l| !l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n");
    replace_line(&text, "data:", &format!("data: {data}"))
}

fn file_error(path: &std::path::Path) -> String {
    match resolve_file(path, &[]) {
        Ok(_) => panic!("expected an error for {}", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn nan_mean_is_a_data_error_naming_the_element() {
    let message = resolve_error(
        &with_data(
            "{kind: gmm, means: [[.nan, 0.0], [5.0, 5.0]], stds: [1.0, 1.0], weights: [0.8, 0.2]}",
        ),
        &[],
    );
    assert!(message.contains("`data.means[0][0]`"), "{message}");
    assert!(
        message.contains("NaN") && message.contains("Fix:"),
        "{message}"
    );
    assert!(message.contains("exp.yaml"), "{message}");
    // The same from an override, which is named as the origin.
    let message = resolve_error(SMALL_GMM, &["data.means=[[-5.0, .inf], [5.0, 5.0]]"]);
    assert!(message.contains("`data.means[0][1]`"), "{message}");
    assert!(message.contains("inf"), "{message}");
    assert!(message.contains("command-line override"), "{message}");
}

#[test]
fn huge_means_are_refused_compactly() {
    let message = resolve_error(SMALL_GMM, &["data.means=[[-5.0, -5.0], [1e300, 5.0]]"]);
    assert!(message.contains("`data.means[1][0]`"), "{message}");
    assert!(message.contains("1e300"), "{message}");
    assert!(message.len() < 400, "compact: {message}");
}

#[test]
fn stds_must_be_positive_and_finite() {
    let message = resolve_error(SMALL_GMM, &["data.stds=[1.0, -1.0]"]);
    assert!(message.contains("`data.stds[1]`"), "{message}");
    assert!(message.contains("must be positive"), "{message}");
    let message = resolve_error(SMALL_GMM, &["data.stds=[0.0, 1.0]"]);
    assert!(message.contains("`data.stds[0]`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["data.stds=[1.0, [1.0, .nan]]"]);
    assert!(message.contains("`data.stds[1][1]`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["data.stds=[1.0, [1.0, 1.0, 1.0]]"]);
    assert!(
        message.contains("`data.stds[1]`") && message.contains("3 entries"),
        "{message}"
    );
}

#[test]
fn weights_must_sum_to_one_and_be_non_negative() {
    let message = resolve_error(SMALL_GMM, &["data.weights=[0.8, 0.3]"]);
    assert!(message.contains("`data.weights`"), "{message}");
    assert!(message.contains("sum to 1.1"), "{message}");
    assert!(
        message.contains("0.7273, 0.2727"),
        "the fix scales them: {message}"
    );
    let message = resolve_error(SMALL_GMM, &["data.weights=[1.2, -0.2]"]);
    assert!(message.contains("`data.weights[1]`"), "{message}");
    assert!(message.contains("-0.2"), "{message}");
    // Within the tolerance is fine.
    assert!(resolve(SMALL_GMM, &["data.weights=[0.8000000001, 0.2]"]).is_ok());
}

#[test]
fn mismatched_lengths_and_empty_mixtures_name_the_key() {
    let message = resolve_error(SMALL_GMM, &["data.weights=[1.0]"]);
    assert!(
        message.contains("`data.weights`")
            && message.contains("1 entries")
            && message.contains("2 components"),
        "{message}"
    );
    let message = resolve_error(SMALL_GMM, &["data.stds=[1.0]"]);
    assert!(message.contains("`data.stds`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["data.means=[[0.0, 0.0], [1.0]]"]);
    assert!(
        message.contains("`data.means[1]`") && message.contains("1 coordinates"),
        "{message}"
    );
    let message = resolve_error(SMALL_GMM, &["data.means=[[], []]"]);
    assert!(message.contains("`data.means[0]`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["data.means=[]"]);
    assert!(
        message.contains("`data.means`") && message.contains("empty"),
        "{message}"
    );
}

#[test]
fn toy_data_parameters_are_bounded() {
    let cases = [
        ("{kind: moons, noise: -0.1}", "`data.noise`", "-0.1"),
        ("{kind: moons, noise: .inf}", "`data.noise`", "inf"),
        ("{kind: swiss_roll, noise: 1e300}", "`data.noise`", "1e300"),
        ("{kind: rings, radii: [1.0, -2.0]}", "`data.radii[1]`", "-2"),
        ("{kind: rings, radii: []}", "`data.radii`", "empty"),
        ("{kind: rings, noise: .nan}", "`data.noise`", "NaN"),
        ("{kind: checkerboard, size: 0.0}", "`data.size`", "positive"),
        (
            "{kind: checkerboard, squares: 0}",
            "`data.squares`",
            "2 to 10000",
        ),
        ("{kind: shapes, size: 0}", "`data.size`", "8 to 64"),
        (
            "{kind: shapes, background_noise: .nan}",
            "`data.background_noise`",
            "0 to 1",
        ),
    ];
    for (data, key, detail) in cases {
        let text = with_data(data).replace("eval: [fd, mmd, mode_weights]", "eval: [fd]");
        let message = resolve_error(&text, &[]);
        assert!(message.contains(key), "{data}: {message}");
        assert!(message.contains(detail), "{data}: {message}");
        assert!(message.contains("Fix:"), "{data}: {message}");
    }
}

#[test]
fn absurd_learning_rate_is_refused_without_309_digits() {
    let message = resolve_error(SMALL_GMM, &["train.lr=1e308"]);
    assert!(message.contains("`train.lr`"), "{message}");
    assert!(message.contains("1e308"), "{message}");
    assert!(message.len() < 400, "compact: {message}");
    assert!(!message.contains("weighting"), "blames the lr: {message}");
    let message = resolve_error(SMALL_GMM, &["train.lr=.nan"]);
    assert!(
        message.contains("`train.lr`") && message.contains("NaN"),
        "{message}"
    );
    assert!(resolve(SMALL_GMM, &["train.lr=10"]).is_ok());
}

#[test]
fn absurd_step_counts_and_sizes_are_refused_with_their_bound() {
    // The bound declared with `train.steps` (the one rule of tests/it/sizes.rs).
    let message = resolve_error(SMALL_GMM, &["train.steps=1000000000000"]);
    assert!(message.contains("`train.steps`"), "{message}");
    assert!(
        message.contains("above the limit of 1e9 (bound 1..=1e9)"),
        "{message}"
    );
    let message = resolve_error(SMALL_GMM, &["train.batch_size=1000000000"]);
    assert!(message.contains("`train.batch_size`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["train.train_size=1000000000000"]);
    assert!(message.contains("`train.train_size`"), "{message}");
    let message = resolve_error(SMALL_GMM, &["num_samples=1000000000000"]);
    assert!(message.contains("`num_samples`"), "{message}");
}

#[test]
fn threads_beyond_the_cores_are_refused_with_the_reason() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let setting = format!("threads={}", cores + 1);
    let message = resolve_error(SMALL_GMM, &[&setting]);
    assert!(message.contains("`threads`"), "{message}");
    assert!(message.contains(&format!("{cores} core")), "{message}");
    assert!(message.contains("spin-wait"), "{message}");
    assert!(message.contains("command-line override"), "{message}");
    assert!(resolve(SMALL_GMM, &[&format!("threads={cores}")]).is_ok());
}

#[test]
fn too_few_samples_for_a_metric_are_refused() {
    let text = SMALL_GMM.replace(
        "eval: [fd, mmd, mode_weights]",
        "eval: [fd, {kind: precision_recall, k: 5}]",
    );
    let message = resolve_error(&text, &["num_samples=4"]);
    assert!(message.contains("`eval[1].kind`"), "{message}");
    assert!(message.contains("at least 6 samples"), "{message}");
    assert!(message.contains("num_samples"), "{message}");
}

#[test]
fn experiment_file_problems_get_their_own_message() {
    let dir = tempfile::tempdir().unwrap();

    let folder = dir.path().join("folder.yaml");
    std::fs::create_dir(&folder).unwrap();
    write(&folder, "inner.yaml", SMALL_GMM);
    let message = file_error(&folder);
    assert!(message.contains("folder.yaml"), "{message}");
    assert!(
        message.contains("is a directory, not an experiment file"),
        "{message}"
    );
    assert!(
        message.contains("inner.yaml"),
        "suggests a file inside: {message}"
    );

    let empty = write(dir.path(), "empty.yaml", "  \n");
    let message = file_error(&empty);
    assert!(
        message.contains("empty.yaml") && message.contains("is empty"),
        "{message}"
    );

    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, b"seed: 1\n\x00\x01\x02garbage").unwrap();
    let message = file_error(&binary);
    assert!(message.contains("binary"), "{message}");

    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"seed: 1\nname: caf\xe9\n").unwrap();
    let message = file_error(&latin1);
    assert!(
        message.contains("latin1.yaml") && message.contains("not UTF-8"),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains("syntax"), "{message}");
}

#[cfg(unix)]
#[test]
fn special_files_and_links_get_their_own_message() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();

    let fifo = dir.path().join("pipe.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let message = file_error(&fifo);
        assert!(message.contains("pipe.yaml"), "{message}");
        assert!(message.contains("named pipe (FIFO)"), "{message}");
        assert!(!message.contains("not found"), "{message}");
    }

    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let message = file_error(&a);
    assert!(
        message.contains("a.yaml") && message.contains("symbolic link loop"),
        "{message}"
    );

    let dangling = dir.path().join("dangling.yaml");
    symlink(dir.path().join("gone.yaml"), &dangling).unwrap();
    let message = file_error(&dangling);
    assert!(
        message.contains("gone.yaml") && message.contains("does not exist"),
        "{message}"
    );

    let locked = write(dir.path(), "locked.yaml", SMALL_GMM);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: the check only applies where the permission really is denied.
    if std::fs::read(&locked).is_err() {
        let message = file_error(&locked);
        assert!(message.contains("locked.yaml"), "{message}");
        assert!(
            message.contains("cannot be read: permission denied"),
            "{message}"
        );
        assert!(!message.contains("syntax"), "{message}");
    }
}

#[test]
fn the_plan_counts_trials_models_and_work() {
    let trials = resolve(
        SMALL_GMM,
        &["sampler.eps=0.001,0.002", "train.steps=60,120"],
    )
    .unwrap();
    let plan = scorelab::trial::plan_summary(&trials);
    assert!(plan.contains("4 trial(s)"), "{plan}");
    assert!(plan.contains("2 model(s) to train"), "{plan}");
    // (60 + 120) steps, × 64 per batch.
    assert!(plan.contains("180 training steps"), "{plan}");
    assert!(plan.contains("11520 examples"), "{plan}");
    assert!(plan.contains("400 samples per trial"), "{plan}");
}

#[test]
fn out_of_range_numbers_are_printed_compactly() {
    for (setting, key, shown) in [
        ("train.lr=-1e308", "`train.lr`", "-1e308"),
        ("train.ema_decay=1e308", "`train.ema_decay`", "1e308"),
        (
            "network.sigma_data=-1e300",
            "`network.sigma_data`",
            "-1e300",
        ),
    ] {
        let message = resolve_error(SMALL_GMM, &[setting]);
        assert!(message.contains(key), "{setting}: {message}");
        assert!(message.contains(shown), "{setting}: {message}");
        assert!(message.len() < 400, "{setting}: compact: {message}");
    }
    use scorelab::config::number;
    assert_eq!(number(1e308), "1e308");
    assert_eq!(number(2.5e-7), "2.5e-7");
    assert_eq!(number(0.002), "0.002");
    assert_eq!(number(123456.0), "123456");
    assert_eq!(number(f64::NAN), "NaN");
    assert_eq!(number(f64::NEG_INFINITY), "-inf");
}
