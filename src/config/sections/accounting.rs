//! `accounting`: how `appliance accounting extract` turns the site's usage
//! into APEL records (issue #4; spec accounting.md §1, §8): the site name
//! APEL sees, where each project's VO comes from, where the extraction
//! starts on a project's first run, the spool, flavor property names and
//! message batch limits. Every key is optional; an absent section means the
//! defaults below.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use crate::config::decode::{decode_enum, Decode, Diag, MapReader, Unknown};
use crate::config::format::Node;

/// Default Keystone project property holding the VO (cASO's `vo_property`).
pub const DEFAULT_VO_PROPERTY: &str = "VO";
/// Default flavor extra spec naming the benchmark (cASO `[benchmark] name_key`).
pub const DEFAULT_BENCHMARK_TYPE_KEY: &str = "accounting:benchmark_type";
/// Default flavor extra spec holding the benchmark value (`value_key`).
pub const DEFAULT_BENCHMARK_VALUE_KEY: &str = "accounting:benchmark_value";
/// Default directory of cASO's `lastrun.<project>` files (`spooldir`).
pub const DEFAULT_CASO_SPOOL_DIR: &str = "/var/spool/caso";
/// Default first-run start: this many days before the run.
pub const DEFAULT_FIRST_RUN_DAYS: u32 = 30;
/// Default number of projects extracted at the same time.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// Where a project's VO (APEL `FQAN`) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VoSource {
    /// The configuration's `vos` table (the VO whose `projects` list the
    /// project).
    #[default]
    Config,
    /// A Keystone project property (`vo-property`), as cASO does.
    Property,
    /// A legacy cASO `voms.json` file (`voms-json`).
    VomsJson,
}

impl VoSource {
    const CHOICES: &'static [(&'static str, VoSource)] = &[
        ("config", VoSource::Config),
        ("property", VoSource::Property),
        ("voms-json", VoSource::VomsJson),
    ];
}

/// Where a project's first extraction window starts (no lastrun of ours
/// or of cASO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirstRun {
    /// This many days before the run.
    DaysBefore(u32),
    /// A fixed instant.
    Since(DateTime<Utc>),
}

impl Default for FirstRun {
    fn default() -> Self {
        FirstRun::DaysBefore(DEFAULT_FIRST_RUN_DAYS)
    }
}

impl FirstRun {
    /// The start for a run at `now`.
    pub fn start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            FirstRun::DaysBefore(d) => now - chrono::Duration::days(i64::from(*d)),
            FirstRun::Since(t) => *t,
        }
    }

    /// `30d`, `2024-01-01`, `2024-01-01T00:00:00Z`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(days) = s.strip_suffix('d') {
            return days.parse().ok().map(FirstRun::DaysBefore);
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(FirstRun::Since(t.with_timezone(&Utc)));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
            return Some(FirstRun::Since(t.and_utc()));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| FirstRun::Since(t.and_utc()))
    }
}

/// APEL record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RecordType {
    /// VMs (`APEL-cloud-message`).
    Cloud,
    /// Public IPs.
    Ip,
    /// GPUs and other accelerators.
    Accelerator,
    /// Cinder volumes (StAR).
    Storage,
}

impl RecordType {
    const CHOICES: &'static [(&'static str, RecordType)] = &[
        ("cloud", RecordType::Cloud),
        ("ip", RecordType::Ip),
        ("accelerator", RecordType::Accelerator),
        ("storage", RecordType::Storage),
    ];
    /// All four, cASO's SSM default.
    pub const ALL: [RecordType; 4] = [
        RecordType::Cloud,
        RecordType::Ip,
        RecordType::Accelerator,
        RecordType::Storage,
    ];
}

impl Decode for RecordType {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_enum(node, path, d, RecordType::CHOICES)
    }
}

/// The section as written.
#[derive(Debug, Default)]
pub struct Raw {
    site_name: Option<String>,
    service_name: Option<String>,
    vo_source: Option<VoSource>,
    vo_property: Option<String>,
    voms_json: Option<PathBuf>,
    first_run: Option<String>,
    spool: Option<PathBuf>,
    caso_spool_dir: Option<PathBuf>,
    benchmark_type_key: Option<String>,
    benchmark_value_key: Option<String>,
    record_types: Option<Vec<RecordType>>,
    max_records_per_message: Option<u64>,
    max_message_bytes: Option<u64>,
    concurrency: Option<u32>,
}

