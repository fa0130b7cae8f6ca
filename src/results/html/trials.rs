//! The report's pictures: the sweep's charts and each trial with its samples and how its
//! config differs from the base.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::text::{escape, show};
use crate::results::combined::flatten;
use crate::results::table::TrialRow;

fn image(path: &Path, alt: &str) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

pub(super) fn plots_section(plots: &Path) -> Result<String, String> {
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

/// Per trial, the config values that are not shared by every trial (the base).
fn config_differences(
    trials: &[Value],
) -> (BTreeMap<String, String>, Vec<BTreeMap<String, String>>) {
    let flat: Vec<BTreeMap<String, String>> = trials
        .iter()
        .map(|t| {
            let mut leaves = BTreeMap::new();
            flatten(&t["config"], "", &mut leaves);
            leaves.iter().map(|(k, v)| (k.clone(), show(v))).collect()
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

pub(super) fn trials_section(
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
