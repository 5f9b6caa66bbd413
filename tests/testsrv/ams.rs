//! The AMS test server: authx509 over mutual TLS, publish and its errors,
//! the test API, faults, and faithfulness to argo-ams-library.

use std::time::Duration;

use base64::Engine as _;
use fedcloud_appliance::testsrv::ams::{self, AmsOptions, AmsServer};
use fedcloud_appliance::testsrv::faults::Fault;
use fedcloud_appliance::testsrv::tls::TlsOptions;
use serde_json::{json, Value};

use super::pki::{Pki, CLIENT_DN};
use super::{https_client, listener};

const TOKEN: &str = "s3cret-token";
const TOPIC: &str = "eu-egi-cloud-accounting";

fn tls() -> TlsOptions {
    let pki = Pki::shared();
    TlsOptions {
        cert: pki.server.cert_path.clone(),
        key: pki.server.key_path.clone(),
        client_ca_dir: Some(pki.ca_dir.clone()),
    }
}

async fn start(state: &std::path::Path, edit: impl FnOnce(&mut AmsOptions)) -> AmsServer {
    let mut opts = AmsOptions::new(Some(tls()), state, TOKEN);
    edit(&mut opts);
    ams::serve(listener().await, opts).expect("AMS starts")
}

fn base(srv: &AmsServer) -> String {
    format!("https://localhost:{}", srv.server.addr().port())
}

fn publish_url(srv: &AmsServer, project: &str, topic: &str) -> String {
    format!("{}/v1/projects/{project}/topics/{topic}:publish", base(srv))
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

fn ams_error(code: u16, message: &str, status: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

#[tokio::test]
async fn authx509_returns_the_token_for_a_trusted_client_certificate() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |_| {}).await;
    let pki = Pki::shared();
    let url = format!(
        "{}/v1/service-types/ams/hosts/localhost:authx509",
        base(&srv)
    );

    let (status, body) = status_and_json(
        https_client(Some(&pki.client))
            .get(&url)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!((status, body), (200, json!({"token": TOKEN})));
    assert_eq!(srv.stats().authx509_dns, [CLIENT_DN]);

    // No certificate: argo-api-authn's 400.
    let (status, body) =
        status_and_json(https_client(None).get(&url).send().await.expect("GET")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"message": "No certificate provided", "code": 400, "status": "BAD REQUEST"}})
    );

    // Untrusted CA and expired certificate: 401.
    for bad in [&pki.rogue_client, &pki.expired_client] {
        let (status, body) =
            status_and_json(https_client(Some(bad)).get(&url).send().await.expect("GET")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["status"], "UNAUTHORIZED");
    }

    // Another service type is not ours.
    let other = format!(
        "{}/v1/service-types/web/hosts/localhost:authx509",
        base(&srv)
    );
    let (status, _) = status_and_json(
        https_client(Some(&pki.client))
            .get(&other)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(status, 404);
    let stats = srv.stats();
    assert_eq!((stats.authx509, stats.tokens_issued), (5, 1));
}

#[tokio::test]
async fn authx509_honours_the_allowed_dns() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |o| {
        o.allowed_dns = vec!["/DC=org/DC=example/CN=other.example.org".into()]
    })
    .await;
    let url = format!(
        "{}/v1/service-types/ams/hosts/localhost:authx509",
        base(&srv)
    );
    let resp = https_client(Some(&Pki::shared().client))
        .get(&url)
        .send()
        .await
        .expect("GET");
    let (status, body) = status_and_json(resp).await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (404, &json!("Binding was not found"))
    );
}

