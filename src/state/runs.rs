//! Job run records: `<state>/runs/<job>.json`, one file per scheduled job
//! (`accounting-extract`, `accounting-send`, `info-publish`,
//! `images-sync`, `crl-refresh`), rewritten atomically at the end of every
//! (non-dry) run by `cmd::run`. `appliance status` reads them; nothing
//! else depends on them, so a record that cannot be written is a warning,
//! never a failed job.
//!
//! A job may add a one-line summary and a small job-specific detail to its
//! record while it runs ([`note_summary`], [`note_detail`]); the runner
//! collects them with [`noting`] (a task-local slot, so there is no global
//! state and calls outside a recorded run do nothing).

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the record format.
pub const RECORD_SCHEMA: u32 = 1;

/// The directory of the records under the state directory.
pub fn dir(state: &Path) -> PathBuf {
    state.join("runs")
}

/// The record file of `job`.
pub fn path(state: &Path, job: &str) -> PathBuf {
    dir(state).join(format!("{job}.json"))
}

/// How a run ended (the exit classes of [`crate::exit::Outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Exit 0.
    Success,
    /// Exit 1: some items failed.
    Partial,
    /// Exit 2: configuration or usage error, nothing was done.
    Usage,
    /// Exit 3: the run failed.
    Error,
}

impl From<crate::exit::Outcome> for RunOutcome {
    fn from(o: crate::exit::Outcome) -> Self {
        match o {
            crate::exit::Outcome::Success => RunOutcome::Success,
            crate::exit::Outcome::Partial => RunOutcome::Partial,
            crate::exit::Outcome::Usage => RunOutcome::Usage,
            crate::exit::Outcome::Error => RunOutcome::Error,
        }
    }
}

impl RunOutcome {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Partial => "partial",
            RunOutcome::Usage => "usage",
            RunOutcome::Error => "error",
        }
    }
}

/// One run of a job, as `<state>/runs/<job>.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`RECORD_SCHEMA`].
    pub schema: u32,
    /// The job (`images-sync`, ...).
    pub job: String,
    /// The command line after the program name (no secret is ever on it).
    #[serde(default)]
    pub argv: Vec<String>,
    /// Process id of the run.
    #[serde(default)]
    pub pid: u32,
    /// When it started (UTC).
    pub started: DateTime<Utc>,
    /// When it ended (UTC).
    pub finished: DateTime<Utc>,
    /// `finished - started`, in seconds.
    pub duration_seconds: f64,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The process exit code.
    pub exit_code: u8,
    /// One line: what the job did, or the error that stopped it.
    pub summary: String,
    /// Job-specific figures (e.g. per image source), when the job gives any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// When the last run that exited 0 ended (this one, or carried over
    /// from the previous record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a run record.
    #[error("{path} is not a run record: {reason}")]
    Garbled {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        reason: String,
    },
}

/// The record of `job`, or `None` when it never ran (no file).
pub fn read(state: &Path, job: &str) -> Result<Option<RunRecord>, ReadError> {
    let p = path(state, job);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReadError::Io { path: p, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReadError::Garbled {
            path: p,
            reason: e.to_string(),
        })
}

/// Write `record` atomically (mode 0644: it holds no secret), carrying
/// `last_success` over from the previous record when this run did not
/// succeed.
pub fn write(state: &Path, record: &RunRecord) -> std::io::Result<PathBuf> {
    let mut rec = record.clone();
    if rec.outcome == RunOutcome::Success {
        rec.last_success = Some(rec.finished);
    } else if rec.last_success.is_none() {
        rec.last_success = read(state, &rec.job)
            .ok()
            .flatten()
            .and_then(|prev| prev.last_success);
    }
    let p = path(state, &rec.job);
    let bytes = serde_json::to_vec_pretty(&rec).map_err(std::io::Error::other)?;
    super::write_atomic(&p, &bytes, 0o644)?;
    Ok(p)
}

/// What a running job said about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Note {
    /// One line.
    pub summary: Option<String>,
    /// Job-specific figures.
    pub detail: Option<serde_json::Value>,
}

tokio::task_local! {
    static NOTE: RefCell<Note>;
}

/// Run `fut` with a fresh note slot, and return what it noted.
pub async fn noting<F: Future>(fut: F) -> (F::Output, Note) {
    NOTE.scope(RefCell::new(Note::default()), async move {
        let out = fut.await;
        let note = NOTE.with(|n| n.take());
        (out, note)
    })
    .await
}

/// Set the run's one-line summary (a no-op outside [`noting`]).
pub fn note_summary(summary: impl Into<String>) {
    let summary = summary.into();
    let _ = NOTE.try_with(|n| n.borrow_mut().summary = Some(summary));
}

/// Set the run's job-specific detail (a no-op outside [`noting`]).
pub fn note_detail(detail: serde_json::Value) {
    let _ = NOTE.try_with(|n| n.borrow_mut().detail = Some(detail));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(outcome: RunOutcome, at: &str) -> RunRecord {
        let t: DateTime<Utc> = at.parse().unwrap();
        RunRecord {
            schema: RECORD_SCHEMA,
            job: "images-sync".into(),
            argv: vec!["images".into(), "sync".into()],
            pid: 1,
            started: t,
            finished: t,
            duration_seconds: 0.0,
            outcome,
            exit_code: 0,
            summary: "x".into(),
            detail: None,
            last_success: None,
        }
    }

    #[test]
    fn last_success_is_carried_over_failed_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), "images-sync").unwrap().is_none());
        write(
            dir.path(),
            &rec(RunOutcome::Success, "2026-01-01T00:00:00Z"),
        )
        .unwrap();
        write(dir.path(), &rec(RunOutcome::Error, "2026-01-02T00:00:00Z")).unwrap();
        let r = read(dir.path(), "images-sync").unwrap().unwrap();
        assert_eq!(r.outcome, RunOutcome::Error);
        assert_eq!(
            r.last_success.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        std::fs::write(path(dir.path(), "images-sync"), b"{").unwrap();
        assert!(matches!(
            read(dir.path(), "images-sync"),
            Err(ReadError::Garbled { .. })
        ));
    }

    #[tokio::test]
    async fn notes_are_scoped_to_the_run() {
        note_summary("outside: dropped");
        let ((), note) = noting(async {
            note_summary("3 sources");
            note_detail(serde_json::json!({"a": 1}));
        })
        .await;
        assert_eq!(note.summary.as_deref(), Some("3 sources"));
        assert_eq!(note.detail, Some(serde_json::json!({"a": 1})));
    }
}
