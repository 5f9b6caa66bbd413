//! Server-side TLS for the test servers (OpenSSL, as the real front ends use):
//! a certificate chain and key, and optionally client certificates that are
//! requested but not required, checked against a hashed CA directory
//! (`<subject_hash>.0`, the layout of `/etc/grid-security/certificates`).

use std::path::{Path, PathBuf};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslRef, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::store::X509Lookup;
use openssl::x509::{X509NameRef, X509VerifyResult, X509};

use super::Error;

/// Files for a TLS server.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// PEM certificate chain, server certificate first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Hashed CA directory for client certificates. When set, the server
    /// asks for a client certificate (and names these CAs in its request)
    /// but lets the handshake succeed without one or with an untrusted one;
    /// the result of the check is available to the handlers.
    pub client_ca_dir: Option<PathBuf>,
}

/// What the TLS layer learnt about the client.
#[derive(Clone, Debug)]
pub struct TlsPeer {
    /// The client certificate's subject in OpenSSL's slash form
    /// (`/DC=org/DC=example/CN=host.example.org`), if one was presented.
    pub subject: Option<String>,
    /// `Ok` if a certificate was presented and it verified against the CA
    /// directory; otherwise why not.
    pub verified: Result<(), String>,
}

impl TlsPeer {
    pub(crate) fn of(ssl: &SslRef) -> TlsPeer {
        match ssl.peer_certificate() {
            None => TlsPeer {
                subject: None,
                verified: Err("no client certificate".into()),
            },
            Some(cert) => {
                let result = ssl.verify_result();
                let verified = if result == X509VerifyResult::OK {
                    Ok(())
                } else {
                    Err(result.error_string().to_string())
                };
                TlsPeer {
                    subject: Some(slash_dn(cert.subject_name())),
                    verified,
                }
            }
        }
    }
}

/// A distinguished name in OpenSSL's legacy one-line slash form, the form
/// GOCDB and the APEL tools use: `/DC=org/DC=example/CN=host.example.org`.
pub fn slash_dn(name: &X509NameRef) -> String {
    let mut out = String::new();
    for entry in name.entries() {
        let key = entry
            .object()
            .nid()
            .short_name()
            .map(str::to_string)
            .unwrap_or_else(|_| entry.object().to_string());
        let value = entry.data().to_string().unwrap_or_default();
        out.push('/');
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    out
}

/// Build the acceptor.
pub(crate) fn acceptor(opts: &TlsOptions) -> Result<SslAcceptor, Error> {
    let tls_err = |context: String| move |source| Error::Tls { context, source };
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(tls_err("creating the TLS context".into()))?;
    b.set_certificate_chain_file(&opts.cert)
        .map_err(tls_err(format!(
            "loading certificate chain {}",
            opts.cert.display()
        )))?;
    b.set_private_key_file(&opts.key, SslFiletype::PEM)
        .map_err(tls_err(format!(
            "loading private key {}",
            opts.key.display()
        )))?;
    b.check_private_key().map_err(tls_err(format!(
        "{} does not match {}",
        opts.key.display(),
        opts.cert.display()
    )))?;
    b.set_session_id_context(b"fedcloud-testsrv")
        .map_err(tls_err("setting the session id context".into()))?;
    if let Some(dir) = &opts.client_ca_dir {
        let dir_str = dir
            .to_str()
            .ok_or_else(|| Error::bad("client CA dir", dir.display().to_string(), "not UTF-8"))?;
        b.cert_store_mut()
            .add_lookup(X509Lookup::hash_dir())
            .and_then(|lookup| lookup.add_dir(dir_str, SslFiletype::PEM))
            .map_err(tls_err(format!("using CA directory {}", dir.display())))?;
        let mut names = Stack::new().map_err(tls_err("allocating the CA name list".into()))?;
        for cert in hashed_dir_certs(dir)? {
            let name = cert
                .subject_name()
                .to_owned()
                .map_err(tls_err("copying a CA name".into()))?;
            names
                .push(name)
                .map_err(tls_err("building the CA name list".into()))?;
        }
        b.set_client_ca_list(names);
        // Request, don't require: accept whatever the client sends and let the
        // handler decide (like Apache's `SSLVerifyClient optional_no_ca`).
        // The verification result stays available through `verify_result`.
        b.set_verify_callback(SslVerifyMode::PEER, |_preverified, _ctx| true);
    }
    Ok(b.build())
}

/// The certificates of a hashed CA directory (`*.0`, `*.1`, ... files).
fn hashed_dir_certs(dir: &Path) -> Result<Vec<X509>, Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading CA directory {}", dir.display()), e))?;
    let mut certs = Vec::new();
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for path in names {
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some((hash, n)) = file.split_once('.') else {
            continue;
        };
        let hashed = hash.len() == 8
            && hash.chars().all(|c| c.is_ascii_hexdigit())
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit());
        if !hashed {
            continue;
        }
        let pem = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut stack = X509::stack_from_pem(&pem).map_err(|source| Error::Tls {
            context: format!("parsing {}", path.display()),
            source,
        })?;
        certs.append(&mut stack);
    }
    Ok(certs)
}