impl Decode for Raw {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let raw = Raw {
            site_name: m.opt("site-name"),
            service_name: m.opt("service-name"),
            vo_source: m.opt_with("vo-source", |n, p, d| {
                decode_enum(n, p, d, VoSource::CHOICES)
            }),
            vo_property: m.opt("vo-property"),
            voms_json: m.opt("voms-json"),
            first_run: m.opt("first-run"),
            spool: m.opt("spool"),
            caso_spool_dir: m.opt("caso-spool-dir"),
            benchmark_type_key: m.opt("benchmark-type-key"),
            benchmark_value_key: m.opt("benchmark-value-key"),
            record_types: m.opt("record-types"),
            max_records_per_message: m.opt("max-records-per-message"),
            max_message_bytes: m.opt("max-message-bytes"),
            concurrency: m.opt("concurrency"),
        };
        m.finish(Unknown::Error);
        Some(raw)
    }
}

/// The validated section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {
    /// `SiteName` (and StAR `Site`); `None`: the catch-all file's
    /// accounting site name, else `site.gocdb`.
    pub site_name: Option<String>,
    /// `CloudComputeService` (StAR `StorageSystem`); `None`: the site name.
    pub service_name: Option<String>,
    /// Where projects' VOs come from.
    pub vo_source: VoSource,
    /// The Keystone project property with the VO (`vo-source: property`).
    pub vo_property: String,
    /// The legacy cASO `voms.json` (`vo-source: voms-json`).
    pub voms_json: Option<PathBuf>,
    /// Start of a project's first window.
    pub first_run: FirstRun,
    /// The dirq spool; `None`: `paths.spool`.
    pub spool: Option<PathBuf>,
    /// Where cASO kept its `lastrun.<project>` files (imported once, so a
    /// site switches without a gap or a double count).
    pub caso_spool_dir: PathBuf,
    /// Flavor extra spec with `BenchmarkType`.
    pub benchmark_type_key: String,
    /// Flavor extra spec with `Benchmark`.
    pub benchmark_value_key: String,
    /// Record types produced.
    pub record_types: Vec<RecordType>,
    /// Records per message (1..=100).
    pub max_records_per_message: usize,
    /// Bytes per message before signing.
    pub max_message_bytes: usize,
    /// Projects extracted at the same time.
    pub concurrency: usize,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            site_name: None,
            service_name: None,
            vo_source: VoSource::Config,
            vo_property: DEFAULT_VO_PROPERTY.into(),
            voms_json: None,
            first_run: FirstRun::default(),
            spool: None,
            caso_spool_dir: DEFAULT_CASO_SPOOL_DIR.into(),
            benchmark_type_key: DEFAULT_BENCHMARK_TYPE_KEY.into(),
            benchmark_value_key: DEFAULT_BENCHMARK_VALUE_KEY.into(),
            record_types: RecordType::ALL.to_vec(),
            max_records_per_message: crate::accounting::BatchLimits::MAX_RECORDS,
            max_message_bytes: crate::accounting::BatchLimits::DEFAULT_BYTES,
            concurrency: DEFAULT_CONCURRENCY as usize,
        }
    }
}

fn absolute(d: &mut Diag, key: &str, p: Option<PathBuf>) -> Option<PathBuf> {
    match p {
        Some(p) if !p.is_absolute() => {
            d.error_hint(
                &format!("accounting.{key}"),
                format!("`{}` is not an absolute path", p.display()),
                "write the full path, starting with `/`",
            );
            None
        }
        p => p,
    }
}

fn apel_value(d: &mut Diag, key: &str, v: Option<String>) -> Option<String> {
    let v = v?;
    let path = format!("accounting.{key}");
    match crate::accounting::Site::new(&v, &v) {
        Ok(_) => Some(v),
        Err(e) => {
            d.error_hint(
                &path,
                format!("{e}"),
                "APEL stores printable ASCII of at most 255 characters",
            );
            None
        }
    }
}

