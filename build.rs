//! Generates the module tree of `plugins/`: every `plugins/<kind>/<name>.rs` becomes module
//! `plugins::<kind>::<name>`, so adding a plugin is adding one file and nothing else.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    record_git_commit();
    // Read at run time: a build script compiled once may serve several checkouts.
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("plugins");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut code = String::new();
    let mut kinds: Vec<_> = fs::read_dir(&root)
        .expect("plugins/ folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    kinds.sort_by_key(|e| e.file_name());
    for kind in kinds {
        println!("cargo:rerun-if-changed={}", kind.path().display());
        let kind_name = kind.file_name().to_string_lossy().to_string();
        writeln!(code, "pub mod {kind_name} {{").unwrap();
        let mut files: Vec<_> = fs::read_dir(kind.path())
            .expect("plugin kind folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        for file in files {
            println!("cargo:rerun-if-changed={}", file.display());
            let module = file.file_stem().unwrap().to_string_lossy().to_string();
            writeln!(
                code,
                "    #[path = {:?}]\n    pub mod {module};",
                file.display().to_string()
            )
            .unwrap();
        }
        writeln!(code, "}}").unwrap();
    }
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("plugins.rs");
    fs::write(out, code).expect("write generated plugin modules");
}

/// `SCORELAB_GIT_COMMIT`: the checkout's commit at build time, or `unknown` outside a git
/// checkout; each sweep records it in `experiment.yaml`.
fn record_git_commit() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-C", &manifest])
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SCORELAB_GIT_COMMIT={commit}");
    // A new commit or checkout moves the reflog of HEAD.
    let reflog = Path::new(&manifest).join(".git/logs/HEAD");
    if reflog.exists() {
        println!("cargo:rerun-if-changed={}", reflog.display());
    }
}
