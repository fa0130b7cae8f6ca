//! The one artifact store and the one training loop, for every trained thing: a folder is
//! loaded only when complete, made once per process however many users ask at once, kept
//! when another process put it in place first; and training killed midway resumes from its
//! snapshot to the bytes of a run that was never stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use scorelab::artifact::{Artifact, Obtained, PlaceError};

const FILES: [&str; 2] = ["weights.bin", "record.json"];

/// A failure of the test's own make or write step.
#[derive(Debug)]
struct Failure(String);

impl From<PlaceError> for Failure {
    fn from(e: PlaceError) -> Self {
        Failure(e.to_string())
    }
}

/// Obtains the artifact in `folder`: loads the text of its weights, or makes `made` (counting
/// the makes in `makes`) and writes both files.
fn obtain(folder: &Path, made: &str, makes: &AtomicUsize) -> Result<Obtained<String>, Failure> {
    Artifact::new(folder, &FILES).obtain(
        |dir| Ok(fs::read_to_string(dir.join("weights.bin")).ok()),
        || {
            makes.fetch_add(1, Ordering::SeqCst);
            // Long enough for the other threads to queue on the lock.
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(made.to_string())
        },
        |made, partial| {
            for file in FILES {
                fs::write(partial.join(file), made).map_err(|e| Failure(e.to_string()))?;
            }
            Ok(())
        },
    )
}

#[test]
fn users_in_one_process_make_an_artifact_once_and_load_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models").join("a");
    let makes = AtomicUsize::new(0);
    let results: Vec<Obtained<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| obtain(&folder, "trained", &makes).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(makes.load(Ordering::SeqCst), 1, "made more than once");
    let made = results
        .iter()
        .filter(|r| matches!(r, Obtained::Made(_)))
        .count();
    assert_eq!(made, 1);
    for result in results {
        assert_eq!(result.into_inner(), "trained");
    }
    let left: Vec<_> = fs::read_dir(folder.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["a"], "no partial folder is left behind");
}

#[test]
fn an_incomplete_folder_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a");
    fs::create_dir_all(&folder).unwrap();
    // A kill between two files: only one is there.
    fs::write(folder.join("weights.bin"), "torn").unwrap();
    let makes = AtomicUsize::new(0);
    let obtained = obtain(&folder, "trained", &makes).unwrap();
    assert!(matches!(obtained, Obtained::Made(_)));
    assert_eq!(
        fs::read_to_string(folder.join("weights.bin")).unwrap(),
        "trained"
    );
    // Complete now: loaded, not made again.
    let again = obtain(&folder, "other", &makes).unwrap();
    assert!(matches!(again, Obtained::Loaded(ref text) if text == "trained"));
    assert_eq!(makes.load(Ordering::SeqCst), 1);
}

#[test]
fn another_process_folder_put_in_place_first_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a");
    let artifact = Artifact::new(&folder, &FILES);
    let obtained = artifact
        .obtain(
            |_| Ok::<_, Failure>(None),
            || {
                // Another process (a Slurm task) finishes the same artifact meanwhile.
                fs::create_dir_all(&folder).unwrap();
                for file in FILES {
                    fs::write(folder.join(file), "theirs").unwrap();
                }
                Ok("ours".to_string())
            },
            |made, partial| {
                for file in FILES {
                    fs::write(partial.join(file), made).unwrap();
                }
                Ok(())
            },
        )
        .unwrap();
    assert!(matches!(obtained, Obtained::Made(_)));
    assert_eq!(
        fs::read_to_string(folder.join("record.json")).unwrap(),
        "theirs"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "partial removed"
    );
}

#[test]
fn a_failed_make_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models").join("a");
    let result = Artifact::new(&folder, &FILES).obtain(
        |_| Ok::<Option<String>, Failure>(None),
        || Err(Failure("diverged".into())),
        |_, _| Ok(()),
    );
    assert!(matches!(result, Err(Failure(ref m)) if m == "diverged"));
    assert!(
        !dir.path().join("models").exists(),
        "no folder for a failure"
    );
}

/// Moons in a small MLP VAE's latent space; the autoencoder (60 steps) checkpoints every 20.
const LATENT: &str = r#"
seed: 3
num_samples: 200
checkpoint_every: 20
data: moons
schedule: edm
weighting: edm
network: {kind: mlp, hidden: 16, layers: 2, parameterisation: edm, sigma_data: 1.0}
train: {steps: 30, batch_size: 64, train_size: 400, log_every: 10}
sampler: {kind: heun, steps: 4}
latent: {kind: mlp_vae, latent_dim: 2, hidden: 16, steps: 60, batch_size: 64}
eval: [fd]
"#;

/// Runs the runner on `text` in `dir`, killed the `nth` time it passes `point` if given;
/// returns its stdout.
pub(crate) fn run_runner(dir: &Path, text: &str, kill_at: Option<&str>) -> String {
    let file = crate::common::write(dir, "exp.yaml", text);
    let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
    command
        .arg("sweep")
        .arg(&file)
        .arg("--results")
        .arg(dir.join("results"))
        .env_remove(scorelab::crash::VARIABLE);
    if let Some(point) = kill_at {
        command.env(scorelab::crash::VARIABLE, point);
    }
    let output = command.output().expect("start the runner");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    match kill_at {
        Some(point) => assert!(output.status.code().is_none(), "not killed at {point}"),
        None => assert!(
            output.status.success(),
            "{}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
    stdout
}

/// The one folder under `models/` whose name starts with `prefix`.
pub(crate) fn model_folder(dir: &Path, prefix: &str) -> PathBuf {
    let models = dir.join("results").join("exp").join("models");
    fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", models.display()))
}

#[test]
fn an_autoencoder_killed_mid_training_resumes_to_the_same_bytes() {
    let whole = tempfile::tempdir().unwrap();
    run_runner(whole.path(), LATENT, None);
    let killed = tempfile::tempdir().unwrap();
    // The autoencoder trains first: step 30 of its 60, after the snapshot at step 20.
    run_runner(killed.path(), LATENT, Some("train.step:30"));
    let stdout = run_runner(killed.path(), LATENT, None);
    assert!(
        stdout.contains("resuming the autoencoder") && stdout.contains("at step 20 of 60"),
        "{stdout}"
    );
    for file in ["autoencoder.safetensors", "latents.safetensors"] {
        let read = |dir: &Path| tensors(&model_folder(dir, "latent-").join(file));
        assert!(
            read(whole.path()) == read(killed.path()),
            "{file} differs after the resume"
        );
    }
    let loss = |dir: &Path| fs::read(model_folder(dir, "latent-").join("loss.csv")).unwrap();
    assert_eq!(loss(whole.path()), loss(killed.path()));
    let model = |dir: &Path| tensors(&model_folder(dir, "mlp-").join("model.safetensors"));
    assert!(
        model(whole.path()) == model(killed.path()),
        "the diffusion model differs"
    );
}

/// A tensor's name, shape and raw bytes.
pub(crate) type NamedTensor = (String, Vec<usize>, Vec<u8>);

/// A safetensors file's metadata and every tensor's name, shape and bytes, in name order
/// (the header's key order is not part of the value).
pub(crate) fn tensors(path: &Path) -> (Vec<(String, String)>, Vec<NamedTensor>) {
    let bytes = fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata: Vec<(String, String)> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    metadata.sort();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut values: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect();
    values.sort();
    (metadata, values)
}
