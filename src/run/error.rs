//! What can stop a sweep once its trials are resolved, each error naming the file, the
//! trial or the path and the fix. A failed write is classified by its cause (a full disk, a
//! read-only filesystem, missing permission, a file where a folder must be, a name too long
//! for the filesystem), because each has a different fix.

use std::any::Any;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::evaluate::EvaluateError;
use crate::train::TrainError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("{0}")]
    Registry(String),
    #[error("in {file}, trial {index} ({label}): {source}")]
    Train {
        file: String,
        index: usize,
        label: String,
        source: Box<TrainError>,
    },
    #[error("in {file}, trial {index} ({label}): {source}")]
    Evaluate {
        file: String,
        index: usize,
        label: String,
        source: Box<EvaluateError>,
    },
    #[error("in {file}, preparing the feature extractor `{extractor}`: {message}")]
    Features {
        file: String,
        extractor: String,
        message: String,
    },
    /// A write failed; `fault` is its cause as far as it can be told, and decides the fix.
    #[error("{}", write_message(.path, .fault, .message))]
    Write {
        path: PathBuf,
        /// What the failing operation said.
        message: String,
        fault: Fault,
        /// The operating system's error, when the failure came with one.
        #[source]
        io: Option<std::io::Error>,
    },
    #[error(
        "the results folder {} is in use by another sweep ({holder}). Fix: wait for that sweep \
         to finish, or write elsewhere with --results DIR; if no sweep is running there, \
         delete {}/.lock",
        .folder.display(),
        .folder.display()
    )]
    Locked { folder: PathBuf, holder: String },
    /// A stale lock (its sweep is gone) that this user may not remove.
    #[error(
        "the results folder {} has a stale lock {} (its sweep, {holder}, is no longer running), \
         but it cannot be removed: {cause} (the lock belongs to user id {owner}; the folder's \
         permissions decide who may remove it). Fix: ask that user, or whoever may write to \
         {}, to delete the lock, or write elsewhere with --results DIR",
        .path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        .path.display(),
        .path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    StaleLock {
        path: PathBuf,
        holder: String,
        owner: u32,
        cause: std::io::Error,
    },
    /// The HTML report could not be built from the sweep's folder.
    #[error("cannot write the HTML report: {message}")]
    Report { message: String },
    /// Stopped by Ctrl-C; what was finished is saved.
    #[error("interrupted: {message}")]
    Interrupted { message: String },
    #[error(
        "cannot read the checkpoint {path}: {message}. Fix: delete that model folder to retrain"
    )]
    Checkpoint { path: PathBuf, message: String },
}

impl RunError {
    /// The classified error for a failed write of `path` (what the sweep itself reports
    /// when a write fails; public so that callers and tests can build the same message).
    /// `error` is an `std::io::Error`, or any error that quotes one (`... (os error 28)`).
    pub fn from_write(path: &Path, error: impl std::fmt::Display + 'static) -> RunError {
        write_error(path, error)
    }
}

impl From<ConfigError> for RunError {
    fn from(error: ConfigError) -> Self {
        RunError::Config(Box::new(error))
    }
}

/// Why a write failed, as far as it can be told from the error and the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No space left on the device (ENOSPC).
    NoSpace,
    /// Less free space than the sweep will write (found before it starts).
    NotEnoughSpace,
    /// The user's disk quota is used up (EDQUOT).
    Quota,
    /// The filesystem is mounted read-only (EROFS).
    ReadOnly,
    /// This user may not write there (EACCES, EPERM); `folder` is the nearest existing folder.
    Permission { folder: PathBuf },
    /// `file` is not a folder, but the written path lies inside it (ENOTDIR), or a folder
    /// must be created where it is (EEXIST).
    NotAFolder { file: PathBuf },
    /// A file grew past the largest this process may write (EFBIG: `ulimit -f`, or the
    /// filesystem's maximum file size).
    FileTooLarge,
    /// `folder` is a folder where the sweep writes a file (EISDIR).
    FolderInTheWay { folder: PathBuf },
    /// `file` cannot be replaced or changed although its folder takes new files: it is
    /// immutable or append-only (`chattr +i`, `+a`), or protected by a sticky folder.
    FileProtected { file: PathBuf },
    /// A name longer than the filesystem allows (ENAMETOOLONG): `name` is the longest
    /// component of the path (or the whole path when none is over the limit), `bytes` its
    /// length.
    NameTooLong { name: String, bytes: usize },
    /// Anything else.
    Other,
}

