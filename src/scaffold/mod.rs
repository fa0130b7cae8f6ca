//! `runner new-plugin KIND NAME [DIR]`: writes a plugin crate of one's own, ready to build.
//!
//! A crate made by hand (`cargo new`, a path dependency on scorelab) resolves a lock file of
//! its own and takes Cargo's default release profile, so its first build compiles every
//! dependency again in other versions and settings (23 min on 2 cores). This one gets
//! scorelab's Cargo.lock and `[profile.*]` sections and, for a checkout, builds into its
//! target/ folder (`.cargo/config.toml`), so it reuses every compiled dependency. Beside them:
//! one plugin file of the kind from a template that compiles, a `main` that runs scorelab's
//! command line with the plugin registered, an experiment that uses it and a test that runs
//! that experiment.
//!
//! The folder is written whole or not at all: the files go to a temporary folder beside it,
//! renamed into place at the end.

pub mod templates;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::registry::{self, Kind};

/// Where the new crate gets scorelab from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A scorelab checkout on this machine (absolute).
    Path(PathBuf),
    /// A git repository, at a revision when one is given.
    Git { url: String, rev: Option<String> },
}

/// What `runner new-plugin` was asked for, as typed.
pub struct Request<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    /// Default: `./NAME`.
    pub dir: Option<&'a Path>,
    pub scorelab_path: Option<&'a Path>,
    pub git: Option<&'a str>,
    pub rev: Option<&'a str>,
}

/// What was written.
pub struct Created {
    pub dir: PathBuf,
    pub kind: Kind,
    pub name: String,
    pub source: Source,
    pub files: Vec<String>,
}

/// The checkout this runner was built from: the default source of the new crate.
const BUILT_FROM: &str = env!("CARGO_MANIFEST_DIR");
/// scorelab's lock file and manifest as this runner was built, for a git source (or a
/// checkout without them).
const LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
const MANIFEST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));

/// Checks the request and writes the crate.
pub fn create(request: &Request) -> Result<Created, String> {
    let kind = parse_kind(request.kind)?;
    check_name(kind, request.name)?;
    let dir = request
        .dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(request.name));
    check_dir(&dir)?;
    let source = source(request)?;
    let (lock, manifest) = project_files(&source);
    let files = files(kind, request.name, &source, &lock, &manifest)?;
    write_all(&dir, &files)?;
    Ok(Created {
        dir,
        kind,
        name: request.name.to_string(),
        source,
        files: files.into_iter().map(|(path, _)| path).collect(),
    })
}

fn parse_kind(word: &str) -> Result<Kind, String> {
    Kind::parse(word).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!(
            "unknown plugin kind `{word}`. Fix: use one of {}",
            names.join(", ")
        )
    })
}

/// Rust's keywords, the names the crate's own modules and dependencies take, and scorelab's
/// binaries (the crate's binary shares their folder).
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "main",
    "std",
    "core",
    "alloc",
    "test",
    "proc_macro",
    "scorelab",
    "candle_core",
    "candle_nn",
    "inventory",
];

/// A plugin name is a lowercase Rust identifier (it names the plugin, its module, its crate
/// and its binary) that no plugin of its kind has yet.
fn check_name(kind: Kind, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts || !rest {
        let suggestion: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        return Err(format!(
            "the plugin name `{name}` is not a lowercase identifier (it names the plugin, its \
             module and its crate). Fix: use letters a-z, digits and `_`, starting with a \
             letter, e.g. `my_{suggestion}`",
            suggestion = suggestion.trim_start_matches(|c: char| !c.is_ascii_lowercase())
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "the plugin name `{name}` is a Rust keyword or a name the crate already uses. \
             Fix: choose another, e.g. `my_{name}`"
        ));
    }
    if registry::names(kind).contains(&name) {
        return Err(format!(
            "a {kind} named `{name}` is registered already (two plugins of one kind cannot \
             share a name). Fix: choose another, e.g. `my_{name}`"
        ));
    }
    Ok(())
}

fn check_dir(dir: &Path) -> Result<(), String> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        if dir.exists() {
            return Err(format!(
                "{} exists and is not a folder. Fix: name a new folder as DIR",
                dir.display()
            ));
        }
        return Ok(());
    };
    if entries.next().is_some() {
        return Err(format!(
            "{} is not empty; nothing was written. Fix: name a new or empty folder as DIR",
            dir.display()
        ));
    }
    Ok(())
}

/// The source asked for, or this runner's checkout.
fn source(request: &Request) -> Result<Source, String> {
    if let Some(url) = request.git {
        return Ok(Source::Git {
            url: url.to_string(),
            rev: request.rev.map(str::to_string),
        });
    }
    let (path, asked) = match request.scorelab_path {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from(BUILT_FROM), false),
    };
    let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap_or_default();
    if !manifest.lines().any(|l| l.trim() == "name = \"scorelab\"") {
        let why = if asked {
            format!("{} holds no scorelab Cargo.toml", path.display())
        } else {
            format!(
                "this runner was built from {}, which holds no scorelab checkout any more",
                path.display()
            )
        };
        return Err(format!(
            "{why}. Fix: pass --scorelab-path PATH (a scorelab checkout) or --git URL"
        ));
    }
    let path = std::path::absolute(&path)
        .map_err(|e| format!("cannot make {} absolute: {e}", path.display()))?;
    Ok(Source::Path(path))
}

