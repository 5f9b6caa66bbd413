//! The endpoint's TLS facts (`IssuerCA`, `TrustedCA`): a handshake with the
//! Keystone endpoint, as cloud-info-provider's `get_endpoint_ca_information`
//! does, made safer: TLS 1.2 or 1.3, the same trust as every other request
//! of the appliance (system roots + CA file + IGTF hashed directory, or none
//! with `insecure`), a timeout, and IPv6.
//!
//! `IssuerCA` is the issuer DN of the server certificate and `TrustedCA`
//! the DNs of the CertificateRequest's CA list (what Keystone accepts for
//! client certificates), both in OpenSSL's one-line form
//! (`/C=NL/O=GEANT Vereniging/CN=GEANT OV RSA CA 4`). A plain-http endpoint
//! or a failed handshake gives [`CaInfo::default`] (`UNKNOWN`), as in
//! cloud-info-provider.

use std::os::raw::{c_int, c_void};
use std::pin::Pin;
use std::time::Duration;

use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslFiletype, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::store::X509Lookup;
use openssl::x509::X509NameRef;
use url::Url;

use super::facts::CaInfo;
use crate::openstack::access::Tls;

extern "C" {
    // libssl / libcrypto (linked through openssl-sys); not bound by the
    // openssl crate. On a client, the CA names the server sent.
    fn SSL_get_client_CA_list(ssl: *const c_void) -> *mut c_void;
    fn OPENSSL_sk_num(stack: *const c_void) -> c_int;
    fn OPENSSL_sk_value(stack: *const c_void, i: c_int) -> *mut c_void;
}

/// A DN in OpenSSL's `X509_NAME_oneline` form: `/SN=value` per entry, bytes
/// outside printable ASCII as `\xHH`.
pub fn oneline(name: &X509NameRef) -> String {
    let mut s = String::new();
    for e in name.entries() {
        let obj = e.object();
        let key = obj
            .nid()
            .short_name()
            .map(str::to_string)
            .unwrap_or_else(|_| obj.to_string());
        s.push('/');
        s.push_str(&key);
        s.push('=');
        for &b in e.data().as_slice() {
            if (0x20..=0x7e).contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02X}"));
            }
        }
    }
    s
}

fn client_ca_names(ssl: &SslRef) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: `ssl` is a live SSL; the stack and its names are owned by it
    // and only borrowed while `ssl` is.
    unsafe {
        let stack = SSL_get_client_CA_list(ssl.as_ptr().cast());
        if stack.is_null() {
            return out;
        }
        for i in 0..OPENSSL_sk_num(stack) {
            let p = OPENSSL_sk_value(stack, i);
            if !p.is_null() {
                out.push(oneline(X509NameRef::from_ptr(p.cast())));
            }
        }
    }
    out
}

/// Why the handshake gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Not an https URL.
    #[error("not an https endpoint")]
    NotHttps,
    /// The trust could not be set up.
    #[error("TLS set-up: {0}")]
    Setup(String),
    /// TCP or TLS failed.
    #[error("TLS handshake with {0}: {1}")]
    Handshake(String, String),
    /// No handshake within the timeout.
    #[error("no TLS handshake with {0} within {1:?}")]
    Timeout(String, Duration),
}

/// Handshake with `endpoint` and read its TLS facts.
pub async fn probe(endpoint: &Url, tls: &Tls, timeout: Duration) -> Result<CaInfo, ProbeError> {
    if endpoint.scheme() != "https" {
        return Err(ProbeError::NotHttps);
    }
    let host = endpoint.host_str().ok_or(ProbeError::NotHttps)?.to_string();
    let port = endpoint.port_or_known_default().unwrap_or(443);
    let setup = |e: openssl::error::ErrorStack| ProbeError::Setup(e.to_string());
    let mut b = crate::tls::openssl_connector().map_err(setup)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(setup)?;
    if tls.insecure {
        b.set_verify(SslVerifyMode::NONE);
    } else {
        if let Some(f) = &tls.ca_file {
            b.set_ca_file(f)
                .map_err(|e| ProbeError::Setup(format!("{}: {e}", f.display())))?;
        }
        if let Some(d) = &tls.ca_dir {
            let lookup = b
                .cert_store_mut()
                .add_lookup(X509Lookup::hash_dir())
                .map_err(setup)?;
            lookup
                .add_dir(&d.to_string_lossy(), SslFiletype::PEM)
                .map_err(|e| ProbeError::Setup(format!("{}: {e}", d.display())))?;
        }
    }
    let connector = b.build();
    let addr = format!("{host}:{port}");
    let name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let work = async {
        let tcp = crate::dns::connect(&name, port)
            .await
            .map_err(|e| ProbeError::Handshake(addr.clone(), e.to_string()))?;
        let ssl = connector
            .configure()
            .and_then(|c| c.into_ssl(&name))
            .map_err(setup)?;
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp)
            .map_err(|e| ProbeError::Handshake(addr.clone(), e.to_string()))?;
        Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| ProbeError::Handshake(addr.clone(), e.to_string()))?;
        let ssl = stream.ssl();
        let issuer = ssl
            .peer_certificate()
            .map(|c| oneline(c.issuer_name()))
            .ok_or_else(|| ProbeError::Handshake(addr.clone(), "no server certificate".into()))?;
        let trusted = client_ca_names(ssl);
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        Ok(CaInfo { issuer, trusted })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(addr, timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Name;

    #[test]
    fn oneline_form() {
        let mut b = X509Name::builder().unwrap();
        b.append_entry_by_text("C", "NL").unwrap();
        b.append_entry_by_text("O", "GEANT Vereniging").unwrap();
        b.append_entry_by_text("CN", "GEANT OV RSA CA 4").unwrap();
        let n = b.build();
        assert_eq!(oneline(&n), "/C=NL/O=GEANT Vereniging/CN=GEANT OV RSA CA 4");
    }
}
