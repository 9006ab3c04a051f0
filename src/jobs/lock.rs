//! One run of a job at a time: an exclusive lock (`flock`) on a lock file, waited for
//! up to a timeout. The lock is released by the kernel when the process ends,
//! so a crashed run never leaves a stale lock behind.
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run holds the lock {path} (waited {waited})")]
    Busy { path: PathBuf, waited: String },
    #[error("interrupted while waiting for the lock {path}")]
    Interrupted { path: PathBuf },
    #[error("cannot open lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "lock file {path}: {what}; a lock path must be a new file or a lock file of virtscript's"
    )]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("lock file {path} exists and holds other data (not a process id); it is not overwritten: choose a new path")]
    Foreign { path: PathBuf },
    #[error("lock file {path}: the directory {dir} does not exist (it is not created)")]
    NoDirectory { path: PathBuf, dir: PathBuf },
}

impl LockError {
    /// Whether another run holds the lock (exit status 5); anything else is
    /// a bad lock path (a usage error).
    pub fn is_busy(&self) -> bool {
        matches!(self, LockError::Busy { .. })
    }
}

/// Whether an existing file's content is what [`acquire`] writes: nothing, or
/// one process id.
fn holds_a_pid(path: &Path) -> Result<bool, std::io::Error> {
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(File::open(path)?, 32), &mut head)?;
    let text = String::from_utf8_lossy(&head);
    let digits = text.trim_end_matches('\n');
    Ok(head.len() < 32 && digits.chars().all(|c| c.is_ascii_digit()))
}

/// Refuse a path that is not a new file or one of our lock files, before
/// anything is opened or created.
pub fn check_path(path: &Path, create_parent: bool) -> Result<(), LockError> {
    let bad = |what| LockError::NotAFile {
        path: path.to_owned(),
        what,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(bad("is a symbolic link")),
        Ok(meta) if meta.is_dir() => return Err(bad("is a directory")),
        Ok(meta) if !meta.is_file() => return Err(bad("is not a regular file")),
        Ok(_) => {
            return match holds_a_pid(path) {
                Ok(true) => Ok(()),
                Ok(false) => Err(LockError::Foreign {
                    path: path.to_owned(),
                }),
                Err(source) => Err(LockError::Open {
                    path: path.to_owned(),
                    source,
                }),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LockError::Open {
                path: path.to_owned(),
                source,
            })
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    // The default lock's own directory (/run/lock/virtscript) is ours to make,
    // one level, in a system directory that exists.
    if create_parent && dir.parent().is_some_and(Path::is_dir) {
        return std::fs::create_dir(dir).or_else(|e| {
            if dir.is_dir() {
                Ok(())
            } else {
                Err(LockError::Open {
                    path: path.to_owned(),
                    source: e,
                })
            }
        });
    }
    Err(LockError::NoDirectory {
        path: path.to_owned(),
        dir: dir.to_owned(),
    })
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub path: PathBuf,
}

/// The default lock for a script on a host: one per (script, URI) pair, in the
/// system's lock directory.
pub fn default_path(script_identity: &str, uri: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{script_identity}\n{uri}").as_bytes());
    let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = ["/run/lock", "/var/lock"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir)
        .join("virtscript");
    dir.join(format!("{name}.lock"))
}

/// The lock a run takes, if any: `--lock PATH`, else one per script and
/// hosts; none with `--no-lock`, nor when every host is a `test://` driver
/// (each test:///default process has its own private driver: nothing to keep
/// apart). `script` is the script's path and text.
pub fn for_run(
    explicit: Option<&Path>,
    no_lock: bool,
    timeout: Duration,
    (script, text): (&str, &str),
    uris: &[String],
) -> Result<Option<RunLock>, LockError> {
    let needs_lock =
        !no_lock && (explicit.is_some() || uris.iter().any(|u| !u.starts_with("test://")));
    if !needs_lock {
        return Ok(None);
    }
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let identity = std::fs::canonicalize(script)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| super::report::sha256_hex(text));
            default_path(&identity, &uris.join(" "))
        }
    };
    acquire(&path, timeout, explicit.is_none()).map(Some)
}

/// Take the lock at `path`, waiting up to `timeout` for another run to finish.
/// `default_path`: the path is [`default_path`]'s, whose directory may be made.
pub fn acquire(path: &Path, timeout: Duration, default_path: bool) -> Result<RunLock, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    check_path(path, default_path)?;
    let file = OpenOptions::new()
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
    let start = Instant::now();
    loop {
        // std's lock is flock(LOCK_EX | LOCK_NB) on Linux; any failure, like
        // flock's, means "not yet": waited for until the timeout.
        if file.try_lock().is_ok() {
            // Say who holds it, for an operator looking at the file.
            let _ = file.set_len(0);
            let _ = std::io::Write::write_all(
                &mut &file,
                format!("{}\n", std::process::id()).as_bytes(),
            );
            return Ok(RunLock {
                _file: file,
                path: path.to_owned(),
            });
        }
        if crate::runtime::stop::requested().is_some() {
            return Err(LockError::Interrupted {
                path: path.to_owned(),
            });
        }
        if start.elapsed() >= timeout {
            return Err(LockError::Busy {
                path: path.to_owned(),
                waited: humantime::format_duration(Duration::from_secs(start.elapsed().as_secs()))
                    .to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_files_and_our_lock_files_are_lock_paths() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("job.lock");
        let lock = acquire(&ours, Duration::ZERO, false).unwrap();
        drop(lock);
        // Taken again: the file holds our process id.
        acquire(&ours, Duration::ZERO, false).unwrap();
        let data = dir.path().join("notes.txt");
        std::fs::write(&data, "keep me\n").unwrap();
        assert!(matches!(
            acquire(&data, Duration::ZERO, false),
            Err(LockError::Foreign { .. })
        ));
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "keep me\n");
        assert!(matches!(
            acquire(dir.path(), Duration::ZERO, false),
            Err(LockError::NotAFile { .. })
        ));
        let deep = dir.path().join("no/such/dir/x.lock");
        assert!(matches!(
            acquire(&deep, Duration::ZERO, false),
            Err(LockError::NoDirectory { .. })
        ));
        assert!(!dir.path().join("no").exists());
        // The default lock's own directory is made, one level and no more.
        acquire(&dir.path().join("virtscript/x.lock"), Duration::ZERO, true).unwrap();
        assert!(matches!(
            acquire(&dir.path().join("a/b/x.lock"), Duration::ZERO, true),
            Err(LockError::NoDirectory { .. })
        ));
        assert!(!dir.path().join("a").exists());
    }
}
