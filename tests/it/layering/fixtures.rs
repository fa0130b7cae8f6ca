//! The checker on a tiny tree (`tests/layering-fixture/`: modules base, middle, top), copied
//! into a temporary folder with an import planted to break one rule at a time.

use std::fs;
use std::path::Path;

use super::check::{check, Rule, Rules, Violation};
use super::listed;

const FIXTURE_RULES: Rules = Rules {
    order: &["base", "middle", "top"],
    plugin_ceiling: "middle",
    local_circles: &["src/middle/grammar/"],
};

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a fixture folder");
    for entry in fs::read_dir(from)
        .expect("read the fixture")
        .filter_map(Result::ok)
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

/// The violations of the fixture with `plants` (path, whole text) written over it.
fn violations_with(plants: &[(&str, &str)], rules: &Rules) -> Vec<Violation> {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_tree(
        &super::repository().join("tests/layering-fixture"),
        dir.path(),
    );
    for (path, text) in plants {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).expect("create a planted file's folder");
        fs::write(path, text).expect("plant a file");
    }
    check(dir.path(), rules)
}

fn violations(plants: &[(&str, &str)]) -> Vec<Violation> {
    violations_with(plants, &FIXTURE_RULES)
}

/// (rule, file, line) of each violation, for exact comparisons.
fn located(violations: &[Violation]) -> Vec<(Rule, &str, usize)> {
    violations
        .iter()
        .map(|v| (v.rule, v.file.as_str(), v.line))
        .collect()
}

#[test]
fn the_clean_fixture_passes() {
    let found = violations(&[]);
    assert!(found.is_empty(), "{}", listed(&found));
}

#[test]
fn a_backward_import_fails_naming_file_line_and_modules() {
    let found = violations(&[("src/base.rs", "//! Low.\nuse crate::top::Thing;\n")]);
    assert_eq!(
        located(&found),
        [(Rule::Backward, "src/base.rs", 2)],
        "{}",
        listed(&found)
    );
    let text = found[0].to_string();
    assert!(
        text.starts_with("src/base.rs:2: `crate::top::Thing`"),
        "{text}"
    );
    assert!(
        text.contains("`base` (layer 1) may not import `top` (layer 3)"),
        "{text}"
    );
    assert!(text.contains("Fix: move the item down"), "{text}");
}

