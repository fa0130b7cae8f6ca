//! The sweep's charts: a heatmap over two swept keys (one per value of a third), dots over
//! unordered values, NFE only where it varies, and the same pictures in TensorBoard as in
//! the report.

use std::path::Path;

use scorelab::results::charts::CHARTS_RUN;
use scorelab::results::tensorboard::{event_files, read_events, EventValue};

use crate::common::{sweep, write, SMALL_GMM};

fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

#[test]
fn two_swept_keys_make_a_heatmap_per_value_of_the_third_and_tensorboard_gets_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "grid.yaml",
        &format!(
            "{SMALL_GMM}sweep:\n  schedule.num_levels: [1, 3, 5]\n  \
             schedule.sigma_max: [1.0, 5.0, auto]\n  network.kind: [mlp, oracle]\n"
        ),
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    assert_eq!(report.rows.len(), 18);
    let plots = report.folder.plots();
    let names = pngs(&plots);
    for chart in [
        "fd_heatmap_network-mlp.png",
        "fd_heatmap_network-oracle.png",
    ] {
        assert!(names.iter().any(|n| n == chart), "{chart} in {names:?}");
    }
    // Every cell holds its trial's value: the mlp heatmap writes the fd of each mlp trial.
    let svg = std::fs::read_to_string(plots.join("fd_heatmap_network-mlp.svg")).unwrap();
    for row in report
        .rows
        .iter()
        .filter(|r| r.label.contains("network=mlp"))
    {
        let text = scorelab::results::plots::cell_text(row.metrics["fd"]);
        assert!(
            svg.contains(&format!(">\n{text}\n</text>")),
            "{text} for {}",
            row.label
        );
    }
    // NFE follows the number of levels only: no flat NFE chart against the others.
    assert!(names.iter().any(|n| n == "nfe_vs_num_levels.png"));
    assert!(!names
        .iter()
        .any(|n| n == "nfe_vs_sigma_max.png" || n == "nfe_vs_network.png"));
    assert!(!names.iter().any(|n| n.starts_with("nfe_heatmap")));

    // TensorBoard's charts run holds exactly the report's charts, byte for byte.
    let run = report.folder.root.join("tb").join(CHARTS_RUN);
    let events = read_events(&event_files(&run).unwrap()[0]).unwrap();
    let mut tags = Vec::new();
    for event in &events {
        if let EventValue::Image { png, .. } = &event.value {
            assert_eq!(
                png,
                &std::fs::read(plots.join(format!("{}.png", event.tag))).unwrap()
            );
            tags.push(format!("{}.png", event.tag));
        }
    }
    tags.sort();
    assert_eq!(tags, names);
}

#[test]
fn a_rerun_with_other_charts_leaves_no_stale_chart_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "stale.yaml",
        &format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4]\n"),
    );
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    let plots = report.folder.plots();
    std::fs::write(plots.join("old_chart.png"), b"").unwrap();
    std::fs::write(plots.join("old_chart.svg"), b"").unwrap();
    std::fs::write(plots.join("a_picture.png"), b"").unwrap();
    sweep(&file, &[], &results).unwrap();
    assert!(!plots.join("old_chart.png").exists() && !plots.join("old_chart.svg").exists());
    assert!(
        plots.join("a_picture.png").exists(),
        "pictures without an SVG are not charts"
    );
}
