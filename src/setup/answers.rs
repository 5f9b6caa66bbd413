//! The answers of `appliance configure`: one struct per section of
//! questions, with a default for every question (from the configuration
//! already there, else the appliance's defaults), and the answers file
//! (`--answers FILE`, or our OpenStack user data) decoded onto them.
//!
//! The answers file has the same sections and keys as the questions (see
//! `src/setup/answers.example.yaml`, printed by `appliance configure --example`); every key is optional, and a key
//! that is absent keeps the current answer. Secrets may be in it (it is
//! the operator's own file, or the instance's user data): they are written
//! to the secrets file, never to `appliance.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use crate::config::decode::{Decode, Diag, MapReader, Unknown};
use crate::config::format::{self, Node};
use crate::config::sections::images::{ListSource, Visibility};
use crate::config::{
    Auth, AuthMethod, AuthType, Components, ConfigError, ConfigErrors, Loaded, Paths, Vo,
};
use crate::openstack::access::{Credential, DomainRef, Interface, ProjectRef};
use crate::secret::Secret;

/// The documented example answers file (`appliance configure --example`).
pub fn example() -> &'static str {
    include_str!("answers.example.yaml")
}

/// GOCDB's public API (the production default of `site.gocdb-url`).
pub const DEFAULT_GOCDB_URL: &str = crate::info::gocdb::DEFAULT_URL;
/// The production AMS.
pub const DEFAULT_AMS_HOST: &str = "msg.argo.grnet.gr";
/// The EGI registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.egi.eu";
/// Label of the `/image_data` file system the wizard makes.
pub const IMAGE_DATA_LABEL: &str = "image_data";

/// The sections of questions, in the order the wizard asks them; also the
/// top-level keys of the answers file and the values of `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum Section {
    /// GOCDB site name, endpoint URL and id.
    Site,
    /// Keystone URL, region, credential (tested live).
    Keystone,
    /// VO -> project mapping.
    Vos,
    /// Which flows run (before the sections that depend on them).
    Components,
    /// Host certificate and key.
    HostCertificate,
    /// IGTF CA directory and its CRLs.
    TrustAnchors,
    /// Where accounting records go (ARGO Messaging Service).
    Ams,
    /// Where the GLUE document goes.
    Info,
    /// Signed image lists and registries.
    Images,
    /// The image cache: a directory or a disk to format (after the images,
    /// so their declared sizes can be compared with the space).
    ImageData,
}

impl Section {
    /// Every section, in order.
    pub const ALL: [Section; 10] = [
        Section::Site,
        Section::Keystone,
        Section::Vos,
        Section::Components,
        Section::HostCertificate,
        Section::TrustAnchors,
        Section::Ams,
        Section::Info,
        Section::Images,
        Section::ImageData,
    ];

    /// Its key in the answers file.
    pub fn key(self) -> &'static str {
        match self {
            Section::Site => "site",
            Section::Keystone => "keystone",
            Section::Vos => "vos",
            Section::HostCertificate => "host-certificate",
            Section::TrustAnchors => "trust-anchors",
            Section::Components => "components",
            Section::Ams => "ams",
            Section::Info => "info",
            Section::ImageData => "image-data",
            Section::Images => "images",
        }
    }

    /// A title for the wizard and the summary.
    pub fn title(self) -> &'static str {
        match self {
            Section::Site => "Site (GOCDB)",
            Section::Keystone => "Keystone",
            Section::Vos => "VOs and their projects",
            Section::HostCertificate => "Host certificate",
            Section::TrustAnchors => "Trust anchors (IGTF CAs)",
            Section::Components => "Components",
            Section::Ams => "Accounting delivery (AMS)",
            Section::Info => "Information publishing",
            Section::ImageData => "Image cache (/image_data)",
            Section::Images => "Image sources",
        }
    }
}

/// Every answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// `site`.
    pub site: SiteAnswers,
    /// `keystone`.
    pub keystone: KeystoneAnswers,
    /// `vos`: VOs with their projects (and own credentials, kept as they are).
    pub vos: Vec<Vo>,
    /// Names of projects known by id (comments in `appliance.yaml`).
    pub project_names: BTreeMap<String, String>,
    /// Secrets of the VOs that have their own credential (kept as they are).
    pub vo_secrets: BTreeMap<String, Secret>,
    /// `host-certificate`.
    pub host_certificate: HostCertAnswers,
    /// `trust-anchors`.
    pub trust: TrustAnswers,
    /// `components`.
    pub components: Components,
    /// `ams`.
    pub ams: AmsAnswers,
    /// `info`.
    pub info: InfoAnswers,
    /// `image-data`.
    pub image_data: ImageDataAnswers,
    /// `images`.
    pub images: ImagesAnswers,
    /// Not asked: the secrets file.
    pub secrets_file: PathBuf,
    /// Not asked: spool and state (image-data, host-cert/key and ca-dir come
    /// from their sections).
    pub paths: Paths,
}

