//! The OIDC front end (header stripping and claim injection) and the TLS
//! proxy, each in front of an upstream that echoes what it received.

use fedcloud_appliance::testsrv::oidc::{self, OidcOptions, OidcToken};
use fedcloud_appliance::testsrv::tls::TlsOptions;
use fedcloud_appliance::testsrv::tls_proxy::{self, TlsProxyOptions};
use fedcloud_appliance::testsrv::{Error, Server};
use serde_json::{json, Value};

use super::pki::Pki;
use super::{client, echo_upstream, https_client, listener, Echo};

const FED_AUTH: &str = "/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth";
const ENTITLEMENT: &str = "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu";

async fn oidc_proxy(upstream: url::Url) -> Server {
    let tokens = vec![
        OidcToken::parse(&format!(
            "good-token=alice:{ENTITLEMENT};urn:mace:egi.eu:group:ops:role=member#aai.egi.eu"
        ))
        .expect("token"),
        OidcToken::parse("lonely-token=bob").expect("token"),
    ];
    let opts = OidcOptions {
        upstream,
        issuer: "https://aai.test.example/".into(),
        tokens,
    };
    oidc::serve(listener().await, opts).expect("oidc starts")
}

#[tokio::test]
async fn oidc_injects_claims_on_the_federation_path_only() {
    let upstream = echo_upstream().await;
    let srv = oidc_proxy(format!("http://{upstream}").parse().expect("url")).await;
    let c = client();
    let url = |path: &str| format!("http://{}{path}", srv.addr());

    // Known token: claims added, spoofed claims replaced, the rest intact.
    let resp = c
        .post(url(FED_AUTH))
        .bearer_auth("good-token")
        .header("OIDC-sub", "mallory")
        .header("oidc_groups", "admins")
        .header("X-Custom", "kept")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream"], "echo");
    let echo: Echo = resp.json().await.expect("echo");
    assert_eq!(
        (echo.method.as_str(), echo.target.as_str()),
        ("POST", FED_AUTH)
    );
    assert_eq!(echo.headers["oidc-sub"], ["alice"]);
    assert_eq!(echo.header("oidc-iss"), Some("https://aai.test.example/"));
    let groups = format!("{ENTITLEMENT};urn:mace:egi.eu:group:ops:role=member#aai.egi.eu");
    assert_eq!(echo.header("oidc-groups"), Some(groups.as_str()));
    assert_eq!(
        echo.header("oidc-eduperson-entitlement"),
        Some(groups.as_str())
    );
    assert_eq!(echo.header("oidc-email"), Some("alice@test.example"));
    assert!(!echo.headers.contains_key("oidc_groups"));
    assert_eq!(echo.header("authorization"), Some("Bearer good-token"));
    assert_eq!(echo.header("x-custom"), Some("kept"));
    assert_eq!(
        echo.header("host"),
        Some(srv.addr().to_string().as_str()),
        "Host is preserved"
    );
    assert_eq!(echo.body_len, 2);

    // A token without groups: empty OIDC-groups.
    let echo: Echo = c
        .post(url(FED_AUTH))
        .bearer_auth("lonely-token")
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("echo");
    assert_eq!(
        (echo.header("oidc-sub"), echo.header("oidc-groups")),
        (Some("bob"), Some(""))
    );

    // Unknown or missing token: Keystone-style 401, nothing forwarded.
    for token in [Some("bad-token"), None] {
        let mut req = c.post(url(FED_AUTH));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("POST");
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer "));
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["title"], "Unauthorized");
    }

    // Other paths: forwarded as they are, minus OIDC-* headers.
    let resp = c
        .get(url("/v3/auth/tokens?nocatalog=1"))
        .header("X-Auth-Token", "tok")
        .header("X-Subject-Token", "sub")
        .header("OIDC-sub", "mallory")
        .send()
        .await
        .expect("GET");
    let echo: Echo = resp.json().await.expect("echo");
    assert_eq!(echo.target, "/v3/auth/tokens?nocatalog=1");
    assert_eq!(echo.header("x-auth-token"), Some("tok"));
    assert!(
        !echo.headers.keys().any(|k| k.starts_with("oidc")),
        "{:?}",
        echo.headers
    );

    // Any prefix in front of OS-FEDERATION.
    let prefixed = "/identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/oidc/auth";
    assert_eq!(
        c.post(url(prefixed)).send().await.expect("POST").status(),
        401
    );
}

