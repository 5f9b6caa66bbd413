//! `appliance config show`: the effective configuration — defaults filled
//! in, the catch-all site file and the clouds.yaml entry resolved — in the
//! shape of `appliance.yaml`, with each credential's secret shown as
//! `<redacted>` (or `<not found>`). Because it is resolved, it can hold keys
//! that are exclusive in an input file (`catch-all` next to `gocdb`,
//! `cloud` next to `auth`).

use serde::Serialize;

use super::model::{Auth, AuthMethod, Component};
use super::{format, CredentialSource, Loaded};
use crate::openstack::access::{DomainRef, ProjectRef};
use crate::secret::Secret;

/// The effective configuration as YAML, secrets redacted, with a header
/// comment and the warnings as comments.
pub fn show(loaded: &Loaded) -> String {
    let mut out = format!(
        "# Effective configuration from {} (defaults applied, catch-all and clouds.yaml\n# resolved, secrets redacted).\n",
        loaded.source.display()
    );
    for w in &loaded.warnings {
        out.push_str(&format!("# warning: {w}\n"));
    }
    out.push_str(&format::to_yaml(&effective(loaded)));
    out
}

/// The effective configuration as JSON (`config show --json`).
pub fn show_json(loaded: &Loaded) -> serde_json::Value {
    serde_json::to_value(effective(loaded)).unwrap_or(serde_json::Value::Null)
}

