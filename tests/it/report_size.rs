//! A report of 2 000 trials stays small: its trials' pictures are linked, not embedded, by
//! paths relative to the report that resolve to the files, and its tables are paged. The
//! 2 000 trials are one real small sweep's trial copied, each with its own id, config value
//! and metrics, so no model is trained 2 000 times.

use std::path::Path;

use serde_json::Value;

use crate::common::{sweep, write, SMALL_GMM};

const TRIALS: usize = 2000;
/// What the issue asked for (a 2 000-trial report was 169 MB with every picture embedded).
const MAX_BYTES: u64 = 10 << 20;

/// The sweep's record and trial folders made into `TRIALS` trials; trial 0's id holds the
/// characters a URL must encode (a space, `#`, `:`).
fn copy_into_many_trials(root: &Path) {
    let record_path = root.join("experiment.yaml");
    let mut record: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let model = record["trials"][0].clone();
    let model_dir = root.join("trials").join(model["id"].as_str().unwrap());
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("metrics.json")).unwrap())
            .unwrap();
    let mut trials = Vec::with_capacity(TRIALS);
    for i in 0..TRIALS {
        let label = format!("steps_per_level={i}");
        let id = if i == 0 {
            format!("{label} grid:karras#1-{i:010x}")
        } else {
            format!("{label}-{i:010x}")
        };
        let mut trial = model.clone();
        trial["id"] = id.clone().into();
        trial["label"] = label.clone().into();
        trial["config"]["sampler"]["steps_per_level"] = i.into();
        trials.push(trial);
        let dir = root.join("trials").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut metrics = metrics.clone();
        metrics["trial"] = id.into();
        metrics["label"] = label.into();
        metrics["metrics"]["fd"] = (1.0 + i as f64 / 7.0).into();
        std::fs::write(dir.join("metrics.json"), metrics.to_string()).unwrap();
        let picture = dir.join("samples.png");
        if std::fs::hard_link(model_dir.join("samples.png"), &picture).is_err() {
            std::fs::copy(model_dir.join("samples.png"), &picture).unwrap();
        }
    }
    record["trials"] = Value::Array(trials);
    std::fs::write(&record_path, serde_yaml::to_string(&record).unwrap()).unwrap();
}

/// Every value of `attribute="…"` in the page, HTML entities and percent-encoding undone.
fn attribute_values(page: &str, attribute: &str) -> Vec<String> {
    let opening = format!(" {attribute}=\"");
    page.split(&opening)
        .skip(1)
        .map(|rest| {
            let value = &rest[..rest.find('"').unwrap()];
            let text = value
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            percent_decode(&text)
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_report_of_2000_trials_stays_small_and_links_every_picture() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.yaml",
        &SMALL_GMM.replace("steps: 60", "steps: 20"),
    );
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    let root = report.folder.root.clone();
    copy_into_many_trials(&root);

    let path = scorelab::results::html::write_report(&root).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "report.html of {TRIALS} trials: {bytes} bytes ({:.2} MB)",
        bytes as f64 / 1e6
    );
    assert!(bytes < MAX_BYTES, "{bytes} bytes");

    let page = std::fs::read_to_string(&path).unwrap();
    // Every trial is still in the page: a summary row and an article with its picture.
    let summary = &page[page.find("id=\"summary\"").unwrap()..page.find("id=\"plots\"").unwrap()];
    assert_eq!(summary.matches("<tr").count() - 1, TRIALS);
    assert!(summary.contains("<table class=\"sortable paged\">"));
    assert!(page.contains("function pager(box)"), "the paging script");
    assert_eq!(page.matches("<article class=\"trial\" id=").count(), TRIALS);
    // The charts are few and small: still embedded, so they show wherever the page goes.
    let charts = page.matches("<figure><img alt=").count();
    assert!(charts >= 2, "{charts} charts");
    assert_eq!(page.matches("src=\"data:image/png;base64,").count(), charts);

    // Every linked picture is relative to the report and resolves to a file beside it.
    let sources = attribute_values(&page, "src");
    let (anchors, links): (Vec<String>, Vec<String>) = attribute_values(&page, "href")
        .into_iter()
        .partition(|h| h.starts_with('#'));
    let linked: Vec<&String> = sources
        .iter()
        .chain(&links)
        .filter(|s| !s.starts_with("data:"))
        .collect();
    assert_eq!(linked.len(), 2 * TRIALS, "an img and its link per trial");
    for target in &linked {
        assert!(
            !target.starts_with('/') && !target.contains("://"),
            "not relative: {target}"
        );
        assert!(root.join(target).is_file(), "{target} does not resolve");
    }
    // Each summary label opens its trial's section, whichever page it is on.
    assert_eq!(anchors.len(), TRIALS);
    let sections: std::collections::HashSet<String> = page
        .split("<article class=\"trial\" id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect();
    assert_eq!(sections.len(), TRIALS);
    for anchor in &anchors {
        assert!(sections.contains(&anchor[1..]), "{anchor} opens nothing");
    }
    let record: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("experiment.yaml")).unwrap())
            .unwrap();
    for trial in record["trials"].as_array().unwrap() {
        let picture = format!("trials/{}/samples.png", trial["id"].as_str().unwrap());
        assert!(sources.contains(&picture), "{picture} is not shown");
    }
    assert!(sources.contains(&format!(
        "trials/steps_per_level=0 grid:karras#1-{:010x}/samples.png",
        0
    )));
}
