//! `IssuerCA` / `TrustedCA`: the endpoint's TLS facts, read by a real
//! handshake with a TLS server that requests client certificates (the
//! project's OpenSSL TLS proxy in front of the reference site's Keystone,
//! in-process, with a client CA directory of two CAs), differentially with
//! cloud-info-provider 1.2.0 (its pyOpenSSL probe) on the same site YAML;
//! then the reference site's own TLS proxy (no client CA list), and an
//! endpoint neither trusts (both publish `UNKNOWN`; the appliance warns).
//! cloud-info-provider verifies the server with OpenSSL's default paths, so
//! it gets the test CAs through `SSL_CERT_DIR`; the appliance through
//! `openstack.ca-dir`.

use std::path::Path;

use fedcloud_appliance::info::tls::oneline;
use fedcloud_appliance::testsrv::tls::TlsOptions;
use fedcloud_appliance::testsrv::tls_proxy::{self, TlsProxyOptions};
use openssl::x509::X509;
use serde_json::Value;
use url::Url;

use super::refsite::{cip_env, ours, same, var, Dir, RunOut};
use crate::testsrv::pki::Pki;

/// Copy the first certificate of `pem_file` into `dir` as `<hash>.0`.
fn hashed(dir: &Path, pem_file: &Path) -> X509 {
    let cert = X509::from_pem(&std::fs::read(pem_file).unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{:08x}.0", cert.subject_name_hash())),
        cert.to_pem().unwrap(),
    )
    .unwrap();
    cert
}

async fn run<F: FnOnce() -> RunOut + Send + 'static>(f: F) -> RunOut {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn endpoint_of(d: &Value) -> &Value {
    &d["CloudComputingEndpoint"][0]
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_issuer_and_trusted_cas_like_cloud_info_provider() {
    let pki = Pki::shared();
    let dir = Dir::new();
    let alpha = var("REFSITE_PROJECT_ALPHA1_ID");

    // Client CAs: the test PKI's and the reference site's.
    let cas = dir.path.join("client-cas");
    std::fs::create_dir(&cas).unwrap();
    let test_ca = hashed(&cas, &pki.ca.cert_path);
    let site_ca = hashed(&cas, Path::new(&var("REFSITE_CA_FILE")));
    let mut names: Vec<_> = std::fs::read_dir(&cas)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let expected_trusted: Vec<String> = names
        .iter()
        .map(|n| {
            let c = X509::from_pem(&std::fs::read(cas.join(n)).unwrap()).unwrap();
            oneline(c.subject_name())
        })
        .collect();
    assert_eq!(expected_trusted.len(), 2);
    assert!(expected_trusted.contains(&oneline(site_ca.subject_name())));

    let upstream = Url::parse(&var("OS_AUTH_URL")).unwrap().join("/").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = tls_proxy::serve(
        listener,
        TlsProxyOptions {
            upstream,
            tls: TlsOptions {
                cert: pki.server.cert_path.clone(),
                key: pki.server.key_path.clone(),
                client_ca_dir: Some(cas.clone()),
            },
        },
    )
    .expect("TLS proxy starts");
    let endpoint = format!("https://localhost:{}/v3", proxy.addr().port());

    // The appliance trusts the test CA for OpenStack (and the probe).
    let (site, cfg) = dir.write_at(
        &endpoint,
        &format!("  ca-dir: {}\n", cas.display()),
        &[("vo.alpha.example", &alpha)],
        "",
    );
    let o = run({
        let cfg = cfg.clone();
        move || ours(&cfg, &["info", "show"])
    })
    .await;
    let theirs = run({
        let cas = cas.display().to_string();
        move || cip_env(&site, &[], &[("SSL_CERT_DIR", &cas)])
    })
    .await;
    let d = same("TLS endpoint asking for client certificates", &o, &theirs);
    let ep = endpoint_of(&d);
    assert_eq!(ep["IssuerCA"], oneline(test_ca.subject_name()), "{ep:#}");
    assert_eq!(
        ep["TrustedCA"],
        serde_json::json!(expected_trusted),
        "{ep:#}"
    );
    assert_eq!(ep["URL"], endpoint.as_str());

    // Trusted by neither: UNKNOWN (and a warning), never an unverified DN.
    let dir2 = Dir::new();
    let (site, cfg) = dir2.write_at(&endpoint, "", &[("vo.alpha.example", &alpha)], "");
    let o = run(move || ours(&cfg, &["info", "show"])).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let theirs = run(move || cip_env(&site, &[], &[])).await;
    let d = same("TLS endpoint trusted by neither", &o, &theirs);
    assert_eq!(endpoint_of(&d)["IssuerCA"], "UNKNOWN");
    assert_eq!(endpoint_of(&d)["TrustedCA"], serde_json::json!(["UNKNOWN"]));
    assert!(
        o.stderr.contains("IssuerCA/TrustedCA unknown"),
        "{}",
        o.stderr
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_reference_site_tls_proxy_without_client_cas() {
    let dir = Dir::new();
    let endpoint = var("REFSITE_KEYSTONE_TLS_URL");
    let (site, cfg) = dir.write_at(
        &endpoint,
        &format!("  ca-dir: {}\n", var("REFSITE_CA_DIR")),
        &[("vo.alpha.example", &var("REFSITE_PROJECT_ALPHA1_ID"))],
        "",
    );
    let o = run(move || ours(&cfg, &["info", "show"])).await;
    let theirs =
        run(move || cip_env(&site, &[], &[("SSL_CERT_DIR", &var("REFSITE_CA_DIR"))])).await;
    let d = same("the reference site's TLS proxy", &o, &theirs);
    let ca = X509::from_pem(&std::fs::read(var("REFSITE_CA_FILE")).unwrap()).unwrap();
    assert_eq!(endpoint_of(&d)["IssuerCA"], oneline(ca.subject_name()));
    assert_eq!(endpoint_of(&d)["TrustedCA"], serde_json::json!([]));
}
