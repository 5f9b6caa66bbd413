//! S/MIME trust of a signed image list: parse `multipart/signed` (LF or
//! CRLF) or opaque PKCS#7 (`application/(x-)pkcs7-mime`), check the signature
//! over the content, then the signer's chain against an IGTF-style hashed CA
//! directory (`<hash>.0` certificates, `<hash>.r0` CRLs), with the CRL check
//! on by default and validity dates at the time the caller passes in.
//!
//! Semantics follow `openssl smime -verify -crl_check -CApath DIR` (spec
//! image-sync §2.2/§2.4): the signer must have the S/MIME signing purpose
//! (EKU absent or with emailProtection) unless [`Relax::host_cert_purpose`]
//! is set; a CRL past its `nextUpdate` is a failure unless
//! [`Relax::stale_crl`] is set, in which case revocation is still checked
//! against the stale CRL. Exactly one signer. The content returned is the
//! one OpenSSL verified, never the input bytes.
//!
//! Endorser comparison (signer DN/issuer against `hv:endorser` and the
//! configuration) is policy, in [`super::policy`].

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509Crl, X509NameRef, X509PurposeId, X509StoreContext, X509};

/// Explicit relaxations of the trust check (each logs a warning per run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Relax {
    /// Accept a signer certificate without the S/MIME signing purpose (a
    /// plain IGTF host certificate: EKU serverAuth, clientAuth).
    pub host_cert_purpose: bool,
    /// Accept CRLs past their `nextUpdate` (fetch-crl not running); the
    /// stale CRL is still checked for revocation.
    pub stale_crl: bool,
    /// Accept a CA that has no CRL at all (no revocation check for it).
    pub missing_crl: bool,
}

/// The verified signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Subject, OpenSSL compat form (`/DC=EU/DC=EGI/.../CN=appdb.egi.eu`).
    pub dn: String,
    /// Issuer, same form.
    pub ca: String,
    /// Serial number, hex.
    pub serial: String,
    /// Certificate expiry.
    pub not_after: String,
}

/// A list whose signature and signer chain verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed content (as OpenSSL verified it; CRLF-canonical for
    /// `multipart/signed`).
    pub content: Vec<u8>,
    /// The one signer.
    pub signer: Signer,
    /// Warnings from relaxations that were needed.
    pub warnings: Vec<String>,
}

/// Why a list's signature is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// Not S/MIME at all (or not signed).
    #[error("not an S/MIME signed message ({0})")]
    NotSmime(String),
    /// The signature does not match the content (tampered, or corrupted).
    #[error("bad signature: the content does not match its signature ({0})")]
    BadSignature(String),
    /// Not exactly one signer.
    #[error("expected exactly one signer, found {0}")]
    Signers(usize),
    /// The CA directory is unusable.
    #[error("CA directory {dir}: {problem}")]
    CaDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The signer's certificate chain failed (unknown CA, revoked, expired,
    /// wrong purpose, missing or stale CRL).
    #[error("signer {dn} (issuer {ca}) is not trusted: {reason}")]
    Untrusted {
        /// Signer subject.
        dn: String,
        /// Signer issuer.
        ca: String,
        /// OpenSSL's verification error.
        reason: String,
        /// OpenSSL's `X509_V_ERR_*` code.
        code: i32,
    },
}

impl TrustError {
    /// What the operator can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            TrustError::NotSmime(_) => "check the subscription URL: it must serve a signed image list",
            TrustError::BadSignature(_) => "the list was modified after signing; nothing was changed, ask the list's endorser",
            TrustError::Signers(_) => "ask the list's endorser to sign with one certificate",
            TrustError::CaDir { .. } => "install the IGTF CA bundle (ca-policy-egi-core) into paths.ca-dir, or fix the path",
            TrustError::Untrusted { code, .. } => match *code {
                23 => "the endorser's certificate is revoked: nothing was changed; contact the endorser",
                3 => "run fetch-crl so that the CA's <hash>.r0 CRL is present (or set images.relax.missing-crl, not recommended: revocation is then not checked)",
                12 => "run fetch-crl so that the CA's <hash>.r0 CRL is current (or set images.relax.stale-crl, not recommended)",
                26 => "the signer has a host certificate without emailProtection: set images.relax.host-cert-purpose if that is expected",
                10 | 9 => "the endorser's certificate is expired or not yet valid: contact the endorser",
                _ => "install the IGTF CA bundle that issued the endorser's certificate into paths.ca-dir",
            },
        }
    }
}

