//! What `appliance migrate` says: the `--json` report (documented in
//! `docs/migrate-json.md`), its human form, and the unified diffs of
//! `--dry-run`.

use std::path::PathBuf;

use serde::Serialize;

use super::Note;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Configuration and state were already at this release's schemas.
    UpToDate,
    /// A fresh state directory was stamped; nothing else to do.
    Initialised,
    /// Migrated.
    Migrated,
    /// `--dry-run`: what a run would do; nothing was changed.
    DryRun,
    /// A step of the switch failed; the previous version was put back.
    RolledBack,
}

/// The configuration file's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigReport {
    /// The file.
    pub path: PathBuf,
    /// Whether it exists.
    pub exists: bool,
    /// Its schema version as found (`null` when there is no file).
    pub found: Option<u64>,
    /// Its schema version now (or after the run, for `--dry-run`).
    pub version: Option<u64>,
    /// Whether the run changes it.
    pub changed: bool,
    /// `kept` (targeted edits: comments and layout kept) or
    /// `rewritten: <why>` (comments lost; the original is in the backup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// The changes, step by step.
    pub changes: Vec<Note>,
}

/// The state's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateReport {
    /// `paths.state`.
    pub path: PathBuf,
    /// `paths.image-data`.
    pub image_data: PathBuf,
    /// The stamp as found; `null`: no stamp (schema 1 data, or a fresh
    /// state, see `fresh`).
    pub found: Option<u64>,
    /// No stamp and no data: a fresh install.
    pub fresh: bool,
    /// Its schema version now (or after the run, for `--dry-run`).
    pub version: Option<u64>,
    /// Whether the run changes it.
    pub changed: bool,
    /// Files renamed (image cache entries).
    pub renamed: usize,
    /// Files written (indexes, the stamp).
    pub written: usize,
    /// The changes, step by step.
    pub changes: Vec<Note>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// This binary's release.
    pub release: &'static str,
    /// `appliance.yaml`.
    pub config: ConfigReport,
    /// The state.
    pub state: StateReport,
    /// The backup of what the run changed
    /// (`<state>/backups/<timestamp>/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// An interrupted earlier run this run finished first: `forward` (its
    /// switch was completed) or `rollback` (its undo was completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_interrupted: Option<String>,
    /// What failed (`rolled-back`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// `--dry-run`: the unified diff of every file the run would write and
    /// the renames it would make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// After the switch: the problems `appliance config check` reports for
    /// the migrated file (`FILE:LINE:COL: KEY: message; hint`), if any.
    pub check: Vec<String>,
}

impl Report {
    /// The exit code class.
    pub fn exit(&self) -> crate::exit::Outcome {
        match self.outcome {
            Outcome::RolledBack => crate::exit::Outcome::Error,
            _ => crate::exit::Outcome::Success,
        }
    }

    /// The human form.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let (c, s) = (&self.config, &self.state);
        let v = |x: Option<u64>| x.map_or("none".to_string(), |v| v.to_string());
        if let Some(f) = &self.finished_interrupted {
            out.push_str(&format!("finished an interrupted migration ({f})\n"));
        }
        if self.outcome == Outcome::UpToDate {
            out.push_str(&format!(
                "up to date: nothing to migrate (configuration {}, state {})\n",
                if c.exists {
                    format!("schema {}", v(c.found))
                } else {
                    format!("{}: none", c.path.display())
                },
                match s.found {
                    Some(n) => format!("schema {n}"),
                    None => "none yet".into(),
                }
            ));
            return out;
        }
        if c.changed {
            out.push_str(&format!(
                "configuration {}: schema {} -> {}\n",
                c.path.display(),
                v(c.found),
                v(c.version)
            ));
            for n in &c.changes {
                out.push_str(&format!("  - {}\n", n.change));
            }
            match c.layout.as_deref() {
                Some("kept") => out.push_str("  comments and layout kept\n"),
                Some(other) => out.push_str(&format!(
                    "  the file was {other}; its comments are only in the backup\n"
                )),
                None => {}
            }
        }
        if s.changed {
            let from = if s.fresh {
                "none (fresh)".to_string()
            } else {
                s.found
                    .map_or("1 (no stamp)".to_string(), |n| n.to_string())
            };
            out.push_str(&format!(
                "state {} (image cache {}): schema {} -> {}\n",
                s.path.display(),
                s.image_data.display(),
                from,
                v(s.version)
            ));
            for n in &s.changes {
                out.push_str(&format!("  - {}\n", n.change));
            }
        }
        if let Some(d) = &self.diff {
            out.push('\n');
            out.push_str(d);
        }
        if let Some(b) = &self.backup {
            out.push_str(&format!("backup: {}\n", b.display()));
        }
        match self.outcome {
            Outcome::DryRun => out.push_str("dry run: nothing was changed\n"),
            Outcome::Migrated => out.push_str("migrated\n"),
            Outcome::Initialised => out.push_str("state stamped; nothing else to do\n"),
            Outcome::RolledBack => out.push_str(&format!(
                "FAILED: {}; the previous configuration and state are back in place\n",
                self.failure.as_deref().unwrap_or("unknown failure")
            )),
            Outcome::UpToDate => {}
        }
        if !self.check.is_empty() {
            out.push_str(&format!(
                "note: `appliance config check` reports {} problem(s) in the migrated file, for you to fix:\n",
                self.check.len()
            ));
            for p in &self.check {
                out.push_str(&format!("  {p}\n"));
            }
        }
        out
    }
}

/// A unified diff of `old` -> `new` (empty when equal).
pub fn unified(old_name: &str, new_name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_is_standard() {
        let d = unified("a/x", "b/x", "a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(unified("a", "b", "same\n", "same\n"), "");
        let d = unified("none", "b/s", "", "2\n");
        assert_eq!(d, "--- none\n+++ b/s\n@@ -0,0 +1 @@\n+2\n");
    }
}
