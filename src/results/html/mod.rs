//! `report.html`: one page per sweep, built from what the sweep left on disk
//! (`experiment.yaml`, each trial's `metrics.json` and pictures, `plots/`). Pictures are
//! embedded as data URIs while they are small in all (`pictures`), else linked by relative
//! paths; sorting and paging are an inline script, so the file opens offline, with nothing
//! fetched from the network, and a sweep of a few trials can be mailed as it is.

mod assets;
mod pictures;
mod tables;
mod text;
mod trials;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::table::TrialRow;
use super::write_atomic;
use tables::{protocol_section, seeds_section, summary_section};
use text::{escape, show};
use trials::{chart_files, plots_section, sample_files, trials_section};

/// The report's file name inside the sweep's folder.
pub const FILE: &str = "report.html";

/// How many of the pictures' bytes a report embeds, of `chart_bytes` in its charts and
/// `trial_bytes` in its trials' pictures (the rest it links): for estimating its size.
pub fn embedded_bytes(chart_bytes: u64, trial_bytes: u64) -> u64 {
    let (charts, trials) = pictures::placements(chart_bytes, trial_bytes);
    let embedded = |placement, bytes| match placement {
        pictures::Placement::Embed => bytes,
        pictures::Placement::Link => 0,
    };
    embedded(charts, chart_bytes) + embedded(trials, trial_bytes)
}

/// Why `root` has no readable `experiment.yaml`, from what is there instead: nothing, a
/// file, a parent of sweep folders, a sweep still running, or something else.
fn not_a_finished_sweep(root: &Path, error: &std::io::Error) -> String {
    let shown = root.display();
    if !root.exists() {
        return format!("there is no folder {shown}. Fix: give a sweep's results folder, e.g. `runner report results/quickstart`");
    }
    if !root.is_dir() {
        return format!("{shown} is a file, not a sweep's results folder. Fix: give the folder, e.g. `runner report results/quickstart`");
    }
    let entries: Vec<PathBuf> = fs::read_dir(root)
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let mut sweeps: Vec<String> = entries
        .iter()
        .filter(|p| p.join("experiment.yaml").is_file())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect();
    sweeps.sort();
    if let Some(first) = sweeps.first() {
        return format!(
            "{shown} holds sweeps ({}), not one sweep's results. Fix: `runner report {}`",
            sweeps.join(", "),
            root.join(first).display()
        );
    }
    if root.join("trials").is_dir() {
        return format!(
            "{shown} is a sweep that has not finished: it has `trials/` but no experiment.yaml \
             ({error}). Fix: run the sweep to its end (it writes the record last), then \
             `runner report {shown}`"
        );
    }
    let mut names: Vec<String> = entries
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect();
    names.sort();
    let found = match names.len() {
        0 => "it is empty".to_string(),
        n if n <= 5 => format!("it holds {}", names.join(", ")),
        n => format!("it holds {n} entries ({}, ...)", names[..5].join(", ")),
    };
    format!(
        "{shown} is not a sweep's results folder: no experiment.yaml, and {found}. Fix: give \
         the folder a sweep wrote, `<results>/<experiment name>`, e.g. `runner report results/quickstart`"
    )
}