/// X509_V_ERR_CRL_HAS_EXPIRED.
const CRL_HAS_EXPIRED: i32 = 12;
/// X509_V_ERR_UNABLE_TO_GET_CRL.
const UNABLE_TO_GET_CRL: i32 = 3;

/// The OpenSSL "compat" one-line form of a name: `/K=V/K=V`, in certificate order.
pub fn dn_string(name: &X509NameRef) -> String {
    let mut out = String::new();
    for e in name.entries() {
        let key = e.object().nid().short_name().unwrap_or("UNKNOWN");
        let value = e.data().to_string().unwrap_or_default();
        out.push('/');
        out.push_str(key);
        out.push('=');
        out.push_str(&value);
    }
    out
}

fn openssl_reason(e: &openssl::error::ErrorStack) -> String {
    let parts: Vec<String> = e
        .errors()
        .iter()
        .map(|x| {
            let r = x.reason().unwrap_or("error");
            match x.data() {
                Some(d) => format!("{r}: {d}"),
                None => r.to_string(),
            }
        })
        .collect();
    if parts.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        parts.join("; ")
    }
}

/// Check that `dir` exists and holds at least one certificate.
fn check_ca_dir(dir: &Path) -> Result<(), TrustError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TrustError::CaDir {
        dir: dir.to_path_buf(),
        problem: e.to_string(),
    })?;
    let has_cert = rd.filter_map(Result::ok).any(|e| {
        let n = e.file_name();
        let n = n.to_string_lossy();
        n.ends_with(".pem")
            || n.rsplit_once('.')
                .is_some_and(|(_, x)| x.len() == 1 && x.as_bytes()[0].is_ascii_digit())
    });
    if has_cert {
        Ok(())
    } else {
        Err(TrustError::CaDir {
            dir: dir.to_path_buf(),
            problem: "holds no CA certificate (<hash>.0 or *.pem)".into(),
        })
    }
}

fn store(
    ca_dir: &Path,
    now: DateTime<Utc>,
    relax: Relax,
    crl_check: bool,
) -> Result<openssl::x509::store::X509Store, TrustError> {
    let bad = |e: openssl::error::ErrorStack| TrustError::CaDir {
        dir: ca_dir.to_path_buf(),
        problem: openssl_reason(&e),
    };
    let dir = ca_dir.to_str().ok_or_else(|| TrustError::CaDir {
        dir: ca_dir.to_path_buf(),
        problem: "path is not UTF-8".into(),
    })?;
    let mut b = X509StoreBuilder::new().map_err(bad)?;
    b.add_lookup(X509Lookup::hash_dir())
        .map_err(bad)?
        .add_dir(dir, SslFiletype::PEM)
        .map_err(bad)?;
    let mut p = X509VerifyParam::new().map_err(bad)?;
    p.set_time(now.timestamp() as _);
    if crl_check {
        p.set_flags(X509VerifyFlags::CRL_CHECK).map_err(bad)?;
    }
    p.set_purpose(if relax.host_cert_purpose {
        X509PurposeId::ANY
    } else {
        X509PurposeId::SMIME_SIGN
    })
    .map_err(bad)?;
    b.set_param(&p).map_err(bad)?;
    Ok(b.build())
}

