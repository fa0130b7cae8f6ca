//! The README's examples run: every `runner …` command in its code blocks (fenced or
//! indented; `cargo run --release --bin runner -- …` too) is run in its harmless form, so an
//! example that the runner refuses fails here instead of in a reader's terminal.
//!
//! Per subcommand: `sweep` gets `--dry-run` (every trial resolved and validated, nothing
//! trained or written; a Slurm sweep prints the sbatch line it would submit); `show`,
//! `plugins`, `list` and `completions` run as written (they only read); `new-plugin` runs as
//! written in a fresh folder. Shell comments and redirections (`2> train.log`) are dropped,
//! `\`-continued lines joined. One setup: the MNIST-format folder `/tmp/procmnist` (written
//! by scripts/procedural_mnist.py, 12,000 digits) is replaced by a tiny one written here.
//! Any other subcommand fails the test until it is given a harmless form here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image_files::{idx_images, idx_labels};

/// Every runner command of the README's code blocks with its line number, as its words
/// after `runner`.
fn readme_commands(readme: &str) -> Vec<(usize, Vec<String>)> {
    let mut commands = Vec::new();
    let (mut fenced, mut pending): (bool, Option<(usize, String)>) = (false, None);
    for (i, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let code = if let Some((n, start)) = pending.take() {
            Some((n, format!("{start} {}", line.trim())))
        } else if fenced || line.starts_with("    ") {
            let text = line.trim();
            let text = text
                .strip_prefix("cargo run --release --bin runner -- ")
                .map(|rest| format!("runner {rest}"))
                .unwrap_or_else(|| text.to_string());
            text.starts_with("runner ").then_some((i + 1, text))
        } else {
            None
        };
        let Some((n, text)) = code else { continue };
        match text.strip_suffix('\\') {
            Some(start) => pending = Some((n, start.trim_end().to_string())),
            None => commands.push((n, shell_words(&text)[1..].to_vec())),
        }
    }
    commands
}

/// The words of a shell command line: quotes removed, a comment and redirections dropped.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut kept = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if matches!(word.as_str(), ">" | "2>" | ">>") {
            words.next();
        } else if !word.starts_with('>') && !word.starts_with("2>") {
            kept.push(word);
        }
    }
    kept
}

/// A tiny MNIST-format folder (20 digits of 28 × 28) for the examples that name one.
fn tiny_mnist(dir: &Path) -> PathBuf {
    let folder = dir.join("procmnist");
    std::fs::create_dir_all(&folder).unwrap();
    let pixels: Vec<u8> = (0..20 * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    let labels: Vec<u8> = (0..20).map(|i| (i % 10) as u8).collect();
    std::fs::write(
        folder.join("train-images-idx3-ubyte"),
        idx_images(20, 28, 28, &pixels),
    )
    .unwrap();
    std::fs::write(folder.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    folder
}

/// The command's harmless form and the folder it runs in, or why it has none.
fn harmless(
    words: &[String],
    root: &Path,
    scratch: &Path,
    mnist: &Path,
) -> Result<(Vec<String>, PathBuf), String> {
    let mut words: Vec<String> = words
        .iter()
        .map(|w| w.replace("/tmp/procmnist", mnist.to_str().unwrap()))
        .collect();
    match words.first().map(String::as_str) {
        Some("sweep") => {
            if !words.iter().any(|w| w == "--dry-run") {
                words.push("--dry-run".to_string());
            }
            Ok((words, root.to_path_buf()))
        }
        Some("show" | "plugins" | "list" | "completions") => Ok((words, root.to_path_buf())),
        Some("new-plugin") => {
            let folder = scratch.join(format!("new-plugin-{}", words.len()));
            std::fs::create_dir_all(&folder).unwrap();
            Ok((words, folder))
        }
        other => Err(format!(
            "`runner {}` has no harmless form in tests/it/readme_examples.rs. Fix: add one there",
            other.unwrap_or("")
        )),
    }
}

#[test]
fn every_runner_command_of_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 18, "{commands:?}");
    let scratch = tempfile::tempdir().unwrap();
    let mnist = tiny_mnist(scratch.path());
    let mut failures = Vec::new();
    for (line, words) in &commands {
        let (args, folder) = match harmless(words, root, scratch.path(), &mnist) {
            Ok(found) => found,
            Err(why) => {
                failures.push(format!("README.md:{line}: {why}"));
                continue;
            }
        };
        let output = Command::new(env!("CARGO_BIN_EXE_runner"))
            .args(&args)
            .current_dir(&folder)
            .output()
            .unwrap();
        if !output.status.success() {
            failures.push(format!(
                "README.md:{line}: `runner {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn commands_are_read_as_the_shell_reads_them() {
    let readme = "text\n\n```sh\nrunner sweep a.yaml 'seed=range(3)'   # a comment\n\
                  runner sweep b.yaml x=1 \\\n  y=2 2> log.txt\nnot a command\n```\n\n    \
                  runner show c.yaml \"data={kind: gmm}\"\n\nrunner prose\n\
                  ```\ncargo run --release --bin runner -- plugins > out.txt\n```\n";
    let commands = readme_commands(readme);
    let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        commands,
        [
            (4, words(&["sweep", "a.yaml", "seed=range(3)"])),
            (5, words(&["sweep", "b.yaml", "x=1", "y=2"])),
            (10, words(&["show", "c.yaml", "data={kind: gmm}"])),
            (14, words(&["plugins"])),
        ]
    );
}
