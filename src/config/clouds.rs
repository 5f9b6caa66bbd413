//! clouds.yaml (openstacksdk/os-client-config format): the one cloud that
//! `openstack.cloud` names, mapped onto our own credential shape.
//!
//! Used keys of `clouds.<name>`: `auth_type`, `auth` {auth_url, username,
//! user_id, password, user_domain_name, user_domain_id, project_name,
//! project_id, project_domain_name, project_domain_id, domain_name,
//! domain_id (fill in the missing user/project domain, as openstacksdk
//! does), application_credential_id, application_credential_name,
//! application_credential_secret, identity_provider, protocol,
//! access_token, token}, `region_name`, `interface`, `cacert`, `verify`.
//! Other keys of a cloud belong to other tools and are ignored; unknown
//! keys inside its `auth` are ignored with a warning. Other clouds of the
//! file are not looked at.

use std::path::{Path, PathBuf};

use url::Url;

use super::decode::{join, suggest, Decode, Diag, MapReader, Unknown};
use super::format::{Node, Value};
use super::raw::RawAuth;
use crate::openstack::access::Interface;
use crate::secret::Secret;

/// Where clouds.yaml is looked for when `clouds-file` is not given, in
/// order: `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
/// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
pub fn search_path(os_client_config_file: Option<&Path>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = os_client_config_file {
        v.push(f.to_path_buf());
    }
    v.push(PathBuf::from("clouds.yaml"));
    if let Some(h) = home {
        v.push(h.join(".config/openstack/clouds.yaml"));
    }
    v.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    v
}

/// One cloud of a clouds.yaml file, as written.
#[derive(Debug, Default)]
pub struct RawCloud {
    /// Path of the cloud in the file, `clouds.<name>`.
    pub path: String,
    pub auth_type: Option<String>,
    pub auth: RawCloudAuth,
    pub region_name: Option<String>,
    pub interface: Option<Interface>,
    pub cacert: Option<PathBuf>,
    pub verify: Option<bool>,
}

/// `clouds.<name>.auth`.
#[derive(Debug, Default)]
pub struct RawCloudAuth {
    pub fields: RawAuth,
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub password: Option<Secret>,
    pub application_credential_secret: Option<Secret>,
    pub access_token: Option<Secret>,
    pub token: Option<Secret>,
}

impl RawCloudAuth {
    /// Whether any secret is in the file.
    pub fn has_secret(&self) -> bool {
        self.password.is_some()
            || self.application_credential_secret.is_some()
            || self.access_token.is_some()
            || self.token.is_some()
    }
}

impl Decode for RawCloudAuth {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let fields = RawAuth {
            kind: None,
            auth_url: m.opt::<Url>("auth_url"),
            username: m.opt("username"),
            user_id: m.opt("user_id"),
            user_domain_name: m.opt("user_domain_name"),
            user_domain_id: m.opt("user_domain_id"),
            project_id: m.opt("project_id"),
            project_name: m.opt("project_name"),
            project_domain_name: m.opt("project_domain_name"),
            project_domain_id: m.opt("project_domain_id"),
            application_credential_id: m.opt("application_credential_id"),
            application_credential_name: m.opt("application_credential_name"),
            identity_provider: m.opt("identity_provider"),
            protocol: m.opt("protocol"),
            access_token_file: None,
        };
        let v = RawCloudAuth {
            fields,
            domain_name: m.opt("domain_name"),
            domain_id: m.opt("domain_id"),
            password: m.opt("password"),
            application_credential_secret: m.opt("application_credential_secret"),
            access_token: m.opt("access_token"),
            token: m.opt("token"),
        };
        m.finish(Unknown::Warn);
        Some(v)
    }
}

/// Find and decode cloud `name` in a decoded clouds.yaml document. Reports
/// a missing `clouds` mapping or cloud (with a suggestion) to `d`.
pub fn decode_cloud(root: &Node, name: &str, d: &mut Diag) -> Option<RawCloud> {
    let top = MapReader::new(root, "", d)?;
    let clouds = top.rest().find(|e| e.key == "clouds");
    top.finish(Unknown::Ignore);
    let Some(clouds) = clouds else {
        d.error_hint(
            "",
            "no `clouds` mapping in this file",
            "a clouds.yaml file starts with `clouds:`",
        );
        return None;
    };
    d.record("clouds", clouds.key_mark);
    let Value::Map(entries) = &clouds.value.value else {
        let found = clouds.value.describe();
        d.error_at(
            clouds.value.mark,
            "clouds",
            format!("expected a mapping of clouds, found {found}"),
        );
        return None;
    };
    let Some(entry) = entries.iter().find(|e| e.key == name) else {
        let names: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        d.error_hint(
            "clouds",
            format!("no cloud named `{name}`"),
            cloud_hint(name, &names),
        );
        return None;
    };
    let path = join("clouds", name);
    d.record(&path, entry.key_mark);
    decode_entry(&entry.value, &path, d)
}

fn decode_entry(node: &Node, path: &str, d: &mut Diag) -> Option<RawCloud> {
    let mut m = MapReader::new(node, path, d)?;
    let v = RawCloud {
        path: path.to_string(),
        auth_type: m.opt("auth_type"),
        auth: m.opt("auth").unwrap_or_default(),
        region_name: m.opt("region_name"),
        interface: m.opt("interface"),
        cacert: m.opt("cacert"),
        verify: m.opt("verify"),
    };
    m.finish(Unknown::Ignore);
    Some(v)
}

/// Suggest a cloud name.
pub fn cloud_hint(name: &str, names: &[String]) -> String {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match suggest(name, &refs) {
        Some(s) => format!("did you mean `{s}`?"),
        None if names.is_empty() => "the file defines no clouds".to_string(),
        None => format!("clouds in this file: {}", names.join(", ")),
    }
}
