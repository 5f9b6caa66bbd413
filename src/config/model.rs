//! The validated configuration: what the rest of the appliance gets. Every
//! value here has been checked (URLs parsed, paths absolute, exactly one
//! way to authenticate, projects named unambiguously) and defaults are
//! filled in. Secrets are not here; `Loaded` holds them and hands them out
//! only inside a `CloudAccess`.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::openstack::access::{DomainRef, Interface, ProjectRef, Tls};

/// The only schema version this release reads.
pub const SCHEMA_VERSION: u64 = 2;

/// Default secrets file.
pub const DEFAULT_SECRETS_FILE: &str = "/etc/fedcloud-appliance/secrets.yaml";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The site.
    pub site: Site,
    /// How to reach OpenStack.
    pub openstack: OpenStack,
    /// Where secrets are read from.
    pub secrets_file: PathBuf,
    /// VOs and their projects (from `vos` or the catch-all file).
    pub vos: Vec<Vo>,
    /// Local paths.
    pub paths: Paths,
    /// What runs, and when.
    pub components: Components,
    /// Accounting extraction.
    pub accounting: super::sections::accounting::Section,
    /// The ARGO Messaging Service.
    pub ams: super::sections::ams::Section,
    /// Information publishing.
    pub info: super::sections::info::Section,
    /// Image synchronisation.
    pub images: super::sections::images::Section,
}

/// The site as registered in GOCDB.
#[derive(Debug, Clone)]
pub struct Site {
    /// GOCDB site name.
    pub gocdb: String,
    /// Keystone URL exactly as registered in GOCDB (trailing `/` kept).
    pub endpoint: Url,
    /// GOCDB endpoint id, when given.
    pub endpoint_id: Option<String>,
    /// The catch-all site file the site and VOs came from, if any.
    pub catch_all: Option<CatchAll>,
}

/// What a fedcloud-catchall-operations `sites/*.yaml` file said beyond the
/// site and its VOs (kept for the components that care).
#[derive(Debug, Clone, Default)]
pub struct CatchAll {
    /// The file.
    pub file: PathBuf,
    /// `images.sync`.
    pub images_sync: bool,
    /// `images.formats`: image formats the site accepts.
    pub image_formats: Vec<String>,
    /// `accounting.enabled`.
    pub accounting_enabled: bool,
    /// `accounting.site_name`: site name to use in accounting instead.
    pub accounting_site_name: Option<String>,
}

/// How to reach OpenStack.
#[derive(Debug, Clone)]
pub struct OpenStack {
    /// Where the credential comes from.
    pub source: CredentialSource,
    /// Catalog region (`openstack.region`, else the catch-all `region`, else
    /// clouds.yaml `region_name`).
    pub region: Option<String>,
    /// Catalog interface.
    pub interface: Interface,
    /// TLS trust (clouds.yaml `cacert`/`verify` merged in).
    pub tls: Tls,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries on transient failures.
    pub retries: u32,
}

/// Where the site-wide credential is defined.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// `openstack.auth`; its secret is in the secrets file under `openstack`.
    Inline(Auth),
    /// A cloud of a clouds.yaml file; its secret is there (or, failing
    /// that, in the secrets file under `openstack`).
    Cloud {
        /// Cloud name.
        name: String,
        /// The clouds.yaml file used.
        file: PathBuf,
        /// The cloud's credential.
        auth: Auth,
    },
}

impl CredentialSource {
    /// The credential, wherever it is defined.
    pub fn auth(&self) -> &Auth {
        match self {
            CredentialSource::Inline(a) | CredentialSource::Cloud { auth: a, .. } => a,
        }
    }
}

/// The authentication methods (keystoneauth plugin names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `password`
    Password,
    /// `v3applicationcredential`
    ApplicationCredential,
    /// `v3oidcaccesstoken`
    OidcAccessToken,
    /// `token`
    Token,
}