#[tokio::test]
async fn publish_stores_every_message_and_returns_their_ids() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |_| {}).await;
    let c = https_client(None);

    // Header key, no Content-Type (as python-requests sends it).
    let body = json!({"messages": [
        {"attributes": {"empaid": "6b02e264/6b02e26470f5e0"}, "data": b64(b"APEL-cloud-message: v0.4\n")},
        {"data": b64(b"second")},
    ]});
    let resp = c
        .post(publish_url(&srv, "accounting", TOPIC))
        .header("x-api-key", TOKEN)
        .body(body.to_string());
    let (status, ids) = status_and_json(resp.send().await.expect("POST")).await;
    assert_eq!((status, ids), (200, json!({"messageIds": ["1", "2"]})));

    // ?key= works too (auth_option "both").
    let url = format!(
        "{}?key={TOKEN}",
        publish_url(&srv, "accounting", "other-topic")
    );
    let body = json!({"messages": [{"attributes": {}, "data": b64(b"third")}]});
    let (status, ids) = status_and_json(c.post(url).json(&body).send().await.expect("POST")).await;
    assert_eq!((status, ids), (200, json!({"messageIds": ["3"]})));

    // On disk, one JSON file per message.
    let mut files: Vec<String> = std::fs::read_dir(state.path().join("messages"))
        .expect("messages dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["0000000001.json", "0000000002.json", "0000000003.json"]
    );

    // The test API lists them, optionally by topic.
    let listed: Value = c
        .get(format!("{}/__test/messages", base(&srv)))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let listed = listed["messages"].as_array().expect("array").clone();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["topic"], TOPIC);
    assert_eq!(listed[0]["project"], "accounting");
    assert_eq!(
        listed[0]["attributes"],
        json!({"empaid": "6b02e264/6b02e26470f5e0"})
    );
    let msgs = srv.messages();
    assert_eq!(
        msgs[0].decoded_data().expect("base64"),
        b"APEL-cloud-message: v0.4\n"
    );
    assert_eq!(msgs[2].topic, "other-topic");
    let by_topic: Value = c
        .get(format!("{}/__test/messages?topic=other-topic", base(&srv)))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(by_topic["messages"].as_array().expect("array").len(), 1);

    let stats: Value = c
        .get(format!("{}/__test/stats", base(&srv)))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (stats["publish_calls"].as_u64(), stats["published"].as_u64()),
        (Some(2), Some(3))
    );

    // DELETE clears the store; ids keep counting.
    c.delete(format!("{}/__test/messages", base(&srv)))
        .send()
        .await
        .expect("DELETE");
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn publish_errors_follow_ams() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |o| {
        o.topics = vec![TOPIC.into()];
        o.max_message_bytes = 100;
    })
    .await;
    let c = https_client(None);
    let ok_body = json!({"messages": [{"data": b64(b"x")}]}).to_string();
    // (project, topic, key, body, expected status, expected body)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, String, u16, Value);
    let cases: Vec<Case> = vec![
        (
            "accounting",
            TOPIC,
            None,
            ok_body.clone(),
            401,
            ams_error(401, "Unauthorized", "UNAUTHORIZED"),
        ),
        (
            "accounting",
            TOPIC,
            Some("wrong"),
            ok_body.clone(),
            401,
            ams_error(401, "Unauthorized", "UNAUTHORIZED"),
        ),
        (
            "nope",
            TOPIC,
            Some(TOKEN),
            ok_body.clone(),
            404,
            ams_error(404, "project doesn't exist", "NOT_FOUND"),
        ),
        (
            "accounting",
            "unknown",
            Some(TOKEN),
            ok_body.clone(),
            404,
            ams_error(404, "Topic doesn't exist", "NOT_FOUND"),
        ),
        (
            "accounting",
            "bad%20name",
            Some(TOKEN),
            ok_body.clone(),
            400,
            ams_error(400, "Invalid topic name", "INVALID_ARGUMENT"),
        ),
        (
            "accounting",
            TOPIC,
            Some(TOKEN),
            "{not json".into(),
            400,
            ams_error(400, "Invalid Message Arguments", "INVALID_ARGUMENT"),
        ),
        (
            "accounting",
            TOPIC,
            Some(TOKEN),
            json!({"messages": [{"data": "not base64!"}]}).to_string(),
            400,
            ams_error(400, "Invalid Message Arguments", "INVALID_ARGUMENT"),
        ),
        (
            "accounting",
            TOPIC,
            Some(TOKEN),
            json!({"messages": [{"attributes": {"n": 1}, "data": ""}]}).to_string(),
            400,
            ams_error(400, "Invalid Message Arguments", "INVALID_ARGUMENT"),
        ),
        (
            "accounting",
            TOPIC,
            Some(TOKEN),
            json!({"messages": [{"data": b64(&[b'a'; 90])}]}).to_string(),
            413,
            ams_error(413, "Message size is too large", "INVALID_ARGUMENT"),
        ),
    ];
    for (project, topic, key, body, want_status, want_body) in cases {
        let mut req = c.post(publish_url(&srv, project, topic)).body(body.clone());
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        let resp = req.send().await.expect("POST");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json; charset=utf-8")
        );
        let (status, got) = status_and_json(resp).await;
        assert_eq!(
            (status, got),
            (want_status, want_body),
            "{project}/{topic} key={key:?} body={body}"
        );
    }
    assert!(
        srv.messages().is_empty(),
        "nothing stored from failed calls"
    );
}

