//! `ams`: the ARGO Messaging Service that `appliance accounting send`
//! publishes to (issue #5), with the keys of `ssmsend`'s `sender.cfg`
//! (spec `accounting.md` §4.1) under YAML names:
//!
//! | key | sender.cfg | default |
//! | --- | --- | --- |
//! | `host` | `[broker] host` | `msg.argo.grnet.gr` |
//! | `port`, `authn-port` | (443, 8443 fixed) | 443, 8443 |
//! | `project` | `[messaging] ams_project` | `accounting` |
//! | `topic` | `[messaging] destination` | `eu-egi-cloud-accounting` |
//! | `certificate`, `key`, `capath` | `[certificates] ...` | `paths.host-cert`, `paths.host-key`, `paths.ca-dir` |
//! | `server-cert`, `verify-server-cert` | `[certificates] ...` | none (no encryption), `true` |
//! | `path` | `[messaging] path` | `paths.spool` |
//! | `quarantine` | — | `paths.state`/`accounting/quarantine` |
//! | `timeout-seconds`, `retries`, `backoff-seconds` | — | 10, 3, 5 |
//! | `sender-cfg` | the legacy file itself | none |
//!
//! The static token (`[messaging] token`) is a secret: it goes in the
//! secrets file as `ams: {token: ...}`; without it the host certificate
//! gets a token from the AMS authn service (`authx509`).
//!
//! With `sender-cfg`, a legacy `sender.cfg` supplies every key not written
//! here (read at send time by `messaging::settings`, which reports its
//! problems as `FILE:LINE`); keys written here win.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::decode::{join, Decode, Diag, MapReader, Unknown};
use crate::config::format::Node;
use crate::config::validate::{absolute, SecretsState};
use crate::config::Loaded;
use crate::secret::Secret;

/// Default AMS host (production).
pub const DEFAULT_HOST: &str = "msg.argo.grnet.gr";
/// Default AMS project for EGI accounting.
pub const DEFAULT_PROJECT: &str = "accounting";
/// Default topic for cloud accounting.
pub const DEFAULT_TOPIC: &str = "eu-egi-cloud-accounting";

/// The section as written.
#[derive(Debug, Default)]
pub struct Raw {
    host: Option<String>,
    port: Option<u32>,
    authn_port: Option<u32>,
    project: Option<String>,
    topic: Option<String>,
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    capath: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    server_cert: Option<PathBuf>,
    verify_server_cert: Option<bool>,
    path: Option<PathBuf>,
    quarantine: Option<PathBuf>,
    timeout_seconds: Option<u64>,
    retries: Option<u32>,
    backoff_seconds: Option<u64>,
    sender_cfg: Option<PathBuf>,
}

impl Decode for Raw {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        m.secrets_section("ams");
        let raw = Raw {
            host: m.opt("host"),
            port: m.opt("port"),
            authn_port: m.opt("authn-port"),
            project: m.opt("project"),
            topic: m.opt("topic"),
            certificate: m.opt("certificate"),
            key: m.opt("key"),
            capath: m.opt("capath"),
            ca_file: m.opt("ca-file"),
            server_cert: m.opt("server-cert"),
            verify_server_cert: m.opt("verify-server-cert"),
            path: m.opt("path"),
            quarantine: m.opt("quarantine"),
            timeout_seconds: m.opt("timeout-seconds"),
            retries: m.opt("retries"),
            backoff_seconds: m.opt("backoff-seconds"),
            sender_cfg: m.opt("sender-cfg"),
        };
        m.finish(Unknown::Error);
        Some(raw)
    }
}

/// The validated section. `None` means "not set here": the legacy
/// `sender-cfg` value, else the documented default (the `paths` value for
/// files and directories).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {
    /// AMS host name.
    pub host: Option<String>,
    /// API port.
    pub port: u16,
    /// authn (`authx509`) port.
    pub authn_port: u16,
    /// AMS project.
    pub project: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Host certificate (default `paths.host-cert`).
    pub certificate: Option<PathBuf>,
    /// Host key (default `paths.host-key`).
    pub key: Option<PathBuf>,
    /// IGTF CA directory (default `paths.ca-dir`).
    pub capath: Option<PathBuf>,
    /// Extra CA bundle for the broker's TLS certificate.
    pub ca_file: Option<PathBuf>,
    /// Encrypt to this certificate (APEL server's); none: no encryption.
    pub server_cert: Option<PathBuf>,
    /// Verify `server-cert` against `capath`.
    pub verify_server_cert: Option<bool>,
    /// The dirq spool (default `paths.spool`).
    pub path: Option<PathBuf>,
    /// Where refused messages go (default `<paths.state>/accounting/quarantine`).
    pub quarantine: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout_seconds: u64,
    /// Retries on transient failures.
    pub retries: u32,
    /// First delay between retries (doubles, capped at 60 s).
    pub backoff_seconds: u64,
    /// A legacy `sender.cfg` supplying the keys not set here.
    pub sender_cfg: Option<PathBuf>,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            host: Some(DEFAULT_HOST.into()),
            port: 443,
            authn_port: 8443,
            project: Some(DEFAULT_PROJECT.into()),
            topic: Some(DEFAULT_TOPIC.into()),
            certificate: None,
            key: None,
            capath: None,
            ca_file: None,
            server_cert: None,
            verify_server_cert: None,
            path: None,
            quarantine: None,
            timeout_seconds: 10,
            retries: 3,
            backoff_seconds: 5,
            sender_cfg: None,
        }
    }
}

