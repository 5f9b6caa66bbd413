//! Nova (compute v2.1): servers, flavors with extra specs, quota sets and the
//! version document — the calls cASO's Nova extractor and
//! cloud-info-provider make (see `shared/specs/accounting.md` §1.4 and
//! `cloud-info.md` §1.5).
//!
//! Every typed struct keeps the object it was read from in `raw`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::error::Error;
use super::session::{parse_microversion, Microversion, Session};
use super::wire::{self, impl_raw, lenient_i64, opt_time};

/// The microversion from which flavors carry `extra_specs` inline.
pub const FLAVOR_EXTRA_SPECS_MICROVERSION: &str = "2.61";

/// A server (`GET /servers/detail`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Server {
    /// Server id (UUID).
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Status (`ACTIVE`, `SHUTOFF`, `DELETED`, ...).
    #[serde(default)]
    pub status: String,
    /// Project id.
    #[serde(default)]
    pub tenant_id: String,
    /// Owner user id.
    #[serde(default)]
    pub user_id: String,
    /// Creation time.
    #[serde(default, deserialize_with = "opt_time")]
    pub created: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "opt_time")]
    pub updated: Option<DateTime<Utc>>,
    /// `OS-SRV-USG:launched_at`.
    #[serde(
        default,
        rename = "OS-SRV-USG:launched_at",
        deserialize_with = "opt_time"
    )]
    pub launched_at: Option<DateTime<Utc>>,
    /// `OS-SRV-USG:terminated_at`.
    #[serde(
        default,
        rename = "OS-SRV-USG:terminated_at",
        deserialize_with = "opt_time"
    )]
    pub terminated_at: Option<DateTime<Utc>>,
    /// The flavor: `{"id": ..}` before 2.47, the embedded flavor after.
    #[serde(default)]
    pub flavor: Value,
    /// The image: `{"id": ..}`, or `""` when booted from a volume.
    #[serde(default)]
    pub image: Value,
    /// Addresses per network.
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<Address>>,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

/// One address of a server.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Address {
    /// The IP address.
    #[serde(default)]
    pub addr: String,
    /// 4 or 6.
    #[serde(default)]
    pub version: u8,
    /// `fixed` or `floating`.
    #[serde(default, rename = "OS-EXT-IPS:type")]
    pub kind: Option<String>,
}

impl Server {
    /// The flavor id (microversions < 2.47).
    pub fn flavor_id(&self) -> Option<&str> {
        self.flavor.get("id").and_then(Value::as_str)
    }
    /// The image id; `None` for a server booted from a volume.
    pub fn image_id(&self) -> Option<&str> {
        self.image.get("id").and_then(Value::as_str)
    }
    /// Number of floating addresses (cASO's `PublicIPCount`).
    pub fn floating_ip_count(&self) -> usize {
        self.addresses
            .values()
            .flatten()
            .filter(|a| a.kind.as_deref() == Some("floating"))
            .count()
    }
}

/// Filters of [`servers`]. `Default` lists the scoped project's live servers.
#[derive(Debug, Clone, Default)]
pub struct ServerQuery {
    /// `changes-since`: servers changed since then, including deleted ones.
    pub changes_since: Option<DateTime<Utc>>,
    /// `changes-before`.
    pub changes_before: Option<DateTime<Utc>>,
    /// `deleted=true|false` (admin only).
    pub deleted: Option<bool>,
    /// `all_tenants=1` (admin only).
    pub all_tenants: bool,
    /// `project_id` (with `all_tenants`).
    pub project_id: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// Page size (default [`Limits::page_size`](super::Limits::page_size)).
    pub page_size: Option<u32>,
    /// Microversion (default none, i.e. 2.1 — cASO's view of `flavor`).
    pub microversion: Option<String>,
}

fn time_param(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ServerQuery {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(t) = &self.changes_since {
            q.push(("changes-since", time_param(t)));
        }
        if let Some(t) = &self.changes_before {
            q.push(("changes-before", time_param(t)));
        }
        if let Some(d) = self.deleted {
            q.push(("deleted", d.to_string()));
        }
        if self.all_tenants {
            q.push(("all_tenants", "1".into()));
        }
        if let Some(p) = &self.project_id {
            q.push(("project_id", p.clone()));
        }
        if let Some(s) = &self.status {
            q.push(("status", s.clone()));
        }
        q
    }
}

