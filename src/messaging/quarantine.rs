//! The quarantine: messages the broker refused for what they are (HTTP 400,
//! 413) or that cannot be sent at all (not UTF-8), kept with the reason so
//! nothing is lost and the rest of the spool goes on (unlike `ssmsend`,
//! which retries such a message forever, apel/ssm#155, #156).
//!
//! Layout, one pair per message, both mode 0600 in a 0700 directory:
//!
//! ```text
//! <quarantine>/<dir>-<file>.msg    the message exactly as it was in the spool
//! <quarantine>/<dir>-<file>.json   the note: empaid, reason, HTTP status, broker answer, time
//! ```
//!
//! The message is written (atomically, fsynced) before the note, and both
//! before the element leaves the spool: a crash in between leaves a
//! duplicate, never a loss.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spool::ElementName;

/// Why a message is in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The spool element name (the AMS `empaid`).
    pub empaid: String,
    /// Why, for a person.
    pub reason: String,
    /// The broker's HTTP status, when the broker refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The broker's answer (excerpt), when the broker refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// When (RFC 3339, UTC).
    pub quarantined_at: String,
    /// Size of the message, bytes.
    pub bytes: u64,
}

/// A quarantined message, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The note.
    #[serde(flatten)]
    pub note: Note,
    /// The message file.
    pub file: PathBuf,
}

/// A quarantine directory failure.
#[derive(Debug, thiserror::Error)]
#[error("quarantine {path}: {source}")]
pub struct QuarantineError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// The quarantine directory.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    /// The quarantine at `dir` (created, mode 0700, on the first [`Quarantine::put`]).
    pub fn new(dir: impl Into<PathBuf>) -> Quarantine {
        Quarantine { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stem(name: &ElementName) -> String {
        format!("{}-{}", name.dir(), name.file())
    }

    /// Keep `message` with `note`; returns the message file.
    pub fn put(
        &self,
        name: &ElementName,
        message: &[u8],
        note: &Note,
    ) -> Result<PathBuf, QuarantineError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| QuarantineError { path, source }
        };
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).map_err(err(&self.dir))?;
            std::fs::set_permissions(
                &self.dir,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .map_err(err(&self.dir))?;
        }
        let stem = Self::stem(name);
        let msg = self.dir.join(format!("{stem}.msg"));
        let json = self.dir.join(format!("{stem}.json"));
        crate::state::write_atomic(&msg, message, 0o600).map_err(err(&msg))?;
        let note_bytes = serde_json::to_vec_pretty(note).map_err(|e| QuarantineError {
            path: json.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::state::write_atomic(&json, &note_bytes, 0o600).map_err(err(&json))?;
        Ok(msg)
    }

    /// Every quarantined message with its note, oldest element first. A
    /// message without a readable note is listed with reason "no note".
    pub fn list(&self) -> Result<Vec<Entry>, QuarantineError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(QuarantineError {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "msg"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for file in files {
            let note_path = file.with_extension("json");
            let note = std::fs::read(&note_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Note>(&b).ok());
            let note = match note {
                Some(n) => n,
                None => {
                    let stem = file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .replacen('-', "/", 1);
                    Note {
                        empaid: stem,
                        reason: "no note (interrupted while quarantining)".into(),
                        status: None,
                        answer: None,
                        quarantined_at: String::new(),
                        bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
                    }
                }
            };
            out.push(Entry { note, file });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn put_and_list() {
        let tmp = tempfile::tempdir().unwrap();
        let q = Quarantine::new(tmp.path().join("q"));
        assert!(q.list().unwrap().is_empty());
        let name = ElementName::parse("6b02e264/6b02e26470f5e0").unwrap();
        let note = Note {
            empaid: name.to_string(),
            reason: "AMS answered HTTP 413".into(),
            status: Some(413),
            answer: Some("{\"error\": {}}".into()),
            quarantined_at: "2026-01-01T00:00:00Z".into(),
            bytes: 3,
        };
        let f = q.put(&name, b"abc", &note).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abc");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(q.dir()), 0o700);
        let listed = q.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].note, note);
        std::fs::remove_file(f.with_extension("json")).unwrap();
        assert_eq!(q.list().unwrap()[0].note.empaid, "6b02e264/6b02e26470f5e0");
    }
}
