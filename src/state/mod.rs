//! Local state under `paths.state` (`/var/lib/fedcloud-appliance`): run
//! locks and atomic file writes. Every flow keeps its own files below its
//! own subdirectory (`accounting/`, `images/`, `info/`); `runs/` holds the
//! record of each scheduled job's last run ([`runs`]).

pub mod lastrun;
pub mod runs;
pub mod schema;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
///
/// The temporary is `.tmp-<pid>-<random>`: when this process is killed
/// before the rename, the next run tells it from a live writer's by the pid
/// ([`reclaim_temporaries`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_replacing(path, bytes, mode, true)
}

/// [`write_atomic`] without the fsyncs: the old or the new content survives
/// the process being killed at any point, not a power loss. For bookkeeping
/// that is rewritten often and only matters to the next run.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_replacing(path, bytes, mode, false)
}

fn write_replacing(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&temporary_prefix())
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `.tmp-<pid>-`: the name prefix of this process's temporaries.
fn temporary_prefix() -> String {
    format!("{TEMPORARY_PREFIX}{}-", std::process::id())
}

/// Every temporary of [`write_atomic`] starts with this.
const TEMPORARY_PREFIX: &str = ".tmp-";

/// Temporaries without a pid (an older release's `.tmp-<random>`) are
/// removed once older than this (dirq's age for temporaries).
pub const UNOWNED_TEMPORARY_AGE: Duration = Duration::from_secs(300);

/// Whether process `pid` is running (`kill(pid, 0)`; a process of another
/// user counts as running).
pub fn process_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// What to do with a file of a state directory at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// Not a temporary of [`write_atomic`]: keep.
    NotOurs,
    /// A temporary a crashed run left (its writer is gone, or it has no
    /// writer pid and is older than [`UNOWNED_TEMPORARY_AGE`]): remove.
    Stale,
    /// A temporary being written right now: keep.
    InUse,
}

/// Decide about the file `name`, `age` old, given which pids run.
pub fn classify_leftover(name: &str, age: Duration, running: impl Fn(u32) -> bool) -> Leftover {
    let Some(rest) = name.strip_prefix(TEMPORARY_PREFIX) else {
        return Leftover::NotOurs;
    };
    let pid = rest
        .split_once('-')
        .and_then(|(pid, _)| pid.parse::<u32>().ok().filter(|_| !pid.starts_with('+')));
    let stale = match pid {
        Some(pid) => !running(pid),
        None => age > UNOWNED_TEMPORARY_AGE,
    };
    if stale {
        Leftover::Stale
    } else {
        Leftover::InUse
    }
}

/// [`reclaim_temporaries`] at the start of a run: what was removed is
/// logged, and a directory that cannot be read is a warning (the run goes
/// on; its own writes will say what is wrong).
pub fn reclaim_at_start(dir: &Path) {
    match reclaim_temporaries(dir) {
        Ok(removed) => {
            for f in removed {
                tracing::info!(file = %f.display(), "temporary of a killed run removed");
            }
        }
        Err(e) => tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "could not look for the temporaries of killed runs"
        ),
    }
}

/// Remove what killed runs of ours left in `dir` (not recursive): the
/// temporaries of [`write_atomic`] whose writer is gone (see
/// [`classify_leftover`]). Returns the files removed. A missing directory
/// has nothing to reclaim.
pub fn reclaim_temporaries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for entry in rd {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.starts_with(TEMPORARY_PREFIX) {
            continue;
        }
        let age = match entry.metadata().and_then(|m| m.modified()) {
            Ok(t) => now.duration_since(t).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if classify_leftover(&name, age, process_running) == Leftover::Stale {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
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

    #[test]
    fn leftovers_of_dead_writers_only() {
        let running = |pid: u32| pid == 42;
        let fresh = Duration::from_secs(1);
        let old = Duration::from_secs(301);
        assert_eq!(
            classify_leftover("lastrun.p1", old, running),
            Leftover::NotOurs
        );
        assert_eq!(
            classify_leftover(".tmp-7-AbC123", fresh, running),
            Leftover::Stale
        );
        assert_eq!(
            classify_leftover(".tmp-42-AbC123", old, running),
            Leftover::InUse
        );
        // an older release's temporary: by age
        assert_eq!(
            classify_leftover(".tmp-AbC123", fresh, running),
            Leftover::InUse
        );
        assert_eq!(
            classify_leftover(".tmp-AbC123", old, running),
            Leftover::Stale
        );
        assert_eq!(
            classify_leftover(".tmp-+7-x", fresh, running),
            Leftover::InUse
        );
    }

    #[test]
    fn reclaim_removes_a_dead_writers_temporary_and_keeps_ours() {
        let dir = tempfile::tempdir().unwrap();
        // pid 0 never names a process of ours: a writer that is gone
        let dead = dir.path().join(".tmp-0-xyz");
        std::fs::write(&dead, b"half").unwrap();
        let mine = dir.path().join(format!("{}x", temporary_prefix()));
        std::fs::write(&mine, b"being written").unwrap();
        let kept = dir.path().join("lastrun.p1");
        std::fs::write(&kept, b"2024-01-01").unwrap();
        assert_eq!(reclaim_temporaries(dir.path()).unwrap(), vec![dead.clone()]);
        assert!(!dead.exists() && mine.exists() && kept.exists());
        assert!(reclaim_temporaries(&dir.path().join("none"))
            .unwrap()
            .is_empty());
        assert!(process_running(std::process::id()));
        assert!(!process_running(0));
    }
}
