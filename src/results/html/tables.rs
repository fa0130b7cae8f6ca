//! The report's tables: configurations over seeds, the sortable summary and the protocols.

use std::fmt::Write as _;

use serde_json::Value;

use super::text::{escape, show};
use crate::results::seeds;
use crate::results::table::TrialRow;

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

/// Where seeds were swept: one row per configuration, each metric as mean [the 95%
/// bootstrap percentile interval] (n).
pub(super) fn seeds_section(rows: &[Option<TrialRow>]) -> String {
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
         <p>Mean [{}] (n seeds that finished).</p>\n\
         <table class=\"sortable paged\">\n<thead><tr><th>configuration</th><th>seeds</th><th>failed</th>",
    )
    .replace("{}", seeds::INTERVAL_NAME);
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
                Some(i) => {
                    let text = seeds::interval_text(i);
                    let _ = write!(html, "<td data-value=\"{}\">{}</td>", i.mean, text);
                }
                None => html.push_str("<td></td>"),
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

/// One row per trial, each label a link to the trial's section.
pub(super) fn summary_section(trials: &[Value], rows: &[Option<TrialRow>]) -> String {
    let metrics = metric_names(rows);
    let mut html = String::from(
        "<section id=\"summary\">\n<h2>Summary</h2>\n<p>Click a column to sort.</p>\n\
         <table class=\"sortable paged\">\n<thead><tr><th>trial</th>",
    );
    let invoked = trials.iter().any(|t| t["invocation"].is_string());
    if invoked {
        html.push_str("<th>invocation</th>");
    }
    for name in metrics
        .iter()
        .map(String::as_str)
        .chain(["nfe", "train s", "sample s"])
    {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("<th>status</th></tr></thead>\n<tbody>\n");
    for (i, (trial, row)) in trials.iter().zip(rows).enumerate() {
        // The label opens the trial's pictures and config (`trials_section`'s `trial-<i>`).
        let mut label = format!(
            "<td><a href=\"#trial-{i}\">{}</a></td>",
            escape(&show(&trial["label"]))
        );
        if invoked {
            let _ = write!(label, "<td>{}</td>", escape(&show(&trial["invocation"])));
        }
        let Some(row) = row else {
            let _ = writeln!(
                html,
                "<tr class=\"missing\">{label}{}<td>not run</td></tr>",
                "<td></td>".repeat(metrics.len() + 3)
            );
            continue;
        };
        let class = if row.failed() {
            " class=\"failed\""
        } else {
            ""
        };
        let _ = write!(html, "<tr{class}>{label}");
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

pub(super) fn protocol_section(trials: &[Value], rows: &[Option<TrialRow>]) -> String {
    let mut html = String::from(
        "<section id=\"protocols\">\n<h2>How each number was measured</h2>\n<table class=\"paged\">\n\
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
