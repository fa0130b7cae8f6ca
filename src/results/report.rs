//! What a sweep shows a person on the console: the per-trial progress line and the summary
//! table (the charts are `results::charts`).

use super::TrialRow;

pub fn progress_line(row: &TrialRow) -> String {
    let metrics: Vec<String> = row
        .metrics
        .iter()
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect();
    format!(
        "{}  {}  nfe={}  train {:.1}s  sample {:.1}s",
        row.label,
        metrics.join(" "),
        row.nfe,
        row.train_seconds,
        row.sample_seconds
    )
}

/// The rows as an aligned text table with each trial's status; failed trials are listed
/// below it with their messages.
pub fn summary_table(rows: &[TrialRow]) -> String {
    let table = aligned_table(rows);
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed())
        .map(|r| format!("  {}: {}", r.label, r.message))
        .collect();
    if failed.is_empty() {
        table
    } else {
        format!("{table}\n\nfailed trials:\n{}", failed.join("\n"))
    }
}

fn aligned_table(rows: &[TrialRow]) -> String {
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    // Trials of several invocations: say which asked for each.
    let invocations = rows.iter().any(|r| r.invocation != rows[0].invocation);
    let mut header = vec!["trial".to_string()];
    if invocations {
        header.push("invocation".to_string());
    }
    header.extend(metric_names.iter().map(|m| m.to_string()));
    header.extend(["nfe", "train_s", "sample_s", "status"].map(String::from));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.label.clone()];
        if invocations {
            line.push(row.invocation.clone());
        }
        for name in &metric_names {
            line.push(
                row.metrics
                    .get(*name)
                    .map_or("-".into(), |v| format!("{v:.4}")),
            );
        }
        line.push(row.nfe.to_string());
        line.push(format!("{:.1}", row.train_seconds));
        line.push(format!("{:.1}", row.sample_seconds));
        line.push(row.status.clone());
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|line| {
            line.iter()
                .enumerate()
                .map(|(c, cell)| {
                    if c == 0 {
                        format!("{cell:<w$}", w = widths[c])
                    } else {
                        format!("{cell:>w$}", w = widths[c])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
