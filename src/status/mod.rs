//! `appliance status`: what the appliance's own state says, on one screen,
//! as JSON (`docs/status-json.md`, schema [`SCHEMA`]) or as one Nagios line.
//!
//! Status never touches the network: every figure comes from local state
//! (run records `<state>/runs/<job>.json`, the accounting spool and its
//! quarantine, the image lists' last good state, the CA directory, the host
//! certificate, `statvfs` of `paths.image-data`) and, when systemd runs the
//! host, the timers (`systemctl show`). A figure that cannot be had is left
//! out and the object's `missing` map says why.
//!
//! Module map: [`gather`] reads the machine into a [`Status`] (the only
//! I/O, plus [`timers::query`]); [`evaluate`] judges it at a given time
//! (pure: thresholds in [`evaluate::Thresholds`]); [`render`] writes the
//! screen and the Nagios line (pure); [`images`] condenses an image sync's
//! report into the run record's `detail`.

pub mod evaluate;
pub mod gather;
pub mod images;
pub mod render;
pub mod timers;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Version of the `status --json` document (`docs/status-json.md`).
pub const SCHEMA: u32 = 1;

/// Why figures are absent: field name -> reason.
pub type Missing = BTreeMap<&'static str, String>;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something needs attention soon.
    Warning,
    /// Something is broken now.
    Error,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Nothing to do.
    Ok,
    /// Warnings only.
    Warning,
    /// At least one error.
    Error,
}

impl Health {
    /// `appliance status` exit code: 0, 1, 3.
    pub fn exit_code(self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Warning => 1,
            Health::Error => 3,
        }
    }
    /// Nagios plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL.
    pub fn nagios_code(self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Warning => 1,
            Health::Error => 2,
        }
    }
    /// The word used on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Error => "error",
        }
    }
}

/// One thing that needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Warning or error.
    pub severity: Severity,
    /// What it is about (`job images-sync`, `host certificate`, ...).
    pub subject: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub remedy: String,
}

/// The whole status (`status --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// [`SCHEMA`].
    pub schema: u32,
    /// When it was gathered.
    pub generated_at: DateTime<Utc>,
    /// The configuration file.
    pub config: PathBuf,
    /// Whether systemd's timers could be asked (`next_run` figures).
    pub systemd: bool,
    /// The verdict.
    pub health: Health,
    /// `appliance status` exit code for this verdict.
    pub exit_code: u8,
    /// The five scheduled jobs.
    pub jobs: Vec<Job>,
    /// Accounting delivery.
    pub accounting: Accounting,
    /// Image synchronisation.
    pub images: Images,
    /// Information publishing.
    pub info: Info,
    /// The host certificate.
    pub host_certificate: HostCertificate,
    /// The CA directory's CRLs.
    pub crl: Crl,
    /// Warnings of the configuration loader.
    pub config_warnings: Vec<String>,
    /// Everything that needs attention, errors first.
    pub problems: Vec<Problem>,
}

/// A scheduled job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// `accounting-extract`, ...
    pub name: String,
    /// Its timer unit.
    pub unit: String,
    /// Whether its timer is enabled in the configuration.
    pub enabled: bool,
    /// `OnCalendar=`.
    pub schedule: String,
    /// The last recorded run.
    pub last_run: Option<LastRun>,
    /// When the timer fires next (from systemd).
    pub next_run: Option<DateTime<Utc>>,
    /// `ok`, `warning`, `error` or `disabled`.
    pub health: &'static str,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// A job's last run, from its run record.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// Start (UTC).
    pub started: DateTime<Utc>,
    /// End (UTC).
    pub finished: DateTime<Utc>,
    /// Seconds.
    pub duration_seconds: f64,
    /// `success`, `partial`, `usage`, `error`.
    pub outcome: &'static str,
    /// Exit code.
    pub exit_code: u8,
    /// One line.
    pub summary: String,
    /// The last run that exited 0.
    pub last_success: Option<DateTime<Utc>>,
}

/// Accounting delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Accounting {
    /// `components.accounting.enabled`.
    pub enabled: bool,
    /// The dirq spool.
    pub spool: PathBuf,
    /// Messages waiting.
    pub queued: Option<usize>,
    /// The oldest waiting message.
    pub oldest: Option<Oldest>,
    /// Messages in the quarantine.
    pub quarantined: Option<usize>,
    /// The quarantine directory.
    pub quarantine_dir: PathBuf,
    /// The last time the broker accepted a message.
    pub last_sent_at: Option<String>,
    /// The end of the last send run that ended without error.
    pub last_send_success: Option<String>,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// The oldest waiting accounting message.
