//! The state of the legacy appliance carried over (spec
//! legacy-appliance.md §3, §3.7), so the switch loses no record and
//! re-extracts nothing:
//!
//! - cASO's lastrun files (`lastrun` before cASO 1.4.1, `lastrun.<project>`
//!   after, keyed by the project string cASO was configured with) are
//!   copied read-only into the appliance's state (the directory
//!   `accounting.caso-spool-dir` names); every project of the new
//!   configuration known by id gets its own mark from cASO's (its own file,
//!   else the global one), so its first extraction starts exactly where
//!   cASO stopped; a project known only by name finds cASO's file by name at
//!   its first extraction ([`crate::state::lastrun`]).
//! - the outgoing dirq spool: every element (v0.2 and v0.4 cloud messages,
//!   IP, accelerator, storage) moves into the appliance's spool under its
//!   own name, which is its age, so `accounting send` sends the oldest
//!   first and before anything extracted later. A lock older than dirq's
//!   600 s belongs to a dead ssmsend: the element is taken over; a recent
//!   one may be a running ssmsend: left alone and reported. A stranded
//!   temporary (`.tmp`, cASO died between write and link) that holds a
//!   complete message is taken over; an incomplete one is kept aside,
//!   never sent.
//! - the host certificate and key (GOCDB lists its DN for accounting).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use super::convert::{Plan, Proj};
use super::report::{HostCertReport, LastrunReport, SpoolKinds, SpoolReport, StateReport};
use super::snapshot::under;
use crate::spool::{ElementName, Options, QueueSimple};
use crate::state::lastrun::{self, LastRunStore};
use crate::state::{set_owner, write_atomic, Owner};

/// dirq's age after which a lock is stale (ssmsend's purge).
pub const STALE_LOCK: Duration = Duration::from_secs(600);
/// dirq's age after which a temporary is stranded.
pub const STRANDED_TEMP: Duration = Duration::from_secs(300);

/// How the carry-over runs.
#[derive(Debug, Clone, Copy)]
pub struct Carry<'a> {
    /// The legacy root.
    pub root: &'a Path,
    /// Change nothing: count and report only.
    pub dry_run: bool,
    /// The time of the run.
    pub now: SystemTime,
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Carry the state over; the report, and whether everything was carried
/// (false: something was left behind for a reason the report gives).
pub fn carry(plan: &Plan, c: Carry<'_>) -> (StateReport, bool) {
    let mut r = StateReport {
        notes: plan.notes.clone(),
        ..Default::default()
    };
    let mut complete = true;
    lastruns(plan, c, &mut r, &mut complete);
    r.spool = Some(spool(plan, c, &mut complete));
    r.host_cert = Some(host_cert(plan, c, &mut complete));
    (r, complete)
}

// ---- lastrun -------------------------------------------------------------

