//! `runner completions SHELL`: scripts for bash, zsh and fish that complete subcommands,
//! flags, plugin kinds and the words overrides start with.

use clap::CommandFactory;
use scorelab::cli::Cli;
use scorelab::completions::{override_words, shell, write_script, SHELLS};

fn script(name: &str) -> String {
    let mut out = Vec::new();
    write_script(shell(name).unwrap(), Cli::command(), &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn override_words_name_every_slot_plugin_and_parameter() {
    let words = override_words();
    for word in [
        "seed=",
        "seeds=",
        "train.lr=",
        "sampler=heun",
        "sampler.steps=",
        "data=gmm",
        "data.means=",
        "network=unet",
        "schedule.sigma_max=",
        "features=classifier",
        "eval=",
    ] {
        assert!(words.iter().any(|w| w == word), "{word} missing");
    }
    let mut sorted = words.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, words, "sorted, without repeats");
}

#[test]
fn every_shell_gets_a_script_with_subcommands_and_override_words() {
    for name in SHELLS {
        let text = script(name);
        for word in [
            "sweep",
            "plugins",
            "report",
            "sampler=heun",
            "train.lr=",
            "eval",
        ] {
            assert!(text.contains(word), "{name} script lacks {word}");
        }
    }
    assert!(shell("powershell").is_none());
}

#[test]
fn the_bash_script_is_valid_bash_and_completes_plugin_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runner.bash");
    std::fs::write(&path, script("bash")).unwrap();
    // Source the script, then ask its function what `runner sweep exp.yaml sampler=h` completes to.
    let probe = format!(
        "source {}; COMP_WORDS=(runner sweep exp.yaml sampler=h); COMP_CWORD=3; \
         _runner runner sampler=h exp.yaml; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.lines().any(|l| l == "sampler=heun"), "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with("sampler=h")),
        "{stdout}"
    );
}

#[test]
fn runner_completions_prints_the_script_and_names_the_shells_it_knows() {
    let (code, stdout, stderr) = crate::common::runner(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    // The binary's own plugins (the test binary also registers test plugins).
    assert!(stdout.starts_with("_runner() {"), "{stdout}");
    assert!(stdout.contains("sampler=heun") && !stdout.contains("test_nan_data"));
    let (code, _, stderr) = crate::common::runner(&["completions", "tcsh"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("`tcsh`") && stderr.contains("bash, zsh, fish"),
        "{stderr}"
    );
}
