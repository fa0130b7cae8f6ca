//! A sampler defined outside `src/` and `plugins/` registers itself and runs from a YAML
//! file, exactly like a built-in one.

use candle_core::Tensor;
use scorelab::plugin::prelude::*;
use scorelab::registry::{self, Kind};

/// Jumps to Tweedie's denoised mean at every level, largest first (one NFE per level).
struct IteratedDenoiser;

impl Sampler for IteratedDenoiser {
    fn sample(
        &self,
        model: &dyn ScoreModel,
        mut x: Tensor,
        grid: &Grid,
        _rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let levels: Vec<f64> = grid.sigmas().iter().copied().filter(|s| *s > 0.0).collect();
        for (i, sigma) in levels.iter().enumerate() {
            let score = model.score(&x, &constant_sigma(*sigma, x.dim(0)?, x.device())?)?;
            x = tweedie_denoise(&x, &score, *sigma)?;
            on_step(StepInfo {
                step: i + 1,
                total: levels.len(),
                sigma: *sigma,
            });
        }
        Ok(x)
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(IteratedDenoiser), &params))
}

// Through the prelude's re-export, as a crate without its own `inventory` dependency would.
scorelab::plugin::prelude::inventory::submit! {
    Plugin { name: "test_iterated_denoiser", about: "test: Tweedie jump per level", params: NoParams::docs, build: Builder::Sampler(build) }
}

#[test]
fn an_out_of_tree_sampler_registers_and_runs_from_yaml() {
    assert!(registry::names(Kind::Sampler).contains(&"test_iterated_denoiser"));
    let yaml = r#"
num_samples: 300
data: {kind: gmm, means: [[-3.0, 0.0], [3.0, 0.0]], stds: [0.3, 0.3], weights: [0.5, 0.5]}
schedule: {kind: geometric, num_levels: 6, sigma_max: 8.0, sigma_min: 0.05}
weighting: sigma_squared
network: oracle
sampler: {kind: test_iterated_denoiser}
eval: [mode_weights]
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "external.yaml", yaml);
    let report = crate::common::sweep(&file, &[], &dir.path().join("results")).unwrap();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].nfe, 6, "one score evaluation per level");
    assert!(report.rows[0].metrics["mode_weights"].is_finite());
    let message = crate::common::resolve_error(yaml, &["sampler.kind=test_iterated_denoisr"]);
    assert!(
        message.contains("did you mean `test_iterated_denoiser`"),
        "{message}"
    );
}

/// The `rust` code blocks of the README section `heading`, in order.
fn readme_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).expect("README section");
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```rust\n")
        .skip(1)
        .map(|rest| rest[..rest.find("\n```").expect("closed block")].to_string())
        .collect()
}

#[test]
fn the_readme_plugin_example_is_the_example_crate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example =
        std::fs::read_to_string(root.join("examples/external-plugin/src/main.rs")).unwrap();
    // The plugin file, then what makes it a program; the README shows both parts.
    let (plugin, program) = example
        .split_once("// --- end of the README example ---\n")
        .expect("marker line in examples/external-plugin/src/main.rs");
    let blocks = readme_blocks(&readme, "## Adding a sampler\n");
    assert_eq!(
        blocks.len(),
        2,
        "two rust blocks in README's Adding a sampler"
    );
    assert_eq!(
        blocks[0].trim(),
        plugin.trim(),
        "README's plugin example differs from examples/external-plugin/src/main.rs"
    );
    assert_eq!(blocks[1].trim(), program.trim(), "README's main differs");
}