/// `site`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteAnswers {
    /// GOCDB site name.
    pub name: String,
    /// Keystone URL exactly as registered in GOCDB.
    pub endpoint: Option<Url>,
    /// GOCDB endpoint id (offered from GOCDB).
    pub endpoint_id: Option<String>,
    /// GOCDB's public API.
    pub gocdb_url: Url,
}

/// `keystone`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeystoneAnswers {
    /// The credential without its secret (`auth-url` inside).
    pub auth: Option<Auth>,
    /// Its secret.
    pub secret: Option<Secret>,
    /// Catalog region.
    pub region: Option<String>,
    /// Extra CA bundle for Keystone's TLS.
    pub ca_file: Option<PathBuf>,
    /// TLS verification off (loud).
    pub insecure: bool,
    /// Not asked: catalog interface.
    pub interface: Interface,
    /// Not asked: request timeout, seconds.
    pub timeout_seconds: u64,
    /// Not asked: retries.
    pub retries: u32,
}

/// A certificate or key: a file, or PEM text pasted (written to the
/// configured path).
#[derive(Debug, Clone, PartialEq)]
pub enum Material {
    /// Use this file.
    File(PathBuf),
    /// Write this PEM to the configured path.
    Pem(Secret),
}

impl Material {
    /// A path, or PEM text (anything starting with `-----BEGIN`).
    pub fn parse(s: &str) -> Material {
        let t = s.trim();
        if t.starts_with("-----BEGIN") {
            let mut pem = t.to_string();
            pem.push('\n');
            Material::Pem(Secret::new(pem))
        } else {
            Material::File(PathBuf::from(t))
        }
    }
}

/// `host-certificate`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCertAnswers {
    /// The certificate.
    pub certificate: Material,
    /// The key.
    pub key: Material,
    /// Where a pasted certificate is written (`paths.host-cert`).
    pub cert_path: PathBuf,
    /// Where a pasted key is written (`paths.host-key`, mode 0600).
    pub key_path: PathBuf,
}

impl HostCertAnswers {
    /// The file the configuration names for the certificate.
    pub fn cert_file(&self) -> &Path {
        match &self.certificate {
            Material::File(p) => p,
            Material::Pem(_) => &self.cert_path,
        }
    }
    /// The file the configuration names for the key.
    pub fn key_file(&self) -> &Path {
        match &self.key {
            Material::File(p) => p,
            Material::Pem(_) => &self.key_path,
        }
    }
}

/// `trust-anchors`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustAnswers {
    /// IGTF hashed CA directory.
    pub ca_dir: PathBuf,
    /// Run `crl refresh` now.
    pub refresh_crls: bool,
}

/// `ams`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmsAnswers {
    /// Broker host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The authn (authx509) port.
    pub authn_port: u16,
}

/// `info`.
#[derive(Debug, Clone, PartialEq)]
pub struct InfoAnswers {
    /// Publish the GLUE document to this file.
    pub publish_file: Option<PathBuf>,
    /// And/or to this Swift container of the site.
    pub swift_container: Option<String>,
}

/// `image-data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataAnswers {
    /// The directory (mount point when a device is given).
    pub directory: PathBuf,
    /// An unpartitioned, unmounted disk to make an ext4 file system on
    /// (label `image_data`) and mount there.
    pub device: Option<PathBuf>,
    /// Confirms that `device` may be formatted (everything on it is lost).
    pub format: bool,
}

/// `images`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImagesAnswers {
    /// Signed HEPiX image lists.
    pub lists: Vec<ListAnswers>,
    /// Harbor registries (the EGI registry).
    pub registries: Vec<RegistryAnswers>,
}

/// One signed image list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListAnswers {
    /// Subscription name.
    pub name: String,
    /// Where the list is.
    pub source: ListSource,
    /// AppDB token (secrets file `images.<name>.token`).
    pub token: Option<Secret>,
    /// The endorser DN the list must be signed by.
    pub endorser_dn: String,
    /// Its CA (filled from the verified signature when not given).
    pub endorser_ca: Option<String>,
    /// VOs whose projects get the images.
    pub vos: Vec<String>,
    /// Not asked: Glance visibility.
    pub visibility: Visibility,
    /// Not asked: only these identifiers.
    pub images: Vec<String>,
    /// Not asked: name prefix.
    pub prefix: String,
    /// Not asked: synchronised.
    pub enabled: bool,
}

