//! `appliance.yaml` as written: one struct per section, kebab-case keys,
//! every field optional (requiredness depends on other fields and is
//! checked in `validate`). The key lists here are the schema; the
//! commented `example.yaml` shows all of them.

use std::path::PathBuf;

use url::Url;

use super::decode::{decode_enum, Decode, Diag, MapReader, Unknown};
use super::format::Node;
use super::model::AuthType;
use crate::openstack::access::Interface;

/// The whole file.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub schema_version: Option<u64>,
    pub site: Option<RawSite>,
    pub openstack: Option<RawOpenStack>,
    pub secrets_file: Option<PathBuf>,
    pub vos: Option<Vec<RawVo>>,
    pub paths: Option<RawPaths>,
    pub components: Option<RawComponents>,
    pub accounting: Option<super::sections::accounting::Raw>,
    pub ams: Option<super::sections::ams::Raw>,
    pub info: Option<super::sections::info::Raw>,
    pub images: Option<super::sections::images::Raw>,
}

/// `site`.
#[derive(Debug, Default)]
pub struct RawSite {
    pub gocdb: Option<String>,
    pub endpoint: Option<Url>,
    pub endpoint_id: Option<String>,
    pub catch_all: Option<PathBuf>,
}

/// `openstack`.
#[derive(Debug, Default)]
pub struct RawOpenStack {
    pub cloud: Option<String>,
    pub clouds_file: Option<PathBuf>,
    pub auth: Option<RawAuth>,
    pub region: Option<String>,
    pub interface: Option<Interface>,
    pub ca_file: Option<PathBuf>,
    pub ca_dir: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub retries: Option<u32>,
}

impl Decode for AuthType {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_enum(node, path, d, AuthType::CHOICES)
    }
}

impl Decode for Interface {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_enum(
            node,
            path,
            d,
            &[
                ("public", Interface::Public),
                ("internal", Interface::Internal),
                ("admin", Interface::Admin),
            ],
        )
    }
}

/// `openstack.auth` and `vos[].auth`.
#[derive(Debug, Default, Clone)]
pub struct RawAuth {
    pub kind: Option<AuthType>,
    pub auth_url: Option<Url>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub identity_provider: Option<String>,
    pub protocol: Option<String>,
    pub access_token_file: Option<PathBuf>,
}

/// The keys of an auth block, in schema order.
pub const AUTH_KEYS: &[&str] = &[
    "type",
    "auth-url",
    "username",
    "user-id",
    "user-domain-name",
    "user-domain-id",
    "project-id",
    "project-name",
    "project-domain-name",
    "project-domain-id",
    "application-credential-id",
    "application-credential-name",
    "identity-provider",
    "protocol",
    "access-token-file",
];

