//! The file server: whole files, ranges, validators, Basic auth, path
//! safety, faults and the access log.

use std::time::{Duration, Instant};

use fedcloud_appliance::testsrv::faults::Fault;
use fedcloud_appliance::testsrv::files::{self, FilesOptions, FilesServer};
use reqwest::header;

use super::{client, listener};

/// 100 000 bytes of a recognisable pattern.
fn content() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

async fn start(token: Option<&str>) -> (FilesServer, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("tmp");
    std::fs::write(root.path().join("image.qcow2"), content()).expect("write");
    std::fs::create_dir(root.path().join("lists")).expect("mkdir");
    std::fs::write(root.path().join("lists/my list.json"), b"{\"ok\": true}\n").expect("write");
    let srv = files::serve(
        listener().await,
        FilesOptions {
            root: root.path().into(),
            token: token.map(str::to_string),
        },
    )
    .expect("files starts");
    (srv, root)
}

fn url(srv: &FilesServer, path: &str) -> String {
    format!("http://{}{path}", srv.server.addr())
}

#[tokio::test]
async fn serves_whole_files_with_validators() {
    let (srv, _root) = start(None).await;
    let c = client();
    let resp = c.get(url(&srv, "/image.qcow2")).send().await.expect("GET");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h[header::CONTENT_LENGTH], "100000");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::CONTENT_TYPE], "application/octet-stream");
    let etag = h[header::ETAG].to_str().expect("etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let last_modified = h[header::LAST_MODIFIED].to_str().expect("date").to_string();
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
    assert_eq!(resp.bytes().await.expect("body"), content());

    // Percent-encoded names; content type by extension.
    let resp = c
        .get(url(&srv, "/lists/my%20list.json"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.text().await.expect("body"), "{\"ok\": true}\n");

    // HEAD: headers only.
    let resp = c
        .head(url(&srv, "/image.qcow2"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()[header::CONTENT_LENGTH]
                .to_str()
                .expect("len")
        ),
        (200, "100000")
    );

    // Conditional requests.
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 304);
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::IF_MODIFIED_SINCE, &last_modified)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 304);
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::IF_MODIFIED_SINCE, old)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);

    // Only GET and HEAD.
    assert_eq!(
        c.post(url(&srv, "/image.qcow2"))
            .send()
            .await
            .expect("POST")
            .status(),
        405
    );
}

#[tokio::test]
async fn byte_ranges() {
    let (srv, _root) = start(None).await;
    let c = client();
    let all = content();
    let get_range = |range: &'static str| {
        c.get(url(&srv, "/image.qcow2"))
            .header(header::RANGE, range)
            .send()
    };

    let resp = get_range("bytes=10-19").await.expect("GET");
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes 10-19/100000");
    assert_eq!(resp.headers()[header::CONTENT_LENGTH], "10");
    assert_eq!(resp.bytes().await.expect("body"), all[10..20]);

    // Resume from an offset (what a download client does after a cut).
    let resp = get_range("bytes=99990-").await.expect("GET");
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        "bytes 99990-99999/100000"
    );
    assert_eq!(resp.bytes().await.expect("body"), all[99_990..]);

    // Suffix.
    let resp = get_range("bytes=-5").await.expect("GET");
    assert_eq!(resp.bytes().await.expect("body"), all[99_995..]);

    // Unsatisfiable.
    let resp = get_range("bytes=100000-").await.expect("GET");
    assert_eq!(resp.status(), 416);
    assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes */100000");

    // Several ranges or garbage: the whole file.
    for range in ["bytes=0-1,5-6", "lines=1-2", "bytes=9-1"] {
        let resp = get_range(range).await.expect("GET");
        assert_eq!(resp.status(), 200, "{range}");
        assert_eq!(resp.bytes().await.expect("body").len(), all.len());
    }

    // If-Range: honoured only while the validator matches.
    let etag = c
        .head(url(&srv, "/image.qcow2"))
        .send()
        .await
        .expect("HEAD")
        .headers()[header::ETAG]
        .clone();
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::RANGE, "bytes=0-0")
        .header(header::IF_RANGE, etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 206);
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::RANGE, "bytes=0-0")
        .header(header::IF_RANGE, "\"stale\"")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);

    let stats = srv.stats();
    assert_eq!((stats.partial, stats.range_not_satisfiable), (4, 1));
    assert!(stats
        .log
        .iter()
        .any(|e| e.range.as_deref() == Some("bytes=99990-") && e.status == 206 && e.bytes == 10));
}

