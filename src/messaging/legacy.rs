//! `ssmsend`'s `sender.cfg` (spec `accounting.md` §4.1), read so a site can
//! point `ams.sender-cfg` at the file it already has. Parsing is pure: the
//! caller reads the file.
//!
//! The syntax is Python `ConfigParser`'s as SSM uses it: `[section]`
//! headers, `key: value` or `key = value`, keys case-insensitive, full-line
//! comments with `#` or `;`, indented continuation lines, no inline
//! comments. Only what the sender uses is taken; `[logging]` and the STOMP
//! keys are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::legacy::ini::{self, Dialect, Mode};
use crate::secret::Secret;

/// A problem in `sender.cfg`, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct LegacyError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// What `sender.cfg` says, each value with its line.
#[derive(Debug, Default, Clone)]
pub struct SenderCfg {
    /// The file, as named to the operator.
    pub file: PathBuf,
    /// `[broker] host`.
    pub host: Option<String>,
    /// `[certificates] certificate`.
    pub certificate: Option<PathBuf>,
    /// `[certificates] key`.
    pub key: Option<PathBuf>,
    /// `[certificates] capath`.
    pub capath: Option<PathBuf>,
    /// `[certificates] server_cert`.
    pub server_cert: Option<PathBuf>,
    /// `[certificates] verify_server_cert`.
    pub verify_server_cert: Option<bool>,
    /// `[messaging] ams_project`.
    pub project: Option<String>,
    /// `[messaging] destination`.
    pub topic: Option<String>,
    /// `[messaging] token` (a secret kept in a legacy file).
    pub token: Option<Secret>,
    /// `[messaging] path`.
    pub path: Option<PathBuf>,
}

type Values = BTreeMap<(String, String), (String, usize)>;

/// The file as ssmsend's Python `ConfigParser` reads it (strict: a file
/// it rejects is rejected here too; `appliance import-legacy` reads the
/// damaged ones leniently), last value of a key winning.
fn parse_ini(file: &Path, text: &str) -> Result<Values, LegacyError> {
    let ini = ini::parse(text, Dialect::Python, Mode::Strict).map_err(|e| LegacyError {
        file: file.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    Ok(ini
        .entries
        .into_iter()
        .map(|e| ((e.section, e.key), (e.value, e.line)))
        .collect())
}

impl SenderCfg {
    /// Parse `text`, the content of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<SenderCfg, LegacyError> {
        let values = parse_ini(file, text)?;
        let err = |line: usize, message: String| LegacyError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let get = |s: &str, k: &str| {
            values
                .get(&(s.to_string(), k.to_string()))
                .filter(|(v, _)| !v.is_empty())
                .map(|(v, l)| (v.clone(), *l))
        };
        match get("sender", "protocol") {
            Some((p, _)) if p.eq_ignore_ascii_case("AMS") => {}
            Some((p, l)) => {
                return Err(err(
                    l,
                    format!("protocol `{p}` is not supported: the appliance sends to AMS only (set `protocol: AMS`)"),
                ))
            }
            None => {
                return Err(err(
                    0,
                    "`[sender] protocol` is missing (ssmsend then uses STOMP): the appliance sends to AMS only; add `protocol: AMS`".into(),
                ))
            }
        }
        if let Some((t, l)) = get("messaging", "path_type") {
            if !t.eq_ignore_ascii_case("dirq") {
                return Err(err(
                    l,
                    format!("path_type `{t}` is not supported: the appliance reads a dirq spool (`path_type: dirq`)"),
                ));
            }
        }
        let path = |s: &str, k: &str| -> Result<Option<PathBuf>, LegacyError> {
            match get(s, k) {
                None => Ok(None),
                Some((v, l)) if !v.starts_with('/') => {
                    Err(err(l, format!("`{k}` must be an absolute path, not `{v}`")))
                }
                Some((v, _)) => Ok(Some(PathBuf::from(v))),
            }
        };
        let verify_server_cert = match get("certificates", "verify_server_cert") {
            None => None,
            Some((v, l)) => Some(match v.to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => true,
                "0" | "no" | "false" | "off" => false,
                _ => return Err(err(l, format!("verify_server_cert `{v}` is not a boolean"))),
            }),
        };
        let host = match get("broker", "host") {
            Some((h, l)) if !crate::config::sections::ams::valid_host(&h) => {
                return Err(err(l, format!("host `{h}` is not a host name")))
            }
            h => h.map(|(h, _)| h),
        };
        Ok(SenderCfg {
            file: file.to_path_buf(),
            host,
            certificate: path("certificates", "certificate")?,
            key: path("certificates", "key")?,
            capath: path("certificates", "capath")?,
            server_cert: path("certificates", "server_cert")?,
            verify_server_cert,
            project: get("messaging", "ams_project").map(|(v, _)| v),
            topic: get("messaging", "destination").map(|(v, _)| v),
            token: get("messaging", "token").map(|(v, _)| Secret::new(v)),
            path: path("messaging", "path")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
[sender]
# Either 'STOMP' for STOMP message brokers or 'AMS' for Argo Messaging Service
protocol: AMS

[broker]
host: msg-devel.argo.grnet.gr
port: 443
use_ssl: true

[certificates]
certificate: /etc/grid-security/hostcert.pem
key = /etc/grid-security/hostkey.pem
capath: /etc/grid-security/certificates
#server_cert: /etc/grid-security/servercert.pem
Verify_Server_Cert: false

[messaging]
ams_project: accounting
destination: eu-egi-cloud-accounting
token: t0ken-value
path: /var/spool/apel/outgoing/openstack
path_type: dirq

[logging]
logfile: /var/log/apel/ssmsend.log
level: INFO
console: true
";

    #[test]
    fn reads_the_sample() {
        let c = SenderCfg::parse(Path::new("/etc/apel/sender.cfg"), SAMPLE).unwrap();
        assert_eq!(c.host.as_deref(), Some("msg-devel.argo.grnet.gr"));
        assert_eq!(
            c.key.as_deref(),
            Some(Path::new("/etc/grid-security/hostkey.pem"))
        );
        assert_eq!(c.server_cert, None);
        assert_eq!(c.verify_server_cert, Some(false));
        assert_eq!(c.project.as_deref(), Some("accounting"));
        assert_eq!(c.topic.as_deref(), Some("eu-egi-cloud-accounting"));
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("t0ken-value"));
        assert_eq!(
            c.path.as_deref(),
            Some(Path::new("/var/spool/apel/outgoing/openstack"))
        );
        assert!(!format!("{c:?}").contains("t0ken-value"));
    }

    #[test]
    fn errors_name_the_line() {
        let f = Path::new("/etc/apel/sender.cfg");
        let e =
            SenderCfg::parse(f, &SAMPLE.replace("protocol: AMS", "protocol: STOMP")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("/etc/apel/sender.cfg:3: protocol `STOMP` is not supported"),
            "{e}"
        );
        let e = SenderCfg::parse(
            f,
            &SAMPLE.replace("path_type: dirq", "path_type: directory"),
        )
        .unwrap_err();
        assert_eq!(e.line, 22);
        let e = SenderCfg::parse(f, &SAMPLE.replace("key = /etc", "key = etc")).unwrap_err();
        assert_eq!(e.line, 12);
        let e = SenderCfg::parse(f, "[sender\nprotocol: AMS\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = SenderCfg::parse(f, "host: x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = SenderCfg::parse(f, "[broker]\nhost: x\n").unwrap_err();
        assert!(e.message.contains("protocol"), "{e}");
    }
}
