//! Site configuration: `/etc/fedcloud-appliance/appliance.yaml` and the
//! files it refers to, loaded strictly and validated in one pass.
//!
//! [`load`] reads the file, decodes it (unknown keys, wrong types and bad
//! values are all reported, not just the first), reads the files it names
//! (a fedcloud-catchall-operations site file, the secrets file, clouds.yaml)
//! and validates the whole. It returns a [`Loaded`] — the validated
//! [`Config`], warnings, and the secrets, which leave this module only
//! inside a [`CloudAccess`] — or every problem found, as [`ConfigErrors`],
//! each one `FILE:LINE:COL: KEY.PATH: message; hint`.
//!
//! Module map: `format` is the only code that knows YAML (parsing into a
//! positioned tree, and rendering for `config show`); `decode` turns trees
//! into typed raw structs, collecting errors; `raw`, `catchall`, `clouds`
//! and `secrets` are the four file formats; `validate` checks the whole
//! without I/O; `files` holds the reads and permission rules; `show` is the
//! redacted effective configuration.
//!
//! # Secrets
//!
//! Secrets never go in `appliance.yaml` (an inline `password`,
//! `application-credential-secret`, `access-token`, `token` or `secret` key
//! is an error naming the secrets file). They are read from `secrets-file`
//! (default `/etc/fedcloud-appliance/secrets.yaml`), which must be a regular
//! file with no group/other permission bits, or from clouds.yaml (which only
//! gets a warning when it is readable by others).
//!
//! A secrets file that does **not exist** is a warning, not an error:
//! `appliance config example > x.yaml && appliance --config x.yaml config
//! check` passes on a machine without secrets, and a site can check its
//! configuration before the credentials are issued. The secret is then
//! missing at use time: [`Loaded::cloud_access`] and [`Loaded::vo_access`]
//! fail with "secret openstack.password not found ... create FILE with mode
//! 0600", so every command that needs it stops with exit code 2. A secrets
//! file that exists but lacks a needed secret, is unreadable, or is
//! group/world-accessible is an error at load time.
//!
//! `insecure: true` (or clouds.yaml `verify: false`) is accepted with a
//! warning; commands should call [`Loaded::log_warnings`] so it is logged on
//! every run.

mod catchall;
mod clouds;
pub(crate) mod decode;
mod error;
mod files;
pub(crate) mod format;
pub mod model;
mod raw;
mod secrets;
pub mod sections;
mod show;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    Auth, AuthMethod, AuthType, CatchAll, Component, Components, Config, CredentialSource,
    OpenStack, Paths, Site, Vo, DEFAULT_CRL_SCHEDULE, DEFAULT_EXTRACT_SCHEDULE,
    DEFAULT_IMAGES_SCHEDULE, DEFAULT_INFO_SCHEDULE, DEFAULT_SECRETS_FILE, DEFAULT_SEND_SCHEDULE,
    SCHEMA_VERSION,
};
pub use show::{show, show_json};

use crate::openstack::access::{AccessToken, CloudAccess, Credential, ProjectRef};
use crate::secret::Secret;
use decode::{Decode, Diag};
use format::{Node, Value};
use secrets::SecretsFile;
use validate::{CloudInput, Diags, Input, SecretsState};

/// The configuration file as a YAML document of any schema version, for
/// `appliance migrate`: the positioned tree, and edits that keep the
/// administrator's comments and layout.
pub mod yaml {
    pub use super::format::edit::{Document, EditError, Finished, Layout, NewScalar, NewValue};
    pub use super::format::{Entry, Mark, Node, Scalar, ScalarKind, SyntaxError, Value};
}

/// The commented example configuration (`appliance config example`).
pub fn example() -> &'static str {
    include_str!("example.yaml")
}

/// What [`load`] looks up in the environment: the clouds.yaml search path.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$OS_CLIENT_CONFIG_FILE`.
    pub os_client_config_file: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

