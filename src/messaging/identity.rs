//! The host certificate and key that sign messages and authenticate to
//! AMS, and `ssmsend`'s pre-flight checks on them (spec `accounting.md`
//! §4.2): the key matches the certificate, the certificate does not expire
//! within 24 hours, and its DN in the slash form GOCDB needs for the
//! `eu.egi.cloud.accounting` service (`/DC=org/DC=example/CN=host`).
//!
//! Reading the files is [`HostCredential::load`]; the checks take the
//! current time as an argument.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameRef, X509};

/// How long the certificate must still be valid (`openssl x509 -checkend 86400`).
pub const MIN_VALIDITY: Duration = Duration::from_secs(86_400);

/// What is wrong with the host certificate, key or server certificate.
/// Every variant names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read.
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        /// "host certificate", "host key", "server certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not PEM of the expected kind (the content is never quoted).
    #[error("the {what} {path} is not a PEM {expected}: {source}")]
    Parse {
        /// "host certificate", ...
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        expected: &'static str,
        /// The OpenSSL errors.
        source: openssl::error::ErrorStack,
    },
    /// The key is not the certificate's.
    #[error("the host key {key} does not match the host certificate {cert}; install the key that belongs to this certificate")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Expired, or expiring within [`MIN_VALIDITY`].
    #[error(
        "the {what} {path} ({dn}) expires {not_after}, within 24 hours: renew it before sending"
    )]
    Expiring {
        /// "host certificate" or "server certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its subject, slash form.
        dn: String,
        /// `notAfter`, as OpenSSL prints it.
        not_after: String,
    },
    /// Not valid yet.
    #[error("the {what} {path} ({dn}) is not valid before {not_before}: check the clock or the certificate")]
    NotYetValid {
        /// "host certificate" or "server certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its subject, slash form.
        dn: String,
        /// `notBefore`, as OpenSSL prints it.
        not_before: String,
    },
    /// `server-cert` is the host certificate itself (ssmsend refuses this too).
    #[error("the server certificate {path} is the host certificate: set `server-cert` to the certificate of the receiving APEL server, or remove it")]
    ServerIsHost {
        /// The file.
        path: PathBuf,
    },
    /// OpenSSL failed on a computation (not on the files' content).
    #[error("checking the {what} {path}: {source}")]
    Ssl {
        /// What was being checked.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OpenSSL errors.
        source: openssl::error::ErrorStack,
    },
}

/// The host certificate and its key, checked to belong together.
pub struct HostCredential {
    /// The certificate.
    pub cert: X509,
    /// The private key. Never logged, never printed (`Debug` omits it).
    pub key: PKey<Private>,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
    /// Where the key was read from.
    pub key_path: PathBuf,
}

impl std::fmt::Debug for HostCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCredential")
            .field("dn", &slash_dn(self.cert.subject_name()))
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Read a PEM certificate (the first one of the file).
pub fn load_cert(what: &'static str, path: &Path) -> Result<X509, IdentityError> {
    let pem = read(what, path)?;
    X509::from_pem(&pem).map_err(|source| IdentityError::Parse {
        what,
        path: path.to_path_buf(),
        expected: "certificate",
        source,
    })
}

