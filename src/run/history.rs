//! The sweep folder's history. Every `runner sweep` into a folder is kept as
//! `invocations/NNNN.yaml`: when it ran, its command line, file and overrides, the launcher,
//! the scorelab version and commit, and the trials it asked for. `runner list` reads them
//! back: each sweep folder of a results folder, its invocations, and how many of each one's
//! trials are finished or failed now. The folder's tables cover the trials of every
//! invocation ([`folder_trials`]).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{write_error, RunError};
use crate::results::combined::FolderTrial;
use crate::results::store::write_yaml;
use crate::results::{SweepFolder, TrialRow};
use crate::trial::Trial;

/// One invocation of a sweep into a folder, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub number: usize,
    /// UTC, RFC 3339 to the second.
    pub time: String,
    pub command_line: Vec<String>,
    pub file: String,
    pub overrides: Vec<String>,
    pub launcher: String,
    pub scorelab: String,
    pub commit: String,
    /// The ids of the trials it asked for.
    pub trials: Vec<String>,
}

fn invocations_dir(root: &Path) -> PathBuf {
    root.join("invocations")
}

/// The invocations recorded in a sweep folder, oldest first; unreadable records are skipped.
pub fn invocations(root: &Path) -> Vec<Invocation> {
    let Ok(entries) = fs::read_dir(invocations_dir(root)) else {
        return Vec::new();
    };
    let mut found: Vec<Invocation> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".yaml"))
        .filter_map(|e| serde_yaml::from_str(&fs::read_to_string(e.path()).ok()?).ok())
        .collect();
    found.sort_by_key(|i| i.number);
    found
}

/// Records this invocation (called under the sweep's lock, so numbers never collide).
pub(super) fn record_invocation(
    folder: &SweepFolder,
    file: &Path,
    overrides: &[String],
    launcher: &str,
    trials: &[Trial],
) -> Result<Invocation, RunError> {
    let number = invocations(&folder.root)
        .last()
        .map_or(1, |last| last.number + 1);
    let invocation = Invocation {
        number,
        time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        command_line: std::env::args().collect(),
        file: file.display().to_string(),
        overrides: overrides.to_vec(),
        launcher: launcher.to_string(),
        scorelab: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("SCORELAB_GIT_COMMIT").to_string(),
        trials: trials.iter().map(|t| t.id.clone()).collect(),
    };
    let path = invocations_dir(&folder.root).join(format!("{number:04}.yaml"));
    write_yaml(&path, &invocation).map_err(|e| write_error(&path, e))?;
    Ok(invocation)
}

/// The trials the folder's tables show: this invocation's (`trials`, with `rows` for those
/// that have a result) and the finished trials of earlier invocations (read back from their
/// folders), in the order the invocations first asked for them.
pub(super) fn folder_trials(root: &Path, trials: &[Trial], rows: &[TrialRow]) -> Vec<FolderTrial> {
    let mut asked: HashMap<String, Vec<usize>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let recorded = invocations(root);
    let ids = recorded
        .iter()
        .flat_map(|i| i.trials.iter().map(move |id| (id, Some(i.number))))
        .chain(trials.iter().map(|t| (&t.id, None)));
    for (id, number) in ids {
        let numbers = asked.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            Vec::new()
        });
        if let Some(n) = number.filter(|n| !numbers.contains(n)) {
            numbers.push(n);
        }
    }
    order
        .into_iter()
        .filter_map(|id| {
            let invocations = asked.remove(&id).unwrap_or_default();
            if let Some(t) = trials.iter().find(|t| t.id == id) {
                return Some(FolderTrial {
                    model: t.train_id.clone(),
                    config: t.resolved.clone(),
                    label: t.label.clone(),
                    own_axes: t.assignments.clone(),
                    invocations,
                    row: rows.iter().find(|r| r.trial == id).cloned(),
                    id,
                });
            }
            let dir = root.join("trials").join(&id);
            let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
            let row: TrialRow = serde_json::from_str(&read("metrics.json")?).ok()?;
            let config: serde_json::Value = serde_yaml::from_str(&read("config.yaml")?).ok()?;
            Some(FolderTrial {
                model: row.train_id.clone(),
                config,
                label: row.label.clone(),
                own_axes: row.axes.clone(),
                invocations,
                row: Some(row),
                id,
            })
        })
        .collect()
}

/// A trial folder's state: finished (`ok`), `failed`, or not (yet) there.
fn trial_state(root: &Path, id: &str) -> Option<bool> {
    let text = fs::read_to_string(root.join("trials").join(id).join("metrics.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(value["status"] != "failed")
}

/// `runner list RESULTS`: every sweep folder under `results` with its invocations.
pub fn list(results: &Path) -> Result<String, String> {
    let entries = fs::read_dir(results).map_err(|e| {
        format!(
            "cannot read the results folder {}: {e}. Fix: give the folder sweeps write to (`--results`, default `results`)",
            results.display()
        )
    })?;
    let mut roots: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("trials").is_dir() || invocations_dir(p).is_dir())
        .collect();
    roots.sort();
    if roots.is_empty() {
        return Ok(format!("no sweeps in {}\n", results.display()));
    }
    let mut text = String::new();
    for root in roots {
        let name = root.file_name().unwrap_or_default().to_string_lossy();
        let folders = fs::read_dir(root.join("trials"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0);
        text.push_str(&format!("{name}: {folders} trial folder(s)\n"));
        for invocation in invocations(&root) {
            let states: Vec<Option<bool>> = invocation
                .trials
                .iter()
                .map(|id| trial_state(&root, id))
                .collect();
            let ok = states.iter().filter(|s| **s == Some(true)).count();
            let failed = states.iter().filter(|s| **s == Some(false)).count();
            let overrides = if invocation.overrides.is_empty() {
                "no overrides".to_string()
            } else {
                invocation.overrides.join(" ")
            };
            text.push_str(&format!(
                "  #{} {} {} ({}, {}): {} trial(s), {ok} finished, {failed} failed, {} not run\n",
                invocation.number,
                invocation.time,
                invocation.file,
                overrides,
                invocation.launcher,
                states.len(),
                states.len() - ok - failed,
            ));
        }
    }
    Ok(text)
}
