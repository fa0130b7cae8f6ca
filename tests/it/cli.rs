//! The `runner` binary itself: exit codes and the one-paragraph error on stderr.

use crate::common::runner;

#[test]
fn bad_input_exits_non_zero_with_one_error_line() {
    let (code, _, stderr) = runner(&["sweep", "no/such/experiment.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: no/such/experiment.yaml: experiment file not found"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    let (code, _, stderr) = runner(&["plugins", "samplr"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown plugin kind `samplr`"), "{stderr}");
}

#[test]
fn plugins_lists_every_plugin_of_a_kind_with_defaults() {
    let (code, stdout, _) = runner(&["plugins", "metric"]);
    assert_eq!(code, 0);
    for name in [
        "fd",
        "mmd",
        "sliced_wasserstein",
        "nll_true",
        "mode_weights",
        "projections",
        "max_points",
    ] {
        assert!(stdout.contains(name), "{name} missing:\n{stdout}");
    }
    assert!(
        !stdout.contains("annealed_langevin"),
        "only the kind asked for"
    );
    // The keys users write in experiment files name the same kinds.
    for (key, kind) in [
        ("eval", "metric"),
        ("data", "dataset"),
        ("samplers", "sampler"),
    ] {
        let (code, by_key, stderr) = runner(&["plugins", key]);
        assert_eq!(code, 0, "{stderr}");
        let (_, by_kind, _) = runner(&["plugins", kind]);
        assert_eq!(by_key, by_kind, "`runner plugins {key}`");
    }
}

#[test]
fn dry_run_of_the_shipped_experiments_resolves_every_trial() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (code, stdout, stderr) = runner(&[
        "sweep",
        &format!("{root}/experiments/noise_scales.yaml"),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("18 trial(s)"), "{stdout}");
    let (code, stdout, stderr) = runner(&[
        "sweep",
        &format!("{root}/experiments/quickstart.yaml"),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 trial(s)"), "{stdout}");
}

#[test]
fn a_non_utf8_override_names_the_file() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "small.yaml", crate::common::SMALL_GMM);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("sweep")
        .arg(&file)
        .arg(std::ffi::OsString::from_vec(b"seed=\xff\xfe".to_vec()))
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("small.yaml") && stderr.contains("not UTF-8") && stderr.contains("Fix:"),
        "{stderr}"
    );
    assert!(!dir.path().join("results").exists());
}

/// Off a terminal (here stderr is a pipe) training and sampling print plain progress lines,
/// at least the one that says how each ended; `--progress none` prints none.
#[test]
fn progress_off_a_terminal_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "small.yaml", crate::common::SMALL_GMM);
    let file = file.to_str().unwrap();
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    // Two trials sharing one model: the model is trained for trial 1, then each is sampled.
    let (code, _, err) = crate::common::runner(&[
        "sweep",
        file,
        "sampler.eps=0.002,0.003",
        "--results",
        results,
    ]);
    assert_eq!(code, 0, "{err}");
    // The line each ends with (a slow machine may print more on the way).
    let ends = |verb: &str| -> Vec<&str> {
        let verb = format!(" {verb} ");
        err.lines()
            .filter(|l| l.contains(&verb) && l.contains(" done in "))
            .collect()
    };
    let train = ends("train");
    assert_eq!(train.len(), 1, "{err}");
    assert!(
        train[0].starts_with("[1/2] train mlp-") && train[0].contains(" step 60/60 loss "),
        "{}",
        train[0]
    );
    let sample = ends("sample");
    assert_eq!(sample.len(), 2, "{err}");
    assert!(sample[0].starts_with("[1/2] sample "), "{}", sample[0]);
    assert!(sample[1].starts_with("[2/2] sample "), "{}", sample[1]);
    let quiet = dir.path().join("quiet");
    let quiet = quiet.to_str().unwrap();
    let (code, _, err) =
        crate::common::runner(&["sweep", file, "--results", quiet, "--progress", "none"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("done in"), "{err}");
}
