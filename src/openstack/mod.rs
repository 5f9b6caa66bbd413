//! The async OpenStack client layer: Keystone authentication and the Nova,
//! Glance, Cinder, Neutron and Keystone calls that accounting, site
//! information and image sync make.
//!
//! Input is a [`CloudAccess`] (built by `config`). [`OpenStack`] holds one
//! HTTP client (TLS trust, proxies, retries: see [`http`]) and a token
//! cache (see `auth`); it is cheap to clone. A [`Session`] is a token scope
//! (the credential's default, a project, or the system) plus the catalog;
//! requests through it renew the token when it is about to expire.
//!
//! ```no_run
//! # async fn demo(access: fedcloud_appliance::openstack::access::CloudAccess) -> Result<(), fedcloud_appliance::openstack::Error> {
//! use fedcloud_appliance::openstack::{compute, OpenStack};
//! let os = OpenStack::new(access)?;
//! for project in os.projects().await? {
//!     let s = os.scoped(&project.reference()).await?;
//!     let servers = compute::servers(&s, &compute::ServerQuery::default()).await?;
//!     println!("{} has {} servers", project.id, servers.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Architecture invariants: only this module talks to OpenStack APIs; no
//! token, password or secret reaches an error, a log line or a `Debug`
//! output (they are [`Secret`](crate::secret::Secret)s and sensitive
//! headers).

pub mod access;
mod auth;
pub mod catalog;
pub mod compute;
pub mod error;
pub mod http;
pub mod identity;
pub mod image;
pub mod network;
mod session;
pub mod volume;
mod wire;

use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::Method;
use url::Url;

pub use access::{CloudAccess, Credential, ProjectRef};
pub use auth::{NamedRef, TokenInfo, TokenProject, TokenUser};
pub use error::Error;
pub use http::{Limits, TrustReport};
pub use session::{parse_microversion, Microversion, Session};
pub use wire::parse_time;

use auth::{join, Scope};
use error::Target;
use http::{secret_header, Http, Request};

/// A client for one cloud: cheap to clone (an `Arc` inside), shareable
/// across tasks.
#[derive(Clone)]
pub struct OpenStack {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    access: CloudAccess,
    /// Keystone v3 base URL (normalised `access.auth_url`).
    auth_url: Url,
    http: Http,
    cache: tokio::sync::Mutex<auth::Cache>,
    /// When a token of ours was last refused (see [`Limits::revocation_settle`]).
    refused: std::sync::Mutex<Option<std::time::Instant>>,
}

impl fmt::Debug for OpenStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenStack")
            .field("auth_url", &crate::redact::url(&self.inner.auth_url))
            .field("credential", &self.inner.access.credential.kind())
            .field("region", &self.inner.access.region)
            .field("interface", &self.inner.access.interface)
            .finish()
    }
}

impl OpenStack {
    /// A client for `access` with default [`Limits`]. Reads the CA file and
    /// directory now (errors are [`Error::Config`]); makes no request.
    pub fn new(access: CloudAccess) -> Result<Self, Error> {
        Self::with_limits(access, Limits::default())
    }