/// Builds `report.html` in the sweep folder `root` and returns its path.
pub fn write_report(root: &Path) -> Result<PathBuf, String> {
    let record_path = root.join("experiment.yaml");
    let record: Value = fs::read_to_string(&record_path)
        .map_err(|e| not_a_finished_sweep(root, &e))
        .and_then(|text| {
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", record_path.display()))
        })?;
    let trials = record["trials"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Option<TrialRow>> = trials
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap_or_default();
            let text = fs::read_to_string(root.join("trials").join(id).join("metrics.json"));
            text.ok().and_then(|text| serde_json::from_str(&text).ok())
        })
        .collect();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();

    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{} — scorelab report</title>\n<style>{}</style>\n</head>\n<body>\n\
         <h1>{}</h1>\n",
        escape(&name),
        assets::STYLE,
        escape(&name)
    );
    page.push_str(&experiment_section(&record, trials.len()));
    page.push_str(&invocations_section(&record));
    page.push_str(&seeds_section(&rows));
    page.push_str(&summary_section(&trials, &rows));
    let charts = chart_files(root);
    let samples = sample_files(root, &trials);
    let (chart_placement, sample_placement) = pictures::placements(
        pictures::total_bytes(root, charts.iter().map(String::as_str)),
        pictures::total_bytes(root, samples.iter().flatten().map(String::as_str)),
    );
    page.push_str(&plots_section(root, &charts, chart_placement)?);
    page.push_str(&trials_section(
        root,
        &trials,
        &rows,
        (&samples, sample_placement),
    )?);
    page.push_str(&protocol_section(&trials, &rows));
    page.push_str(&environment_section(&record));
    let _ = write!(
        page,
        "<script>{}</script>\n</body>\n</html>\n",
        assets::SCRIPT
    );
    let path = root.join(FILE);
    write_atomic(&path, page.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn experiment_section(record: &Value, count: usize) -> String {
    let mut html = String::from("<section id=\"experiment\">\n<h2>Experiment</h2>\n<dl>\n");
    let _ = writeln!(
        html,
        "<dt>file</dt><dd><code>{}</code></dd>",
        escape(&show(&record["source"]))
    );
    let overrides: Vec<String> = record["overrides"]
        .as_array()
        .map(|a| a.iter().map(show).collect())
        .unwrap_or_default();
    let _ = writeln!(
        html,
        "<dt>overrides</dt><dd>{}</dd>",
        if overrides.is_empty() {
            "none".to_string()
        } else {
            overrides
                .iter()
                .map(|o| format!("<code>{}</code>", escape(o)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    );
    let _ = writeln!(html, "<dt>trials</dt><dd>{count}</dd>");
    if let Some(sweep) = record["sweep"].as_object() {
        for (key, values) in sweep {
            let values: Vec<String> = values
                .as_array()
                .map(|a| a.iter().map(show).collect())
                .unwrap_or_default();
            let _ = writeln!(
                html,
                "<dt>swept <code>{}</code></dt><dd>{}</dd>",
                escape(key),
                escape(&values.join(", "))
            );
        }
    }
    html.push_str("</dl>\n</section>\n");
    html
}

/// Every invocation of a sweep into this folder: when, what it asked for, and the command.
fn invocations_section(record: &Value) -> String {
    let invocations = record["invocations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if invocations.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<section id=\"invocations\">\n<h2>Invocations</h2>\n\
         <p>Every sweep into this folder; the tables show the finished trials of all of them.</p>\n\
         <table class=\"paged\">\n<thead><tr><th>#</th><th>time (UTC)</th><th>file</th><th>overrides</th>\
         <th>launcher</th><th>trials</th><th>command line</th></tr></thead>\n<tbody>\n",
    );
    for i in &invocations {
        let overrides: Vec<String> = i["overrides"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| format!("<code>{}</code>", escape(&show(o))))
                    .collect()
            })
            .unwrap_or_default();
        let command: Vec<String> = i["command_line"]
            .as_array()
            .map(|a| a.iter().map(show).collect())
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td>{}</td><td><code>{}</code></td></tr>",
            escape(&show(&i["number"])),
            escape(&show(&i["time"])),
            escape(&show(&i["file"])),
            if overrides.is_empty() {
                "none".to_string()
            } else {
                overrides.join(" ")
            },
            escape(&show(&i["launcher"])),
            escape(&show(&i["trials"])),
            escape(&command.join(" "))
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

fn environment_section(record: &Value) -> String {
    let mut html = String::from("<section id=\"environment\">\n<h2>Environment</h2>\n<dl>\n");
    if let Some(environment) = record["environment"].as_object() {
        for (key, value) in environment {
            let _ = writeln!(
                html,
                "<dt>{}</dt><dd>{}</dd>",
                escape(key),
                escape(&show(value))
            );
        }
    }
    html.push_str("</dl>\n</section>\n");
    html
}
