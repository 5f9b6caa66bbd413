//! Per-project accounting high-water marks: where the next extraction of a
//! project starts (spec accounting.md §1.1, §8.6-8.7).
//!
//! Ours live in `<state>/accounting/lastrun.<project id>`, one line in
//! cASO's format (Python `str()` of an aware UTC datetime:
//! `2024-05-01 10:00:01.123456+00:00`), written atomically with mode 0600.
//! When a project has none yet, cASO's `<caso spooldir>/lastrun.<project>`
//! (by id, then by name: cASO names the file after the project as
//! configured) is imported, else cASO's global `lastrun` (the one file of
//! cASO before 1.4.1, which later versions fall back to in the same way;
//! spec legacy-appliance.md §3.1), so a site switches from cASO without a
//! gap or a double count. A mark never moves backwards
//! ([`LastRunStore::advance`]).
//!
//! The caller advances a project's mark only after every message of that
//! project is durably in the spool, and never after a failed extraction.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Why a mark could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LastRunError {
    /// The file exists but could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file holds no time we understand.
    #[error("{path}: {text:?} is not a time (expected e.g. `2024-05-01 10:00:01+00:00`); fix or delete the file")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// Writing the new mark failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where a project's mark came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Our own file.
    Ours(PathBuf),
    /// A cASO `lastrun.<project>` file.
    Caso(PathBuf),
}

/// A project's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// The next window starts here.
    pub at: DateTime<Utc>,
    /// Which file said so.
    pub origin: Origin,
}

/// The marks of all projects.
#[derive(Debug, Clone)]
pub struct LastRunStore {
    dir: PathBuf,
    caso_dir: Option<PathBuf>,
}

/// cASO's global lastrun file (before 1.4.1; read as a fallback after).
pub const GLOBAL: &str = "lastrun";

/// File name of a project's mark (`lastrun.<project>`, as cASO). Anything
/// that could leave the directory is replaced by `_`.
pub fn file_name(project: &str) -> String {
    let safe: String = project
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    let safe = if safe == "." || safe == ".." {
        "_".to_string()
    } else {
        safe
    };
    format!("lastrun.{safe}")
}

