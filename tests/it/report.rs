//! The HTML report: self-contained (no network references, every picture embedded), one
//! summary row per trial, failures shown, and rebuilt by `runner report`.

use std::process::Command;

use crate::common::{sweep, write, SMALL_GMM};

#[test]
fn every_sweep_writes_a_self_contained_report_with_every_trial() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.yaml",
        &format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4, 8]\n"),
    );
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    let page = std::fs::read_to_string(report.folder.root.join("report.html")).unwrap();

    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    for reference in ["http://", "https://", "src=\"/", "src=\"plots", "<link"] {
        assert!(
            !page.contains(reference),
            "the page refers outside itself: {reference}"
        );
    }
    // One summary row per trial, each trial's section with its samples, every plot inline.
    let summary = &page[page.find("id=\"summary\"").unwrap()..page.find("id=\"plots\"").unwrap()];
    assert_eq!(summary.matches("<tr>").count() - 1, 3, "{summary}");
    // Each label links to its trial's section.
    for row in &report.rows {
        let cell = format!("\">{}</a></td>", row.label);
        let at = summary.find(&cell).unwrap_or_else(|| panic!("{cell}"));
        let link = &summary[summary[..at].rfind("<td><a href=\"#").unwrap() + 14..at];
        let section = format!(
            "<article class=\"trial\" id=\"{link}\">\n<h3>{}</h3>\n<p><code>trials/{}</code>",
            row.label, row.trial
        );
        assert!(page.contains(&section), "{section}");
    }
    let plots = std::fs::read_dir(report.folder.plots())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(plots >= 3);
    assert_eq!(
        page.matches("src=\"data:image/png;base64,").count(),
        plots + 3,
        "every plot and each trial's samples"
    );
    // The configs differ only in the swept key; the shared rest is the base.
    assert!(page.contains("<td><code>sampler.steps_per_level</code></td><td>8</td>"));
    assert!(page.contains("<td><code>train.steps</code></td><td>60</td>"));
    // Protocols and environment.
    assert!(page.contains("<td>fd</td><td>400</td><td>held_out</td><td>400</td>"));
    assert!(page.contains(&format!("<dd>{}</dd>", env!("CARGO_PKG_VERSION"))));

    // `runner report` rebuilds it from the folder alone.
    std::fs::remove_file(report.folder.root.join("report.html")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("report")
        .arg(&report.folder.root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(report.folder.root.join("report.html")).unwrap(),
        page
    );
}

/// `runner report` on a folder that is no finished sweep says what it found there instead.
#[test]
fn report_of_a_folder_without_a_record_says_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let report = |path: &std::path::Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_runner"))
            .arg("report")
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let empty = report(dir.path());
    assert!(
        empty.contains("not a sweep's results folder") && empty.contains("it is empty"),
        "{empty}"
    );
    std::fs::create_dir_all(dir.path().join("quickstart/trials")).unwrap();
    let running = report(&dir.path().join("quickstart"));
    assert!(
        running.contains("has not finished") && running.contains("Fix: run the sweep to its end"),
        "{running}"
    );
    std::fs::write(
        dir.path().join("quickstart/experiment.yaml"),
        "trials: []\n",
    )
    .unwrap();
    let parent = report(dir.path());
    assert!(
        parent.contains("holds sweeps (quickstart)") && parent.contains("quickstart`"),
        "{parent}"
    );
    let missing = report(&dir.path().join("nowhere"));
    assert!(missing.contains("there is no folder"), "{missing}");
}

#[test]
fn every_value_has_its_protocol_in_protocols_csv() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.yaml",
        &SMALL_GMM.replace(
            "eval: [fd, mmd, mode_weights]",
            "eval: [fd, mmd, {kind: sliced_wasserstein, projections: 16}]",
        ),
    );
    let report = sweep(
        &file,
        &["sampler.steps_per_level=2,4"],
        &dir.path().join("results"),
    )
    .unwrap();
    let text = std::fs::read_to_string(report.folder.root.join("protocols.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "trial,label,metric,samples,reference,reference_size,nfe,features,settings"
    );
    assert_eq!(lines.len(), 1 + 2 * 3, "one row per trial and metric");
    assert!(
        text.contains(",sliced_wasserstein,400,held_out,400,"),
        "{text}"
    );
    assert!(text.contains("projections=16"), "{text}");
    // The bandwidth the rule chose, with the rule.
    let bandwidth = text
        .split("bandwidth=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|h| h.parse::<f64>().ok());
    assert!(bandwidth.is_some_and(|h| h > 0.0), "{text}");
    assert!(
        text.contains(" (auto: upper median of held-out distances); max_points=2000"),
        "{text}"
    );
    let page = std::fs::read_to_string(report.folder.root.join("report.html")).unwrap();
    assert!(page.contains("projections = 16"));
}

#[test]
fn a_likelihood_records_its_estimator_and_tolerances() {
    use scorelab::metric::MetricInput;
    use scorelab::rng::Rng;
    for (exact_max_dim, estimator) in [(8, "exact trace"), (1, "Hutchinson, 3 Rademacher probe(s)")]
    {
        let text = SMALL_GMM.replace(
            "eval: [fd, mmd, mode_weights]",
            &format!(
                "eval: [{{kind: nll_ode, points: 50, rtol: 0.001, atol: 0.0001, probes: 3, exact_max_dim: {exact_max_dim}}}]"
            ),
        );
        let trials = crate::common::resolve(&text, &[]).unwrap();
        let trial = &trials[0];
        let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
        let input = MetricInput {
            samples: &trial.held_out,
            reference: &trial.held_out,
            dataset: trial.dataset.as_ref(),
            seed: 0,
            model: &model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: None,
        };
        let protocol = trial.metrics[0].1.protocol(&input);
        assert_eq!(
            protocol,
            vec![
                ("estimator", estimator.to_string()),
                ("points", "50".to_string()),
                ("rtol", "0.001".to_string()),
                ("atol", "0.0001".to_string()),
            ]
        );
    }
}
