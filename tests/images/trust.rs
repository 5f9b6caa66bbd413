//! The signature matrix of spec image-sync §2.4 through the library, with
//! lists signed by `openssl smime -sign` in the test setup, and cloudkeeper's
//! public test vector. No reference site needed.

use fedcloud_appliance::images::list;
use fedcloud_appliance::images::policy::{self, Endorser, PolicyError};
use fedcloud_appliance::images::smime::{verify, Relax, TrustError};

use super::lists::{list_json, Img};
use super::pki::{pki, CA_DN, ENDORSER_DN};

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn content() -> Vec<u8> {
    let img = Img::new(
        "11111111-1111-1111-1111-111111111111",
        "http://127.0.0.1:1/a.img".into(),
        b"abc",
    );
    list_json(
        "aaaaaaaa-0000-0000-0000-000000000001",
        "20260101000000",
        "2499-12-31T22:00:00Z",
        ENDORSER_DN,
        &[img],
    )
}

fn code(e: &TrustError) -> i32 {
    match e {
        TrustError::Untrusted { code, .. } => *code,
        _ => -1,
    }
}

#[test]
fn detached_and_opaque_lists_signed_by_openssl_verify() {
    let p = pki();
    for opaque in [false, true] {
        let signed = p.sign(&content(), "endorser", opaque);
        let v = verify(&signed, &p.ca_dir(), now(), Relax::default()).unwrap();
        assert_eq!(v.signer.dn, ENDORSER_DN);
        assert_eq!(v.signer.ca, CA_DN);
        let l = list::parse(&v.content).unwrap();
        assert_eq!(l.images.len(), 1);
        let trusted = Endorser {
            dn: ENDORSER_DN.into(),
            ca: CA_DN.into(),
        };
        policy::check_list(&l, &v.signer, &trusted, None, now()).unwrap();
    }
}

#[test]
fn lf_only_transport_still_verifies() {
    let p = pki();
    let signed = p.sign(&content(), "endorser", false);
    let lf: Vec<u8> = signed.iter().copied().filter(|b| *b != b'\r').collect();
    assert_ne!(lf, signed);
    verify(&lf, &p.ca_dir(), now(), Relax::default()).unwrap();
}

#[test]
fn tampered_list_is_a_bad_signature() {
    let p = pki();
    let signed = p.sign(&content(), "endorser", false);
    let text = String::from_utf8(signed)
        .unwrap()
        .replacen("Test list", "Evil list", 1);
    let e = verify(text.as_bytes(), &p.ca_dir(), now(), Relax::default()).unwrap_err();
    assert!(matches!(e, TrustError::BadSignature(_)), "{e}");
    assert!(e.remedy().contains("nothing was changed"));
}

#[test]
fn revoked_signer_is_rejected_with_crl_check_on() {
    let p = pki();
    let signed = p.sign(&content(), "revoked", false);
    let e = verify(&signed, &p.ca_dir(), now(), Relax::default()).unwrap_err();
    assert_eq!(code(&e), 23, "{e}");
    assert!(e.to_string().contains("revoked"), "{e}");
}

#[test]
fn missing_crl_is_a_failure_unless_relaxed() {
    let p = pki();
    let signed = p.sign(&content(), "endorser", false);
    let e = verify(&signed, &p.ca_dir_without_crl(), now(), Relax::default()).unwrap_err();
    assert_eq!(code(&e), 3, "{e}");
    // The hint names the switch that applies (#14 item 11).
    assert!(e.remedy().contains("fetch-crl"));
    assert!(
        e.remedy().contains("images.relax.missing-crl"),
        "{}",
        e.remedy()
    );
    assert!(!e.remedy().contains("stale-crl"), "{}", e.remedy());
    let relax = Relax {
        missing_crl: true,
        ..Relax::default()
    };
    let v = verify(&signed, &p.ca_dir_without_crl(), now(), relax).unwrap();
    assert_eq!(v.warnings.len(), 1);
}

