//! Messages: records of one type framed the way cASO's SSM messenger frames
//! them (`caso/messenger/ssm.py`), split so that none is too large.
//!
//! | kind | framing |
//! |---|---|
//! | cloud | `APEL-cloud-message: v0.4\n` + records joined by `\n%%\n` + `\n` |
//! | IP | `{"Type": "APEL Public IP message", "Version": "0.2", "UsageRecords": [` + records joined by `, ` + `]}` |
//! | accelerator | as IP with `"Type": "APEL-accelerator-message", "Version": "0.1"` |
//! | storage | `<sr:StorageUsageRecords xmlns:sr="…">` + records + `</sr:StorageUsageRecords>` |
//!
//! **Batching.** At most [`BatchLimits::max_records`] records (≤ 100, cASO's
//! `max_size`) *and* at most [`BatchLimits::max_bytes`] bytes per message.
//! The byte cap is bounded by [`BatchLimits::MAX_BYTES`] (600 KiB) so that no
//! message can reach the AMS limit of 1 MB (spec §5) after the sender's
//! S/MIME signing (CRLF canonicalisation adds at most 10 % for lines of 10+
//! characters, plus a few KiB of signature and headers), base64 (+33 %) and
//! the JSON envelope: `(600 KiB × 1.1 + 16 KiB) × 4/3 + 1 KiB ≈ 923 kB`.
//! The default, 512 KiB, leaves more room. The lower bound
//! [`BatchLimits::MIN_BYTES`] (16 KiB) is above the largest record any type
//! can render with the field caps of [`super::sanitize`] (tested), so a
//! record never has to be dropped. Records keep their order; a new message
//! starts when the next record would break either limit.

use super::{AcceleratorRecord, AccountingError, CloudRecord, IpRecord, StorageRecord};
use std::fmt;

/// The four message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// `APEL-cloud-message: v0.4`.
    Cloud,
    /// `APEL Public IP message` `0.2` (JSON).
    PublicIp,
    /// `APEL-accelerator-message` `0.1` (JSON).
    Accelerator,
    /// EMI StAR (XML).
    Storage,
}

impl MessageKind {
    fn header(self) -> &'static str {
        match self {
            Self::Cloud => "APEL-cloud-message: v0.4\n",
            Self::PublicIp => {
                r#"{"Type": "APEL Public IP message", "Version": "0.2", "UsageRecords": ["#
            }
            Self::Accelerator => {
                r#"{"Type": "APEL-accelerator-message", "Version": "0.1", "UsageRecords": ["#
            }
            Self::Storage => {
                r#"<sr:StorageUsageRecords xmlns:sr="http://eu-emi.eu/namespaces/2011/02/storagerecord">"#
            }
        }
    }

    fn separator(self) -> &'static str {
        match self {
            Self::Cloud => "\n%%\n",
            Self::PublicIp | Self::Accelerator => ", ",
            Self::Storage => "",
        }
    }

    fn trailer(self) -> &'static str {
        match self {
            Self::Cloud => "\n",
            Self::PublicIp | Self::Accelerator => "]}",
            Self::Storage => "</sr:StorageUsageRecords>",
        }
    }

    /// Bytes a message of this kind needs besides its records and separators.
    pub fn framing_len(self) -> usize {
        self.header().len() + self.trailer().len()
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cloud => "cloud",
            Self::PublicIp => "ip",
            Self::Accelerator => "accelerator",
            Self::Storage => "storage",
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::CloudRecord {}
    impl Sealed for super::IpRecord {}
    impl Sealed for super::AcceleratorRecord {}
    impl Sealed for super::StorageRecord {}
}

/// A record type with an APEL rendering.
pub trait ApelRecord: sealed::Sealed {
    /// The message type it goes into.
    const KIND: MessageKind;
    /// The record as it appears inside a message, byte-compatible with cASO.
    /// Every free-text value is sanitised ([`super::sanitize::apel_text`]).
    fn render(&self) -> String;
    /// An identifier for errors and logs (VM or volume UUID).
    fn id(&self) -> String;
}

