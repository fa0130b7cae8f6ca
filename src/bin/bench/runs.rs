//! One timed training run in a child process, ours (this binary with `--worker`) or PyTorch's
//! (`benches/reference.py` in the virtualenv of `benches/torch-venv.sh`), both on one thread,
//! each reporting one JSON line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workloads::Workload;

/// What a run reports.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub steps_per_second: f64,
    pub peak_mib: f64,
    pub parameters: u64,
}

/// The repository root (where `benches/` is).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The python of the reference's virtualenv, installing it on first use.
pub fn reference_python() -> Result<PathBuf, String> {
    reference_script_python("benches/torch-venv.sh")
}

/// The python a locating script (`benches/torch-venv.sh`, `benches/scipy-python.sh`) prints
/// last, after making its environment where needed.
pub fn reference_script_python(script: &str) -> Result<PathBuf, String> {
    let script = root().join(script);
    let output = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}); see its messages above. Fix: check that PyPI is reachable and \
             python3 has the venv module (Debian: apt-get install python3-venv), or run \
             without --pytorch",
            script.display(),
            output.status
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let python = text.lines().last().unwrap_or("").trim();
    Ok(PathBuf::from(python))
}

/// Runs `command` with one compute thread and reads the JSON line it ends with.
fn run(mut command: Command, what: &str) -> Result<Run, String> {
    let output = command
        .env("RAYON_NUM_THREADS", "1")
        .env("OMP_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1")
        .output()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = stdout.lines().last().unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("{what} printed `{line}`, not its JSON result: {e}"))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("{what}'s result has no number `{key}`: {line}"))
    };
    Ok(Run {
        steps_per_second: number("steps_per_second")?,
        peak_mib: number("peak_rss_mib")?,
        parameters: number("parameters")? as u64,
    })
}

/// Our training run of `workload` for `steps` steps.
pub fn ours(workload: &Workload, steps: usize) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["--worker", workload.name, &steps.to_string()]);
    run(command, &format!("our {} run", workload.name))
}

/// PyTorch's training run of `workload` for `steps` steps.
pub fn pytorch(python: &Path, workload: &Workload, steps: usize) -> Result<Run, String> {
    let mut command = Command::new(python);
    command
        .arg(root().join("benches/reference.py"))
        .args(workload.reference)
        .args(["--steps", &steps.to_string(), "--threads", "1"]);
    run(command, &format!("the PyTorch {} run", workload.name))
}