/// scorelab's Cargo.lock and Cargo.toml: a checkout's own, else those this runner was built
/// with.
fn project_files(source: &Source) -> (String, String) {
    let read = |file: &str| match source {
        Source::Path(path) => std::fs::read_to_string(path.join(file)).ok(),
        Source::Git { .. } => None,
    };
    (
        read("Cargo.lock").unwrap_or_else(|| LOCK.to_string()),
        read("Cargo.toml").unwrap_or_else(|| MANIFEST.to_string()),
    )
}

/// Every file of the crate, by its path in the crate.
fn files(
    kind: Kind,
    name: &str,
    source: &Source,
    lock: &str,
    manifest: &str,
) -> Result<Vec<(String, String)>, String> {
    let template = templates::for_kind(kind);
    let mut dependencies = match source {
        Source::Path(path) => format!("scorelab = {{ path = {} }}\n", toml_string(path)?),
        Source::Git { url, rev: None } => format!("scorelab = {{ git = \"{url}\" }}\n"),
        Source::Git {
            url,
            rev: Some(rev),
        } => {
            format!("scorelab = {{ git = \"{url}\", rev = \"{rev}\" }}\n")
        }
    };
    let mut crates = vec!["candle-core", "inventory"];
    if template.needs_candle_nn {
        crates.insert(1, "candle-nn");
    }
    for krate in crates {
        let line = templates::dependency_line(manifest, krate)
            .or_else(|| templates::dependency_line(MANIFEST, krate))
            .ok_or_else(|| format!("scorelab's Cargo.toml does not depend on {krate}"))?;
        let _ = writeln!(dependencies, "{line}");
    }
    let profiles = templates::profiles(manifest);
    let profiles = match profiles.is_empty() {
        true => String::new(),
        false => format!("\n# scorelab's own profiles (its Cargo.toml).\n{profiles}"),
    };
    let cargo_toml = templates::CARGO_TOML
        .replace("__DEPENDENCIES__\n", &dependencies)
        .replace("__PROFILES__\n", &profiles);
    let render = |text: &str| templates::render(text, kind, name);
    let mut files = vec![
        ("Cargo.toml".into(), render(&cargo_toml)),
        ("Cargo.lock".into(), lock.to_string()),
        (".gitignore".into(), "/target\n".to_string()),
        ("src/main.rs".into(), render(templates::MAIN)),
        (format!("src/{name}.rs"), render(template.plugin)),
        (
            format!("experiments/{name}.yaml"),
            render(&templates::experiment(kind)),
        ),
        (format!("tests/{name}.rs"), render(templates::TEST)),
    ];
    if let Source::Path(path) = source {
        // The checkout's target/: with the same lock and profiles, nothing is compiled twice.
        let config = format!(
            "# Builds go to scorelab's target/ folder, which holds every dependency compiled \
             with the\n# same versions and profile (CARGO_TARGET_DIR wins over it; delete this \
             file for a\n# target/ of the crate's own).\n[build]\ntarget-dir = {}\n",
            toml_string(&path.join("target"))?
        );
        files.push((".cargo/config.toml".into(), config));
    }
    Ok(files)
}

/// A path as a TOML string (basic string, escaped).
fn toml_string(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or_else(|| {
        format!(
            "the path {} is not UTF-8, which Cargo.toml cannot hold. Fix: move the checkout",
            path.display()
        )
    })?;
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Writes the files into a temporary folder beside `dir`, then renames it to `dir`.
fn write_all(dir: &Path, files: &[(String, String)]) -> Result<(), String> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create the folder {}: {e}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".new-plugin-")
        .tempdir_in(&parent)
        .map_err(|e| format!("cannot write in {}: {e}", parent.display()))?;
    for (path, text) in files {
        let target = staging.path().join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        std::fs::write(&target, text)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    if dir.exists() {
        // Empty (checked before): the rename needs it gone.
        std::fs::remove_dir(dir).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        format!("cannot move the new crate to {}: {e}", dir.display())
    })
}

/// What `runner new-plugin` prints: the files and the next steps.
pub fn summary(created: &Created) -> String {
    let dir = created.dir.display();
    let mut text = format!(
        "wrote {dir}/, a crate with the {} plugin `{}`:\n",
        created.kind, created.name
    );
    for file in &created.files {
        let _ = writeln!(text, "  {file}");
    }
    let from = match &created.source {
        Source::Path(path) => format!("scorelab at {}", path.display()),
        Source::Git { url, .. } => format!("scorelab from {url}"),
    };
    let shared = match &created.source {
        Source::Path(path) => format!(
            ", and builds into {} (.cargo/config.toml), so its first build reuses every \
             dependency compiled there",
            path.join("target").display()
        ),
        Source::Git { .. } => String::new(),
    };
    let _ = writeln!(
        text,
        "It depends on {from}, with scorelab's Cargo.lock and release profile{shared}.\n\
         Next: cd {dir} && cargo test --release; cargo run --release -- sweep experiments/{}.yaml",
        created.name
    );
    text
}