/// The longest file name most filesystems allow (bytes; NAME_MAX on Linux).
pub const NAME_MAX: usize = 255;

/// The error for a failed write of `path`. `error` is what the operation returned: an
/// `std::io::Error` is kept and classified by its kind; any other error is classified by
/// the operating-system error it quotes (`... (os error 28)`), if any.
pub(super) fn write_error(path: &Path, error: impl std::fmt::Display + 'static) -> RunError {
    let message = error.to_string();
    let boxed: Box<dyn Any> = Box::new(error);
    let io = match boxed.downcast::<std::io::Error>() {
        Ok(io) => Some(*io),
        Err(_) => quoted_os_error(&message).map(std::io::Error::from_raw_os_error),
    };
    let fault = io
        .as_ref()
        .map_or(Fault::Other, |e| classify(path, e, &message));
    RunError::Write {
        path: path.to_path_buf(),
        message,
        fault,
        io,
    }
}

/// A write of `path` refused for lack of space before it was tried (the preflight).
pub(super) fn no_space(path: &Path, message: String) -> RunError {
    RunError::Write {
        path: path.to_path_buf(),
        message,
        fault: Fault::NotEnoughSpace,
        io: None,
    }
}

/// The `N` of the last `(os error N)` in `text`.
fn quoted_os_error(text: &str) -> Option<i32> {
    let start = text.rfind("(os error ")? + "(os error ".len();
    let rest = &text[start..];
    rest[..rest.find(')')?].parse().ok()
}

/// The cause of `error`, met writing `path` (or something inside it); `message`, the
/// failing operation's words, may name a path below `path`, such as the file whose name is
/// too long.
fn classify(path: &Path, error: &std::io::Error, message: &str) -> Fault {
    match error.kind() {
        ErrorKind::StorageFull => Fault::NoSpace,
        ErrorKind::QuotaExceeded => Fault::Quota,
        ErrorKind::ReadOnlyFilesystem => Fault::ReadOnly,
        ErrorKind::FileTooLarge => Fault::FileTooLarge,
        ErrorKind::PermissionDenied if protected_file(path) => Fault::FileProtected {
            file: path.to_path_buf(),
        },
        ErrorKind::PermissionDenied => Fault::Permission {
            folder: existing_folder(path),
        },
        ErrorKind::IsADirectory if path.is_dir() => Fault::FolderInTheWay {
            folder: path.to_path_buf(),
        },
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => match file_in_the_way(path) {
            Some(file) => Fault::NotAFolder { file },
            None => Fault::Other,
        },
        ErrorKind::InvalidFilename => {
            let (name, bytes) = longest_name(path, message);
            Fault::NameTooLong { name, bytes }
        }
        _ => Fault::Other,
    }
}

/// Whether `path` is an existing file whose folder takes new files (so the file itself, not
/// the folder, refused the write).
fn protected_file(path: &Path) -> bool {
    let (Ok(meta), Some(folder)) = (std::fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    meta.is_file() && tempfile::tempfile_in(folder).is_ok()
}

/// The nearest ancestor of `path` (or `path` itself) that exists as a folder.
fn existing_folder(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.is_dir())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The outermost part of `path` (or `path` itself) that exists but is not a folder.
fn file_in_the_way(path: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|a| a.exists() && !a.is_dir())
        .map(Path::to_path_buf)
}

