//! The override grammar and its precedence, table-driven: each case is a set of overrides
//! on one of four small experiment files, the number of trials it must give and the
//! resolved values they must hold. Cases with several overrides are also resolved with the
//! overrides reversed, which must give the same trials.

use std::collections::BTreeMap;

use scorelab::config::overrides::{parse_override, OverrideValue};
use scorelab::sweep::Experiment;
use scorelab::trial::{self, Trial};
use serde_json::{json, Value as Json};

use crate::common::{write, SMALL_GMM};

/// The experiment files of the table.
#[derive(Clone, Copy, Debug)]
enum Base {
    /// SMALL_GMM: no sweep.
    Plain,
    /// Sweeps `weighting.kind` (as experiments/quickstart.yaml does).
    Weighting,
    /// Sweeps `schedule.num_levels` and `network.kind` (as experiments/noise_scales.yaml).
    Networks,
    /// Zips `sampler.steps_per_level` with `sampler.eps`.
    Zipped,
}

fn text(base: Base) -> String {
    let sweep = match base {
        Base::Plain => "",
        Base::Weighting => "sweep:\n  weighting.kind: [sigma_squared, uniform]\n",
        Base::Networks => "sweep:\n  schedule.num_levels: [2, 5]\n  network.kind: [mlp, oracle]\n",
        Base::Zipped => {
            "sweep:\n  zip:\n    sampler.steps_per_level: [2, 4]\n    sampler.eps: [0.1, 0.01]\n"
        }
    };
    format!("{SMALL_GMM}{sweep}")
}

fn load(base: Base, overrides: &[&str]) -> Result<Vec<Trial>, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", &text(base));
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Experiment::load(&file, &overrides)
        .and_then(|e| trial::resolve_all(&e))
        .map_err(|e| e.to_string())
}

/// The resolved value at a dotted path (`null` where a trial has none).
fn at(resolved: &Json, path: &str) -> Json {
    let mut value = resolved;
    for part in path.split('.') {
        value = match (value, part.parse::<usize>()) {
            (Json::Array(items), Ok(i)) => match items.get(i) {
                Some(v) => v,
                None => return Json::Null,
            },
            (Json::Object(map), _) => match map.get(part) {
                Some(v) => v,
                None => return Json::Null,
            },
            _ => return Json::Null,
        };
    }
    value.clone()
}

/// The values of `path` over the trials, sorted (a multiset: the trial order is the
/// command line's, and the case says nothing about it).
fn values(trials: &[Trial], path: &str) -> Vec<String> {
    let mut values: Vec<String> = trials
        .iter()
        .map(|t| at(&t.resolved, path).to_string())
        .collect();
    values.sort();
    values
}

fn sorted(expected: Json) -> Vec<String> {
    let mut values: Vec<String> = expected
        .as_array()
        .expect("a list")
        .iter()
        .map(Json::to_string)
        .collect();
    values.sort();
    values
}

/// Every trial's resolved config, sorted.
fn configs(trials: &[Trial]) -> Vec<String> {
    let mut all: Vec<String> = trials.iter().map(|t| t.resolved.to_string()).collect();
    all.sort();
    all
}

struct Case {
    base: Base,
    overrides: &'static [&'static str],
    trials: usize,
    expect: Vec<(&'static str, Json)>,
    /// The same key given twice (the last wins): the order matters by definition.
    ordered: bool,
}

