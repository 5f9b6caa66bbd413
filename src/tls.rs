//! The system trust store, made explicit for every TLS client.
//!
//! OpenSSL's own default ("the compiled-in `OPENSSLDIR/certs`") is not the
//! same in every build: Debian's libssl says `/usr/lib/ssl/certs` (a link to
//! `/etc/ssl/certs`), but the vendored OpenSSL of the static release binary
//! (`scripts/build-static`) says `/usr/local/ssl/certs`, which does not exist
//! in the appliance image. So no client of the appliance relies on it:
//! every reqwest client is built by [`reqwest_builder`] (built-in roots off,
//! the system roots added explicitly) and every raw OpenSSL connector by
//! [`openssl_connector`] (its default store replaced). The site's own
//! trust (`ca-file`, the IGTF hashed `ca-dir`, `capath`) is added on top by
//! the callers, as before.
//!
//! The system roots are Debian's: the bundle
//! `/etc/ssl/certs/ca-certificates.crt` plus the hashed directory
//! `/etc/ssl/certs`. OpenSSL's standard variables `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` replace them, as they would for any OpenSSL program.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

/// Debian's CA bundle (`update-ca-certificates`).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Debian's hashed CA directory.
pub const SYSTEM_CA_DIR: &str = "/etc/ssl/certs";

/// Where the system roots are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRoots {
    /// A PEM bundle.
    pub file: PathBuf,
    /// A directory of `*.pem` and `<hash>.N` certificates.
    pub dir: PathBuf,
}

impl SystemRoots {
    /// Debian's locations, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set.
    pub fn from_env() -> SystemRoots {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        SystemRoots {
            file: var("SSL_CERT_FILE", SYSTEM_CA_FILE),
            dir: var("SSL_CERT_DIR", SYSTEM_CA_DIR),
        }
    }

    /// Every distinct certificate of the bundle and the directory, as DER,
    /// in a stable order (bundle first, then the directory by file name).
    /// Missing or unreadable places give nothing (a host may have only the
    /// site's own trust). Each file is read once, however many names lead
    /// to it: Debian's directory holds the bundle itself and two links to
    /// every certificate (`<hash>.0` and `<name>.pem`).
    pub fn load(&self) -> Vec<Vec<u8>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut add = |bytes: &[u8]| {
            for der in pem_certs(bytes) {
                if seen.insert(der.clone()) {
                    out.push(der);
                }
            }
        };
        let mut read = HashSet::new();
        for path in std::iter::once(self.file.clone()).chain(cert_files(&self.dir)) {
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            if !read.insert(real.clone()) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&real) {
                add(&bytes);
            }
        }
        out
    }
}

/// The system roots of this process (read once).
pub fn system_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let where_ = SystemRoots::from_env();
        let roots = where_.load();
        tracing::debug!(
            file = %where_.file.display(),
            dir = %where_.dir.display(),
            certificates = roots.len(),
            "system TLS roots"
        );
        roots
    })
}

/// The system roots parsed for reqwest, once per process (a run builds
/// several clients; parsing Debian's 150 roots for each cost a warm image
/// sync tens of milliseconds).
fn system_root_certificates() -> &'static [reqwest::Certificate] {
    static CERTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    CERTS.get_or_init(|| {
        system_roots()
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect()
    })
}

/// A reqwest client builder (native-tls, i.e. OpenSSL) that trusts exactly
/// the system roots; callers add the site's CAs with `add_root_certificate`.
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .use_native_tls()
        .tls_built_in_root_certs(false);
    for cert in system_root_certificates() {
        b = b.add_root_certificate(cert.clone());
    }
    b
}

/// An OpenSSL client connector whose store holds exactly the system roots
/// (not OpenSSL's compiled-in default paths); callers add the site's CAs.
pub fn openssl_connector() -> Result<SslConnectorBuilder, openssl::error::ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    let mut store = X509StoreBuilder::new()?;
    for der in system_roots() {
        if let Ok(cert) = X509::from_der(der) {
            // A duplicate is the only possible error; the store keeps one.
            let _ = store.add_cert(cert);
        }
    }
    b.set_cert_store(store.build());
    Ok(b)
}

/// `*.pem`, `*.crt` and OpenSSL hash names (`<hash>.0`..`<hash>.9`) of
/// `dir`, regular files (following links), sorted by name.
fn cert_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let is_cert = ext.eq_ignore_ascii_case("pem")
                || ext.eq_ignore_ascii_case("crt")
                || (ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit());
            is_cert && p.is_file()
        })
        .collect();
    files.sort();
    files
}

/// The certificates of a PEM file, as DER: the base64 of every
/// `CERTIFICATE` block, decoded without parsing it (OpenSSL's PEM reader
/// costs about 0.4 ms a certificate, and Debian's roots are read twice,
/// from the bundle and from the directory; each is parsed once, by the
/// client that trusts it). A block that is not valid base64 is skipped; one
/// whose DER is not a certificate is refused by that client.
fn pem_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = body.find(END) else {
            break;
        };
        let b64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &body[end + END.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    fn self_signed(cn: &str) -> X509 {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn bundle_and_hashed_dir_are_read_once_each_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (self_signed("a"), self_signed("b"), self_signed("c"));
        let bundle = tmp.path().join("bundle.crt");
        // Comments between blocks, CRLF line ends, a block that is not
        // base64 (skipped).
        let mut pem = b"# Issuer: a\n".to_vec();
        pem.extend(a.to_pem().unwrap());
        pem.extend(b"-----BEGIN CERTIFICATE-----\n*not base64*\n-----END CERTIFICATE-----\n");
        pem.extend(
            String::from_utf8(b.to_pem().unwrap())
                .unwrap()
                .replace('\n', "\r\n")
                .as_bytes(),
        );
        std::fs::write(&bundle, pem).unwrap();
        let dir = tmp.path().join("certs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("c.pem"), c.to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("0badcafe.0"), a.to_pem().unwrap()).unwrap(); // a again
        std::fs::write(dir.join("0badcafe.r0"), b"not a certificate").unwrap();
        std::fs::write(dir.join("README"), b"skipped").unwrap();
        // Debian's layout: the bundle inside the directory, and a hash link
        // beside the named file
        std::os::unix::fs::symlink(&bundle, dir.join("ca-certificates.crt")).unwrap();
        std::os::unix::fs::symlink("c.pem", dir.join("0c0c0c0c.0")).unwrap();
        let roots = SystemRoots { file: bundle, dir }.load();
        let want: Vec<Vec<u8>> = [&a, &b, &c].iter().map(|x| x.to_der().unwrap()).collect();
        assert_eq!(roots, want);
    }

    #[test]
    fn missing_places_give_no_roots() {
        let roots = SystemRoots {
            file: "/nonexistent/bundle.crt".into(),
            dir: "/nonexistent/certs".into(),
        }
        .load();
        assert!(roots.is_empty());
    }
}
