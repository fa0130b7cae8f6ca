//! `runner new-plugin KIND NAME [DIR]`: the crate it writes for every kind, and what it
//! refuses. Building and testing the crates needs a cargo of its own (a nested cargo here
//! would wait on this build's lock), so scripts/new-plugin-check.sh, which CI runs after the
//! tests, builds the sampler crate as written and every kind's plugin.

use std::path::Path;

use scorelab::registry::Kind;
use scorelab::scaffold::templates;

use crate::common::runner;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_kind_gets_a_crate_with_scorelabs_lock_profile_and_its_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = read(&root().join("Cargo.toml"));
    for kind in Kind::ALL {
        let name = format!("my_{}", kind.name());
        let crate_dir = dir.path().join(&name);
        let (code, stdout, stderr) = runner(&[
            "new-plugin",
            kind.name(),
            &name,
            crate_dir.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(&format!("src/{name}.rs")), "{stdout}");
        assert_eq!(
            read(&crate_dir.join("Cargo.lock")),
            read(&root().join("Cargo.lock")),
            "scorelab's lock file, as is"
        );
        let toml = read(&crate_dir.join("Cargo.toml"));
        let path = format!("scorelab = {{ path = \"{}\" }}", root().display());
        assert!(toml.contains(&path), "{toml}");
        assert!(toml.contains(&templates::profiles(&manifest)), "{toml}");
        assert!(toml.contains(&format!("name = \"{name}\"")), "{toml}");
        assert_eq!(
            read(&crate_dir.join(format!("src/{name}.rs"))),
            templates::render(templates::for_kind(kind).plugin, kind, &name)
        );
        let config = read(&crate_dir.join(".cargo/config.toml"));
        let target = format!("target-dir = \"{}/target\"", root().display());
        assert!(config.contains(&target), "{config}");
        let main = read(&crate_dir.join("src/main.rs"));
        assert!(main.contains(&format!("\nmod {name};\n")), "{main}");
        let experiment = read(&crate_dir.join(format!("experiments/{name}.yaml")));
        let uses = experiment.lines().filter(|l| !l.starts_with('#'));
        assert_eq!(
            uses.filter(|l| l.contains(&name)).count(),
            1,
            "{experiment}"
        );
        let test = read(&crate_dir.join(format!("tests/{name}.rs")));
        assert!(test.contains(&format!("CARGO_BIN_EXE_{name}")));
        for text in [&toml, &main, &experiment, &test] {
            assert!(!text.contains("__"), "a placeholder left in\n{text}");
        }
    }
}

#[test]
fn the_experiment_of_every_kind_resolves_with_a_built_in_stand_in() {
    // The plugin itself is only in the generated crate; a built-in plugin of the same kind
    // stands in for it, so the rest of each experiment is checked here.
    let stand_ins = [
        (Kind::Dataset, "moons"),
        (Kind::Schedule, "ve"),
        (Kind::Weighting, "uniform"),
        (Kind::Network, "mlp"),
        (Kind::Sampler, "euler"),
        (Kind::Metric, "mmd"),
        (Kind::Features, "raw"),
        (Kind::Guidance, "none"),
        (Kind::Latent, "mlp_vae"),
        (Kind::Predictor, "euler_maruyama"),
        (Kind::Corrector, "langevin"),
    ];
    for (kind, built_in) in stand_ins {
        let text = templates::render(&templates::experiment(kind), kind, built_in);
        // The template guidance's own parameter, which `none` has not.
        let text = text.replace(", scale: 1.5", "");
        let trials = crate::common::resolve(&text, &[])
            .unwrap_or_else(|e| panic!("{kind} experiment:\n{text}\n{e}"));
        assert_eq!(trials.len(), 1, "{kind}");
    }
}

