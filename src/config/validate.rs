//! Raw (decoded) configuration → validated [`Config`], reporting every
//! problem in one pass. No I/O: the files that `appliance.yaml` refers to
//! (catch-all site file, secrets file, clouds.yaml) arrive already decoded.
//!
//! Rules, in the order they are checked:
//! - `schema-version` must be 1 (checked by the loader before anything
//!   else, since a newer file would otherwise drown in unknown keys);
//! - `site.catch-all` XOR (`site.gocdb` + `site.endpoint` + `vos`);
//! - exactly one of `openstack.auth` and `openstack.cloud` (with a catch-all
//!   file, `auth` may be left out: the file's `auth` plugin, `endpoint` and
//!   `protocol` then define an OIDC or application-credential login);
//! - per auth type, the keys it needs and no key it does not use; user and
//!   project domains by name or by id, not both; a project by id or by
//!   name + domain, not both;
//! - VOs: unique names, at least one project each, no project serving two
//!   VOs;
//! - every path absolute; `insecure: true` is a warning, loudly;
//! - secrets: each credential's secret must be in the secrets file (or
//!   clouds.yaml). A missing secrets file is only a warning here, so that
//!   `config check` passes on a machine that has no secrets yet; the
//!   commands that need the secret fail when they ask for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::catchall::RawCatchAll;
use super::clouds::RawCloud;
use super::decode::{item, join, Diag};
use super::error::ConfigError;
use super::model::{
    AccountingComponent, Auth, AuthMethod, AuthType, CatchAll, Component, Components, Config,
    CredentialSource, OpenStack, Paths, Site, Vo, DEFAULT_SECRETS_FILE,
};
use super::raw::{RawAuth, RawComponent, RawConfig, RawPaths, RawProject};
use super::secrets::{SecretSet, SecretsFile};
use crate::openstack::access::{DomainRef, ProjectRef, Tls};
use crate::secret::Secret;

/// The secrets file as found by the loader.
#[derive(Debug, Clone)]
pub enum SecretsState {
    /// It does not exist (yet).
    Missing,
    /// It exists but could not be used; the problem is already reported.
    Broken,
    /// Read and decoded.
    Present(SecretsFile),
    /// Not read: the caller needs no secret ([`super::load_settings`]).
    NotRead,
}

/// The chosen cloud of clouds.yaml.
#[derive(Debug)]
pub struct CloudInput {
    /// The file it came from.
    pub file: PathBuf,
    /// The decoded entry.
    pub raw: RawCloud,
    /// The file's permission bits.
    pub mode: Option<u32>,
}

/// Everything validation looks at.
#[derive(Debug)]
pub struct Input {
    /// `appliance.yaml`.
    pub raw: RawConfig,
    /// The catch-all site file, if one is named and could be read.
    pub catch_all: Option<RawCatchAll>,
    /// The cloud, if `openstack.cloud` is used and it could be found.
    pub cloud: Option<CloudInput>,
    /// The secrets file path (validated or default).
    pub secrets_file: PathBuf,
    /// And its state.
    pub secrets: SecretsState,
}

/// Problems, per file.
#[derive(Debug)]
pub struct Diags {
    /// `appliance.yaml`.
    pub config: Diag,
    /// The catch-all site file.
    pub catch_all: Option<Diag>,
    /// The secrets file.
    pub secrets: Diag,
    /// clouds.yaml.
    pub clouds: Option<Diag>,
}

/// The result: configuration plus the clouds.yaml secret, if any.
#[derive(Debug)]
pub struct Validated {
    /// The configuration.
    pub config: Config,
    /// The secret that came with the clouds.yaml entry.
    pub cloud_secret: Option<Secret>,
}

/// A path that must be absolute.
pub fn absolute(d: &mut Diag, path: &str, p: Option<PathBuf>) -> Option<PathBuf> {
    let p = p?;
    if p.is_absolute() {
        Some(p)
    } else {
        d.error_hint(
            path,
            format!("`{}` is not an absolute path", p.display()),
            "write the full path, starting with `/`",
        );
        d.fail(path);
        None
    }
}

