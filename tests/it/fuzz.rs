//! Fuzzing the config loader in a bounded smoke mode: random mutations of a valid experiment
//! (YAML, YAML with a sweep, and TOML: inserted tokens, deleted ranges, flipped bytes,
//! truncations, duplicated lines), random token soup, and random command-line overrides go through
//! `Experiment::load` and `trial::resolve_all` in process. None may panic, and every error
//! must be non-empty, name the file and give a fix.
//!
//! 3000 cases by default (about a second); `PROPTEST_CASES=100000 cargo test --release --test
//! it fuzz -- --nocapture` for a longer run. The count of executions is printed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestRunner};

use scorelab::sweep::Experiment;
use scorelab::trial;

const BASE_YAML: &str = include_str!("../corpus/base.yaml");

/// A sweep appended to the YAML base: it replaces the base's weighting in every trial.
const SWEEP_YAML: &str = "sweep:\n  weighting.kind: [uniform, min_snr]\n";

const BASE_TOML: &str = r#"seed = 3
num_samples = 400
eval = ["fd", { kind = "mmd", max_points = 200 }]

[data]
kind = "gmm"
means = [[-5.0, -5.0], [5.0, 5.0]]
stds = [1.0, 1.0]
weights = [0.8, 0.2]

[schedule]
kind = "geometric"
num_levels = 5
sigma_min = 0.1

[weighting]
kind = "sigma_squared"

[network]
kind = "mlp"
hidden = 32
layers = 2
embedding = 8

[train]
steps = 60
batch_size = 64
train_size = 500

[sampler]
kind = "annealed_langevin"
steps_per_level = 5
eps = 0.002

[sweep]
"schedule.num_levels" = [1, 3]
"#;

/// Pieces of experiment text: keys, punctuation, YAML and TOML syntax, awkward numbers.
const FRAGMENTS: &[&str] = &[
    "seed",
    "name",
    "threads",
    "eval_batch",
    "num_samples",
    "data",
    "kind",
    "gmm",
    "moons",
    "means",
    "stds",
    "weights",
    "schedule",
    "edm",
    "vp",
    "geometric",
    "sigma_min",
    "sigma_max",
    "p_std",
    "rho",
    "weighting",
    "snr",
    "network",
    "mlp",
    "hidden",
    "train",
    "steps",
    "lr",
    "sampler",
    "heun",
    "rk45",
    "s_churn",
    "s_noise",
    "rtol",
    "eps",
    "eval",
    "fd",
    "mmd",
    "features",
    "sweep",
    "zip",
    "{",
    "}",
    "[",
    "]",
    "[[",
    "]]",
    ":",
    ": ",
    ",",
    "- ",
    "\n",
    "  ",
    "\t",
    "#",
    "\"",
    "'",
    "=",
    " = ",
    ".",
    "&a ",
    "*a",
    "&b [*a, *a, *a]",
    "!!str ",
    "!tag ",
    "---\n",
    "? ",
    "|\n",
    ">\n",
    "<<: *a",
    "1e308",
    "1e400",
    "-1e400",
    ".nan",
    ".inf",
    "-.inf",
    "nan",
    "inf",
    "+inf",
    "1180591620717411303424",
    "18446744073709551616",
    "-1",
    "0",
    "0.5",
    "1",
    "2",
    "true",
    "null",
    "~",
    "\"x\"",
    "'y'",
    "auto",
    "range(0,3)",
    "\u{feff}",
    "é",
    "\u{0}",
];

/// Values an override may give.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "1e308",
    "1e400",
    "-1e308",
    ".nan",
    ".inf",
    "nan",
    "inf",
    "1180591620717411303424",
    "1000000000000",
    "abc",
    "auto",
    "[]",
    "[1, 2]",
    "[[.nan, 0]]",
    "{}",
    "{kind: heun, s_churn: 1e308}",
    "{kind: rk45, rtol: 5}",
    "{kind: edm, p_std: 1e308}",
    "{kind: vp, beta_max: 1e308}",
    "{kind: nosuch}",
    "nosuch",
    "1,2",
    "1,,2",
    "range(0,3)",
    "range(5,1)",
    "range(0,100000000000)",
    "range(1,2,0)",
    "[fd, mmd]",
    "&a [1, *a]",
    "~",
    "true",
    "'quoted'",
    "\"",
    "[[[[[[[[[[",
    "{a: {b: {c: 1}}}",
    "-5",
    "1000000",
    "100000002",
    "[1, 1000000]",
    "{kind: unet, blocks_per_level: 1000000}",
    "[{kind: sliced_wasserstein, projections: 1000000000}]",
    "[{kind: kid, subsets: 1000000000}]",
    "{kind: 42}",
];

/// Key paths an override may set.
const KEYS: &[&str] = &[
    "seed",
    "name",
    "threads",
    "eval_batch",
    "num_samples",
    "data",
    "data.kind",
    "data.means",
    "data.stds",
    "data.weights",
    "schedule",
    "schedule.kind",
    "schedule.num_levels",
    "schedule.sigma_min",
    "schedule.sigma_max",
    "weighting",
    "weighting.kind",
    "network",
    "network.hidden",
    "network.layers",
    "network.embedding",
    "network.channel_mult",
    "network.parameterisation",
    "train",
    "train.steps",
    "train.lr",
    "train.batch_size",
    "train.train_size",
    "sampler",
    "sampler.kind",
    "sampler.eps",
    "sampler.steps_per_level",
    "eval",
    "features",
    "sweep",
    "sweep.seed",
    "nosuch",
    "train.nosuch",
    "a.b.c.d.e",
];

