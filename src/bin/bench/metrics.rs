//! What the feature metrics cost as the sets grow (`--metrics`): FID, KID (100 subsets of
//! min(1000, n/2), as the plugin draws them) and precision/recall (k = 3, every point: no
//! `max_points` cap) on n synthetic 2048-dimensional features per set, each run in a child
//! process on `--metric-threads` threads (default: every core) for its time and peak resident
//! memory. With `--pytorch`, `benches/metrics_reference.py` (NumPy/SciPy: pytorch-fid's
//! formula with `scipy.linalg.sqrtm`, clean-fid's KID) runs on the same features and threads
//! right after ours. Growth exponents: log(t2 / t1) / log(n2 / n1) between successive sizes.
//! `--fid-before` also times the nalgebra square roots FID used before faer (~20 s).
//!
//! Options: `--metric-sizes 1000,10000` (add 50000 for the README's table; its
//! precision/recall takes many minutes on two cores), `--metric-dim 2048`,
//! `--metric-list fid,kid,pr`, `--metric-threads`, `--rounds 2` (A/B rounds, best kept).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use scorelab::dataset::Samples;
use scorelab::metric::frechet::{frechet_distance, frechet_distance_nalgebra, mean_and_covariance};
use scorelab::plugins::metrics::kid::kernel_distance;
use scorelab::plugins::metrics::precision_recall::precision_recall;
use scorelab::rng::Rng;

use crate::workloads::peak_memory_mib;

/// One metric run's report (ours or the reference's).
#[derive(Clone, Copy, Debug)]
struct Cost {
    seconds: f64,
    peak_mib: f64,
    value: f64,
    /// Recall for `pr`, the spread over subsets for `kid`.
    detail: f64,
}

impl Cost {
    /// The value as the table shows it (precision / recall for `pr`).
    fn shown(&self, metric: &str) -> String {
        if metric == "pr" {
            format!("{:.4} / {:.4}", self.value, self.detail)
        } else {
            format!("{:.6}", self.value)
        }
    }
}

/// KID's subset size at `n` points per set, as the `kid` plugin caps it.
fn kid_subset_size(n: usize) -> usize {
    1000.min(n / 2).max(2)
}

/// The first `n` points of a feature file the parent wrote.
fn read_features(path: &Path, n: usize, dim: usize) -> Result<Samples, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file.take(8 * (n * dim) as u64));
    // A chunk at a time, so that loading never holds the set twice (the peak is the metric's).
    let mut values = Vec::with_capacity(n * dim);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let read = reader
            .read(&mut chunk)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        // Chunk sizes are multiples of 8 except perhaps at a short read: keep reading to one.
        let mut filled = read;
        while filled % 8 != 0 {
            let more = reader
                .read(&mut chunk[filled..])
                .map_err(|e| e.to_string())?;
            if more == 0 {
                return Err(format!("{} ends inside a number", path.display()));
            }
            filled += more;
        }
        values.extend(
            chunk[..filled]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
    }
    if values.len() != n * dim {
        return Err(format!("{} holds fewer than {n} points", path.display()));
    }
    Ok(Samples::new(dim, values))
}