/// One Harbor registry.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryAnswers {
    /// Subscription name.
    pub name: String,
    /// Harbor base URL.
    pub url: Url,
    /// Harbor projects.
    pub projects: Vec<String>,
    /// Robot account.
    pub robot: Option<String>,
    /// Its password (secrets file `images.<name>.password`).
    pub password: Option<Secret>,
    /// VOs whose projects get the images.
    pub vos: Vec<String>,
    /// Not asked: repository regex.
    pub repository: Option<String>,
    /// Not asked: tag regex.
    pub tag_pattern: Option<String>,
    /// Not asked: Glance visibility.
    pub visibility: Visibility,
    /// Not asked: name prefix.
    pub prefix: String,
    /// Not asked: synchronised.
    pub enabled: bool,
}

/// `root` joined with an absolute path (`/` keeps it).
pub fn under(root: &Path, path: &str) -> PathBuf {
    if root == Path::new("/") {
        PathBuf::from(path)
    } else {
        root.join(path.trim_start_matches('/'))
    }
}

/// Whether `s` looks like a Keystone id (32 hex digits).
pub fn is_keystone_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A project named in an answer: an id, or a name in `domain`.
pub fn project_ref(s: &str, domain: &DomainRef) -> ProjectRef {
    if is_keystone_id(s) {
        ProjectRef::Id(s.to_string())
    } else {
        ProjectRef::Name {
            name: s.to_string(),
            domain: domain.clone(),
        }
    }
}

/// How a project is shown in an answer.
pub fn project_text(p: &ProjectRef) -> String {
    match p {
        ProjectRef::Id(id) => id.clone(),
        ProjectRef::Name { name, .. } => name.clone(),
    }
}

fn default_domain() -> DomainRef {
    DomainRef::Name("Default".into())
}

impl Answers {
    /// The answers of a fresh appliance whose file system root is `root`
    /// (`/`, or a directory for tests and image builds).
    pub fn defaults(root: &Path) -> Answers {
        let d = Paths::default();
        let p = |x: &Path| under(root, &x.to_string_lossy());
        let paths = Paths {
            image_data: p(&d.image_data),
            spool: p(&d.spool),
            state: p(&d.state),
            host_cert: p(&d.host_cert),
            host_key: p(&d.host_key),
            ca_dir: p(&d.ca_dir),
        };
        Answers {
            site: SiteAnswers {
                name: String::new(),
                endpoint: None,
                endpoint_id: None,
                gocdb_url: Url::parse(DEFAULT_GOCDB_URL).expect("URL"),
            },
            keystone: KeystoneAnswers {
                auth: None,
                secret: None,
                region: Some("RegionOne".into()),
                ca_file: None,
                insecure: false,
                interface: Interface::Public,
                timeout_seconds: 60,
                retries: 4,
            },
            vos: Vec::new(),
            project_names: BTreeMap::new(),
            vo_secrets: BTreeMap::new(),
            host_certificate: HostCertAnswers {
                certificate: Material::File(paths.host_cert.clone()),
                key: Material::File(paths.host_key.clone()),
                cert_path: paths.host_cert.clone(),
                key_path: paths.host_key.clone(),
            },
            trust: TrustAnswers {
                ca_dir: paths.ca_dir.clone(),
                refresh_crls: false,
            },
            components: Components::default(),
            ams: AmsAnswers {
                host: DEFAULT_AMS_HOST.into(),
                port: 443,
                authn_port: 8443,
            },
            info: InfoAnswers {
                publish_file: Some(paths.state.join("info/cloud-info.json")),
                swift_container: None,
            },
            image_data: ImageDataAnswers {
                directory: paths.image_data.clone(),
                device: None,
                format: false,
            },
            images: ImagesAnswers::default(),
            secrets_file: under(root, crate::config::DEFAULT_SECRETS_FILE),
            paths,
        }
    }

