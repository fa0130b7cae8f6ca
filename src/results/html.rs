//! `report.html`: one self-contained page per sweep, built from what the sweep left on disk
//! (`experiment.yaml`, each trial's `metrics.json` and pictures, `plots/`). Pictures are
//! embedded as data URIs and the table's sorting is an inline script, so the file opens
//! anywhere, offline, and can be mailed as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::seeds;
use super::table::TrialRow;
use super::write_atomic;

/// The report's file name inside the sweep's folder.
pub const FILE: &str = "report.html";

/// Builds `report.html` in the sweep folder `root` and returns its path.
pub fn write_report(root: &Path) -> Result<PathBuf, String> {
    let record_path = root.join("experiment.yaml");
    let record: Value = fs::read_to_string(&record_path)
        .map_err(|e| {
            format!(
                "cannot read {}: {e}. Fix: run the sweep to its end first (it writes the \
                 record last), then `runner report {}`",
                record_path.display(),
                root.display()
            )
        })
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
         <title>{} — scorelab report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{}</h1>\n",
        escape(&name),
        escape(&name)
    );
    page.push_str(&experiment_section(&record, trials.len()));
    page.push_str(&seeds_section(&rows));
    page.push_str(&summary_section(&trials, &rows));
    page.push_str(&plots_section(&root.join("plots"))?);
    page.push_str(&trials_section(root, &trials, &rows)?);
    page.push_str(&protocol_section(&trials, &rows));
    page.push_str(&environment_section(&record));
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    let path = root.join(FILE);
    write_atomic(&path, page.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as the config files show it.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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

/// The metrics any row has, sorted.
fn metric_names(rows: &[Option<TrialRow>]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .flatten()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Where seeds were swept: one row per configuration, each metric as mean ± the 95%
/// interval's half-width with n.
fn seeds_section(rows: &[Option<TrialRow>]) -> String {
    let rows: Vec<TrialRow> = rows.iter().flatten().cloned().collect();
    if !rows
        .iter()
        .any(|r| r.axes.iter().any(|(k, _)| k == seeds::SEED_KEY))
    {
        return String::new();
    }
    let configurations = seeds::summarise(&rows);
    let metrics = metric_names(&rows.into_iter().map(Some).collect::<Vec<_>>());
    let mut html = String::from(
        "<section id=\"configurations\">\n<h2>Configurations over seeds</h2>\n\
         <p>Mean ± half-width of the 95% Student-t interval (n seeds that finished).</p>\n\
         <table class=\"sortable\">\n<thead><tr><th>configuration</th><th>seeds</th><th>failed</th>",
    );
    for name in &metrics {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for c in &configurations {
        let _ = write!(
            html,
            "<tr><td>{}</td><td data-value=\"{}\">{1}</td><td data-value=\"{}\">{2}</td>",
            escape(&c.label),
            c.seeds,
            c.failed
        );
        for name in &metrics {
            match c.metrics.get(name) {
                Some(i) if i.n >= 2 => {
                    let _ = write!(
                        html,
                        "<td data-value=\"{}\">{:.4} ± {:.4} ({})</td>",
                        i.mean,
                        i.mean,
                        (i.high - i.low) / 2.0,
                        i.n
                    );
                }
                Some(i) => {
                    let _ = write!(
                        html,
                        "<td data-value=\"{}\">{:.4} ({})</td>",
                        i.mean, i.mean, i.n
                    );
                }
                None => html.push_str("<td></td>"),
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

fn summary_section(trials: &[Value], rows: &[Option<TrialRow>]) -> String {
    let metrics = metric_names(rows);
    let mut html = String::from(
        "<section id=\"summary\">\n<h2>Summary</h2>\n<p>Click a column to sort.</p>\n\
         <table class=\"sortable\">\n<thead><tr><th>trial</th>",
    );
    for name in metrics
        .iter()
        .map(String::as_str)
        .chain(["nfe", "train s", "sample s"])
    {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("<th>status</th></tr></thead>\n<tbody>\n");
    for (trial, row) in trials.iter().zip(rows) {
        let label = escape(&show(&trial["label"]));
        let Some(row) = row else {
            let _ = writeln!(
                html,
                "<tr class=\"missing\"><td>{label}</td>{}<td>not run</td></tr>",
                "<td></td>".repeat(metrics.len() + 3)
            );
            continue;
        };
        let class = if row.failed() {
            " class=\"failed\""
        } else {
            ""
        };
        let _ = write!(html, "<tr{class}><td>{label}</td>");
        for name in &metrics {
            match row.metrics.get(name) {
                Some(v) => {
                    let _ = write!(html, "<td data-value=\"{v}\">{v:.4}</td>");
                }
                None => html.push_str("<td></td>"),
            }
        }
        let _ = writeln!(
            html,
            "<td data-value=\"{}\">{}</td><td data-value=\"{2}\">{2:.1}</td>\
             <td data-value=\"{3}\">{3:.1}</td><td>{4}</td></tr>",
            row.nfe,
            row.nfe,
            row.train_seconds,
            row.sample_seconds,
            if row.failed() {
                format!("failed: {}", escape(&row.message))
            } else {
                escape(&row.status)
            }
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

fn image(path: &Path, alt: &str) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn plots_section(plots: &Path) -> Result<String, String> {
    let mut names: Vec<PathBuf> = fs::read_dir(plots)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "png")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut html = String::from("<section id=\"plots\">\n<h2>Plots</h2>\n");
    for path in names {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let _ = writeln!(
            html,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            image(&path, &stem)?,
            escape(&stem)
        );
    }
    html.push_str("</section>\n");
    Ok(html)
}

/// Every leaf of a config as `a.b.c` → value.
fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(inner, &path, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), show(other));
        }
    }
}

/// Per trial, the config values that are not shared by every trial (the base).
fn config_differences(
    trials: &[Value],
) -> (BTreeMap<String, String>, Vec<BTreeMap<String, String>>) {
    let flat: Vec<BTreeMap<String, String>> = trials
        .iter()
        .map(|t| {
            let mut out = BTreeMap::new();
            flatten(&t["config"], "", &mut out);
            out
        })
        .collect();
    let mut base = flat.first().cloned().unwrap_or_default();
    base.retain(|key, value| flat.iter().all(|f| f.get(key) == Some(value)));
    let differences = flat
        .into_iter()
        .map(|mut f| {
            f.retain(|key, _| !base.contains_key(key));
            f
        })
        .collect();
    (base, differences)
}

fn trials_section(
    root: &Path,
    trials: &[Value],
    rows: &[Option<TrialRow>],
) -> Result<String, String> {
    let (base, differences) = config_differences(trials);
    let mut html = String::from("<section id=\"trials\">\n<h2>Trials</h2>\n");
    for ((trial, row), different) in trials.iter().zip(rows).zip(&differences) {
        let id = show(&trial["id"]);
        let _ = writeln!(
            html,
            "<article class=\"trial\">\n<h3>{}</h3>\n<p><code>trials/{}</code>, model <code>{}</code></p>",
            escape(&show(&trial["label"])),
            escape(&id),
            escape(&show(&trial["model"]))
        );
        if let Some(row) = row.as_ref().filter(|r| r.failed()) {
            let _ = writeln!(
                html,
                "<p class=\"failed\">failed: {}</p>",
                escape(&row.message)
            );
        }
        let samples = root.join("trials").join(&id).join("samples.png");
        if samples.is_file() {
            html.push_str(&image(&samples, "samples")?);
            html.push('\n');
        }
        html.push_str(
            "<table class=\"config\">\n<tr><th>differs from the base</th><th>value</th></tr>\n",
        );
        for (key, value) in different {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(key),
                escape(value)
            );
        }
        html.push_str("</table>\n</article>\n");
    }
    html.push_str("<details>\n<summary>The base config (shared by every trial)</summary>\n<table class=\"config\">\n");
    for (key, value) in &base {
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(key),
            escape(value)
        );
    }
    html.push_str("</table>\n</details>\n</section>\n");
    Ok(html)
}

fn protocol_section(trials: &[Value], rows: &[Option<TrialRow>]) -> String {
    let mut html = String::from(
        "<section id=\"protocols\">\n<h2>How each number was measured</h2>\n<table>\n\
         <thead><tr><th>trial</th><th>metric</th><th>samples</th><th>reference</th>\
         <th>reference size</th><th>NFE</th><th>features</th><th>estimator and settings</th></tr></thead>\n<tbody>\n",
    );
    for (trial, row) in trials.iter().zip(rows) {
        let Some(row) = row else { continue };
        for (metric, protocol) in &row.protocols {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&show(&trial["label"])),
                escape(metric),
                protocol.samples,
                escape(&protocol.reference),
                protocol.reference_size,
                protocol.nfe,
                escape(protocol.features.as_deref().unwrap_or("—")),
                escape(
                    &protocol
                        .settings
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}\
table.sortable th{cursor:pointer;background:#f3f3f3}tr.failed td{background:#fde8e8}\
tr.missing td{color:#999}p.failed{color:#a00}figure{display:inline-block;margin:0.5em}\
img{max-width:640px}article.trial{border-top:1px solid #ddd;padding-top:0.5em}\
dt{font-weight:bold}dd{margin:0 0 0.3em 1em}table.config td{text-align:left}";

/// Sorts a `sortable` table by the clicked column (numbers by `data-value`).
const SCRIPT: &str = "document.querySelectorAll('table.sortable').forEach(function(table){\
var heads=table.querySelectorAll('th');heads.forEach(function(th,col){\
th.addEventListener('click',function(){var body=table.tBodies[0];\
var rows=Array.prototype.slice.call(body.rows);var up=th.dataset.order!=='up';\
heads.forEach(function(h){delete h.dataset.order;});th.dataset.order=up?'up':'down';\
rows.sort(function(a,b){var x=a.cells[col],y=b.cells[col];\
var p=parseFloat(x.dataset.value),q=parseFloat(y.dataset.value);\
var r=(isNaN(p)||isNaN(q))?x.textContent.localeCompare(y.textContent):p-q;\
return up?r:-r;});rows.forEach(function(row){body.appendChild(row);});});});});";