impl AuthType {
    /// The names accepted in `appliance.yaml`.
    pub const CHOICES: &'static [(&'static str, AuthType)] = &[
        ("password", AuthType::Password),
        ("v3applicationcredential", AuthType::ApplicationCredential),
        ("v3oidcaccesstoken", AuthType::OidcAccessToken),
        ("token", AuthType::Token),
    ];

    /// keystoneauth's names, as used by clouds.yaml `auth_type` and the
    /// catch-all `auth` key (aliases included).
    pub fn from_plugin(name: &str) -> Option<AuthType> {
        match name {
            "password" | "v3password" => Some(AuthType::Password),
            "v3applicationcredential" | "applicationcredential" => {
                Some(AuthType::ApplicationCredential)
            }
            "v3oidcaccesstoken" => Some(AuthType::OidcAccessToken),
            "token" | "v3token" => Some(AuthType::Token),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::ApplicationCredential => "v3applicationcredential",
            AuthType::OidcAccessToken => "v3oidcaccesstoken",
            AuthType::Token => "token",
        }
    }

    /// The secret this method needs, as named in the secrets file.
    pub fn secret_key(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::ApplicationCredential => "application-credential-secret",
            AuthType::OidcAccessToken => "access-token",
            AuthType::Token => "token",
        }
    }
}

/// A credential without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Keystone v3 URL (defaults to the site endpoint).
    pub auth_url: Url,
    /// Method and its non-secret parameters.
    pub method: AuthMethod,
}

/// Method-specific, non-secret parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `password`.
    Password {
        /// User name.
        username: String,
        /// The user's domain.
        user_domain: DomainRef,
        /// Default scope.
        project: Option<ProjectRef>,
    },
    /// `v3applicationcredential`, by id or by name + user.
    ApplicationCredential {
        /// Credential id.
        id: Option<String>,
        /// Credential name (with `user`).
        name: Option<String>,
        /// Owning user, for a credential given by name.
        user: Option<(String, DomainRef)>,
    },
    /// `v3oidcaccesstoken`.
    OidcAccessToken {
        /// Keystone identity provider, e.g. `egi.eu`.
        identity_provider: String,
        /// Federation protocol, e.g. `openid`.
        protocol: String,
        /// Re-read the token from this file for every new Keystone token;
        /// when `None`, the token is in the secrets file.
        access_token_file: Option<PathBuf>,
        /// Default scope.
        project: Option<ProjectRef>,
    },
    /// `token`.
    Token {
        /// Default scope.
        project: Option<ProjectRef>,
    },
}

impl AuthMethod {
    /// The method's type.
    pub fn kind(&self) -> AuthType {
        match self {
            AuthMethod::Password { .. } => AuthType::Password,
            AuthMethod::ApplicationCredential { .. } => AuthType::ApplicationCredential,
            AuthMethod::OidcAccessToken { .. } => AuthType::OidcAccessToken,
            AuthMethod::Token { .. } => AuthType::Token,
        }
    }

    /// The secret the method needs from the secrets file (or clouds.yaml),
    /// if any: an OIDC token read from a file needs none.
    pub fn needed_secret(&self) -> Option<&'static str> {
        match self {
            AuthMethod::OidcAccessToken {
                access_token_file: Some(_),
                ..
            } => None,
            m => Some(m.kind().secret_key()),
        }
    }

    /// The default scope, for methods that have one.
    pub fn project(&self) -> Option<&ProjectRef> {
        match self {
            AuthMethod::Password { project, .. }
            | AuthMethod::OidcAccessToken { project, .. }
            | AuthMethod::Token { project } => project.as_ref(),
            AuthMethod::ApplicationCredential { .. } => None,
        }
    }
}

/// A VO and the projects that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vo {
    /// VO name, e.g. `vo.example.eu`.
    pub name: String,
    /// Its projects. Empty only for a catch-all VO without `project_id` on
    /// an application-credential site: the credential's own project then.
    pub projects: Vec<ProjectRef>,
    /// A credential of its own (secret under `vos.<name>` in the secrets
    /// file); `None` uses the site-wide one.
    pub auth: Option<Auth>,
}

