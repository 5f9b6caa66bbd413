//! One `accounting send` run over the dirq spool (spec `accounting.md`
//! §3, §4.3), `ssmsend`'s loop made safe:
//!
//! 0. reclaim what a killed run of ours left: the lock of the element it
//!    held ([`Holding`]) and the spool temporaries of a dead writer of ours
//!    (pid in the name), at once;
//! 1. purge stale locks (> 600 s) and temporaries (> 300 s), so an element
//!    left locked by a dead `ssmsend` is sent again (dirq's rules: another
//!    program's lock or temporary may be in use);
//! 2. for each element in dirq order: lock it (`.lck` hard link; one locked
//!    by someone else is skipped), read it, sign it (and encrypt it), publish
//!    it, and only after the broker accepted it remove element and lock;
//! 3. a message the broker refuses for what it is (400, 413), or one that is
//!    not UTF-8, goes to the quarantine with the reason, and the run goes on;
//! 4. a failure that no message can fix (broker down after the retries,
//!    token refused, topic unknown, disk error) unlocks the element and
//!    stops the run: everything not sent stays in the spool;
//! 5. purge again (empty directories).
//!
//! The broker is contacted only when there is something to send. At least
//! once: a crash between "accepted" and "removed" sends that message again
//! next time (APEL replaces records by VM and month, so that is harmless).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::x509::X509;
use serde::Serialize;
use tracing::{info, warn};

use super::ams::{AmsClient, AmsError, Auth, Endpoint, Limits, Trust};
use super::identity::HostCredential;
use super::quarantine::{Note, Quarantine};
use super::smime;
use crate::exit::Outcome;
use crate::spool::{Clock, ElementName, PurgeAges, QueueSimple, SpoolError};

/// How to reach the broker (connected on the first message to send).
pub struct Connect<'a> {
    /// Where.
    pub endpoint: Endpoint,
    /// The token, or the host certificate for `authx509`.
    pub auth: Auth<'a>,
    /// TLS trust.
    pub trust: Trust,
    /// Timeouts and retries.
    pub limits: Limits,
}

/// The element a `send` run is about to lock, written before it locks it:
/// `<empaid> <unix ms> <pid>` in one small file (`send.holding` beside
/// `send.json`). `send` locks one element at a time, and only one `send`
/// runs (its run lock), so after a kill the next run knows which `.lck` was
/// its own and removes it at once ([`QueueSimple::break_lock`]) instead of
/// leaving the message to dirq's 600 s: a lock still there whose time is no
/// later than the record's (plus [`HOLDING_MARGIN`]) is that one. A lock
/// taken later (by `ssmsend`, after the kill) is left alone.
#[derive(Debug, Clone)]
pub struct Holding {
    path: PathBuf,
}

/// How long after the record the lock may be taken (the record is written,
/// then the element is locked: microseconds apart, unless the machine
/// stalls).
pub const HOLDING_MARGIN: Duration = Duration::from_secs(10);

/// What a holding record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The element.
    pub name: ElementName,
    /// When the record was written (before the lock).
    pub at: SystemTime,
    /// The `send` process.
    pub pid: u32,
}

impl Held {
    /// `<empaid> <unix ms> <pid>`.
    pub fn render(&self) -> String {
        let ms = self
            .at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("{} {ms} {}\n", self.name, self.pid)
    }

    /// The inverse of [`Held::render`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<Held> {
        let mut it = text.split_ascii_whitespace();
        let name = ElementName::parse(it.next()?).ok()?;
        let ms: u64 = it.next()?.parse().ok()?;
        let pid: u32 = it.next()?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(Held {
            name,
            at: UNIX_EPOCH + Duration::from_millis(ms),
            pid,
        })
    }
}

impl Holding {
    /// The record at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Holding { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&self, name: &ElementName, at: SystemTime) -> std::io::Result<()> {
        let held = Held {
            name: name.clone(),
            at,
            pid: std::process::id(),
        };
        crate::state::write_replace(&self.path, held.render().as_bytes(), 0o600)
    }

    fn read(&self) -> Option<Held> {
        Held::parse(&std::fs::read_to_string(&self.path).ok()?)
    }

    fn clear(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(file = %self.path.display(), error = %e, "could not remove the holding record")
            }
        }
    }
}

