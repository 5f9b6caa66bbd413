//! Local state under `paths.state` (`/var/lib/fedcloud-appliance`): run
//! locks and atomic file writes. Every flow keeps its own files below its
//! own subdirectory (`accounting/`, `images/`, `info/`); `runs/` holds the
//! record of each scheduled job's last run ([`runs`]).

pub mod lastrun;
pub mod runs;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another `appliance` run holds the lock {path} (pid {holder}); this run stops without changing anything")]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// The pid written by the holder, if readable.
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot take the lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// An exclusive, non-blocking run lock (`flock`) held until dropped. The
/// kernel releases it when the process dies, so a crash never leaves a
/// stale lock behind.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take the lock at `path` (creating parent directories), or fail at
    /// once with [`LockError::Busy`] when another process holds it.
    pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return Err(LockError::Busy {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            return Err(io(err));
        }
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RunLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same
/// directory with `mode`, fsync, rename, fsync of the directory. Readers see
/// the old or the new content, never a mix, even across a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// The system user and group of the appliance's jobs.
pub const SYSTEM_USER: &str = "appliance";

/// Who owns a file the appliance writes (PLAN: `appliance.yaml`
/// root:appliance 0640; secrets, host key, state and spool
/// appliance:appliance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `root:appliance` (read by the jobs, written by root).
    RootGroup,
    /// `appliance:appliance`.
    User,
}

/// Give `path` to [`SYSTEM_USER`] as `owner` says, when this process runs
/// as root and the user (and group) exist; otherwise leave it as it is
/// (tests and development run as root without that user). `Ok(true)`
/// when ownership was changed.
pub fn set_owner(path: &Path, owner: Owner) -> std::io::Result<bool> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(false);
    }
    let name = std::ffi::CString::new(SYSTEM_USER).expect("no NUL");
    // SAFETY: `name` is a valid C string; the returned records are read at
    // once, before any other call that could reuse their storage.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        let gr = libc::getgrnam(name.as_ptr());
        if pw.is_null() || gr.is_null() {
            return Ok(false);
        }
        ((*pw).pw_uid, (*gr).gr_gid)
    };
    let uid = match owner {
        Owner::RootGroup => 0,
        Owner::User => uid,
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_lock_is_busy_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run/accounting.lock");
        let first = RunLock::acquire(&p).unwrap();
        // flock locks are per open file description: a second open in the
        // same process conflicts too.
        match RunLock::acquire(&p) {
            Err(LockError::Busy { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        RunLock::acquire(&p).unwrap();
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
