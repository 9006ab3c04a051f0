//! One run of a job at a time: an exclusive `flock` on a lock file, waited for
//! up to a timeout. The lock is released by the kernel when the process ends,
//! so a crashed run never leaves a stale lock behind.
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run holds the lock {path} (waited {waited})")]
    Busy { path: PathBuf, waited: String },
    #[error("cannot open lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

/// Take the lock at `path`, waiting up to `timeout` for another run to finish.
pub fn acquire(path: &Path, timeout: Duration) -> Result<RunLock, LockError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = OpenOptions::new()
        .create(true)
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
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
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
        if start.elapsed() >= timeout || crate::engine::stop::requested().is_some() {
            return Err(LockError::Busy {
                path: path.to_owned(),
                waited: humantime::format_duration(Duration::from_secs(start.elapsed().as_secs()))
                    .to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
