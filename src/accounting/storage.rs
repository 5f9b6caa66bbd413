//! Storage (Cinder volume) records: EMI StAR XML (spec accounting.md §2.4,
//! cASO `caso/record.py::StorageRecord.ssm_message` and
//! `caso/messenger/ssm.py::_push_message_storage`).
//!
//! Times are written as cASO writes them: naive ISO 8601 without a zone
//! (`2023-05-25T21:59:06`, `.ffffff` when the microseconds are not zero).
//! Ours are always UTC, which is how APEL reads a time without a zone
//! (`apel/common/datetime_utils.py::parse_timestamp`); cASO's are local
//! time, correct only on UTC hosts.

use super::message::{ApelRecord, MessageKind};
use super::pyfmt::{isoformat, xml_attr, xml_text};
use super::sanitize::{apel_text, MAX_FIELD_LEN};
use super::{Site, Uuid};
use chrono::{DateTime, Utc};

/// The StAR namespace, bound to the prefix `sr`.
pub const STAR_NAMESPACE: &str = "http://eu-emi.eu/namespaces/2011/02/storagerecord";

/// One volume's allocation at `measure_time`. APEL keys storage records by
/// `recordId` (the volume UUID), so each run replaces the previous snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRecord {
    /// `Site` and `StorageSystem` (the site's service).
    pub site: Site,
    /// `RecordIdentity@recordId`.
    pub volume_uuid: Uuid,
    /// `RecordIdentity@createTime` and `EndTime`.
    pub measure_time: DateTime<Utc>,
    /// `StartTime`: `max(volume created_at, extract_from)`.
    pub start_time: DateTime<Utc>,
    /// `SubjectIdentity/LocalUser` (Keystone user id).
    pub local_user: String,
    /// `SubjectIdentity/LocalGroup` (project id).
    pub local_group: String,
    /// `SubjectIdentity/UserIdentity` (Keystone user name); omitted when
    /// `None` or empty.
    pub user_identity: Option<String>,
    /// `SubjectIdentity/Group` (VO); omitted when empty.
    pub group: String,
    /// Volume size in GiB; `ResourceCapacityUsed` is in bytes.
    pub capacity_gib: u64,
}

/// Appends `<sr:{tag}>text</sr:{tag}>`, or `<sr:{tag} />` for empty text
/// (ElementTree's short empty elements).
fn element(out: &mut String, tag: &str, text: &str) {
    if text.is_empty() {
        out.push_str(&format!("<sr:{tag} />"));
    } else {
        out.push_str(&format!("<sr:{tag}>"));
        xml_text(out, text);
        out.push_str(&format!("</sr:{tag}>"));
    }
}

impl ApelRecord for StorageRecord {
    const KIND: MessageKind = MessageKind::Storage;

    /// One `sr:StorageUsageRecord` element as it appears inside the message
    /// root (which carries the namespace declaration).
    fn render(&self) -> String {
        let mut o = String::with_capacity(1024);
        o.push_str("<sr:StorageUsageRecord><sr:RecordIdentity sr:createTime=\"");
        xml_attr(&mut o, &isoformat(&self.measure_time));
        o.push_str("\" sr:recordId=\"");
        xml_attr(&mut o, &self.volume_uuid.to_string());
        o.push_str("\" />");
        element(&mut o, "StorageSystem", self.site.service());
        element(&mut o, "Site", self.site.name());
        o.push_str("<sr:SubjectIdentity>");
        element(
            &mut o,
            "LocalUser",
            &apel_text(&self.local_user, MAX_FIELD_LEN),
        );
        element(
            &mut o,
            "LocalGroup",
            &apel_text(&self.local_group, MAX_FIELD_LEN),
        );
        if let Some(user) = &self.user_identity {
            let user = apel_text(user, MAX_FIELD_LEN);
            if !user.is_empty() {
                element(&mut o, "UserIdentity", &user);
            }
        }
        let group = apel_text(&self.group, MAX_FIELD_LEN);
        if !group.is_empty() {
            element(&mut o, "Group", &group);
        }
        o.push_str("</sr:SubjectIdentity>");
        element(&mut o, "StartTime", &isoformat(&self.start_time));
        element(&mut o, "EndTime", &isoformat(&self.measure_time));
        element(
            &mut o,
            "ResourceCapacityUsed",
            &self.capacity_gib.saturating_mul(1 << 30).to_string(),
        );
        o.push_str("</sr:StorageUsageRecord>");
        o
    }

    fn id(&self) -> String {
        self.volume_uuid.to_string()
    }
}