/// Every form of comment and literal mentions a forbidden module; only the last line's
/// `use` is code, and it is the one violation.
#[test]
fn imports_in_comments_and_strings_do_not_count() {
    let source = r##"//! crate::top::Thing
/// scorelab::top::Thing
/* crate::top /* nested */ crate::top::Thing */
pub fn quoted() -> (&'static str, char, &'static str, &'static [u8]) {
    ("crate::top \" crate::top::run", '"', r#"scorelab::top "x" crate::top"#, b"crate::top")
}
pub use crate::top::Thing;
"##;
    let found = violations(&[("src/base.rs", source)]);
    assert_eq!(
        located(&found),
        [(Rule::Backward, "src/base.rs", 7)],
        "{}",
        listed(&found)
    );
}

#[test]
fn grouped_nested_and_inline_imports_are_seen() {
    let source = "use crate::{\n    middle::{self, read},\n    top::Thing,\n};\n\n\
                  pub fn f() {\n    crate::top::run();\n    let _ = super::top::Thing;\n}\n";
    let found = violations(&[("src/base.rs", source)]);
    let expected = [2, 3, 7, 8].map(|line| (Rule::Backward, "src/base.rs", line));
    assert_eq!(located(&found), expected, "{}", listed(&found));
    assert!(
        found[0].message.contains("may not import `middle`"),
        "{}",
        found[0]
    );
}

/// `super` in `src/middle/parse.rs` is `middle`; twice is the crate root.
#[test]
fn super_resolves_from_the_files_place() {
    let source = "use super::Token;\nuse super::super::top::Thing;\n";
    let found = violations(&[("src/middle/parse.rs", source)]);
    assert_eq!(
        located(&found),
        [(Rule::Backward, "src/middle/parse.rs", 2)],
        "{}",
        listed(&found)
    );
    assert!(found[0]
        .message
        .contains("`middle` (layer 2) may not import `top` (layer 3)"));
}

#[test]
fn a_plugin_importing_another_plugin_fails() {
    let source = "use scorelab::plugins::kind::two::make;\nuse super::two;\n";
    let found = violations(&[("plugins/kind/one.rs", source)]);
    let expected = [1, 2].map(|line| (Rule::PluginToPlugin, "plugins/kind/one.rs", line));
    assert_eq!(located(&found), expected, "{}", listed(&found));
    assert!(
        found[1]
            .message
            .contains("plugin `kind/one` imports plugin `kind/two`"),
        "{}",
        found[1]
    );
}

#[test]
fn a_plugin_importing_above_its_ceiling_fails() {
    let found = violations(&[(
        "plugins/kind/two.rs",
        "//! Two.\nuse scorelab::top::Thing;\n",
    )]);
    assert_eq!(
        located(&found),
        [(Rule::PluginCeiling, "plugins/kind/two.rs", 2)],
        "{}",
        listed(&found)
    );
    assert!(
        found[0].message.contains("may not import `top` (layer 3)"),
        "{}",
        found[0]
    );
    assert!(found[0]
        .message
        .contains("only `middle` (layer 2) and the modules before it"));
}

#[test]
fn the_engine_naming_a_plugin_fails() {
    let found = violations(&[("src/top.rs", "use crate::plugins::kind::one::make;\n")]);
    assert_eq!(
        located(&found),
        [(Rule::NamesPlugin, "src/top.rs", 1)],
        "{}",
        listed(&found)
    );
}

#[test]
fn a_module_missing_from_the_order_fails() {
    let found = violations(&[("src/extra.rs", "pub fn f() {}\n"), ("src/more/mod.rs", "")]);
    assert_eq!(
        located(&found),
        [
            (Rule::Order, "src/extra.rs", 0),
            (Rule::Order, "src/more/", 0)
        ]
    );
    assert!(
        found[0]
            .message
            .contains("module `extra` is not in the layer order"),
        "{}",
        found[0]
    );
    assert!(
        found[0].message.contains("README.md's Layout section"),
        "{}",
        found[0]
    );
}

#[test]
fn an_order_naming_no_module_or_one_twice_fails() {
    let rules = Rules {
        order: &["base", "middle", "gone", "top", "base"],
        ..FIXTURE_RULES
    };
    let found = violations_with(&[], &rules);
    let rules_broken: Vec<Rule> = found.iter().map(|v| v.rule).collect();
    assert_eq!(
        rules_broken,
        [Rule::Order, Rule::Order],
        "{}",
        listed(&found)
    );
    assert!(found.iter().any(|v| v
        .message
        .contains("`gone` is in the layer order but is no module")));
    assert!(found
        .iter()
        .any(|v| v.message.contains("`base` is in the layer order twice")));
}

#[test]
fn a_file_circle_inside_a_module_fails() {
    // print.rs already imports parse.rs.
    let found = violations(&[("src/middle/parse.rs", "use super::print::Printer;\n")]);
    assert_eq!(
        located(&found),
        [(Rule::FileCircle, "src/middle/parse.rs", 0)],
        "{}",
        listed(&found)
    );
    let text = &found[0].message;
    assert!(
        text.contains("files of `middle` import each other in a circle"),
        "{text}"
    );
    assert!(
        text.contains("src/middle/parse.rs:1 → src/middle/print.rs"),
        "{text}"
    );
    assert!(
        text.contains("src/middle/print.rs:1 → src/middle/parse.rs"),
        "{text}"
    );
}

/// The grammar's circle passes only because its folder is allowed one.
#[test]
fn a_file_circle_passes_only_where_allowed() {
    let found = violations_with(
        &[],
        &Rules {
            local_circles: &[],
            ..FIXTURE_RULES
        },
    );
    assert_eq!(
        located(&found),
        [(Rule::FileCircle, "src/middle/grammar/list.rs", 0)],
        "{}",
        listed(&found)
    );
}

/// Re-exporting a child's item is no use of it, but calling into it is.
#[test]
fn a_parent_using_a_child_that_uses_it_is_a_circle() {
    let face =
        fs::read_to_string(super::repository().join("tests/layering-fixture/src/middle/mod.rs"))
            .unwrap();
    let user = format!("{face}\npub fn again() -> Token {{\n    parse::read()\n}}\n");
    let found = violations(&[("src/middle/mod.rs", &user)]);
    assert_eq!(
        located(&found),
        [(Rule::FileCircle, "src/middle/mod.rs", 0)],
        "{}",
        listed(&found)
    );
    assert!(found[0]
        .message
        .contains("src/middle/parse.rs:1 → src/middle/mod.rs"));
}

#[test]
fn every_violation_is_listed_at_once() {
    let found = violations(&[
        (
            "src/base.rs",
            "use crate::top::Thing;\nuse crate::middle::read;\n",
        ),
        ("plugins/kind/two.rs", "use super::one::make;\n"),
        ("src/extra.rs", ""),
    ]);
    let expected = [
        (Rule::PluginToPlugin, "plugins/kind/two.rs", 1),
        (Rule::Backward, "src/base.rs", 1),
        (Rule::Backward, "src/base.rs", 2),
        (Rule::Order, "src/extra.rs", 0),
    ];
    assert_eq!(located(&found), expected, "{}", listed(&found));
}
