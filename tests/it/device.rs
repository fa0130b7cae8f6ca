//! The `device` setting and `--device`: `auto` falls back to the CPU with the ids of a `cpu`
//! run, `cuda` without the feature names how to build it, bad names get a fix; and the GPU
//! check script's CPU side runs.

use std::process::Command;

use crate::common::{resolve, resolve_error, runner, write, SMALL_GMM};

/// SMALL_GMM with `device` set (quoted: `cuda:` alone is YAML syntax).
fn with_device(device: &str) -> String {
    format!("device: '{device}'\n{SMALL_GMM}")
}

#[test]
fn auto_resolves_to_the_cpu_with_the_ids_of_a_cpu_run() {
    if scorelab::device::cuda_built() {
        return; // a cuda build on a GPU machine may rightly choose the GPU
    }
    let auto = resolve(&with_device("auto"), &[]).unwrap();
    let cpu = resolve(&with_device("cpu"), &[]).unwrap();
    let default = resolve(SMALL_GMM, &[]).unwrap();
    assert!(auto[0].device.is_cpu());
    assert_eq!(auto[0].resolved["device"], "cpu");
    assert_eq!(
        default[0].resolved["device"], "cpu",
        "the default stays cpu"
    );
    assert_eq!(auto[0].id, cpu[0].id);
    assert_eq!(auto[0].train_id, cpu[0].train_id);
    assert_eq!(default[0].id, cpu[0].id);
}

#[test]
fn cuda_without_the_feature_says_how_to_build_it() {
    if scorelab::device::cuda_built() {
        return;
    }
    for device in ["cuda", "cuda:1"] {
        let message = resolve_error(&with_device(device), &[]);
        assert!(message.contains("exp.yaml"), "{message}");
        assert!(message.contains("`device`"), "{message}");
        assert!(message.contains("built without CUDA support"), "{message}");
        assert!(
            message.contains("scripts/cuda-toolchain.sh cargo build --release --features cuda"),
            "{message}"
        );
        assert!(message.contains("`device: cpu`"), "{message}");
    }
}

#[test]
fn bad_device_names_get_a_fix() {
    let message = resolve_error(&with_device("gpu"), &[]);
    assert!(message.contains("unknown device `gpu`"), "{message}");
    assert!(message.contains("did you mean `cuda`?"), "{message}");
    let message = resolve_error(&with_device("Cpu"), &[]);
    assert!(message.contains("did you mean `cpu`?"), "{message}");
    let message = resolve_error(&with_device("metal"), &[]);
    assert!(
        message.contains("use one of `auto`, `cpu`, `cuda` or `cuda:N`"),
        "{message}"
    );
    for bad in ["cuda:x", "cuda:-1", "cuda:"] {
        let message = resolve_error(&with_device(bad), &[]);
        assert!(
            message.contains(&format!("`{bad}` has no valid GPU number")),
            "{message}"
        );
        assert!(message.contains("`cuda:0`"), "{message}");
    }
    // From an override, the error says so.
    let message = resolve_error(SMALL_GMM, &["device=tpu"]);
    assert!(message.contains("command-line override"), "{message}");
    assert!(message.contains("unknown device `tpu`"), "{message}");
}

#[test]
fn the_device_flag_is_the_device_override_and_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", &with_device("cpu"));
    let file = file.to_str().unwrap();

    let (code, plain, stderr) = runner(&["sweep", file, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(plain.contains("device: cpu"), "{plain}");

    if !scorelab::device::cuda_built() {
        // `auto` here is the CPU: same trials, same ids, and a line says what it chose.
        let (code, auto, stderr) = runner(&["sweep", file, "--dry-run", "--device", "auto"]);
        assert_eq!(code, 0, "{stderr}");
        // The memory line names the memory available now, which moves between runs.
        let steady = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with("memory: "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(steady(&auto), steady(&plain));
        assert_eq!(
            stderr.matches("device: auto chose cpu").count(),
            1,
            "said once: {stderr}"
        );
        assert!(stderr.contains("without the cuda feature"), "{stderr}");

        let (code, _, stderr) = runner(&["sweep", file, "--dry-run", "--device", "cuda"]);
        assert_eq!(code, 1);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("command-line override"), "{stderr}");
        assert!(stderr.contains("--features cuda"), "{stderr}");
    }

    // The flag wins over an override of the same key.
    let (code, _, stderr) = runner(&["sweep", file, "device=gpu", "--dry-run", "--device", "cpu"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = runner(&["sweep", file, "device=cpu", "--dry-run", "--device", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown device `nope`"), "{stderr}");
}

/// The CPU side of scripts/gpu-check.sh at small sizes: both sweeps, the loss comparison
/// (two CPU runs agree exactly) and the throughput table.
#[test]
fn the_gpu_check_script_runs_its_cpu_side() {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_runner"))
        .parent()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(format!("{root}/scripts/gpu-check.sh"))
        .args(["--cpu-only", "--bin"])
        .arg(bin)
        .arg("--out")
        .arg(out.path())
        .args([
            "--train-steps",
            "8",
            "--bench-steps",
            "20",
            "--image-steps",
            "1",
        ])
        .args(["--samples", "100", "--image-samples", "2"])
        .output()
        .expect("run scripts/gpu-check.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("--cpu-only: running the CPU side only"),
        "{stdout}"
    );
    assert!(stdout.contains("step 5:"), "{stdout}");
    assert!(
        stdout.contains("OK largest relative difference 0.00e+00"),
        "{stdout}"
    );
    for row in [
        "MLP training (steps/s)",
        "MLP sampling (points/s)",
        "U-Net training (steps/s)",
        "U-Net sampling (images/s)",
    ] {
        let line = stdout.lines().find(|l| l.contains(row)).unwrap_or_else(|| {
            panic!("no `{row}` row:\n{stdout}");
        });
        let value: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
    assert!(
        stdout.contains(
            "the cuda side, the GPU/CPU loss comparison and the peak GPU memory were not run"
        ),
        "{stdout}"
    );
    // PyTorch's column where a torch is found (the bench's virtualenv), else said to be
    // skipped.
    match stdout.contains("the U-Net against PyTorch eager on cpu") {
        true => assert!(stdout.contains("U-Net ms per NFE (2)"), "{stdout}"),
        false => assert!(
            stdout.contains("the PyTorch column was not run"),
            "{stdout}"
        ),
    }
}