    /// The current answers of a loaded configuration (re-running the
    /// wizard shows them as defaults). Secrets come from the secrets file.
    pub fn from_loaded(l: &Loaded, root: &Path) -> Answers {
        let c = &l.config;
        let mut a = Answers::defaults(root);
        a.site = SiteAnswers {
            name: c.site.gocdb.clone(),
            endpoint: Some(c.site.endpoint.clone()),
            endpoint_id: c.site.endpoint_id.clone(),
            gocdb_url: c.info.gocdb_url.clone(),
        };
        let os = &c.openstack;
        let secret = l
            .cloud_access()
            .ok()
            .and_then(|a| credential_secret(&a.credential));
        a.keystone = KeystoneAnswers {
            auth: Some(os.source.auth().clone()),
            secret,
            region: os.region.clone(),
            ca_file: os.tls.ca_file.clone(),
            insecure: os.tls.insecure,
            interface: os.interface,
            timeout_seconds: os.timeout.as_secs(),
            retries: os.retries,
        };
        a.vos = c.vos.clone();
        a.vo_secrets = c
            .vos
            .iter()
            .filter_map(|v| Some((v.name.clone(), Answers::vo_secret(l, v)?)))
            .collect();
        a.host_certificate = HostCertAnswers {
            certificate: Material::File(c.paths.host_cert.clone()),
            key: Material::File(c.paths.host_key.clone()),
            cert_path: c.paths.host_cert.clone(),
            key_path: c.paths.host_key.clone(),
        };
        a.trust = TrustAnswers {
            ca_dir: c.paths.ca_dir.clone(),
            refresh_crls: false,
        };
        a.components = c.components.clone();
        a.ams = AmsAnswers {
            host: c
                .ams
                .host
                .clone()
                .unwrap_or_else(|| DEFAULT_AMS_HOST.into()),
            port: c.ams.port,
            authn_port: c.ams.authn_port,
        };
        a.info = InfoAnswers {
            publish_file: c.info.publish.file.clone(),
            swift_container: c.info.publish.swift.as_ref().map(|s| s.container.clone()),
        };
        a.image_data = ImageDataAnswers {
            directory: c.paths.image_data.clone(),
            device: None,
            format: false,
        };
        a.images = ImagesAnswers {
            lists: c
                .images
                .subscriptions
                .iter()
                .map(|s| ListAnswers {
                    name: s.name.clone(),
                    source: s.source.clone(),
                    token: l.image_list_token(&s.name),
                    endorser_dn: s.endorser.dn.clone(),
                    endorser_ca: Some(s.endorser.ca.clone()).filter(|c| !c.is_empty()),
                    vos: s.vos.clone(),
                    visibility: s.visibility,
                    images: s.images.clone(),
                    prefix: s.prefix.clone(),
                    enabled: s.enabled,
                })
                .collect(),
            registries: c
                .images
                .harbor
                .iter()
                .map(|h| RegistryAnswers {
                    name: h.name.clone(),
                    url: h.registry.clone(),
                    projects: h.projects.clone(),
                    robot: h.robot.clone(),
                    password: l.image_source_password(&h.name),
                    vos: h.vos.clone(),
                    repository: h.repository.clone(),
                    tag_pattern: h.tag_pattern.clone(),
                    visibility: h.visibility,
                    prefix: h.prefix.clone(),
                    enabled: h.enabled,
                })
                .collect(),
        };
        a.secrets_file = c.secrets_file.clone();
        a.paths = c.paths.clone();
        a
    }

    /// The secret of VO `name`'s own credential, for the secrets file.
    pub fn vo_secret(l: &Loaded, vo: &Vo) -> Option<Secret> {
        vo.auth.as_ref()?;
        l.vo_access(vo)
            .ok()
            .and_then(|a| credential_secret(&a.credential))
    }

    /// Names of every VO answered.
    pub fn vo_names(&self) -> Vec<String> {
        self.vos.iter().map(|v| v.name.clone()).collect()
    }
}

fn credential_secret(c: &Credential) -> Option<Secret> {
    match c {
        Credential::Password { password, .. } => Some(password.clone()),
        Credential::ApplicationCredential { secret, .. } => Some(secret.clone()),
        Credential::Token { token, .. } => Some(token.clone()),
        Credential::OidcAccessToken { access_token, .. } => match access_token {
            crate::openstack::access::AccessToken::Value(s) => Some(s.clone()),
            _ => None,
        },
    }
}

/// Decode an answers file (`file` names it in errors) onto `answers`,
/// only the sections in `only` (all when empty). Every problem is
/// reported at once, as `FILE:LINE:COL: KEY: message`.
pub fn apply_file(
    answers: &mut Answers,
    file: &Path,
    text: &str,
    only: &[Section],
) -> Result<Vec<Section>, ConfigErrors> {
    let root = format::parse(text).map_err(|e| {
        ConfigErrors::one(ConfigError::at(
            file,
            Some(e.mark),
            "",
            format!("YAML syntax error: {}", e.message),
        ))
    })?;
    let mut d = Diag::new(file);
    let given = apply_node(answers, &root, &mut d, only);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    d.sort();
    d.drain_into(&mut errors, &mut warnings);
    if errors.is_empty() {
        Ok(given)
    } else {
        Err(ConfigErrors {
            errors,
            warnings: warnings.iter().map(ToString::to_string).collect(),
        })
    }
}