/// One run's inputs.
pub struct Run<'a> {
    /// The spool.
    pub queue: &'a QueueSimple,
    /// The record of the element being sent.
    pub holding: &'a Holding,
    /// Where refused messages go.
    pub quarantine: &'a Quarantine,
    /// The host certificate and key that sign.
    pub signer: &'a HostCredential,
    /// Encrypt to this certificate, if set.
    pub server_cert: Option<&'a X509>,
    /// The broker.
    pub connect: Connect<'a>,
    /// Now (purge ages, notes).
    pub clock: &'a dyn Clock,
    /// Stale lock and temporary ages.
    pub purge: PurgeAges,
    /// Read and sign only: no broker, no change to the spool.
    pub dry_run: bool,
}

/// A message that went to the quarantine in this run.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// Element name.
    pub empaid: String,
    /// Why.
    pub reason: String,
    /// Broker's HTTP status, if it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Where the message is now.
    pub file: PathBuf,
}

/// What a run did (`accounting send --json`). Never holds a secret.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// The spool.
    pub spool: PathBuf,
    /// Nothing was sent or changed.
    pub dry_run: bool,
    /// The signer's DN (slash form), as GOCDB must list it.
    pub signer_dn: String,
    /// The publish URL.
    pub publish_url: String,
    /// Elements in the spool at the start (after the purge).
    pub found: usize,
    /// Messages the broker accepted (and that left the spool).
    pub sent: usize,
    /// Bytes of those messages (before signing).
    pub bytes_sent: u64,
    /// Messages that a dry run read and signed.
    pub would_send: usize,
    /// Messages moved to the quarantine.
    pub quarantined: Vec<Quarantined>,
    /// Elements skipped because another process holds their lock.
    pub locked: Vec<String>,
    /// Stale locks removed (elements unlocked) by the purges.
    pub purged_locks: Vec<String>,
    /// Stale temporaries removed by the purges.
    pub purged_temporaries: usize,
    /// The lock a killed run of ours held, removed at the start (the
    /// element is sent in this run).
    pub reclaimed_locks: Vec<String>,
    /// Spool temporaries of killed writers of ours removed at the start.
    pub reclaimed_temporaries: usize,
    /// Elements still in the spool at the end.
    pub left: usize,
    /// What stopped the run, if something did.
    pub error: Option<String>,
}

