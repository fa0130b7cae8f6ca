//! The bad-input corpus (`tests/corpus/cases.txt`): every malformed experiment file and
//! override is run through the real `runner sweep FILE [OVERRIDE] --results DIR`, in parallel,
//! and must be refused before any work: exit status 1, an error naming the file, the key path
//! and a fix, no panic, nothing written under DIR, and quickly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One line of `cases.txt`.
#[derive(Debug, Clone)]
struct Case {
    line: usize,
    file: String,
    overrides: Vec<String>,
    expected: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus_dir().join("cases.txt")).expect("read cases.txt");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let fields: Vec<&str> = l.splitn(3, " :: ").collect();
            assert_eq!(fields.len(), 3, "cases.txt line {}: {l}", i + 1);
            let overrides = match fields[1].trim() {
                "-" => Vec::new(),
                text => vec![text.to_string()],
            };
            Case {
                line: i + 1,
                file: fields[0].trim().to_string(),
                overrides,
                expected: fields[2]
                    .split(" && ")
                    .map(|s| s.trim().to_string())
                    .collect(),
            }
        })
        .collect()
}

/// What one run did.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
    written: Vec<String>,
}

/// Longest any one case may take: a parse-time rejection is instant, so this only stops a
/// case that started real work (or hangs) from stalling the test.
const CASE_LIMIT: Duration = Duration::from_secs(20);

fn run_case(case: &Case) -> Outcome {
    let results = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("sweep")
        .arg(corpus_dir().join(&case.file))
        .args(&case.overrides)
        .arg("--results")
        .arg(results.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start runner");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stderr_pipe, &mut bytes).ok();
        bytes
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > CASE_LIMIT {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let written = walk(results.path());
    Outcome {
        code,
        stderr,
        elapsed,
        written,
    }
}

/// Every path under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// Everything wrong with one case's outcome (empty: it passed).
fn problems(case: &Case, outcome: &Outcome) -> Vec<String> {
    let mut wrong = Vec::new();
    let err = &outcome.stderr;
    match outcome.code {
        Some(1) => {}
        Some(code) => wrong.push(format!("exit status {code}, expected 1")),
        None => wrong.push(format!(
            "killed by a signal or still running after {:?} (a crash or real work)",
            outcome.elapsed
        )),
    }
    if err.contains("panicked") || err.contains("stack overflow") {
        wrong.push("panicked".into());
    }
    let file_name = Path::new(&case.file)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    if !err.contains(&file_name) {
        wrong.push(format!("the error does not name the file `{file_name}`"));
    }
    if !err.contains("Fix: ") {
        wrong.push("the error gives no fix (`Fix: `)".into());
    }
    if err.lines().count() != 1 {
        wrong.push(format!(
            "{} lines on stderr, expected one",
            err.lines().count()
        ));
    }
    if err.len() > 1500 {
        wrong.push(format!("{} characters on stderr: not compact", err.len()));
    }
    for expected in &case.expected {
        if !err.contains(expected.as_str()) {
            wrong.push(format!("missing `{expected}`"));
        }
    }
    if !outcome.written.is_empty() {
        wrong.push(format!("wrote {:?}", outcome.written));
    }
    if outcome.elapsed > Duration::from_secs(5) {
        wrong.push(format!(
            "took {:?} (a parse-time rejection is instant)",
            outcome.elapsed
        ));
    }
    wrong
}

#[test]
fn every_corpus_case_is_refused_at_once_with_file_key_and_fix() {
    let cases = cases();
    assert!(cases.len() >= 80, "the corpus has {} cases", cases.len());
    // A missing-file case must stay missing, and the directory case a directory.
    assert!(!corpus_dir().join("files/no_such_file.yaml").exists());
    assert!(corpus_dir().join("files/directory.yaml").is_dir());

    let start = Instant::now();
    let workers = 4;
    let chunks: Vec<Vec<Case>> = (0..workers)
        .map(|w| cases.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                chunk
                    .iter()
                    .map(|case| (case.clone(), run_case(case)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for handle in handles {
        for (case, outcome) in handle.join().unwrap() {
            slowest = slowest.max(outcome.elapsed);
            let wrong = problems(&case, &outcome);
            if !wrong.is_empty() {
                failures.push(format!(
                    "cases.txt line {} ({} {:?}): {}\n    stderr: {}",
                    case.line,
                    case.file,
                    case.overrides,
                    wrong.join("; "),
                    outcome.stderr.trim()
                ));
            }
        }
    }
    let total = start.elapsed();
    eprintln!(
        "corpus: {} cases in {total:?} (slowest {slowest:?})",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_manifest_lists_every_corpus_file() {
    let listed: std::collections::HashSet<String> = cases().into_iter().map(|c| c.file).collect();
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(corpus_dir().join("files")).unwrap() {
        let name = format!("files/{}", entry.unwrap().file_name().to_string_lossy());
        if !listed.contains(&name) {
            unlisted.push(name);
        }
    }
    assert!(unlisted.is_empty(), "not in cases.txt: {unlisted:?}");
}