#[tokio::test]
async fn topics_exist_as_configured() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |o| {
        o.topics = vec![TOPIC.into(), "SITE_TEST_ENDPOINT_1G0".into()]
    })
    .await;
    let c = https_client(None);
    let get = |path: String| {
        c.get(format!("{}{path}", base(&srv)))
            .header("x-api-key", TOKEN)
            .send()
    };
    let (status, body) = status_and_json(
        get(format!("/v1/projects/accounting/topics/{TOPIC}"))
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"name": format!("/projects/accounting/topics/{TOPIC}")})
        )
    );
    let (status, _) = status_and_json(
        get("/v1/projects/accounting/topics/nope".into())
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = status_and_json(
        get("/v1/projects/accounting/topics".into())
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["topics"][1]["name"],
        "/projects/accounting/topics/SITE_TEST_ENDPOINT_1G0"
    );
    // Without a key: 401, like every project call.
    let resp = c
        .get(format!(
            "{}/v1/projects/accounting/topics/{TOPIC}",
            base(&srv)
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);

    // "Any topic" mode: every valid name exists.
    let state = tempfile::tempdir().expect("tmp");
    let any = start(state.path(), |_| {}).await;
    let resp = c
        .get(format!(
            "{}/v1/projects/accounting/topics/whatever",
            base(&any)
        ))
        .header("x-api-key", TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn faults_hit_publish_calls() {
    let state = tempfile::tempdir().expect("tmp");
    let srv = start(state.path(), |_| {}).await;
    let c = https_client(None);
    let body = json!({"messages": [{"data": b64(b"m")}]}).to_string();
    let publish = || {
        c.post(publish_url(&srv, "accounting", TOPIC))
            .header("x-api-key", TOKEN)
            .body(body.clone())
            .send()
    };

    // Over HTTP, as the reference site's scripts do.
    let faults = format!("{}/__test/faults", base(&srv));
    let resp = c
        .post(&faults)
        .json(&json!({"status": 503, "count": 2}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    // A topic lookup is not a publish call: not faulted.
    let lookup = c
        .get(format!(
            "{}/v1/projects/accounting/topics/{TOPIC}",
            base(&srv)
        ))
        .header("x-api-key", TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(lookup.status(), 200);
    for _ in 0..2 {
        let (status, body) = status_and_json(publish().await.expect("POST")).await;
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], 503);
    }
    assert_eq!(publish().await.expect("POST").status(), 200);

    // Delay: a client with a short timeout gives up; the server still
    // accepts the message afterwards (as a slow AMS would).
    srv.faults.push(Fault::delay(Duration::from_millis(800)));
    let quick = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(Pki::shared().root())
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let err = quick
        .post(publish_url(&srv, "accounting", TOPIC))
        .header("x-api-key", TOKEN)
        .body(body.clone())
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");

    // Dropped connection.
    srv.faults.push(Fault::drop_connection());
    let err = publish().await.expect_err("connection dropped");
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("error"),
        "{err}"
    );

    // Faults on another path, and clearing.
    srv.faults
        .push(Fault::status(500).on_path("/v1/service-types/").times(5));
    let auth = https_client(Some(&Pki::shared().client))
        .get(format!(
            "{}/v1/service-types/ams/hosts/localhost:authx509",
            base(&srv)
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(auth.status(), 500);
    let listed: Value = c
        .get(&faults)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["pending"][0]["count"], 4);
    c.delete(&faults).send().await.expect("DELETE");
    assert!(srv.faults.pending().is_empty());
    assert_eq!(publish().await.expect("POST").status(), 200);
    let stats = srv.faults.stats();
    assert_eq!(stats.faulted, 5);
}

#[tokio::test]
async fn message_ids_continue_across_restarts() {
    let state = tempfile::tempdir().expect("tmp");
    let body = json!({"messages": [{"data": b64(b"m")}]}).to_string();
    let c = https_client(None);
    let first = start(state.path(), |_| {}).await;
    let (_, ids) = status_and_json(
        c.post(publish_url(&first, "accounting", TOPIC))
            .header("x-api-key", TOKEN)
            .body(body.clone())
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(ids, json!({"messageIds": ["1"]}));
    first.server.shutdown().await;
    let second = start(state.path(), |_| {}).await;
    let (_, ids) = status_and_json(
        c.post(publish_url(&second, "accounting", TOPIC))
            .header("x-api-key", TOKEN)
            .body(body)
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(ids, json!({"messageIds": ["2"]}));
    assert_eq!(second.messages().len(), 2);
}

#[tokio::test]
async fn refuses_bad_options() {
    let state = tempfile::tempdir().expect("tmp");
    let mut opts = AmsOptions::new(None, state.path(), "");
    assert!(
        ams::serve(listener().await, opts.clone()).is_err(),
        "empty token"
    );
    opts.token = TOKEN.into();
    opts.topics = vec!["bad topic".into()];
    assert!(
        ams::serve(listener().await, opts).is_err(),
        "invalid topic name"
    );
}

/// The real client library against our server: see `ams_client_check.py`.
/// The Python comes from `REFSITE_PYTHON` (environment, else the reference
/// site's `reference-site.env`): the reference site's venv, which has
/// `argo_ams_library`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ams_faithful_to_argo_ams_library() {
    let python = std::env::var("REFSITE_PYTHON")
        .unwrap_or_else(|_| crate::util::refsite().var("REFSITE_PYTHON").to_string());
    let state = tempfile::tempdir().expect("tmp");
    let max = 4096;
    let srv = start(state.path(), |o| {
        o.topics = vec![TOPIC.into()];
        o.max_message_bytes = max;
    })
    .await;
    let pki = Pki::shared();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testsrv/ams_client_check.py"
    );
    let port = srv.server.addr().port().to_string();
    let max = max.to_string();
    let args: Vec<&std::ffi::OsStr> = [
        script.as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--ca".as_ref(),
        pki.ca.cert_path.as_os_str(),
        "--cert".as_ref(),
        pki.client.cert_path.as_os_str(),
        "--key".as_ref(),
        pki.client.key_path.as_os_str(),
        "--rogue-cert".as_ref(),
        pki.rogue_client.cert_path.as_os_str(),
        "--rogue-key".as_ref(),
        pki.rogue_client.key_path.as_os_str(),
        "--token".as_ref(),
        TOKEN.as_ref(),
        "--project".as_ref(),
        "accounting".as_ref(),
        "--topic".as_ref(),
        TOPIC.as_ref(),
        "--unknown-topic".as_ref(),
        "no-such-topic".as_ref(),
        "--max-message-bytes".as_ref(),
        max.as_ref(),
    ]
    .to_vec();
    let out = tokio::process::Command::new(&python)
        .args(&args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ams_client_check.py failed ({}):\n{stderr}",
        out.status
    );
    let summary: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("summary ({e}):\n{stderr}"));
    let ids: Vec<String> = summary["messageIds"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("str").to_string())
        .collect();
    assert_eq!(ids.len(), 4, "{stderr}");

    // Everything the library published is stored as sent. The delayed
    // publish the client gave up on lands too, once the delay is over.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while srv.stats().published < ids.len() as u64 + 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = srv.messages();
    assert_eq!(stored.len(), ids.len() + 1);
    for id in &ids {
        let m = stored.iter().find(|m| &m.message_id == id).expect("stored");
        assert_eq!(m.topic, TOPIC);
    }
    assert_eq!(stored[0].decoded_data().expect("base64"), b"hello");
    assert_eq!(stored[0].attributes["empaid"], "6b02e264/6b02e26470f5e0");
    assert!(srv.stats().authx509_dns.contains(&CLIENT_DN.to_string()));
}
