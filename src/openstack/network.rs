//! Neutron v2.0 floating IPs (cASO's public IP records,
//! `shared/specs/accounting.md` §1.6), filtered by `project_id` — unlike
//! cASO, which forgets the filter.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::compute::borrow;
use super::error::{Error, Target};
use super::session::Session;
use super::wire::{self, impl_raw, opt_time};

/// A floating IP.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct FloatingIp {
    /// Id.
    pub id: String,
    /// The address.
    #[serde(default)]
    pub floating_ip_address: String,
    /// Owner project.
    #[serde(default)]
    pub project_id: Option<String>,
    /// `ACTIVE`, `DOWN`, `ERROR`.
    #[serde(default)]
    pub status: Option<String>,
    /// Associated port, if any.
    #[serde(default)]
    pub port_id: Option<String>,
    /// Fixed IP it maps to.
    #[serde(default)]
    pub fixed_ip_address: Option<String>,
    /// External network.
    #[serde(default)]
    pub floating_network_id: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

impl FloatingIp {
    /// 4 or 6 (from the address); `None` if it does not parse.
    pub fn ip_version(&self) -> Option<u8> {
        match self.floating_ip_address.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => Some(4),
            IpAddr::V6(_) => Some(6),
        }
    }
}

/// Filters of [`floating_ips`].
#[derive(Debug, Clone, Default)]
pub struct FloatingIpQuery {
    /// `project_id`.
    pub project_id: Option<String>,
    /// Page size.
    pub page_size: Option<u32>,
}

/// The path of `rest` under Neutron's `v2.0`, whether or not the catalog URL
/// already ends in `/v2.0`.
pub(crate) fn v20_path(endpoint: &Url, rest: &str) -> String {
    if endpoint.path().trim_end_matches('/').ends_with("/v2.0") {
        rest.to_string()
    } else {
        format!("v2.0/{rest}")
    }
}

/// `GET /v2.0/floatingips` with `query`, all pages.
pub async fn floating_ips(s: &Session, query: &FloatingIpQuery) -> Result<Vec<FloatingIp>, Error> {
    let path = v20_path(&s.endpoint("network")?, "floatingips");
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(p) = &query.project_id {
        q.push(("project_id", p.clone()));
    }
    let items: Vec<Value> = s
        .paginate(
            "network",
            &path,
            "floatingips",
            &borrow(&q),
            query.page_size,
            None,
        )
        .await?;
    let target = Target::new("GET", &s.url("network", &path, &[])?).service("network");
    items.into_iter().map(|v| wire::typed(&target, v)).collect()
}

impl_raw!(FloatingIp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_paths() {
        let f = FloatingIp {
            floating_ip_address: "2001:db8::1".into(),
            ..FloatingIp::default()
        };
        assert_eq!(f.ip_version(), Some(6));
        let f = FloatingIp {
            floating_ip_address: "203.0.113.7".into(),
            ..FloatingIp::default()
        };
        assert_eq!(f.ip_version(), Some(4));
        assert_eq!(
            v20_path(&Url::parse("http://n:9696").unwrap(), "floatingips"),
            "v2.0/floatingips"
        );
        assert_eq!(
            v20_path(&Url::parse("http://n:9696/v2.0/").unwrap(), "floatingips"),
            "floatingips"
        );
    }
}