/// Per-message limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    max_records: usize,
    max_bytes: usize,
}

impl BatchLimits {
    /// Records per message: cASO's `max_size` default and the most allowed.
    pub const MAX_RECORDS: usize = 100;
    /// Default byte cap of one message before signing: 512 KiB.
    pub const DEFAULT_BYTES: usize = 512 * 1024;
    /// Smallest byte cap: larger than any single record can render.
    pub const MIN_BYTES: usize = 16 * 1024;
    /// Largest byte cap: keeps signed, base64-encoded messages below 1 MB.
    pub const MAX_BYTES: usize = 600 * 1024;

    /// Limits with `max_records` in `1..=100` and `max_bytes` in
    /// [`Self::MIN_BYTES`]`..=`[`Self::MAX_BYTES`].
    pub fn new(max_records: usize, max_bytes: usize) -> Result<Self, AccountingError> {
        if !(1..=Self::MAX_RECORDS).contains(&max_records) {
            return Err(AccountingError::InvalidLimits {
                what: "max_records",
                value: max_records,
                min: 1,
                max: Self::MAX_RECORDS,
            });
        }
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&max_bytes) {
            return Err(AccountingError::InvalidLimits {
                what: "max_bytes",
                value: max_bytes,
                min: Self::MIN_BYTES,
                max: Self::MAX_BYTES,
            });
        }
        Ok(Self {
            max_records,
            max_bytes,
        })
    }

    /// Records per message.
    pub fn max_records(&self) -> usize {
        self.max_records
    }

    /// Bytes per message (before signing).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl Default for BatchLimits {
    /// 100 records, 512 KiB.
    fn default() -> Self {
        Self {
            max_records: Self::MAX_RECORDS,
            max_bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// A message ready for the spool: ASCII bytes, as `ssmsend` requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its type.
    pub kind: MessageKind,
    /// How many records it holds.
    pub record_count: usize,
    /// The exact bytes to spool.
    pub body: Vec<u8>,
}

/// Renders `records` (one type) into as few messages as the limits allow,
/// in order. No records, no messages.
pub fn render_messages<R: ApelRecord>(
    records: &[R],
    limits: &BatchLimits,
) -> Result<Vec<Message>, AccountingError> {
    render_iter(records.iter(), limits)
}

fn render_iter<'a, R: ApelRecord + 'a>(
    records: impl Iterator<Item = &'a R>,
    limits: &BatchLimits,
) -> Result<Vec<Message>, AccountingError> {
    let kind = R::KIND;
    let (header, sep, trailer) = (kind.header(), kind.separator(), kind.trailer());
    let mut out = Vec::new();
    let mut body = String::new();
    let mut count = 0;
    let flush = |body: &mut String, count: &mut usize, out: &mut Vec<Message>| {
        if *count > 0 {
            body.push_str(trailer);
            out.push(Message {
                kind,
                record_count: *count,
                body: std::mem::take(body).into_bytes(),
            });
            *count = 0;
        }
    };
    for record in records {
        let rendered = record.render();
        let fits = |body: &String, count: usize| {
            count < limits.max_records
                && body.len() + sep.len() + rendered.len() + trailer.len() <= limits.max_bytes
        };
        if count > 0 && !fits(&body, count) {
            flush(&mut body, &mut count, &mut out);
        }
        if count == 0 {
            let size = header.len() + rendered.len() + trailer.len();
            if size > limits.max_bytes {
                return Err(AccountingError::RecordTooLarge {
                    kind,
                    id: record.id(),
                    size,
                    max: limits.max_bytes,
                });
            }
            body.push_str(header);
        } else {
            body.push_str(sep);
        }
        body.push_str(&rendered);
        count += 1;
    }
    flush(&mut body, &mut count, &mut out);
    debug_assert!(out.iter().all(|m| m.body.is_ascii()));
    Ok(out)
}

/// Any record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A VM.
    Cloud(CloudRecord),
    /// Public IPs of a project.
    Ip(IpRecord),
    /// A VM's accelerators in one month.
    Accelerator(AcceleratorRecord),
    /// A volume.
    Storage(StorageRecord),
}

