//! Peak memory of sampling against the sample count (`--memory`): images.yaml's U-Net samples
//! 1 000 and 10 000 images in a child process each (`bench --memory-worker SAMPLES ROWS STEPS`), so
//! that each peak resident size is its own. With the default `eval_batch` the network sees a
//! chunk at a time and the peak should barely grow with the count; the run with every sample
//! in one chunk shows what it was before chunking.

use std::time::Instant;

use scorelab::evaluate::{evaluate, Around};
use scorelab::rng::Rng;

use crate::runs;
use crate::workloads::{print_result, trial};

/// One sampling run's figures.
struct Measured {
    seconds: f64,
    peak_mib: f64,
    nfe: u64,
}

/// Samples `samples` images with `rows` rows per network call (euler, `steps` steps, an
/// untrained U-Net: the cost does not depend on the weights) and prints one JSON line.
pub fn run_worker(samples: usize, rows: usize, steps: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let overrides = vec![
        format!("sampler={{kind: euler, steps: {steps}}}"),
        format!("num_samples={samples}"),
        format!("eval_batch={rows}"),
        "train.steps=1".into(),
        "device=cpu".into(),
    ];
    let trial = trial(dir.path(), true, &overrides)?;
    let model = trial
        .new_model(&mut Rng::from_seed(0))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let evaluation =
        evaluate(&trial, &model, &Around::default(), &mut |_| {}).map_err(|e| e.to_string())?;
    print_result(serde_json::json!({
        "seconds": start.elapsed().as_secs_f64(),
        "nfe": evaluation.nfe,
    }));
    Ok(())
}

fn measure(samples: usize, rows: usize, steps: usize) -> Result<Measured, String> {
    let args = [samples, rows, steps].map(|n| n.to_string());
    let what = format!("the memory worker for {samples} samples");
    let value = runs::child(runs::ours("--memory-worker", &args), &what, 1)?;
    let number = |key: &str| value[key].as_f64().ok_or(format!("no `{key}` in {value}"));
    Ok(Measured {
        seconds: number("seconds")?,
        peak_mib: number("peak_rss_mib")?,
        nfe: number("nfe")? as u64,
    })
}

/// The table: `counts` samples at `rows` rows per call, and the smallest count in one chunk.
pub fn run(counts: &[usize], rows: usize, steps: usize) -> Result<(), String> {
    println!(
        "\n| sampling memory, unet 1x16x16, euler | samples | eval_batch | NFE | seconds | \
         peak MiB | peak / first row's |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut runs: Vec<(usize, usize)> = counts.iter().map(|&n| (n, rows)).collect();
    if let Some(&smallest) = counts.iter().min() {
        runs.push((smallest, smallest));
    }
    let mut first = None;
    for (samples, rows) in runs {
        eprintln!("sampling {samples} images, {rows} rows per call");
        let m = measure(samples, rows, steps)?;
        let base = *first.get_or_insert(m.peak_mib);
        println!(
            "| | {samples} | {rows} | {} | {:.1} | {:.0} | {:.2}x |",
            m.nfe,
            m.seconds,
            m.peak_mib,
            m.peak_mib / base
        );
    }
    Ok(())
}
