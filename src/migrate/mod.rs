//! Migrations of the configuration and the local state across appliance
//! releases (`appliance migrate`).
//!
//! Two artifacts carry a schema version: `appliance.yaml`
//! (`schema-version`, [`crate::config::SCHEMA_VERSION`]) and the local
//! state (`<state>/schema-version`,
//! [`crate::state::schema::STATE_SCHEMA_VERSION`]), the state being the
//! state directory and the image cache under `paths.image-data`. Each has
//! an ordered list of numbered steps, one file per step, each taking
//! version `N - 1` to `N`:
//!
//! - `config_v2`: `components.accounting.schedule` becomes
//!   `extract-schedule` + `send-schedule`.
//! - `state_v2`: the image cache entries take the injective names of
//!   issue #14 item 4 (file and index key renamed, never downloaded again);
//!   the state gets its stamp.
//!
//! Steps are domain logic: pure functions over text and values, no I/O, no
//! clock. A config step edits a [`Document`] (untyped: it must not assume
//! any key exists) so that the administrator's comments and layout survive;
//! a state step reads a [`view::StateView`] (the state's small files and
//! the cache listing, read by the runner) and returns operations (renames,
//! whole-file writes). [`plan_config`] and [`plan_state`] chain the steps
//! in memory from the found version to the current one: the disk only ever
//! sees one switch, from the old version to the new one.
//!
//! [`runner`] does the I/O: it reads, plans, refuses anything newer than
//! this release before touching anything, keeps a backup, writes a journal,
//! and switches every artifact atomically; see ARCHITECTURE.md ("Upgrades")
//! for what "old or new, never a mix" means across config and state and how
//! an interrupted run is finished.

pub mod config_v2;
pub mod journal;
pub mod report;
pub mod runner;
pub mod state_v2;
pub mod view;

use crate::config::yaml::{Document, Layout, NewScalar, ScalarKind};
use crate::config::SCHEMA_VERSION;
use crate::state::schema::STATE_SCHEMA_VERSION;
use view::{StateOp, StateView};

/// Why a step could not migrate what it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {hint}")]
pub struct StepError {
    /// What is wrong, naming the key or file.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl From<crate::config::yaml::EditError> for StepError {
    fn from(e: crate::config::yaml::EditError) -> Self {
        StepError {
            message: e.to_string(),
            hint:
                "edit the file by hand as the release notes describe, or restore it from a backup"
                    .into(),
        }
    }
}

/// One configuration step: `to - 1` -> `to`. Returns a line per change.
pub struct ConfigStep {
    /// The version it produces.
    pub to: u64,
    /// Its name (the file's name).
    pub name: &'static str,
    /// The edit.
    pub forward: fn(&mut Document) -> Result<Vec<String>, StepError>,
}

/// One state step: `to - 1` -> `to`.
pub struct StateStep {
    /// The version it produces.
    pub to: u64,
    /// Its name (the file's name).
    pub name: &'static str,
    /// The operations, from the state as it is after the earlier steps.
    pub forward: fn(&StateView) -> Result<StateChanges, StepError>,
}

/// What a state step does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// In order.
    pub ops: Vec<StateOp>,
    /// One line per change, for the operator.
    pub notes: Vec<String>,
}

/// The configuration steps, in order.
pub const CONFIG_STEPS: &[ConfigStep] = &[config_v2::STEP];

/// The state steps, in order.
pub const STATE_STEPS: &[StateStep] = &[state_v2::STEP];

/// Why nothing can be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The file is not YAML.
    #[error("{line}:{column}: YAML syntax error: {message}")]
    Syntax {
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// No usable `schema-version`.
    #[error("no schema version: {0}; add `schema-version: N` at the top (N = the schema of the release that wrote the file, 1 before schema versions changed)")]
    NoVersion(String),
    /// The configuration is newer than this release.
    #[error("the configuration is at schema {found}, newer than this release reads ({SCHEMA_VERSION}); nothing was changed: run the release that wrote it, or restore the configuration from a backup")]
    ConfigNewer {
        /// `schema-version` of the file.
        found: u64,
    },
    /// The state is newer than this release.
    #[error("the state is at schema {found}, newer than this release uses ({STATE_SCHEMA_VERSION}); nothing was changed: run the release that wrote it, or restore the state from a backup")]
    StateNewer {
        /// The stamp.
        found: u64,
    },
    /// A step refused.
    #[error("step {step}: {error}")]
    Step {
        /// The step's name.
        step: &'static str,
        /// Why.
        error: StepError,
    },
}

/// One change made by a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The step.
    pub step: &'static str,
    /// The change.
    pub change: String,
}

