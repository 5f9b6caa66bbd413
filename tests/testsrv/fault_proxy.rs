//! The fault proxy, in-process (`spawn` + `FaultControl`) and through its
//! HTTP control API.

use std::time::{Duration, Instant};

use fedcloud_appliance::testsrv::fault_proxy::{self, Fault};
use serde_json::{json, Value};

use super::{client, echo_upstream, Echo};

#[tokio::test]
async fn forwards_and_injects_faults() {
    let upstream = echo_upstream().await;
    let (addr, control) = fault_proxy::spawn(format!("http://{upstream}").parse().expect("url"));
    let c = client();
    let url = |path: &str| format!("http://{addr}{path}");

    // Clean pass-through, body and query included.
    let echo: Echo = c
        .post(url("/v3/auth/tokens?x=1"))
        .body("hello")
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("echo");
    assert_eq!(
        (echo.method.as_str(), echo.target.as_str(), echo.body_len),
        ("POST", "/v3/auth/tokens?x=1", 5)
    );

    // Status on a path prefix, twice.
    control.push(Fault::status(503).times(2).on_path("/v3"));
    assert_eq!(
        c.get(url("/image/v2/images"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
    assert_eq!(
        c.get(url("/v3/projects"))
            .send()
            .await
            .expect("GET")
            .status(),
        503
    );
    assert_eq!(
        c.get(url("/v3/projects"))
            .send()
            .await
            .expect("GET")
            .status(),
        503
    );
    assert_eq!(
        c.get(url("/v3/projects"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    // Delay.
    control.push(Fault::delay(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(c.get(url("/slow")).send().await.expect("GET").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Dropped connection.
    control.push(Fault::drop_connection());
    assert!(c.get(url("/dropped")).send().await.is_err());

    // Truncated upstream body.
    control.push(Fault::truncate_after(10));
    let resp = c.get(url("/cut")).send().await.expect("headers");
    assert!(resp.bytes().await.is_err());

    let stats = control.stats();
    assert_eq!((stats.seen, stats.faulted), (8, 5));
    assert!(control.pending().is_empty());
}

#[tokio::test]
async fn http_control_api() {
    let upstream = echo_upstream().await;
    let (addr, control) = fault_proxy::spawn(format!("http://{upstream}").parse().expect("url"));
    let c = client();
    let url = |path: &str| format!("http://{addr}{path}");

    let resp = c
        .post(url("/__fault"))
        .json(&json!({"status": 502, "count": 2, "path_prefix": "/v3"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    let listed: Value = c
        .get(url("/__fault"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["pending"],
        json!([{"status": 502, "path_prefix": "/v3", "count": 2}])
    );
    assert_eq!(c.get(url("/v3")).send().await.expect("GET").status(), 502);

    // Bad rules are refused.
    let resp = c
        .post(url("/__fault"))
        .json(&json!({"stauts": 500}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 400);

    c.delete(url("/__fault")).send().await.expect("DELETE");
    assert!(control.pending().is_empty());
    assert_eq!(c.get(url("/v3")).send().await.expect("GET").status(), 200);

    let stats: Value = c
        .get(url("/__fault/stats"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(stats, json!({"seen": 2, "faulted": 1, "forwarded": 1}));
}

/// `spawn` also works from synchronous code (tests that run the `appliance`
/// binary): the proxy then lives on the shared background runtime.
#[test]
fn spawn_works_outside_a_runtime() {
    let handle = fedcloud_appliance::testsrv::runtime();
    let upstream = handle.block_on(async { tokio::spawn(echo_upstream()).await.expect("echo") });
    let (addr, control) = fault_proxy::spawn(format!("http://{upstream}").parse().expect("url"));
    control.set(Fault::status(418));
    // The caller's own runtime is independent of the proxy's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let got = rt.block_on(async {
        client()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("GET")
            .status()
    });
    assert_eq!(got, 418);
    drop(rt);
    let got = handle.block_on(async {
        client()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("GET")
            .status()
    });
    assert_eq!(got, 200);
}

/// `date_offset_seconds` rewrites the `Date` of real answers: a peer whose
/// clock is off, for clock-skew checks (`doctor`).
#[tokio::test]
async fn rewrites_the_date_header() {
    let upstream = echo_upstream().await;
    let (addr, control) = fault_proxy::spawn(format!("http://{upstream}").parse().expect("url"));
    let c = client();
    let date = |r: &reqwest::Response| {
        let v = r.headers()["date"].to_str().expect("ASCII").to_string();
        chrono::DateTime::parse_from_rfc2822(&v)
            .unwrap_or_else(|e| panic!("Date {v:?}: {e}"))
            .with_timezone(&chrono::Utc)
    };
    control.push(Fault::date_offset(600).times(1));
    let r = c
        .get(format!("http://{addr}/v3"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let skew = (date(&r) - chrono::Utc::now()).num_seconds();
    assert!((595..=605).contains(&skew), "skew {skew}");
    let r = c
        .get(format!("http://{addr}/v3"))
        .send()
        .await
        .expect("GET");
    assert!((date(&r) - chrono::Utc::now()).num_seconds().abs() <= 5);
    // Through the control API, behind.
    let added = c
        .post(format!("http://{addr}/__fault"))
        .json(&json!({"date_offset_seconds": -900}))
        .send()
        .await
        .expect("POST");
    assert_eq!(added.status(), 200);
    let r = c
        .get(format!("http://{addr}/v3"))
        .send()
        .await
        .expect("GET");
    let skew = (date(&r) - chrono::Utc::now()).num_seconds();
    assert!((-905..=-895).contains(&skew), "skew {skew}");
}