fn case(
    base: Base,
    overrides: &'static [&'static str],
    trials: usize,
    expect: Vec<(&'static str, Json)>,
) -> Case {
    Case {
        base,
        overrides,
        trials,
        expect,
        ordered: false,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Base::*;
    let mut cases = vec![
        // Plain values, sweeps and ranges.
        case(Plain, &[], 1, vec![("seed", json!([3]))]),
        case(Plain, &["seed=7"], 1, vec![("seed", json!([7]))]),
        case(Plain, &["seed=1,2,3"], 3, vec![("seed", json!([1, 2, 3]))]),
        case(Plain, &["seed=1, 2"], 2, vec![("seed", json!([1, 2]))]),
        case(Plain, &["seed=range(3)"], 3, vec![("seed", json!([0, 1, 2]))]),
        case(Plain, &["seed=range(2,8,3)"], 2, vec![("seed", json!([2, 5]))]),
        case(Plain, &["seed=range(5,0,-2)"], 3, vec![("seed", json!([5, 3, 1]))]),
        case(Plain, &["seed=range(start=1,stop=3)"], 2, vec![("seed", json!([1, 2]))]),
        case(Plain, &["sampler.eps=range(0.001,0.004,0.001)"], 3,
            vec![("sampler.eps", json!([0.001, 0.002, 0.003]))]),
        // start + i*step, rounded to the decimals written: 0.3, not 0.30000000000000004.
        case(Plain, &["schedule.sigma_min=range(0.1,0.4,0.1)"], 3,
            vec![("schedule.sigma_min", json!([0.1, 0.2, 0.3]))]),
        case(Plain, &["sampler.eps=range(start=0.01,stop=0.02,step=0.005)"], 2,
            vec![("sampler.eps", json!([0.01, 0.015]))]),
        case(Plain, &["seed=choice(1,2)"], 2, vec![("seed", json!([1, 2]))]),
        case(Plain, &["seed=choice(4)"], 1, vec![("seed", json!([4]))]),
        case(Plain, &["seed=1,2", "sampler.eps=0.001,0.01"], 4, vec![
            ("seed", json!([1, 1, 2, 2])),
            ("sampler.eps", json!([0.001, 0.001, 0.01, 0.01])),
        ]),
        case(Plain, &["-m", "seed=1,2"], 2, vec![("seed", json!([1, 2]))]),
        case(Plain, &["--multirun", "seed=5"], 1, vec![("seed", json!([5]))]),
        // Plugins and their parameters: the order does not matter.
        case(Plain, &["sampler=heun"], 1, vec![
            ("sampler.kind", json!(["heun"])),
            ("sampler.steps", json!([18])),
            ("sampler.eps", json!([null])),
        ]),
        case(Plain, &["sampler=annealed_langevin", "sampler.eps=0.001"], 1, vec![
            ("sampler.eps", json!([0.001])),
            ("sampler.steps_per_level", json!([5])),
        ]),
        case(Plain, &["sampler=heun", "sampler.steps=7"], 1, vec![
            ("sampler.kind", json!(["heun"])),
            ("sampler.steps", json!([7])),
        ]),
        case(Plain, &["sampler.kind=heun", "sampler.steps=7"], 1, vec![
            ("sampler.kind", json!(["heun"])),
            ("sampler.steps", json!([7])),
        ]),
        case(Plain, &["sampler={kind: heun, steps: 9}"], 1, vec![("sampler.steps", json!([9]))]),
        // Hydra's dictionaries need no space after the colon.
        case(Plain, &["sampler={kind:heun,steps:9}"], 1, vec![("sampler.steps", json!([9]))]),
        case(Plain, &["sampler=heun,euler", "sampler.steps=7"], 2, vec![
            ("sampler.kind", json!(["euler", "heun"])),
            ("sampler.steps", json!([7, 7])),
        ]),
        // null, ~key, +key, ++key.
        case(Plain, &["sampler.eps=null"], 1, vec![("sampler.eps", json!([2e-5]))]),
        case(Plain, &["~sampler.eps"], 1, vec![("sampler.eps", json!([2e-5]))]),
        case(Plain, &["~sampler.eps=0.002"], 1, vec![("sampler.eps", json!([2e-5]))]),
        case(Plain, &["sampler.eps=null,0.01"], 2, vec![("sampler.eps", json!([2e-5, 0.01]))]),
        case(Plain, &["+sampler.final_denoise=false"], 1,
            vec![("sampler.final_denoise", json!([false]))]),
        case(Plain, &["++sampler.eps=0.01"], 1, vec![("sampler.eps", json!([0.01]))]),
        case(Plain, &["++sampler.final_denoise=false"], 1,
            vec![("sampler.final_denoise", json!([false]))]),
        // List elements by index.
        case(Plain, &["data.weights.0=0.6", "data.weights.1=0.4"], 1,
            vec![("data.weights", json!([[0.6, 0.4]]))]),
        case(Plain, &["data.means.1.0=4.0"], 1,
            vec![("data.means", json!([[[-5.0, -5.0], [4.0, 5.0]]]))]),
        // glob over a slot's registered plugins (the test binary registers test_* ones).
        case(Plain, &["weighting=glob(s*)"], 2,
            vec![("weighting.kind", json!(["sigma_squared", "snr"]))]),
        case(Plain, &["weighting=glob([s*, u*], exclude=snr)"], 2,
            vec![("weighting.kind", json!(["sigma_squared", "uniform"]))]),
        case(Plain, &["weighting.kind=glob(*_s*)"], 2,
            vec![("weighting.kind", json!(["min_snr", "sigma_squared"]))]),
        // The file sweeps weighting.kind: a command-line value replaces that axis.
        case(Weighting, &[], 2, vec![("weighting.kind", json!(["sigma_squared", "uniform"]))]),
        case(Weighting, &["weighting=uniform"], 1, vec![("weighting.kind", json!(["uniform"]))]),
        case(Weighting, &["weighting.kind=uniform"], 1,
            vec![("weighting.kind", json!(["uniform"]))]),
        case(Weighting, &["weighting={kind: uniform}"], 1,
            vec![("weighting.kind", json!(["uniform"]))]),
        case(Weighting, &["weighting=uniform,snr"], 2,
            vec![("weighting.kind", json!(["snr", "uniform"]))]),
        case(Weighting, &["weighting=glob(*,exclude=[edm,likelihood,*snr,test_*])"], 2,
            vec![("weighting.kind", json!(["sigma_squared", "uniform"]))]),
        case(Weighting, &["seed=1,2"], 4, vec![("seed", json!([1, 1, 2, 2]))]),
        // The file sweeps network.kind and schedule.num_levels.
        case(Networks, &[], 4, vec![("network.hidden", json!([32, 32, null, null]))]),
        case(Networks, &["network=oracle"], 2, vec![
            ("network.kind", json!(["oracle", "oracle"])),
            ("schedule.num_levels", json!([2, 5])),
        ]),
        case(Networks, &["network.kind=oracle"], 2,
            vec![("network.kind", json!(["oracle", "oracle"]))]),
        case(Networks, &["network=mlp", "network.hidden=16"], 2,
            vec![("network.hidden", json!([16, 16]))]),
        case(Networks, &["network=mlp,oracle"], 4, vec![
            ("network.kind", json!(["mlp", "mlp", "oracle", "oracle"])),
            ("network.hidden", json!([32, 32, null, null])),
        ]),
        case(Networks, &["network.kind=mlp,oracle"], 4,
            vec![("network.hidden", json!([32, 32, null, null]))]),
        case(Networks, &["schedule.num_levels=3"], 2,
            vec![("schedule.num_levels", json!([3, 3]))]),
        case(Networks, &["schedule=geometric"], 2, vec![
            ("schedule.num_levels", json!([5, 5])),
            ("schedule.sigma_min", json!([0.1, 0.1])),
        ]),
        case(Networks, &["seed=1,2", "network=oracle"], 4, vec![("seed", json!([1, 1, 2, 2]))]),
        // A zipped pair: a value on one key leaves the other's axis.
        case(Zipped, &["sampler.eps=0.05"], 2, vec![
            ("sampler.steps_per_level", json!([2, 4])),
            ("sampler.eps", json!([0.05, 0.05])),
        ]),
        case(Zipped, &["sampler=heun"], 1, vec![("sampler.kind", json!(["heun"]))]),
    ];
    // The same key twice: the last wins, as in Hydra.
    cases.push(Case {
        ordered: true,
        ..case(Plain, &["seed=1", "seed=2"], 1, vec![("seed", json!([2]))])
    });
    cases
}

#[test]
fn forty_odd_override_strings_give_the_trials_they_must() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let label = format!("{:?} {:?}", case.base, case.overrides);
        let trials = match load(case.base, case.overrides) {
            Ok(trials) => trials,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        if trials.len() != case.trials {
            failures.push(format!(
                "{label}: {} trials, not {}",
                trials.len(),
                case.trials
            ));
            continue;
        }
        for (path, expected) in &case.expect {
            let got = values(&trials, path);
            if got != sorted(expected.clone()) {
                failures.push(format!("{label}: `{path}` is {got:?}, not {expected}"));
            }
        }
        if case.overrides.len() > 1 && !case.ordered {
            let reversed: Vec<&str> = case.overrides.iter().rev().copied().collect();
            match load(case.base, &reversed) {
                Ok(other) if configs(&other) == configs(&trials) => {}
                Ok(_) => failures.push(format!("{label}: reversed, the trials differ")),
                Err(e) => failures.push(format!("{label}: reversed: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The cases of issue 13's "Why", each against its counterpart.
#[test]
fn the_forms_a_hydra_user_expects_to_agree_do() {
    let pairs: [(Base, &[&str], &[&str]); 4] = [
        (
            Base::Plain,
            &["sampler=annealed_langevin", "sampler.eps=0.001"],
            &["sampler.eps=0.001", "sampler=annealed_langevin"],
        ),
        (
            Base::Networks,
            &["network=mlp,oracle"],
            &["network.kind=mlp,oracle"],
        ),
        (
            Base::Weighting,
            &["weighting=uniform"],
            &["weighting.kind=uniform"],
        ),
        (Base::Plain, &["seed=choice(1,2)"], &["seed=1,2"]),
    ];
    for (base, a, b) in pairs {
        let (a_trials, b_trials) = (load(base, a).unwrap(), load(base, b).unwrap());
        assert_eq!(
            configs(&a_trials),
            configs(&b_trials),
            "{a:?} against {b:?}"
        );
        let ids = |t: &[Trial]| t.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a_trials), ids(&b_trials), "{a:?} against {b:?}");
    }
}

#[test]
fn a_command_line_value_over_a_files_sweep_gives_one_trial_with_that_value() {
    let swept = format!("{SMALL_GMM}sweep:\n  sampler.eps: [0.1, 0.01, 0.001]\n");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", &swept);
    let experiment = Experiment::load(&file, &["sampler.eps=0.005".to_string()]).unwrap();
    assert!(experiment.axes.is_empty(), "{:?}", experiment.axes);
    let trials = trial::resolve_all(&experiment).unwrap();
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0].resolved["sampler"]["eps"], json!(0.005));
    // The value is attributed to the override in errors, not to the file's sweep.
    let message = load_error(&swept, &["sampler.eps=1e308"]);
    assert!(
        message.contains("command-line override `sampler.eps=1e308`"),
        "{message}"
    );
}

fn load_error(text: &str, overrides: &[&str]) -> String {
    crate::common::resolve_error(text, overrides)
}

/// Each refused form names itself and says what to write instead.
#[rustfmt::skip]
#[test]
fn every_refused_form_names_the_form_and_the_fix() {
    let cases: &[(&str, &[&str])] = &[
        ("+sampler.eps=0.1", &["`+sampler.eps=0.1`", "the file sets `sampler.eps`", "++sampler.eps"]),
        ("+weighting=uniform", &["`+weighting=uniform`", "the file sets `weighting`"]),
        ("+weighting.kind=uniform", &["the file sets `weighting.kind` (to \"sigma_squared\")"]),
        ("+foo=1", &["`+foo=1`", "unknown key `foo`", "top-level keys"]),
        ("+network.depth=3", &["`+network.depth=3`", "unknown key `depth`", "its parameters are"]),
        ("~train.lr", &["`~train.lr`", "nothing to remove", "train.lr=VALUE"]),
        ("~sampler.eps=0.5", &["the file sets `sampler.eps` to 0.002, not 0.5", "~sampler.eps"]),
        ("data.weights.5=0.1", &["`data.weights.5=0.1`", "list of 2", "data.weights.0 to data.weights.1"]),
        ("seed=interval(0,1)", &["interval", "range("]),
        ("seed=sort(3,1)", &["`seed=sort(3,1)`", "order"]),
        ("seed=shuffle(1,2)", &["order"]),
        ("seed=str(1)", &["casts", "quoted"]),
        ("seed=foo(1)", &["not a function the runner knows", "'foo(1)'"]),
        ("seed=${other}", &["interpolation"]),
        ("seed=range(1,2),5", &["function inside a sweep list"]),
        ("seed=choice()", &["empty value", "choice(a,b,c)"]),
        ("seed=range(0,1,0.0)", &["range step is 0"]),
        ("seed=range(1,2,3,4)", &["cannot read", "range(start,stop,step)"]),
        ("seed=glob(*)", &["`seed=glob(*)`", "not one", "seed=a,b,c"]),
        ("sampler=glob(zzz*)", &["matches none", "annealed_langevin"]),
        ("sampler=glob(exclude=heun)", &["no pattern"]),
        ("+seed", &["needs a value", "+seed=VALUE"]),
        ("~seed=1,2", &["cannot sweep"]),
        ("~seed=", &["~seed"]),
        ("hydra/launcher=basic", &["config-group", "sampler=heun"]),
        ("db@pkg=1", &["package"]),
        ("hydra.run.dir=out", &["Hydra setting", "--results"]),
        ("+~seed=1", &["more than one prefix"]),
        ("seed=", &["the value is empty", "null for the default"]),
    ];
    for (form, fragments) in cases {
        let message = load_error(SMALL_GMM, &[form]);
        assert!(message.contains("exp.yaml") && message.contains("Fix:"), "{message}");
        for fragment in *fragments {
            assert!(message.contains(fragment), "{form}: no `{fragment}` in: {message}");
        }
    }
    // `+` on a key the file's sweep varies.
    let swept = format!("{SMALL_GMM}sweep:\n  sampler.final_denoise: [true, false]\n");
    let message = load_error(&swept, &["+sampler.final_denoise=false"]);
    assert!(message.contains("`sweep:` varies"), "{message}");
}

fn parsed(text: &str) -> OverrideValue {
    parse_override(std::path::Path::new("exp.yaml"), text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .value
}

fn one(value: &str) -> OverrideValue {
    OverrideValue::One(figment::value::Value::from(value.to_string()))
}

#[test]
fn quotes_and_escapes_keep_commas_and_types() {
    assert_eq!(parsed(r"name=a\,b"), one("a,b"));
    assert_eq!(parsed("name='a,b'"), one("a,b"));
    assert_eq!(parsed("name=\"a,b\""), one("a,b"));
    assert_eq!(parsed("name='10'"), one("10"));
    assert_eq!(parsed(r"name=f\(x\)"), one("f(x)"));
    assert_eq!(parsed("name='foo(1)'"), one("foo(1)"));
    assert_eq!(parsed("name=''"), one(""));
    let OverrideValue::Sweep(values) = parsed("name=a,'b,c',[1, 2]") else {
        panic!("a sweep")
    };
    let json: Vec<Json> = values.iter().map(scorelab::config::to_json).collect();
    assert_eq!(json, vec![json!("a"), json!("b,c"), json!([1, 2])]);
    // A list is one value; lists of lists sweep.
    assert!(matches!(
        parsed("data.weights=[0.5, 0.5]"),
        OverrideValue::One(_)
    ));
    assert!(
        matches!(parsed("data.weights=[0.5,0.5],[0.9,0.1]"), OverrideValue::Sweep(v) if v.len() == 2)
    );
    assert!(matches!(
        parsed("train.lr=null"),
        OverrideValue::One(figment::value::Value::Empty(..))
    ));
    assert_eq!(
        parsed("sampler=glob([a*, 'h*'], exclude=heun)"),
        OverrideValue::Glob {
            include: vec!["a*".into(), "h*".into()],
            exclude: vec!["heun".into()],
        }
    );
}

#[test]
fn glob_patterns_match_as_fnmatch_does() {
    use scorelab::config::overrides::glob_matches;
    let table = [
        ("*", "heun", true),
        ("h*", "heun", true),
        ("*n", "heun", true),
        ("euler*", "euler_ancestral", true),
        ("e?ler", "euler", true),
        ("e?ler", "eeuler", false),
        ("[de]*", "ddim", true),
        ("[!de]*", "ddim", false),
        ("[a-c]*", "annealed_langevin", true),
        ("*_*_*", "euler_ancestral", false),
        ("h", "heun", false),
        ("", "", true),
        (
            "*a*a*a*a*a*a*a*a*a*a*a*b",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            false,
        ),
    ];
    for (pattern, name, expected) in table {
        assert_eq!(glob_matches(pattern, name), expected, "{pattern} on {name}");
    }
}

/// sweep.rs keeps its own table of plugin slots (the trial module builds on it, so it
/// cannot read trial's); the two must agree.
#[test]
fn the_sweeps_slot_table_agrees_with_the_trials() {
    for (slot, kind) in trial::PLUGIN_SLOTS {
        assert_eq!(scorelab::sweep::slot_kind(slot), Some(kind), "{slot}");
    }
    let registered: BTreeMap<&str, usize> = scorelab::registry::Kind::ALL
        .iter()
        .map(|k| (k.name(), scorelab::registry::names(*k).len()))
        .collect();
    assert!(registered["sampler"] > 1, "{registered:?}");
}

/// A plugin named by its shorthand keeps its name when settings go below it, whichever
/// order they come in; a plain value given to a table without `kind` is not a name.
#[test]
fn a_shorthand_name_stays_the_kind_under_settings_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "exp.yaml",
        &format!("{SMALL_GMM}launcher: slurm\n"),
    );
    for overrides in [
        ["launcher.partition=gpu", "seed=4"],
        ["seed=4", "launcher.partition=gpu"],
    ] {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let experiment = Experiment::load(&file, &overrides).unwrap();
        let root = scorelab::config::root_dict(&experiment.base_figment(), &file).unwrap();
        let launcher = scorelab::config::to_json(&root["launcher"]);
        assert_eq!(launcher, json!({"kind": "slurm", "partition": "gpu"}));
    }
    let message = load_error(SMALL_GMM, &["train=fast"]);
    assert!(
        message.contains("key `train`") && message.contains("must be a table"),
        "{message}"
    );
}
