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
