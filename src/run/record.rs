//! The sweep's record, `experiment.yaml`: where the latest invocation came from and what it
//! swept, every invocation of the folder, and every trial the folder's tables show with its
//! resolved config.

use super::history::Invocation;
use crate::results::combined::FolderTrial;
use crate::sweep::Experiment;
use crate::trial::Trial;

/// What ran the sweep: the tool's version and commit, the device, threads and build features.
fn environment(trial: &Trial) -> serde_json::Value {
    let mut features = Vec::new();
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    serde_json::json!({
        "scorelab": env!("CARGO_PKG_VERSION"),
        "commit": env!("SCORELAB_GIT_COMMIT"),
        "device": trial.device_name,
        "threads": trial.settings.threads,
        "build features": if features.is_empty() { "default".to_string() } else { features.join(", ") },
    })
}

/// The resolved experiment: where it came from, the sweep, the invocations, and every shown
/// trial's config.
pub(super) fn experiment_record(
    experiment: &Experiment,
    overrides: &[String],
    trials: &[Trial],
    shown: &[FolderTrial],
    invocations: &[Invocation],
) -> serde_json::Value {
    let sweep: serde_json::Map<String, serde_json::Value> = experiment
        .axes
        .iter()
        .flat_map(|axis| {
            axis.keys.iter().enumerate().map(move |(k, key)| {
                let values = axis
                    .values
                    .iter()
                    .map(|row| crate::config::to_json(&row[k]))
                    .collect();
                (key.clone(), serde_json::Value::Array(values))
            })
        })
        .collect();
    let zipped: Vec<Vec<String>> = experiment
        .axes
        .iter()
        .filter(|a| a.keys.len() > 1)
        .map(|a| a.keys.clone())
        .collect();
    serde_json::json!({
        "environment": environment(&trials[0]),
        "source": experiment.file.display().to_string(),
        "overrides": overrides,
        "sweep": sweep,
        "zipped": zipped,
        "invocations": invocations.iter().map(|i| serde_json::json!({
            "number": i.number,
            "time": i.time,
            "command_line": i.command_line,
            "file": i.file,
            "overrides": i.overrides,
            "launcher": i.launcher,
            "trials": i.trials.len(),
        })).collect::<Vec<_>>(),
        "trials": shown.iter().map(|t| serde_json::json!({
            "id": t.id,
            "label": t.label,
            "model": t.model,
            "invocation": t.invocation_text(),
            "config": t.config,
        })).collect::<Vec<_>>(),
    })
}