pub(crate) fn borrow<'a>(q: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    q.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `GET /servers/detail` with `query`, all pages.
pub async fn servers(s: &Session, query: &ServerQuery) -> Result<Vec<Server>, Error> {
    let params = query.params();
    let mv = query.microversion.as_deref().map(Microversion::compute);
    let items: Vec<Value> = s
        .paginate(
            "compute",
            "servers/detail",
            "servers",
            &borrow(&params),
            query.page_size,
            mv.as_ref(),
        )
        .await?;
    let target = super::error::Target::new("GET", &s.url("compute", "servers/detail", &[])?)
        .service("compute");
    items.into_iter().map(|v| wire::typed(&target, v)).collect()
}

/// `GET /servers/detail` with `query`, all pages, each page decoded straight
/// from the response bytes into [`Server`]s, with no intermediate JSON tree
/// (`raw` stays `Null`): for listings of thousands of servers (accounting),
/// at a fraction of [`servers`]' CPU time and memory. Paging as
/// [`Session::paginate`]: the `servers_links` `next` marker, else the last
/// id of a full page.
pub async fn servers_lean(s: &Session, query: &ServerQuery) -> Result<Vec<Server>, Error> {
    #[derive(Deserialize)]
    struct Link {
        #[serde(default)]
        rel: String,
        #[serde(default)]
        href: String,
    }
    #[derive(Deserialize)]
    struct Page {
        servers: Vec<Server>,
        #[serde(default)]
        servers_links: Option<Vec<Link>>,
    }
    let params = query.params();
    let mv = query.microversion.as_deref().map(Microversion::compute);
    let limits = s.openstack().limits();
    let page_size = query.page_size.unwrap_or(limits.page_size).max(1);
    let limit = page_size.to_string();
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    let mut markers = std::collections::HashSet::new();
    for _ in 0..limits.max_pages {
        let mut q = borrow(&params);
        q.push(("limit", &limit));
        if let Some(m) = &marker {
            q.push(("marker", m));
        }
        let page: Page = s
            .get_json("compute", "servers/detail", &q, mv.as_ref())
            .await?;
        let full = page.servers.len() >= page_size as usize;
        let next = match &page.servers_links {
            Some(links) => links
                .iter()
                .find(|l| l.rel == "next")
                .and_then(|l| {
                    url::Url::parse(&l.href)
                        .or_else(|_| url::Url::parse("http://x/").and_then(|b| b.join(&l.href)))
                        .ok()
                })
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "marker")
                        .map(|(_, v)| v.into_owned())
                }),
            None if full => page.servers.last().map(|v| v.id.clone()),
            None => None,
        };
        let empty = page.servers.is_empty();
        out.extend(page.servers);
        match next {
            Some(m) if !empty => {
                if !markers.insert(m.clone()) {
                    return Err(Error::Decode {
                        target: super::error::Target::new(
                            "GET",
                            &s.url("compute", "servers/detail", &[])?,
                        )
                        .service("compute"),
                        reason: format!("pagination does not advance (marker {m} again)"),
                    });
                }
                marker = Some(m);
            }
            _ => return Ok(out),
        }
    }
    Err(Error::Decode {
        target: super::error::Target::new("GET", &s.url("compute", "servers/detail", &[])?)
            .service("compute"),
        reason: format!("more than {} pages", limits.max_pages),
    })
}

/// `GET /servers/{id}`.
pub async fn server(s: &Session, id: &str) -> Result<Server, Error> {
    let path = format!("servers/{}", super::auth::segment(id));
    let v: Value = s.get_json("compute", &path, &[], None).await?;
    let target =
        super::error::Target::new("GET", &s.url("compute", &path, &[])?).service("compute");
    wire::typed(&target, wire::collection_one(&target, v, "server")?)
}

/// A flavor (`GET /flavors/detail`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Flavor {
    /// Flavor id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// vCPUs.
    #[serde(default)]
    pub vcpus: u32,
    /// RAM, MiB.
    #[serde(default)]
    pub ram: u64,
    /// Root disk, GiB.
    #[serde(default)]
    pub disk: u64,
    /// Ephemeral disk, GiB.
    #[serde(
        default,
        rename = "OS-FLV-EXT-DATA:ephemeral",
        deserialize_with = "lenient_i64"
    )]
    pub ephemeral: Option<i64>,
    /// Swap, MiB (`""` means none).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub swap: Option<i64>,
    /// `os-flavor-access:is_public`.
    #[serde(default, rename = "os-flavor-access:is_public")]
    pub is_public: Option<bool>,
    /// Extra specs (inline from 2.61, else fetched per flavor); `None` when
    /// not asked for or not readable.
    #[serde(default)]
    pub extra_specs: Option<BTreeMap<String, String>>,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

