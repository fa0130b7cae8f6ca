//! SIGINT, SIGTERM and SIGHUP each stop a sweep at its next safe point: the training run
//! saves its checkpoint, the runner says how to resume and exits with 128 + the signal, and
//! the rerun ends with the table of a run that was never stopped. A stop during the last
//! trial lets the sweep finish and still exits with the stop's status.

use std::fs;

use crate::kill::{check_files, outcome, reference, Run};

fn stopped_at(point: &str, signal: &str) -> (Run, std::process::Output) {
    let run = Run::new();
    let output = run
        .command(None)
        .env(
            scorelab::crash::SIGNAL_VARIABLE,
            format!("{point}:{signal}"),
        )
        .output()
        .unwrap();
    (run, output)
}

#[test]
fn each_stop_signal_saves_a_checkpoint_and_exits_with_its_status() {
    for (signal, code, name) in [
        ("INT", 130, "SIGINT (Ctrl-C)"),
        ("TERM", 143, "SIGTERM"),
        ("HUP", 129, "SIGHUP"),
    ] {
        // Step 30 of the first model's 120 (snapshots every 40): only the stop saves one.
        let (run, output) = stopped_at("train.step:30", signal);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}: stopping at the next safe point")),
            "{stderr}"
        );
        assert!(
            stderr.contains("interrupted:") && stderr.contains("its checkpoint is"),
            "{stderr}"
        );
        let checkpoints = fs::read_dir(run.folder().join("models"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(".checkpoint.safetensors")
            })
            .count();
        assert_eq!(checkpoints, 1, "{signal}: the stopped model's snapshot");
        let resumed = run.finish();
        assert!(resumed.contains("from its checkpoint at step"), "{resumed}");
        assert_eq!(&outcome(&run.folder()), reference(), "{signal}");
        check_files(&run.folder());
    }
}

#[test]
fn a_stop_during_the_last_trial_finishes_the_sweep_and_exits_with_its_status() {
    // The fourth trial is the last: the stop finds no later safe point.
    let (run, output) = stopped_at("trial.save:4", "TERM");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("during the last trial"), "{stderr}");
    assert_eq!(&outcome(&run.folder()), reference());
    check_files(&run.folder());
}
