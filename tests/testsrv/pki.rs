//! A snake-oil PKI for tests, made with the openssl crate: a CA, a server
//! certificate for `localhost` / `127.0.0.1` / `::1`, an IGTF-style host
//! certificate used as a client certificate
//! (`/DC=org/DC=example/CN=host.example.org`), the same DN issued by an
//! untrusted CA, an expired client certificate, and the CA in a hashed
//! directory (`<subject_hash>.0`, like `/etc/grid-security/certificates`).
//!
//! Keys are RSA 2048 written as PKCS#8 PEM (what reqwest's native-tls
//! `Identity::from_pkcs8_pem` and Python `requests` both read).
//! [`Pki::shared`] makes one set per test process; [`Pki::generate`] makes a
//! fresh one; [`Pki::issue`] adds more certificates.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509NameBuilder, X509};

/// The client DN of the test host certificate, slash form.
pub const CLIENT_DN: &str = "/DC=org/DC=example/CN=host.example.org";

/// A certificate and its key, in memory and on disk.
pub struct Issued {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// PEM certificate file.
    pub cert_path: PathBuf,
    /// PEM (PKCS#8) key file.
    pub key_path: PathBuf,
}

impl Issued {
    /// Certificate PEM.
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("certificate to PEM")
    }
    /// Key PEM (PKCS#8).
    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().expect("key to PEM")
    }
    /// A reqwest client identity.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pkcs8_pem(&self.cert_pem(), &self.key_pem())
            .expect("reqwest identity")
    }
}

/// What kind of certificate to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server (serverAuth), with SANs.
    Server,
    /// TLS client (clientAuth), as IGTF host certificates are also used.
    Client,
}

/// The test PKI (see the module docs).
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA.
    pub ca: Issued,
    /// Hashed CA directory with the CA as `<hash>.0`.
    pub ca_dir: PathBuf,
    /// Server certificate for localhost, 127.0.0.1 and ::1.
    pub server: Issued,
    /// Client certificate with DN [`CLIENT_DN`].
    pub client: Issued,
    /// Same DN, issued by a CA nobody trusts.
    pub rogue_client: Issued,
    /// Client certificate by the trusted CA that expired yesterday.
    pub expired_client: Issued,
}

impl Pki {
    /// One PKI per test process.
    pub fn shared() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::generate)
    }

    /// A fresh PKI in a new temporary directory.
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = self_signed_ca(dir.path(), "ca", "Test CA");
        let ca_dir = dir.path().join("certificates");
        std::fs::create_dir(&ca_dir).expect("CA dir");
        std::fs::write(
            ca_dir.join(format!("{:08x}.0", ca.cert.subject_name_hash())),
            ca.cert_pem(),
        )
        .expect("hashed CA file");
        let rogue_ca = self_signed_ca(dir.path(), "rogue-ca", "Rogue CA");
        let server = issue(
            dir.path(),
            "server",
            &ca,
            &name(&[("CN", "localhost")]),
            Usage::Server,
            0..365,
        );
        let client_name = dn_name(CLIENT_DN);
        let client = issue(
            dir.path(),
            "client",
            &ca,
            &client_name,
            Usage::Client,
            0..365,
        );
        let rogue_client = issue(
            dir.path(),
            "rogue-client",
            &rogue_ca,
            &client_name,
            Usage::Client,
            0..365,
        );
        let expired_client = issue(
            dir.path(),
            "expired-client",
            &ca,
            &client_name,
            Usage::Client,
            -30..-1,
        );
        Pki {
            dir,
            ca,
            ca_dir,
            server,
            client,
            rogue_client,
            expired_client,
        }
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issue another certificate from the test CA; `dn` in slash form.
    pub fn issue(&self, file_stem: &str, dn: &str, usage: Usage) -> Issued {
        issue(
            self.dir.path(),
            file_stem,
            &self.ca,
            &dn_name(dn),
            usage,
            0..365,
        )
    }

    /// Like [`Pki::issue`], valid from `days.start` to `days.end` days from
    /// now (negative: in the past).
    pub fn issue_valid(
        &self,
        file_stem: &str,
        dn: &str,
        usage: Usage,
        days: std::ops::Range<i64>,
    ) -> Issued {
        issue(
            self.dir.path(),
            file_stem,
            &self.ca,
            &dn_name(dn),
            usage,
            days,
        )
    }

    /// The CA as a reqwest root certificate.
    pub fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&self.ca.cert_pem()).expect("reqwest root certificate")
    }
}

fn new_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("PKey")
}

fn name(entries: &[(&str, &str)]) -> X509Name {
    let mut b = X509NameBuilder::new().expect("name builder");
    for (k, v) in entries {
        b.append_entry_by_text(k, v).expect("name entry");
    }
    b.build()
}

/// `/DC=org/DC=example/CN=x` to an X509Name.
fn dn_name(dn: &str) -> X509Name {
    let entries: Vec<(&str, &str)> = dn
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').expect("KEY=VALUE in DN"))
        .collect();
    name(&entries)
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut bn = BigNum::new().expect("bignum");
    bn.rand(64, MsbOption::MAYBE_ZERO, false)
        .expect("random serial");
    bn.to_asn1_integer().expect("serial")
}

fn write(dir: &Path, stem: &str, cert: X509, key: PKey<Private>) -> Issued {
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.to_pem().expect("PEM")).expect("writing certificate");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("PEM")).expect("writing key");
    Issued {
        cert,
        key,
        cert_path,
        key_path,
    }
}

fn self_signed_ca(dir: &Path, stem: &str, cn: &str) -> Issued {
    let key = new_key();
    let subject = name(&[("DC", "org"), ("DC", "example"), ("CN", cn)]);
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(&subject).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(3650).expect("time"))
        .expect("not after");
    b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    write(dir, stem, b.build(), key)
}

/// Validity as a range of days relative to now (`-30..-1` is expired).
fn issue(
    dir: &Path,
    stem: &str,
    ca: &Issued,
    subject: &X509Name,
    usage: Usage,
    days: std::ops::Range<i64>,
) -> Issued {
    let key = new_key();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let day = 86_400;
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_issuer_name(ca.cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    // Start an hour early so clock skew between steps never matters.
    b.set_not_before(&Asn1Time::from_unix(now + days.start * day - 3600).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(now + days.end * day).expect("time"))
        .expect("not after");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    let eku = match usage {
        Usage::Server => ExtendedKeyUsage::new().server_auth().build(),
        Usage::Client => ExtendedKeyUsage::new().client_auth().server_auth().build(),
    };
    b.append_extension(eku.expect("eku")).expect("eku");
    let ctx = b.x509v3_context(Some(&ca.cert), None);
    let ski = SubjectKeyIdentifier::new().build(&ctx).expect("ski");
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .build(&ctx)
        .expect("aki");
    let san = match usage {
        Usage::Server => Some(
            SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .ip("::1")
                .build(&ctx)
                .expect("san"),
        ),
        Usage::Client => None,
    };
    b.append_extension(ski).expect("ski");
    b.append_extension(aki).expect("aki");
    if let Some(san) = san {
        b.append_extension(san).expect("san");
    }
    b.sign(&ca.key, MessageDigest::sha256()).expect("sign");
    write(dir, stem, b.build(), key)
}