#[test]
fn bad_kind_name_or_folder_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (code, _, stderr) = runner(&["new-plugin", "solver", "my_solver", &at("a")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "unknown plugin kind `solver`. Fix: use one of dataset, schedule, \
             weighting, network, sampler, metric, features, guidance, latent, predictor, corrector"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = runner(&["new-plugin", "sampler", "My-Sampler", &at("b")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("`My-Sampler` is not a lowercase identifier")
            && stderr.contains("e.g. `my_my_sampler`"),
        "{stderr}"
    );
    let (code, _, stderr) = runner(&["new-plugin", "sampler", "struct", &at("c")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is a Rust keyword"), "{stderr}");
    let (code, _, stderr) = runner(&["new-plugin", "sampler", "heun", &at("d")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("a sampler named `heun` is registered already")
            && stderr.contains("e.g. `my_heun`"),
        "{stderr}"
    );
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let (code, _, stderr) = runner(&["new-plugin", "sampler", "mine", taken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is not empty; nothing was written. Fix: name a new or empty folder"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&taken).unwrap().count(),
        1,
        "left as it was"
    );
    for refused in ["a", "b", "c", "d"] {
        assert!(!dir.path().join(refused).exists(), "{refused} written");
    }
    // Nothing half-written beside the folders either.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn an_empty_folder_is_filled_and_git_or_another_checkout_can_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let url = "https://example.org/scorelab.git";
    let (code, _, stderr) = runner(&[
        "new-plugin",
        "metric",
        "my_score",
        empty.to_str().unwrap(),
        "--git",
        url,
        "--rev",
        "v1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let toml = read(&empty.join("Cargo.toml"));
    assert!(
        toml.contains(&format!("scorelab = {{ git = \"{url}\", rev = \"v1\" }}")),
        "{toml}"
    );
    // No checkout to share a target/ with.
    assert!(!empty.join(".cargo").exists());
    // The lock this runner was built with.
    assert_eq!(
        read(&empty.join("Cargo.lock")),
        read(&root().join("Cargo.lock"))
    );

    let nowhere = dir.path().join("nowhere");
    let (code, _, stderr) = runner(&[
        "new-plugin",
        "metric",
        "my_score",
        dir.path().join("x").to_str().unwrap(),
        "--scorelab-path",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("holds no scorelab Cargo.toml")
            && stderr.contains("Fix: pass --scorelab-path PATH (a scorelab checkout) or --git URL"),
        "{stderr}"
    );
}

#[test]
fn names_are_camel_cased_for_types_and_profiles_are_read_whole() {
    assert_eq!(templates::camel_case("my_sampler"), "MySampler");
    assert_eq!(templates::camel_case("ddim2_fast"), "Ddim2Fast");
    let manifest = "[package]\nname = \"x\"\n\n[profile.release]\ndebug = 1\n\n\
                    [dependencies]\na = \"1\"\n[profile.dev]\nopt-level = 1\n";
    assert_eq!(
        templates::profiles(manifest),
        "[profile.release]\ndebug = 1\n\n[profile.dev]\nopt-level = 1\n"
    );
    assert_eq!(templates::dependency_line(manifest, "a"), Some("a = \"1\""));
}

#[test]
fn the_sampler_template_is_the_readmes_plugin_renamed() {
    // README's plugin block is examples/external-plugin's plugin (tests/it/external_sampler.rs).
    let example = read(&root().join("examples/external-plugin/src/main.rs"));
    let (plugin, _) = example
        .split_once("// --- end of the README example ---\n")
        .expect("marker line in examples/external-plugin/src/main.rs");
    let rendered = templates::render(
        templates::for_kind(Kind::Sampler).plugin,
        Kind::Sampler,
        "iterated_denoiser",
    );
    assert_eq!(rendered.trim(), plugin.trim());
    let readme = read(&root().join("README.md"));
    let section = &readme[readme.find("## Adding a sampler\n").unwrap()..];
    let first_block = &section[section.find("```").unwrap()..];
    assert!(
        first_block.starts_with("```sh\nrunner new-plugin sampler my_sampler "),
        "README's Adding a sampler starts from runner new-plugin"
    );
}