/// Renders a mixed list the way cASO's SSM messenger does: all cloud
/// messages, then IP, accelerator and storage messages; each type keeps the
/// order of `records`.
pub fn render_all(
    records: &[Record],
    limits: &BatchLimits,
) -> Result<Vec<Message>, AccountingError> {
    let cloud = records.iter().filter_map(|r| match r {
        Record::Cloud(r) => Some(r),
        _ => None,
    });
    let ip = records.iter().filter_map(|r| match r {
        Record::Ip(r) => Some(r),
        _ => None,
    });
    let acc = records.iter().filter_map(|r| match r {
        Record::Accelerator(r) => Some(r),
        _ => None,
    });
    let storage = records.iter().filter_map(|r| match r {
        Record::Storage(r) => Some(r),
        _ => None,
    });
    let mut out = render_iter(cloud, limits)?;
    out.extend(render_iter(ip, limits)?);
    out.extend(render_iter(acc, limits)?);
    out.extend(render_iter(storage, limits)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::{CloudStatus, IpVersion, MeasurementMonth, Site, Uuid};
    use chrono::{TimeZone, Utc};

    fn site() -> Site {
        Site::with_cloud_type("TEST-Site", "TEST-Site", "caso/5.2.2 (OpenStack)").unwrap()
    }

    fn cloud(i: u8, name: &str) -> CloudRecord {
        CloudRecord {
            site: site(),
            vm_uuid: Uuid::from_bytes([i; 16]),
            machine_name: name.into(),
            local_user_id: "u".into(),
            local_group_id: "g".into(),
            global_user_name: None,
            fqan: "vo".into(),
            status: CloudStatus::Started,
            start_time: Utc.timestamp_opt(1_684_533_546, 0).unwrap(),
            end_time: None,
            suspend_duration: None,
            wall_duration: Some(10),
            cpu_duration: None,
            cpu_count: 1,
            memory_mb: 1,
            disk_gb: 1,
            public_ip_count: 0,
            image_id: None,
            benchmark: None,
        }
    }

    /// The largest record each type can render: every free-text field at
    /// its cap, made of the character with the longest escape.
    fn largest_records() -> Vec<Record> {
        let worst = |c: &str| c.repeat(400);
        let s255 = "S".repeat(255);
        let big_site = Site::with_cloud_type(&s255, &s255, &s255).unwrap();
        let t = Utc.with_ymd_and_hms(2023, 5, 25, 21, 59, 6).unwrap()
            + chrono::Duration::microseconds(1);
        let mut c = cloud(1, &worst("x"));
        c.site = big_site.clone();
        c.global_user_name = Some(worst("x"));
        c.local_user_id = worst("x");
        c.local_group_id = worst("x");
        c.fqan = worst("x");
        c.image_id = Some(worst("x"));
        c.suspend_duration = Some(i64::MIN);
        c.wall_duration = Some(i64::MIN);
        c.cpu_duration = Some(i64::MIN);
        c.cpu_count = u32::MAX;
        c.memory_mb = u64::MAX;
        c.disk_gb = u64::MAX;
        c.public_ip_count = u32::MAX;
        c.end_time = Some(t);
        c.benchmark = Some(crate::accounting::Benchmark {
            name: worst("x"),
            value: -1.2345678901234567e-300,
        });
        vec![
            Record::Cloud(c),
            Record::Ip(IpRecord {
                site: big_site.clone(),
                uuid: Uuid::from_bytes([2; 16]),
                measurement_time: t,
                local_user: Some(worst("\"")),
                global_user_name: Some(worst("\\")),
                local_group: worst("\""),
                fqan: worst("\""),
                ip_version: IpVersion::V6,
                ip_count: u64::MAX,
            }),
            Record::Accelerator(AcceleratorRecord {
                site: big_site.clone(),
                vm_uuid: Uuid::from_bytes([3; 16]),
                global_user_name: Some(worst("\"")),
                fqan: worst("\""),
                count: u32::MAX,
                available_duration: i64::MIN,
                active_duration: Some(i64::MIN),
                month: MeasurementMonth::new(-262_000, 12).unwrap(),
                accelerator_type: worst("\""),
                cores: Some(u32::MAX),
                model: worst("\""),
            }),
            Record::Storage(StorageRecord {
                site: big_site,
                volume_uuid: Uuid::from_bytes([4; 16]),
                measure_time: t,
                start_time: t,
                local_user: worst("&"),
                local_group: worst("&"),
                user_identity: Some(worst("&")),
                group: worst("&"),
                capacity_gib: u64::MAX,
            }),
        ]
    }

    #[test]
    fn every_record_fits_the_smallest_message() {
        for r in largest_records() {
            let (kind, len) = match &r {
                Record::Cloud(r) => (MessageKind::Cloud, r.render().len()),
                Record::Ip(r) => (MessageKind::PublicIp, r.render().len()),
                Record::Accelerator(r) => (MessageKind::Accelerator, r.render().len()),
                Record::Storage(r) => (MessageKind::Storage, r.render().len()),
            };
            let size = len + kind.framing_len();
            assert!(size <= BatchLimits::MIN_BYTES, "{kind}: {size} bytes");
            // and the fixed overhead cannot push a single one over either
            let limits = BatchLimits::new(1, BatchLimits::MIN_BYTES).unwrap();
            let msgs = render_all(&[r], &limits).unwrap();
            assert_eq!(msgs.len(), 1);
            assert!(msgs[0].body.is_ascii());
        }
    }

    #[test]
    fn splits_at_max_records() {
        let records: Vec<_> = (0..7).map(|i| cloud(i, "vm")).collect();
        let limits = BatchLimits::new(3, BatchLimits::DEFAULT_BYTES).unwrap();
        let msgs = render_messages(&records, &limits).unwrap();
        assert_eq!(
            msgs.iter().map(|m| m.record_count).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        for m in &msgs {
            let text = String::from_utf8(m.body.clone()).unwrap();
            assert!(text.starts_with("APEL-cloud-message: v0.4\n") && text.ends_with("\n"));
            assert!(!text.ends_with("%%\n"));
            assert_eq!(text.matches("\n%%\n").count(), m.record_count - 1);
        }
    }

    #[test]
    fn splits_at_max_bytes_and_never_exceeds_it() {
        // ~600-byte records (names capped at 255): 16 KiB holds ~27 of them
        let records: Vec<_> = (0..80)
            .map(|i| cloud(i, &format!("{i:03}{}", "n".repeat(300))))
            .collect();
        let limits = BatchLimits::new(100, BatchLimits::MIN_BYTES).unwrap();
        let msgs = render_messages(&records, &limits).unwrap();
        assert!(msgs.len() > 1);
        assert_eq!(msgs.iter().map(|m| m.record_count).sum::<usize>(), 80);
        for m in &msgs {
            assert!(m.body.len() <= BatchLimits::MIN_BYTES, "{}", m.body.len());
        }
        // greedy: each message but the last could not take the next record
        let one = records[0].render().len() + "\n%%\n".len();
        for m in &msgs[..msgs.len() - 1] {
            assert!(m.body.len() + one > BatchLimits::MIN_BYTES);
        }
        // order is kept across messages
        let names: Vec<String> = msgs
            .iter()
            .flat_map(|m| {
                String::from_utf8(m.body.clone())
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.strip_prefix("MachineName: ").map(|n| n[..3].to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            names,
            (0..80).map(|i| format!("{i:03}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn exact_fit_is_allowed() {
        let r = cloud(1, "vm");
        let size = MessageKind::Cloud.framing_len() + r.render().len();
        // two records: exactly header + r + sep + r + trailer bytes
        let two = size + "\n%%\n".len() + r.render().len();
        let limits = BatchLimits {
            max_records: 100,
            max_bytes: two,
        };
        assert_eq!(
            render_messages(&[r.clone(), r.clone()], &limits)
                .unwrap()
                .len(),
            1
        );
        let limits = BatchLimits {
            max_records: 100,
            max_bytes: two - 1,
        };
        assert_eq!(render_messages(&[r.clone(), r], &limits).unwrap().len(), 2);
    }

    #[test]
    fn oversize_record_is_an_error_not_a_drop() {
        let r = cloud(1, "vm");
        let limits = BatchLimits {
            max_records: 100,
            max_bytes: 10,
        };
        let err = render_messages(&[r], &limits).unwrap_err();
        assert!(
            matches!(
                err,
                AccountingError::RecordTooLarge {
                    kind: MessageKind::Cloud,
                    max: 10,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn limits_are_validated() {
        assert!(BatchLimits::new(0, BatchLimits::DEFAULT_BYTES).is_err());
        assert!(BatchLimits::new(101, BatchLimits::DEFAULT_BYTES).is_err());
        assert!(BatchLimits::new(100, BatchLimits::MIN_BYTES - 1).is_err());
        assert!(BatchLimits::new(100, BatchLimits::MAX_BYTES + 1).is_err());
        assert_eq!(
            BatchLimits::new(100, BatchLimits::DEFAULT_BYTES).unwrap(),
            BatchLimits::default()
        );
    }

    #[test]
    fn no_records_no_messages() {
        assert!(render_all(&[], &BatchLimits::default()).unwrap().is_empty());
    }

    /// The spec's §2.4 example (observed from cASO), one volume.
    #[test]
    fn storage_spec_example() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let r = StorageRecord {
            site: site(),
            volume_uuid: Uuid::parse("recordId", "99cf5d02-a573-46a1-b90d-0f7327126876").unwrap(),
            measure_time: t(1685051946),
            start_time: t(1684619946),
            local_user: "63296dcdb6524039b274aaa70f9d57e5".into(),
            local_group: "313c6f62e05f4ec7b0f2256612db18f5".into(),
            user_identity: Some("user@egi.eu".into()),
            group: "vo.example.eu".into(),
            capacity_gib: 10,
        };
        let msgs = render_messages(&[r], &BatchLimits::default()).unwrap();
        let want = r#"<sr:StorageUsageRecords xmlns:sr="http://eu-emi.eu/namespaces/2011/02/storagerecord"><sr:StorageUsageRecord><sr:RecordIdentity sr:createTime="2023-05-25T21:59:06" sr:recordId="99cf5d02-a573-46a1-b90d-0f7327126876" /><sr:StorageSystem>TEST-Site</sr:StorageSystem><sr:Site>TEST-Site</sr:Site><sr:SubjectIdentity><sr:LocalUser>63296dcdb6524039b274aaa70f9d57e5</sr:LocalUser><sr:LocalGroup>313c6f62e05f4ec7b0f2256612db18f5</sr:LocalGroup><sr:UserIdentity>user@egi.eu</sr:UserIdentity><sr:Group>vo.example.eu</sr:Group></sr:SubjectIdentity><sr:StartTime>2023-05-20T21:59:06</sr:StartTime><sr:EndTime>2023-05-25T21:59:06</sr:EndTime><sr:ResourceCapacityUsed>10737418240</sr:ResourceCapacityUsed></sr:StorageUsageRecord></sr:StorageUsageRecords>"#;
        assert_eq!(String::from_utf8(msgs[0].body.clone()).unwrap(), want);
    }

    #[test]
    fn empty_required_text_is_a_short_element() {
        let mut r = StorageRecord {
            site: site(),
            volume_uuid: Uuid::from_bytes([9; 16]),
            measure_time: Utc.timestamp_opt(0, 0).unwrap(),
            start_time: Utc.timestamp_opt(0, 0).unwrap(),
            local_user: "日本".into(),
            local_group: "g".into(),
            user_identity: Some("日本".into()),
            group: "日本".into(),
            capacity_gib: 1,
        };
        let s = r.render();
        assert!(s.contains("<sr:SubjectIdentity><sr:LocalUser /><sr:LocalGroup>g</sr:LocalGroup></sr:SubjectIdentity>"), "{s}");
        r.user_identity = None;
        assert_eq!(r.render(), s);
    }
}