impl RawAuth {
    /// Decode an auth block whose secrets belong in the secrets file under
    /// `section`.
    pub fn decode_in(node: &Node, path: &str, d: &mut Diag, section: String) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        m.secrets_section(section);
        let v = RawAuth {
            kind: m.opt("type"),
            auth_url: m.opt("auth-url"),
            username: m.opt("username"),
            user_id: m.opt("user-id"),
            user_domain_name: m.opt("user-domain-name"),
            user_domain_id: m.opt("user-domain-id"),
            project_id: m.opt("project-id"),
            project_name: m.opt("project-name"),
            project_domain_name: m.opt("project-domain-name"),
            project_domain_id: m.opt("project-domain-id"),
            application_credential_id: m.opt("application-credential-id"),
            application_credential_name: m.opt("application-credential-name"),
            identity_provider: m.opt("identity-provider"),
            protocol: m.opt("protocol"),
            access_token_file: m.opt("access-token-file"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }

    /// The keys that are set, with their schema names (for "does not apply
    /// to this auth type" checks).
    pub fn set_keys(&self) -> Vec<&'static str> {
        let flags = [
            self.kind.is_some(),
            self.auth_url.is_some(),
            self.username.is_some(),
            self.user_id.is_some(),
            self.user_domain_name.is_some(),
            self.user_domain_id.is_some(),
            self.project_id.is_some(),
            self.project_name.is_some(),
            self.project_domain_name.is_some(),
            self.project_domain_id.is_some(),
            self.application_credential_id.is_some(),
            self.application_credential_name.is_some(),
            self.identity_provider.is_some(),
            self.protocol.is_some(),
            self.access_token_file.is_some(),
        ];
        AUTH_KEYS
            .iter()
            .zip(flags)
            .filter(|(_, f)| *f)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// `vos[]`.
#[derive(Debug, Default)]
pub struct RawVo {
    pub name: Option<String>,
    pub projects: Option<Vec<RawProject>>,
    pub auth: Option<RawAuth>,
}

/// `vos[].projects[]`.
#[derive(Debug, Default)]
pub struct RawProject {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
}

/// `paths`.
#[derive(Debug, Default)]
pub struct RawPaths {
    pub image_data: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub host_cert: Option<PathBuf>,
    pub host_key: Option<PathBuf>,
    pub ca_dir: Option<PathBuf>,
}

/// `components`.
#[derive(Debug, Default)]
pub struct RawComponents {
    pub accounting: Option<RawAccountingComponent>,
    pub info: Option<RawComponent>,
    pub images: Option<RawComponent>,
    pub crl_refresh: Option<RawComponent>,
}

/// `components.accounting`: extraction and delivery run on their own
/// schedules (schema 2; schema 1 had one `schedule` for both).
#[derive(Debug, Default)]
pub struct RawAccountingComponent {
    pub enabled: Option<bool>,
    pub extract_schedule: Option<String>,
    pub send_schedule: Option<String>,
}

/// `components.<name>`.
#[derive(Debug, Default)]
pub struct RawComponent {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
}

impl Decode for RawConfig {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawConfig {
            schema_version: m.opt("schema-version"),
            site: m.opt("site"),
            openstack: m.opt("openstack"),
            secrets_file: m.opt("secrets-file"),
            vos: m.opt("vos"),
            paths: m.opt("paths"),
            components: m.opt("components"),
            accounting: m.opt("accounting"),
            ams: m.opt("ams"),
            info: m.opt("info"),
            images: m.opt("images"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawSite {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawSite {
            gocdb: m.opt("gocdb"),
            endpoint: m.opt("endpoint"),
            endpoint_id: m.opt("endpoint-id"),
            catch_all: m.opt("catch-all"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawOpenStack {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawOpenStack {
            cloud: m.opt("cloud"),
            clouds_file: m.opt("clouds-file"),
            auth: m.opt_with("auth", |n, p, d| {
                RawAuth::decode_in(n, p, d, "openstack".into())
            }),
            region: m.opt("region"),
            interface: m.opt("interface"),
            ca_file: m.opt("ca-file"),
            ca_dir: m.opt("ca-dir"),
            insecure: m.opt("insecure"),
            timeout_seconds: m.opt("timeout-seconds"),
            retries: m.opt("retries"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawVo {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let name: Option<String> = m.opt("name");
        let section = format!("vos.{}", name.as_deref().unwrap_or("<vo name>"));
        m.secrets_section(section.clone());
        let v = RawVo {
            projects: m.opt("projects"),
            auth: m.opt_with("auth", |n, p, d| RawAuth::decode_in(n, p, d, section)),
            name,
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawProject {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawProject {
            id: m.opt("id"),
            name: m.opt("name"),
            domain_name: m.opt("domain-name"),
            domain_id: m.opt("domain-id"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawPaths {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawPaths {
            image_data: m.opt("image-data"),
            spool: m.opt("spool"),
            state: m.opt("state"),
            host_cert: m.opt("host-cert"),
            host_key: m.opt("host-key"),
            ca_dir: m.opt("ca-dir"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawComponents {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawComponents {
            accounting: m.opt("accounting"),
            info: m.opt("info"),
            images: m.opt("images"),
            crl_refresh: m.opt("crl-refresh"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawAccountingComponent {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawAccountingComponent {
            enabled: m.opt("enabled"),
            extract_schedule: m.opt("extract-schedule"),
            send_schedule: m.opt("send-schedule"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawComponent {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawComponent {
            enabled: m.opt("enabled"),
            schedule: m.opt("schedule"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}