/// One edit of the text's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, Vec<u8>),
    FlipBit(Index, u8),
    Truncate(Index),
    DuplicateLine(Index),
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), fragment()).prop_map(|(i, f)| Mutation::Insert(i, f)),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<Index>(), fragment()).prop_map(|(i, f)| Mutation::Replace(i, f)),
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(text: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for m in mutations {
        let len = bytes.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Insert(i, f) => {
                let p = at(i);
                bytes.splice(p..p, f.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let p = at(i).min(len);
                bytes.drain(p..(p + n).min(len));
            }
            Mutation::Replace(i, f) if len > 0 => {
                let p = i.index(len);
                bytes.splice(p..(p + f.len()).min(len), f.iter().copied());
            }
            Mutation::FlipBit(i, bit) if len > 0 => {
                let p = i.index(len);
                bytes[p] ^= 1 << bit;
            }
            Mutation::Truncate(i) => bytes.truncate(at(i)),
            Mutation::DuplicateLine(i) if len > 0 => {
                let p = i.index(len);
                let start = bytes[..p]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |s| s + 1);
                let end = bytes[p..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(len, |e| p + e + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
            _ => {}
        }
    }
    bytes
}

/// An override as typed: a known or random key path, `=` (usually), a value.
fn override_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => select(KEYS).prop_map(str::to_string),
        1 => prop::collection::vec(select(FRAGMENTS), 1..4).prop_map(|parts| parts.join(".")),
    ];
    let value = prop_oneof![
        4 => select(VALUES).prop_map(str::to_string),
        1 => prop::collection::vec(select(FRAGMENTS), 0..5).prop_map(|parts| parts.concat()),
    ];
    (key, prop::bool::weighted(0.9), value).prop_map(|(k, eq, v)| {
        if eq {
            format!("{k}={v}")
        } else {
            format!("{k}{v}")
        }
    })
}

/// A file (its text and whether it is TOML) and the overrides to load it with.
fn input() -> impl Strategy<Value = (Vec<u8>, bool, Vec<String>)> {
    let mutated = (0..3usize, prop::collection::vec(mutation(), 0..6)).prop_map(|(base, ms)| {
        let (text, toml) = match base {
            0 => (BASE_YAML.to_string(), false),
            1 => (BASE_TOML.to_string(), true),
            // With a sweep that replaces a base value, so that the base is checked too.
            _ => (format!("{BASE_YAML}{SWEEP_YAML}"), false),
        };
        (apply(text.as_bytes(), &ms), toml)
    });
    let soup = (any::<bool>(), prop::collection::vec(fragment(), 0..60))
        .prop_map(|(toml, parts)| (parts.concat(), toml));
    let file = prop_oneof![4 => mutated, 1 => soup];
    (file, prop::collection::vec(override_text(), 0..3))
        .prop_map(|((text, toml), overrides)| (text, toml, overrides))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn config_loading_never_panics_and_every_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let executions = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    let accepted_time = std::sync::Mutex::new(Duration::ZERO);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let start = Instant::now();
    let result = runner.run(&input(), |(text, toml, overrides)| {
        // A new file each time: truncating and rewriting one file costs ext4 a flush (3 ms).
        let n = executions.load(Ordering::Relaxed);
        let name = format!("fuzzed-{n}.{}", if toml { "toml" } else { "yaml" });
        let path = dir.path().join(&name);
        std::fs::write(&path, &text).unwrap();
        let case_start = Instant::now();
        let outcome = Experiment::load(&path, &overrides)
            .and_then(|experiment| trial::resolve_all(&experiment).map(|_| ()));
        let took = case_start.elapsed();
        std::fs::remove_file(&path).unwrap();
        executions.fetch_add(1, Ordering::Relaxed);
        {
            let mut slowest = slowest.lock().unwrap();
            *slowest = (*slowest).max(took);
        }
        if outcome.is_ok() {
            *accepted_time.lock().unwrap() += took;
        }
        if let Err(e) = outcome {
            refused.fetch_add(1, Ordering::Relaxed);
            let message = e.to_string();
            prop_assert!(!message.trim().is_empty(), "empty error");
            prop_assert!(
                message.contains(name.as_str()),
                "does not name the file: {}",
                message
            );
            prop_assert!(message.contains("Fix: "), "no fix: {}", message);
            prop_assert!(
                message.len() < 2000,
                "not compact ({} bytes): {}",
                message.len(),
                message
            );
        }
        prop_assert!(took < Duration::from_secs(5), "took {:?}", took);
        Ok(())
    });
    let total = start.elapsed();
    eprintln!(
        "fuzz: {} executions ({} refused) in {total:?}; slowest {:?}; resolving the accepted ones took {:?}",
        executions.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        slowest.lock().unwrap(),
        accepted_time.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(executions.load(Ordering::Relaxed) >= cases() as usize);
}