/// Verify a signed list `message` against the CA directory at time `now`.
pub fn verify(
    message: &[u8],
    ca_dir: &Path,
    now: DateTime<Utc>,
    relax: Relax,
) -> Result<Verified, TrustError> {
    let (p7, detached) =
        Pkcs7::from_smime(message).map_err(|e| TrustError::NotSmime(openssl_reason(&e)))?;
    let no_certs = Stack::<X509>::new().expect("empty stack");
    let signers = p7
        .signers(&no_certs, Pkcs7Flags::empty())
        .map_err(|e| TrustError::NotSmime(openssl_reason(&e)))?;
    if signers.len() != 1 {
        return Err(TrustError::Signers(signers.len()));
    }
    let signer_cert = signers.get(0).expect("one signer").to_owned();
    let signer = Signer {
        dn: dn_string(signer_cert.subject_name()),
        ca: dn_string(signer_cert.issuer_name()),
        serial: signer_cert
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default(),
        not_after: signer_cert.not_after().to_string(),
    };
    check_ca_dir(ca_dir)?;

    // 1. The signature over the content (the chain comes next, separately,
    //    so its failure is reported precisely).
    let lax = store(ca_dir, now, relax, false)?;
    let mut content = Vec::new();
    p7.verify(
        &no_certs,
        &lax,
        detached.as_deref(),
        Some(&mut content),
        Pkcs7Flags::NOVERIFY,
    )
    .map_err(|e| TrustError::BadSignature(openssl_reason(&e)))?;

    // 2. The signer's chain, CRLs included.
    let chain_certs = p7
        .signed()
        .and_then(|s| s.certificates())
        .map(|c| c.iter().map(|x| x.to_owned()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut untrusted = Stack::<X509>::new().expect("stack");
    for c in chain_certs {
        untrusted.push(c).expect("push");
    }
    let strict = store(ca_dir, now, relax, true)?;
    let mut warnings = Vec::new();
    match chain_check(&strict, &signer_cert, &untrusted) {
        Ok(()) => {}
        Err((code, reason)) if code == CRL_HAS_EXPIRED && relax.stale_crl => {
            // Chain without the CRL check, then revocation against the stale CRL.
            chain_check(&lax, &signer_cert, &untrusted)
                .map_err(|(code, reason)| untrusted_err(&signer, code, reason))?;
            stale_crl_revocation(ca_dir, &signer_cert, &signer)?;
            warnings.push(format!(
                "the CRL of {} is past its nextUpdate ({reason}); accepted because images.relax.stale-crl is set",
                signer.ca
            ));
        }
        Err((code, reason)) if code == UNABLE_TO_GET_CRL && relax.missing_crl => {
            chain_check(&lax, &signer_cert, &untrusted)
                .map_err(|(code, reason)| untrusted_err(&signer, code, reason))?;
            warnings.push(format!(
                "no CRL for {} ({reason}): revocation not checked, because images.relax.missing-crl is set",
                signer.ca
            ));
        }
        Err((code, reason)) => return Err(untrusted_err(&signer, code, reason)),
    }
    Ok(Verified {
        content,
        signer,
        warnings,
    })
}

fn untrusted_err(signer: &Signer, code: i32, reason: String) -> TrustError {
    TrustError::Untrusted {
        dn: signer.dn.clone(),
        ca: signer.ca.clone(),
        reason,
        code,
    }
}

fn chain_check(
    store: &openssl::x509::store::X509StoreRef,
    cert: &X509,
    untrusted: &Stack<X509>,
) -> Result<(), (i32, String)> {
    let mut ctx = X509StoreContext::new().map_err(|e| (-1, openssl_reason(&e)))?;
    let r = ctx
        .init(store, cert, untrusted, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error()))
        })
        .map_err(|e| (-1, openssl_reason(&e)))?;
    match r {
        (true, _) => Ok(()),
        (false, err) => Err((err.as_raw(), err.error_string().to_string())),
    }
}

/// Revocation of `cert` by a CRL (`<issuer hash>.r0`..`.r9`) whose
/// signature verifies with the issuer's key, regardless of its dates.
fn stale_crl_revocation(ca_dir: &Path, cert: &X509, signer: &Signer) -> Result<(), TrustError> {
    let hash = cert.issuer_name_hash();
    let mut found = false;
    for i in 0..10 {
        let path = ca_dir.join(format!("{hash:08x}.r{i}"));
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let Ok(crl) = X509Crl::from_pem(&pem).or_else(|_| X509Crl::from_der(&pem)) else {
            continue;
        };
        let issuer = (0..10).find_map(|j| {
            let p = ca_dir.join(format!("{hash:08x}.{j}"));
            let c = X509::from_pem(&std::fs::read(p).ok()?).ok()?;
            (c.subject_name_hash() == hash).then_some(c)
        });
        let Some(issuer) = issuer else { continue };
        let Ok(key) = issuer.public_key() else {
            continue;
        };
        if !crl.verify(&key).unwrap_or(false) {
            continue;
        }
        found = true;
        if let openssl::x509::CrlStatus::Revoked(_) = crl.get_by_cert(cert) {
            return Err(untrusted_err(signer, 23, "certificate revoked".into()));
        }
    }
    if found {
        Ok(())
    } else {
        Err(untrusted_err(
            signer,
            3,
            "unable to get certificate CRL".into(),
        ))
    }
}