impl SendReport {
    /// 3 when the run stopped, 1 when messages were quarantined or skipped
    /// as locked, else 0.
    pub fn outcome(&self) -> Outcome {
        if self.error.is_some() {
            Outcome::Error
        } else if !self.quarantined.is_empty() || !self.locked.is_empty() {
            Outcome::Partial
        } else {
            Outcome::Success
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where the first invalid UTF-8 byte is, if any.
fn utf8_problem(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).err().map(|e| {
        format!(
            "not valid UTF-8 (byte 0x{:02x} at offset {}): the APEL receiver cannot read it",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        )
    })
}

enum Step {
    Next,
    Stop(String),
}

/// Do one run. Problems end up in the report; nothing here panics on
/// message content.
pub async fn send_all(run: Run<'_>) -> SendReport {
    let Run {
        queue,
        holding,
        quarantine,
        signer,
        server_cert,
        connect,
        clock,
        purge,
        dry_run,
    } = run;
    let mut report = SendReport {
        spool: queue.path().to_path_buf(),
        dry_run,
        signer_dn: signer.dn(),
        publish_url: connect.endpoint.publish_url(),
        found: 0,
        sent: 0,
        bytes_sent: 0,
        would_send: 0,
        quarantined: Vec::new(),
        locked: Vec::new(),
        purged_locks: Vec::new(),
        purged_temporaries: 0,
        reclaimed_locks: Vec::new(),
        reclaimed_temporaries: 0,
        left: 0,
        error: None,
    };
    if !dry_run {
        if let Err(e) = reclaim(queue, holding, &mut report) {
            report.error = Some(e.to_string());
            report.left = queue.count().unwrap_or(0);
            return report;
        }
        if let Err(e) = do_purge(queue, clock, &purge, &mut report) {
            report.error = Some(e.to_string());
            report.left = queue.count().unwrap_or(0);
            return report;
        }
    }
    let names = match queue.names() {
        Ok(n) => n,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.found = names.len();
    info!(found = names.len(), spool = %queue.path().display(), "messages found");

    let mut connect = Some(connect);
    let mut client: Option<AmsClient> = None;
    for name in &names {
        let step = if dry_run {
            dry_one(queue, name, signer, server_cert, &mut report)
        } else {
            send_one(
                queue,
                holding,
                quarantine,
                name,
                signer,
                server_cert,
                &mut connect,
                &mut client,
                clock,
                &mut report,
            )
            .await
        };
        if let Step::Stop(e) = step {
            report.error = Some(e);
            break;
        }
    }
    if !dry_run {
        holding.clear();
        if let Err(e) = do_purge(queue, clock, &purge, &mut report) {
            report.error.get_or_insert(e.to_string());
        }
    }
    report.left = queue.count().unwrap_or(report.found);
    report
}

/// Step 0: what a killed run of ours left (see [`Holding`]).
fn reclaim(
    queue: &QueueSimple,
    holding: &Holding,
    report: &mut SendReport,
) -> Result<(), SpoolError> {
    if let Some(held) = holding.read() {
        if held.pid != std::process::id() && !crate::state::process_running(held.pid) {
            if queue.break_lock(&held.name, held.at + HOLDING_MARGIN)? {
                warn!(empaid = %held.name, pid = held.pid, "lock of a killed `accounting send` removed: the element will be sent");
                report.reclaimed_locks.push(held.name.to_string());
            }
            holding.clear();
        }
    }
    let temporaries = queue.reclaim_temporaries()?;
    for t in &temporaries {
        info!(file = %t.display(), "temporary of a killed writer removed");
    }
    report.reclaimed_temporaries += temporaries.len();
    Ok(())
}

fn do_purge(
    queue: &QueueSimple,
    clock: &dyn Clock,
    ages: &PurgeAges,
    report: &mut SendReport,
) -> Result<(), SpoolError> {
    let purged = queue.purge(clock, ages)?;
    for l in &purged.locks {
        warn!(empaid = %l, "stale lock removed: the element will be sent");
    }
    report
        .purged_locks
        .extend(purged.locks.iter().map(ToString::to_string));
    report.purged_temporaries += purged.temporaries.len();
    Ok(())
}

fn sign(
    body: &[u8],
    signer: &HostCredential,
    server_cert: Option<&X509>,
) -> Result<Vec<u8>, smime::SmimeError> {
    let signed = smime::sign(body, &signer.cert, &signer.key)?;
    match server_cert {
        Some(c) => smime::encrypt(&signed, c),
        None => Ok(signed),
    }
}

fn dry_one(
    queue: &QueueSimple,
    name: &ElementName,
    signer: &HostCredential,
    server_cert: Option<&X509>,
    report: &mut SendReport,
) -> Step {
    let path = queue.path().join(name.dir()).join(name.file());
    let body = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Step::Next,
        Err(e) => return Step::Stop(format!("reading {}: {e}", path.display())),
    };
    if let Some(problem) = utf8_problem(&body) {
        warn!(empaid = %name, problem, "would quarantine");
        return Step::Next;
    }
    match sign(&body, signer, server_cert) {
        Ok(_) => {
            report.would_send += 1;
            Step::Next
        }
        Err(e) => Step::Stop(e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_one(
    queue: &QueueSimple,
    holding: &Holding,
    quarantine: &Quarantine,
    name: &ElementName,
    signer: &HostCredential,
    server_cert: Option<&X509>,
    connect: &mut Option<Connect<'_>>,
    client: &mut Option<AmsClient>,
    clock: &dyn Clock,
    report: &mut SendReport,
) -> Step {
    // Before the lock, so that a kill right after it leaves a record.
    if let Err(e) = holding.record(name, SystemTime::now()) {
        return Step::Stop(format!(
            "cannot record the message being sent in {}: {e}",
            holding.path().display()
        ));
    }
    match queue.lock(name) {
        Ok(true) => {}
        Ok(false) => {
            if queue.path().join(name.dir()).join(name.file()).exists() {
                warn!(empaid = %name, "message is locked by another process; it will not be sent now");
                report.locked.push(name.to_string());
            }
            return Step::Next;
        }
        Err(e) => return Step::Stop(e.to_string()),
    }
    // From here on the element is ours: every exit path removes or unlocks it.
    let unlock_and_stop = |why: String| {
        if let Err(e) = queue.unlock(name) {
            warn!(empaid = %name, error = %e, "could not unlock");
        }
        Step::Stop(why)
    };
    let body = match queue.get(name) {
        Ok(b) => b,
        Err(e) => return unlock_and_stop(e.to_string()),
    };
    if let Some(problem) = utf8_problem(&body) {
        return to_quarantine(
            queue, quarantine, name, &body, problem, None, None, clock, report,
        );
    }
    let payload = match sign(&body, signer, server_cert) {
        Ok(p) => p,
        Err(e) => return unlock_and_stop(e.to_string()),
    };
    if client.is_none() {
        let Some(c) = connect.take() else {
            return unlock_and_stop("the AMS connection failed earlier in this run".into());
        };
        match AmsClient::connect(c.endpoint, c.auth, &c.trust, c.limits).await {
            Ok(cl) => *client = Some(cl),
            Err(e) => return unlock_and_stop(e.to_string()),
        }
    }
    let cl = client.as_mut().expect("connected above");
    match cl.publish(&name.to_string(), &payload).await {
        Ok(acc) => {
            if let Err(e) = queue.remove(name) {
                // Sent but still in the spool: it will be sent again (at least once).
                return Step::Stop(format!(
                    "message {name} was accepted by AMS but could not be removed from the spool: {e}"
                ));
            }
            report.sent += 1;
            report.bytes_sent += body.len() as u64;
            info!(
                empaid = %name,
                message_id = acc.message_id.as_deref().unwrap_or("?"),
                attempts = acc.attempts,
                bytes = body.len(),
                "sent"
            );
            Step::Next
        }
        Err(AmsError::Rejected { status, answer, .. }) => {
            let reason = format!("AMS refused the message: HTTP {status}");
            to_quarantine(
                queue,
                quarantine,
                name,
                &body,
                reason,
                Some(status),
                Some(answer),
                clock,
                report,
            )
        }
        Err(e) => unlock_and_stop(e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn to_quarantine(
    queue: &QueueSimple,
    quarantine: &Quarantine,
    name: &ElementName,
    body: &[u8],
    reason: String,
    status: Option<u16>,
    answer: Option<String>,
    clock: &dyn Clock,
    report: &mut SendReport,
) -> Step {
    let note = Note {
        empaid: name.to_string(),
        reason: reason.clone(),
        status,
        answer,
        quarantined_at: rfc3339(clock.now()),
        bytes: body.len() as u64,
    };
    let file = match quarantine.put(name, body, &note) {
        Ok(f) => f,
        Err(e) => {
            let _ = queue.unlock(name);
            return Step::Stop(e.to_string());
        }
    };
    if let Err(e) = queue.remove(name) {
        return Step::Stop(format!(
            "message {name} was quarantined but could not be removed from the spool: {e}"
        ));
    }
    warn!(empaid = %name, reason, file = %file.display(), "message quarantined");
    report.quarantined.push(Quarantined {
        empaid: name.to_string(),
        reason,
        status,
        file,
    });
    Step::Next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_records_round_trip() {
        let h = Held {
            name: ElementName::parse("6b02e264/6b02e26470f5e0").unwrap(),
            at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            pid: 4711,
        };
        assert_eq!(h.render(), "6b02e264/6b02e26470f5e0 1700000000123 4711\n");
        assert_eq!(Held::parse(&h.render()), Some(h));
        for bad in [
            "",
            "x 1 2",
            "6b02e264/6b02e26470f5e0 1",
            "6b02e264/6b02e26470f5e0 1 2 3",
        ] {
            assert_eq!(Held::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn utf8_check() {
        assert_eq!(utf8_problem("é ok".as_bytes()), None);
        let p = utf8_problem(b"abc\xe9def").unwrap();
        assert!(p.contains("0xe9 at offset 3"), "{p}");
    }
}
