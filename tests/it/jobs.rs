//! `--jobs N`: training groups run at once give the tables of one at a time.

use scorelab::run::{self, SweepOptions};

use crate::common::{runner, write, SMALL_GMM};

/// A trial's id, status and metrics (as bits).
type Row = (String, String, Vec<(String, u64)>);

/// Each trial's row in sweep order, the output, and the header of `metrics.csv`.
fn sweep_with_jobs(jobs: usize) -> (Vec<Row>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    // Four training groups (learning rates) of two trials each (samplers).
    let yaml = format!(
        "{SMALL_GMM}sweep:\n  train.lr: [0.001, 0.002, 0.003, 0.004]\n  sampler.steps_per_level: [2, 3]\n"
    );
    let file = write(dir.path(), "jobs.yaml", &yaml);
    let options = SweepOptions {
        results: dir.path().join("results"),
        dry_run: false,
        jobs,
        ..Default::default()
    };
    let mut out = Vec::new();
    let report = run::sweep(&file, &[], &options, &mut out).unwrap();
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let metrics = r
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect();
            (r.trial.clone(), r.status.clone(), metrics)
        })
        .collect();
    let table = std::fs::read_to_string(report.folder.root.join("metrics.csv")).unwrap();
    (
        rows,
        String::from_utf8(out).unwrap(),
        table.lines().next().unwrap().to_string(),
    )
}

#[test]
fn two_jobs_give_the_numbers_and_order_of_one() {
    let (one, _, header_one) = sweep_with_jobs(1);
    let (two, output, header_two) = sweep_with_jobs(2);
    assert_eq!(one.len(), 8);
    assert_eq!(one, two, "same trials, metrics bit for bit, in sweep order");
    assert_eq!(header_one, header_two);
    assert!(
        output.contains("running 2 training groups at once"),
        "{output}"
    );
    // Lines of concurrent groups interleave whole: every trial line is one line.
    let trial_lines: Vec<&str> = output.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(trial_lines.len(), 8, "{output}");
    assert!(trial_lines.iter().all(|l| l.contains("nfe=")), "{output}");
}

#[test]
fn jobs_are_refused_out_of_range_and_with_slurm() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let file = file.to_str().unwrap();
    let (code, _, stderr) = runner(&["sweep", file, "--jobs", "0", "--dry-run"]);
    assert_eq!(code, 2, "clap's usage error: {stderr}");
    assert!(stderr.contains("--jobs"), "{stderr}");
    let (code, _, stderr) = runner(&[
        "sweep",
        file,
        "--jobs",
        "2",
        "--launcher",
        "slurm",
        "--dry-run",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--jobs") && stderr.contains("--array-parallelism"),
        "{stderr}"
    );
}
