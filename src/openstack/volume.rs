//! Cinder v3 volumes (cASO's storage records, `shared/specs/accounting.md`
//! §1.5): `GET /volumes/detail`, paged, with `all_tenants` / `project_id`
//! filters for an admin view.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::compute::borrow;
use super::error::{Error, Target};
use super::session::{Microversion, Session};
use super::wire::{self, impl_raw, opt_time};

/// A volume.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Volume {
    /// Volume id.
    pub id: String,
    /// Name (may be null).
    #[serde(default)]
    pub name: Option<String>,
    /// `available`, `in-use`, ...
    #[serde(default)]
    pub status: String,
    /// Size, GiB.
    #[serde(default)]
    pub size: u64,
    /// Owner user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Project id (`os-vol-tenant-attr:tenant_id`, shown to admins).
    #[serde(default, rename = "os-vol-tenant-attr:tenant_id")]
    pub tenant_id: Option<String>,
    /// Volume type.
    #[serde(default)]
    pub volume_type: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

/// A volume attachment.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Attachment {
    /// Server id.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Attachment id.
    #[serde(default)]
    pub attachment_id: Option<String>,
    /// Device path.
    #[serde(default)]
    pub device: Option<String>,
    /// When.
    #[serde(default, deserialize_with = "opt_time")]
    pub attached_at: Option<DateTime<Utc>>,
}

/// Filters of [`volumes`].
#[derive(Debug, Clone, Default)]
pub struct VolumeQuery {
    /// `all_tenants=1` (admin).
    pub all_tenants: bool,
    /// `project_id` (with `all_tenants`).
    pub project_id: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `changes-since` (honoured by recent Cinder only; treat the result as
    /// a superset).
    pub changes_since: Option<DateTime<Utc>>,
    /// Page size.
    pub page_size: Option<u32>,
    /// Microversion (`3.xx`), default none (3.0).
    pub microversion: Option<String>,
}

/// `GET /volumes/detail` with `query`, all pages.
pub async fn volumes(s: &Session, query: &VolumeQuery) -> Result<Vec<Volume>, Error> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if query.all_tenants {
        q.push(("all_tenants", "1".into()));
    }
    if let Some(p) = &query.project_id {
        q.push(("project_id", p.clone()));
    }
    if let Some(st) = &query.status {
        q.push(("status", st.clone()));
    }
    if let Some(t) = &query.changes_since {
        q.push((
            "changes-since",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    let mv = query.microversion.as_deref().map(Microversion::volume);
    let items: Vec<Value> = s
        .paginate(
            "block-storage",
            "volumes/detail",
            "volumes",
            &borrow(&q),
            query.page_size,
            mv.as_ref(),
        )
        .await?;
    let target = Target::new("GET", &s.url("block-storage", "volumes/detail", &[])?)
        .service("block-storage");
    items.into_iter().map(|v| wire::typed(&target, v)).collect()
}

impl_raw!(Volume);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_fields() {
        let v = serde_json::json!({"id": "v1", "name": null, "status": "in-use", "size": 2, "user_id": "u",
            "os-vol-tenant-attr:tenant_id": "p", "created_at": "2024-05-01T10:00:00.000000",
            "attachments": [{"server_id": "s1", "attachment_id": "a1", "attached_at": "2024-05-01T10:05:00.000000", "device": "/dev/vdb"}]});
        let t = Target::new("GET", &url::Url::parse("http://c/").unwrap());
        let vol: Volume = wire::typed(&t, v).unwrap();
        assert_eq!(vol.name, None);
        assert_eq!(vol.tenant_id.as_deref(), Some("p"));
        assert_eq!(vol.attachments[0].server_id.as_deref(), Some("s1"));
        assert_eq!(
            vol.attachments[0].attached_at.unwrap().to_rfc3339(),
            "2024-05-01T10:05:00+00:00"
        );
    }
}