impl Env {
    /// This process's environment.
    pub fn from_process() -> Self {
        Env {
            os_client_config_file: std::env::var_os("OS_CLIENT_CONFIG_FILE").map(PathBuf::from),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Warnings (`FILE:LINE:COL: KEY.PATH: message; hint`), e.g. TLS
    /// verification off, or no secrets file yet.
    pub warnings: Vec<String>,
    /// The file it was loaded from.
    pub source: PathBuf,
    secrets: SecretsState,
    cloud_secret: Option<Secret>,
}

/// Load and validate the configuration at `path` (clouds.yaml searched for
/// with this process's environment).
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_with(path, &Env::from_process())
}

/// [`load`] without reading the secrets file, for the jobs that need none
/// (`crl refresh`, the run records): they run where the secrets are not
/// readable (root without `CAP_DAC_OVERRIDE`, the secrets being the
/// appliance user's, mode 0600). Its credentials are absent; nothing about
/// the secrets is checked.
pub fn load_settings(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_inner(path, &Env::from_process(), false)
}

/// [`load`] with an explicit environment.
pub fn load_with(path: &Path, env: &Env) -> Result<Loaded, ConfigErrors> {
    load_inner(path, env, true)
}

fn load_inner(path: &Path, env: &Env, read_secrets: bool) -> Result<Loaded, ConfigErrors> {
    let text = files::read_text(path, "the configuration").map_err(|e| {
        ConfigErrors::one(e.hint(format!(
            "write one with `appliance config example > {}` and edit it",
            path.display()
        )))
    })?;
    let root = parse(path, &text)?;
    if root.is_null() {
        return Err(ConfigErrors::one(
            ConfigError::file(path, "the configuration is empty")
                .hint("start from `appliance config example`"),
        ));
    }

    let mut d = Diag::new(path);
    d.record("", root.mark);
    let secrets_file = peek_str(&root, "secrets-file")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_FILE));
    d.secrets_file = Some(secrets_file.clone());
    let raw = raw::RawConfig::decode(&root, "", &mut d).unwrap_or_default();
    if let Some(v) = raw.schema_version.filter(|v| *v != SCHEMA_VERSION) {
        // A different version: its other keys would only add noise.
        let e = if v < SCHEMA_VERSION {
            d.at(
                "schema-version",
                format!("schema version {v} is from an earlier release"),
            )
            .hint(format!(
                "run `appliance migrate` to bring it to `schema-version: {SCHEMA_VERSION}` \
                 (the appliance-migrate unit does this at boot)"
            ))
        } else {
            d.at(
                "schema-version",
                format!("schema version {v} is newer than this release reads ({SCHEMA_VERSION})"),
            )
            .hint("run the release that wrote it, or restore the configuration from a backup")
        };
        return Err(ConfigErrors::one(e));
    }

    // The catch-all site file.
    let mut catch_all = None;
    let mut catch_all_diag = None;
    if let Some(file) = raw
        .site
        .as_ref()
        .and_then(|s| s.catch_all.clone())
        .filter(|p| p.is_absolute())
    {
        match side_file(&file, "the catch-all site file") {
            Ok(node) => {
                let mut cd = Diag::new(file.clone());
                catch_all = catchall::RawCatchAll::decode(&node, "", &mut cd);
                catch_all_diag = Some(cd);
            }
            Err(e) => d.push(reposition(e, &d, "site.catch-all")),
        }
    }

    // The secrets file.
    let mut secrets_diag = Diag::new(secrets_file.clone());
    let secrets = if !read_secrets {
        SecretsState::NotRead
    } else if raw.secrets_file.as_ref().is_some_and(|p| !p.is_absolute()) {
        SecretsState::Broken // reported by validation
    } else {
        match files::read_secret_file(&secrets_file) {
            Ok(None) => SecretsState::Missing,
            Ok(Some(text)) => match format::parse(&text) {
                Ok(node) => match SecretsFile::decode(&node, "", &mut secrets_diag) {
                    // With decode errors too, so the needed secrets are
                    // still checked (the errors are reported anyway).
                    Some(sf) => SecretsState::Present(sf),
                    None => SecretsState::Broken,
                },
                Err(e) => {
                    secrets_diag.push(syntax_error(&secrets_file, &e));
                    SecretsState::Broken
                }
            },
            Err(e) => {
                secrets_diag.push(e);
                SecretsState::Broken
            }
        }
    };

    // clouds.yaml.
    let mut cloud = None;
    let mut clouds_diag = None;
    let os = raw.openstack.as_ref();
    if let (Some(name), None) = (
        os.and_then(|o| o.cloud.clone()),
        os.and_then(|o| o.auth.as_ref()),
    ) {
        let explicit = os.and_then(|o| o.clouds_file.clone());
        let file = match explicit {
            Some(f) if f.is_absolute() => Some(f),
            Some(_) => None, // reported by validation
            None => {
                let candidates =
                    clouds::search_path(env.os_client_config_file.as_deref(), env.home.as_deref());
                let found = candidates.iter().find(|p| files::exists(p)).cloned();
                if found.is_none() {
                    let list: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    d.error_hint(
                        "openstack.cloud",
                        format!("no clouds.yaml found (looked in {})", list.join(", ")),
                        "set `openstack.clouds-file`",
                    );
                }
                found
            }
        };
        if let Some(file) = file {
            match side_file(&file, "clouds.yaml") {
                Ok(node) => {
                    let mut cd = Diag::new(file.clone());
                    if let Some(raw_cloud) = clouds::decode_cloud(&node, &name, &mut cd) {
                        cloud = Some(CloudInput {
                            mode: files::mode_of(&file),
                            file,
                            raw: raw_cloud,
                        });
                    }
                    clouds_diag = Some(cd);
                }
                Err(e) => d.push(reposition(e, &d, "openstack.clouds-file")),
            }
        }
    }

    // Warn about an OIDC token file that is not there (yet).
    let mut diags = Diags {
        config: d,
        catch_all: catch_all_diag,
        secrets: secrets_diag,
        clouds: clouds_diag,
    };
    let input = Input {
        raw,
        catch_all,
        cloud,
        secrets_file,
        secrets: secrets.clone(),
    };
    let validated = validate::validate(input, &mut diags);
    if let Some(v) = &validated {
        token_file_warnings(&v.config, &mut diags.config);
    }

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    diags.config.drain_into(&mut errors, &mut warnings);
    for cd in [
        diags.catch_all.as_mut(),
        Some(&mut diags.secrets),
        diags.clouds.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        cd.drain_into(&mut errors, &mut warnings);
    }
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    match validated {
        Some(v) if errors.is_empty() => Ok(Loaded {
            config: v.config,
            warnings,
            source: path.to_path_buf(),
            secrets,
            cloud_secret: v.cloud_secret,
        }),
        _ => {
            if errors.is_empty() {
                // Validation gave up without saying why: a bug, but never
                // an empty error report.
                errors.push(ConfigError::file(path, "the configuration is incomplete"));
            }
            Err(ConfigErrors { errors, warnings })
        }
    }
}

