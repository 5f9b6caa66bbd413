//! Per-flow sections of `appliance.yaml` (`accounting`, `ams`, `info`,
//! `images`). Each lives in its own file with the same four parts, so the
//! flows grow their configuration without touching the core:
//!
//! - `Raw`: the section as written (every field optional), decoded strictly
//!   through [`MapReader`](super::decode::MapReader) (unknown keys are errors
//!   with a "did you mean").
//! - `Section`: the validated section, with defaults applied; `Serialize`
//!   gives `config show` its view (secrets are [`Secret`](crate::secret::Secret)
//!   and print as `<redacted>`).
//! - `validate(raw, d) -> Section`: semantic checks, reported through `d`
//!   with the section's key paths so they carry file:line:column.
//! - the section's keys in `example.yaml`.

pub mod accounting;
pub mod ams;
pub mod images;
pub mod info;
