//! The layering rules applied to one source tree (this repository's, or a fixture's): every
//! file of `src/` and `plugins/` read, each path it names resolved from the crate root, and
//! every broken rule reported at the line that breaks it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use super::scan::{scan, FileScan, WrittenPath};

/// The rules a tree is held to.
pub struct Rules<'a> {
    /// Every module of `src/`, lowest first: each may import only the modules before it.
    pub order: &'a [&'a str],
    /// The highest module in `order` that a plugin may import.
    pub plugin_ceiling: &'a str,
    /// Folders (from the root, ending in `/`) whose files may import each other in a circle.
    pub local_circles: &'a [&'a str],
}

/// One broken rule, at the line that breaks it (line 0: the file or folder as a whole).
#[derive(Debug)]
pub struct Violation {
    pub rule: Rule,
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// A module of `src/` missing from the order, or the order naming no module (or one twice).
    Order,
    /// A module importing one after it in the order.
    Backward,
    /// The engine naming a concrete plugin.
    NamesPlugin,
    /// A plugin importing a module above the plugins' ceiling.
    PluginCeiling,
    /// A plugin importing another plugin.
    PluginToPlugin,
    /// Files of one module importing each other in a circle.
    FileCircle,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

/// Every violation of `rules` under `root` (which holds `src/` and, if any, `plugins/`),
/// sorted by file and line.
pub fn check(root: &Path, rules: &Rules) -> Vec<Violation> {
    let tree = Tree::read(root);
    let mut violations = order_gaps(&tree, rules);
    for file in &tree.files {
        violations.extend(module_imports(&tree, file, rules));
    }
    violations.extend(file_circles(&tree, rules));
    violations.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    violations
}

struct SourceFile {
    /// From the root, with `/`: `src/run/models.rs`.
    relative: String,
    /// Its path from the crate root: `["run", "models"]`, `["plugins", "guidance", "cfg"]`.
    module_path: Vec<String>,
    scan: FileScan,
}

impl SourceFile {
    fn is_plugin(&self) -> bool {
        self.module_path[0] == "plugins"
    }
}

struct Tree {
    files: Vec<SourceFile>,
    /// The modules of `src/`: each file or folder directly under it.
    modules: BTreeSet<String>,
    /// `#[macro_export]` macros (reached as `crate::name!`) and the module defining each.
    macros: BTreeMap<String, String>,
}

impl Tree {
    fn read(root: &Path) -> Tree {
        let mut relative_paths = Vec::new();
        for top in ["src", "plugins"] {
            rust_files(root, top, &mut relative_paths);
        }
        // lib.rs only declares the modules; main.rs and the bench binary may import anything.
        let exempt =
            |r: &str| matches!(r, "src/lib.rs" | "src/main.rs") || r.starts_with("src/bin/");
        let files: Vec<SourceFile> = relative_paths
            .into_iter()
            .filter(|r| !exempt(r))
            .map(|relative| {
                let source = fs::read_to_string(root.join(&relative)).expect("read a source file");
                SourceFile {
                    module_path: module_path(&relative),
                    scan: scan(&source),
                    relative,
                }
            })
            .collect();
        let modules = files
            .iter()
            .filter(|f| !f.is_plugin())
            .map(|f| f.module_path[0].clone())
            .collect();
        let macros = files
            .iter()
            .filter(|f| !f.is_plugin())
            .flat_map(|f| {
                f.scan
                    .exported_macros
                    .iter()
                    .map(|m| (m.clone(), f.module_path[0].clone()))
            })
            .collect();
        Tree {
            files,
            modules,
            macros,
        }
    }

    /// `src/latent.rs` for a file module, `src/train/` for a folder.
    fn place_of(&self, module: &str) -> String {
        let file = format!("src/{module}.rs");
        match self.files.iter().any(|f| f.relative == file) {
            true => file,
            false => format!("src/{module}/"),
        }
    }

    /// The module of `src/` a path from the crate root lands in, if any.
    fn module_of(&self, from_root: &[String]) -> Option<&String> {
        let first = from_root.first()?;
        self.modules.get(first).or_else(|| self.macros.get(first))
    }

    /// The file a path from the crate root lands in: the longest prefix that is a file's module.
    fn file_of(&self, from_root: &[String]) -> Option<&SourceFile> {
        (1..=from_root.len())
            .rev()
            .find_map(|k| self.files.iter().find(|f| f.module_path == from_root[..k]))
    }
}

/// Every `.rs` file under `root/top`, as paths from `root` with `/`, sorted.
fn rust_files(root: &Path, top: &str, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(root.join(top)) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let relative = format!("{top}/{name}");
        if root.join(&relative).is_dir() {
            rust_files(root, &relative, found);
        } else if name.ends_with(".rs") {
            found.push(relative);
        }
    }
}

