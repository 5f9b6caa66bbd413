//! Registry bearer tokens, as Harbor core issues them for its distribution
//! registry (Docker's token-auth spec): a JWT signed RS256 whose header
//! carries the signing certificate (`x5c`), which the registry trusts
//! through its `auth.token.rootcertbundle`; claims `iss`, `sub`, `aud`
//! (the registry's `service`), `exp`, `nbf`, `iat`, `jti` and `access`
//! (`[{type, name, actions}]`). Distribution 2.8 checks exactly these.
//!
//! Pure parts: [`TokenIssuer::mint`] (the clock is passed in),
//! [`parse_scope`], [`registry_scope`]. The key and certificate are
//! generated ([`TokenIssuer::generate`]) or read from PEM files.

use std::path::Path;

use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Error;

/// Harbor's registry service name (`service=` of the challenge).
pub const SERVICE: &str = "harbor-registry";
/// Harbor core's token issuer name.
pub const ISSUER: &str = "harbor-token-issuer";
/// Token lifetime, as Harbor's default (`token_expiration`: 30 minutes).
pub const LIFETIME_SECS: i64 = 1800;

/// One granted access entry (`{"type","name","actions"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository (`project/repo`) or `catalog`.
    pub name: String,
    /// `pull`, `push`, `*`, ...
    pub actions: Vec<String>,
}

impl Access {
    /// `repository:<name>:<actions>`.
    pub fn repository(name: &str, actions: &[&str]) -> Access {
        Access {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// Parse one scope, `type:name:action[,action]` (the name may hold `:`,
/// as in `repository:host:5000/a/b:pull`).
pub fn parse_scope(s: &str) -> Option<Access> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split('(').next().unwrap_or(kind);
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The access a registry API request needs to read: `registry:catalog:*`
/// for `/v2/_catalog`, `repository:<name>:pull` for
/// `/v2/<name>/{tags,manifests,blobs}/...`, nothing for `/v2/`.
pub fn registry_scope(path: &str) -> Option<Access> {
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" || rest.starts_with("_catalog?") {
        return Some(Access {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        });
    }
    let rest = rest.split('?').next().unwrap_or(rest);
    ["/tags/", "/manifests/", "/blobs/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .min()
        .map(|i| Access::repository(&rest[..i], &["pull"]))
}

/// The access a registry API request needs, by method: reads (`GET`,
/// `HEAD`) as [`registry_scope`]; writes to a repository's blobs or
/// manifests (`POST`, `PUT`, `PATCH`: uploads, manifest puts) `pull,push`,
/// `DELETE` also `delete` (distribution's action names); nothing for `/v2/`.
pub fn request_access(method: &str, path: &str) -> Option<Access> {
    if method == "GET" || method == "HEAD" {
        return registry_scope(path);
    }
    let rest = path.strip_prefix("/v2/")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    let i = ["/blobs/", "/manifests/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .min()?;
    let actions: &[&str] = if method == "DELETE" {
        &["pull", "push", "delete"]
    } else {
        &["pull", "push"]
    };
    Some(Access::repository(&rest[..i], actions))
}

/// Signs registry tokens.
pub struct TokenIssuer {
    key: PKey<Private>,
    cert: X509,
    x5c: String,
    /// `iss`, which the registry's `auth.token.issuer` must name.
    pub issuer: String,
    /// `aud`, the registry's `auth.token.service`.
    pub service: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

fn tls(context: &str) -> impl FnOnce(openssl::error::ErrorStack) -> Error + '_ {
    move |source| Error::Tls {
        context: context.to_string(),
        source,
    }
}

impl TokenIssuer {
    /// A new RSA 2048 key and a self-signed certificate (`CN=<issuer>`,
    /// ten years), with Harbor's issuer and service names.
    pub fn generate() -> Result<TokenIssuer, Error> {
        let ctx = "generating the token signing key";
        let key = PKey::from_rsa(Rsa::generate(2048).map_err(tls(ctx))?).map_err(tls(ctx))?;
        let mut name = X509NameBuilder::new().map_err(tls(ctx))?;
        name.append_entry_by_text("CN", ISSUER).map_err(tls(ctx))?;
        let name = name.build();
        let mut b = X509Builder::new().map_err(tls(ctx))?;
        b.set_version(2).map_err(tls(ctx))?;
        let mut serial = BigNum::new().map_err(tls(ctx))?;
        serial
            .rand(63, MsbOption::MAYBE_ZERO, false)
            .map_err(tls(ctx))?;
        let serial = serial.to_asn1_integer().map_err(tls(ctx))?;
        b.set_serial_number(&serial).map_err(tls(ctx))?;
        b.set_subject_name(&name).map_err(tls(ctx))?;
        b.set_issuer_name(&name).map_err(tls(ctx))?;
        let now = chrono::Utc::now().timestamp();
        let not_before = Asn1Time::from_unix(now - 3600).map_err(tls(ctx))?;
        let not_after = Asn1Time::days_from_now(3650).map_err(tls(ctx))?;
        b.set_not_before(&not_before).map_err(tls(ctx))?;
        b.set_not_after(&not_after).map_err(tls(ctx))?;
        b.set_pubkey(&key).map_err(tls(ctx))?;
        b.sign(&key, MessageDigest::sha256()).map_err(tls(ctx))?;
        Self::new(key, b.build())
    }

    /// From a PEM private key (RSA) and its PEM certificate.
    pub fn from_files(key: &Path, cert: &Path) -> Result<TokenIssuer, Error> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
        };
        let kctx = key.display().to_string();
        let cctx = cert.display().to_string();
        let k = PKey::private_key_from_pem(&read(key)?).map_err(tls(&kctx))?;
        let c = X509::from_pem(&read(cert)?).map_err(tls(&cctx))?;
        let matches = c
            .public_key()
            .map(|p| p.public_eq(&k))
            .map_err(tls(&cctx))?;
        if !matches {
            return Err(Error::bad(
                "--token-cert",
                cctx,
                "the certificate is not for --token-key",
            ));
        }
        Self::new(k, c)
    }

    fn new(key: PKey<Private>, cert: X509) -> Result<TokenIssuer, Error> {
        if key.rsa().is_err() {
            return Err(Error::bad(
                "--token-key",
                "(key)",
                "only RSA keys are supported (RS256)",
            ));
        }
        let der = cert
            .to_der()
            .map_err(tls("encoding the token certificate"))?;
        Ok(TokenIssuer {
            key,
            cert,
            x5c: base64::engine::general_purpose::STANDARD.encode(der),
            issuer: ISSUER.into(),
            service: SERVICE.into(),
        })
    }

    /// The certificate, PEM: the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap_or_default()
    }

    /// The private key, PKCS#8 PEM (to hand the same issuer to another
    /// process; write it 0600).
    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap_or_default()
    }

