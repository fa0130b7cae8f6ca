//! The example plugin crate's own binary, run as a user would: the sampler it registers is
//! listed, validated and run from a YAML file (std only, like the crate's dependencies).

use std::path::PathBuf;
use std::process::Command;

fn external_runner(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_external-runner"))
        .args(args)
        .output()
        .expect("run external-runner");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fresh folder under the system temp dir, unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("external-plugin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// Splits one CSV line, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

const EXPERIMENT: &str = r#"
num_samples: 300
data: {kind: gmm, means: [[-3.0, 0.0], [3.0, 0.0]], stds: [0.3, 0.3], weights: [0.5, 0.5]}
schedule: {kind: geometric, num_levels: 6, sigma_max: 8.0, sigma_min: 0.05}
weighting: sigma_squared
network: oracle
sampler: {kind: iterated_denoiser}
eval: [mode_weights]
"#;

#[test]
fn plugins_lists_the_external_sampler_with_its_default() {
    let (code, stdout, stderr) = external_runner(&["plugins", "sampler"]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("iterated_denoiser"))
        .unwrap_or_else(|| panic!("iterated_denoiser not listed:\n{stdout}"));
    assert!(
        line.contains("Tweedie's denoised mean at every level"),
        "{line}"
    );
    assert!(
        stdout.contains("annealed_langevin"),
        "built-in samplers are still there"
    );
    let stride = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("stride"))
        .expect("stride parameter listed");
    assert!(
        stride.contains("usize") && stride.contains("default 1"),
        "{stride}"
    );
}

#[test]
fn a_sweep_runs_the_external_sampler_with_one_nfe_per_level_used() {
    let dir = scratch("sweep");
    let file = dir.join("external.yaml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let results = dir.join("results");
    let (code, _, stderr) = external_runner(&[
        "sweep",
        file.to_str().unwrap(),
        "sampler.stride=1,2,4",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let table = std::fs::read_to_string(results.join("external").join("metrics.csv"))
        .expect("metrics.csv written");
    let mut lines = table.lines();
    let header = csv_fields(lines.next().expect("header"));
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no `{name}` column in {header:?}"))
    };
    let (stride, nfe) = (column("sampler.stride"), column("nfe"));
    let mut seen: Vec<(usize, usize)> = lines
        .map(csv_fields)
        .map(|row| {
            let stride: f64 = row[stride].parse().expect("stride is a number");
            (stride as usize, row[nfe].parse().expect("nfe is a count"))
        })
        .collect();
    seen.sort();
    // 6 levels; every `stride`-th from the largest, one score evaluation each.
    assert_eq!(seen, vec![(1, 6), (2, 3), (4, 2)], "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_external_sampler_gets_the_same_errors_as_built_in_ones() {
    let dir = scratch("errors");
    let file = dir.join("external.yaml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let file = file.to_str().unwrap();

    let (code, _, stderr) = external_runner(&["sweep", file, "sampler.stride=0", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("key `sampler.stride`: must be at least 1"),
        "{stderr}"
    );

    let (code, _, stderr) = external_runner(&["sweep", file, "sampler.strid=2", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("did you mean `stride`?"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
