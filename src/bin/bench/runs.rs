//! Timed runs in child processes, ours (this binary with a worker flag) or PyTorch's
//! (`benches/reference.py` in the virtualenv of `benches/torch-venv.sh`), each on a given
//! number of compute threads and each reporting one JSON line; and how the rounds of two such
//! runs compare.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a run reports, as a rate (higher is better) whatever the table shows.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Steps, evaluations or images per second.
    pub rate: f64,
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

/// Runs `command` with `threads` compute threads (rayon's, and OpenMP's and MKL's for
/// PyTorch) and reads the JSON line it ends with.
pub fn child(
    mut command: Command,
    what: &str,
    threads: usize,
) -> Result<serde_json::Value, String> {
    let threads = threads.to_string();
    let output = command
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .env("MKL_NUM_THREADS", &threads)
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
    serde_json::from_str(line)
        .map_err(|e| format!("{what} printed `{line}`, not its JSON result: {e}"))
}

/// A run's rate from its JSON line: `key` itself, or 1000 / it for a `ms_per_…` key.
pub fn read(value: &serde_json::Value, key: &str, what: &str) -> Result<Run, String> {
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("{what}'s result has no number `{key}`: {value}"))
    };
    let figure = number(key)?;
    Ok(Run {
        rate: if key.starts_with("ms_per_") {
            1000.0 / figure
        } else {
            figure
        },
        peak_mib: number("peak_rss_mib")?,
        parameters: number("parameters")? as u64,
    })
}

/// This binary as a worker: `bench FLAG ARGS…`.
pub fn ours(flag: &str, args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("the bench binary's own path");
    let mut command = Command::new(exe);
    command.arg(flag).args(args);
    command
}

/// `benches/reference.py ARGS… --threads T` in the virtualenv's python.
pub fn pytorch(python: &Path, args: &[String], threads: usize) -> Command {
    let mut command = Command::new(python);
    command
        .arg(root().join("benches/reference.py"))
        .args(args)
        .args(["--threads", &threads.to_string()]);
    command
}

/// The best (fastest) run, its peak memory the largest seen.
fn best(runs: &[Run]) -> Option<Run> {
    let fastest = runs.iter().max_by(|a, b| a.rate.total_cmp(&b.rate))?;
    Some(Run {
        peak_mib: runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max),
        ..*fastest
    })
}

/// Our rounds beside PyTorch's (which may be none): the best of each, and the ratio ours /
/// PyTorch of the best and of each round (above 1: ours is faster).
pub struct Compared {
    pub ours: Run,
    pub theirs: Option<Run>,
    /// The lowest and highest per-round ratio, "0.95x–1.02x", or "-".
    pub spread: String,
}

impl Compared {
    /// Compares the rounds of `what`, which must have the same parameter count on both sides.
    pub fn new(what: &str, ours: &[Run], theirs: &[Run]) -> Result<Compared, String> {
        let mine = best(ours).ok_or("no run of ours")?;
        let Some(reference) = best(theirs) else {
            return Ok(Compared {
                ours: mine,
                theirs: None,
                spread: "-".into(),
            });
        };
        if reference.parameters != mine.parameters {
            return Err(format!(
                "the PyTorch {what} has {} parameters, ours {}: the networks differ \
                 (benches/reference.py must build the same layers)",
                reference.parameters, mine.parameters
            ));
        }
        let rounds: Vec<f64> = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| a.rate / b.rate)
            .collect();
        let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rounds.iter().copied().fold(0.0, f64::max);
        Ok(Compared {
            ours: mine,
            theirs: Some(reference),
            spread: format!("{low:.2}x–{high:.2}x"),
        })
    }

    /// "1.23x", or "-" without PyTorch's runs.
    pub fn ratio(&self) -> String {
        match self.theirs {
            Some(theirs) => format!("{:.2}x", self.ours.rate / theirs.rate),
            None => "-".into(),
        }
    }

    /// PyTorch's best rate as `show` writes it, or "-".
    pub fn theirs(&self, show: impl Fn(f64) -> String) -> String {
        self.theirs.map_or("-".into(), |t| show(t.rate))
    }
}

/// "1 thread", "2 threads".
pub fn threads_text(threads: usize) -> String {
    match threads {
        1 => "1 thread".into(),
        _ => format!("{threads} threads"),
    }
}

/// The thread counts of a table's title: "one thread", "2 threads", "1 and 2 threads".
pub fn threads_title(counts: &[usize]) -> String {
    match counts {
        [] | [1] => "one thread".into(),
        [only] => threads_text(*only),
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|t| t.to_string()).collect();
            format!("{} and {last} threads", first.join(", "))
        }
    }
}

/// A row's label, with its thread count where the table has several.
pub fn with_threads(label: &str, threads: usize, counts: &[usize]) -> String {
    match counts.len() {
        1 => label.to_string(),
        _ => format!("{label}, {}", threads_text(threads)),
    }
}