#[test]
fn host_only_certificate_needs_the_purpose_relaxation() {
    let p = pki();
    let signed = p.sign(&content(), "hostonly", false);
    let e = verify(&signed, &p.ca_dir(), now(), Relax::default()).unwrap_err();
    assert_eq!(code(&e), 26, "{e}");
    let relax = Relax {
        host_cert_purpose: true,
        ..Relax::default()
    };
    verify(&signed, &p.ca_dir(), now(), relax).unwrap();
}

#[test]
fn wrong_ca_and_impostor_are_rejected() {
    let p = pki();
    let signed = p.sign(&content(), "endorser", false);
    let e = verify(&signed, &p.other_ca_dir(), now(), Relax::default()).unwrap_err();
    assert!(matches!(e, TrustError::Untrusted { .. }), "{e}");
    let forged = p.sign(&content(), "impostor", false);
    let e = verify(&forged, &p.ca_dir(), now(), Relax::default()).unwrap_err();
    assert!(matches!(e, TrustError::Untrusted { .. }), "{e}");
    // a missing CA directory names itself and the remedy
    let e = verify(
        &signed,
        std::path::Path::new("/nonexistent/certificates"),
        now(),
        Relax::default(),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::CaDir { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/certificates"));
    assert!(e.remedy().contains("ca-policy-egi-core"));
}

#[test]
fn expired_signer_is_rejected() {
    // The same signature checked two years later: the endorser's
    // certificate (365 days) has expired by then.
    let p = pki();
    let signed = p.sign(&content(), "endorser", false);
    let later = now() + chrono::Duration::days(730);
    let e = verify(&signed, &p.ca_dir(), later, Relax::default()).unwrap_err();
    assert!(matches!(code(&e), 10 | 12), "{e}");
}

#[test]
fn endorser_mismatch_is_rejected_by_policy() {
    let p = pki();
    // The list names a different endorser than the one who signed.
    let img = Img::new(
        "11111111-1111-1111-1111-111111111111",
        "http://127.0.0.1:1/a.img".into(),
        b"abc",
    );
    let body = list_json(
        "aaaaaaaa-0000-0000-0000-000000000001",
        "1",
        "2499-12-31T22:00:00Z",
        "/DC=EU/CN=someone.else",
        &[img],
    );
    let signed = p.sign(&body, "endorser", false);
    let v = verify(&signed, &p.ca_dir(), now(), Relax::default()).unwrap();
    let l = list::parse(&v.content).unwrap();
    let trusted = Endorser {
        dn: ENDORSER_DN.into(),
        ca: CA_DN.into(),
    };
    let e = policy::check_list(&l, &v.signer, &trusted, None, now()).unwrap_err();
    assert!(matches!(e, PolicyError::SignerMismatch { .. }), "{e}");
    // Properly signed, but the subscription trusts someone else.
    let signed = p.sign(&content(), "endorser", false);
    let v = verify(&signed, &p.ca_dir(), now(), Relax::default()).unwrap();
    let l = list::parse(&v.content).unwrap();
    let other = Endorser {
        dn: "/DC=EU/CN=other".into(),
        ca: CA_DN.into(),
    };
    let e = policy::check_list(&l, &v.signer, &other, None, now()).unwrap_err();
    assert!(matches!(e, PolicyError::EndorserMismatch { .. }), "{e}");
}

#[test]
fn cloudkeeper_vector_passes_the_signature_but_not_the_endorser_check() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/cloudkeeper");
    let signed = std::fs::read(dir.join("imagelist01.signed")).unwrap();
    // It ships no CRL for its self-signed CA: the check runs with the
    // missing-CRL relaxation (everything else strict).
    let relax = Relax {
        missing_crl: true,
        ..Relax::default()
    };
    let v = verify(&signed, &dir, now(), relax).unwrap();
    let l = list::parse(&v.content).unwrap();
    assert_eq!(l.identifier, "76fdee70-8119-5d33-aaaa-3c57e1c60df1");
    let trusted = Endorser {
        dn: l.endorser.dn.clone(),
        ca: l.endorser.ca.clone(),
    };
    let e = policy::check_list(&l, &v.signer, &trusted, None, now()).unwrap_err();
    assert!(matches!(e, PolicyError::SignerMismatch { .. }), "{e}");
}