/// Validate. `None` when something required is missing; every problem is
/// in `ds` either way.
pub fn validate(input: Input, ds: &mut Diags) -> Option<Validated> {
    let Input {
        mut raw,
        catch_all,
        cloud,
        secrets_file,
        secrets,
    } = input;
    let d = &mut ds.config;

    if raw.schema_version.is_none() && !d.failed("schema-version") {
        d.error_hint(
            "schema-version",
            "missing required key `schema-version`",
            "add `schema-version: 2` at the top of the file",
        );
    }

    // --- site (and the catch-all file) ---
    let site_raw = raw.site.take().unwrap_or_default();
    let catch_all_file = absolute(d, "site.catch-all", site_raw.catch_all.clone());
    let uses_catch_all = site_raw.catch_all.is_some();
    if !d.present("site") {
        d.missing("site");
    }
    let mut site_gocdb = None;
    let mut site_endpoint = None;
    if uses_catch_all {
        for key in ["site.gocdb", "site.endpoint", "vos"] {
            if d.present(key) {
                d.error_hint(
                    key,
                    format!("`{key}` cannot be combined with `site.catch-all`"),
                    "the catch-all file gives the site's GOCDB name, endpoint and VOs: remove one or the other",
                );
            }
        }
    } else if d.present("site") {
        site_gocdb = d.require(site_raw.gocdb.clone(), "site.gocdb");
        site_endpoint = d.require(site_raw.endpoint.clone(), "site.endpoint");
    }

    let mut ca_info = None;
    let mut ca_defaults = CatchAllDefaults::default();
    if let (Some(ca), Some(file), Some(cd)) = (&catch_all, &catch_all_file, ds.catch_all.as_mut()) {
        site_gocdb = cd.require(ca.gocdb.clone(), "gocdb");
        site_endpoint = cd.require(ca.endpoint.clone(), "endpoint");
        ca_defaults = catch_all_defaults(ca, cd);
        let images = ca.images.as_ref();
        let accounting = ca.accounting.as_ref();
        ca_info = Some(CatchAll {
            file: file.clone(),
            images_sync: images.and_then(|i| i.sync).unwrap_or(false),
            image_formats: images.and_then(|i| i.formats.clone()).unwrap_or_default(),
            accounting_enabled: accounting.and_then(|a| a.enabled).unwrap_or(false),
            accounting_site_name: accounting.and_then(|a| a.site_name.clone()),
        });
    }
    let endpoint_known = site_endpoint.is_some();

    // --- openstack ---
    let os = raw.openstack.take().unwrap_or_default();
    let d = &mut ds.config;
    if d.present("openstack.clouds-file") && os.cloud.is_none() && !d.failed("openstack.cloud") {
        d.error_hint(
            "openstack.clouds-file",
            "`clouds-file` is only used with `cloud`",
            "add `cloud: <name>` or remove `clouds-file`",
        );
    }
    let global_defaults = AuthDefaults {
        kind: ca_defaults
            .kind
            .or(uses_catch_all.then_some(AuthType::OidcAccessToken)),
        auth_url: site_endpoint.clone(),
        auth_url_reported: !endpoint_known,
        identity_provider: uses_catch_all.then(|| "egi.eu".to_string()),
        protocol: ca_defaults
            .protocol
            .clone()
            .unwrap_or_else(|| "openid".into()),
    };
    let mut cloud_secret = None;
    let source = match (&os.auth, &os.cloud) {
        (Some(_), Some(_)) => {
            d.error_hint(
                "openstack.cloud",
                "`openstack.auth` and `openstack.cloud` cannot both be given",
                "keep `auth` (its secret in secrets-file) or `cloud` (credentials in clouds.yaml), not both",
            );
            None
        }
        (Some(a), None) => {
            let mut cx = AuthCx::appliance(d, "openstack.auth");
            validate_auth(a, &global_defaults, &mut cx).map(CredentialSource::Inline)
        }
        (None, Some(name)) => match (cloud.as_ref(), ds.clouds.as_mut()) {
            (Some(c), Some(cd)) => {
                let (auth, secret) = validate_cloud(c, &global_defaults, cd, endpoint_known);
                cloud_secret = secret;
                auth.map(|auth| CredentialSource::Cloud {
                    name: name.clone(),
                    file: c.file.clone(),
                    auth,
                })
            }
            // Not found or unreadable: already reported.
            _ => None,
        },
        (None, None) if uses_catch_all => {
            let mut cx = AuthCx::appliance(d, "openstack.auth");
            validate_auth(&RawAuth::default(), &global_defaults, &mut cx)
                .map(CredentialSource::Inline)
        }
        (None, None) if d.failed("openstack.auth") || d.failed("openstack.cloud") => None,
        (None, None) => {
            let path = if d.present("openstack") {
                "openstack.auth"
            } else {
                "openstack"
            };
            d.error_hint(
                path,
                "missing `openstack.auth` or `openstack.cloud`",
                "give the Keystone credential inline (`auth`) or name a cloud of clouds.yaml (`cloud`); see `appliance config example`",
            );
            None
        }
    };
    let d = &mut ds.config;
    let cloud_ref = cloud.as_ref().map(|c| &c.raw);
    let region = os
        .region
        .clone()
        .or(ca_defaults.region.clone())
        .or(cloud_ref.and_then(|c| c.region_name.clone()));
    let interface = os
        .interface
        .or(cloud_ref.and_then(|c| c.interface))
        .unwrap_or_default();
    let ca_file = absolute(d, "openstack.ca-file", os.ca_file.clone());
    let ca_dir = absolute(d, "openstack.ca-dir", os.ca_dir.clone());
    let mut insecure = os.insecure.unwrap_or(false);
    if insecure {
        d.warn(
            "openstack.insecure",
            "TLS certificate verification is OFF for every OpenStack request: anyone on the network path can pose as Keystone and take the credentials",
            Some("set `insecure: false` and trust the site's CA with `ca-file` or `ca-dir`".into()),
        );
    }
    let mut tls_ca_file = ca_file;
    if let (Some(c), Some(cd)) = (cloud.as_ref(), ds.clouds.as_mut()) {
        let cacert = absolute(cd, &join(&c.raw.path, "cacert"), c.raw.cacert.clone());
        if tls_ca_file.is_none() {
            tls_ca_file = cacert;
        }
        if c.raw.verify == Some(false) && !insecure {
            insecure = true;
            cd.warn(
                &join(&c.raw.path, "verify"),
                "TLS certificate verification is OFF for every OpenStack request: anyone on the network path can pose as Keystone and take the credentials",
                Some("remove `verify: false` and trust the site's CA with `cacert`".into()),
            );
        }
    }
    let d = &mut ds.config;
    let timeout_seconds = os.timeout_seconds.unwrap_or(60);
    if timeout_seconds == 0 || timeout_seconds > 3600 {
        d.error(
            "openstack.timeout-seconds",
            format!("{timeout_seconds} is out of range (1 to 3600 seconds)"),
        );
    }
    let retries = os.retries.unwrap_or(4);
    if retries > 100 {
        d.error(
            "openstack.retries",
            format!("{retries} is out of range (0 to 100)"),
        );
    }

    // --- VOs ---
    let global_auth = source.as_ref().map(CredentialSource::auth);
    let vos = if uses_catch_all {
        match (&catch_all, ds.catch_all.as_mut()) {
            (Some(ca), Some(cd)) => catch_all_vos(ca, cd, global_auth),
            _ => None,
        }
    } else {
        config_vos(&raw, d, global_auth, endpoint_known)
    };

    // --- secrets ---
    check_secrets(
        source.as_ref(),
        vos.as_deref(),
        cloud_secret.is_some(),
        &secrets_file,
        &secrets,
        ds,
    );

    // --- paths, components ---
    let d = &mut ds.config;
    let secrets_file_ok = absolute(d, "secrets-file", raw.secrets_file.clone())
        .or_else(|| (!d.failed("secrets-file")).then(|| PathBuf::from(DEFAULT_SECRETS_FILE)));
    let paths = validate_paths(raw.paths.take().unwrap_or_default(), d);
    let components = validate_components(raw.components.take().unwrap_or_default(), d);
    let accounting = super::sections::accounting::validate(raw.accounting.take(), d);
    let ams = super::sections::ams::validate(raw.ams.take(), d);
    let info = super::sections::info::validate(raw.info.take(), d);
    let images = super::sections::images::validate(raw.images.take(), d);

    let site = Site {
        gocdb: site_gocdb?,
        endpoint: site_endpoint?,
        endpoint_id: site_raw.endpoint_id,
        catch_all: ca_info,
    };
    let openstack = OpenStack {
        source: source?,
        region,
        interface,
        tls: Tls {
            ca_file: tls_ca_file,
            ca_dir,
            insecure,
        },
        timeout: Duration::from_secs(timeout_seconds),
        retries,
    };
    Some(Validated {
        config: Config {
            site,
            openstack,
            secrets_file: secrets_file_ok?,
            vos: vos?,
            paths: paths?,
            components,
            accounting,
            ams,
            info,
            images,
        },
        cloud_secret,
    })
}

