//! The schema version of the local state (`<state>/schema-version`), and
//! the check every job makes before it touches the state.
//!
//! The state directory and the image cache under `paths.image-data` change
//! shape across releases like `appliance.yaml` does; `appliance migrate`
//! brings them forward and stamps `<state>/schema-version` (one line, the
//! number). A state directory without the file predates versioning
//! (schema 1), unless it holds no data yet (a fresh install), which
//! `migrate` stamps with the current version.
//!
//! While `appliance migrate` is switching config and state, its journal
//! (`<state>/migrate/journal.json`) exists; a job that finds it, or a stamp
//! other than this release's, stops with exit code 2 and says what to run.

use std::path::{Path, PathBuf};

/// The state schema this release reads and writes.
pub const STATE_SCHEMA_VERSION: u64 = 2;

/// The stamp file, relative to the state directory.
pub const STAMP_FILE: &str = "schema-version";

/// The migration journal, relative to the state directory: present only
/// while a migration is switching (or was interrupted while switching).
pub const JOURNAL_FILE: &str = "migrate/journal.json";

/// A stamp that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// Not a number.
    #[error("{path}: `{text}` is not a schema version (one whole number expected)")]
    Garbled {
        /// The stamp file.
        path: PathBuf,
        /// What it holds (trimmed, at most 40 characters).
        text: String,
    },
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The stamp file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The stamp's text for `version`.
pub fn render(version: u64) -> String {
    format!("{version}\n")
}

/// Parse a stamp's text.
pub fn parse(text: &str) -> Option<u64> {
    let t = text.trim();
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// The stamped version of `state_dir`; `None` when there is no stamp.
pub fn read(state_dir: &Path) -> Result<Option<u64>, StampError> {
    let path = state_dir.join(STAMP_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map(Some).ok_or_else(|| StampError::Garbled {
            text: text.trim().chars().take(40).collect(),
            path,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StampError::Io { path, source }),
    }
}

/// Stamp `state_dir` with this release's schema (atomically). For code
/// that creates a state of this release in a new or empty directory
/// (`configure`, `import-legacy`), so that `migrate` never takes it for an
/// earlier release's.
pub fn stamp(state_dir: &Path) -> std::io::Result<()> {
    super::write_atomic(
        &state_dir.join(STAMP_FILE),
        render(STATE_SCHEMA_VERSION).as_bytes(),
        0o644,
    )
}

/// Why a job must not run on this state.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A migration is switching, or was interrupted while switching.
    #[error("a migration of the configuration and state is not finished ({journal} exists); run `appliance migrate` to finish it (the appliance-migrate unit does this at boot)")]
    Pending {
        /// The journal.
        journal: PathBuf,
    },
    /// The state is from an earlier release.
    #[error("the state in {dir} is at schema {found}, this release uses schema {STATE_SCHEMA_VERSION}; run `appliance migrate` (the appliance-migrate unit does this at boot)")]
    Older {
        /// The state directory.
        dir: PathBuf,
        /// Its stamp.
        found: u64,
    },
    /// The state is from a later release.
    #[error("the state in {dir} is at schema {found}, newer than this release reads ({STATE_SCHEMA_VERSION}); run the release that wrote it, or restore the state from a backup")]
    Newer {
        /// The state directory.
        dir: PathBuf,
        /// Its stamp.
        found: u64,
    },
    /// The stamp is unreadable.
    #[error(transparent)]
    Stamp(#[from] StampError),
}

/// Whether a job may use `state_dir`: no unfinished migration, and a stamp
/// (if any) of this release. An unstamped directory is accepted (its
/// content is what a job of this release would find anyway; `migrate`
/// stamps it at the next boot).
pub fn gate(state_dir: &Path) -> Result<(), GateError> {
    let journal = state_dir.join(JOURNAL_FILE);
    if journal.exists() {
        return Err(GateError::Pending { journal });
    }
    match read(state_dir)? {
        Some(v) if v < STATE_SCHEMA_VERSION => Err(GateError::Older {
            dir: state_dir.to_path_buf(),
            found: v,
        }),
        Some(v) if v > STATE_SCHEMA_VERSION => Err(GateError::Newer {
            dir: state_dir.to_path_buf(),
            found: v,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_garbage_is_named() {
        assert_eq!(parse(&render(2)), Some(2));
        assert_eq!(parse(" 7 \n"), Some(7));
        for bad in ["", "two", "-1", "2.0", "99999999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        assert!(read(d.path()).unwrap().is_none());
        std::fs::write(d.path().join(STAMP_FILE), "x").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("`x` is not a schema version"), "{e}");
    }

    #[test]
    fn gate_refuses_pending_older_and_newer() {
        let d = tempfile::tempdir().unwrap();
        gate(d.path()).unwrap();
        stamp(d.path()).unwrap();
        assert_eq!(read(d.path()).unwrap(), Some(STATE_SCHEMA_VERSION));
        gate(d.path()).unwrap();
        std::fs::write(d.path().join(STAMP_FILE), "1\n").unwrap();
        let e = gate(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("schema 1") && e.contains("run `appliance migrate`"),
            "{e}"
        );
        std::fs::write(d.path().join(STAMP_FILE), "99\n").unwrap();
        let e = gate(d.path()).unwrap_err().to_string();
        assert!(e.contains("newer than this release"), "{e}");
        std::fs::create_dir_all(d.path().join("migrate")).unwrap();
        std::fs::write(d.path().join(JOURNAL_FILE), "{}").unwrap();
        let e = gate(d.path()).unwrap_err().to_string();
        assert!(e.contains("not finished"), "{e}");
    }
}