#[tokio::test]
async fn oidc_streams_large_bodies_and_keeps_an_upstream_prefix() {
    let upstream = echo_upstream().await;
    let srv = oidc_proxy(format!("http://{upstream}/identity/").parse().expect("url")).await;
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(&body));
    let resp = client()
        .put(format!("http://{}/v3/blob?x=1", srv.addr()))
        .body(body)
        .send()
        .await
        .expect("PUT");
    let echo: Echo = resp.json().await.expect("echo");
    assert_eq!(echo.target, "/identity/v3/blob?x=1");
    assert_eq!((echo.body_len, echo.body_sha256), (3_000_000, digest));
}

#[tokio::test]
async fn proxies_refuse_non_loopback_or_https_upstreams() {
    for bad in [
        "http://192.0.2.1:5000",
        "https://127.0.0.1:5000",
        "http://keystone.example.org/",
    ] {
        let opts = OidcOptions {
            upstream: bad.parse().expect("url"),
            issuer: "https://i/".into(),
            tokens: vec![],
        };
        assert!(oidc::serve(listener().await, opts).is_err(), "{bad}");
    }
    let err = oidc::serve(
        listener().await,
        OidcOptions {
            upstream: "http://10.0.0.1/".parse().expect("url"),
            issuer: "i".into(),
            tokens: vec![],
        },
    )
    .expect_err("refused");
    assert!(matches!(err, Error::NotLoopback { .. }), "{err}");
}

#[tokio::test]
async fn unreachable_upstream_is_a_502() {
    // A port nobody listens on: bind, note, drop.
    let dead = listener().await.local_addr().expect("addr");
    let srv = oidc_proxy(format!("http://{dead}").parse().expect("url")).await;
    let resp = client()
        .get(format!("http://{}/v3", srv.addr()))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 502);
}

#[tokio::test]
async fn tls_proxy_terminates_tls_and_streams() {
    let upstream = echo_upstream().await;
    let pki = Pki::shared();
    let tls = TlsOptions {
        cert: pki.server.cert_path.clone(),
        key: pki.server.key_path.clone(),
        client_ca_dir: Some(pki.ca_dir.clone()),
    };
    let srv = tls_proxy::serve(
        listener().await,
        TlsProxyOptions {
            upstream: format!("http://{upstream}").parse().expect("url"),
            tls,
        },
    )
    .expect("tls proxy starts");
    let port = srv.addr().port();

    // No client certificate needed; Host kept, X-Forwarded-Proto added.
    for base in [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
    ] {
        let resp = https_client(None)
            .post(format!("{base}/v3/auth/tokens"))
            .json(&json!({"a": 1}))
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), 200);
        let echo: Echo = resp.json().await.expect("echo");
        assert_eq!(echo.target, "/v3/auth/tokens");
        assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
        assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(echo.header("content-type"), Some("application/json"));
    }
    // With a client certificate, too.
    let resp = https_client(Some(&pki.client))
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    // Plain HTTP to the TLS port fails.
    assert!(client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .is_err());
    // A client that does not trust the test CA refuses the server.
    assert!(client()
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn tls_setup_errors_name_the_file() {
    let missing = TlsOptions {
        cert: "/nonexistent/cert.pem".into(),
        key: "/nonexistent/key.pem".into(),
        client_ca_dir: None,
    };
    let err = tls_proxy::serve(
        listener().await,
        TlsProxyOptions {
            upstream: "http://127.0.0.1:1".parse().expect("url"),
            tls: missing,
        },
    )
    .expect_err("missing files");
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}