/// The longest component of `path`, or of a path quoted in `message`, if one is over
/// [`NAME_MAX`]; else the whole path.
fn longest_name(path: &Path, message: &str) -> (String, usize) {
    let quoted = message
        .split_whitespace()
        .map(|word| word.trim_end_matches([':', ',', ';', ')']));
    let longest = std::iter::once(path.as_os_str().to_string_lossy().into_owned())
        .chain(quoted.map(str::to_string))
        .flat_map(|text| {
            Path::new(&text)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .max_by_key(String::len)
        .filter(|name| name.len() > NAME_MAX);
    match longest {
        Some(name) => {
            let bytes = name.len();
            (name, bytes)
        }
        None => (path.display().to_string(), path.as_os_str().len()),
    }
}

/// `text` cut to `keep` characters, with `…` when cut.
fn shortened(text: &str, keep: usize) -> String {
    if text.chars().count() <= keep {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(keep).collect::<String>())
    }
}

fn write_message(path: &Path, fault: &Fault, message: &str) -> String {
    let shown = path.display();
    let fix = match fault {
        Fault::NoSpace => format!(
            "the disk holding {} is full; free space or choose another folder with --results DIR",
            existing_folder(path).display()
        ),
        Fault::NotEnoughSpace => format!(
            "free space on the disk holding {}, choose another folder with --results DIR, or \
             make the sweep smaller (fewer trials, smaller `num_samples`)",
            existing_folder(path).display()
        ),
        Fault::Quota => format!(
            "your disk quota on the filesystem holding {} is used up; free space or choose \
             another folder with --results DIR",
            existing_folder(path).display()
        ),
        Fault::ReadOnly => format!(
            "{} is on a read-only filesystem; choose a folder on a writable disk with \
             --results DIR (or remount that disk read-write)",
            existing_folder(path).display()
        ),
        Fault::Permission { folder } => format!(
            "this user may not write in {}; make it writable (chmod, chown) or choose another \
             folder with --results DIR",
            folder.display()
        ),
        Fault::FileTooLarge => "the file grew past the largest this process may write: raise \
             the shell's limit (`ulimit -f unlimited`), or choose a filesystem that takes larger \
             files with --results DIR"
            .to_string(),
        Fault::FolderInTheWay { folder } => format!(
            "{} is a folder, but the sweep writes a file there; move or remove that folder \
             (nothing the sweep wrote is in it), or choose another folder with --results DIR",
            folder.display()
        ),
        Fault::FileProtected { file } => format!(
            "{} cannot be replaced, although its folder takes new files: it is immutable or \
             append-only (see `lsattr`; `chattr -i -a` clears it) or guarded by a sticky \
             folder; clear that, or choose another folder with --results DIR",
            file.display()
        ),
        Fault::NotAFolder { file } if file == path => format!(
            "{} is a file, but a folder must be there; move or rename that file, or choose \
             another folder with --results DIR",
            file.display()
        ),
        Fault::NotAFolder { file } => format!(
            "{} is a file, not a folder, so nothing can be written inside it; move or rename \
             that file, or choose another folder with --results DIR",
            file.display()
        ),
        Fault::NameTooLong { name, bytes } if *bytes > NAME_MAX && !name.contains('/') => {
            format!(
                "the name `{}` is {bytes} bytes, more than the filesystem allows ({NAME_MAX}); \
                 shorten the experiment's `name` (or the experiment file's name) or the \
                 swept values that make up the trial labels",
                shortened(name, 60)
            )
        }
        Fault::NameTooLong { bytes, .. } => format!(
            "the path is {bytes} bytes, longer than the filesystem allows; use a shorter \
             --results DIR, or shorten the experiment's `name` or the swept values that make \
             up the trial labels"
        ),
        Fault::Other => "check that the results folder is writable (choose another with \
                         --results DIR)"
            .to_string(),
    };
    format!("cannot write {shown}: {message}. Fix: {fix}")
}
