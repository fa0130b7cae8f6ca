//! Every invocation into a sweep folder is kept, and `runner list` shows them.

use serde_json::{json, Value};

use scorelab::results::combined::{axis_keys, relabel, FolderTrial};
use scorelab::run::history::invocations;
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

use crate::common::{runner, sweep, write, SMALL_GMM};

#[test]
fn two_invocations_are_both_kept_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "hist.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let first = sweep(&file, &["sampler.steps_per_level=2"], &results).unwrap();
    let second = sweep(&file, &["sampler.steps_per_level=3,4"], &results).unwrap();
    let root = &first.folder.root;
    let kept = invocations(root);
    assert_eq!(kept.len(), 2);
    assert_eq!((kept[0].number, kept[1].number), (1, 2));
    assert_eq!(kept[0].overrides, vec!["sampler.steps_per_level=2"]);
    assert_eq!(kept[1].overrides, vec!["sampler.steps_per_level=3,4"]);
    assert_eq!(kept[0].trials, vec![first.rows[0].trial.clone()]);
    assert_eq!(kept[1].trials.len(), 2);
    assert_eq!(kept[1].launcher, "local");
    assert!(
        kept[0].time.ends_with('Z') && kept[0].time.len() == 20,
        "{}",
        kept[0].time
    );
    // Nothing of the first is lost: its trial is still finished beside the second's.
    assert!(root
        .join("trials")
        .join(&kept[0].trials[0])
        .join("metrics.json")
        .is_file());
    assert_eq!(second.rows.len(), 2);

    let (code, stdout, stderr) = runner(&["list", results.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hist: 3 trial folder(s)", "{stdout}");
    assert!(
        lines[1].starts_with("  #1 ")
            && lines[1].contains(
                "(sampler.steps_per_level=2, local): 1 trial(s), 1 finished, 0 failed, 0 not run"
            ),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("  #2 ") && lines[2].contains("2 trial(s), 2 finished"),
        "{stdout}"
    );

    let (code, _, stderr) = runner(&["list", dir.path().join("none").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read the results folder") && stderr.contains("Fix:"),
        "{stderr}"
    );
}

/// The folder's table after three invocations: the first's trials stay in it, each trial
/// says which invocations asked for it, and labels name every key that differs (here the
/// second invocation's `sampler.eps`, which no invocation swept).
#[test]
fn the_folders_table_covers_every_invocation_with_labels_by_every_differing_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "hist.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let first = sweep(&file, &["sampler.steps_per_level=2,3"], &results).unwrap();
    let root = first.folder.root.clone();
    let first_table = std::fs::read_to_string(root.join("metrics.csv")).unwrap();
    assert!(
        first_table.starts_with("trial,label,invocation,sampler.steps_per_level,"),
        "{first_table}"
    );
    let second = sweep(
        &file,
        &["sampler.steps_per_level=3", "sampler.eps=0.001"],
        &results,
    )
    .unwrap();
    assert_eq!(
        second.rows.len(),
        1,
        "the report's rows are this invocation's"
    );
    // The first command again: nothing reruns, and its trials now name both invocations.
    let third = sweep(&file, &["sampler.steps_per_level=2,3"], &results).unwrap();
    assert_eq!(third.skipped, 2);

    let table = scorelab::results::table::read_parquet(&root.join("metrics.parquet")).unwrap();
    assert_eq!(table.height(), 3, "{table}");
    let column = |name: &str| -> Vec<String> {
        let column = table.column(name).unwrap();
        let column = column.cast(&polars::prelude::DataType::String).unwrap();
        let text = column.str().unwrap();
        (0..text.len())
            .map(|i| text.get(i).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(column("invocation"), ["1,3", "1,3", "2"]);
    assert_eq!(
        column("label"),
        [
            "steps_per_level=2,eps=0.002",
            "steps_per_level=3,eps=0.002",
            "steps_per_level=3,eps=0.001"
        ]
    );
    assert_eq!(column("sampler.eps"), ["0.002", "0.002", "0.001"]);
    // Nothing of the first invocation's results is lost: its values are the ones it measured.
    assert_eq!(
        column("trial")[..2],
        [first.rows[0].trial.clone(), first.rows[1].trial.clone()]
    );
    let fd = table.column("fd").unwrap().f64().unwrap().get(0).unwrap();
    assert_eq!(fd, first.rows[0].metrics["fd"]);

    // The record and the report show all three trials and the three invocations.
    let record: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("experiment.yaml")).unwrap())
            .unwrap();
    assert_eq!(record["trials"].as_array().unwrap().len(), 3);
    assert_eq!(record["invocations"].as_array().unwrap().len(), 3);
    assert_eq!(record["trials"][2]["invocation"], "2");
    let page = std::fs::read_to_string(root.join("report.html")).unwrap();
    assert!(
        page.contains("<h2>Invocations</h2>"),
        "no invocations section"
    );
    assert!(
        page.contains("<code>sampler.eps=0.001</code>"),
        "overrides not shown"
    );
    assert!(page.contains("<th>invocation</th>"));
    assert!(page.contains(">steps_per_level=3,eps=0.001</a></td><td>2</td>"));
}

fn folder_trial(config: Value, own_axes: Vec<(String, Value)>) -> FolderTrial {
    FolderTrial {
        id: String::new(),
        model: String::new(),
        config,
        label: "own".to_string(),
        own_axes,
        invocations: vec![1],
        row: None,
    }
}

/// A switched plugin stands for its parameters; any other differing leaf is an axis.
#[test]
fn differing_keys_become_axes_and_a_switched_plugin_stands_for_its_parameters() {
    let trials = [
        folder_trial(
            json!({"sampler": {"kind": "euler", "steps": 10}, "train": {"lr": 0.1}, "seed": 1}),
            vec![],
        ),
        folder_trial(
            json!({"sampler": {"kind": "heun", "steps": 10, "churn": 0.0}, "train": {"lr": 0.2}, "seed": 1}),
            vec![],
        ),
    ];
    assert_eq!(axis_keys(&trials, &[]), ["sampler.kind", "train.lr"]);
    // A swept table covers everything under it.
    let swept = ["sampler".to_string()];
    assert_eq!(axis_keys(&trials, &swept), ["sampler", "train.lr"]);
    let mut trials = trials.to_vec();
    relabel(
        &mut trials,
        &["sampler.kind".to_string(), "train.lr".to_string()],
    );
    assert_eq!(trials[0].label, "sampler=euler,lr=0.1");
    assert_eq!(trials[1].label, "sampler=heun,lr=0.2");
}

/// With one invocation, the table's axes are the swept keys and every label is the trial's
/// own, for every shipped experiment.
#[test]
fn one_invocation_of_each_shipped_experiment_keeps_its_axes_and_labels() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for path in names {
        let experiment = Experiment::load(&path, &[]).unwrap();
        let trials = resolve_all(&experiment).unwrap();
        let swept: Vec<String> = experiment
            .axes
            .iter()
            .flat_map(|a| a.keys.clone())
            .collect();
        let mut shown: Vec<FolderTrial> = trials
            .iter()
            .map(|t| FolderTrial {
                label: t.label.clone(),
                ..folder_trial(t.resolved.clone(), t.assignments.clone())
            })
            .collect();
        let keys = axis_keys(&shown, &swept);
        assert_eq!(keys, swept, "{}", path.display());
        relabel(&mut shown, &keys);
        for (s, t) in shown.iter().zip(&trials) {
            assert_eq!(s.label, t.label, "{}", path.display());
        }
    }
}