/// `--metrics-worker METRIC DIR N DIM`: computes one metric on the first n features of
/// DIR/x.f64 and DIR/y.f64 and prints one JSON line like the reference's.
pub fn run_worker(args: &[String]) -> Result<(), String> {
    let [metric, dir, n, dim] = args else {
        return Err("--metrics-worker METRIC DIR N DIM".into());
    };
    let parse = |s: &str| s.parse::<usize>().map_err(|_| format!("not a count: {s}"));
    let (n, dim) = (parse(n)?, parse(dim)?);
    let dir = Path::new(dir);
    let x = read_features(&dir.join("x.f64"), n, dim)?;
    let y = read_features(&dir.join("y.f64"), n, dim)?;
    let start = Instant::now();
    let (mut extra, mut seconds) = (String::new(), None);
    let (value, detail) = match metric.as_str() {
        "fid" | "fid-before" => {
            let (mu1, c1) = mean_and_covariance(&x);
            let (mu2, c2) = mean_and_covariance(&y);
            let roots = Instant::now();
            let value = frechet_distance(&mu1, &c1, &mu2, &c2)?;
            extra = format!(r#", "roots_seconds": {}"#, roots.elapsed().as_secs_f64());
            if metric == "fid-before" {
                // Timed apart: the row's seconds are the new path's alone.
                seconds = Some(start.elapsed().as_secs_f64());
                let before = Instant::now();
                let old = frechet_distance_nalgebra(&mu1, &c1, &mu2, &c2);
                let before = before.elapsed().as_secs_f64();
                extra += &format!(r#", "nalgebra_seconds": {before}, "nalgebra_value": {old}"#);
            }
            (value, f64::NAN)
        }
        "kid" => {
            let kid = kernel_distance(&x, &y, 100, kid_subset_size(n), 0);
            (kid.mean, kid.std)
        }
        "pr" => precision_recall(&x, &y, 3),
        other => return Err(format!("no metric workload `{other}` (fid, kid, pr)")),
    };
    let seconds = seconds.unwrap_or(start.elapsed().as_secs_f64());
    let peak = peak_memory_mib().unwrap_or(f64::NAN);
    println!(
        r#"{{"seconds": {seconds}, "peak_rss_mib": {peak}, "value": {value}, "detail": {}{extra}}}"#,
        if detail.is_nan() {
            "null".to_string()
        } else {
            detail.to_string()
        }
    );
    Ok(())
}

/// Writes `n` points of each set: x ~ N(0, diag(s²)) with s from 0.5 to 1.5 over the
/// dimensions, y the same shifted by 0.1 in every coordinate (FID about 20).
fn write_features(dir: &Path, n: usize, dim: usize) -> Result<(), String> {
    let mut rng = Rng::from_seed(26);
    let scale = |j: usize| 0.5 + j as f64 / dim as f64;
    for (name, shift) in [("x.f64", 0.0), ("y.f64", 0.1)] {
        let file = std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())?;
        let mut out = std::io::BufWriter::new(file);
        for _ in 0..n {
            for j in 0..dim {
                let v = shift + scale(j) * rng.normal();
                out.write_all(&v.to_le_bytes()).map_err(|e| e.to_string())?;
            }
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs one worker (ours or the reference's) on `threads` threads and reads its JSON line.
fn run(
    mut command: Command,
    threads: usize,
    what: &str,
) -> Result<(Cost, serde_json::Value), String> {
    for var in [
        "RAYON_NUM_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    ] {
        command.env(var, threads.to_string());
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{what} failed ({}):\n{stdout}{stderr}",
            output.status
        ));
    }
    let line = stdout.lines().last().unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("{what} printed `{line}`, not its JSON result: {e}"))?;
    let number = |key: &str| {
        json[key]
            .as_f64()
            .ok_or(format!("{what}: no `{key}` in {line}"))
    };
    let cost = Cost {
        seconds: number("seconds")?,
        peak_mib: number("peak_rss_mib")?,
        value: number("value")?,
        detail: json["detail"].as_f64().unwrap_or(f64::NAN),
    };
    Ok((cost, json))
}

/// The options of the metrics table.
pub struct Options {
    pub sizes: Vec<usize>,
    pub dim: usize,
    pub metrics: Vec<String>,
    pub threads: usize,
    pub fid_before: bool,
    /// Runs of each, the best kept.
    pub rounds: usize,
    /// The NumPy/SciPy python, with `--pytorch`.
    pub python: Option<PathBuf>,
}

/// Times every metric at every size and prints the table, then the growth exponents.
pub fn run_all(options: &Options) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let largest = options.sizes.iter().copied().max().unwrap_or(0);
    eprintln!(
        "metrics: writing {largest} x {} features per set",
        options.dim
    );
    write_features(dir.path(), largest, options.dim)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "\n| metrics, {} dims, {} threads, best of {} | samples per set | ours s | ours peak MiB | NumPy/SciPy s | NumPy/SciPy peak MiB | ratio | ours value | NumPy/SciPy value |",
        options.dim, options.threads, options.rounds
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut growth = Vec::new();
    for metric in &options.metrics {
        let mut times = Vec::new();
        for &n in &options.sizes {
            eprintln!("metrics: {metric} at {n} points");
            let before = metric == "fid" && options.fid_before && n == options.sizes[0];
            let (mine, theirs) = measure(metric, n, before, &exe, dir.path(), options)?;
            println!("{}", row(metric, n, &mine, theirs.as_ref()));
            times.push(mine.seconds);
        }
        growth.push((metric.clone(), times));
    }
    for (metric, times) in growth {
        let exponents: Vec<String> = options
            .sizes
            .windows(2)
            .zip(times.windows(2))
            .map(|(n, t)| {
                let e = (t[1] / t[0]).ln() / (n[1] as f64 / n[0] as f64).ln();
                format!("{}→{}: {e:.2}", n[0], n[1])
            })
            .collect();
        println!(
            "{metric} growth exponent (time ∝ n^e): {}",
            exponents.join(", ")
        );
    }
    Ok(())
}

/// The best of `options.rounds` runs of ours and of the reference's (A/B/A/B: both see the
/// same machine load), the peaks the largest seen; `before` also times nalgebra's square
/// roots in the first round (printed).
fn measure(
    metric: &str,
    n: usize,
    before: bool,
    exe: &Path,
    dir: &Path,
    options: &Options,
) -> Result<(Cost, Option<Cost>), String> {
    let best = |a: Option<Cost>, b: Cost| match a {
        Some(a) if a.seconds <= b.seconds => Cost {
            peak_mib: a.peak_mib.max(b.peak_mib),
            ..a
        },
        Some(a) => Cost {
            peak_mib: a.peak_mib.max(b.peak_mib),
            ..b
        },
        None => b,
    };
    let (mut ours, mut theirs) = (None, None);
    for round in 0..options.rounds {
        let worker = if before && round == 0 {
            "fid-before"
        } else {
            metric
        };
        let mut command = Command::new(exe);
        command.arg("--metrics-worker").arg(worker).arg(dir);
        command.args([n.to_string(), options.dim.to_string()]);
        let (mine, json) = run(command, options.threads, &format!("our {metric} at {n}"))?;
        if let Some(old_seconds) = json["nalgebra_seconds"].as_f64() {
            let old = json["nalgebra_value"].as_f64().unwrap_or(f64::NAN);
            eprintln!(
                "FID square roots at {} dims, {n} points: faer {:.2} s, nalgebra {old_seconds:.2} s; values {} and {old} (relative difference {:.1e})",
                options.dim,
                json["roots_seconds"].as_f64().unwrap_or(f64::NAN),
                mine.value,
                ((mine.value - old) / old).abs()
            );
        }
        ours = Some(best(ours, mine));
        if let Some(python) = &options.python {
            theirs = Some(best(theirs, reference(python, metric, dir, n, options)?));
        }
    }
    Ok((ours.ok_or("no round")?, theirs))
}

/// The NumPy/SciPy run of `metric` on the first `n` features.
fn reference(
    python: &Path,
    metric: &str,
    dir: &Path,
    n: usize,
    options: &Options,
) -> Result<Cost, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/metrics_reference.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(metric)
        .arg(dir.join("x.f64"))
        .arg(dir.join("y.f64"))
        .args([
            "--points",
            &n.to_string(),
            "--dim",
            &options.dim.to_string(),
        ])
        .args(["--subset-size", &kid_subset_size(n).to_string()]);
    Ok(run(
        command,
        options.threads,
        &format!("the NumPy/SciPy {metric} at {n}"),
    )?
    .0)
}

/// One table row; the ratio is their time over ours (above 1: we are faster).
fn row(metric: &str, n: usize, ours: &Cost, theirs: Option<&Cost>) -> String {
    let (their_time, their_peak, ratio, their_value) = match theirs {
        Some(t) => (
            format!("{:.2}", t.seconds),
            format!("{:.0}", t.peak_mib),
            format!("{:.2}x", t.seconds / ours.seconds),
            t.shown(metric),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    format!(
        "| {metric} | {n} | {:.2} | {:.0} | {their_time} | {their_peak} | {ratio} | {} | {their_value} |",
        ours.seconds,
        ours.peak_mib,
        ours.shown(metric)
    )
}