fn lastruns(plan: &Plan, c: Carry<'_>, r: &mut StateReport, complete: &mut bool) {
    let dir = under(c.root, &plan.caso_spooldir);
    let mut files: Vec<(String, Option<DateTime<Utc>>)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name == lastrun::GLOBAL || name.starts_with("lastrun.") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let at = lastrun::parse(&text);
                if at.is_none() {
                    r.notes.push(format!(
                        "{}/{name}: {:?} is not a time; not used",
                        plan.caso_spooldir,
                        text.chars().take(60).collect::<String>()
                    ));
                }
                files.push((name, at));
            } else if name == "caso_should_not_run_in_parallel" {
                r.notes.push(format!(
                    "{}/{name}: cASO's run lock, not carried (the appliance locks its own runs)",
                    plan.caso_spooldir
                ));
            }
        }
    }
    files.sort();
    r.lastrun_files = files
        .iter()
        .map(|(n, _)| format!("{}/{n}", plan.caso_spooldir))
        .collect();
    let copy = &plan.paths.caso_copy;
    if !files.is_empty() {
        r.lastrun_copy = Some(copy.display().to_string());
        if !c.dry_run {
            for (name, _) in &files {
                let from = dir.join(name);
                let res =
                    std::fs::read(&from).and_then(|b| write_atomic(&copy.join(name), &b, 0o444));
                if let Err(e) = res {
                    *complete = false;
                    r.notes.push(format!("copying {}: {e}", from.display()));
                }
            }
            let _ = set_owner(copy, Owner::User);
        }
    }
    let at_of = |name: &str| files.iter().find(|(n, _)| n == name).and_then(|(_, t)| *t);
    let global = at_of(lastrun::GLOBAL);
    let store = LastRunStore::new(plan.paths.state.join("accounting"), None);
    for p in &plan.projects {
        let own = p
            .legacy_key
            .as_ref()
            .map(|k| lastrun::file_name(k))
            .filter(|f| at_of(f).is_some());
        let (from_file, at) = match (&own, global) {
            (Some(f), _) => (Some(f.clone()), at_of(f)),
            (None, Some(g)) => (Some(lastrun::GLOBAL.to_string()), Some(g)),
            (None, None) => (None, None),
        };
        let mut rep = LastrunReport {
            project: p.proj.text(),
            vo: p.vo.clone(),
            from_file: from_file
                .as_ref()
                .map(|f| format!("{}/{f}", plan.caso_spooldir)),
            starts: at.map(|t| lastrun::format(&t)),
            how: String::new(),
        };
        rep.how = match (&p.proj, at) {
            (_, None) if p.legacy_key.is_some() => {
                "cASO has no lastrun for it: its first window starts at accounting.first-run".into()
            }
            (_, None) => "not accounted by cASO: its first window starts at accounting.first-run".into(),
            (Proj::Id(id), Some(t)) => {
                if c.dry_run {
                    format!("would become lastrun.{id}")
                } else {
                    match store.advance(id, t) {
                        Ok(true) => {
                            let _ = set_owner(&store.path(id), Owner::User);
                            format!("carried over as lastrun.{id}")
                        }
                        Ok(false) => format!("lastrun.{id} is already later: kept"),
                        Err(e) => {
                            *complete = false;
                            format!("not carried over: {e}")
                        }
                    }
                }
            }
            (Proj::Name { name, .. }, Some(_)) => format!(
                "named, not by id: its first extraction finds cASO's {} (by name, else the global one) in the copy",
                p.legacy_key
                    .as_deref()
                    .filter(|k| *k == name)
                    .map(lastrun::file_name)
                    .unwrap_or_else(|| lastrun::GLOBAL.into())
            ),
        };
        if p.legacy_key.is_none() && at.is_some() && own.is_none() {
            rep.how.push_str(
                " (cASO did not account it; its global lastrun applies, as cASO's fallback)",
            );
        }
        r.lastrun.push(rep);
    }
}

// ---- spool ---------------------------------------------------------------

/// What an outgoing message is.
pub fn kind_of(b: &[u8]) -> &'static str {
    let head = &b[..b.len().min(64)];
    if head.starts_with(b"APEL-cloud-message: v0.2") {
        "cloud_v02"
    } else if head.starts_with(b"APEL-cloud-message: v0.4") {
        "cloud_v04"
    } else if head.starts_with(b"{\"Type\": \"APEL Public IP message\"") {
        "ip"
    } else if head.starts_with(b"{\"Type\": \"APEL-accelerator-message\"") {
        "accelerator"
    } else if head.starts_with(b"<sr:StorageUsageRecords") || head.starts_with(b"<?xml") {
        "storage"
    } else {
        "other"
    }
}

fn count(k: &mut SpoolKinds, kind: &str) {
    match kind {
        "cloud_v02" => k.cloud_v02 += 1,
        "cloud_v04" => k.cloud_v04 += 1,
        "ip" => k.ip += 1,
        "accelerator" => k.accelerator += 1,
        "storage" => k.storage += 1,
        _ => k.other += 1,
    }
}

