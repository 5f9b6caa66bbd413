//! `accounting status`: the spool's depth and oldest element, locks and
//! temporaries, the last run and the last successful send (recorded by
//! `accounting send` in `<state>/accounting/send.json`), and the quarantine.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::quarantine::{Entry, Quarantine};
use super::send::SendReport;

/// What `accounting send` records about its runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendState {
    /// The last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
    /// The last run that ended without error (it may have sent nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<RunRecord>,
    /// The last time a message was accepted by the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<String>,
}

/// One run, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it ended (RFC 3339, UTC).
    pub at: String,
    /// Messages sent.
    pub sent: usize,
    /// Messages quarantined.
    pub quarantined: usize,
    /// Elements left in the spool.
    pub left: usize,
    /// What stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SendState {
    /// Read the state file (absent: empty; unreadable or garbled: empty,
    /// it is only bookkeeping).
    pub fn read(path: &Path) -> SendState {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Fold a finished (non-dry) run in.
    pub fn record(&mut self, report: &SendReport, now: SystemTime) {
        let at = chrono::DateTime::<chrono::Utc>::from(now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rec = RunRecord {
            at: at.clone(),
            sent: report.sent,
            quarantined: report.quarantined.len(),
            left: report.left,
            error: report.error.clone(),
        };
        if report.error.is_none() {
            self.last_success = Some(rec.clone());
        }
        if report.sent > 0 {
            self.last_sent_at = Some(at);
        }
        self.last_run = Some(rec);
    }

    /// Write it atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::state::write_atomic(path, &bytes, 0o644)
    }
}

/// The oldest element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Oldest {
    /// Its name.
    pub name: String,
    /// When it was spooled (from its name; RFC 3339, UTC).
    pub spooled_at: String,
    /// Age in seconds at the time of the status.
    pub age_seconds: u64,
}

/// `accounting status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The spool.
    pub spool: PathBuf,
    /// Elements waiting (locked or not).
    pub queued: usize,
    /// Of those, locked right now.
    pub locked: usize,
    /// Temporaries (elements being written).
    pub temporaries: usize,
    /// The oldest waiting element.
    pub oldest: Option<Oldest>,
    /// The send runs.
    pub send: SendState,
    /// The quarantine directory.
    pub quarantine_dir: PathBuf,
    /// Quarantined messages.
    pub quarantined: Vec<Entry>,
}

/// The time encoded in an element file name (8 hex seconds, 5 hex µs).
pub fn element_time(file: &str) -> Option<SystemTime> {
    let secs = u64::from_str_radix(file.get(0..8)?, 16).ok()?;
    let micros = u64::from_str_radix(file.get(8..13)?, 16).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Gather the status at `now`. A spool that does not exist is empty.
pub fn gather(
    spool: &Path,
    quarantine: &Quarantine,
    state_file: &Path,
    now: SystemTime,
) -> std::io::Result<Status> {
    let mut queued = 0;
    let mut locked = 0;
    let mut temporaries = 0;
    let mut oldest: Option<(String, String)> = None;
    let mut dirs: Vec<String> = match std::fs::read_dir(spool) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_hex(n, 8))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    dirs.sort();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(spool.join(&dir)) else {
            continue;
        };
        for name in rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
        {
            if is_hex(&name, 14) {
                queued += 1;
                let key = (dir.clone(), name.clone());
                if oldest.as_ref().is_none_or(|o| key < *o) {
                    oldest = Some(key);
                }
            } else if let Some(stem) = name.strip_suffix(".lck") {
                locked += usize::from(is_hex(stem, 14));
            } else if crate::spool::is_temporary(&name) {
                temporaries += 1;
            }
        }
    }
    let oldest = oldest.map(|(dir, file)| {
        let t = element_time(&file).unwrap_or(UNIX_EPOCH);
        Oldest {
            name: format!("{dir}/{file}"),
            spooled_at: chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            age_seconds: now.duration_since(t).unwrap_or_default().as_secs(),
        }
    });
    let quarantined = quarantine.list().map_err(|e| e.source)?;
    Ok(Status {
        spool: spool.to_path_buf(),
        queued,
        locked,
        temporaries,
        oldest,
        send: SendState::read(state_file),
        quarantine_dir: quarantine.dir().to_path_buf(),
        quarantined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_from_name() {
        let t = element_time("6b02e26470f5e0").unwrap();
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 0x6b02_e264);
        assert_eq!(d.subsec_micros(), 0x70f5e);
        assert!(element_time("xyz").is_none());
    }
}
