//! `appliance doctor`'s checks: the model of a check and the pure judges
//! of what the probes saw (no I/O; `cmd::doctor` makes the calls and passes
//! their results and the clock in). `docs/doctor-json.md` documents the
//! JSON report and every check id.
//!
//! - [`clock`]: skew between this host and Keystone's `Date` header;
//! - [`gocdb`]: GOCDB's `get_service` answer for the site: the endpoint
//!   and the host DN on the services that need it;
//! - [`proxy`]: which proxy (if any) each remote URL goes through, with
//!   reqwest's rules for `HTTP(S)_PROXY`, `ALL_PROXY` and `NO_PROXY`;
//! - [`roles`]: what a permission probe's answer means, and the remedy.

pub mod clock;
pub mod gocdb;
pub mod proxy;
pub mod roles;

use serde::Serialize;

/// A check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Not needed, or nothing to check with.
    Skipped,
    /// Works, but needs attention.
    Warning,
    /// Broken: a job will fail.
    Failed,
}

impl Verdict {
    /// The word on screen.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Skipped => "SKIP",
            Verdict::Warning => "WARN",
            Verdict::Failed => "FAIL",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id (`keystone.clock`, `roles.images.create`, ...).
    pub id: String,
    /// What it is about (a project, a URL, a host, a file).
    pub subject: String,
    /// The result.
    pub status: Verdict,
    /// What was seen.
    pub message: String,
    /// What to do (always there unless `ok`).
    pub remedy: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn ok(id: &str, subject: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            subject: subject.into(),
            status: Verdict::Ok,
            message: message.into(),
            remedy: None,
        }
    }
    /// A check with a problem, or skipped, and what to do.
    pub fn with(
        id: &str,
        status: Verdict,
        subject: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            subject: subject.into(),
            status,
            message: message.into(),
            remedy: Some(remedy.into()),
        }
    }
    /// A failed check.
    pub fn failed(
        id: &str,
        subject: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Self::with(id, Verdict::Failed, subject, message, remedy)
    }
    /// A warning.
    pub fn warning(
        id: &str,
        subject: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Self::with(id, Verdict::Warning, subject, message, remedy)
    }
    /// A skipped check, and how it could run.
    pub fn skipped(
        id: &str,
        subject: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Self::with(id, Verdict::Skipped, subject, message, remedy)
    }
}

/// Counts per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Passed.
    pub ok: usize,
    /// Warnings.
    pub warning: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Summary {
    /// Count `checks`.
    pub fn of(checks: &[Check]) -> Summary {
        let mut s = Summary::default();
        for c in checks {
            match c.status {
                Verdict::Ok => s.ok += 1,
                Verdict::Warning => s.warning += 1,
                Verdict::Failed => s.failed += 1,
                Verdict::Skipped => s.skipped += 1,
            }
        }
        s
    }
}