/// What a catch-all file contributes to the credential.
#[derive(Debug, Default)]
struct CatchAllDefaults {
    kind: Option<AuthType>,
    protocol: Option<String>,
    region: Option<String>,
}

fn catch_all_defaults(ca: &RawCatchAll, cd: &mut Diag) -> CatchAllDefaults {
    let kind = ca.auth.as_deref().and_then(|name| {
        let kind = AuthType::from_plugin(name);
        if kind.is_none() {
            let names: Vec<&str> = AuthType::CHOICES.iter().map(|(n, _)| *n).collect();
            cd.error_hint(
                "auth",
                format!("unsupported authentication plugin `{name}`"),
                format!("the appliance supports: {}", names.join(", ")),
            );
        }
        kind
    });
    CatchAllDefaults {
        kind,
        protocol: ca.protocol.clone(),
        region: ca.region.clone(),
    }
}

/// Defaults for an auth block.
#[derive(Debug, Clone)]
struct AuthDefaults {
    kind: Option<AuthType>,
    auth_url: Option<Url>,
    /// A missing `auth_url` default has been reported already (as a bad or
    /// missing site endpoint).
    auth_url_reported: bool,
    identity_provider: Option<String>,
    protocol: String,
}

/// Where an auth block is and how its keys are spelled.
struct AuthCx<'a> {
    d: &'a mut Diag,
    path: String,
    type_path: String,
    snake: bool,
}

impl<'a> AuthCx<'a> {
    fn appliance(d: &'a mut Diag, path: &str) -> Self {
        AuthCx {
            d,
            path: path.to_string(),
            type_path: join(path, "type"),
            snake: false,
        }
    }

    /// A key's name as written in this file.
    fn name(&self, key: &str) -> String {
        if self.snake {
            key.replace('-', "_")
        } else {
            key.to_string()
        }
    }

    /// A key's path.
    fn key(&self, key: &str) -> String {
        join(&self.path, &self.name(key))
    }

    fn error(&mut self, key: &str, message: String, hint: Option<String>) {
        let p = self.key(key);
        let mut e = self.d.at(&p, message);
        e.hint = hint;
        self.d.push(e);
        self.d.fail(&p);
    }

    fn missing(&mut self, key: &str) {
        let p = self.key(key);
        self.d.missing(&p);
    }