/// `src/run/mod.rs` → `run`; `src/nn/fused/expf.rs` → `nn::fused::expf`;
/// `plugins/guidance/cfg.rs` → `plugins::guidance::cfg` (build.rs mounts them there).
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts[0] == "src" {
        parts.remove(0);
    }
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// A written path from the crate root: `crate::`/`scorelab::` start there, `self::` and a
/// declared child at the file's module (or the inline module around the path), and each
/// `super::` climbs one level (`super` in `src/latent.rs` is the crate root). `None` for a
/// path that climbs above the root.
fn resolve(module_path: &[String], path: &WrittenPath) -> Option<Vec<String>> {
    let mut segments = path.segments.iter().peekable();
    let mut resolved: Vec<String> = match segments.peek().map(|s| s.as_str()) {
        Some("crate" | "scorelab") => {
            segments.next();
            Vec::new()
        }
        _ => module_path
            .iter()
            .chain(&path.inline_modules)
            .cloned()
            .collect(),
    };
    for segment in segments {
        match segment.as_str() {
            "super" => {
                resolved.pop()?;
            }
            "self" | "*" => {}
            _ => resolved.push(segment.clone()),
        }
    }
    Some(resolved)
}

fn position(rules: &Rules, module: &str) -> Option<usize> {
    rules.order.iter().position(|m| *m == module).map(|p| p + 1)
}

/// Modules of `src/` missing from the order, and names in the order that are not modules.
fn order_gaps(tree: &Tree, rules: &Rules) -> Vec<Violation> {
    let listed: BTreeSet<String> = rules.order.iter().map(|m| m.to_string()).collect();
    let missing = tree.modules.difference(&listed).map(|module| Violation {
        rule: Rule::Order,
        file: tree.place_of(module),
        line: 0,
        message: format!(
            "module `{module}` is not in the layer order. Fix: add it to ORDER in \
             tests/it/layering/mod.rs and to the layer list in README.md's Layout section, \
             after the modules it imports and before those that import it"
        ),
    });
    let stale = listed.difference(&tree.modules).map(|module| Violation {
        rule: Rule::Order,
        file: "tests/it/layering/mod.rs".to_string(),
        line: 0,
        message: format!(
            "`{module}` is in the layer order but is no module of src/. Fix: remove it from \
             ORDER and from README.md's Layout section"
        ),
    });
    let repeated = rules
        .order
        .iter()
        .enumerate()
        .filter(|(i, m)| rules.order[..*i].contains(m));
    let repeated = repeated.map(|(_, module)| Violation {
        rule: Rule::Order,
        file: "tests/it/layering/mod.rs".to_string(),
        line: 0,
        message: format!("`{module}` is in the layer order twice. Fix: keep one"),
    });
    missing.chain(stale).chain(repeated).collect()
}

/// The imports of one file that break the order (an engine file) or the plugin rules.
fn module_imports(tree: &Tree, file: &SourceFile, rules: &Rules) -> Vec<Violation> {
    let mut seen = BTreeSet::new();
    let mut violations = Vec::new();
    for path in &file.scan.paths {
        let Some(from_root) = resolve(&file.module_path, path) else {
            continue;
        };
        let broken = if file.is_plugin() {
            plugin_rule(tree, file, &from_root, rules)
        } else {
            engine_rule(tree, file, &from_root, rules)
        };
        let Some((rule, imported, message)) = broken else {
            continue;
        };
        // One report per imported name and line: `use crate::train::{a, b}` breaks one rule.
        if seen.insert((path.line, imported)) {
            violations.push(Violation {
                rule,
                file: file.relative.clone(),
                line: path.line,
                message: format!("`{}`: {message}", written(path)),
            });
        }
    }
    violations
}

/// The path as written, without a closing `self` (`use super::noisy::{self, …}`).
fn written(path: &WrittenPath) -> String {
    let segments = path
        .segments
        .strip_suffix(&["self".to_string()])
        .unwrap_or(&path.segments);
    segments.join("::")
}

/// For an engine file: the imported module and the rule it breaks, if it breaks one.
fn engine_rule(
    tree: &Tree,
    file: &SourceFile,
    from_root: &[String],
    rules: &Rules,
) -> Option<(Rule, String, String)> {
    let own = &file.module_path[0];
    if from_root.first().is_some_and(|m| m == "plugins") {
        let message = format!(
            "`{own}` names a concrete plugin; the engine finds plugins only through the \
             registry. Fix: ask the registry by kind and name, or move the item into the engine"
        );
        return Some((Rule::NamesPlugin, "plugins".to_string(), message));
    }
    let imported = tree.module_of(from_root)?;
    let (own_layer, imported_layer) = (position(rules, own)?, position(rules, imported)?);
    (imported_layer > own_layer).then(|| {
        let message = format!(
            "`{own}` (layer {own_layer}) may not import `{imported}` (layer {imported_layer}): \
             a module imports only modules before it in the order. Fix: move the item down to \
             `{own}` or below, or invert the dependency (`{imported}` passes it in)"
        );
        (Rule::Backward, imported.clone(), message)
    })
}

