//! A throw-away CA and a server certificate for 127.0.0.1, made with the
//! openssl crate, and an IGTF-style hashed CA directory that trusts it.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

pub struct Pki {
    pub ca: X509,
    pub cert: X509,
    pub key: PKey<Private>,
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("O", "fedcloud-appliance tests")
        .unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn cert(
    subject: &str,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
    signer: &PKey<Private>,
    serial: u32,
    ca: bool,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(subject)).unwrap();
    b.set_issuer_name(issuer).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        // A subject of its own, so that two test CAs never share a name.
        let cn = format!("Test Root CA {:08x}", rand::random::<u32>());
        let ca = cert(&cn, &name(&cn), &ca_key, &ca_key, 1, true);
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let cert = cert("127.0.0.1", ca.subject_name(), &key, &ca_key, 2, false);
        Pki { ca, cert, key }
    }

    /// A TLS acceptor serving the server certificate.
    pub fn acceptor(&self) -> SslAcceptor {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        b.set_private_key(&self.key).unwrap();
        b.set_certificate(&self.cert).unwrap();
        b.build()
    }

    /// An IGTF-style directory: `<hash>.0` (the CA), plus a CRL, a signing
    /// policy and a namespaces file that must be skipped.
    pub fn write_ca_dir(&self, dir: &Path) {
        let hash = format!("{:08x}", self.ca.subject_name_hash());
        std::fs::write(dir.join(format!("{hash}.0")), self.ca.to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.join(format!("{hash}.r0")),
            "-----BEGIN X509 CRL-----\nMIIBAA==\n-----END X509 CRL-----\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{hash}.signing_policy")),
            "access_id_CA X509 '/O=x'\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{hash}.namespaces")),
            "TO Issuer \"/O=x\" PERMIT\n",
        )
        .unwrap();
    }
}
