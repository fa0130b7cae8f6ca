//! Every invocation into a sweep folder is kept, and `runner list` shows them.

use scorelab::run::history::invocations;

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
