//! `runner completions SHELL`: scripts for bash, zsh and fish that complete subcommands,
//! flags, plugin kinds and the words overrides start with.

use std::path::Path;

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

const LANGEVIN_FILE: &str = "
data: {kind: gmm, means: [[0.0]], stds: [1.0], weights: [1.0]}
sampler: {kind: annealed_langevin, eps: 0.001}
";

/// `runner __complete WORDS...` as the scripts call it: (exit code, one candidate a line).
fn complete(words: &[&str]) -> (i32, Vec<String>) {
    let mut args = vec!["__complete", "--"];
    args.extend_from_slice(words);
    let (code, stdout, stderr) = crate::common::runner(&args);
    assert!(stderr.is_empty(), "{stderr}");
    (code, stdout.lines().map(str::to_string).collect())
}

#[test]
fn a_slots_parameters_are_those_of_the_plugin_the_file_or_command_line_chose() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "langevin.yaml", LANGEVIN_FILE);
    let file = file.to_str().unwrap();
    // The file's sampler: annealed_langevin, which takes no `steps`.
    let (code, words) = complete(&["sweep", file, "sampler."]);
    assert_eq!(code, 0);
    assert_eq!(
        words,
        [
            "sampler.eps=",
            "sampler.final_denoise=",
            "sampler.levels=",
            "sampler.steps_per_level="
        ]
    );
    // The command line's choice wins, in either form, before or after flags.
    let heun = [
        "sampler.grid=",
        "sampler.s_churn=",
        "sampler.s_noise=",
        "sampler.s_tmax=",
        "sampler.s_tmin=",
        "sampler.steps=",
    ];
    for choice in ["sampler=heun", "sampler.kind=heun"] {
        let (_, words) = complete(&["show", file, choice, "--no-sweep", "sampler.s_"]);
        assert_eq!(words, heun[1..5], "{choice}");
    }
    let (_, words) = complete(&["sweep", "--jobs", "2", file, "sampler=heun", "sampler.g"]);
    assert_eq!(words, ["sampler.grid="]);
    // Every sampler is still offered to switch to.
    let (_, words) = complete(&["sweep", file, "sampler=e"]);
    assert!(words.contains(&"sampler=euler".to_string()), "{words:?}");
}

#[test]
fn a_swept_or_unknown_choice_offers_the_union_or_everything() {
    let dir = tempfile::tempdir().unwrap();
    let swept = LANGEVIN_FILE.to_string() + "sweep:\n  sampler.kind: [euler, ddim]\n";
    let file = crate::common::write(dir.path(), "swept.yaml", &swept);
    let (_, words) = complete(&["sweep", file.to_str().unwrap(), "sampler.e"]);
    // annealed_langevin's eps, ddim's eta; euler has neither.
    assert_eq!(words, ["sampler.eps=", "sampler.eta="]);
    // No file to read and no choice: every sampler's parameters.
    let (_, words) = complete(&["sweep", "missing.yaml", "sampler.s"]);
    assert!(
        words.contains(&"sampler.steps=".to_string())
            && words.contains(&"sampler.steps_per_level=".to_string()),
        "{words:?}"
    );
    // A table on the command line: not known either.
    let (_, words) = complete(&["sweep", "missing.yaml", "sampler={kind: heun}", "sampler.s"]);
    assert!(words.contains(&"sampler.steps_per_level=".to_string()));
}

#[test]
fn flags_their_values_and_the_file_are_left_to_the_script() {
    for words in [
        &["sweep", "exp"][..],
        &["sweep", "exp.yaml", "--launcher", ""],
        &["sweep", "exp.yaml", "--dev"],
        &["plugins", "samp"],
    ] {
        let (code, out) = complete(words);
        assert_eq!((code, out.len()), (1, 0), "{words:?}");
    }
}

/// What the bash script completes for the command line `line` (the cursor at its end),
/// with COMP_WORDS split as bash splits them (at `=` too).
fn bash_completes(line: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runner.bash");
    std::fs::write(&path, script("bash")).unwrap();
    let mut words: Vec<String> = Vec::new();
    for word in line.split(' ') {
        let mut parts = word.split('=').peekable();
        while let Some(part) = parts.next() {
            words.push(part.to_string());
            if parts.peek().is_some() {
                words.push("=".to_string());
            }
        }
    }
    let words: Vec<String> = words.into_iter().filter(|w| !w.is_empty()).collect();
    let cword = if line.ends_with(' ') || line.ends_with('=') {
        words.len() - usize::from(line.ends_with('='))
    } else {
        words.len() - 1
    };
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let probe = format!(
        "source {}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({}); \
         COMP_CWORD={cword}; PATH={}:$PATH; _runner_overrides runner \
         \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display(),
        quoted.join(" "),
        Path::new(env!("CARGO_BIN_EXE_runner"))
            .parent()
            .unwrap()
            .display(),
    );
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_the_files_parameters_launchers_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "langevin.yaml", LANGEVIN_FILE);
    let file = file.to_str().unwrap();
    assert_eq!(
        bash_completes(&format!("runner sweep {file} sampler.s")),
        ["sampler.steps_per_level="]
    );
    // Bash took `sampler` and `=` for words of their own: the replies are what follows.
    assert_eq!(
        bash_completes(&format!("runner sweep {file} sampler=he")),
        ["heun"]
    );
    assert_eq!(
        bash_completes(&format!("runner sweep {file} --launcher ")),
        ["local", "slurm"]
    );
    assert_eq!(
        bash_completes(&format!("runner sweep {file} --device ")),
        ["auto", "cpu", "cuda"]
    );
}

#[test]
fn zsh_and_fish_ask_the_runner_for_overrides() {
    let zsh = script("zsh");
    assert!(
        zsh.starts_with("#compdef runner\n\n_runner_overrides() {"),
        "{zsh}"
    );
    let overrides: Vec<&str> = zsh
        .lines()
        .filter(|l| l.starts_with("'*::overrides "))
        .collect();
    assert_eq!(overrides.len(), 2, "sweep and show");
    assert!(overrides
        .iter()
        .all(|l| l.ends_with(":_runner_overrides' \\")));
    assert!(zsh.contains("--launcher=[") && zsh.contains(":(local slurm)"));
    let fish = script("fish");
    assert!(
        fish.contains(
            "complete -c runner -n \"__fish_runner_using_subcommand sweep\" -a '(runner \
             __complete -- (commandline -opc)[2..-1] (commandline -ct))'"
        ),
        "{fish}"
    );
}

/// The zsh function, run by zsh with `compadd` printing what it is given (skipped, saying
/// so, where zsh is not installed).
#[test]
fn zsh_completes_the_files_parameters() {
    if std::process::Command::new("zsh")
        .arg("-c")
        .arg("true")
        .output()
        .is_err()
    {
        eprintln!("zsh is not installed: the zsh completion function is not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("_runner");
    std::fs::write(&path, script("zsh")).unwrap();
    let file = crate::common::write(dir.path(), "langevin.yaml", LANGEVIN_FILE);
    let probe = format!(
        "compdef() {{ : }}; compadd() {{ local arr=${{@[-1]}}; print -l -- ${{(P)arr}} }}; \
         source {}; PATH={}:$PATH; LBUFFER='runner sweep {} sampler.s'; _runner_overrides",
        path.display(),
        Path::new(env!("CARGO_BIN_EXE_runner"))
            .parent()
            .unwrap()
            .display(),
        file.display()
    );
    let output = std::process::Command::new("zsh")
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
    assert_eq!(stdout, "sampler.steps_per_level=\n");
}
