//! The report's pictures: the sweep's charts and each trial with its samples and how its
//! config differs from the base. The trials are one `paged` list, so a browser shows a page
//! of them at a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::pictures::{picture, Placement};
use super::text::{escape, show};
use crate::results::combined::flatten;
use crate::results::table::TrialRow;

/// The charts' PNG files under `root`, as sorted paths relative to it (`plots/…`).
pub(super) fn chart_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("plots"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".png") && !n.starts_with('.'))
                .map(|n| format!("plots/{n}"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Each trial's samples picture, as a path relative to `root`, where the trial has one.
pub(super) fn sample_files(root: &Path, trials: &[Value]) -> Vec<Option<String>> {
    trials
        .iter()
        .map(|t| format!("trials/{}/samples.png", show(&t["id"])))
        .map(|relative| root.join(&relative).is_file().then_some(relative))
        .collect()
}

pub(super) fn plots_section(
    root: &Path,
    charts: &[String],
    placement: Placement,
) -> Result<String, String> {
    let mut html = String::from("<section id=\"plots\">\n<h2>Plots</h2>\n");
    for relative in charts {
        let stem = relative
            .trim_start_matches("plots/")
            .trim_end_matches(".png");
        let _ = writeln!(
            html,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            picture(root, relative, stem, placement)?,
            escape(stem)
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
    samples: (&[Option<String>], Placement),
) -> Result<String, String> {
    let (base, differences) = config_differences(trials);
    let mut html = String::from("<section id=\"trials\">\n<h2>Trials</h2>\n");
    if samples.1 == Placement::Link {
        html.push_str(
            "<p>Each trial's samples are linked, not embedded (they would make the page too \
             large): they open from <code>trials/&lt;trial&gt;/samples.png</code> while the \
             report stays in its folder.</p>\n",
        );
    }
    html.push_str("<div class=\"paged\">\n");
    let each = trials.iter().zip(rows).zip(&differences).zip(samples.0);
    for (i, (((trial, row), different), picture_file)) in each.enumerate() {
        let id = show(&trial["id"]);
        let _ = writeln!(
            html,
            "<article class=\"trial\" id=\"trial-{i}\">\n<h3>{}</h3>\n<p><code>trials/{}</code>, model <code>{}</code></p>",
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
        if let Some(relative) = picture_file {
            html.push_str(&picture(root, relative, "samples", samples.1)?);
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
    html.push_str("</div>\n<details>\n<summary>The base config (shared by every trial)</summary>\n<table class=\"config\">\n");
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