    /// Exactly-one-of for a name/id pair: `Ok(None)` when neither is given.
    fn one_of(
        &mut self,
        name: &Option<String>,
        id: &Option<String>,
        keys: (&str, &str),
    ) -> Result<Option<DomainRef>, ()> {
        match (name, id) {
            (Some(_), Some(_)) => {
                let msg = format!(
                    "give `{}` or `{}`, not both",
                    self.name(keys.0),
                    self.name(keys.1)
                );
                self.error(keys.1, msg, None);
                Err(())
            }
            (Some(n), None) => Ok(Some(DomainRef::Name(n.clone()))),
            (None, Some(i)) => Ok(Some(DomainRef::Id(i.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// A user domain that must be given.
    fn user_domain(&mut self, raw: &RawAuth) -> Option<DomainRef> {
        match self.one_of(
            &raw.user_domain_name,
            &raw.user_domain_id,
            ("user-domain-name", "user-domain-id"),
        ) {
            Ok(Some(d)) => Some(d),
            Ok(None) => {
                let msg = format!(
                    "missing `{}` or `{}`",
                    self.name("user-domain-name"),
                    self.name("user-domain-id")
                );
                let hint = format!(
                    "the user's domain is needed, e.g. `{}: Default`",
                    self.name("user-domain-name")
                );
                self.error("user-domain-name", msg, Some(hint));
                None
            }
            Err(()) => None,
        }
    }

    /// The default scope: `Ok(None)` when not given, `Err` when wrong.
    fn project(&mut self, raw: &RawAuth) -> Result<Option<ProjectRef>, ()> {
        let domain = self.one_of(
            &raw.project_domain_name,
            &raw.project_domain_id,
            ("project-domain-name", "project-domain-id"),
        )?;
        let domain_key = if raw.project_domain_name.is_some() {
            "project-domain-name"
        } else {
            "project-domain-id"
        };
        match (&raw.project_id, &raw.project_name) {
            (Some(_), Some(_)) => {
                let msg = format!(
                    "give `{}` or `{}`, not both",
                    self.name("project-id"),
                    self.name("project-name")
                );
                self.error("project-name", msg, None);
                Err(())
            }
            (Some(id), None) => {
                if domain.is_some() {
                    let msg = format!(
                        "`{}` is only used with `{}`",
                        self.name(domain_key),
                        self.name("project-name")
                    );
                    self.error(
                        domain_key,
                        msg,
                        Some("remove it: a project id is unique across domains".into()),
                    );
                    return Err(());
                }
                Ok(Some(ProjectRef::Id(id.clone())))
            }
            (None, Some(name)) => match domain {
                Some(domain) => Ok(Some(ProjectRef::Name {
                    name: name.clone(),
                    domain,
                })),
                None => {
                    let msg = format!(
                        "missing `{}` or `{}` for project `{name}`",
                        self.name("project-domain-name"),
                        self.name("project-domain-id")
                    );
                    let hint = format!(
                        "a project name needs its domain, or use `{}` instead",
                        self.name("project-id")
                    );
                    self.error("project-name", msg, Some(hint));
                    Err(())
                }
            },
            (None, None) => {
                if domain.is_some() {
                    let msg = format!(
                        "`{}` is only used with `{}`",
                        self.name(domain_key),
                        self.name("project-name")
                    );
                    self.error(domain_key, msg, None);
                    return Err(());
                }
                Ok(None)
            }
        }
    }
}

/// Keys each auth type uses (besides `type` and `auth-url`).
fn keys_for(kind: AuthType) -> &'static [&'static str] {
    const PROJECT: [&str; 4] = [
        "project-id",
        "project-name",
        "project-domain-name",
        "project-domain-id",
    ];
    match kind {
        AuthType::Password => &[
            "username",
            "user-id",
            "user-domain-name",
            "user-domain-id",
            PROJECT[0],
            PROJECT[1],
            PROJECT[2],
            PROJECT[3],
        ],
        AuthType::ApplicationCredential => &[
            "application-credential-id",
            "application-credential-name",
            "username",
            "user-id",
            "user-domain-name",
            "user-domain-id",
        ],
        AuthType::OidcAccessToken => &[
            "identity-provider",
            "protocol",
            "access-token-file",
            PROJECT[0],
            PROJECT[1],
            PROJECT[2],
            PROJECT[3],
        ],
        AuthType::Token => &PROJECT,
    }
}

fn validate_auth(raw: &RawAuth, defaults: &AuthDefaults, cx: &mut AuthCx<'_>) -> Option<Auth> {
    let kind = raw.kind.or(defaults.kind);
    let auth_url = raw.auth_url.clone().or(defaults.auth_url.clone());
    if auth_url.is_none() && !defaults.auth_url_reported {
        cx.missing("auth-url");
    }
    let Some(kind) = kind else {
        let p = cx.type_path.clone();
        if !cx.d.failed(&p) {
            let names: Vec<&str> = AuthType::CHOICES.iter().map(|(n, _)| *n).collect();
            let mut e = cx.d.at(&p, "missing required key `type`");
            e.hint = Some(format!("one of: {}", names.join(", ")));
            cx.d.push(e);
        }
        return None;
    };
    let mut ok = true;
    let allowed = keys_for(kind);
    for key in raw.set_keys() {
        if key == "type" || key == "auth-url" || allowed.contains(&key) {
            continue;
        }
        let msg = format!(
            "`{}` is not used by auth type `{}`",
            cx.name(key),
            kind.name()
        );
        cx.error(key, msg, Some("remove it, or change the auth type".into()));
        ok = false;
    }
    if raw.user_id.is_some() && allowed.contains(&"user-id") {
        let msg = format!(
            "`{}` is not supported yet: the OpenStack client logs users in by name and domain",
            cx.name("user-id")
        );
        let hint = format!(
            "use `{}` with `{}`",
            cx.name("username"),
            cx.name("user-domain-name")
        );
        cx.error("user-id", msg, Some(hint));
        ok = false;
    }
    let method = match kind {
        AuthType::Password => {
            let username = raw.username.clone();
            if username.is_none() {
                cx.missing("username");
            }
            let user_domain = cx.user_domain(raw);
            let project = cx.project(raw);
            AuthMethod::Password {
                username: username?,
                user_domain: user_domain?,
                project: project.ok()?,
            }
        }
        AuthType::ApplicationCredential => {
            let (id, name) = (
                &raw.application_credential_id,
                &raw.application_credential_name,
            );
            match (id, name) {
                (Some(_), Some(_)) => {
                    let msg = format!(
                        "give `{}` or `{}`, not both",
                        cx.name("application-credential-id"),
                        cx.name("application-credential-name")
                    );
                    cx.error("application-credential-name", msg, None);
                    return None;
                }
                (None, None) => {
                    let msg = format!(
                        "missing `{}` (or `{}` with `{}`)",
                        cx.name("application-credential-id"),
                        cx.name("application-credential-name"),
                        cx.name("username")
                    );
                    cx.error("application-credential-id", msg, None);
                    return None;
                }
                (Some(id), None) => {
                    for key in ["username", "user-domain-name", "user-domain-id"] {
                        let set = match key {
                            "username" => raw.username.is_some(),
                            "user-domain-name" => raw.user_domain_name.is_some(),
                            _ => raw.user_domain_id.is_some(),
                        };
                        if set {
                            let p = cx.key(key);
                            let msg = format!(
                                "`{}` is only used with `{}`; ignored",
                                cx.name(key),
                                cx.name("application-credential-name")
                            );
                            cx.d.warn(&p, msg, None);
                        }
                    }
                    AuthMethod::ApplicationCredential {
                        id: Some(id.clone()),
                        name: None,
                        user: None,
                    }
                }
                (None, Some(name)) => {
                    if raw.username.is_none() {
                        let msg = format!(
                            "missing `{}`: an application credential given by name needs its user",
                            cx.name("username")
                        );
                        cx.error("username", msg, None);
                    }
                    let user_domain = cx.user_domain(raw);
                    AuthMethod::ApplicationCredential {
                        id: None,
                        name: Some(name.clone()),
                        user: Some((raw.username.clone()?, user_domain?)),
                    }
                }
            }
        }
        AuthType::OidcAccessToken => {
            let identity_provider = raw
                .identity_provider
                .clone()
                .or(defaults.identity_provider.clone());
            if identity_provider.is_none() {
                let p = cx.key("identity-provider");
                cx.d.missing(&p);
                if let Some(e) = cx.d.errors.last_mut() {
                    e.hint = Some("EGI Check-in is registered in Keystone as `egi.eu`".into());
                }
            }
            let file_path = cx.key("access-token-file");
            let access_token_file = absolute(cx.d, &file_path, raw.access_token_file.clone());
            let file_ok = raw.access_token_file.is_none() || access_token_file.is_some();
            let project = cx.project(raw);
            if !file_ok {
                return None;
            }
            AuthMethod::OidcAccessToken {
                identity_provider: identity_provider?,
                protocol: raw
                    .protocol
                    .clone()
                    .unwrap_or_else(|| defaults.protocol.clone()),
                access_token_file,
                project: project.ok()?,
            }
        }
        AuthType::Token => AuthMethod::Token {
            project: cx.project(raw).ok()?,
        },
    };
    if !ok {
        return None;
    }
    Some(Auth {
        auth_url: auth_url?,
        method,
    })
}

/// The clouds.yaml entry as a credential, plus its secret.
fn validate_cloud(
    c: &CloudInput,
    global: &AuthDefaults,
    cd: &mut Diag,
    endpoint_known: bool,
) -> (Option<Auth>, Option<Secret>) {
    let raw = &c.raw;
    let type_path = join(&raw.path, "auth_type");
    let kind = match raw.auth_type.as_deref() {
        // openstacksdk's default.
        None => Some(AuthType::Password),
        Some(name) => {
            let kind = AuthType::from_plugin(name);
            if kind.is_none() && !cd.failed(&type_path) {
                let names: Vec<&str> = AuthType::CHOICES.iter().map(|(n, _)| *n).collect();
                cd.error_hint(
                    &type_path,
                    format!("unsupported auth type `{name}`"),
                    format!(
                        "the appliance supports: {} (and the aliases v3password, v3token)",
                        names.join(", ")
                    ),
                );
            }
            kind
        }
    };
    let a = &raw.auth;
    let mut fields = a.fields.clone();
    // openstacksdk: `domain_name`/`domain_id` stand for both user and
    // project domain where those are not given.
    let has_user = fields.username.is_some();
    if has_user && fields.user_domain_name.is_none() && fields.user_domain_id.is_none() {
        fields.user_domain_name.clone_from(&a.domain_name);
        fields.user_domain_id.clone_from(&a.domain_id);
    }
    if fields.project_name.is_some()
        && fields.project_domain_name.is_none()
        && fields.project_domain_id.is_none()
    {
        fields.project_domain_name.clone_from(&a.domain_name);
        fields.project_domain_id.clone_from(&a.domain_id);
    }
    fields.kind = kind;
    let defaults = AuthDefaults {
        kind: None,
        auth_url: global.auth_url.clone(),
        auth_url_reported: !endpoint_known,
        identity_provider: global.identity_provider.clone(),
        protocol: global.protocol.clone(),
    };
    let auth_path = join(&raw.path, "auth");
    let mut cx = AuthCx {
        d: cd,
        path: auth_path,
        type_path,
        snake: true,
    };
    if kind.is_none() {
        return (None, None);
    }
    let auth = validate_auth(&fields, &defaults, &mut cx);
    let secret = match kind {
        Some(AuthType::Password) => a.password.clone(),
        Some(AuthType::ApplicationCredential) => a.application_credential_secret.clone(),
        Some(AuthType::OidcAccessToken) => a.access_token.clone(),
        Some(AuthType::Token) => a.token.clone(),
        None => None,
    };
    if a.has_secret() {
        if let Some(what) = c.mode.and_then(super::files::loose) {
            let mode = c.mode.unwrap_or_default();
            let e = ConfigError::file(
                c.file.clone(),
                format!("{what} clouds.yaml holds a secret (mode {mode:04o})"),
            )
            .hint(format!("run `chmod 600 {}`", c.file.display()));
            cd.warnings.push(e);
        }
    }
    (auth, secret)
}

fn project_of(raw: &RawProject, path: &str, d: &mut Diag) -> Option<ProjectRef> {
    let domain = match (&raw.domain_name, &raw.domain_id) {
        (Some(_), Some(_)) => {
            d.error(
                &join(path, "domain-id"),
                "give `domain-name` or `domain-id`, not both",
            );
            return None;
        }
        (Some(n), None) => Some(DomainRef::Name(n.clone())),
        (None, Some(i)) => Some(DomainRef::Id(i.clone())),
        (None, None) => None,
    };
    match (&raw.id, &raw.name) {
        (Some(_), Some(_)) => {
            d.error_hint(
                &join(path, "name"),
                "give `id` or `name`, not both",
                "a project is named by its id, or by name and domain",
            );
            None
        }
        (Some(id), None) => {
            if domain.is_some() {
                let key = if raw.domain_name.is_some() {
                    "domain-name"
                } else {
                    "domain-id"
                };
                d.error_hint(
                    &join(path, key),
                    format!("`{key}` is only used with `name`"),
                    "remove it: a project id is unique across domains",
                );
                return None;
            }
            Some(ProjectRef::Id(id.clone()))
        }
        (None, Some(name)) => match domain {
            Some(domain) => Some(ProjectRef::Name {
                name: name.clone(),
                domain,
            }),
            None => {
                d.error_hint(
                    &join(path, "name"),
                    format!("missing `domain-name` or `domain-id` for project `{name}`"),
                    "a project name needs its domain, or use `id` instead",
                );
                None
            }
        },
        (None, None) => {
            if !d.failed(path) {
                d.error_hint(path, "missing `id` or `name`", "e.g. `- id: <project id>`");
            }
            None
        }
    }
}

/// Tracks VO names and project ownership across a VO list.
#[derive(Default)]
struct Seen {
    vos: HashMap<String, usize>,
    projects: HashMap<ProjectRef, (String, usize)>,
}

impl Seen {
    fn vo(&mut self, name: &str, path: &str, d: &mut Diag) -> bool {
        let line = d.mark(path).map_or(0, |m| m.line);
        if let Some(first) = self.vos.get(name) {
            d.error_hint(
                path,
                format!("duplicate VO `{name}` (first given on line {first})"),
                "list each VO once, with all of its projects",
            );
            return false;
        }
        self.vos.insert(name.to_string(), line);
        true
    }

    fn project(&mut self, p: &ProjectRef, vo: &str, path: &str, d: &mut Diag) {
        let line = d.mark(path).map_or(0, |m| m.line);
        match self.projects.get(p) {
            Some((other, first)) if other != vo => d.error_hint(
                path,
                format!("project {p} already serves VO `{other}` (line {first})"),
                "a project serves one VO: accounting and the information system map projects to VOs",
            ),
            Some((_, first)) => d.error(path, format!("project {p} is listed twice (first on line {first})")),
            None => {
                self.projects.insert(p.clone(), (vo.to_string(), line));
            }
        }
    }
}

/// A VO name the accounting records can carry unchanged (the same rule as
/// the `voms.json` and Keystone-property VOs, see [`crate::accounting::vo`]).
fn check_vo_name(name: &str, path: &str, d: &mut Diag) -> bool {
    match crate::accounting::check_vo_name(name) {
        Ok(()) => true,
        Err(e) => {
            d.error_hint(path, e.to_string(), crate::accounting::vo::VO_NAME_RULE);
            false
        }
    }
}

fn config_vos(
    raw: &RawConfig,
    d: &mut Diag,
    global: Option<&Auth>,
    endpoint_known: bool,
) -> Option<Vec<Vo>> {
    let Some(list) = &raw.vos else {
        d.missing("vos");
        return None;
    };
    if list.is_empty() {
        d.error_hint(
            "vos",
            "no VOs configured",
            "add at least one VO with its projects",
        );
        return None;
    }
    let mut seen = Seen::default();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, vo) in list.iter().enumerate() {
        let p = item("vos", i);
        let name_path = join(&p, "name");
        let name = d.require(vo.name.clone(), &name_path);
        let name_ok = match &name {
            Some(n) => check_vo_name(n, &name_path, d) && seen.vo(n, &name_path, d),
            None => false,
        };
        let vo_name = name.clone().unwrap_or_default();
        let projects_path = join(&p, "projects");
        let mut projects = Vec::new();
        match &vo.projects {
            None => {
                d.missing(&projects_path);
                ok = false;
            }
            Some(list) if list.is_empty() => {
                d.error_hint(
                    &projects_path,
                    format!("VO `{vo_name}` has no projects"),
                    "add the project(s) serving it, e.g. `- id: <project id>`",
                );
                ok = false;
            }
            Some(list) => {
                for (j, pr) in list.iter().enumerate() {
                    let pp = item(&projects_path, j);
                    match project_of(pr, &pp, d) {
                        Some(r) => {
                            seen.project(&r, &vo_name, &pp, d);
                            projects.push(r);
                        }
                        None => ok = false,
                    }
                }
            }
        }
        let auth = match &vo.auth {
            None => None,
            Some(a) => {
                let defaults = AuthDefaults {
                    kind: global.map(|g| g.method.kind()),
                    auth_url: global.map(|g| g.auth_url.clone()),
                    auth_url_reported: global.is_none() || !endpoint_known,
                    identity_provider: match global.map(|g| &g.method) {
                        Some(AuthMethod::OidcAccessToken {
                            identity_provider, ..
                        }) => Some(identity_provider.clone()),
                        _ => None,
                    },
                    protocol: match global.map(|g| &g.method) {
                        Some(AuthMethod::OidcAccessToken { protocol, .. }) => protocol.clone(),
                        _ => "openid".into(),
                    },
                };
                let mut cx = AuthCx::appliance(d, &join(&p, "auth"));
                let auth = validate_auth(a, &defaults, &mut cx);
                ok &= auth.is_some();
                auth
            }
        };
        if let (Some(name), true) = (name, name_ok) {
            out.push(Vo {
                name,
                projects,
                auth,
            });
        } else {
            ok = false;
        }
    }
    ok.then_some(out)
}

fn catch_all_vos(ca: &RawCatchAll, cd: &mut Diag, global: Option<&Auth>) -> Option<Vec<Vo>> {
    let Some(list) = &ca.vos else {
        cd.error_hint(
            "",
            "the catch-all file lists no VOs (`vos`)",
            "add the VOs the site supports",
        );
        return None;
    };
    if list.is_empty() {
        cd.error_hint(
            "vos",
            "the catch-all file lists no VOs",
            "add the VOs the site supports",
        );
        return None;
    }
    let app_cred = matches!(
        global.map(|g| g.method.kind()),
        Some(AuthType::ApplicationCredential)
    );
    let mut seen = Seen::default();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, vo) in list.iter().enumerate() {
        let p = item("vos", i);
        let name_path = join(&p, "name");
        let name = cd.require(vo.name.clone(), &name_path);
        let auth_path = join(&p, "auth");
        let auth = cd.require(vo.auth.clone(), &auth_path);
        let Some(name) = name else {
            ok = false;
            continue;
        };
        if !check_vo_name(&name, &name_path, cd) || !seen.vo(&name, &name_path, cd) {
            ok = false;
            continue;
        }
        let projects = match auth {
            None => {
                ok = false;
                continue;
            }
            Some(Some(id)) => {
                let r = ProjectRef::Id(id);
                seen.project(&r, &name, &join(&auth_path, "project_id"), cd);
                vec![r]
            }
            // An application credential is bound to one project: the VO
            // is served by that project.
            Some(None) if app_cred => Vec::new(),
            Some(None) => {
                if global.is_some() {
                    cd.error_hint(
                        &auth_path,
                        format!("VO `{name}` has no `project_id`"),
                        "add `project_id: <id of the project serving the VO>`",
                    );
                }
                ok = false;
                continue;
            }
        };
        out.push(Vo {
            name,
            projects,
            auth: None,
        });
    }
    ok.then_some(out)
}

/// One needed secret.
struct Need {
    /// `openstack` or `vos.<name>`.
    section: String,
    key: &'static str,
}

fn check_secrets(
    source: Option<&CredentialSource>,
    vos: Option<&[Vo]>,
    cloud_has_secret: bool,
    file: &Path,
    state: &SecretsState,
    ds: &mut Diags,
) {
    let mut needs = Vec::new();
    let global_key = source.and_then(|s| s.auth().method.needed_secret());
    if let Some(key) = global_key {
        let from_cloud = matches!(source, Some(CredentialSource::Cloud { .. })) && cloud_has_secret;
        if !from_cloud {
            needs.push(Need {
                section: "openstack".into(),
                key,
            });
        }
    }
    for vo in vos.unwrap_or_default() {
        if let Some(key) = vo.auth.as_ref().and_then(|a| a.method.needed_secret()) {
            needs.push(Need {
                section: format!("vos.{}", vo.name),
                key,
            });
        }
    }
    let d = &mut ds.secrets;
    match state {
        SecretsState::Broken | SecretsState::NotRead => {}
        SecretsState::Missing => {
            for n in &needs {
                let e =
                    ConfigError::file(file, "secret not found (the secrets file does not exist)")
                        .path(format!("{}.{}", n.section, n.key))
                        .hint(format!(
                            "create {} with mode 0600 holding {}",
                            file.display(),
                            secret_yaml(&n.section, n.key)
                        ));
                d.warnings.push(e);
            }
        }
        SecretsState::Present(sf) => {
            for n in &needs {
                let set = secret_set(sf, &n.section);
                let found = set.and_then(|s| s.names().contains(&n.key).then_some(()));
                if found.is_none() && !d.failed(&format!("{}.{}", n.section, n.key)) {
                    let p = format!("{}.{}", n.section, n.key);
                    let mut e = d.at(&p, "secret not found in the secrets file");
                    e.path = Some(p);
                    e.hint = Some(format!("add {}", secret_yaml(&n.section, n.key)));
                    d.push(e);
                }
            }
            // Secrets nobody uses.
            let used = |section: &str, key: &str| {
                needs.iter().any(|n| n.section == section && n.key == key)
            };
            // When the credential itself is in error, "not used" would be
            // a guess.
            let openstack_names = if source.is_some() {
                sf.openstack.names()
            } else {
                Vec::new()
            };
            for key in openstack_names {
                if !used("openstack", key) {
                    let p = format!("openstack.{key}");
                    let why = match global_key {
                        Some(k) => format!("not used: the site credential needs `{k}`"),
                        None if cloud_has_secret => {
                            "not used: the secret comes from clouds.yaml".into()
                        }
                        None => "not used by the site credential".into(),
                    };
                    d.warn(&p, why, None);
                }
            }
            for (name, set) in &sf.vos {
                let section = format!("vos.{name}");
                let vo = vos.and_then(|v| v.iter().find(|v| &v.name == name));
                for key in set.names() {
                    if used(&section, key) {
                        continue;
                    }
                    let why = match vo {
                        None if vos.is_some() => {
                            format!("not used: there is no VO `{name}` in the configuration")
                        }
                        None => continue,
                        Some(v) if v.auth.is_none() => {
                            format!("not used: VO `{name}` has no `auth` of its own")
                        }
                        Some(_) => "not used by this VO's credential".to_string(),
                    };
                    d.warn(&format!("{section}.{key}"), why, None);
                }
            }
        }
    }
}

/// How a secret is written in the secrets file, e.g.
/// `` `vos: {ops: {token: ...}}` ``.
fn secret_yaml(section: &str, key: &str) -> String {
    match section.strip_prefix("vos.") {
        Some(vo) => format!("`vos: {{{vo}: {{{key}: ...}}}}`"),
        None => format!("`{section}: {{{key}: ...}}`"),
    }
}

fn secret_set<'a>(sf: &'a SecretsFile, section: &str) -> Option<&'a SecretSet> {
    match section.strip_prefix("vos.") {
        Some(name) => sf.vos.get(name),
        None => Some(&sf.openstack),
    }
}

