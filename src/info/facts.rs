//! What the gathering adapter found out about the site: plain data, the
//! input of [`build`](super::build). Images and quotas are kept as the JSON
//! the services returned (their properties are open-ended); flavors are
//! reduced to what the document uses.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Everything the document is built from.
#[derive(Debug, Clone, Default)]
pub struct SiteFacts {
    /// GOCDB site name (`site.gocdb`).
    pub site: String,
    /// The Keystone URL exactly as registered in GOCDB; every ID is built
    /// from it verbatim.
    pub endpoint: String,
    /// The GOCDB entry of the endpoint, when known.
    pub gocdb: Option<GocdbEntry>,
    /// TLS facts of the endpoint.
    pub ca: CaInfo,
    /// The keystoneauth plugin name of the credential (`Authentication`).
    pub authentication: String,
    /// Nova's maximum microversion (`ImplementationVersion`), read with a
    /// working share's token.
    pub nova_version: Option<String>,
    /// One per VO project, in configuration order.
    pub shares: Vec<ShareFacts>,
}

/// The endpoint in GOCDB (`Service.OtherInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GocdbEntry {
    /// `PRIMARY_KEY`, e.g. `12249G0`.
    pub gocdb_id: String,
    /// `SITENAME`.
    pub site_name: String,
}

/// The endpoint's TLS issuer and the CAs it accepts for client
/// certificates, as OpenSSL one-line DNs (`/C=NL/O=.../CN=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    /// `IssuerCA`.
    pub issuer: String,
    /// `TrustedCA`.
    pub trusted: Vec<String>,
}

impl Default for CaInfo {
    /// What cloud-info-provider publishes when it cannot tell (plain http,
    /// TLS failure).
    fn default() -> Self {
        CaInfo {
            issuer: "UNKNOWN".into(),
            trusted: vec!["UNKNOWN".into()],
        }
    }
}

/// One VO project.
#[derive(Debug, Clone)]
pub struct ShareFacts {
    /// VO name.
    pub vo: String,
    /// The project as configured (for messages).
    pub project: String,
    /// What was read, or why nothing could be.
    pub result: Result<ProjectFacts, ShareFailure>,
}

/// Why a share could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareFailure {
    /// The credential or the scope was refused (Keystone 401): the one case
    /// cloud-info-provider survives.
    pub auth: bool,
    /// The real error.
    pub message: String,
}

/// What one project holds.
#[derive(Debug, Clone, Default)]
pub struct ProjectFacts {
    /// Project id (from the scoped token).
    pub project_id: String,
    /// Project name (from the token).
    pub project_name: Option<String>,
    /// The project's domain name (from the token).
    pub project_domain_name: Option<String>,
    /// The image endpoint of the catalog, as the catalog has it.
    pub glance_endpoint: String,
    /// Active images, in Glance's order, as Glance returned them.
    pub images: Vec<Map<String, Value>>,
    /// Flavors the project can use, in Nova's order.
    pub flavors: Vec<FlavorFacts>,
    /// The quota set (`None` when not readable).
    pub quotas: Option<Map<String, Value>>,
    /// Status of every server of the project.
    pub server_statuses: Vec<String>,
}

/// A flavor.
#[derive(Debug, Clone, Default)]
pub struct FlavorFacts {
    /// Flavor id.
    pub id: String,
    /// Name.
    pub name: String,
    /// vCPUs.
    pub vcpus: u64,
    /// RAM, MiB.
    pub ram: u64,
    /// Root disk, GiB.
    pub disk: u64,
    /// `os-flavor-access:is_public`.
    pub is_public: bool,
    /// Extra specs (properties).
    pub extra_specs: BTreeMap<String, String>,
}
