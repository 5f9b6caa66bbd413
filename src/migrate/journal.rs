//! The switch: a journal of operations, each atomic and idempotent, that a
//! run carries out forward and, after a failure, backward.
//!
//! Before the journal is written nothing live has changed (the new
//! contents are staged beside it, the old ones are in the backup). Once it
//! is written, every operation is done in order, each one atomically:
//!
//! - `put`: a whole file is replaced by a staged copy written next to it,
//!   fsynced, renamed over it, and the directory fsynced; mode and owner
//!   are those of the file it replaces.
//! - `rename`: a file (an image: never copied) is moved; the directories
//!   of the renames are fsynced together before the next `put` and at the
//!   end (a barrier: nothing written later is durable before them).
//!
//! Each operation looks before it acts: a `put` whose file already has the
//! new content, or a `rename` already done, is skipped; a file that has
//! neither its old nor its new content (changed by someone else since the
//! plan) stops the run rather than being overwritten. So a run killed at
//! any point is finished by replaying the journal from the start, and a
//! failure is undone by replaying the inverse operations backward.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Format of the journal file; a journal of a later format is refused.
pub const FORMAT: u32 = 1;

/// The old content of a replaced file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Old {
    /// Its copy in the backup.
    pub backup: PathBuf,
    /// Its sha256.
    pub sha256: String,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Replace (or create) `path` with the staged content.
    Put {
        /// The live file.
        path: PathBuf,
        /// The new content, staged.
        staged: PathBuf,
        /// sha256 of the new content.
        sha256: String,
        /// The old content; `None`: the file did not exist.
        old: Option<Old>,
    },
    /// Move `from` to `to`.
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
    },
}

impl Op {
    /// For the operator.
    pub fn describe(&self) -> String {
        match self {
            Op::Put { path, .. } => format!("writing {}", path.display()),
            Op::Rename { from, to } => format!("renaming {} to {}", from.display(), to.display()),
        }
    }
}

/// Which way the journal is being carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Towards the new version (also after a crash).
    Forward,
    /// Back to the old version, after a failure.
    Rollback,
}

/// The journal file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: u32,
    /// The release that wrote it.
    pub release: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// The direction.
    pub phase: Phase,
    /// Why a rollback is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The backup of this run.
    pub backup: PathBuf,
    /// What changes: `config 1 -> 2`, `state 1 -> 2`.
    pub summary: Vec<String>,
    /// In order.
    pub ops: Vec<Op>,
}

/// A failure while switching.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// A file is neither old nor new.
    #[error("{path} changed since the migration was planned (it holds neither the old nor the new content); it was left as it is")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// Both ends of a rename exist.
    #[error("cannot rename {from} to {to}: both exist")]
    BothExist {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
    },
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SwitchError {
    let what = what.into();
    move |source| SwitchError::Io { what, source }
}