    /// A client with explicit [`Limits`].
    pub fn with_limits(access: CloudAccess, limits: Limits) -> Result<Self, Error> {
        let auth_url = auth::normalize_auth_url(&access.auth_url)?;
        let http = Http::new(&access, limits)?;
        Ok(OpenStack {
            inner: Arc::new(Inner {
                access,
                auth_url,
                http,
                cache: tokio::sync::Mutex::new(auth::Cache::default()),
                refused: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The access this client was built from.
    pub fn access(&self) -> &CloudAccess {
        &self.inner.access
    }

    /// The Keystone v3 URL in use (`auth_url`, normalised to end in `/v3`).
    pub fn auth_url(&self) -> &Url {
        &self.inner.auth_url
    }

    /// What the TLS trust was built from.
    pub fn trust(&self) -> &TrustReport {
        &self.inner.http.trust
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.http.limits
    }

    /// A session with the credential's own scope (its project, or unscoped
    /// when it names none).
    pub async fn session(&self) -> Result<Session, Error> {
        self.session_for(Scope::Default).await
    }

    /// A session scoped to `project`. Password, token and OIDC credentials
    /// rescope their unscoped token; an application credential reaches only
    /// its own project ([`Error::Scope`] otherwise).
    pub async fn scoped(&self, project: &ProjectRef) -> Result<Session, Error> {
        self.session_for(Scope::Project(project.clone())).await
    }

    /// A system-scoped session (`system: {all: true}`), for listing projects
    /// by tag and reading other users, as cASO does. Needs a role assignment
    /// on the system; not possible with an application credential.
    pub async fn system(&self) -> Result<Session, Error> {
        self.session_for(Scope::System).await
    }

    async fn session_for(&self, scope: Scope) -> Result<Session, Error> {
        let token = self.inner.token(&scope).await?;
        Ok(Session::new(self.clone(), scope, token))
    }

    /// `GET url` without a token, through this client's transport (its TLS
    /// trust, proxies, retries and limits): for side services of the site
    /// such as GOCDB. `service` names the request in errors.
    pub async fn get_plain(&self, url: &Url, service: &str) -> Result<bytes::Bytes, Error> {
        Ok(self.get_plain_with_headers(url, service).await?.1)
    }

    /// [`OpenStack::get_plain`] with the answer's headers (e.g. `Date`, for
    /// `doctor`'s clock check against Keystone).
    pub async fn get_plain_with_headers(
        &self,
        url: &Url,
        service: &str,
    ) -> Result<(HeaderMap, bytes::Bytes), Error> {
        let req = Request {
            method: Method::GET,
            target: Target::new("GET", url).service(service),
            url: url.clone(),
            headers: HeaderMap::new(),
            body: None,
            replayable: true,
            scrub: &[],
        };
        let resp = self.inner.http.send(&req).await?;
        Ok((resp.headers, resp.body))
    }

    /// The projects the credential's user can scope to
    /// (`GET /v3/auth/projects`). For an application credential: its own
    /// project only.
    pub async fn projects(&self) -> Result<Vec<identity::Project>, Error> {
        if let Credential::ApplicationCredential { .. } = self.inner.access.credential {
            let s = self.session().await?;
            return Ok(s
                .project()
                .map(identity::Project::from_token)
                .into_iter()
                .collect());
        }
        let url = join(&self.inner.auth_url, "auth/projects");
        let target = Target::new("GET", &url).service("identity");
        let mut reauthenticated = false;
        let resp = loop {
            let token = self.inner.base_token().await?;
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            headers.insert("X-Auth-Token", secret_header(token.id.expose())?);
            let req = Request {
                method: Method::GET,
                target: target.clone(),
                url: url.clone(),
                headers,
                body: None,
                replayable: true,
                scrub: &[token.id.expose()],
            };
            match self.inner.http.send(&req).await {
                // Revoked by a credential change: once more with a new token.
                Err(Error::Unauthorized { .. } | Error::NotFound { .. }) if !reauthenticated => {
                    self.inner.invalidate(&Scope::Default).await;
                    reauthenticated = true;
                }
                r => break r?,
            }
        };
        let v: serde_json::Value = wire::json(&target, &resp.body)?;
        let items = wire::collection(&target, v, "projects")?;
        items.into_iter().map(|v| wire::typed(&target, v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>(_: &T) {}

    /// Clients, sessions and the futures of their calls can move across
    /// tasks (`tokio::spawn`).
    #[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
    fn thread_safety(os: OpenStack, s: Session) {
        send_sync(&os);
        send_sync(&s);
        fn send<T: Send>(_: T) {}
        send(os.session());
        send(os.projects());
        send(compute::servers(&s, &compute::ServerQuery::default()));
        send(s.paginate::<serde_json::Value>("compute", "x", "x", &[], None, None));
    }
}
