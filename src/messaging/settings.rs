//! The effective sender settings: the `ams` section, then a legacy
//! `sender.cfg` for what the section leaves unset, then the defaults (the
//! `paths` values for files and directories). Pure: the caller reads
//! `sender.cfg` and passes it in.

use std::path::PathBuf;
use std::time::Duration;

use super::ams::{Endpoint, Limits, Trust};
use super::legacy::SenderCfg;
use crate::config::sections::ams::{Section, DEFAULT_HOST, DEFAULT_PROJECT, DEFAULT_TOPIC};
use crate::config::Paths;
use crate::secret::Secret;

/// Where the token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// `ams.token` in the secrets file.
    SecretsFile,
    /// `[messaging] token` in the legacy `sender.cfg`.
    SenderCfg,
    /// `authx509` with the host certificate.
    HostCertificate,
}

/// Everything `accounting send` and `accounting status` need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to publish.
    pub endpoint: Endpoint,
    /// Timeouts and retries.
    pub limits: Limits,
    /// TLS trust for the broker.
    pub trust: Trust,
    /// Host certificate.
    pub certificate: PathBuf,
    /// Host key.
    pub key: PathBuf,
    /// IGTF CA directory.
    pub capath: PathBuf,
    /// Encrypt to this certificate.
    pub server_cert: Option<PathBuf>,
    /// Verify `server_cert` against `capath`.
    pub verify_server_cert: bool,
    /// The dirq spool.
    pub spool: PathBuf,
    /// The quarantine directory.
    pub quarantine: PathBuf,
    /// Where the last run is recorded (`accounting status`).
    pub state_file: PathBuf,
    /// The run lock of `accounting send`.
    pub lock_file: PathBuf,
    /// The element `send` is about to lock ([`super::send::Holding`]).
    pub holding_file: PathBuf,
    /// The static token, if any.
    pub token: Option<Secret>,
    /// Where the token comes from.
    pub token_source: TokenSource,
}

/// The effective settings of a loaded configuration: its `ams` section, the
/// legacy `sender.cfg` it names (read and parsed here), the defaults. A
/// problem with that file is the operator's to fix (exit 2).
pub fn from_config(loaded: &crate::config::Loaded) -> Result<Settings, crate::exit::UsageError> {
    use crate::exit::UsageError;
    let section = &loaded.config.ams;
    let legacy = match &section.sender_cfg {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!(
                    "{}: cannot read the legacy sender.cfg named by `ams.sender-cfg`: {e}",
                    file.display()
                ))
            })?;
            Some(SenderCfg::parse(file, &text).map_err(|e| UsageError(e.to_string()))?)
        }
        None => None,
    };
    Ok(resolve(
        section,
        &loaded.config.paths,
        legacy.as_ref(),
        loaded.ams_token(),
    ))
}

/// Combine the section, the legacy file and the defaults.
pub fn resolve(
    section: &Section,
    paths: &Paths,
    legacy: Option<&SenderCfg>,
    secrets_token: Option<Secret>,
) -> Settings {
    let l = legacy.cloned().unwrap_or_default();
    let pick = |own: &Option<String>, old: Option<String>, default: &str| {
        own.clone().or(old).unwrap_or_else(|| default.to_string())
    };
    let (token, token_source) = match (secrets_token, l.token.clone()) {
        (Some(t), _) => (Some(t), TokenSource::SecretsFile),
        (None, Some(t)) => (Some(t), TokenSource::SenderCfg),
        (None, None) => (None, TokenSource::HostCertificate),
    };
    let capath = section
        .capath
        .clone()
        .or(l.capath)
        .unwrap_or_else(|| paths.ca_dir.clone());
    let accounting_state = paths.state.join("accounting");
    Settings {
        endpoint: Endpoint {
            host: pick(&section.host, l.host, DEFAULT_HOST),
            port: section.port,
            authn_port: section.authn_port,
            project: pick(&section.project, l.project, DEFAULT_PROJECT),
            topic: pick(&section.topic, l.topic, DEFAULT_TOPIC),
        },
        limits: Limits {
            timeout: Duration::from_secs(section.timeout_seconds),
            retries: section.retries,
            backoff: Duration::from_secs(section.backoff_seconds),
            backoff_cap: Duration::from_secs(60),
        },
        trust: Trust {
            ca_dir: Some(capath.clone()),
            ca_file: section.ca_file.clone(),
        },
        certificate: section
            .certificate
            .clone()
            .or(l.certificate)
            .unwrap_or_else(|| paths.host_cert.clone()),
        key: section
            .key
            .clone()
            .or(l.key)
            .unwrap_or_else(|| paths.host_key.clone()),
        capath,
        server_cert: section.server_cert.clone().or(l.server_cert),
        verify_server_cert: section
            .verify_server_cert
            .or(l.verify_server_cert)
            .unwrap_or(true),
        spool: section
            .path
            .clone()
            .or(l.path)
            .unwrap_or_else(|| paths.spool.clone()),
        quarantine: section
            .quarantine
            .clone()
            .unwrap_or_else(|| accounting_state.join("quarantine")),
        state_file: accounting_state.join("send.json"),
        lock_file: paths.state.join("run").join("accounting-send.lock"),
        holding_file: accounting_state.join("send.holding"),
        token,
        token_source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn section_wins_then_legacy_then_defaults() {
        let legacy = SenderCfg::parse(
            Path::new("/etc/apel/sender.cfg"),
            "[sender]\nprotocol: AMS\n[broker]\nhost: legacy.example.org\n[messaging]\ndestination: old-topic\ntoken: legacy-token\npath: /srv/spool\n",
        )
        .unwrap();
        let section = Section {
            host: None,
            project: None,
            topic: Some("new-topic".into()),
            sender_cfg: Some("/etc/apel/sender.cfg".into()),
            ..Section::default()
        };
        let s = resolve(&section, &Paths::default(), Some(&legacy), None);
        assert_eq!(s.endpoint.host, "legacy.example.org");
        assert_eq!(s.endpoint.project, "accounting");
        assert_eq!(s.endpoint.topic, "new-topic");
        assert_eq!(s.spool, Path::new("/srv/spool"));
        assert_eq!(s.certificate, Path::new("/etc/grid-security/hostcert.pem"));
        assert_eq!(s.token_source, TokenSource::SenderCfg);
        assert_eq!(
            s.quarantine,
            Path::new("/var/lib/fedcloud-appliance/accounting/quarantine")
        );
        let s = resolve(
            &section,
            &Paths::default(),
            Some(&legacy),
            Some(Secret::new("x")),
        );
        assert_eq!(s.token_source, TokenSource::SecretsFile);
        let s = resolve(&Section::default(), &Paths::default(), None, None);
        assert_eq!(s.token_source, TokenSource::HostCertificate);
        assert_eq!(s.endpoint.host, "msg.argo.grnet.gr");
        assert!(s.verify_server_cert);
    }
}
