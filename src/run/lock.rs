//! One sweep at a time per results folder: `runner sweep` holds `<folder>/.lock` (pid, host
//! and start time, created exclusively) while it runs and removes it when it ends, on error
//! too. A lock whose holder is gone (its pid is not alive on this host) is taken over. Also
//! the clean-up of what killed runs leave behind: temporary files and partial folders.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{write_error, RunError};

/// The lock file's name inside the sweep's folder.
pub const LOCK_FILE: &str = ".lock";

/// How long a lock file may stay unreadable (its holder is still writing it) before it is
/// taken to be the remains of a process killed while writing it.
const UNREADABLE_GRACE: Duration = Duration::from_secs(10);

/// Who holds a lock, as written in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "pid={}\nhost={}\nstarted={}\n",
            self.pid, self.host, self.started
        )
    }

    fn parse(text: &str) -> Option<Holder> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::trim)
        };
        Some(Holder {
            pid: field("pid")?.parse().ok()?,
            host: field("host")?.to_string(),
            started: field("started")?.parse().ok()?,
        })
    }

    /// Whether the holder may still be running: its pid is alive on this host, or it runs on
    /// another host (which cannot be checked from here).
    fn may_be_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        pid_alive(self.pid)
    }

    /// "pid 123 on host, started 2026-11-29 07:50:00 UTC (42 s ago)".
    pub fn describe(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!(
            "pid {} on {}, started {} ({} ago)",
            self.pid,
            self.host,
            utc_time(self.started),
            ago(now.saturating_sub(self.started))
        )
    }
}

/// The held lock of one sweep folder; dropping it removes the lock file.
#[derive(Debug)]
pub struct SweepLock {
    path: PathBuf,
    me: Holder,
}

impl SweepLock {
    /// Takes the lock of `folder` (which must exist). Fails at once if another live sweep
    /// holds it; takes over a stale one, saying so on `out`.
    pub fn acquire(folder: &Path, out: &mut dyn Write) -> Result<SweepLock, RunError> {
        let path = folder.join(LOCK_FILE);
        let me = Holder::me();
        // A few rounds: a takeover can race with another sweep doing the same.
        for _ in 0..5 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(me.to_text().as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| {
                            let _ = fs::remove_file(&path);
                            write_error(&path, e)
                        })?;
                    return Ok(SweepLock { path, me });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(write_error(&path, e)),
            }
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                // Released between our attempt and this read: try again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(write_error(&path, e)),
            };
            match Holder::parse(&text) {
                Some(holder) if holder.may_be_alive() => {
                    return Err(RunError::Locked {
                        folder: folder.to_path_buf(),
                        holder: holder.describe(),
                    });
                }
                Some(holder) => {
                    let _ = writeln!(
                        out,
                        "note: taking over the stale lock {} (its sweep, {}, is no longer running)",
                        path.display(),
                        holder.describe()
                    );
                }
                None => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    if age < UNREADABLE_GRACE {
                        return Err(RunError::Locked {
                            folder: folder.to_path_buf(),
                            holder: "a sweep that is starting now".to_string(),
                        });
                    }
                    let _ = writeln!(
                        out,
                        "note: taking over the unreadable lock {} (left by a killed sweep)",
                        path.display()
                    );
                }
            }
            remove_stale(&path, &text)?;
        }
        Err(RunError::Locked {
            folder: folder.to_path_buf(),
            holder: "another sweep (the lock kept changing hands)".to_string(),
        })
    }
}

/// Removes the stale lock at `path` if it is still the one read as `text` (another sweep may
/// have taken it over meanwhile); a lock this user may not remove (another user's, in a
/// shared folder) is reported as that, not retried.
fn remove_stale(path: &Path, text: &str) -> Result<(), RunError> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        return Ok(());
    }
    match fs::remove_file(path) {
        Err(cause) if cause.kind() != std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::MetadataExt;
            let owner = fs::metadata(path).map(|m| m.uid()).unwrap_or(u32::MAX);
            let holder = Holder::parse(text)
                .map(|h| h.describe())
                .unwrap_or_else(|| "unreadable".to_string());
            Err(RunError::StaleLock {
                path: path.to_path_buf(),
                holder,
                owner,
                cause,
            })
        }
        _ => Ok(()),
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        // Only our own lock: never one a later sweep took over.
        let ours = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| Holder::parse(&t))
            .is_some_and(|h| h == self.me);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes what killed runs left in the sweep's folder: `plots/.plot-*` files, the
/// `.partial-*` folders under `trials/`, `models/` and `features/` (the artifact store's
/// folders in the making), and tempfile's `.tmp*` files in the folder, those subfolders,
/// `invocations/`, `tb/` and each trial's log folder in `tb/`. Only those names; the count
/// removed is returned.
pub fn remove_leftovers(folder: &Path) -> usize {
    let mut removed = 0;
    let entries = |dir: &Path| -> Vec<(String, PathBuf, bool)> {
        fs::read_dir(dir)
            .map(|it| {
                it.filter_map(|e| {
                    let e = e.ok()?;
                    let name = e.file_name().into_string().ok()?;
                    // Not following links: a link is never ours to remove.
                    let kind = e.file_type().ok()?;
                    if kind.is_symlink() {
                        return None;
                    }
                    Some((name, e.path(), kind.is_dir()))
                })
                .collect()
            })
            .unwrap_or_default()
    };
    let mut remove_file = |path: &Path| {
        if fs::remove_file(path).is_ok() {
            removed += 1;
        }
    };
    for (name, path, is_dir) in entries(&folder.join("plots")) {
        if !is_dir && (name.starts_with(".plot-") || name.starts_with(".tmp")) {
            remove_file(&path);
        }
    }
    // TensorBoard's files (the HParams experiment in `tb/`, each trial's log in `tb/<id>/`)
    // are also written under temporary names and renamed.
    let logs: Vec<PathBuf> = entries(&folder.join("tb"))
        .into_iter()
        .filter(|(_, _, is_dir)| *is_dir)
        .map(|(_, path, _)| path)
        .collect();
    let flat = [
        folder.to_path_buf(),
        folder.join("invocations"),
        folder.join("tb"),
    ];
    for dir in flat.into_iter().chain(logs) {
        for (name, path, is_dir) in entries(&dir) {
            if !is_dir && name.starts_with(".tmp") {
                remove_file(&path);
            }
        }
    }
    let mut dirs_removed = 0;
    for sub in ["trials", "models", "features"] {
        for (name, path, is_dir) in entries(&folder.join(sub)) {
            if is_dir && name.starts_with(".partial-") {
                if fs::remove_dir_all(&path).is_ok() {
                    dirs_removed += 1;
                }
            } else if !is_dir && name.starts_with(".tmp") {
                remove_file(&path);
            }
        }
    }
    removed + dirs_removed
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process with this pid exists on this machine (`/proc/<pid>`). Where there is
/// no `/proc`, every holder is taken to be alive (a stale lock is then removed by hand).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if !Path::new("/proc/self").exists() {
        return true;
    }
    // A zombie (killed, not yet reaped) holds no lock.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// `seconds` since the epoch as "YYYY-MM-DD HH:MM:SS UTC".
fn utc_time(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{:.1} h", s as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_text_round_trips() {
        let me = Holder::me();
        assert_eq!(Holder::parse(&me.to_text()), Some(me));
        assert_eq!(Holder::parse("garbage"), None);
    }

    #[test]
    fn utc_time_formats_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_796_000_000), "2026-11-30 00:53:20 UTC");
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX - 1));
    }
}