/// A secret in the output: never its value.
enum Shown {
    Found(Secret),
    NotFound,
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Secret` serialises as `<redacted>`.
            Shown::Found(secret) => secret.serialize(s),
            Shown::NotFound => s.serialize_str("<not found>"),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Effective {
    schema_version: u64,
    site: SiteOut,
    openstack: OpenStackOut,
    secrets_file: String,
    vos: Vec<VoOut>,
    paths: PathsOut,
    components: ComponentsOut,
    accounting: super::sections::accounting::Section,
    ams: super::sections::ams::Section,
    info: super::sections::info::Section,
    images: super::sections::images::Section,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SiteOut {
    gocdb: String,
    endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catch_all: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OpenStackOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clouds_file: Option<String>,
    auth: AuthOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    interface: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_dir: Option<String>,
    insecure: bool,
    timeout_seconds: u64,
    retries: u32,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
struct AuthOut {
    #[serde(rename = "type")]
    kind: &'static str,
    auth_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_domain_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_domain_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_credential_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_credential_secret: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<Shown>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct VoOut {
    name: String,
    projects: Vec<ProjectOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<AuthOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ProjectOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct PathsOut {
    image_data: String,
    spool: String,
    state: String,
    host_cert: String,
    host_key: String,
    ca_dir: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ComponentsOut {
    accounting: AccountingOut,
    info: ComponentOut,
    images: ComponentOut,
    crl_refresh: ComponentOut,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AccountingOut {
    enabled: bool,
    extract_schedule: String,
    send_schedule: String,
}

#[derive(Serialize)]
struct ComponentOut {
    enabled: bool,
    schedule: String,
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn domain(d: &DomainRef) -> (Option<String>, Option<String>) {
    match d {
        DomainRef::Name(n) => (Some(n.clone()), None),
        DomainRef::Id(i) => (None, Some(i.clone())),
    }
}

fn project(p: &ProjectRef) -> ProjectOut {
    match p {
        ProjectRef::Id(id) => ProjectOut {
            id: Some(id.clone()),
            name: None,
            domain_name: None,
            domain_id: None,
        },
        ProjectRef::Name { name, domain: d } => {
            let (domain_name, domain_id) = domain(d);
            ProjectOut {
                id: None,
                name: Some(name.clone()),
                domain_name,
                domain_id,
            }
        }
    }
}

fn auth_out(auth: &Auth, secret: Option<Secret>) -> AuthOut {
    let mut out = AuthOut {
        kind: auth.method.kind().name(),
        auth_url: crate::redact::url(&auth.auth_url),
        ..AuthOut::default()
    };
    let set_project = |out: &mut AuthOut, p: &Option<ProjectRef>| match p {
        Some(ProjectRef::Id(id)) => out.project_id = Some(id.clone()),
        Some(ProjectRef::Name { name, domain: d }) => {
            out.project_name = Some(name.clone());
            (out.project_domain_name, out.project_domain_id) = domain(d);
        }
        None => {}
    };
    match &auth.method {
        AuthMethod::Password {
            username,
            user_domain,
            project,
        } => {
            out.username = Some(username.clone());
            (out.user_domain_name, out.user_domain_id) = domain(user_domain);
            set_project(&mut out, project);
        }
        AuthMethod::ApplicationCredential { id, name, user } => {
            out.application_credential_id.clone_from(id);
            out.application_credential_name.clone_from(name);
            if let Some((u, d)) = user {
                out.username = Some(u.clone());
                (out.user_domain_name, out.user_domain_id) = domain(d);
            }
        }
        AuthMethod::OidcAccessToken {
            identity_provider,
            protocol,
            access_token_file,
            project,
        } => {
            out.identity_provider = Some(identity_provider.clone());
            out.protocol = Some(protocol.clone());
            out.access_token_file = access_token_file.as_deref().map(s);
            set_project(&mut out, project);
        }
        AuthMethod::Token { project } => set_project(&mut out, project),
    }
    if let Some(key) = auth.method.needed_secret() {
        let shown = Some(match secret {
            Some(secret) => Shown::Found(secret),
            None => Shown::NotFound,
        });
        match key {
            "password" => out.password = shown,
            "application-credential-secret" => out.application_credential_secret = shown,
            "access-token" => out.access_token = shown,
            _ => out.token = shown,
        }
    }
    out
}

fn component(c: &Component) -> ComponentOut {
    ComponentOut {
        enabled: c.enabled,
        schedule: c.schedule.clone(),
    }
}

fn effective(loaded: &Loaded) -> Effective {
    let c = &loaded.config;
    let os = &c.openstack;
    let global_secret = loaded
        .cloud_access()
        .ok()
        .and_then(|a| credential_secret(&a.credential));
    let (cloud, clouds_file) = match &os.source {
        CredentialSource::Cloud { name, file, .. } => (Some(name.clone()), Some(s(file))),
        CredentialSource::Inline(_) => (None, None),
    };
    Effective {
        schema_version: super::SCHEMA_VERSION,
        site: SiteOut {
            gocdb: c.site.gocdb.clone(),
            endpoint: crate::redact::url(&c.site.endpoint),
            endpoint_id: c.site.endpoint_id.clone(),
            catch_all: c.site.catch_all.as_ref().map(|ca| s(&ca.file)),
        },
        openstack: OpenStackOut {
            cloud,
            clouds_file,
            auth: auth_out(os.source.auth(), global_secret),
            region: os.region.clone(),
            interface: os.interface.as_str(),
            ca_file: os.tls.ca_file.as_deref().map(s),
            ca_dir: os.tls.ca_dir.as_deref().map(s),
            insecure: os.tls.insecure,
            timeout_seconds: os.timeout.as_secs(),
            retries: os.retries,
        },
        secrets_file: s(&c.secrets_file),
        vos: c
            .vos
            .iter()
            .map(|vo| VoOut {
                name: vo.name.clone(),
                projects: vo.projects.iter().map(project).collect(),
                auth: vo.auth.as_ref().map(|a| {
                    let secret = loaded
                        .vo_access(vo)
                        .ok()
                        .and_then(|acc| credential_secret(&acc.credential));
                    auth_out(a, secret)
                }),
            })
            .collect(),
        paths: PathsOut {
            image_data: s(&c.paths.image_data),
            spool: s(&c.paths.spool),
            state: s(&c.paths.state),
            host_cert: s(&c.paths.host_cert),
            host_key: s(&c.paths.host_key),
            ca_dir: s(&c.paths.ca_dir),
        },
        components: ComponentsOut {
            accounting: AccountingOut {
                enabled: c.components.accounting.enabled,
                extract_schedule: c.components.accounting.extract_schedule.clone(),
                send_schedule: c.components.accounting.send_schedule.clone(),
            },
            info: component(&c.components.info),
            images: component(&c.components.images),
            crl_refresh: component(&c.components.crl_refresh),
        },
        accounting: c.accounting.clone(),
        ams: c.ams.clone(),
        info: c.info.clone(),
        images: c.images.clone(),
    }
}

fn credential_secret(c: &crate::openstack::access::Credential) -> Option<Secret> {
    use crate::openstack::access::{AccessToken, Credential};
    match c {
        Credential::Password { password, .. } => Some(password.clone()),
        Credential::ApplicationCredential { secret, .. } => Some(secret.clone()),
        Credential::OidcAccessToken {
            access_token: AccessToken::Value(t),
            ..
        } => Some(t.clone()),
        Credential::OidcAccessToken { .. } => None,
        Credential::Token { token, .. } => Some(token.clone()),
    }
}