    /// A token for `subject` granting `access`, issued at `now` (Unix
    /// seconds), valid [`LIFETIME_SECS`].
    pub fn mint(&self, subject: &str, access: &[Access], now: i64) -> Result<String, Error> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let jti = {
            let mut b = [0u8; 16];
            openssl::rand::rand_bytes(&mut b).map_err(tls("random jti"))?;
            hex::encode(b)
        };
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + LIFETIME_SECS,
            "nbf": now - 10,
            "iat": now,
            "jti": jti,
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let ctx = "signing a registry token";
        let mut s = Signer::new(MessageDigest::sha256(), &self.key).map_err(tls(ctx))?;
        s.update(signing_input.as_bytes()).map_err(tls(ctx))?;
        let sig = s.sign_to_vec().map_err(tls(ctx))?;
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scope("repository:egi_vm_images/ubuntu:pull,push"),
            Some(Access::repository(
                "egi_vm_images/ubuntu",
                &["pull", "push"]
            ))
        );
        assert_eq!(
            parse_scope("repository:localhost:5000/a/b:pull")
                .unwrap()
                .name,
            "localhost:5000/a/b"
        );
        assert_eq!(parse_scope("registry:catalog:*").unwrap().kind, "registry");
        assert_eq!(parse_scope("nonsense"), None);
        assert_eq!(parse_scope("repository::pull"), None);
    }

    #[test]
    fn registry_paths_need_scopes() {
        assert_eq!(
            registry_scope("/v2/_catalog?n=1000&last=").unwrap().name,
            "catalog"
        );
        assert_eq!(
            registry_scope("/v2/a/b/manifests/sha256:00"),
            Some(Access::repository("a/b", &["pull"]))
        );
        assert_eq!(
            registry_scope("/v2/a/tags/list"),
            Some(Access::repository("a", &["pull"]))
        );
        assert_eq!(registry_scope("/v2/"), None);
    }

    #[test]
    fn writes_need_push() {
        assert_eq!(
            request_access("HEAD", "/v2/a/b/blobs/sha256:00"),
            Some(Access::repository("a/b", &["pull"]))
        );
        assert_eq!(
            request_access("POST", "/v2/a/b/blobs/uploads/"),
            Some(Access::repository("a/b", &["pull", "push"]))
        );
        assert_eq!(
            request_access("PUT", "/v2/a/blobs/uploads/u-1?digest=sha256:00"),
            Some(Access::repository("a", &["pull", "push"]))
        );
        assert_eq!(
            request_access("DELETE", "/v2/a/manifests/sha256:00"),
            Some(Access::repository("a", &["pull", "push", "delete"]))
        );
        assert_eq!(request_access("GET", "/v2/"), None);
        assert_eq!(request_access("POST", "/v2/"), None);
    }

    #[test]
    fn tokens_verify_with_the_certificate() {
        let t = TokenIssuer::generate().unwrap();
        let jwt = t
            .mint(
                "robot$x",
                &[Access::repository("p/r", &["pull"])],
                1_000_000,
            )
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["aud"], SERVICE);
        assert_eq!(claims["exp"], 1_000_000 + LIFETIME_SECS);
        assert_eq!(claims["access"][0]["actions"][0], "pull");
        let der = base64::engine::general_purpose::STANDARD
            .decode(header["x5c"][0].as_str().unwrap())
            .unwrap();
        let cert = X509::from_der(&der).unwrap();
        let public = cert.public_key().unwrap();
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &public).unwrap();
        v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(v.verify(&dec(parts[2])).unwrap());
    }
}