/// AMS resource names (`[A-Za-z0-9_.-]+`).
pub fn valid_ams_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// A host name as `sender.cfg` writes it: no scheme, port or path.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Check the section; problems go to `d` under the `ams` key path.
pub fn validate(raw: Option<Raw>, d: &mut Diag) -> Section {
    let Some(raw) = raw else {
        return Section::default();
    };
    let p = |k: &str| join("ams", k);
    let legacy = raw.sender_cfg.is_some();
    let defaulted =
        |v: Option<String>, default: &str| v.or_else(|| (!legacy).then(|| default.to_string()));
    if let Some(h) = raw.host.as_deref().filter(|h| !valid_host(h)) {
        d.error_hint(
            &p("host"),
            format!("`{h}` is not a host name"),
            "write the host name only, e.g. `msg.argo.grnet.gr` (ports are `port` and `authn-port`)",
        );
    }
    for (key, v) in [("project", &raw.project), ("topic", &raw.topic)] {
        if let Some(v) = v.as_deref().filter(|v| !valid_ams_name(v)) {
            d.error_hint(
                &p(key),
                format!("`{v}` is not an AMS name"),
                "AMS names use letters, digits, `_`, `-` and `.`",
            );
        }
    }
    let port = |d: &mut Diag, key: &str, v: Option<u32>, default: u16| match v {
        None => default,
        Some(v) if (1..=65535).contains(&v) => v as u16,
        Some(v) => {
            d.error(&p(key), format!("{v} is out of range (1 to 65535)"));
            default
        }
    };
    let port_v = port(d, "port", raw.port, 443);
    let authn_port = port(d, "authn-port", raw.authn_port, 8443);
    let timeout_seconds = raw.timeout_seconds.unwrap_or(10);
    if !(1..=600).contains(&timeout_seconds) {
        d.error(
            &p("timeout-seconds"),
            format!("{timeout_seconds} is out of range (1 to 600 seconds)"),
        );
    }
    let retries = raw.retries.unwrap_or(3);
    if retries > 20 {
        d.error(
            &p("retries"),
            format!("{retries} is out of range (0 to 20)"),
        );
    }
    let backoff_seconds = raw.backoff_seconds.unwrap_or(5);
    if backoff_seconds > 600 {
        d.error(
            &p("backoff-seconds"),
            format!("{backoff_seconds} is out of range (0 to 600 seconds)"),
        );
    }
    Section {
        host: defaulted(raw.host, DEFAULT_HOST),
        port: port_v,
        authn_port,
        project: defaulted(raw.project, DEFAULT_PROJECT),
        topic: defaulted(raw.topic, DEFAULT_TOPIC),
        certificate: absolute(d, &p("certificate"), raw.certificate),
        key: absolute(d, &p("key"), raw.key),
        capath: absolute(d, &p("capath"), raw.capath),
        ca_file: absolute(d, &p("ca-file"), raw.ca_file),
        server_cert: absolute(d, &p("server-cert"), raw.server_cert),
        verify_server_cert: raw.verify_server_cert,
        path: absolute(d, &p("path"), raw.path),
        quarantine: absolute(d, &p("quarantine"), raw.quarantine),
        timeout_seconds,
        retries,
        backoff_seconds,
        sender_cfg: absolute(d, &p("sender-cfg"), raw.sender_cfg),
    }
}

impl Loaded {
    /// The static AMS token from the secrets file (`ams.token`), if any.
    pub fn ams_token(&self) -> Option<Secret> {
        match &self.secrets {
            SecretsState::Present(sf) => sf.ams.token.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::format::parse;

    fn run(text: &str) -> (Section, Vec<String>) {
        let mut d = Diag::new("a.yaml");
        d.secrets_file = Some("/etc/fedcloud-appliance/secrets.yaml".into());
        let node = parse(text).unwrap();
        let raw = Raw::decode(&node, "ams", &mut d);
        let s = validate(raw, &mut d);
        (s, d.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_and_values() {
        let (s, errs) = run("host: msg-devel.argo.grnet.gr\ntopic: t1\nretries: 0\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.host.as_deref(), Some("msg-devel.argo.grnet.gr"));
        assert_eq!(s.project.as_deref(), Some("accounting"));
        assert_eq!(s.topic.as_deref(), Some("t1"));
        assert_eq!((s.port, s.authn_port, s.retries), (443, 8443, 0));
        // with a legacy file, unset keys stay unset (the file supplies them)
        let (s, errs) = run("sender-cfg: /etc/apel/sender.cfg\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!((s.host, s.project, s.topic), (None, None, None));
    }

    #[test]
    fn every_problem_and_no_inline_token() {
        let (_, errs) = run(
            "host: https://msg.argo.grnet.gr\nport: 70000\ntopic: bad topic\ncertificate: hostcert.pem\ntoken: abc123\ntimeout-seconds: 0\n",
        );
        let all = errs.join("\n");
        assert!(
            all.contains("a.yaml:1:1: ams.host: `https://msg.argo.grnet.gr` is not a host name"),
            "{all}"
        );
        assert!(all.contains("ams.port: 70000 is out of range"), "{all}");
        assert!(
            all.contains("ams.topic: `bad topic` is not an AMS name"),
            "{all}"
        );
        assert!(
            all.contains("ams.certificate: `hostcert.pem` is not an absolute path"),
            "{all}"
        );
        assert!(all.contains("ams.token: secrets are not allowed in this file; move it to the secrets file /etc/fedcloud-appliance/secrets.yaml (mode 0600) under `ams.token`"), "{all}");
        assert!(
            all.contains("ams.timeout-seconds: 0 is out of range"),
            "{all}"
        );
        assert!(!all.contains("abc123"));
    }
}
