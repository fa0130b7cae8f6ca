//! What resolving a sweep costs before anything trains: drawing each distinct data config and
//! computing `sigma_max: auto` (the largest pairwise distance of the training set), for 10k
//! and 100k 2D points, 10k images, and every shipped experiment as it is.

use std::path::Path;

use scorelab::sweep::Experiment;
use scorelab::trial::resolve_with_stats;

/// The sized cases: (what, experiment file, overrides).
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "quickstart, 10k 2D points",
        "quickstart.yaml",
        &["train.train_size=10000"],
    ),
    (
        "quickstart, 100k 2D points",
        "quickstart.yaml",
        &["train.train_size=100000"],
    ),
    (
        "images, 10k 16x16 images, sigma_max: auto",
        "images.yaml",
        &["train.train_size=10000", "schedule=geometric"],
    ),
];

/// One row per case and per shipped experiment, printed as it is measured.
pub fn run() -> Result<(), String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut shipped: Vec<_> = std::fs::read_dir(&folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    shipped.sort();
    let mut cases: Vec<(String, std::path::PathBuf, Vec<String>)> = CASES
        .iter()
        .map(|(what, file, overrides)| {
            let overrides = overrides.iter().map(|o| o.to_string()).collect();
            (what.to_string(), folder.join(file), overrides)
        })
        .collect();
    cases.extend(shipped.into_iter().map(|path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        (format!("experiments/{name} as shipped"), path, Vec::new())
    }));
    println!("\n| resolution | trials | data draws | sigma_max: auto computed | seconds |");
    println!("|---|---:|---:|---:|---:|");
    for (what, path, overrides) in cases {
        let experiment = Experiment::load(&path, &overrides).map_err(|e| e.to_string())?;
        let (_, stats) = resolve_with_stats(&experiment).map_err(|e| e.to_string())?;
        println!(
            "| {what} | {} | {} | {} | {:.3} |",
            stats.trials,
            stats.data_draws,
            stats.distances,
            stats.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
