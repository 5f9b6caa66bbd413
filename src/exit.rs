//! Exit codes and how top-level errors are shown to the operator.
//!
//! `0` success, `1` partial (some items failed, the rest was done), `2`
//! configuration or usage error (nothing was done), `3` error (the run failed).
//! Commands return an [`Outcome`]; errors that escape carry their own class.

use std::process::ExitCode;

/// How a run ended, as the operator and systemd see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some items failed; the others were done. Exit code 1.
    Partial,
    /// Bad configuration or usage; nothing was done. Exit code 2.
    Usage,
    /// The run failed. Exit code 3.
    Error,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Partial => 1,
            Outcome::Usage => 2,
            Outcome::Error => 3,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o.code())
    }
}

/// An error that is the operator's to fix (configuration, usage, a feature
/// that is not there yet): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Map an error chain to its exit class.
pub fn outcome_of_error(e: &anyhow::Error) -> Outcome {
    for cause in e.chain() {
        if cause.downcast_ref::<UsageError>().is_some()
            || cause
                .downcast_ref::<crate::config::ConfigErrors>()
                .is_some()
        {
            return Outcome::Usage;
        }
    }
    Outcome::Error
}

/// Print the error chain once, for a person, on stderr; any URL in it
/// redacted ([`crate::redact::text`]: a third-party error may quote one).
pub fn report_error(e: &anyhow::Error) {
    eprintln!("error: {}", crate::redact::text(&format!("{e:#}")));
}