#[tokio::test]
async fn basic_auth_with_the_token_as_user_name() {
    let (srv, _root) = start(Some("ghp_testtoken")).await;
    let c = client();
    let resp = c.get(url(&srv, "/image.qcow2")).send().await.expect("GET");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"fedcloud-testsrv\""
    );
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .basic_auth("someone", Some("wrong"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .basic_auth("ghp_testtoken", Some("x-oauth-basic"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.expect("body").len(), 100_000);
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .bearer_auth("ghp_testtoken")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(srv.stats().unauthorized, 2);
}

#[tokio::test]
async fn nothing_outside_the_root() {
    let (srv, root) = start(None).await;
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::write(outside.path().join("secret"), b"secret").expect("write");
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
        .expect("symlink");
    // Raw requests: URL libraries would normalise the dot segments away.
    for target in [
        "/../secret",
        "/%2e%2e/secret",
        "/lists/..%2f..%2fsecret",
        "/link",
        "/lists",
        "/",
        "/missing",
        "/%zz",
    ] {
        assert_eq!(raw_status(srv.server.addr(), target).await, 404, "{target}");
    }
    assert_eq!(
        raw_status(srv.server.addr(), "/lists/../image.qcow2").await,
        404,
        "no dot segments at all"
    );
    assert_eq!(raw_status(srv.server.addr(), "/image.qcow2").await, 200);
}

/// The status code of `GET target` sent verbatim.
async fn raw_status(addr: std::net::SocketAddr, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.expect("status line");
    std::str::from_utf8(&head[9..12])
        .expect("ascii")
        .parse()
        .expect("status")
}

#[tokio::test]
async fn faults_cut_slow_down_and_fail_downloads() {
    let (srv, _root) = start(None).await;
    let c = client();

    // Cut mid-transfer: full Content-Length, short body, connection closed.
    c.post(url(&srv, "/__test/faults"))
        .json(&serde_json::json!({"truncate_after": 4096}))
        .send()
        .await
        .expect("POST");
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .send()
        .await
        .expect("headers");
    assert_eq!(resp.headers()[header::CONTENT_LENGTH], "100000");
    assert!(resp.bytes().await.is_err(), "short body is an error");

    // Throttle: 20 000 bytes at 40 000 B/s take about half a second.
    srv.faults.push(Fault::throttle(40_000));
    let started = Instant::now();
    let resp = c
        .get(url(&srv, "/image.qcow2"))
        .header(header::RANGE, "bytes=0-19999")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.bytes().await.expect("body").len(), 20_000);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");

    // Status, on one path only.
    srv.faults.push(Fault::status(503).on_path("/lists/"));
    assert_eq!(
        c.get(url(&srv, "/image.qcow2"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
    assert_eq!(
        c.get(url(&srv, "/lists/my%20list.json"))
            .send()
            .await
            .expect("GET")
            .status(),
        503
    );

    // Drop.
    srv.faults.push(Fault::drop_connection());
    assert!(c.get(url(&srv, "/image.qcow2")).send().await.is_err());

    let stats: serde_json::Value = c
        .get(url(&srv, "/__test/stats"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["faulted"], 4);
    assert_eq!(stats["requests"], 5);
    assert_eq!(stats["log"][1]["range"], "bytes=0-19999");
    c.delete(url(&srv, "/__test/stats"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(srv.stats().requests, 0);
}
