//! The one store of trained artifacts (diffusion models, distillation rounds, autoencoders,
//! guidance classifiers, feature classifiers): an artifact is a folder that is either
//! complete, and then loaded, or made again. It is made into a partial folder of this
//! process and renamed into place, so a killed run never leaves a folder that looks
//! finished; if another process (a Slurm task) put the same artifact there first, its
//! folder is kept (the same config and seed give the same bytes). Within a process one
//! lock per folder makes a second user wait and load instead of training it twice. An
//! unfinished training run keeps its snapshot beside the folder, `<folder>.checkpoint.safetensors`.

mod files;

pub use files::{write_atomic, write_json, write_yaml};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One loss record of an artifact in training, for a live view: the runner streams it to
/// the TensorBoard run named after the artifact's folder.
pub struct LiveRecord<'r> {
    /// The artifact's folder name.
    pub artifact: &'r str,
    pub step: usize,
    /// Each figure by its tag (`classifier/cross_entropy`).
    pub figures: &'r [(String, f64)],
}

/// Hears each [`LiveRecord`] of what a plugin trains.
pub type OnLiveRecord<'a> = &'a mut dyn FnMut(&LiveRecord);

/// One artifact: its finished folder and the files a finished folder holds.
#[derive(Debug, Clone, Copy)]
pub struct Artifact<'a> {
    pub folder: &'a Path,
    pub files: &'a [&'a str],
}

/// A write that failed while the artifact was being put in place.
#[derive(Debug)]
pub struct PlaceError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// How an artifact was obtained.
pub enum Obtained<T> {
    /// From its complete folder.
    Loaded(T),
    /// Made now (and saved, or kept from another process that saved it first).
    Made(T),
}

impl<T> Obtained<T> {
    pub fn into_inner(self) -> T {
        match self {
            Obtained::Loaded(t) | Obtained::Made(t) => t,
        }
    }
}

impl<'a> Artifact<'a> {
    pub fn new(folder: &'a Path, files: &'a [&'a str]) -> Self {
        Artifact { folder, files }
    }

    /// The folder's name, which names the artifact (and its TensorBoard run).
    pub fn name(&self) -> String {
        self.folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// Whether the folder holds every file of a finished artifact.
    pub fn is_complete(&self) -> bool {
        self.files.iter().all(|f| self.folder.join(f).is_file())
    }

    /// Where an unfinished training run of it keeps its snapshot.
    pub fn checkpoint(&self) -> PathBuf {
        let mut name = self.folder.file_name().unwrap_or_default().to_os_string();
        name.push(".checkpoint.safetensors");
        self.folder.with_file_name(name)
    }

    /// The artifact: `load(folder)` when the folder is complete and `load` accepts it
    /// (`Ok(None)`: unusable, make it again); else `make()`, then `write(made, partial)`,
    /// which writes every file into this process's partial folder, renamed into place.
    pub fn obtain<T, E: From<PlaceError>>(
        &self,
        load: impl FnOnce(&Path) -> Result<Option<T>, E>,
        make: impl FnOnce() -> Result<T, E>,
        write: impl FnOnce(&T, &Path) -> Result<(), E>,
    ) -> Result<Obtained<T>, E> {
        let lock = folder_lock(self.folder);
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_complete() {
            if let Some(loaded) = load(self.folder)? {
                // Left when a run was killed between saving and removing it.
                let _ = fs::remove_file(self.checkpoint());
                return Ok(Obtained::Loaded(loaded));
            }
        }
        let made = make()?;
        let partial = self.partial();
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial).map_err(|error| PlaceError {
            path: partial.clone(),
            error,
        })?;
        if let Err(error) = write(&made, &partial) {
            let _ = fs::remove_dir_all(&partial);
            return Err(error);
        }
        crate::crash::point("model.save");
        self.put_in_place(&partial)?;
        crate::crash::point("model.saved");
        let _ = fs::remove_file(self.checkpoint());
        Ok(Obtained::Made(made))
    }

    /// This process's partial folder: Slurm tasks of different groups may make the same
    /// artifact (a teacher, an autoencoder several models share) at once.
    fn partial(&self) -> PathBuf {
        let name = self.folder.file_name().and_then(|n| n.to_str());
        self.folder.with_file_name(format!(
            ".partial-{}-{}",
            name.unwrap_or("artifact"),
            std::process::id()
        ))
    }

    /// Renames the finished `partial` folder into place, unless another process's complete
    /// folder is there already (the same artifact, kept).
    fn put_in_place(&self, partial: &Path) -> Result<(), PlaceError> {
        if self.is_complete() {
            let _ = fs::remove_dir_all(partial);
            return Ok(());
        }
        let _ = fs::remove_dir_all(self.folder);
        if let Err(error) = fs::rename(partial, self.folder) {
            if !self.is_complete() {
                return Err(PlaceError {
                    path: self.folder.to_path_buf(),
                    error,
                });
            }
            let _ = fs::remove_dir_all(partial);
        }
        Ok(())
    }
}

/// The lock of one artifact folder within this process: `--jobs` groups that need the same
/// artifact make it once; the others wait, then load it.
fn folder_lock(folder: &Path) -> Arc<Mutex<()>> {
    static LOCKS: Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(folder.to_path_buf()).or_default().clone()
}