#[derive(Debug, Clone, Serialize)]
pub struct Oldest {
    /// `dir/file` in the spool.
    pub name: String,
    /// When it was spooled.
    pub spooled_at: String,
    /// Its age, in seconds.
    pub age_seconds: u64,
}

/// Image synchronisation.
#[derive(Debug, Clone, Serialize)]
pub struct Images {
    /// `components.images.enabled`.
    pub enabled: bool,
    /// Every source known from the configuration, the state and the last sync.
    pub sources: Vec<ImageSource>,
    /// Free space where images are downloaded.
    pub image_data: Option<Space>,
    /// `paths.image-data`.
    pub image_data_path: PathBuf,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// One image source.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSource {
    /// Subscription name.
    pub name: String,
    /// `list` or `registry`.
    pub kind: &'static str,
    /// Enabled in the configuration (`None`: not in it, e.g. a legacy file's).
    pub enabled: Option<bool>,
    /// The last list (or listing) accepted.
    pub last_good: Option<LastGood>,
    /// The source in the last sync run.
    pub last_sync: Option<SourceSync>,
    /// Images with failures recorded by the per-image back-off
    /// (`<state>/images/backoff/<name>.json`).
    pub backoff: Vec<HeldBack>,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// An image the per-image back-off counts failures of.
#[derive(Debug, Clone, Serialize)]
pub struct HeldBack {
    /// `dc:identifier` (`appdb_id`).
    pub image: String,
    /// Failed attempts at the version the source lists.
    pub attempts: u64,
    /// The cap of attempts.
    pub max_attempts: u64,
    /// No longer tried until the source changes it (or `--retry-failed`).
    pub given_up: bool,
    /// When it last failed.
    pub last_failed: Option<String>,
    /// The last error.
    pub error: Option<String>,
}

/// The last good list of a source.
#[derive(Debug, Clone, Serialize)]
pub struct LastGood {
    /// `dc:identifier` (lists) or the registry (registries).
    pub identifier: Option<String>,
    /// `hv:version` (lists).
    pub version: Option<String>,
    /// When it was fetched.
    pub fetched_at: Option<String>,
    /// `dc:date:expires` (lists).
    pub expires: Option<String>,
}

/// A source in the last sync run (from the run record's detail).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SourceSync {
    /// `ok`, `partial`, `failed`, `expired`, `disabled`.
    pub status: String,
    /// Images of the source in Glance after the run.
    pub in_glance: usize,
    /// Images that failed in the run.
    pub failed: usize,
    /// Why the source failed before touching Glance.
    #[serde(default)]
    pub failure: Option<String>,
}

/// Free space of a filesystem.
#[derive(Debug, Clone, Serialize)]
pub struct Space {
    /// Bytes available to the appliance.
    pub free_bytes: u64,
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// `free / total`, in percent.
    pub free_percent: f64,
}

/// Information publishing.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// `components.info.enabled`.
    pub enabled: bool,
    /// The end of the last `info publish` that exited 0.
    pub last_publish: Option<DateTime<Utc>>,
    /// The file target and when it was last written.
    pub file: Option<PathBuf>,
    /// Its modification time.
    pub file_modified: Option<DateTime<Utc>>,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// The host certificate.
#[derive(Debug, Clone, Serialize)]
pub struct HostCertificate {
    /// `paths.host-cert`.
    pub path: PathBuf,
    /// Subject, slash form (what GOCDB holds as Host DN).
    pub subject: Option<String>,
    /// `notAfter`.
    pub not_after: Option<DateTime<Utc>>,
    /// Whole days left (negative: expired).
    pub days_left: Option<i64>,
    /// Whether a job needs it (accounting, or info published to AMS).
    pub needed: bool,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// The CRLs of the CA directory.
#[derive(Debug, Clone, Serialize)]
pub struct Crl {
    /// `paths.ca-dir`.
    pub ca_dir: PathBuf,
    /// CAs in the directory.
    pub cas: usize,
    /// CAs with a current CRL.
    pub fresh: usize,
    /// CAs whose CRL is not current: stale, missing, invalid, not yet valid.
    pub not_fresh: Vec<CrlProblem>,
    /// Why figures are absent.
    #[serde(skip_serializing_if = "Missing::is_empty")]
    pub missing: Missing,
}

/// A CA whose CRL is not current.
#[derive(Debug, Clone, Serialize)]
pub struct CrlProblem {
    /// Subject, slash form.
    pub ca: String,
    /// Subject hash.
    pub hash: String,
    /// `stale`, `missing`, `invalid`, `not-yet-valid`.
    pub state: &'static str,
    /// `nextUpdate` of the CRL in place.
    pub next_update: Option<DateTime<Utc>>,
    /// Whether `crl refresh` knows where to get it.
    pub has_url: bool,
}