fn apply_node(a: &mut Answers, root: &Node, d: &mut Diag, only: &[Section]) -> Vec<Section> {
    let Some(mut m) = MapReader::new(root, "", d) else {
        return Vec::new();
    };
    let mut given = Vec::new();
    for s in Section::ALL {
        if !only.is_empty() && !only.contains(&s) {
            // Read (so it is not "unknown") but leave it alone.
            m.opt_with(s.key(), |_, _, _| Some(()));
            continue;
        }
        let applied = m.opt_with(s.key(), |n, path, d| {
            match s {
                Section::Site => site(a, n, path, d),
                Section::Keystone => keystone(a, n, path, d),
                Section::Vos => vos(a, n, path, d),
                Section::HostCertificate => host_cert(a, n, path, d),
                Section::TrustAnchors => trust(a, n, path, d),
                Section::Components => components(a, n, path, d),
                Section::Ams => ams(a, n, path, d),
                Section::Info => info(a, n, path, d),
                Section::ImageData => image_data(a, n, path, d),
                Section::Images => images(a, n, path, d),
            }
            Some(())
        });
        if applied.is_some() {
            given.push(s);
        }
    }
    m.finish(Unknown::Error);
    given
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn site(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    set(&mut a.site.name, m.opt("name"));
    if let Some(u) = m.opt::<Url>("endpoint") {
        a.site.endpoint = Some(u);
    }
    if let Some(id) = m.opt::<String>("endpoint-id") {
        a.site.endpoint_id = Some(id);
    }
    set(&mut a.site.gocdb_url, m.opt("gocdb-url"));
    m.finish(Unknown::Error);
}

fn keystone(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    let auth_url: Option<Url> = m.opt("auth-url");
    let auth_type: Option<AuthType> = m.opt("auth-type");
    let app_id: Option<String> = m.opt("application-credential-id");
    let app_secret: Option<Secret> = m.opt("application-credential-secret");
    let username: Option<String> = m.opt("username");
    let user_domain: Option<String> = m.opt("user-domain");
    let password: Option<Secret> = m.opt("password");
    let project: Option<String> = m.opt("project");
    let project_domain: Option<String> = m.opt("project-domain");
    set(&mut a.keystone.region, m.opt::<String>("region").map(Some));
    if let Some(f) = m.opt::<PathBuf>("ca-file") {
        a.keystone.ca_file = Some(f);
    }
    set(&mut a.keystone.insecure, m.opt("insecure"));
    m.finish(Unknown::Error);

    let current = a.keystone.auth.clone();
    let url = auth_url
        .or_else(|| current.as_ref().map(|c| c.auth_url.clone()))
        .or_else(|| a.site.endpoint.clone());
    let kind = auth_type
        .or_else(|| current.as_ref().map(|c| c.method.kind()))
        .unwrap_or(AuthType::ApplicationCredential);
    let Some(url) = url else {
        d.error_hint(
            path,
            "no Keystone URL",
            "give `keystone.auth-url` or `site.endpoint`",
        );
        return;
    };
    let new_secret;
    let method = match kind {
        AuthType::ApplicationCredential => {
            let id = app_id.or_else(|| match current.as_ref().map(|c| &c.method) {
                Some(AuthMethod::ApplicationCredential { id, .. }) => id.clone(),
                _ => None,
            });
            if id.is_none() {
                d.error(
                    &format!("{path}.application-credential-id"),
                    "an application credential needs its id",
                );
            }
            new_secret = app_secret;
            AuthMethod::ApplicationCredential {
                id,
                name: None,
                user: None,
            }
        }
        AuthType::Password => {
            let (cur_user, cur_udom, cur_project) = match current.as_ref().map(|c| &c.method) {
                Some(AuthMethod::Password {
                    username,
                    user_domain,
                    project,
                }) => (
                    Some(username.clone()),
                    Some(user_domain.clone()),
                    project.clone(),
                ),
                _ => (None, None, None),
            };
            let user = username.or(cur_user);
            if user.is_none() {
                d.error(
                    &format!("{path}.username"),
                    "password auth needs a username",
                );
            }
            let udom = user_domain
                .map(DomainRef::Name)
                .or(cur_udom)
                .unwrap_or_else(default_domain);
            let pdom = project_domain
                .map(DomainRef::Name)
                .unwrap_or_else(default_domain);
            let project = project.map(|p| project_ref(&p, &pdom)).or(cur_project);
            new_secret = password;
            AuthMethod::Password {
                username: user.unwrap_or_default(),
                user_domain: udom,
                project,
            }
        }
        other => {
            d.error_hint(
                &format!("{path}.auth-type"),
                format!(
                    "the wizard sets up `password` or `v3applicationcredential`, not `{}`",
                    other.name()
                ),
                "for OIDC or token credentials edit appliance.yaml (`appliance config example`)",
            );
            return;
        }
    };
    let same_kind = current.as_ref().map(|c| c.method.kind()) == Some(kind);
    match new_secret {
        Some(s) => a.keystone.secret = Some(s),
        // The old secret belongs to another kind of credential.
        None if !same_kind => a.keystone.secret = None,
        None => {}
    }
    a.keystone.auth = Some(Auth {
        auth_url: url,
        method,
    });
}

/// `vos`: a list of `{name, projects: [name or id, ...]}`.
fn vos(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    #[derive(Default)]
    struct RawVo {
        name: Option<String>,
        projects: Option<Vec<String>>,
    }
    impl Decode for RawVo {
        fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
            let mut m = MapReader::new(node, path, d)?;
            let v = RawVo {
                name: m.opt("name"),
                projects: m.opt("projects"),
            };
            m.finish(Unknown::Error);
            Some(v)
        }
    }
    let Some(list) = Vec::<RawVo>::decode(n, path, d) else {
        return;
    };
    let domain = match a.keystone.auth.as_ref().map(|x| &x.method) {
        Some(AuthMethod::Password {
            project: Some(ProjectRef::Name { domain, .. }),
            ..
        }) => domain.clone(),
        _ => default_domain(),
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(name) = d.require(v.name, &format!("{p}.name")) else {
            continue;
        };
        let projects: Vec<ProjectRef> = v
            .projects
            .unwrap_or_default()
            .iter()
            .map(|s| project_ref(s, &domain))
            .collect();
        if projects.is_empty() {
            d.error(&format!("{p}.projects"), "a VO needs at least one project");
        }
        // A VO that had its own credential keeps it.
        let auth = a
            .vos
            .iter()
            .find(|x| x.name == name)
            .and_then(|x| x.auth.clone());
        out.push(Vo {
            name,
            projects,
            auth,
        });
    }
    a.vos = out;
}