/// The configuration's migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPlan {
    /// Found version.
    pub from: u64,
    /// Version after the plan.
    pub to: u64,
    /// The new text, when it changes.
    pub text: Option<String>,
    /// How the text was produced.
    pub layout: Layout,
    /// The changes.
    pub notes: Vec<Note>,
}

/// The version of a configuration text, checked against `target` (this
/// release's [`SCHEMA_VERSION`]).
fn config_version(text: &str, target: u64) -> Result<(Document, u64), PlanError> {
    let doc = Document::parse(text).map_err(|e| PlanError::Syntax {
        line: e.mark.line,
        column: e.mark.column,
        message: e.message,
    })?;
    let version = match doc.scalar(&["schema-version"]) {
        Some((ScalarKind::Int(v), _)) if v >= 1 => v as u64,
        Some((_, text)) => {
            return Err(PlanError::NoVersion(format!(
                "`schema-version: {text}` is not a version"
            )))
        }
        None => return Err(PlanError::NoVersion("`schema-version` is missing".into())),
    };
    if version > target {
        return Err(PlanError::ConfigNewer { found: version });
    }
    Ok((doc, version))
}

/// Plan the configuration's migration to [`SCHEMA_VERSION`].
pub fn plan_config(text: &str) -> Result<ConfigPlan, PlanError> {
    plan_config_with(text, CONFIG_STEPS, SCHEMA_VERSION)
}

fn plan_config_with(
    text: &str,
    steps: &[ConfigStep],
    target: u64,
) -> Result<ConfigPlan, PlanError> {
    let (mut doc, from) = config_version(text, target)?;
    if from == target {
        return Ok(ConfigPlan {
            from,
            to: target,
            text: None,
            layout: Layout::Kept,
            notes: Vec::new(),
        });
    }
    let mut notes = Vec::new();
    for step in steps.iter().filter(|s| s.to > from && s.to <= target) {
        let changes = (step.forward)(&mut doc).map_err(|error| PlanError::Step {
            step: step.name,
            error,
        })?;
        notes.extend(changes.into_iter().map(|change| Note {
            step: step.name,
            change,
        }));
    }
    doc.set_scalar(&["schema-version"], NewScalar::Int(target as i64))
        .map_err(|e| PlanError::Step {
            step: "schema-version",
            error: e.into(),
        })?;
    notes.push(Note {
        step: "schema-version",
        change: format!("schema-version: {from} -> {target}"),
    });
    let finished = doc.finish();
    let text = match &finished.layout {
        Layout::Kept => finished.text,
        Layout::Rewritten(_) => format!(
            "# Rewritten by `appliance migrate` (schema {from} -> {target}): the layout could not be\n\
             # kept. The original, with its comments, is in the state directory's backups/.\n{}",
            finished.text
        ),
    };
    Ok(ConfigPlan {
        from,
        to: target,
        text: Some(text),
        layout: finished.layout,
        notes,
    })
}

/// The state's migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePlan {
    /// Found version: the stamp, 1 for unstamped data, `None` for a fresh
    /// (empty) state that only needs its stamp.
    pub from: Option<u64>,
    /// Version after the plan.
    pub to: u64,
    /// The operations (the stamp is the runner's, written last).
    pub ops: Vec<StateOp>,
    /// The changes.
    pub notes: Vec<Note>,
}

impl StatePlan {
    /// Whether anything is to be done.
    pub fn is_noop(&self) -> bool {
        self.from == Some(self.to)
    }
}

/// Plan the state's migration to [`STATE_SCHEMA_VERSION`]. `stamp` is the
/// state's stamp, if any.
pub fn plan_state(stamp: Option<u64>, view: &StateView) -> Result<StatePlan, PlanError> {
    plan_state_with(stamp, view, STATE_STEPS, STATE_SCHEMA_VERSION)
}

