//! The Slurm launcher against a real Slurm (`scripts/slurm-local.sh up`, which `.ci/run`
//! starts): a small 2D sweep of three training groups with one trial made to fail and one
//! task cancelled, a resubmission that runs only the unfinished trials, and tables equal to
//! the local launcher's. Without Slurm the test says why and is skipped (unless
//! SCORELAB_REQUIRE_SLURM is set, as `.ci/run` sets it); the checks that need no Slurm
//! (options, the `launcher:` section, dry runs, missing plans) always run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use scorelab::run::launch::launcher_settings;
use scorelab::sweep::Experiment;

use crate::common::{runner, write};

/// Three training groups (train.lr), two trials each; trial 5 (lr 0.002 with Langevin's
/// eps = 0.05 for 100 steps per level) diverges, so it fails at sampling (at 2 steps per
/// level the same eps stays within the runaway bound; the models are trained enough that
/// eps = 0.002 does too).
const SWEEP: &str = r#"
seed: 3
num_samples: 100
data: {kind: gmm, means: [[-5.0, -5.0], [5.0, 5.0]], stds: [1.0, 1.0], weights: [0.8, 0.2]}
schedule: {kind: geometric, num_levels: 5, sigma_max: auto, sigma_min: 0.1}
weighting: {kind: sigma_squared}
network: {kind: mlp, hidden: 32, layers: 2, embedding: 8}
train: {steps: 300, batch_size: 32, train_size: 200, log_every: 10}
sampler: {kind: annealed_langevin, steps_per_level: 2, eps: 0.002}
eval: [fd, mode_weights]
sweep:
  zip:
    train.lr: [0.001, 0.002, 0.003]
    sampler.eps: [0.002, 0.05, 0.002]
  sampler.steps_per_level: [2, 100]
"#;

