//! Seeds as a sweep axis: `seeds: N` runs each configuration with N seeds, never sharing a
//! model between them, and `summary.csv` gives each configuration's mean, standard deviation,
//! n and the 95% bootstrap percentile interval of the mean of every metric.

use std::collections::BTreeMap;

use polars::prelude::{CsvReadOptions, SerReader};
use scorelab::results::seeds::{bootstrap_percentile, Interval};

use crate::common::{resolve_error, sweep, write, SMALL_GMM};

#[test]
fn three_seeds_give_a_bootstrap_interval_within_the_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "seeded.yaml",
        &format!("{SMALL_GMM}seeds: 3\nsweep:\n  sampler.steps_per_level: [2, 4]\n"),
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    assert_eq!(report.rows.len(), 6);
    // The file's seed is 3: seeds 3, 4, 5, each with its own model.
    let mut models: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in &report.rows {
        let seed = row
            .axes
            .iter()
            .find(|(k, _)| k == "seed")
            .unwrap()
            .1
            .as_i64()
            .unwrap();
        models.entry(row.train_id.clone()).or_default().push(seed);
    }
    assert_eq!(models.len(), 3, "{models:?}");
    assert!(models
        .values()
        .all(|seeds| seeds.len() == 2 && seeds[0] == seeds[1]));

    let summary = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(report.folder.root.join("summary.csv")))
        .and_then(|r| r.finish())
        .unwrap();
    assert_eq!(summary.height(), 2, "one row per configuration");
    for (position, steps) in [(0, 2), (1, 4)] {
        let values: Vec<f64> = report
            .rows
            .iter()
            .filter(|r| {
                r.axes
                    .iter()
                    .any(|(k, v)| k == "sampler.steps_per_level" && v == steps)
            })
            .map(|r| r.metrics["fd"])
            .collect();
        assert_eq!(values.len(), 3);
        let mean = values.iter().sum::<f64>() / 3.0;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let (low, high) = bootstrap_percentile(&values);
        // Means of resampled seeds lie between the smallest and the largest seed.
        let (min, max) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(
            min <= low && low <= mean && mean <= high && high <= max,
            "{values:?} {low} {mean} {high}"
        );
        let cell = |column: &str| {
            summary
                .column(column)
                .unwrap()
                .f64()
                .unwrap()
                .get(position)
                .unwrap()
        };
        for (column, expected) in [
            ("fd_mean", mean),
            ("fd_std", std),
            ("fd_ci95_low", low),
            ("fd_ci95_high", high),
        ] {
            assert!(
                (cell(column) - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                "{column}: {} vs {expected}",
                cell(column)
            );
        }
        let n = summary
            .column("fd_n")
            .unwrap()
            .i64()
            .unwrap()
            .get(position)
            .unwrap();
        assert_eq!(n, 3);
    }
}

#[test]
fn an_interval_needs_two_finite_values() {
    let one = Interval::of(&[2.0, f64::NAN]);
    assert_eq!((one.n, one.mean), (1, 2.0));
    assert!(one.std.is_nan() && one.low.is_nan() && one.high.is_nan());
    // Two seeds: a resample is both of one seed (a quarter of the time each) or one of each,
    // so the 2.5% and 97.5% percentiles are the seeds themselves.
    let two = Interval::of(&[1.0, 3.0]);
    assert_eq!((two.low, two.mean, two.high), (1.0, 2.0, 3.0), "{two:?}");
}

#[test]
fn seeds_must_be_a_small_count_and_not_beside_a_seed_sweep() {
    let message = resolve_error(&format!("{SMALL_GMM}seeds: 0\n"), &[]);
    assert!(
        message.contains("seeds") && message.contains("from 1 to 1000"),
        "{message}"
    );
    let message = resolve_error(&format!("{SMALL_GMM}seeds: 3\n"), &["seed=1,2"]);
    assert!(message.contains("not both"), "{message}");
    // One seed is the plain sweep: no seed axis.
    let trials = crate::common::resolve(&format!("{SMALL_GMM}seeds: 1\n"), &[]).unwrap();
    assert_eq!(trials.len(), 1);
    assert!(trials[0].assignments.is_empty());
}

#[test]
fn the_report_has_one_row_per_configuration_with_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "seeded.yaml",
        &format!("{SMALL_GMM}seeds: 2\nsweep:\n  sampler.steps_per_level: [2, 4]\n"),
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    let page = std::fs::read_to_string(report.folder.root.join("report.html")).unwrap();
    let start = page
        .find("id=\"configurations\"")
        .expect("a configurations section");
    let section = &page[start..page[start..].find("</section>").unwrap() + start];
    assert_eq!(section.matches("<tr>").count() - 1, 2, "{section}");
    assert!(section.contains("<td>steps_per_level=2</td>"));
    assert!(
        section.contains("95% bootstrap percentile interval"),
        "the header names it"
    );
    // Each cell is `mean [low, high] (n)`, with low >= 0 for these non-negative metrics.
    let cells: Vec<&str> = section
        .split("<td data-value=")
        .skip(1)
        .filter_map(|c| Some(c.split_once('>')?.1))
        .filter(|c| c.contains(" ["))
        .collect();
    assert!(!cells.is_empty());
    for cell in cells {
        let low: f64 = cell
            .split(" [")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(low >= 0.0, "{cell}");
    }
}

#[test]
fn seeded_charts_draw_each_configuration_once_with_its_seeds_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "seeded.yaml",
        &format!("{SMALL_GMM}seeds: 3\nsweep:\n  sampler.steps_per_level: [2, 4]\n"),
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    let plots = report.folder.plots();
    assert!(plots.join("fd_vs_steps_per_level.png").is_file());
    assert!(
        !plots.join("fd_vs_seed.png").exists(),
        "no chart against the seed itself"
    );
    // One line per configuration, not one per seed.
    let svg = std::fs::read_to_string(plots.join("fd_vs_steps_per_level.svg")).unwrap();
    assert!(
        !svg.contains("seed="),
        "seeds are averaged, not drawn as lines"
    );
    // Each seed's point is drawn in outline beside the mean: six small circles without fill.
    let outlines = svg
        .lines()
        .filter(|l| {
            l.starts_with("<circle") && l.contains("r=\"3\"") && l.contains("fill=\"none\"")
        })
        .count();
    assert_eq!(outlines, 6, "{svg}");
}

#[test]
fn the_shipped_seeds_experiment_is_the_quickstart_with_three_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    // Each trial's model and its resolved config without the `seeds` setting.
    let trials = |file: &str| -> Vec<(String, serde_json::Value)> {
        let experiment = scorelab::sweep::Experiment::load(&root.join(file), &[]).unwrap();
        let trials = scorelab::trial::resolve_all(&experiment).unwrap();
        trials
            .into_iter()
            .map(|mut t| {
                t.resolved.as_object_mut().unwrap().remove("seeds");
                (t.train_id, t.resolved)
            })
            .collect()
    };
    let quickstart = trials("quickstart.yaml");
    let seeded = trials("seeds.yaml");
    assert_eq!(seeded.len(), 3 * quickstart.len());
    // Seed 0 of each weighting is the quickstart's trial, with its model, so the numbers agree.
    for trial in &quickstart {
        assert!(seeded.contains(trial), "{trial:?} missing from seeds.yaml");
    }
}