/// Local paths (all absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Image cache (downloads, conversion).
    pub image_data: PathBuf,
    /// APEL outgoing spool.
    pub spool: PathBuf,
    /// State directory.
    pub state: PathBuf,
    /// Host certificate (PEM).
    pub host_cert: PathBuf,
    /// Host key (PEM).
    pub host_key: PathBuf,
    /// IGTF hashed CA directory.
    pub ca_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            image_data: "/image_data".into(),
            spool: "/var/spool/apel/outgoing/openstack".into(),
            state: "/var/lib/fedcloud-appliance".into(),
            host_cert: "/etc/grid-security/hostcert.pem".into(),
            host_key: "/etc/grid-security/hostkey.pem".into(),
            ca_dir: "/etc/grid-security/certificates".into(),
        }
    }
}

/// What runs, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    /// Accounting: extraction and delivery, each on its own schedule.
    pub accounting: AccountingComponent,
    /// Information publishing.
    pub info: Component,
    /// Image synchronisation.
    pub images: Component,
    /// CRL refresh of the IGTF CA directory.
    pub crl_refresh: Component,
}

/// Default schedule of `accounting extract` (cASO's cron: hourly).
pub const DEFAULT_EXTRACT_SCHEDULE: &str = "hourly";
/// Default schedule of `accounting send` (ssmsend's cron: every six hours).
pub const DEFAULT_SEND_SCHEDULE: &str = "*-*-* 00/6:30:00";
/// Default schedule of `info publish`.
pub const DEFAULT_INFO_SCHEDULE: &str = "*:0/30";
/// Default schedule of `images sync`.
pub const DEFAULT_IMAGES_SCHEDULE: &str = "*-*-* 00/4:00:00";
/// Default schedule of `crl refresh` (fetch-crl's cron: every six hours).
pub const DEFAULT_CRL_SCHEDULE: &str = "*-*-* 00/6:15:00";

impl Default for Components {
    fn default() -> Self {
        Components {
            accounting: AccountingComponent {
                enabled: true,
                extract_schedule: DEFAULT_EXTRACT_SCHEDULE.into(),
                send_schedule: DEFAULT_SEND_SCHEDULE.into(),
            },
            info: Component {
                enabled: true,
                schedule: DEFAULT_INFO_SCHEDULE.into(),
            },
            images: Component {
                enabled: true,
                schedule: DEFAULT_IMAGES_SCHEDULE.into(),
            },
            crl_refresh: Component {
                enabled: true,
                schedule: DEFAULT_CRL_SCHEDULE.into(),
            },
        }
    }
}

impl Components {
    /// Every scheduled job of the appliance, in a fixed order: the unit
    /// `appliance-<name>.service` + `.timer` runs it.
    pub fn jobs(&self) -> [Job; 5] {
        let a = &self.accounting;
        [
            Job {
                name: "accounting-extract",
                enabled: a.enabled,
                schedule: a.extract_schedule.clone(),
            },
            Job {
                name: "accounting-send",
                enabled: a.enabled,
                schedule: a.send_schedule.clone(),
            },
            Job {
                name: "info-publish",
                enabled: self.info.enabled,
                schedule: self.info.schedule.clone(),
            },
            Job {
                name: "images-sync",
                enabled: self.images.enabled,
                schedule: self.images.schedule.clone(),
            },
            Job {
                name: "crl-refresh",
                enabled: self.crl_refresh.enabled,
                schedule: self.crl_refresh.schedule.clone(),
            },
        ]
    }
}

/// One scheduled job: what `appliance-<name>.timer` runs and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `accounting-extract`, `accounting-send`, `info-publish`,
    /// `images-sync` or `crl-refresh`.
    pub name: &'static str,
    /// Whether its timer is enabled.
    pub enabled: bool,
    /// systemd `OnCalendar=` expression.
    pub schedule: String,
}

/// `components.accounting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingComponent {
    /// Whether both accounting timers run.
    pub enabled: bool,
    /// systemd `OnCalendar=` of `accounting extract`.
    pub extract_schedule: String,
    /// systemd `OnCalendar=` of `accounting send`.
    pub send_schedule: String,
}

/// One component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Whether its timer runs.
    pub enabled: bool,
    /// systemd `OnCalendar=` expression.
    pub schedule: String,
}
