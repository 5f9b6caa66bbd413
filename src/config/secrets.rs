//! The secrets file (`secrets-file`, mode 0600):
//!
//! ```yaml
//! openstack:                 # the site-wide credential (openstack.auth or clouds.yaml)
//!   password: ...            # or application-credential-secret, access-token, token
//! vos:
//!   vo.example.eu:           # a VO's own credential (vos[].auth)
//!     application-credential-secret: ...
//! ams:
//!   token: ...               # a static AMS token (else the host certificate gets one)
//! images:
//!   <subscription name>:
//!     token: ...             # image-list token (HTTP Basic `token:x-oauth-basic`)
//!     password: ...          # or: a harbor subscription's robot password
//! ```
//!
//! Values are held as [`Secret`] from the moment they are decoded; errors
//! about this file never quote a value.

use std::collections::BTreeMap;

use super::decode::{join, Decode, Diag, MapReader, Unknown};
use super::format::{Node, Value};
use super::model::AuthType;
use crate::secret::Secret;

/// The secrets for one credential.
#[derive(Debug, Clone, Default)]
pub struct SecretSet {
    /// `password`.
    pub password: Option<Secret>,
    /// `application-credential-secret`.
    pub application_credential_secret: Option<Secret>,
    /// `access-token`.
    pub access_token: Option<Secret>,
    /// `token`.
    pub token: Option<Secret>,
}

impl SecretSet {
    /// The secret a method needs.
    pub fn get(&self, kind: AuthType) -> Option<&Secret> {
        match kind {
            AuthType::Password => self.password.as_ref(),
            AuthType::ApplicationCredential => self.application_credential_secret.as_ref(),
            AuthType::OidcAccessToken => self.access_token.as_ref(),
            AuthType::Token => self.token.as_ref(),
        }
    }

    /// Names of the secrets that are set.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for kind in [
            AuthType::Password,
            AuthType::ApplicationCredential,
            AuthType::OidcAccessToken,
            AuthType::Token,
        ] {
            if self.get(kind).is_some() {
                v.push(kind.secret_key());
            }
        }
        v
    }
}

/// The decoded secrets file.
#[derive(Debug, Clone, Default)]
pub struct SecretsFile {
    /// Under `openstack`.
    pub openstack: SecretSet,
    /// Under `vos.<name>`.
    pub vos: BTreeMap<String, SecretSet>,
    /// Under `ams`.
    pub ams: AmsSecrets,
    /// Under `images.<subscription name>` (`token`: an image-list token).
    pub images: BTreeMap<String, SecretSet>,
}

/// The AMS secrets (`ams.token`).
#[derive(Debug, Clone, Default)]
pub struct AmsSecrets {
    /// A static AMS token (`sender.cfg` `[messaging] token`).
    pub token: Option<Secret>,
}

impl Decode for AmsSecrets {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = AmsSecrets {
            token: m.opt("token"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

/// A secret value: any non-empty scalar, kept as written. Problems are
/// reported without quoting the value.
impl Decode for Secret {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        match &node.value {
            Value::Scalar(s) if !s.text.is_empty() => Some(Secret::new(s.text.clone())),
            _ => {
                d.error_at(node.mark, path, "expected the secret as a string");
                None
            }
        }
    }
}

impl Decode for SecretSet {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = SecretSet {
            password: m.opt("password"),
            application_credential_secret: m.opt("application-credential-secret"),
            access_token: m.opt("access-token"),
            token: m.opt("token"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for SecretsFile {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let openstack = m.opt("openstack").unwrap_or_default();
        let vos = m.opt_with("vos", decode_vos).unwrap_or_default();
        let ams = m.opt("ams").unwrap_or_default();
        let images = m.opt_with("images", decode_vos).unwrap_or_default();
        m.finish(Unknown::Error);
        Some(SecretsFile {
            openstack,
            vos,
            ams,
            images,
        })
    }
}

fn decode_vos(node: &Node, path: &str, d: &mut Diag) -> Option<BTreeMap<String, SecretSet>> {
    let m = MapReader::new(node, path, d)?;
    let entries: Vec<_> = m.rest().collect();
    m.finish(Unknown::Ignore);
    let mut out = BTreeMap::new();
    for e in entries {
        let p = join(path, &e.key);
        d.record(&p, e.key_mark);
        if let Some(set) = SecretSet::decode(&e.value, &p, d) {
            out.insert(e.key.clone(), set);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::format::parse;
    use super::*;

    #[test]
    fn decodes_and_never_quotes_values() {
        let text = "openstack:\n  password: hunter2\nvos:\n  ops:\n    token: 12345\n    pasword: leaked?\n  bad: [x]\n";
        let mut d = Diag::new("s.yaml");
        let s = SecretsFile::decode(&parse(text).unwrap(), "", &mut d).unwrap();
        assert_eq!(s.openstack.password.as_ref().unwrap().expose(), "hunter2");
        assert_eq!(s.vos["ops"].token.as_ref().unwrap().expose(), "12345");
        let errs: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "s.yaml:6:5: vos.ops.pasword: unknown key; did you mean `password`?",
                "s.yaml:7:8: vos.bad: expected a mapping, found a list",
            ]
        );
        assert!(!errs.join("\n").contains("leaked"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