/// Python's `str(datetime)` of an aware UTC time, as cASO writes it.
pub fn format(t: &DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// Parses what cASO's `dateutil.parser.parse` reads in practice: RFC 3339 /
/// ISO 8601 with `T` or a space, with or without fractional seconds and
/// offset (none means UTC), or a bare date.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let t = s.replacen(' ', "T", 1);
    if let Ok(d) = DateTime::parse_from_rfc3339(&t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(&t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(n.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn read(path: &Path) -> Result<Option<DateTime<Utc>>, LastRunError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map(Some).ok_or_else(|| LastRunError::Parse {
            path: path.to_path_buf(),
            text: text.chars().take(80).collect(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LastRunError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl LastRunStore {
    /// Marks in `dir` (`<state>/accounting`), importing cASO's from
    /// `caso_dir` when given.
    pub fn new(dir: impl Into<PathBuf>, caso_dir: Option<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            caso_dir,
        }
    }

    /// Our file for `project_id`.
    pub fn path(&self, project_id: &str) -> PathBuf {
        self.dir.join(file_name(project_id))
    }

    /// The project's mark: ours, else cASO's by id, else by `name`, else
    /// cASO's global `lastrun`.
    pub fn get(
        &self,
        project_id: &str,
        name: Option<&str>,
    ) -> Result<Option<LastRun>, LastRunError> {
        let ours = self.path(project_id);
        if let Some(at) = read(&ours)? {
            return Ok(Some(LastRun {
                at,
                origin: Origin::Ours(ours),
            }));
        }
        let Some(caso) = &self.caso_dir else {
            return Ok(None);
        };
        let files = std::iter::once(project_id)
            .chain(name)
            .map(file_name)
            .chain(std::iter::once(GLOBAL.to_string()));
        for f in files {
            let p = caso.join(f);
            if let Some(at) = read(&p)? {
                return Ok(Some(LastRun {
                    at,
                    origin: Origin::Caso(p),
                }));
            }
        }
        Ok(None)
    }

    /// Moves our mark of `project_id` to `at`, durably (atomic write, mode
    /// 0600). A mark is never moved backwards: returns `Ok(false)` and
    /// leaves the file alone when ours is already later.
    pub fn advance(&self, project_id: &str, at: DateTime<Utc>) -> Result<bool, LastRunError> {
        let path = self.path(project_id);
        if let Some(current) = read(&path)? {
            if current > at {
                return Ok(false);
            }
        }
        super::write_atomic(&path, format!("{}\n", format(&at)).as_bytes(), 0o600)
            .map_err(|source| LastRunError::Write { path, source })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn caso_format_round_trips() {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 1).unwrap();
        assert_eq!(format(&t), "2024-05-01 10:00:01+00:00");
        let t2 = t + chrono::Duration::microseconds(123_456);
        assert_eq!(format(&t2), "2024-05-01 10:00:01.123456+00:00");
        for s in [
            "2024-05-01 10:00:01.123456+00:00",
            "2024-05-01T10:00:01.123456Z",
            "2024-05-01T12:00:01.123456+02:00",
            "2024-05-01 10:00:01.123456",
        ] {
            assert_eq!(parse(s), Some(t2), "{s}");
        }
        assert_eq!(parse(&format(&t)), Some(t));
        assert_eq!(parse("1970-01-01"), Some(Utc.timestamp_opt(0, 0).unwrap()));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn ours_first_then_caso_by_id_then_name_and_never_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let caso = dir.path().join("caso");
        std::fs::create_dir_all(&caso).unwrap();
        let store = LastRunStore::new(dir.path().join("state"), Some(caso.clone()));
        assert_eq!(store.get("p1", Some("alpha")).unwrap(), None);
        std::fs::write(caso.join("lastrun.alpha"), "2024-05-01 10:00:01+00:00").unwrap();
        let got = store.get("p1", Some("alpha")).unwrap().unwrap();
        assert_eq!(got.origin, Origin::Caso(caso.join("lastrun.alpha")));
        std::fs::write(caso.join("lastrun.p1"), "2024-05-02 10:00:01+00:00").unwrap();
        let got = store.get("p1", Some("alpha")).unwrap().unwrap();
        assert_eq!(got.at, Utc.with_ymd_and_hms(2024, 5, 2, 10, 0, 1).unwrap());

        let t = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        assert!(store.advance("p1", t).unwrap());
        let got = store.get("p1", None).unwrap().unwrap();
        assert_eq!((got.at, got.origin), (t, Origin::Ours(store.path("p1"))));
        let mode = std::fs::metadata(store.path("p1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!store
            .advance("p1", t - chrono::Duration::seconds(1))
            .unwrap());
        assert_eq!(store.get("p1", None).unwrap().unwrap().at, t);
    }

    #[test]
    fn caso_global_lastrun_is_the_last_resort() {
        let dir = tempfile::tempdir().unwrap();
        let caso = dir.path().join("caso");
        std::fs::create_dir_all(&caso).unwrap();
        std::fs::write(caso.join("lastrun"), "2020-08-20 04:14:09.018277+00:00").unwrap();
        let store = LastRunStore::new(dir.path().join("state"), Some(caso.clone()));
        let got = store.get("p1", Some("alpha")).unwrap().unwrap();
        assert_eq!(got.origin, Origin::Caso(caso.join("lastrun")));
        assert_eq!(format(&got.at), "2020-08-20 04:14:09.018277+00:00");
        std::fs::write(caso.join("lastrun.alpha"), "2021-01-01 00:00:00+00:00").unwrap();
        let got = store.get("p1", Some("alpha")).unwrap().unwrap();
        assert_eq!(got.origin, Origin::Caso(caso.join("lastrun.alpha")));
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LastRunStore::new(dir.path(), None);
        std::fs::write(store.path("p"), "not a time").unwrap();
        let e = store.get("p", None).unwrap_err().to_string();
        assert!(e.contains("lastrun.p") && e.contains("not a time"), "{e}");
        assert_eq!(file_name("../x"), "lastrun..._x");
        assert_eq!(file_name(".."), "lastrun._");
    }
}
