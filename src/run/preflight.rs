//! Before any training: the sweep's folder must take files, and its disk must have room for
//! what the sweep will write. A read-only, unwritable or full results folder, or a file where
//! one of the sweep's folders must be, is reported now, with the classified message of
//! [`super::error::write_error`], rather than after hours of training.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::disk::{self, bytes_text};
use super::error::{no_space, write_error, Fault, RunError};
use crate::results::SweepFolder;
use crate::trial::Trial;

/// Folders of the sweep: none may be a file, and each that exists must take a file (they are
/// created as needed later).
const FOLDERS: [&str; 5] = ["trials", "models", "plots", "tb", "features"];

/// Checks that `folder.root` (which exists) and its existing subfolders take a file (written,
/// synced and removed), that none of the sweep's folders is a file, and that the disk has
/// room for what the trials not yet finished will write.
pub(super) fn check(
    folder: &SweepFolder,
    trials: &[Trial],
    space_check: bool,
) -> Result<(), RunError> {
    probe(&folder.root)?;
    for name in FOLDERS {
        let path = folder.root.join(name);
        unlink(&path)?;
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(RunError::Write {
                    path: path.clone(),
                    message: "a file is where the sweep keeps a folder".to_string(),
                    fault: Fault::NotAFolder { file: path },
                    io: None,
                });
            }
            Ok(_) => probe(&path)?,
            _ => {}
        }
    }
    if !space_check {
        return Ok(());
    }
    let needed = disk::estimate(folder, trials);
    // Where free space cannot be asked for (or a filesystem reports no size at all, as some
    // network and FUSE ones do), the writes themselves report a full disk.
    if let Ok(stats) = fs4::statvfs(&folder.root) {
        let free = stats.available_space();
        if stats.total_space() > 0 && free < needed.total() {
            return Err(no_space(
                &folder.root,
                format!(
                    "{} free on its disk, but this sweep will write about {} ({}); if you \
                     know it fits, --no-space-check skips this estimate",
                    bytes_text(free),
                    bytes_text(needed.total()),
                    needed.describe()
                ),
            ));
        }
    }
    Ok(())
}

/// Removes a link planted where the sweep keeps one of its folders (the link only, never
/// what it points to), so that nothing is written outside the results folder through it;
/// the folder is made anew where it is needed, as a link at `trials/<id>` is replaced.
fn unlink(path: &Path) -> Result<(), RunError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::remove_file(path).map_err(|e| write_error(path, e))
        }
        _ => Ok(()),
    }
}

/// Writes, syncs and removes a small file in `dir`. Named `.tmp-…` so that a sweep killed
/// meanwhile leaves nothing the next one does not remove.
fn probe(dir: &Path) -> Result<(), RunError> {
    let path = dir.join(format!(".tmp-preflight-{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(&[b'\n'; 4096])?;
            file.sync_all()
        });
    let removed = fs::remove_file(&path);
    match (written, removed) {
        (Err(e), _) => Err(write_error(&path, e)),
        (Ok(()), Err(e)) => Err(write_error(&path, e)),
        (Ok(()), Ok(())) => Ok(()),
    }
}