fn plan_state_with(
    stamp: Option<u64>,
    view: &StateView,
    steps: &[StateStep],
    target: u64,
) -> Result<StatePlan, PlanError> {
    let from = match stamp {
        Some(v) if v > target => return Err(PlanError::StateNewer { found: v }),
        Some(v) => v,
        None if view.is_empty() => {
            return Ok(StatePlan {
                from: None,
                to: target,
                ops: Vec::new(),
                notes: Vec::new(),
            })
        }
        None => 1,
    };
    let mut view = view.clone();
    let mut ops = Vec::new();
    let mut notes = Vec::new();
    for step in steps.iter().filter(|s| s.to > from && s.to <= target) {
        let changes = (step.forward)(&view).map_err(|error| PlanError::Step {
            step: step.name,
            error,
        })?;
        view.apply(&changes.ops);
        ops.extend(changes.ops);
        notes.extend(changes.notes.into_iter().map(|change| Note {
            step: step.name,
            change,
        }));
    }
    Ok(StatePlan {
        from: Some(from),
        to: target,
        ops,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use view::{Loc, Root};

    /// Architecture invariant: steps are pure (no I/O, no clock).
    #[test]
    fn steps_do_no_io() {
        for (file, text) in [
            ("mod.rs", include_str!("mod.rs")),
            ("view.rs", include_str!("view.rs")),
            ("config_v2.rs", include_str!("config_v2.rs")),
            ("state_v2.rs", include_str!("state_v2.rs")),
            (
                "config/format/edit.rs",
                include_str!("../config/format/edit.rs"),
            ),
        ] {
            let code = text.split("#[cfg(test)]").next().unwrap();
            for banned in [
                "std::fs",
                "tokio::fs",
                "File::",
                "Utc::now",
                "SystemTime",
                "std::env",
            ] {
                assert!(!code.contains(banned), "{file} uses {banned}");
            }
        }
    }

    #[test]
    fn steps_are_numbered_without_gaps_up_to_the_current_versions() {
        let tos: Vec<u64> = CONFIG_STEPS.iter().map(|s| s.to).collect();
        assert_eq!(tos, (2..=SCHEMA_VERSION).collect::<Vec<_>>());
        let tos: Vec<u64> = STATE_STEPS.iter().map(|s| s.to).collect();
        assert_eq!(tos, (2..=STATE_SCHEMA_VERSION).collect::<Vec<_>>());
    }

    fn add(doc: &mut Document, key: &str) -> Result<Vec<String>, StepError> {
        let last = match doc.root().value {
            crate::config::yaml::Value::Map(ref e) => e.last().unwrap().key.clone(),
            _ => unreachable!(),
        };
        doc.insert_after(
            &[last.as_str()],
            key,
            crate::config::yaml::NewValue::Scalar(NewScalar::Int(1)),
            None,
        )?;
        Ok(vec![format!("added {key}")])
    }

    #[test]
    fn config_steps_run_in_number_order_from_the_found_version() {
        // Named so that alphabetical order would be wrong.
        let steps = [
            ConfigStep {
                to: 2,
                name: "b-first",
                forward: |d| add(d, "two"),
            },
            ConfigStep {
                to: 3,
                name: "a-second",
                forward: |d| add(d, "three"),
            },
        ];
        let p = plan_config_with("schema-version: 1\nx: 0\n", &steps, 3).unwrap();
        assert_eq!(
            p.text.unwrap(),
            "schema-version: 3\nx: 0\ntwo: 1\nthree: 1\n"
        );
        assert_eq!(
            p.notes.iter().map(|n| n.step).collect::<Vec<_>>(),
            ["b-first", "a-second", "schema-version"]
        );
        let p = plan_config_with("schema-version: 2\nx: 0\n", &steps, 3).unwrap();
        assert_eq!(p.text.unwrap(), "schema-version: 3\nx: 0\nthree: 1\n");
        let p = plan_config_with("schema-version: 3\nx: 0\n", &steps, 3).unwrap();
        assert_eq!((p.from, p.text), (3, None));
    }

    #[test]
    fn versions_newer_or_missing_are_refused() {
        assert_eq!(
            plan_config("schema-version: 3\n").unwrap_err(),
            PlanError::ConfigNewer { found: 3 }
        );
        assert!(matches!(
            plan_config("a: 1\n"),
            Err(PlanError::NoVersion(_))
        ));
        assert!(matches!(
            plan_config("schema-version: two\n"),
            Err(PlanError::NoVersion(_))
        ));
        assert!(matches!(
            plan_config("a: [\n"),
            Err(PlanError::Syntax { .. })
        ));
        let v = StateView::default();
        assert_eq!(
            plan_state(Some(9), &v).unwrap_err(),
            PlanError::StateNewer { found: 9 }
        );
    }

    #[test]
    fn state_versions() {
        let empty = StateView::default();
        let fresh = plan_state(None, &empty).unwrap();
        assert_eq!((fresh.from, fresh.ops.len()), (None, 0));
        assert!(!fresh.is_noop());
        let current = plan_state(Some(STATE_SCHEMA_VERSION), &empty).unwrap();
        assert!(current.is_noop());
        let mut v = StateView::default();
        v.insert(
            Loc::new(Root::State, "accounting/lastrun.p"),
            Some(b"x".to_vec()),
        );
        let old = plan_state(None, &v).unwrap();
        assert_eq!(old.from, Some(1));
    }
}
