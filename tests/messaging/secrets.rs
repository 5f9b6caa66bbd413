//! The private key and the AMS token never appear in logs (stderr, at
//! trace level) or in `--json` output, on success or on failure.

use super::*;
use crate::testsrv::pki::Pki;

/// Lines of the key PEM long enough to be unmistakable.
fn key_fragments() -> Vec<String> {
    let pki = Pki::shared();
    let mut frags: Vec<String> = String::from_utf8(pki.client.key_pem())
        .expect("pem")
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .map(str::to_string)
        .collect();
    // the traditional form too
    let rsa = pki
        .client
        .key
        .rsa()
        .expect("rsa")
        .private_key_to_pem()
        .expect("pem");
    frags.extend(
        String::from_utf8(rsa)
            .expect("pem")
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 40)
            .map(str::to_string),
    );
    frags
}

fn assert_clean(run: &Run, secrets: &[&str]) {
    let all = format!("{}\n{}", run.stdout, run.stderr);
    for s in secrets {
        assert!(!all.contains(s), "secret {s:?} leaked:\n{run}");
    }
    for f in key_fragments() {
        assert!(!all.contains(&f), "private key leaked:\n{run}");
    }
    assert!(!all.contains("PRIVATE KEY"), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_token_never_in_logs_or_json() {
    // authx509: the server hands out TOKEN
    let site = Site::new(Setup::default()).await;
    site.spool_messages(&[cloud_message("a")]);
    for args in [
        &["--json", "--log-level", "trace", "accounting", "send"][..],
        &["--log-level", "trace", "accounting", "send", "--dry-run"][..],
        &["--json", "--log-level", "trace", "accounting", "status"][..],
        &["--json", "config", "show"][..],
    ] {
        let run = site.run(args).await;
        assert!(run.code == 0, "{args:?}: {run}");
        assert_clean(&run, &[TOKEN, OS_PASSWORD]);
    }
    assert_eq!(site.ams.stats().tokens_issued, 1);

    // static token, refused by the broker (401) and then accepted after a 503
    for (token, code) in [("wrong-t0ken-77", 3), (TOKEN, 0)] {
        let site = Site::new(Setup {
            token: Some(token),
            ..Setup::default()
        })
        .await;
        site.spool_messages(&[cloud_message("b")]);
        site.ams
            .faults
            .push(fedcloud_appliance::testsrv::faults::Fault::status(503));
        let run = site
            .run(&["--json", "--log-level", "trace", "accounting", "send"])
            .await;
        assert_eq!(run.code, code, "{run}");
        assert_clean(&run, &[token, TOKEN, OS_PASSWORD]);
    }
}