/// Which flavors [`flavors`] lists (`is_public`). Nova honours it for
/// admins only: other users always get the public flavors plus the private
/// ones their project may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlavorVisibility {
    /// Public ones and the private ones the project can use
    /// (`is_public=None`, as cloud-info-provider).
    #[default]
    All,
    /// `is_public=true`.
    Public,
    /// `is_public=false`.
    Private,
}

/// How [`flavors`] gets extra specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtraSpecs {
    /// Not at all.
    Skip,
    /// Inline with microversion 2.61 when Nova supports it, else one
    /// `os-extra_specs` call per flavor.
    #[default]
    Auto,
    /// One `GET /flavors/{id}/os-extra_specs` per flavor (what pre-2.61
    /// clients do).
    PerFlavor,
}

/// Options of [`flavors`].
#[derive(Debug, Clone, Default)]
pub struct FlavorQuery {
    /// Visibility filter.
    pub visibility: FlavorVisibility,
    /// Extra specs.
    pub extra_specs: ExtraSpecs,
    /// Page size.
    pub page_size: Option<u32>,
}

/// `GET /flavors/detail`, all pages, with extra specs per `query`.
pub async fn flavors(s: &Session, query: &FlavorQuery) -> Result<Vec<Flavor>, Error> {
    let known = match query.extra_specs {
        ExtraSpecs::Auto => Some(version(s).await?),
        _ => None,
    };
    flavors_with_version(s, query, known.as_ref()).await
}

/// [`flavors`] when Nova's version document was already read (saves the
/// request): with [`ExtraSpecs::Auto`], extra specs come inline when
/// `version` allows it.
pub async fn flavors_with_version(
    s: &Session,
    query: &FlavorQuery,
    version: Option<&ApiVersion>,
) -> Result<Vec<Flavor>, Error> {
    let is_public = match query.visibility {
        FlavorVisibility::All => "None",
        FlavorVisibility::Public => "true",
        FlavorVisibility::Private => "false",
    };
    let inline = match (query.extra_specs, version) {
        (ExtraSpecs::Auto, Some(v)) => {
            parse_microversion(&v.version) >= parse_microversion(FLAVOR_EXTRA_SPECS_MICROVERSION)
        }
        _ => false,
    };
    let mv = inline.then(|| Microversion::compute(FLAVOR_EXTRA_SPECS_MICROVERSION));
    let items: Vec<Value> = s
        .paginate(
            "compute",
            "flavors/detail",
            "flavors",
            &[("is_public", is_public)],
            query.page_size,
            mv.as_ref(),
        )
        .await?;
    let target = super::error::Target::new("GET", &s.url("compute", "flavors/detail", &[])?)
        .service("compute");
    let mut flavors: Vec<Flavor> = items
        .into_iter()
        .map(|v| wire::typed(&target, v))
        .collect::<Result<_, _>>()?;
    match query.extra_specs {
        ExtraSpecs::Skip => {
            for f in &mut flavors {
                f.extra_specs = None;
            }
        }
        ExtraSpecs::Auto | ExtraSpecs::PerFlavor => {
            for f in flavors.iter_mut().filter(|f| f.extra_specs.is_none()) {
                f.extra_specs = match flavor_extra_specs(s, &f.id).await {
                    Ok(specs) => Some(specs),
                    Err(Error::Forbidden { .. }) => None,
                    Err(e) => return Err(e),
                };
            }
        }
    }
    Ok(flavors)
}

