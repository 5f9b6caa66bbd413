//! S/MIME signing (and optional encryption) of outgoing messages, exactly as
//! `ssmsend` does it (spec `accounting.md` §4.3, §4.5), in-process with the
//! openssl crate: no I/O, no clock.
//!
//! `ssmsend` runs `openssl smime -sign -inkey KEY -signer CERT -text` and
//! reads the output with Python's universal newlines. The APEL receiver
//! requires exactly that shape:
//!
//! - a detached (clear-signed) `multipart/signed` with `micalg="sha-256"`
//!   (OpenSSL 3's default digest) and the signer certificate embedded;
//! - `-text`: the signed part starts with `Content-Type: text/plain` and a
//!   blank line (the receiver strips up to the first blank line);
//! - every CRLF (and lone CR) turned into LF before base64.
//!
//! With a server certificate the signed text is then encrypted as
//! `openssl smime -encrypt -aes128 SERVER_CERT` does (AES-128-CBC
//! `application/pkcs7-mime` enveloped data), again with LF line ends.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509Ref, X509};

/// Why a message could not be signed or encrypted.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    /// `PKCS7_sign` / `SMIME_write_PKCS7` failed.
    #[error("signing the message with the host certificate failed: {0}")]
    Sign(openssl::error::ErrorStack),
    /// `PKCS7_encrypt` failed.
    #[error("encrypting the message to the server certificate failed: {0}")]
    Encrypt(openssl::error::ErrorStack),
}

/// Sign `message` as `openssl smime -sign -text` does, then normalise line
/// ends to LF as `ssmsend` does.
///
/// Spec `accounting.md` §4.5: detached `multipart/signed`, SHA-256, signer
/// certificate included, inner `Content-Type: text/plain` header, LF only.
pub fn sign(message: &[u8], cert: &X509Ref, key: &PKeyRef<Private>) -> Result<Vec<u8>, SmimeError> {
    let flags = Pkcs7Flags::TEXT | Pkcs7Flags::DETACHED;
    let extra = Stack::<X509>::new().map_err(SmimeError::Sign)?;
    let p7 = Pkcs7::sign(cert, key, &extra, message, flags).map_err(SmimeError::Sign)?;
    let smime = p7.to_smime(message, flags).map_err(SmimeError::Sign)?;
    Ok(universal_newlines(&smime))
}

/// Encrypt an already signed message to `server_cert` as
/// `openssl smime -encrypt -aes128 SERVER_CERT` does (spec §4.3), LF line ends.
pub fn encrypt(signed: &[u8], server_cert: &X509Ref) -> Result<Vec<u8>, SmimeError> {
    let mut certs = Stack::<X509>::new().map_err(SmimeError::Encrypt)?;
    certs
        .push(server_cert.to_owned())
        .map_err(SmimeError::Encrypt)?;
    let flags = Pkcs7Flags::empty();
    let p7 = Pkcs7::encrypt(&certs, signed, Cipher::aes_128_cbc(), flags)
        .map_err(SmimeError::Encrypt)?;
    let smime = p7.to_smime(&[], flags).map_err(SmimeError::Encrypt)?;
    Ok(universal_newlines(&smime))
}

/// Python's universal newlines on read: `\r\n` and a lone `\r` become `\n`.
pub fn universal_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.push(b'\n');
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
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
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509NameBuilder;

    fn self_signed(cn: &str, serial: u32) -> (X509, PKey<Private>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("DC", "org").unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    #[test]
    fn newlines_like_python() {
        assert_eq!(universal_newlines(b"a\r\nb\rc\n\r\n"), b"a\nb\nc\n\n");
        assert_eq!(universal_newlines(b""), b"");
        assert_eq!(universal_newlines(b"\r"), b"\n");
    }

    #[test]
    fn signed_shape_and_round_trip() {
        let (cert, key) = self_signed("host.example.org", 1);
        let msg = b"APEL-cloud-message: v0.4\nVMUUID: x\n%%\n";
        let signed = sign(msg, &cert, &key).unwrap();
        let text = String::from_utf8(signed.clone()).unwrap();
        assert!(!text.contains('\r'));
        assert!(text.starts_with("MIME-Version: 1.0\nContent-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; micalg=\"sha-256\"; boundary=\""), "{text}");
        assert!(text.contains("\n\nThis is an S/MIME signed message\n\n"));
        assert!(
            text.contains("Content-Type: text/plain\n\nAPEL-cloud-message: v0.4\nVMUUID: x\n%%\n")
        );
        assert!(text.contains("Content-Disposition: attachment; filename=\"smime.p7s\""));

        // verifies (certificate trusted as its own root) and yields the text
        let (p7, content) = Pkcs7::from_smime(&signed).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(cert.clone()).unwrap();
        let store = store.build();
        let mut out = Vec::new();
        let none = Stack::new().unwrap();
        p7.verify(
            &none,
            &store,
            content.as_deref(),
            Some(&mut out),
            Pkcs7Flags::TEXT,
        )
        .unwrap();
        assert_eq!(universal_newlines(&out), msg);

        // a flipped byte in the content fails
        let tampered = text.replace("VMUUID: x", "VMUUID: y");
        let (p7, content) = Pkcs7::from_smime(tampered.as_bytes()).unwrap();
        assert!(p7
            .verify(&none, &store, content.as_deref(), None, Pkcs7Flags::TEXT)
            .is_err());
    }

    #[test]
    fn encrypted_round_trip() {
        let (cert, key) = self_signed("host.example.org", 1);
        let (server, server_key) = self_signed("apel.example.org", 2);
        let signed = sign(b"hello\n", &cert, &key).unwrap();
        let enc = encrypt(&signed, &server).unwrap();
        let text = String::from_utf8(enc.clone()).unwrap();
        assert!(!text.contains('\r'));
        assert!(
            text.contains("application/x-pkcs7-mime") || text.contains("application/pkcs7-mime")
        );
        let (p7, _) = Pkcs7::from_smime(&enc).unwrap();
        let plain = p7
            .decrypt(&server_key, &server, Pkcs7Flags::empty())
            .unwrap();
        assert_eq!(universal_newlines(&plain), signed);
    }
}
