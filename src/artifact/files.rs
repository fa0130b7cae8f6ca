//! Files written whole or not at all: a temporary file in the same folder, then a rename.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder)?;
    // Named `.tmp*` (a sweep's start removes leftovers of killed runs by that name), and
    // created 0o666 less the umask like any new file, not tempfile's private 0o600.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(folder)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}

pub fn write_yaml(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_yaml::to_string(value).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}
