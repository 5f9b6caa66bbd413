//! The `fedcloud-testsrv` binary's contract with the reference-site script:
//! the exact flags, `READY <addr>` on stdout, clean exit on SIGTERM,
//! loopback only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::pki::{Pki, CLIENT_DN};
use super::{client, https_client};

/// A running `fedcloud-testsrv`; SIGTERMed and reaped on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("fedcloud-testsrv"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning fedcloud-testsrv");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading READY");
        let addr = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("expected READY <addr>, got {line:?}"))
            .trim()
            .parse()
            .expect("READY address");
        Running { child, addr }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        let status =
            wait_timeout(&mut self.child, Duration::from_secs(10)).expect("exits after SIGTERM");
        std::mem::forget(self);
        status
    }

    fn signal_term(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.signal_term();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(5));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn gocdb_subcommand() {
    let srv = Running::start(&[
        "gocdb",
        "--listen",
        "127.0.0.1:0",
        "--site",
        "TEST-SITE,https://127.0.0.1:5000/v3,12249G0",
        "--site",
        "OTHER,https://127.0.0.1:5001/v3,7G0,/DC=org/DC=example/CN=other",
    ]);
    let body = rt().block_on(async {
        let url = format!(
            "http://{}/gocdbpi/public/?method=get_service&service_type=org.openstack.nova",
            srv.addr
        );
        client()
            .get(url)
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    });
    assert_eq!(body.matches("<SERVICE_ENDPOINT ").count(), 2);
    assert!(body.contains("<HOSTDN>/DC=org/DC=example/CN=other</HOSTDN>"));
    assert!(srv.terminate().success());
}

#[test]
fn ams_subcommand_with_mutual_tls() {
    let pki = Pki::shared();
    let state = tempfile::tempdir().expect("tmp");
    let srv = Running::start(&[
        "ams",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        pki.server.cert_path.to_str().expect("utf-8"),
        "--tls-key",
        pki.server.key_path.to_str().expect("utf-8"),
        "--client-ca-dir",
        pki.ca_dir.to_str().expect("utf-8"),
        "--state-dir",
        state.path().to_str().expect("utf-8"),
        "--project",
        "accounting",
        "--token",
        "bin-token",
        "--topic",
        "eu-egi-cloud-accounting",
        "--max-message-bytes",
        "1000",
    ]);
    let base = format!("https://localhost:{}", srv.addr.port());
    rt().block_on(async {
        let token: Value = https_client(Some(&pki.client))
            .get(format!(
                "{base}/v1/service-types/ams/hosts/localhost:authx509"
            ))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(token, json!({"token": "bin-token"}));
        let publish = |topic: &str, data: String| {
            https_client(None)
                .post(format!(
                    "{base}/v1/projects/accounting/topics/{topic}:publish"
                ))
                .header("x-api-key", "bin-token")
                .body(json!({"messages": [{"attributes": {}, "data": data}]}).to_string())
                .send()
        };
        assert_eq!(
            publish("eu-egi-cloud-accounting", "aGk=".into())
                .await
                .expect("POST")
                .status(),
            200
        );
        assert_eq!(
            publish("other", "aGk=".into())
                .await
                .expect("POST")
                .status(),
            404
        );
        assert_eq!(
            publish("eu-egi-cloud-accounting", "QUFB".repeat(300))
                .await
                .expect("POST")
                .status(),
            413
        );
        let stats: Value = https_client(None)
            .get(format!("{base}/__test/stats"))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(stats["authx509_dns"], json!([CLIENT_DN]));
    });
    assert!(state.path().join("messages/0000000001.json").is_file());
    assert!(srv.terminate().success());
}

#[test]
fn files_and_fault_proxy_subcommands() {
    let root = tempfile::tempdir().expect("tmp");
    std::fs::write(root.path().join("list.json"), b"[]").expect("write");
    let files = Running::start(&[
        "files",
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().expect("utf-8"),
        "--token",
        "tok",
    ]);
    let upstream = format!("http://{}", files.addr);
    let proxy = Running::start(&[
        "fault-proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
    ]);
    rt().block_on(async {
        let c = client();
        let via = format!("http://{}/list.json", proxy.addr);
        let resp = c
            .get(&via)
            .basic_auth("tok", Some("x-oauth-basic"))
            .send()
            .await
            .expect("GET");
        assert_eq!(
            (resp.status().as_u16(), resp.text().await.expect("body")),
            (200, "[]".to_string())
        );
        assert_eq!(c.get(&via).send().await.expect("GET").status(), 401);
        c.post(format!("http://{}/__fault", proxy.addr))
            .json(&json!({"status": 503}))
            .send()
            .await
            .expect("POST");
        assert_eq!(c.get(&via).send().await.expect("GET").status(), 503);
        let stats: Value = c
            .get(format!("http://{}/__fault/stats", proxy.addr))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(stats, json!({"seen": 3, "faulted": 1, "forwarded": 2}));
    });
    assert!(proxy.terminate().success());
    assert!(files.terminate().success());
}

#[test]
fn oidc_and_tls_proxy_subcommands_start() {
    let pki = Pki::shared();
    let oidc = Running::start(&[
        "oidc",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:5000",
        "--issuer",
        "https://aai.test.example/",
        "--token",
        "t1=alice:g1;g2",
        "--token",
        "t2=bob",
    ]);
    let tls = Running::start(&[
        "tls-proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &format!("http://{}", oidc.addr),
        "--cert",
        pki.server.cert_path.to_str().expect("utf-8"),
        "--key",
        pki.server.key_path.to_str().expect("utf-8"),
    ]);
    rt().block_on(async {
        // Through TLS proxy and OIDC front end; no bearer token -> OIDC's 401.
        let url = format!(
            "https://localhost:{}/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth",
            tls.addr.port()
        );
        let resp = https_client(None).post(url).send().await.expect("POST");
        assert_eq!(resp.status(), 401);
    });
    assert!(tls.terminate().success());
    assert!(oidc.terminate().success());
}

#[test]
fn refuses_non_loopback_addresses() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("fedcloud-testsrv"))
        .args([
            "gocdb",
            "--listen",
            "0.0.0.0:0",
            "--site",
            "S,https://h/v3,1G0",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));

    let out = Command::new(assert_cmd::cargo::cargo_bin("fedcloud-testsrv"))
        .args([
            "fault-proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://192.0.2.1/",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{out:?}"
    );
}