fn host_cert(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    if let Some(c) = m.opt::<String>("certificate") {
        a.host_certificate.certificate = Material::parse(&c);
    }
    if let Some(k) = m.opt::<Secret>("key") {
        a.host_certificate.key = Material::parse(k.expose());
    }
    m.finish(Unknown::Error);
}

fn trust(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    set(&mut a.trust.ca_dir, m.opt("ca-dir"));
    set(&mut a.trust.refresh_crls, m.opt("refresh-crls"));
    m.finish(Unknown::Error);
}

fn components(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    let c = &mut a.components;
    set(&mut c.accounting.enabled, m.opt("accounting"));
    set(&mut c.info.enabled, m.opt("info"));
    set(&mut c.images.enabled, m.opt("images"));
    set(&mut c.crl_refresh.enabled, m.opt("crl-refresh"));
    m.finish(Unknown::Error);
}

fn port(m: &mut MapReader<'_, '_>, key: &'static str) -> Option<u16> {
    m.opt::<u32>(key).and_then(|p| u16::try_from(p).ok())
}

fn ams(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    set(&mut a.ams.host, m.opt("host"));
    set(&mut a.ams.port, port(&mut m, "port"));
    set(&mut a.ams.authn_port, port(&mut m, "authn-port"));
    m.finish(Unknown::Error);
}

fn info(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    if let Some(f) = m.opt::<String>("publish-file") {
        a.info.publish_file = Some(f).filter(|f| !f.is_empty()).map(PathBuf::from);
    }
    if let Some(c) = m.opt::<String>("swift-container") {
        a.info.swift_container = Some(c).filter(|c| !c.is_empty());
    }
    m.finish(Unknown::Error);
}

fn image_data(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    set(&mut a.image_data.directory, m.opt("directory"));
    if let Some(dev) = m.opt::<PathBuf>("device") {
        a.image_data.device = Some(dev);
    }
    set(&mut a.image_data.format, m.opt("format"));
    m.finish(Unknown::Error);
    if a.image_data.device.is_some() && !a.image_data.format {
        d.error_hint(
            &format!("{path}.format"),
            "a device is formatted (everything on it is lost): confirm with `format: true`",
            "or leave `device` out to use the directory as it is",
        );
    }
}

