//! `appliance info publish` to AMS: the project's AMS test server
//! (in-process, TLS, `authx509` with the test PKI's host certificate, AMS
//! project `egi_cloud_info`), the document read back from the broker,
//! base64-decoded and gunzipped, and compared with `info show`. Then the
//! size limit and a missing topic: the AMS target fails (exit 3) while the
//! file target is still written.

use std::io::Read as _;

use fedcloud_appliance::testsrv::ams::{self, AmsOptions};
use fedcloud_appliance::testsrv::tls::TlsOptions;
use serde_json::Value;

use super::refsite::{ours, var, Dir, RunOut};
use crate::testsrv::pki::Pki;

const TOKEN: &str = "info-ams-t0ken-5d1e";

async fn run(cfg: &std::path::Path, args: &'static [&'static str]) -> RunOut {
    let cfg = cfg.to_path_buf();
    tokio::task::spawn_blocking(move || ours(&cfg, args))
        .await
        .unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("the AMS message is gzip");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_publish_to_ams_and_read_the_document_back() {
    let pki = Pki::shared();
    let dir = Dir::new();
    let mut opts = AmsOptions::new(
        Some(TlsOptions {
            cert: pki.server.cert_path.clone(),
            key: pki.server.key_path.clone(),
            client_ca_dir: Some(pki.ca_dir.clone()),
        }),
        dir.path.join("ams"),
        TOKEN,
    );
    opts.project = "egi_cloud_info".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = ams::serve(listener, opts).expect("AMS starts");
    let port = server.server.addr().port();
    let ams_section = format!(
        "ams:\n  host: localhost\n  port: {port}\n  authn-port: {port}\n  capath: {}\n  certificate: {}\n  key: {}\n  timeout-seconds: 10\n  retries: 1\n  backoff-seconds: 0\n",
        pki.ca_dir.display(),
        pki.client.cert_path.display(),
        pki.client.key_path.display()
    );
    let file = dir.path.join("out/cloud-info.json");
    let alpha = var("REFSITE_PROJECT_ALPHA1_ID");
    let (_, cfg) = dir.write(
        &[("vo.alpha.example", &alpha)],
        &format!(
            "  publish:\n    file: {}\n    ams: {{}}\n{ams_section}",
            file.display()
        ),
    );

    // A dry run checks the credential and the size, and sends nothing.
    let dry = run(&cfg, &["info", "publish", "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(server.messages().is_empty());

    let o = run(&cfg, &["--json", "info", "publish"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = &report["targets"][1];
    assert_eq!(target["kind"], "ams", "{report:#}");
    assert_eq!(target["ok"], true, "{report:#}");
    let topic = format!(
        "SITE_{}_ENDPOINT_{}",
        var("REFSITE_SITE_NAME").replace('.', "-"),
        var("REFSITE_ENDPOINT_ID")
    );
    assert!(
        target["location"].as_str().unwrap().ends_with(&format!(
            "/v1/projects/egi_cloud_info/topics/{topic}:publish"
        )),
        "{report:#}"
    );

    let msgs = server.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(
        (m.project.as_str(), m.topic.as_str()),
        ("egi_cloud_info", topic.as_str())
    );
    assert_eq!(target["message_id"], m.message_id.as_str());
    let doc = gunzip(&m.decoded_data().expect("data is base64"));
    assert_eq!(
        doc,
        std::fs::read(&file).unwrap(),
        "AMS holds the published document"
    );
    let shown = run(&cfg, &["info", "show"]).await;
    super::assert_same_document(
        &doc,
        &shown.stdout,
        "the published document is `info show`'s",
    );
    let md5 = fedcloud_appliance::info::publish::md5_hex(var("OS_AUTH_URL").as_bytes());
    assert_eq!(
        m.attributes.get("empaid").map(String::as_str),
        Some(format!("{}-{md5}.json", var("REFSITE_SITE_NAME").replace('.', "-")).as_str())
    );
    let stats = server.stats();
    assert_eq!(
        stats.authx509_dns,
        vec![crate::testsrv::pki::CLIENT_DN.to_string()]
    );
    for text in [&o.stderr, &String::from_utf8_lossy(&o.stdout).into_owned()] {
        assert!(!text.contains(TOKEN), "the AMS token leaked: {text}");
    }

    // Over the size limit: nothing reaches AMS, the file is still written.
    let _ = std::fs::remove_file(&file);
    let (_, cfg) = dir.write(
        &[
            ("vo.alpha.example", &alpha),
            ("vo.alpha2.example", &var("REFSITE_PROJECT_ALPHA2_ID")),
            ("vo.beta.example", &var("REFSITE_PROJECT_BETA1_ID")),
        ],
        &format!(
            "  publish:\n    file: {}\n    ams:\n      max-message-bytes: 1024\n{ams_section}",
            file.display()
        ),
    );
    let o = run(&cfg, &["--json", "info", "publish"]).await;
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let full = std::fs::read(&file).expect("the file target is still written");
    let b64 = fedcloud_appliance::info::publish::base64_len(
        fedcloud_appliance::info::publish::ams_payload(&full).len(),
    );
    assert!(
        b64 > 1024,
        "the 3-project document should exceed 1 KiB gzipped: {b64}"
    );
    assert_eq!(o.code, 3, "{report:#}\n{}", o.stderr);
    let err = report["targets"][1]["error"].as_str().unwrap();
    assert!(err.contains("over the limit of 1024"), "{err}");
    assert!(err.contains("max-message-bytes"), "{err}");
    assert_eq!(server.messages().len(), 1, "nothing more was published");

    // No topic: GOCDB down, nothing cached, no `site.endpoint-id`.
    let dir2 = Dir::new();
    let (_, cfg) = dir2.write(
        &[("vo.alpha.example", &alpha)],
        &format!(
            "  publish:\n    file: {}\n    ams: {{}}\n{ams_section}",
            file.display()
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&var("REFSITE_GOCDB_URL"), "http://127.0.0.1:9");
    std::fs::write(&cfg, text).unwrap();
    let o = run(&cfg, &["--json", "info", "publish"]).await;
    assert_eq!(o.code, 3, "{}", o.stderr);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["targets"][0]["ok"], true, "{report:#}");
    let err = report["targets"][1]["error"].as_str().unwrap();
    assert!(
        err.contains("no AMS topic") && err.contains("site.endpoint-id"),
        "{err}"
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ams_target_without_a_host_certificate_is_a_configuration_error() {
    let dir = Dir::new();
    let missing = dir.path.join("no-such-hostcert.pem");
    let (_, cfg) = dir.write(
        &[("vo.alpha.example", &var("REFSITE_PROJECT_ALPHA1_ID"))],
        &format!(
            "  publish:\n    ams: {{}}\nams:\n  host: localhost\n  certificate: {}\n  key: {}\n",
            missing.display(),
            missing.display()
        ),
    );
    let o = run(&cfg, &["info", "publish"]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("no-such-hostcert.pem"), "{}", o.stderr);
    assert!(o.stderr.contains("info.publish.ams"), "{}", o.stderr);
}