fn syntax_error(file: &Path, e: &format::SyntaxError) -> ConfigError {
    ConfigError::at(
        file,
        Some(e.mark),
        "",
        format!("YAML syntax error: {}", e.message),
    )
}

fn parse(file: &Path, text: &str) -> Result<Node, ConfigErrors> {
    format::parse(text).map_err(|e| ConfigErrors::one(syntax_error(file, &e)))
}

/// Read and parse a file named by the configuration.
fn side_file(file: &Path, what: &str) -> Result<Node, ConfigError> {
    let text = files::read_text(file, what)?;
    format::parse(&text).map_err(|e| syntax_error(file, &e))
}

/// A whole-file read error of a referenced file, shown at the key that
/// names it (so the operator sees both places).
fn reposition(e: ConfigError, d: &Diag, path: &str) -> ConfigError {
    if e.line.is_some() {
        return e;
    }
    let message = format!("{}: {}", e.file.display(), e.message);
    let mut out = d.at(path, message);
    out.hint = e.hint;
    out
}

/// A top-level string, read before decoding (for the inline-secret hint).
fn peek_str(root: &Node, key: &str) -> Option<String> {
    let Value::Map(entries) = &root.value else {
        return None;
    };
    let e = entries.iter().find(|e| e.key == key)?;
    match &e.value.value {
        Value::Scalar(s) => Some(s.text.clone()),
        _ => None,
    }
}

fn token_file_warnings(config: &Config, d: &mut Diag) {
    let global = std::iter::once(("openstack.auth".to_string(), config.openstack.source.auth()));
    let per_vo = config
        .vos
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.auth.as_ref().map(|a| (format!("vos[{i}].auth"), a)));
    for (path, auth) in global.chain(per_vo) {
        if let AuthMethod::OidcAccessToken {
            access_token_file: Some(f),
            ..
        } = &auth.method
        {
            if !files::exists(f) {
                d.warn(
                    &format!("{path}.access-token-file"),
                    format!("{} does not exist (yet)", f.display()),
                    Some("the token refresher (e.g. oidc-agent) must write it before the appliance runs".into()),
                );
            }
        }
    }
}

impl Loaded {
    /// The VOs and their projects.
    pub fn vos(&self) -> &[Vo] {
        &self.config.vos
    }

