//! `accounting send` on the happy paths, and `status`, `--dry-run`, legacy
//! `sender.cfg`, encryption and the pre-flight checks.

use std::process::Command;

use super::*;
use crate::testsrv::pki::{Pki, CLIENT_DN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_payloads_verify_with_openssl_and_yield_the_message_byte_for_byte() {
    let site = Site::new(Setup::default()).await; // authx509 with the host certificate
    let bodies = vec![
        cloud_message("vm-1"),
        cloud_message("vm-2"),
        b"{\"Type\": \"APEL Public IP message\", \"Version\": \"0.2\", \"UsageRecords\": []}"
            .to_vec(),
        // an empty-bodied message
        Vec::new(),
    ];
    let names = site.spool_messages(&bodies);
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["found"], 4, "{run}");
    assert_eq!(report["sent"], 4);
    assert_eq!(report["left"], 0);
    assert_eq!(report["signer_dn"], CLIENT_DN);
    assert!(site.left().is_empty());
    assert!(site.locks().is_empty());
    // one token, from authx509 with the host certificate
    let stats = site.ams.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.authx509_dns, [CLIENT_DN]);
    let stored = site.ams.messages();
    assert_eq!(stored.len(), 4);
    for (name, body) in names.iter().zip(&bodies) {
        let m = by_empaid(&stored, &name.to_string());
        assert_eq!(m.len(), 1, "{name} sent once");
        assert_eq!(m[0].topic, "eu-egi-cloud-accounting");
        assert_eq!(m[0].project, "accounting");
        let payload = m[0].decoded_data().expect("base64");
        let text = String::from_utf8(payload.clone()).expect("utf-8");
        assert!(!text.contains('\r'), "LF only, as ssmsend sends it");
        assert!(text.starts_with("MIME-Version: 1.0\nContent-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; micalg=\"sha-256\""));
        assert_eq!(openssl_verify(&payload), *body, "{name}");
    }
    // the status records the run
    let st = site.run(&["--json", "accounting", "status"]).await;
    assert_eq!(st.code, 0, "{st}");
    let st = st.json();
    assert_eq!(st["queued"], 0);
    assert_eq!(st["send"]["last_run"]["sent"], 4);
    assert!(st["send"]["last_sent_at"].is_string());
    assert_eq!(st["quarantined"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_token_and_empty_spool() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    // nothing to send: the broker is not contacted
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("0 message(s) found"), "{run}");
    assert_eq!(site.ams.stats().requests, 0);
    site.spool_messages(&[cloud_message("a")]);
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    let stats = site.ams.stats();
    assert_eq!((stats.authx509, stats.published), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_and_signs_but_changes_nothing() {
    let site = Site::new(Setup::default()).await;
    let names = site.spool_messages(&[cloud_message("a"), cloud_message("b")]);
    let run = site
        .run(&["--json", "accounting", "send", "--dry-run"])
        .await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["would_send"], 2);
    assert_eq!(site.left(), names);
    assert!(site.locks().is_empty());
    assert_eq!(site.ams.stats().requests, 0);
    assert!(!site.state.join("accounting/send.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_to_the_server_certificate() {
    let pki = Pki::shared();
    let extra = format!("server-cert: {}", pki.server.cert_path.display());
    let site = Site::new(Setup {
        ams_extra: &extra,
        ..Setup::default()
    })
    .await;
    let body = cloud_message("secret-vm");
    site.spool_messages(std::slice::from_ref(&body));
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    let payload = site.ams.messages()[0].decoded_data().expect("base64");
    let text = String::from_utf8(payload.clone()).expect("utf-8");
    assert!(text.contains("pkcs7-mime"), "{text}");
    assert!(!text.contains("secret-vm"));
    let dir = tempfile::tempdir().expect("tmp");
    let enc = dir.path().join("enc");
    std::fs::write(&enc, &payload).expect("write");
    let out = Command::new("openssl")
        .args(["smime", "-decrypt", "-in"])
        .arg(&enc)
        .arg("-recip")
        .arg(&pki.server.cert_path)
        .arg("-inkey")
        .arg(&pki.server.key_path)
        .output()
        .expect("openssl smime -decrypt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = unix_newlines(&out.stdout);
    assert_eq!(openssl_verify(&signed), body);
}

/// CRLF to LF, as the receiver's Python does.
pub fn unix_newlines(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sender_cfg_supplies_what_the_section_leaves_out() {
    let pki = Pki::shared();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("sender.cfg");
    let site_spool = dir.path().join("legacy-spool");
    std::fs::write(
        &cfg,
        format!(
            "[sender]\nprotocol: AMS\n\n[broker]\nhost: localhost\nport: 443\n\n[certificates]\ncertificate: {}\nkey: {}\ncapath: {}\n\n[messaging]\nams_project: accounting\ndestination: legacy-topic\ntoken: {TOKEN}\npath: {}\npath_type: dirq\n\n[logging]\nlogfile: /var/log/apel/ssmsend.log\nlevel: INFO\nconsole: true\n",
            pki.client.cert_path.display(),
            pki.client.key_path.display(),
            pki.ca_dir.display(),
            site_spool.display()
        ),
    )
    .expect("sender.cfg");
    let extra = format!("sender-cfg: {}", cfg.display());
    let site = Site::new(Setup {
        ams_extra: &extra,
        ..Setup::default()
    })
    .await;
    let q = QueueSimple::open(&site_spool, Options::default()).expect("spool");
    q.add(&cloud_message("legacy"), &SystemClock).expect("add");
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["sent"], 1);
    let m = &site.ams.messages()[0];
    assert_eq!(m.topic, "legacy-topic");
    // the token came from sender.cfg (no authx509), with a warning to move it
    assert_eq!(site.ams.stats().authx509, 0);
    assert!(run.stderr.contains("move it to the secrets file"), "{run}");
    assert!(q.names().expect("names").is_empty());

    // a STOMP sender.cfg is refused with its line, exit 2
    std::fs::write(&cfg, "[sender]\nprotocol: STOMP\n").expect("write");
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "{}:2: protocol `STOMP` is not supported",
            cfg.display()
        )),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_an_expired_certificate_and_a_wrong_key() {
    let pki = Pki::shared();
    let site = Site::new(Setup {
        host: &pki.expired_client,
        ..Setup::default()
    })
    .await;
    let names = site.spool_messages(&[cloud_message("a")]);
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 2, "{run}");
    let cert = pki.expired_client.cert_path.display().to_string();
    assert!(
        run.stderr.contains(&cert)
            && run.stderr.contains("within 24 hours")
            && run.stderr.contains(CLIENT_DN),
        "{run}"
    );
    assert_eq!(site.left(), names);
    assert_eq!(site.ams.stats().requests, 0);

    // key of another certificate
    let mismatched = crate::testsrv::pki::Issued {
        cert: pki.client.cert.clone(),
        key: pki.rogue_client.key.clone(),
        cert_path: pki.client.cert_path.clone(),
        key_path: pki.rogue_client.key_path.clone(),
    };
    let site = Site::new(Setup {
        host: &mismatched,
        ..Setup::default()
    })
    .await;
    site.spool_messages(&[cloud_message("a")]);
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains("does not match the host certificate"),
        "{run}"
    );
    assert_eq!(site.left().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_for_the_ams_section_exit_2_with_positions() {
    let site = Site::new(Setup {
        ams_extra: "topic: bad topic\ntoken: inline-t0ken\n",
        ..Setup::default()
    })
    .await;
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr
            .contains("ams.topic: `bad topic` is not an AMS name"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("ams.token: secrets are not allowed in this file"),
        "{run}"
    );
    assert!(!run.stderr.contains("inline-t0ken") && !run.stdout.contains("inline-t0ken"));
}