impl HostCredential {
    /// Read the certificate and the key (PKCS#1 or PKCS#8 PEM, unencrypted)
    /// and check that they match.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<HostCredential, IdentityError> {
        let cert = load_cert("host certificate", cert_path)?;
        let pem = zeroizing(read("host key", key_path)?);
        let key = PKey::private_key_from_pem(&pem.0).map_err(|source| IdentityError::Parse {
            what: "host key",
            path: key_path.to_path_buf(),
            expected: "private key (unencrypted)",
            source,
        })?;
        let public = cert.public_key().map_err(|source| IdentityError::Ssl {
            what: "host certificate",
            path: cert_path.to_path_buf(),
            source,
        })?;
        if !public.public_eq(&key) {
            return Err(IdentityError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        Ok(HostCredential {
            cert,
            key,
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    /// The certificate's subject in slash form.
    pub fn dn(&self) -> String {
        slash_dn(self.cert.subject_name())
    }

    /// `ssmsend`'s expiry check at `now`: valid now and for [`MIN_VALIDITY`] more.
    pub fn check_validity(&self, now: SystemTime) -> Result<(), IdentityError> {
        check_validity("host certificate", &self.cert_path, &self.cert, now)
    }

    /// The key as PKCS#8 PEM, for a TLS client identity. The caller keeps it
    /// only as long as it builds the client.
    pub fn key_pkcs8_pem(&self) -> Result<Vec<u8>, IdentityError> {
        self.key
            .private_key_to_pem_pkcs8()
            .map_err(|source| IdentityError::Ssl {
                what: "host key",
                path: self.key_path.clone(),
                source,
            })
    }
}

/// A byte buffer overwritten with zeros when dropped (key material).
pub(crate) struct Zeroizing(pub Vec<u8>);

impl Drop for Zeroizing {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: a plain write through a valid, exclusive reference.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

pub(crate) fn zeroizing(v: Vec<u8>) -> Zeroizing {
    Zeroizing(v)
}

/// Valid at `now` and still valid [`MIN_VALIDITY`] later.
pub fn check_validity(
    what: &'static str,
    path: &Path,
    cert: &X509,
    now: SystemTime,
) -> Result<(), IdentityError> {
    let ssl = |source| IdentityError::Ssl {
        what,
        path: path.to_path_buf(),
        source,
    };
    let secs = |t: SystemTime| {
        let s = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        i64::try_from(s).unwrap_or(i64::MAX)
    };
    let now_t = Asn1Time::from_unix(secs(now)).map_err(ssl)?;
    let later = Asn1Time::from_unix(secs(now + MIN_VALIDITY)).map_err(ssl)?;
    let dn = || slash_dn(cert.subject_name());
    if cert.not_before() > now_t {
        return Err(IdentityError::NotYetValid {
            what,
            path: path.to_path_buf(),
            dn: dn(),
            not_before: cert.not_before().to_string(),
        });
    }
    if cert.not_after() < later {
        return Err(IdentityError::Expiring {
            what,
            path: path.to_path_buf(),
            dn: dn(),
            not_after: cert.not_after().to_string(),
        });
    }
    Ok(())
}

/// A name in the legacy slash form, in certificate order, with OpenSSL's
/// short names: `/DC=org/DC=example/CN=host.example.org` (what ssmsend
/// logs and GOCDB's *Host DN* holds).
pub fn slash_dn(name: &X509NameRef) -> String {
    let mut out = String::new();
    for entry in name.entries() {
        let key = entry
            .object()
            .nid()
            .short_name()
            .map(str::to_string)
            .unwrap_or_else(|_| entry.object().to_string());
        let value = entry
            .data()
            .to_string()
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.data().as_slice()).into_owned());
        out.push('/');
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    fn cert(key: &PKey<Private>, not_after_days: u32) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        for (k, v) in [
            ("DC", "org"),
            ("DC", "example"),
            ("O", "Site"),
            ("CN", "host.example.org"),
        ] {
            name.append_entry_by_text(k, v).unwrap();
        }
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(not_after_days).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    #[test]
    fn dn_in_slash_form() {
        let k = key();
        let c = cert(&k, 10);
        assert_eq!(
            slash_dn(c.subject_name()),
            "/DC=org/DC=example/O=Site/CN=host.example.org"
        );
    }

    #[test]
    fn files_mismatch_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (key(), key());
        let c = cert(&k1, 10);
        let cp = dir.path().join("hostcert.pem");
        let kp = dir.path().join("hostkey.pem");
        let wrong = dir.path().join("other.pem");
        std::fs::write(&cp, c.to_pem().unwrap()).unwrap();
        // traditional RSA PEM, as host keys often are
        std::fs::write(&kp, k1.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
        std::fs::write(&wrong, k2.private_key_to_pem_pkcs8().unwrap()).unwrap();

        let cred = HostCredential::load(&cp, &kp).unwrap();
        assert_eq!(cred.dn(), "/DC=org/DC=example/O=Site/CN=host.example.org");
        assert!(!format!("{cred:?}").contains("PRIVATE"));
        let now = SystemTime::now();
        cred.check_validity(now).unwrap();
        // nine and a half days later: still more than 24 h left
        cred.check_validity(now + Duration::from_secs(8 * 86_400))
            .unwrap();
        let e = cred
            .check_validity(now + Duration::from_secs(9 * 86_400 + 3600))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("hostcert.pem") && msg.contains("within 24 hours"),
            "{msg}"
        );
        assert!(matches!(
            cred.check_validity(now - Duration::from_secs(3 * 86_400)),
            Err(IdentityError::NotYetValid { .. })
        ));

        let e = HostCredential::load(&cp, &wrong).unwrap_err();
        assert!(matches!(e, IdentityError::KeyMismatch { .. }), "{e}");
        let e = HostCredential::load(&cp, &dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("cannot read the host key"), "{e}");
        let e = HostCredential::load(&kp, &kp).unwrap_err();
        assert!(e.to_string().contains("not a PEM certificate"), "{e}");
        // the PKCS#8 export used for the TLS identity reads back
        let pem = cred.key_pkcs8_pem().unwrap();
        assert!(PKey::private_key_from_pem(&pem).unwrap().public_eq(&k1));
    }
}