    /// Log every warning (call once per run, so `insecure: true` is seen).
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }

    /// How to reach OpenStack with the site-wide credential.
    pub fn cloud_access(&self) -> Result<CloudAccess, ConfigErrors> {
        let auth = self.config.openstack.source.auth();
        let secret = match (&self.config.openstack.source, &self.cloud_secret) {
            (CredentialSource::Cloud { .. }, Some(s)) => Some(s.clone()),
            _ => self.secret("openstack", auth),
        };
        self.access(auth, secret, "openstack")
    }

    /// How to reach OpenStack for `vo`: its own credential if it has one,
    /// else the site-wide one, scoped by default to the VO's first project
    /// (an application credential keeps the project it is bound to). The
    /// client rescopes to the VO's other projects itself.
    pub fn vo_access(&self, vo: &Vo) -> Result<CloudAccess, ConfigErrors> {
        let mut access = match &vo.auth {
            Some(auth) => {
                let section = format!("vos.{}", vo.name);
                let secret = self.secret(&section, auth);
                self.access(auth, secret, &section)?
            }
            None => self.cloud_access()?,
        };
        if let Some(p) = vo.projects.first() {
            set_default_scope(&mut access.credential, p);
        }
        Ok(access)
    }

    /// The token of image-list subscription `name` (secrets file
    /// `images.<name>.token`), if one is set.
    pub fn image_list_token(&self, name: &str) -> Option<Secret> {
        let SecretsState::Present(sf) = &self.secrets else {
            return None;
        };
        sf.images.get(name)?.token.clone()
    }

    /// The password of a harbor subscription's robot account
    /// (`images.<name>.password` of the secrets file).
    pub fn image_source_password(&self, name: &str) -> Option<Secret> {
        let SecretsState::Present(sf) = &self.secrets else {
            return None;
        };
        sf.images.get(name)?.password.clone()
    }

    fn secret(&self, section: &str, auth: &Auth) -> Option<Secret> {
        let SecretsState::Present(sf) = &self.secrets else {
            return None;
        };
        let set = match section.strip_prefix("vos.") {
            Some(name) => sf.vos.get(name)?,
            None => &sf.openstack,
        };
        set.get(auth.method.kind()).cloned()
    }

    fn access(
        &self,
        auth: &Auth,
        secret: Option<Secret>,
        section: &str,
    ) -> Result<CloudAccess, ConfigErrors> {
        let need = || {
            let key = auth.method.kind().secret_key();
            let file = &self.config.secrets_file;
            let what = if matches!(self.secrets, SecretsState::Missing) {
                format!("create {} with mode 0600 holding", file.display())
            } else {
                format!("add to {}", file.display())
            };
            let yaml = match section.strip_prefix("vos.") {
                Some(vo) => format!("`vos: {{{vo}: {{{key}: ...}}}}`"),
                None => format!("`{section}: {{{key}: ...}}`"),
            };
            ConfigErrors::one(
                ConfigError::file(file.clone(), format!("secret {section}.{key} not found"))
                    .hint(format!("{what} {yaml}")),
            )
        };
        let credential = credential(auth, secret).ok_or_else(need)?;
        let os = &self.config.openstack;
        Ok(CloudAccess {
            auth_url: auth.auth_url.clone(),
            credential,
            region: os.region.clone(),
            interface: os.interface,
            tls: os.tls.clone(),
            timeout: os.timeout,
            retries: os.retries,
        })
    }
}

/// The client credential of `auth` with its `secret`; `None` when the
/// method needs a secret and none is given.
pub fn credential(auth: &Auth, secret: Option<Secret>) -> Option<Credential> {
    Some(match &auth.method {
        AuthMethod::Password {
            username,
            user_domain,
            project,
        } => Credential::Password {
            username: username.clone(),
            user_domain: user_domain.clone(),
            password: secret?,
            project: project.clone(),
        },
        AuthMethod::ApplicationCredential { id, name, user } => Credential::ApplicationCredential {
            id: id.clone(),
            name: name.clone(),
            user: user.clone(),
            secret: secret?,
        },
        AuthMethod::OidcAccessToken {
            identity_provider,
            protocol,
            access_token_file,
            project,
        } => {
            let access_token = match access_token_file {
                Some(f) => AccessToken::File(f.clone()),
                None => AccessToken::Value(secret?),
            };
            Credential::OidcAccessToken {
                identity_provider: identity_provider.clone(),
                protocol: protocol.clone(),
                access_token,
                project: project.clone(),
            }
        }
        AuthMethod::Token { project } => Credential::Token {
            token: secret?,
            project: project.clone(),
        },
    })
}

/// Scope a site-wide credential to a VO's project (application credentials
/// are bound to their own project and keep it).
fn set_default_scope(c: &mut Credential, p: &ProjectRef) {
    match c {
        Credential::Password { project, .. }
        | Credential::OidcAccessToken { project, .. }
        | Credential::Token { project, .. } => *project = Some(p.clone()),
        Credential::ApplicationCredential { .. } => {}
    }
}

#[cfg(test)]
mod tests;