/// For a plugin file: the imported module or plugin and the rule it breaks, if it breaks one.
fn plugin_rule(
    tree: &Tree,
    file: &SourceFile,
    from_root: &[String],
    rules: &Rules,
) -> Option<(Rule, String, String)> {
    let own = file.module_path[1..].join("/");
    if from_root.first().is_some_and(|m| m == "plugins") {
        if from_root.get(..3) == file.module_path.get(..3) {
            return None;
        }
        let other = from_root[1..from_root.len().min(3)].join("/");
        let message = format!(
            "plugin `{own}` imports plugin `{other}`: plugins never import each other. Fix: \
             move what they share into the engine (a contract module or nn/), or into the one \
             plugin that uses it"
        );
        return Some((Rule::PluginToPlugin, other, message));
    }
    let imported = tree.module_of(from_root)?;
    let (ceiling, imported_layer) = (
        position(rules, rules.plugin_ceiling)?,
        position(rules, imported)?,
    );
    (imported_layer > ceiling).then(|| {
        let message = format!(
            "plugin `{own}` may not import `{imported}` (layer {imported_layer}): plugins import \
             only `{}` (layer {ceiling}) and the modules before it. Fix: move the item into a \
             module plugins may import, or have the engine pass it in",
            rules.plugin_ceiling
        );
        (Rule::PluginCeiling, imported.clone(), message)
    })
}

/// Circles between files of one module of `src/`, outside the folders allowed to have them.
fn file_circles(tree: &Tree, rules: &Rules) -> Vec<Violation> {
    // Each file → the files of its own module it imports, with the first line doing so.
    let mut edges: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for file in tree.files.iter().filter(|f| !f.is_plugin()) {
        for path in &file.scan.paths {
            let Some(from_root) = resolve(&file.module_path, path) else {
                continue;
            };
            let Some(target) = tree.file_of(&from_root) else {
                continue;
            };
            // A file re-exporting its children's items is their face, not their user.
            let shows_child = path.reexport && target.module_path.starts_with(&file.module_path);
            if target.module_path[0] == file.module_path[0]
                && target.relative != file.relative
                && !shows_child
            {
                let lines = edges.entry(&file.relative).or_default();
                lines.entry(&target.relative).or_insert(path.line);
            }
        }
    }
    let mut circles: BTreeSet<Vec<&str>> = BTreeSet::new();
    for &file in edges.keys() {
        let reached = reachable(&edges, file);
        let circle: Vec<&str> = reached
            .iter()
            .copied()
            .filter(|&other| reachable(&edges, other).contains(file))
            .collect();
        if circle.len() > 1 {
            circles.insert(circle);
        }
    }
    circles
        .into_iter()
        .filter(|circle| {
            !rules
                .local_circles
                .iter()
                .any(|folder| circle.iter().all(|f| f.starts_with(folder)))
        })
        .map(|circle| circle_violation(&edges, &circle, rules))
        .collect()
}

/// Every file reachable from `start` (itself included) along import edges.
fn reachable<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, usize>>,
    start: &'a str,
) -> BTreeSet<&'a str> {
    let mut reached = BTreeSet::from([start]);
    let mut queue = vec![start];
    while let Some(file) = queue.pop() {
        for &next in edges
            .get(file)
            .into_iter()
            .flat_map(|targets| targets.keys())
        {
            if reached.insert(next) {
                queue.push(next);
            }
        }
    }
    reached
}

fn circle_violation(
    edges: &BTreeMap<&str, BTreeMap<&str, usize>>,
    circle: &[&str],
    rules: &Rules,
) -> Violation {
    let steps: Vec<String> = circle
        .iter()
        .flat_map(|&from| {
            let targets = edges.get(from).into_iter().flat_map(|t| t.iter());
            targets
                .filter(|(to, _)| circle.contains(to))
                .map(move |(to, line)| format!("{from}:{line} → {to}"))
        })
        .collect();
    let module = module_path(circle[0])[0].clone();
    let allowed = match rules.local_circles {
        [] => "no folder may have one".to_string(),
        folders => format!("circles are allowed only inside {}", folders.join(", ")),
    };
    Violation {
        rule: Rule::FileCircle,
        file: circle[0].to_string(),
        line: 0,
        message: format!(
            "files of `{module}` import each other in a circle: {}. Fix: move what they share \
             into one file that the others import, so imports run one way ({allowed})",
            steps.join(", "),
        ),
    }
}