fn images(a: &mut Answers, n: &Node, path: &str, d: &mut Diag) {
    #[derive(Default)]
    struct RawList {
        name: Option<String>,
        url: Option<String>,
        token: Option<Secret>,
        endorser_dn: Option<String>,
        endorser_ca: Option<String>,
        vos: Option<Vec<String>>,
    }
    impl Decode for RawList {
        fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
            let mut m = MapReader::new(node, path, d)?;
            let v = RawList {
                name: m.opt("name"),
                url: m.opt("url"),
                token: m.opt("token"),
                endorser_dn: m.opt("endorser-dn"),
                endorser_ca: m.opt("endorser-ca"),
                vos: m.opt("vos"),
            };
            m.finish(Unknown::Error);
            Some(v)
        }
    }
    #[derive(Default)]
    struct RawRegistry {
        name: Option<String>,
        url: Option<Url>,
        projects: Option<Vec<String>>,
        robot: Option<String>,
        password: Option<Secret>,
        vos: Option<Vec<String>>,
    }
    impl Decode for RawRegistry {
        fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
            let mut m = MapReader::new(node, path, d)?;
            let v = RawRegistry {
                name: m.opt("name"),
                url: m.opt("url"),
                projects: m.opt("projects"),
                robot: m.opt("robot"),
                password: m.opt("password"),
                vos: m.opt("vos"),
            };
            m.finish(Unknown::Error);
            Some(v)
        }
    }
    let Some(mut m) = MapReader::new(n, path, d) else {
        return;
    };
    let lists: Option<Vec<RawList>> = m.opt("lists");
    let registries: Option<Vec<RawRegistry>> = m.opt("registries");
    m.finish(Unknown::Error);
    let all_vos = a.vo_names();
    if let Some(lists) = lists {
        let old = std::mem::take(&mut a.images.lists);
        for (i, l) in lists.into_iter().enumerate() {
            let p = format!("{path}.lists[{i}]");
            let (Some(name), Some(url), Some(dn)) = (
                d.require(l.name, &format!("{p}.name")),
                d.require(l.url, &format!("{p}.url")),
                d.require(l.endorser_dn, &format!("{p}.endorser-dn")),
            ) else {
                continue;
            };
            let Some(source) = list_source(&url) else {
                d.error_hint(
                    &format!("{p}.url"),
                    format!("`{url}` is neither an http(s) URL nor an absolute file path"),
                    "e.g. https://vmcaster.appdb.egi.eu/store/vo/fedcloud.egi.eu/image.list",
                );
                continue;
            };
            let prev = old.iter().find(|x| x.name == name);
            a.images.lists.push(ListAnswers {
                token: l.token.or_else(|| prev.and_then(|x| x.token.clone())),
                endorser_ca: l.endorser_ca.or_else(|| {
                    prev.filter(|x| x.endorser_dn == dn)
                        .and_then(|x| x.endorser_ca.clone())
                }),
                vos: l.vos.unwrap_or_else(|| all_vos.clone()),
                visibility: prev.map_or(Visibility::Shared, |x| x.visibility),
                images: prev.map(|x| x.images.clone()).unwrap_or_default(),
                prefix: prev.map(|x| x.prefix.clone()).unwrap_or_default(),
                enabled: prev.is_none_or(|x| x.enabled),
                name,
                source,
                endorser_dn: dn,
            });
        }
    }
    if let Some(regs) = registries {
        let old = std::mem::take(&mut a.images.registries);
        for (i, r) in regs.into_iter().enumerate() {
            let p = format!("{path}.registries[{i}]");
            let Some(name) = d.require(r.name, &format!("{p}.name")) else {
                continue;
            };
            let prev = old.iter().find(|x| x.name == name);
            a.images.registries.push(RegistryAnswers {
                url: r
                    .url
                    .or_else(|| prev.map(|x| x.url.clone()))
                    .unwrap_or_else(|| Url::parse(DEFAULT_REGISTRY).expect("URL")),
                projects: r
                    .projects
                    .or_else(|| prev.map(|x| x.projects.clone()))
                    .unwrap_or_else(|| vec!["egi_vm_images".into()]),
                robot: r.robot.or_else(|| prev.and_then(|x| x.robot.clone())),
                password: r.password.or_else(|| prev.and_then(|x| x.password.clone())),
                vos: r.vos.unwrap_or_else(|| all_vos.clone()),
                repository: prev.and_then(|x| x.repository.clone()),
                tag_pattern: prev.and_then(|x| x.tag_pattern.clone()),
                visibility: prev.map_or(Visibility::Shared, |x| x.visibility),
                prefix: prev.map(|x| x.prefix.clone()).unwrap_or_default(),
                enabled: prev.is_none_or(|x| x.enabled),
                name,
            });
        }
    }
}