fn validate_paths(raw: RawPaths, d: &mut Diag) -> Option<Paths> {
    let def = Paths::default();
    let mut ok = true;
    let mut one = |key: &str, v: Option<PathBuf>, default: PathBuf| -> PathBuf {
        let p = join("paths", key);
        if v.is_none() && d.failed(&p) {
            ok = false;
        }
        match v {
            None => default,
            Some(v) => absolute(d, &p, Some(v)).unwrap_or_else(|| {
                ok = false;
                default
            }),
        }
    };
    let paths = Paths {
        image_data: one("image-data", raw.image_data, def.image_data),
        spool: one("spool", raw.spool, def.spool),
        state: one("state", raw.state, def.state),
        host_cert: one("host-cert", raw.host_cert, def.host_cert),
        host_key: one("host-key", raw.host_key, def.host_key),
        ca_dir: one("ca-dir", raw.ca_dir, def.ca_dir),
    };
    ok.then_some(paths)
}

fn validate_components(raw: super::raw::RawComponents, d: &mut Diag) -> Components {
    let def = Components::default();
    let mut schedule = |key: String, v: Option<String>, default: String| -> String {
        let schedule = v.unwrap_or(default);
        if schedule.trim().is_empty() {
            d.error_hint(
                &key,
                "empty schedule",
                "a systemd OnCalendar= expression, e.g. `hourly`",
            );
        }
        schedule
    };
    let mut one = |key: &str, v: Option<RawComponent>, default: Component| -> Component {
        let v = v.unwrap_or_default();
        Component {
            enabled: v.enabled.unwrap_or(default.enabled),
            schedule: schedule(
                format!("components.{key}.schedule"),
                v.schedule,
                default.schedule,
            ),
        }
    };
    let info = one("info", raw.info, def.info);
    let images = one("images", raw.images, def.images);
    let crl_refresh = one("crl-refresh", raw.crl_refresh, def.crl_refresh);
    let acc = raw.accounting.unwrap_or_default();
    let accounting = AccountingComponent {
        enabled: acc.enabled.unwrap_or(def.accounting.enabled),
        extract_schedule: schedule(
            "components.accounting.extract-schedule".into(),
            acc.extract_schedule,
            def.accounting.extract_schedule,
        ),
        send_schedule: schedule(
            "components.accounting.send-schedule".into(),
            acc.send_schedule,
            def.accounting.send_schedule,
        ),
    };
    Components {
        accounting,
        info,
        images,
        crl_refresh,
    }
}
