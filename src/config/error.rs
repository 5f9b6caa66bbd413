//! Configuration problems: one [`ConfigError`] per problem, all of them in a
//! [`ConfigErrors`].
//!
//! Display format, one problem per line:
//!
//! ```text
//! FILE:LINE:COL: KEY.PATH: message; hint
//! ```
//!
//! `:LINE:COL` is left out when a problem concerns a whole file (unreadable,
//! wrong mode), `KEY.PATH: ` when it concerns no key, and `; hint` when there
//! is no remedy worth suggesting. Key paths use `.` between keys and `[i]`
//! (from 0) for list items: `vos[1].projects[0].domain-name`.

use std::fmt;
use std::path::PathBuf;

use super::format::Mark;

/// One problem in a configuration file (or a file it refers to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in, as the operator named it.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<u32>,
    /// 1-based column, with `line`.
    pub column: Option<u32>,
    /// Key path, e.g. `openstack.auth.type`.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl ConfigError {
    /// A problem about a whole file.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            column: None,
            path: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem at a place in a file.
    pub fn at(
        file: impl Into<PathBuf>,
        mark: Option<Mark>,
        path: &str,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line: mark.map(|m| clamp(m.line)),
            column: mark.map(|m| clamp(m.column)),
            path: (!path.is_empty()).then(|| path.to_string()),
            message: message.into(),
            hint: None,
        }
    }

    /// Add a remedy.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Set the key path.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The problem as a JSON object (`config check --json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file.display().to_string(),
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        })
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        f.write_str(": ")?;
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration, plus the warnings found on the
/// way (so a failed `config check` can still show them). Displayed as one
/// error per line; exit code 2 (see `crate::exit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems, by file in load order, then by position.
    pub errors: Vec<ConfigError>,
    /// Warnings, already formatted like errors.
    pub warnings: Vec<String>,
}

impl ConfigErrors {
    /// A single problem.
    pub fn one(e: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![e],
            warnings: Vec::new(),
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors::one(e)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let m = Some(Mark { line: 3, column: 5 });
        let e = ConfigError::at("a.yaml", m, "site.gocdb", "missing").hint("add it");
        assert_eq!(e.to_string(), "a.yaml:3:5: site.gocdb: missing; add it");
        let e = ConfigError::at("a.yaml", m, "", "bad syntax");
        assert_eq!(e.to_string(), "a.yaml:3:5: bad syntax");
        let e = ConfigError::file("s.yaml", "world-readable");
        assert_eq!(e.to_string(), "s.yaml: world-readable");
        let all = ConfigErrors {
            errors: vec![e.clone(), e],
            warnings: vec![],
        };
        assert_eq!(
            all.to_string(),
            "s.yaml: world-readable\ns.yaml: world-readable"
        );
    }

    #[test]
    fn found_by_exit_mapping() {
        let err = anyhow::Error::from(ConfigErrors::one(ConfigError::file("x", "y")));
        assert_eq!(
            crate::exit::outcome_of_error(&err),
            crate::exit::Outcome::Usage
        );
    }
}
