//! What the OpenStack client needs to reach a cloud: the contract between
//! `config` (which builds it from the site configuration, clouds.yaml and the
//! secrets file) and the client layer (which uses it). Plain data, no I/O.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::secret::Secret;

/// Everything needed to authenticate against one Keystone and use its catalog.
#[derive(Debug, Clone)]
pub struct CloudAccess {
    /// Keystone v3 URL, e.g. `https://keystone.example.org:5000/v3`.
    pub auth_url: Url,
    /// How to authenticate.
    pub credential: Credential,
    /// Catalog region; `None` takes the only one (or errors when ambiguous).
    pub region: Option<String>,
    /// Catalog interface.
    pub interface: Interface,
    /// TLS trust.
    pub tls: Tls,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries on connection errors, 408, 429 and 5xx (0 = no retry).
    pub retries: u32,
}

/// Keystone v3 authentication methods EGI sites use.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `password`: user name + domain + password, scoped to `project`.
    Password {
        /// User name.
        username: String,
        /// The user's domain.
        user_domain: DomainRef,
        /// The password.
        password: Secret,
        /// Default scope.
        project: Option<ProjectRef>,
    },
    /// `v3applicationcredential`: by id, or by name plus the owning user.
    ApplicationCredential {
        /// Application credential id.
        id: Option<String>,
        /// Application credential name (needs `user`).
        name: Option<String>,
        /// Owning user, when identified by name.
        user: Option<(String, DomainRef)>,
        /// The secret.
        secret: Secret,
    },
    /// `v3oidcaccesstoken`: federation with an OIDC access token, then
    /// rescoping of the unscoped token to each project.
    OidcAccessToken {
        /// Keystone identity provider, e.g. `egi.eu`.
        identity_provider: String,
        /// Federation protocol, e.g. `openid`.
        protocol: String,
        /// The access token.
        access_token: AccessToken,
        /// Default scope.
        project: Option<ProjectRef>,
    },
    /// `token`: an existing Keystone token, rescoped to `project`.
    Token {
        /// The token.
        token: Secret,
        /// Default scope.
        project: Option<ProjectRef>,
    },
}

impl Credential {
    /// The keystoneauth plugin name of this credential.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Password { .. } => "password",
            Credential::ApplicationCredential { .. } => "v3applicationcredential",
            Credential::OidcAccessToken { .. } => "v3oidcaccesstoken",
            Credential::Token { .. } => "token",
        }
    }
}

/// Where an OIDC access token comes from.
#[derive(Debug, Clone)]
pub enum AccessToken {
    /// Given once.
    Value(Secret),
    /// Re-read from this file each time a new Keystone token is needed (a
    /// refresher such as oidc-agent or a timer keeps it fresh).
    File(PathBuf),
}

/// A project, by id or by name in a domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProjectRef {
    /// Project id.
    Id(String),
    /// Project name in a domain.
    Name {
        /// Project name.
        name: String,
        /// Its domain.
        domain: DomainRef,
    },
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Name { name, domain } => write!(f, "{name} (domain {domain})"),
        }
    }
}

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainRef {
    /// Domain id.
    Id(String),
    /// Domain name.
    Name(String),
}

impl std::fmt::Display for DomainRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainRef::Id(s) | DomainRef::Name(s) => f.write_str(s),
        }
    }
}

/// Catalog interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    /// `public` (the default).
    #[default]
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// The catalog's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// TLS trust: system roots plus an optional CA file and IGTF-style hashed CA
/// directory; `insecure` turns verification off (loudly).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Extra CA bundle (PEM).
    pub ca_file: Option<PathBuf>,
    /// Hashed CA directory (`<hash>.0` files), e.g. `/etc/grid-security/certificates`.
    pub ca_dir: Option<PathBuf>,
    /// Skip verification. Never the default.
    pub insecure: bool,
}