/// Check the section; problems go to `d` under the `accounting` key path.
pub fn validate(raw: Option<Raw>, d: &mut Diag) -> Section {
    let Some(raw) = raw else {
        return Section::default();
    };
    let def = Section::default();
    let vo_source = raw.vo_source.unwrap_or_default();
    let voms_json = absolute(d, "voms-json", raw.voms_json);
    if vo_source == VoSource::VomsJson && voms_json.is_none() && !d.failed("accounting.voms-json") {
        d.error_hint(
            "accounting.vo-source",
            "`vo-source: voms-json` needs `voms-json`",
            "add `voms-json: /etc/caso/voms.json`",
        );
    }
    let first_run = match raw.first_run {
        None => def.first_run,
        Some(s) => FirstRun::parse(&s).unwrap_or_else(|| {
            d.error_hint(
                "accounting.first-run",
                format!("`{s}` is neither a number of days nor a date"),
                "write e.g. `30d`, `2024-01-01` or `2024-01-01T00:00:00Z`",
            );
            def.first_run
        }),
    };
    let nonempty = |d: &mut Diag, key: &str, v: Option<String>, default: String| match v {
        Some(v) if v.trim().is_empty() => {
            d.error(&format!("accounting.{key}"), "must not be empty");
            default
        }
        Some(v) => v,
        None => default,
    };
    let vo_property = nonempty(d, "vo-property", raw.vo_property, def.vo_property.clone());
    let benchmark_type_key = nonempty(
        d,
        "benchmark-type-key",
        raw.benchmark_type_key,
        def.benchmark_type_key.clone(),
    );
    let benchmark_value_key = nonempty(
        d,
        "benchmark-value-key",
        raw.benchmark_value_key,
        def.benchmark_value_key.clone(),
    );
    let mut record_types = raw.record_types.unwrap_or(def.record_types.clone());
    record_types.sort();
    record_types.dedup();
    if record_types.is_empty() {
        d.error_hint(
            "accounting.record-types",
            "no record type chosen",
            "list at least one of cloud, ip, accelerator, storage",
        );
    }
    let max_records = raw
        .max_records_per_message
        .map_or(def.max_records_per_message, |v| v as usize);
    let max_bytes = raw
        .max_message_bytes
        .map_or(def.max_message_bytes, |v| v as usize);
    if let Err(e) = crate::accounting::BatchLimits::new(max_records, max_bytes) {
        let key = match e {
            crate::accounting::AccountingError::InvalidLimits {
                what: "max_records",
                ..
            } => "max-records-per-message",
            _ => "max-message-bytes",
        };
        d.error_hint(
            &format!("accounting.{key}"),
            format!("{e}"),
            "at most 100 records and 600 KiB keep every message below the AMS size limit",
        );
    }
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=64).contains(&concurrency) {
        d.error(
            "accounting.concurrency",
            format!("{concurrency} is outside 1..=64"),
        );
    }
    Section {
        site_name: apel_value(d, "site-name", raw.site_name),
        service_name: apel_value(d, "service-name", raw.service_name),
        vo_source,
        vo_property,
        voms_json,
        first_run,
        spool: absolute(d, "spool", raw.spool),
        caso_spool_dir: absolute(d, "caso-spool-dir", raw.caso_spool_dir)
            .unwrap_or(def.caso_spool_dir),
        benchmark_type_key,
        benchmark_value_key,
        record_types,
        max_records_per_message: max_records,
        max_message_bytes: max_bytes,
        concurrency: concurrency.clamp(1, 64) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn first_run_forms() {
        let now = Utc.with_ymd_and_hms(2024, 5, 31, 12, 0, 0).unwrap();
        assert_eq!(
            FirstRun::parse("30d").unwrap().start(now),
            Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
        );
        assert_eq!(
            FirstRun::parse("2024-01-02").unwrap().start(now),
            Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap()
        );
        assert_eq!(
            FirstRun::parse("2024-01-02T03:04:05+01:00")
                .unwrap()
                .start(now),
            Utc.with_ymd_and_hms(2024, 1, 2, 2, 4, 5).unwrap()
        );
        assert_eq!(FirstRun::parse("soon"), None);
        assert_eq!(FirstRun::parse("-3d"), None);
    }
}
