//! Public IP records: JSON `APEL Public IP message` version `0.2` (spec
//! accounting.md §2.2, cASO `caso/record.py::IPRecord`).

use super::message::{ApelRecord, MessageKind};
use super::pyfmt::{epoch, json_str};
use super::sanitize::{apel_text, MAX_FIELD_LEN};
use super::{Site, Uuid};
use chrono::{DateTime, Utc};

/// `IPVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// 4
    V4,
    /// 6
    V6,
}

impl IpVersion {
    /// The version of an address.
    pub fn of(addr: &std::net::IpAddr) -> Self {
        if addr.is_ipv4() {
            Self::V4
        } else {
            Self::V6
        }
    }

    /// 4 or 6.
    pub fn number(self) -> u8 {
        match self {
            Self::V4 => 4,
            Self::V6 => 6,
        }
    }
}

/// A snapshot of how many public IPs of one version a project (or user)
/// holds at `measurement_time`. One record per (project, version): cASO's
/// Neutron extractor lets v6 overwrite v4, this type does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRecord {
    /// `SiteName`, `CloudType`, `CloudComputeService`.
    pub site: Site,
    /// `uuid`: a fresh random id per record (see [`Uuid::new_v4`]).
    pub uuid: Uuid,
    /// `MeasurementTime`.
    pub measurement_time: DateTime<Utc>,
    /// `LocalUser` (omitted when `None`, as cASO always does).
    pub local_user: Option<String>,
    /// `GlobalUserName` (omitted when `None`).
    pub global_user_name: Option<String>,
    /// `LocalGroup` (project id).
    pub local_group: String,
    /// `FQAN` (VO).
    pub fqan: String,
    /// `IPVersion`.
    pub ip_version: IpVersion,
    /// `IPCount`.
    pub ip_count: u64,
}

impl ApelRecord for IpRecord {
    const KIND: MessageKind = MessageKind::PublicIp;

    /// One JSON object, keys in cASO's (pydantic field) order, Python
    /// separators, `None` omitted.
    fn render(&self) -> String {
        let mut o = JsonObject::new();
        o.str("SiteName", self.site.name());
        o.str("CloudType", self.site.cloud_type());
        o.str("CloudComputeService", self.site.service());
        o.str("uuid", &self.uuid.to_string());
        if let Some(user) = &self.local_user {
            o.text("LocalUser", user);
        }
        if let Some(name) = &self.global_user_name {
            o.text("GlobalUserName", name);
        }
        o.text("LocalGroup", &self.local_group);
        o.text("FQAN", &self.fqan);
        o.int("IPVersion", self.ip_version.number());
        o.int("IPCount", self.ip_count);
        o.int("MeasurementTime", epoch(&self.measurement_time));
        o.finish()
    }

    fn id(&self) -> String {
        self.uuid.to_string()
    }
}

/// A JSON object written like Python's `json.dumps` (`", "` and `": "`,
/// ASCII escapes).
pub(crate) struct JsonObject(String);

impl JsonObject {
    pub(crate) fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push_str(", ");
        }
        json_str(&mut self.0, key);
        self.0.push_str(": ");
    }

    /// A string value written as is (site values, UUIDs: already validated).
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        json_str(&mut self.0, value);
    }

    /// A free-text value, sanitised.
    pub(crate) fn text(&mut self, key: &str, value: &str) {
        self.str(key, &apel_text(value, MAX_FIELD_LEN));
    }

    pub(crate) fn int(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        self.0.push_str(&value.to_string());
    }

    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The spec's §2.2 example (observed from cASO).
    #[test]
    fn spec_example() {
        let r = IpRecord {
            site: Site::with_cloud_type("TEST-Site", "TEST-Site", "caso/5.2.2 (OpenStack)")
                .unwrap(),
            uuid: Uuid::parse("uuid", "e3c5aeef-37b8-4332-ad9f-9d068f156dc2").unwrap(),
            measurement_time: Utc.timestamp_opt(1685051946, 0).unwrap(),
            local_user: None,
            global_user_name: None,
            local_group: "03b6a6c4cf2b48b982f169c52b9f30af".into(),
            fqan: "vo.example.eu".into(),
            ip_version: IpVersion::of(&"2001:db8::1".parse().unwrap()),
            ip_count: 3,
        };
        let want = r#"{"SiteName": "TEST-Site", "CloudType": "caso/5.2.2 (OpenStack)", "CloudComputeService": "TEST-Site", "uuid": "e3c5aeef-37b8-4332-ad9f-9d068f156dc2", "LocalGroup": "03b6a6c4cf2b48b982f169c52b9f30af", "FQAN": "vo.example.eu", "IPVersion": 6, "IPCount": 3, "MeasurementTime": 1685051946}"#;
        assert_eq!(r.render(), want);
    }
}