/// sha256 of a file's content, hex; `None` when it does not exist.
pub fn sha256_of(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(sha256_hex(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// fsync a directory.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Whether this process may give files away (root).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Write `bytes` to `path` durably and atomically: a temporary file in the
/// same directory with the mode and owner of `like` (else `mode`, and the
/// directory's owner when root), fsync, rename, fsync of the directory.
pub fn write_durable(
    path: &Path,
    bytes: &[u8],
    like: Option<&std::fs::Metadata>,
    mode: u32,
) -> std::io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.migrate-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mode = like.map_or(mode, |m| m.mode() & 0o7777);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let result = (|| {
        f.write_all(bytes)?;
        // The umask may have cut the mode.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if is_root() {
            let owner = match like {
                Some(m) => Some((m.uid(), m.gid())),
                None => std::fs::metadata(dir).ok().map(|m| (m.uid(), m.gid())),
            };
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn put(path: &Path, content: &Path, from: Option<&str>, to: &str) -> Result<(), SwitchError> {
    let current = sha256_of(path).map_err(io(format!("reading {}", path.display())))?;
    if current.as_deref() == Some(to) {
        return Ok(());
    }
    if current.as_deref() != from {
        return Err(SwitchError::Changed {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(content).map_err(io(format!("reading {}", content.display())))?;
    let like = path.metadata().ok();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    write_durable(path, &bytes, like.as_ref(), 0o644)
        .map_err(io(format!("writing {}", path.display())))
}

fn remove(path: &Path, expected: &str) -> Result<(), SwitchError> {
    match sha256_of(path).map_err(io(format!("reading {}", path.display())))? {
        None => Ok(()),
        Some(h) if h == expected => {
            std::fs::remove_file(path).map_err(io(format!("removing {}", path.display())))?;
            sync_dir(parent(path)).map_err(io(format!("syncing {}", parent(path).display())))
        }
        Some(_) => Err(SwitchError::Changed {
            path: path.to_path_buf(),
        }),
    }
}

/// Directories whose renames are not yet fsynced.
pub type Dirty = BTreeSet<PathBuf>;

/// fsync the directories of the renames made so far: the barrier before
/// a whole-file write (and at the end), so that nothing written later can
/// be durable while a rename before it is not.
pub fn flush(dirty: &mut Dirty) -> Result<(), SwitchError> {
    while let Some(dir) = dirty.pop_first() {
        sync_dir(&dir).map_err(io(format!("syncing {}", dir.display())))?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path, dirty: &mut Dirty) -> Result<(), SwitchError> {
    match (exists(from), exists(to)) {
        (true, false) => {
            let dir = parent(to);
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
            std::fs::rename(from, to).map_err(io(format!(
                "renaming {} to {}",
                from.display(),
                to.display()
            )))?;
            dirty.insert(dir.to_path_buf());
            dirty.insert(parent(from).to_path_buf());
            Ok(())
        }
        // Done already (or the file went away: nothing to move).
        (false, _) => Ok(()),
        (true, true) => Err(SwitchError::BothExist {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        }),
    }
}

/// Carry out `op` towards the new version (idempotent). A rename's
/// directories join `dirty`; a write first flushes it.
pub fn forward(op: &Op, dirty: &mut Dirty) -> Result<(), SwitchError> {
    match op {
        Op::Put {
            path,
            staged,
            sha256,
            old,
        } => {
            flush(dirty)?;
            put(
                path,
                staged,
                old.as_ref().map(|o| o.sha256.as_str()),
                sha256,
            )
        }
        Op::Rename { from, to } => rename(from, to, dirty),
    }
}

/// Undo `op` (idempotent), with the same barriers as [`forward`].
pub fn backward(op: &Op, dirty: &mut Dirty) -> Result<(), SwitchError> {
    match op {
        Op::Put {
            path, sha256, old, ..
        } => {
            flush(dirty)?;
            match old {
                Some(o) => put(path, &o.backup, Some(sha256), &o.sha256),
                None => remove(path, sha256),
            }
        }
        Op::Rename { from, to } => rename(to, from, dirty),
    }
}

/// How a switch ended.
#[derive(Debug)]
pub enum Ended {
    /// Every operation done.
    Done,
    /// An operation failed (this run's or an earlier one's); everything
    /// was undone.
    RolledBack {
        /// The failed operation and why.
        failure: String,
    },
}

/// A switch that could not be completed nor undone: the journal stays, and
/// the next run finishes it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Stuck(pub String);

/// Write the journal (atomically, durably).
pub fn save(path: &Path, j: &Journal) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(j).expect("journal JSON");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_durable(path, &bytes, None, 0o600)
}

/// Read a journal; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Journal>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    #[derive(Deserialize)]
    struct Head {
        format: u32,
        release: String,
    }
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a migration journal: {e}", path.display()))?;
    if head.format > FORMAT {
        return Err(format!(
            "{} was written by release {} (journal format {}), newer than this one; run that release's `appliance migrate` to finish it",
            path.display(),
            head.release,
            head.format
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{}: unreadable migration journal: {e}", path.display()))
}

/// Remove the journal (durably): the switch is over.
pub fn close(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Carry out `journal` (saved at `path`) from its phase to its end, then
/// remove it. Forward: on a failure, the journal turns to rollback and
/// everything is undone. A rollback that fails leaves the journal for the
/// next run ([`Stuck`]).
pub fn carry_out(path: &Path, mut journal: Journal) -> Result<Ended, Stuck> {
    let mut ended = Ended::Done;
    let mut dirty = Dirty::new();
    if journal.phase == Phase::Forward {
        let failed = journal
            .ops
            .iter()
            .enumerate()
            .find_map(|(i, op)| forward(op, &mut dirty).err().map(|e| (i, e)))
            .or_else(|| {
                let last = journal.ops.len().saturating_sub(1);
                flush(&mut dirty).err().map(|e| (last, e))
            });
        if let Some((i, error)) = failed {
            let what = journal.ops[i].describe();
            tracing::error!(op = %what, error = %error, "migration failed; restoring the previous version");
            journal.phase = Phase::Rollback;
            journal.failure = Some(format!("{what}: {error}"));
            save(path, &journal).map_err(|e| {
                Stuck(format!(
                    "{what} failed ({error}), and the journal {} could not be turned to rollback ({e}); run `appliance migrate` again",
                    path.display()
                ))
            })?;
        }
    }
    if journal.phase == Phase::Rollback {
        for op in journal.ops.iter().rev() {
            backward(op, &mut dirty).map_err(|e| {
                Stuck(format!(
                    "restoring the previous version failed at {}: {e}; the journal {} is kept: fix the cause and run `appliance migrate` again to finish the rollback (backup: {})",
                    op.describe(),
                    path.display(),
                    journal.backup.display()
                ))
            })?;
        }
        flush(&mut dirty).map_err(|e| {
            Stuck(format!(
                "{e}; the journal {} is kept: run `appliance migrate` again",
                path.display()
            ))
        })?;
        ended = Ended::RolledBack {
            failure: journal
                .failure
                .clone()
                .unwrap_or_else(|| "an earlier run failed".into()),
        };
    }
    close(path).map_err(|e| {
        Stuck(format!(
            "the switch is complete but the journal {} could not be removed: {e}",
            path.display()
        ))
    })?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let f = Fixture {
                dir: tempfile::tempdir().unwrap(),
            };
            std::fs::create_dir_all(f.p("stage")).unwrap();
            std::fs::create_dir_all(f.p("backup")).unwrap();
            std::fs::create_dir_all(f.p("live")).unwrap();
            f
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn write(&self, rel: &str, content: &str) {
            std::fs::write(self.p(rel), content).unwrap();
        }
        fn read(&self, rel: &str) -> Option<String> {
            std::fs::read_to_string(self.p(rel)).ok()
        }
        /// A put of `live/<name>` from `old` (None: absent) to `new`.
        fn put(&self, name: &str, old: Option<&str>, new: &str) -> Op {
            let staged = self.p(&format!("stage/{name}"));
            std::fs::write(&staged, new).unwrap();
            let old = old.map(|o| {
                self.write(&format!("live/{name}"), o);
                let backup = self.p(&format!("backup/{name}"));
                std::fs::write(&backup, o).unwrap();
                Old {
                    backup,
                    sha256: sha256_hex(o.as_bytes()),
                }
            });
            Op::Put {
                path: self.p(&format!("live/{name}")),
                staged,
                sha256: sha256_hex(new.as_bytes()),
                old,
            }
        }
        fn journal(&self, ops: Vec<Op>) -> Journal {
            Journal {
                format: FORMAT,
                release: "test".into(),
                started: "now".into(),
                phase: Phase::Forward,
                failure: None,
                backup: self.p("backup"),
                summary: vec![],
                ops,
            }
        }
    }

    #[test]
    fn forward_is_idempotent_and_keeps_mode() {
        let f = Fixture::new();
        let put = f.put("a.yaml", Some("old"), "new");
        std::fs::set_permissions(f.p("live/a.yaml"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        f.write("live/img", "bytes");
        let ren = Op::Rename {
            from: f.p("live/img"),
            to: f.p("live/sub/img-new"),
        };
        let stamp = f.put("stamp", None, "2\n");
        let jp = f.p("journal.json");
        let j = f.journal(vec![ren.clone(), put.clone(), stamp.clone()]);
        save(&jp, &j).unwrap();
        assert!(matches!(carry_out(&jp, j.clone()).unwrap(), Ended::Done));
        assert!(!jp.exists());
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("new"));
        assert_eq!(f.p("live/a.yaml").metadata().unwrap().mode() & 0o777, 0o640);
        assert_eq!(f.read("live/sub/img-new").as_deref(), Some("bytes"));
        assert_eq!(f.read("live/stamp").as_deref(), Some("2\n"));
        // Replaying is harmless.
        save(&jp, &j).unwrap();
        assert!(matches!(carry_out(&jp, j).unwrap(), Ended::Done));
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("new"));
        // And so is undoing, twice.
        for _ in 0..2 {
            for op in [&stamp, &put, &ren] {
                backward(op, &mut Dirty::new()).unwrap();
            }
        }
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("old"));
        assert_eq!(f.read("live/img").as_deref(), Some("bytes"));
        assert_eq!(f.read("live/stamp"), None);
    }

    #[test]
    fn a_failure_half_way_restores_the_old_version() {
        let f = Fixture::new();
        f.write("live/img", "bytes");
        let ren = Op::Rename {
            from: f.p("live/img"),
            to: f.p("live/img-new"),
        };
        let put = f.put("a.yaml", Some("old"), "new");
        // A rename into a directory that cannot exist (its parent is a file).
        f.write("live/blocker", "x");
        f.write("live/other", "o");
        let bad = Op::Rename {
            from: f.p("live/other"),
            to: f.p("live/blocker/other"),
        };
        let jp = f.p("journal.json");
        let j = f.journal(vec![ren, put, bad]);
        save(&jp, &j).unwrap();
        match carry_out(&jp, j).unwrap() {
            Ended::RolledBack { failure } => {
                assert!(failure.contains("live/other"), "{failure}");
                assert!(failure.contains("creating"), "{failure}");
            }
            Ended::Done => panic!("should fail"),
        }
        assert!(!jp.exists());
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("old"));
        assert_eq!(f.read("live/img").as_deref(), Some("bytes"));
        assert!(!f.p("live/img-new").exists());
        assert_eq!(f.read("live/other").as_deref(), Some("o"));
    }

    #[test]
    fn a_file_changed_by_someone_else_is_not_overwritten() {
        let f = Fixture::new();
        let put = f.put("a.yaml", Some("old"), "new");
        f.write("live/a.yaml", "edited by hand");
        let e = forward(&put, &mut Dirty::new()).unwrap_err();
        assert!(matches!(e, SwitchError::Changed { .. }), "{e}");
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("edited by hand"));
        let e = backward(&put, &mut Dirty::new()).unwrap_err();
        assert!(matches!(e, SwitchError::Changed { .. }), "{e}");
    }

    #[test]
    fn an_interrupted_rollback_is_finished_by_the_next_run() {
        let f = Fixture::new();
        let put = f.put("a.yaml", Some("old"), "new");
        forward(&put, &mut Dirty::new()).unwrap();
        let jp = f.p("journal.json");
        let mut j = f.journal(vec![put]);
        j.phase = Phase::Rollback;
        j.failure = Some("writing x: disk full".into());
        save(&jp, &j).unwrap();
        let loaded = load(&jp).unwrap().unwrap();
        assert_eq!(loaded, j);
        match carry_out(&jp, loaded).unwrap() {
            Ended::RolledBack { failure } => assert_eq!(failure, "writing x: disk full"),
            Ended::Done => panic!("a rollback"),
        }
        assert_eq!(f.read("live/a.yaml").as_deref(), Some("old"));
        assert!(!jp.exists());
    }

    #[test]
    fn journals_of_a_later_format_are_refused() {
        let f = Fixture::new();
        let jp = f.p("journal.json");
        std::fs::write(&jp, r#"{"format": 9, "release": "9.0.0"}"#).unwrap();
        let e = load(&jp).unwrap_err();
        assert!(e.contains("newer than this one"), "{e}");
        assert_eq!(load(&f.p("none.json")).unwrap(), None);
    }
}