/// Whether a stranded temporary holds a whole message: a cloud message
/// whose every record has `SiteName`, `VMUUID` and `WallDuration` and ends
/// with a newline; JSON that parses; StAR XML that closes its root.
pub fn complete_message(b: &[u8]) -> bool {
    let Ok(t) = std::str::from_utf8(b) else {
        return false;
    };
    match kind_of(b) {
        "cloud_v02" | "cloud_v04" => {
            let Some((_, body)) = t.split_once('\n') else {
                return false;
            };
            t.ends_with('\n')
                && !body.trim().is_empty()
                && body.trim_end_matches('\n').split("\n%%\n").all(|rec| {
                    ["SiteName: ", "VMUUID: ", "WallDuration: "]
                        .iter()
                        .all(|k| rec.lines().any(|l| l.starts_with(k) && l.len() > k.len()))
                })
        }
        "ip" | "accelerator" => serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .and_then(|v| v.get("UsageRecords").map(|u| u.is_array()))
            .unwrap_or(false),
        "storage" => t.trim_end().ends_with("</sr:StorageUsageRecords>"),
        _ => false,
    }
}

fn age(path: &Path, now: SystemTime) -> Option<Duration> {
    let m = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(now.duration_since(m).unwrap_or_default())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn spool(plan: &Plan, c: Carry<'_>, complete: &mut bool) -> SpoolReport {
    let from = under(c.root, &plan.legacy_spool);
    let to = plan.paths.spool.clone();
    let mut r = SpoolReport {
        from: plan.legacy_spool.clone(),
        to: to.display().to_string(),
        ..Default::default()
    };
    let Ok(rd) = std::fs::read_dir(&from) else {
        r.notes.push(format!("{}: no spool there", from.display()));
        return r;
    };
    let in_place = same_dir(&from, &to);
    if in_place {
        r.notes.push(
            "the appliance's spool is the legacy one: its messages stay where they are".into(),
        );
    }
    let mut dirs: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|d| {
            d.len() == 8
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .collect();
    dirs.sort();
    let mut t = Taker {
        queue: None,
        in_place,
        dry_run: c.dry_run,
        oldest: None,
        read_only: false,
    };
    if !c.dry_run && !in_place {
        match QueueSimple::open(&to, Options::default()) {
            Ok(q) => {
                let _ = set_owner(&to, Owner::User);
                t.queue = Some(q);
            }
            Err(e) => {
                *complete = false;
                r.notes.push(format!(
                    "opening the appliance's spool: {e}; nothing taken over"
                ));
                return r;
            }
        }
    }
    let incomplete_dir = plan.paths.state.join("accounting/legacy-incomplete");
    for d in dirs {
        let dpath = from.join(&d);
        let Ok(rd) = std::fs::read_dir(&dpath) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        // taken over in this directory: the legacy files to remove once
        // the appliance's copies are durable
        let mut done: Vec<PathBuf> = Vec::new();
        for f in &names {
            let (stem, temp) = match f.strip_suffix(".tmp") {
                Some(s) => (s, true),
                None => (f.as_str(), false),
            };
            let Ok(name) = ElementName::parse(&format!("{d}/{stem}")) else {
                continue;
            };
            let path = dpath.join(f);
            let lock = dpath.join(format!("{stem}.lck"));
            if temp {
                if age(&path, c.now).is_some_and(|a| a < STRANDED_TEMP) {
                    r.locked.push(format!(
                        "{name}.tmp (being written now? run the import again once the legacy cASO is stopped)"
                    ));
                    *complete = false;
                    continue;
                }
                if names.iter().any(|n| n == stem) {
                    // linked already; only the unlink was missed
                    if !c.dry_run {
                        done.push(path);
                    }
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                if !complete_message(&bytes) {
                    r.incomplete_temporaries
                        .push(format!("{}/{d}/{f}", plan.legacy_spool));
                    if !c.dry_run {
                        let keep = incomplete_dir.join(format!("{d}-{f}"));
                        match write_atomic(&keep, &bytes, 0o600) {
                            Ok(()) => done.push(path),
                            Err(e) => {
                                *complete = false;
                                r.notes
                                    .push(format!("keeping {} aside: {e}", path.display()));
                            }
                        }
                    }
                    continue;
                }
                r.recovered_temporaries += 1;
                if t.take(&mut r, &name, &bytes, &path, &dpath, complete) {
                    done.push(path);
                }
                continue;
            }
            if f.ends_with(".lck") || f.len() != 14 {
                continue;
            }
            let mut stale_lock = None;
            if lock.exists() {
                // dirq touches the element when it locks it: its mtime is
                // the lock's age
                match age(&path, c.now) {
                    Some(a) if a < STALE_LOCK => {
                        r.locked.push(format!(
                            "{name} (locked {}s ago: a legacy ssmsend may be sending it; stop it and run the import again)",
                            a.as_secs()
                        ));
                        *complete = false;
                        continue;
                    }
                    _ => {
                        r.stale_locks += 1;
                        stale_lock = Some(lock);
                    }
                }
            }
            let Ok(bytes) = std::fs::read(&path) else {
                r.notes
                    .push(format!("{}: unreadable, left", path.display()));
                *complete = false;
                continue;
            };
            if t.take(&mut r, &name, &bytes, &path, &dpath, complete) {
                done.push(path);
                done.extend(stale_lock);
            } else if in_place && !c.dry_run {
                // stays; a stale lock is released so the sender takes it
                if let Some(l) = stale_lock {
                    let _ = std::fs::remove_file(l);
                }
            }
        }
        if done.is_empty() {
            continue;
        }
        // the copies first, then the originals
        if let Some(q) = &t.queue {
            if let Err(e) = q.sync(&d) {
                *complete = false;
                r.notes.push(format!(
                    "{d}: {e}; its messages are left in the legacy spool too"
                ));
                continue;
            }
        }
        let mut gone = true;
        for p in done {
            gone &= std::fs::remove_file(&p).is_ok();
        }
        if gone {
            let _ = std::fs::File::open(&dpath).and_then(|f| f.sync_all());
        } else {
            t.read_only = true;
        }
    }
    r.oldest = t.oldest.map(rfc3339);
    if t.read_only {
        r.notes.push("the legacy spool could not be changed (read-only?): its messages were copied but are still there; never run the legacy ssmsend on it again".into());
    }
    r
}

/// Takes elements over, one at a time.
struct Taker {
    queue: Option<QueueSimple>,
    in_place: bool,
    dry_run: bool,
    oldest: Option<SystemTime>,
    read_only: bool,
}

impl Taker {
    /// Count one waiting message and copy it into the appliance's spool
    /// (file durable; the caller syncs the directory). `true` when the
    /// legacy file at `path` may now be removed.
    fn take(
        &mut self,
        r: &mut SpoolReport,
        name: &ElementName,
        bytes: &[u8],
        path: &Path,
        dpath: &Path,
        complete: &mut bool,
    ) -> bool {
        r.waiting += 1;
        r.bytes += bytes.len() as u64;
        count(&mut r.kinds, kind_of(bytes));
        let t = name.time();
        if self.oldest.is_none_or(|o| t < o) {
            self.oldest = Some(t);
        }
        if self.dry_run {
            return false;
        }
        if self.in_place {
            // a complete stranded temporary becomes the element it was to be
            if path.extension().is_some_and(|e| e == "tmp") {
                let target = dpath.join(name.file());
                if std::fs::hard_link(path, &target).is_ok() {
                    let _ = std::fs::File::open(dpath).and_then(|f| f.sync_all());
                    return true;
                }
            }
            return false;
        }
        let Some(q) = &self.queue else {
            return false;
        };
        match q.insert_deferred(name, bytes) {
            Ok(true) => {
                r.moved += 1;
                true
            }
            Ok(false) => {
                r.already += 1;
                true
            }
            Err(e) => {
                *complete = false;
                r.notes
                    .push(format!("{name}: {e}; left in the legacy spool"));
                false
            }
        }
    }
}

// ---- host certificate ----------------------------------------------------

fn host_cert(plan: &Plan, c: Carry<'_>, complete: &mut bool) -> HostCertReport {
    let from_cert = under(c.root, &plan.host_cert);
    let from_key = under(c.root, &plan.host_key);
    let to_cert = plan.paths.host_cert.clone();
    let to_key = plan.paths.host_key.clone();
    let mut r = HostCertReport {
        from_cert: plan.host_cert.clone(),
        from_key: plan.host_key.clone(),
        to_cert: to_cert.display().to_string(),
        to_key: to_key.display().to_string(),
        ..Default::default()
    };
    let cert = match std::fs::read(&from_cert) {
        Ok(b) => b,
        Err(_) => {
            r.result = "not found: install the host certificate and key whose DN GOCDB lists for the site's accounting service (eu.egi.cloud.accounting)".into();
            *complete = false;
            return r;
        }
    };
    if let Ok(x) = openssl::x509::X509::from_pem(&cert) {
        r.subject = Some(crate::messaging::identity::slash_dn(x.subject_name()));
        r.not_after = Some(x.not_after().to_string());
    }
    let key = match std::fs::read(&from_key) {
        Ok(b) => b,
        Err(e) => {
            r.result = format!(
                "the key {} cannot be read ({e}): copy it by hand (mode 0600)",
                from_key.display()
            );
            *complete = false;
            return r;
        }
    };
    if same_file(&from_cert, &to_cert) && same_file(&from_key, &to_key) {
        r.result = "kept in place".into();
        return r;
    }
    let existing = |p: &PathBuf, b: &[u8]| std::fs::read(p).ok().map(|e| e == b);
    match (existing(&to_cert, &cert), existing(&to_key, &key)) {
        (Some(true), Some(true)) => {
            r.result = "already there".into();
            return r;
        }
        (Some(false), _) | (_, Some(false)) => {
            r.result = "NOT copied: the appliance already has another certificate or key there; keep the one GOCDB lists".into();
            *complete = false;
            return r;
        }
        _ => {}
    }
    if c.dry_run {
        r.result = "would be copied (certificate 0644, key 0600)".into();
        return r;
    }
    let res =
        write_atomic(&to_cert, &cert, 0o644).and_then(|()| write_atomic(&to_key, &key, 0o600));
    match res {
        Ok(()) => {
            let _ = set_owner(&to_key, Owner::User);
            r.result = "copied (certificate 0644, key 0600)".into();
        }
        Err(e) => {
            *complete = false;
            r.result = format!("copy failed: {e}");
        }
    }
    r
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_messages_only() {
        let rec = "CloudComputeService: S\nSiteName: S\nVMUUID: u\nWallDuration: 12\n";
        let whole = format!("APEL-cloud-message: v0.4\n{rec}%%\n{rec}");
        assert!(complete_message(whole.as_bytes()));
        assert!(!complete_message(&whole.as_bytes()[..whole.len() - 4]));
        assert!(!complete_message(whole.trim_end().as_bytes()));
        let cut = format!("APEL-cloud-message: v0.2\n{rec}%%\nSiteName: S\n");
        assert!(!complete_message(cut.as_bytes()));
        assert!(complete_message(
            br#"{"Type": "APEL Public IP message", "Version": "0.2", "UsageRecords": []}"#
        ));
        assert!(!complete_message(
            br#"{"Type": "APEL Public IP message", "Version": "0.2", "Usage"#
        ));
        assert!(complete_message(
            b"<sr:StorageUsageRecords xmlns:sr=\"x\"></sr:StorageUsageRecords>"
        ));
        assert!(!complete_message(
            b"<sr:StorageUsageRecords xmlns:sr=\"x\"><sr:Stor"
        ));
        assert_eq!(kind_of(b"APEL-cloud-message: v0.2\n"), "cloud_v02");
    }
}