/// `GET /flavors/{id}/os-extra_specs`.
pub async fn flavor_extra_specs(
    s: &Session,
    flavor_id: &str,
) -> Result<BTreeMap<String, String>, Error> {
    #[derive(Deserialize)]
    struct Body {
        extra_specs: BTreeMap<String, Value>,
    }
    let path = format!("flavors/{}/os-extra_specs", super::auth::segment(flavor_id));
    let b: Body = s.get_json("compute", &path, &[], None).await?;
    Ok(b.extra_specs
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// A project's quota set (`GET /os-quota-sets/{project_id}`); `-1` is unlimited.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct QuotaSet {
    /// Instances.
    #[serde(default)]
    pub instances: Option<i64>,
    /// vCPUs.
    #[serde(default)]
    pub cores: Option<i64>,
    /// RAM, MiB.
    #[serde(default)]
    pub ram: Option<i64>,
    /// Key pairs.
    #[serde(default)]
    pub key_pairs: Option<i64>,
    /// Server groups.
    #[serde(default)]
    pub server_groups: Option<i64>,
    /// Members per server group.
    #[serde(default)]
    pub server_group_members: Option<i64>,
    /// Metadata items.
    #[serde(default)]
    pub metadata_items: Option<i64>,
    /// The whole object (it also has the deprecated network quotas).
    #[serde(skip)]
    pub raw: Value,
}

/// `GET /os-quota-sets/{project_id}`.
pub async fn quota_set(s: &Session, project_id: &str) -> Result<QuotaSet, Error> {
    let path = format!("os-quota-sets/{}", super::auth::segment(project_id));
    let v: Value = s.get_json("compute", &path, &[], None).await?;
    let target =
        super::error::Target::new("GET", &s.url("compute", &path, &[])?).service("compute");
    wire::typed(&target, wire::collection_one(&target, v, "quota_set")?)
}

/// Nova's version document: the maximum microversion is `version`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ApiVersion {
    /// `v2.1`.
    #[serde(default)]
    pub id: String,
    /// Maximum microversion, e.g. `2.103` (empty for v2.0).
    #[serde(default)]
    pub version: String,
    /// Minimum microversion.
    #[serde(default)]
    pub min_version: String,
    /// `CURRENT`, `SUPPORTED`, ...
    #[serde(default)]
    pub status: String,
}

/// `GET {compute endpoint}` (the version document); on 404 the parent URL,
/// as cloud-info-provider does.
pub async fn version(s: &Session) -> Result<ApiVersion, Error> {
    #[derive(Deserialize)]
    struct Body {
        version: ApiVersion,
    }
    let endpoint = s.endpoint("compute")?;
    match s
        .get_json_url::<Body>("compute", endpoint.clone(), None)
        .await
    {
        Ok(b) => Ok(b.version),
        Err(Error::NotFound { .. }) => {
            let parent = endpoint.join("./").unwrap_or(endpoint);
            let b: Body = s.get_json_url("compute", parent, None).await?;
            Ok(b.version)
        }
        Err(e) => Err(e),
    }
}

impl_raw!(Server, Flavor, QuotaSet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_fields() {
        let v = serde_json::json!({
            "id": "5d3a", "name": "vm", "status": "DELETED", "tenant_id": "p", "user_id": "u",
            "created": "2024-05-01T10:00:00Z", "updated": "2024-05-02T10:00:00Z",
            "OS-SRV-USG:launched_at": "2024-05-01T10:00:05.000000", "OS-SRV-USG:terminated_at": null,
            "flavor": {"id": "1", "links": []}, "image": "",
            "addresses": {"private": [
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "203.0.113.9", "version": 4, "OS-EXT-IPS:type": "floating"}
            ]}
        });
        let t = super::super::error::Target::new("GET", &url::Url::parse("http://n/").unwrap());
        let s: Server = wire::typed(&t, v).unwrap();
        assert_eq!(s.flavor_id(), Some("1"));
        assert_eq!(s.image_id(), None);
        assert_eq!(s.floating_ip_count(), 1);
        assert_eq!(
            s.launched_at.unwrap().to_rfc3339(),
            "2024-05-01T10:00:05+00:00"
        );
        assert!(s.terminated_at.is_none());
        assert_eq!(s.raw["name"], "vm");
    }

    #[test]
    fn server_query_params() {
        let q = ServerQuery {
            changes_since: Some(
                DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            deleted: Some(true),
            all_tenants: true,
            status: Some("ACTIVE".into()),
            ..ServerQuery::default()
        };
        assert_eq!(
            q.params(),
            vec![
                ("changes-since", "2024-05-01T10:00:00Z".to_string()),
                ("deleted", "true".into()),
                ("all_tenants", "1".into()),
                ("status", "ACTIVE".into())
            ]
        );
    }

    #[test]
    fn flavor_fields() {
        let v = serde_json::json!({"id": "g1", "name": "gpu", "vcpus": 4, "ram": 8192, "disk": 20,
            "OS-FLV-EXT-DATA:ephemeral": 10, "swap": "", "os-flavor-access:is_public": false,
            "extra_specs": {"Accelerator:Number": "1"}});
        let t = super::super::error::Target::new("GET", &url::Url::parse("http://n/").unwrap());
        let f: Flavor = wire::typed(&t, v).unwrap();
        assert_eq!(
            (f.vcpus, f.ram, f.disk, f.ephemeral, f.swap, f.is_public),
            (4, 8192, 20, Some(10), None, Some(false))
        );
        assert_eq!(f.extra_specs.unwrap()["Accelerator:Number"], "1");
    }
}