/// The Slurm configuration to use: `SLURM_CONF`, or the one `scripts/slurm-local.sh up`
/// writes; `Err` says why Slurm is not available.
fn slurm_conf() -> Result<Option<PathBuf>, String> {
    let conf = match std::env::var_os("SLURM_CONF") {
        Some(conf) => Some(PathBuf::from(conf)),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            let local = Path::new(&home).join(".cache/scorelab-slurm/slurm.conf");
            local.is_file().then_some(local)
        }
    };
    let mut sinfo = Command::new("sinfo");
    sinfo.args(["--noheader", "--format=%T"]);
    if let Some(conf) = &conf {
        sinfo.env("SLURM_CONF", conf);
    }
    let output = sinfo
        .output()
        .map_err(|e| format!("`sinfo` cannot run ({e}): Slurm is not installed"))?;
    let states = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || states.trim().is_empty() {
        return Err(format!(
            "`sinfo` answers no node ({}): no Slurm controller is running",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(conf)
}

/// A command with the Slurm configuration in its environment.
fn command(program: &str, conf: &Option<PathBuf>) -> Command {
    let mut command = Command::new(program);
    if let Some(conf) = conf {
        command.env("SLURM_CONF", conf);
    }
    command
}

fn run(conf: &Option<PathBuf>, args: &[&str]) -> (i32, String, String) {
    let output = command(env!("CARGO_BIN_EXE_runner"), conf)
        .args(args)
        .output()
        .expect("run runner");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The table without its timing columns (which differ from run to run) and its invocation
/// column (which says how many sweeps it took to fill the folder).
fn timeless(csv: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines().map(fields);
    let header = lines.next().unwrap();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("_seconds") && header[i] != "invocation")
        .collect();
    std::iter::once(header)
        .chain(lines)
        .map(|row| keep.iter().map(|&i| row[i].clone()).collect())
        .collect()
}

/// The fields of one CSV line (quoted fields may hold commas; `""` is a quote).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Every finished file the rerun must leave alone, with its modification time.
fn finished_files(root: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut files = BTreeMap::new();
    for sub in ["trials", "models"] {
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let dir = entry.unwrap().path();
            for name in ["metrics.json", "model.safetensors"] {
                let path = dir.join(name);
                let failed = std::fs::read_to_string(&path)
                    .is_ok_and(|t| t.contains("\"status\": \"failed\""));
                if path.is_file() && !failed {
                    files.insert(path.clone(), modified(&path));
                }
            }
        }
    }
    files
}

#[test]
fn a_slurm_sweep_reports_failures_and_cancellations_resubmits_only_unfinished_trials_and_matches_local(
) {
    let conf = match slurm_conf() {
        Ok(conf) => conf,
        Err(why) if std::env::var_os("SCORELAB_REQUIRE_SLURM").is_some() => {
            panic!("SCORELAB_REQUIRE_SLURM is set (by .ci/run), but {why}")
        }
        Err(why) => {
            println!(
                "skipped: {why}. Start a one-node Slurm with `eval \"$(scripts/slurm-local.sh up)\"`"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "grid.yaml", SWEEP);
    let file = file.to_str().unwrap();
    let results = dir.path().join("slurm");
    let root = results.join("grid");
    let sweep_args = [
        "sweep",
        file,
        "--results",
        results.to_str().unwrap(),
        "--launcher",
        "slurm",
        "--array-parallelism",
        "1",
        "--poll-seconds",
        "0.5",
    ];

    // First submission: the last group's task is cancelled while it waits its turn.
    let mut child = command(env!("CARGO_BIN_EXE_runner"), &conf)
        .args(sweep_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("submitted Slurm job ") {
            let job = rest.split(':').next().unwrap();
            let status = command("scancel", &conf)
                .arg(format!("{job}_2"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let output = lines.join("\n");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(2), "{output}\n{stderr}");
    assert!(output.contains("submitted Slurm job"), "{output}");
    assert!(
        output.contains("3 task(s), one per training group, for 6 trial(s) (array 0-2)"),
        "{output}"
    );
    // Live: the failure is printed as it happens, before the summary table.
    let failure = output
        .find("[5/6] steps_per_level=100,eps=0.05,lr=0.002: FAILED: sampler `annealed_langevin` diverged")
        .unwrap_or_else(|| panic!("{output}"));
    assert!(failure < output.find("\ntrial ").unwrap(), "{output}");
    assert!(output.contains("slurm: 6 trial(s): "), "{output}");
    // The cancelled task's two trials: failed, with Slurm's word for it.
    for trial in [
        "[3/6] steps_per_level=2,eps=0.002,lr=0.003",
        "[6/6] steps_per_level=100,eps=0.002,lr=0.003",
    ] {
        let line = output
            .lines()
            .find(|l| l.starts_with(trial))
            .unwrap_or_else(|| panic!("{trial}: {output}"));
        assert!(line.contains("FAILED: the Slurm task"), "{line}");
        assert!(line.contains("_2 ended"), "{line}");
        assert!(
            line.contains("squeue no longer lists it (cancelled while queued"),
            "{line}"
        );
    }
    assert!(
        output.contains("0 queued, 0 running, 3 done, 3 failed"),
        "{output}"
    );
    assert!(root.join("slurm/status/0.json").is_file());
    assert!(!root.join("slurm/status/2.json").exists());

    let (code, stdout, stderr) = run(&conf, &["status", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("6 trial(s): 0 queued, 0 running, 3 done, 3 failed"),
        "{stdout}"
    );

    // The rerun submits the two groups with unfinished trials, and touches nothing finished.
    let before = finished_files(&root);
    assert_eq!(
        before.len(),
        3 + 2,
        "three finished trials, two trained models: {before:?}"
    );
    let (code, stdout, stderr) = run(&conf, &sweep_args);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 task(s), one per training group, for 4 trial(s) (array 1-2)"),
        "{stdout}"
    );
    for skipped in ["[1/6]", "[2/6]", "[4/6]"] {
        assert!(
            stdout.contains(&format!("{skipped} "))
                && stdout
                    .lines()
                    .any(|l| l.starts_with(skipped) && l.ends_with("finished earlier, skipped")),
            "{skipped}: {stdout}"
        );
    }
    for (path, time) in &before {
        assert_eq!(modified(path), *time, "{} was rewritten", path.display());
    }
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("slurm/jobs.json")).unwrap())
            .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[1]["groups"], serde_json::json!([1, 2]));
    assert!(
        stdout.contains("0 queued, 0 running, 5 done, 1 failed"),
        "{stdout}"
    );

    // The local launcher on the same sweep: the same tables.
    let local = dir.path().join("local");
    let (code, _, stderr) = runner(&["sweep", file, "--results", local.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        timeless(&root.join("metrics.csv")),
        timeless(&local.join("grid/metrics.csv"))
    );
    assert_eq!(
        std::fs::read_to_string(root.join("protocols.csv")).unwrap(),
        std::fs::read_to_string(local.join("grid/protocols.csv")).unwrap()
    );
    assert_eq!(timeless(&root.join("metrics.csv")).len(), 7);

    // collect rebuilds the same tables from the folder.
    std::fs::remove_file(root.join("metrics.csv")).unwrap();
    let (code, stdout, stderr) = run(&conf, &["collect", root.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert_eq!(
        timeless(&root.join("metrics.csv")),
        timeless(&local.join("grid/metrics.csv"))
    );
}

#[test]
fn slurm_options_without_the_slurm_launcher_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "grid.yaml", SWEEP);
    let (code, _, stderr) = runner(&[
        "sweep",
        file.to_str().unwrap(),
        "--partition",
        "gpu",
        "--no-wait",
        "--dry-run",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--partition, --no-wait apply to `--launcher slurm` only"),
        "{stderr}"
    );
    assert!(stderr.contains("Fix: add `--launcher slurm`"), "{stderr}");
    let (code, _, stderr) = runner(&["sweep", file.to_str().unwrap(), "--launcher", "pbs"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown launcher `pbs`") && stderr.contains("`local` or `slurm`"),
        "{stderr}"
    );
}

#[test]
fn a_slurm_dry_run_shows_the_array_it_would_submit() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "grid.yaml", SWEEP);
    let results = dir.path().join("out");
    let (code, stdout, stderr) = runner(&[
        "sweep",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--launcher",
        "slurm",
        "--dry-run",
        "--partition",
        "short",
        "--time",
        "0:10:00",
        "--array-parallelism",
        "2",
        "--sbatch-arg=--qos=test",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("would submit one Slurm job array of 3 task(s)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    for arg in [
        "--array=0-2%2",
        "--cpus-per-task=1",
        "--partition=short",
        "--time=0:10:00",
        "--qos=test",
        "--job-name=scorelab-grid",
        "--signal=B:INT@120",
    ] {
        assert!(line.contains(arg), "{arg}: {line}");
    }
    assert!(!results.exists(), "a dry run writes nothing");
}

#[test]
fn the_launcher_section_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |text: &str| {
        let file = write(dir.path(), "exp.yaml", &format!("{SWEEP}{text}"));
        let experiment = Experiment::load(&file, &[]).map_err(|e| e.to_string())?;
        launcher_settings(&experiment).map_err(|e| e.to_string())
    };
    let read = settings(
        "launcher: {kind: slurm, partition: gpu, time: '1:00:00', array_parallelism: 4, \
         sbatch_args: [--qos=short]}\n",
    )
    .unwrap();
    assert_eq!(read.kind, "slurm");
    assert_eq!(read.partition, "gpu");
    assert_eq!(read.time, "1:00:00");
    assert_eq!(read.array_parallelism, 4);
    assert_eq!(read.sbatch_args, vec!["--qos=short".to_string()]);
    assert_eq!(settings("launcher: slurm\n").unwrap().kind, "slurm");
    // The section is accepted by resolution and is part of no trial's identity.
    let ids = |text: &str| -> Vec<String> {
        let file = write(dir.path(), "ids.yaml", &format!("{SWEEP}{text}"));
        let experiment = Experiment::load(&file, &[]).unwrap();
        let trials = scorelab::trial::resolve_all(&experiment).unwrap();
        trials.into_iter().map(|t| t.id).collect()
    };
    assert_eq!(ids("launcher: {kind: slurm, partition: gpu}\n"), ids(""));
    assert_eq!(settings("").unwrap().kind, "local");
    assert_eq!(settings("").unwrap().poll_seconds, 10.0);

    let e = settings("launcher: {kind: slurm, partiton: gpu}\n").unwrap_err();
    assert!(
        e.contains("exp.yaml") && e.contains("launcher.partiton"),
        "{e}"
    );
    assert!(e.contains("did you mean `partition`"), "{e}");
    let e = settings("launcher: {kind: pbs}\n").unwrap_err();
    assert!(
        e.contains("launcher.kind") && e.contains("`local` or `slurm`"),
        "{e}"
    );
    let e = settings("launcher: {poll_seconds: 0}\n").unwrap_err();
    assert!(
        e.contains("launcher.poll_seconds") && e.contains("(0, 3600]"),
        "{e}"
    );
    let e = settings("launcher: {cpus_per_task: many}\n").unwrap_err();
    assert!(e.contains("launcher.cpus_per_task"), "{e}");
}

#[test]
fn task_status_and_collect_name_a_folder_without_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    for args in [
        vec!["trial", folder, "0"],
        vec!["status", folder],
        vec!["collect", folder],
    ] {
        let (code, _, stderr) = runner(&args);
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains("has no Slurm plan"), "{stderr}");
        assert!(stderr.contains("slurm/plan.json is missing"), "{stderr}");
    }
    let (_, _, stderr) = runner(&["trial", folder, "0"]);
    assert!(
        stderr.contains("on host ") && stderr.contains("shared"),
        "{stderr}"
    );
}