/// A list location as answered: an http(s) URL or an absolute file path.
pub fn list_source(s: &str) -> Option<ListSource> {
    let s = s.trim();
    if s.starts_with('/') {
        return Some(ListSource::File(PathBuf::from(s)));
    }
    let u = Url::parse(s).ok()?;
    match u.scheme() {
        "http" | "https" if u.host().is_some() => Some(ListSource::Url(u)),
        "file" => u.to_file_path().ok().map(ListSource::File),
        _ => None,
    }
}

/// How a list location is shown (the answer as typed).
pub fn list_source_text(s: &ListSource) -> String {
    match s {
        ListSource::Url(u) => u.to_string(),
        ListSource::File(p) => p.display().to_string(),
    }
}

/// The name of a visibility.
pub fn visibility_name(v: Visibility) -> &'static str {
    Visibility::CHOICES
        .iter()
        .find(|(_, x)| *x == v)
        .map_or("shared", |(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_file_sections_and_errors() {
        let mut a = Answers::defaults(Path::new("/r"));
        let text = "site:\n  name: S\n  endpoint: https://k.example.org:5000/v3\nkeystone:\n  auth-type: password\n  username: u\n  password: pw\n  project: p\nvos:\n  - name: vo.a\n    projects: [p, 0123456789abcdef0123456789abcdef]\n";
        let given = apply_file(&mut a, Path::new("a.yaml"), text, &[]).unwrap();
        assert_eq!(given, [Section::Site, Section::Keystone, Section::Vos]);
        assert_eq!(a.site.name, "S");
        let auth = a.keystone.auth.as_ref().unwrap();
        assert_eq!(auth.auth_url.as_str(), "https://k.example.org:5000/v3");
        assert_eq!(a.keystone.secret.as_ref().unwrap().expose(), "pw");
        assert_eq!(
            a.vos[0].projects[1],
            ProjectRef::Id("0123456789abcdef0123456789abcdef".into())
        );
        assert_eq!(a.paths.state, Path::new("/r/var/lib/fedcloud-appliance"));

        let bad = "site:\n  nmae: x\nkeystone:\n  auth-type: v3oidcaccesstoken\nimage-data:\n  device: /dev/vdb\nextra: 1\n";
        let e = apply_file(&mut a, Path::new("a.yaml"), bad, &[]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("a.yaml:2:3: site.nmae: unknown key"),
            "{text}"
        );
        assert!(text.contains("keystone.auth-type"), "{text}");
        assert!(text.contains("image-data.format"), "{text}");
        assert!(text.contains("a.yaml:7:1: extra: unknown key"), "{text}");
        assert!(!text.contains("pw"));
    }

    #[test]
    fn the_example_decodes() {
        let mut a = Answers::defaults(Path::new("/"));
        let given = apply_file(&mut a, Path::new("example"), example(), &[]).unwrap();
        assert_eq!(given.len(), Section::ALL.len(), "{given:?}");
        assert_eq!(a.site.name, "EXAMPLE-SITE");
        assert_eq!(a.images.lists.len(), 1);
        assert!(
            crate::setup::userdata::classify(example().as_bytes())
                != crate::setup::userdata::UserData::Empty
        );
    }

    #[test]
    fn only_applies_the_chosen_section() {
        let mut a = Answers::defaults(Path::new("/"));
        let text = "site:\n  name: S\nams:\n  host: 127.0.0.1\n  port: 8443\n";
        let given = apply_file(&mut a, Path::new("a.yaml"), text, &[Section::Ams]).unwrap();
        assert_eq!(given, [Section::Ams]);
        assert_eq!(a.site.name, "");
        assert_eq!(a.ams.port, 8443);
    }

    #[test]
    fn materials_and_sources() {
        assert_eq!(
            Material::parse(" /etc/x.pem "),
            Material::File("/etc/x.pem".into())
        );
        assert!(matches!(
            Material::parse("-----BEGIN CERTIFICATE-----\nx"),
            Material::Pem(_)
        ));
        assert_eq!(
            list_source("/srv/l"),
            Some(ListSource::File("/srv/l".into()))
        );
        assert!(matches!(
            list_source("https://a.b/l"),
            Some(ListSource::Url(_))
        ));
        assert_eq!(list_source("ftp://a/b"), None);
        assert_eq!(under(Path::new("/"), "/etc/x"), Path::new("/etc/x"));
        assert_eq!(under(Path::new("/t"), "/etc/x"), Path::new("/t/etc/x"));
    }
}
