//! Fault tests: nothing is lost, whatever the broker or the process does.

use std::time::Duration;

use fedcloud_appliance::testsrv::faults::Fault;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_for_the_whole_run_removes_nothing() {
    for token in [Some(TOKEN), None] {
        let site = Site::new(Setup {
            token,
            port_override: Some(closed_port()),
            ..Setup::default()
        })
        .await;
        let names = site.spool_messages(&[cloud_message("a"), cloud_message("b")]);
        let run = site.run(&["--json", "accounting", "send"]).await;
        assert_eq!(run.code, 3, "token {token:?}: {run}");
        let r = run.json();
        assert_eq!(r["sent"], 0);
        assert_eq!(r["left"], 2);
        assert!(
            r["error"]
                .as_str()
                .expect("error")
                .contains("AMS unavailable after 3 attempts"),
            "{run}"
        );
        assert_eq!(site.left(), names, "nothing removed");
        assert!(site.locks().is_empty(), "nothing left locked");
        assert!(!site.quarantine().exists(), "nothing quarantined");
        // the status shows the failed run
        let st = site.run(&["--json", "accounting", "status"]).await.json();
        assert_eq!(st["queued"], 2);
        assert!(st["send"]["last_run"]["error"].is_string());
        assert!(st["send"]["last_success"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_then_ok_is_sent_once() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    let names = site.spool_messages(&[cloud_message("a"), cloud_message("b")]);
    site.ams.faults.push(Fault::status(503));
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["sent"], 2);
    let stored = site.ams.messages();
    assert_eq!(stored.len(), 2, "each message stored once");
    for n in &names {
        assert_eq!(by_empaid(&stored, &n.to_string()).len(), 1);
    }
    assert_eq!(site.ams.stats().publish_calls, 3, "one retry");
    assert!(run.stderr.contains("retrying"), "{run}");

    // timeouts and dropped connections are retried the same way
    let names = site.spool_messages(&[cloud_message("c")]);
    site.ams.faults.push(Fault::drop_connection());
    site.ams.faults.push(Fault::delay(Duration::from_secs(5)));
    let run = site.run(&["accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert!(site.left().is_empty());
    assert!(!by_empaid(&site.ams.messages(), &names[0].to_string()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_quarantines_that_message_with_the_answer_and_the_others_go() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        edit: &|o| o.max_message_bytes = 40_000,
        ..Setup::default()
    })
    .await;
    let mut big = cloud_message("big");
    big.extend(std::iter::repeat_n(b'x', 40_000));
    big.push(b'\n');
    let names = site.spool_messages(&[cloud_message("a"), big.clone(), cloud_message("c")]);
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 1, "partial: {run}");
    let r = run.json();
    assert_eq!(r["sent"], 2);
    assert_eq!(r["left"], 0);
    assert_eq!(r["quarantined"][0]["empaid"], names[1].to_string());
    assert_eq!(r["quarantined"][0]["status"], 413);
    let stored = site.ams.messages();
    assert_eq!(stored.len(), 2);
    assert!(by_empaid(&stored, &names[1].to_string()).is_empty());
    // the message is kept byte for byte, with the broker's answer
    let stem = format!("{}-{}", names[1].dir(), names[1].file());
    let q = site.quarantine();
    assert_eq!(
        std::fs::read(q.join(format!("{stem}.msg"))).expect("msg"),
        big
    );
    let note: Value =
        serde_json::from_slice(&std::fs::read(q.join(format!("{stem}.json"))).expect("note"))
            .expect("json");
    assert_eq!(note["status"], 413);
    assert!(
        note["answer"]
            .as_str()
            .expect("answer")
            .contains("Message size is too large"),
        "{note}"
    );
    // and the status lists it
    let st = site.run(&["--json", "accounting", "status"]).await;
    assert_eq!(st.code, 0, "{st}");
    let st = st.json();
    assert_eq!(st["quarantined"][0]["empaid"], names[1].to_string());
    assert_eq!(st["quarantined"][0]["status"], 413);
    let human = site.run(&["accounting", "status"]).await;
    assert!(
        human.stdout.contains("quarantined:  1 message(s)"),
        "{human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_run_and_keeps_everything() {
    let site = Site::new(Setup {
        token: Some("wrong-t0ken"),
        ..Setup::default()
    })
    .await;
    let names = site.spool_messages(&[cloud_message("a"), cloud_message("b")]);
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 3, "{run}");
    let r = run.json();
    assert!(
        r["error"].as_str().expect("error").contains("HTTP 401"),
        "{run}"
    );
    assert_eq!(site.left(), names);
    assert!(site.locks().is_empty());
    assert!(!site.quarantine().exists());
    assert_eq!(site.ams.stats().publish_calls, 1, "no retry on 401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_records_are_sent_or_quarantined_never_a_crash() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    let utf8 = cloud_message("vm-ünïcødé-日本");
    let mut latin1 = cloud_message("vm-");
    latin1.extend_from_slice(b"caf\xe9\n");
    let names = site.spool_messages(&[utf8.clone(), latin1.clone(), cloud_message("plain")]);
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 1, "{run}");
    let r = run.json();
    assert_eq!(r["sent"], 2);
    assert_eq!(r["quarantined"][0]["empaid"], names[1].to_string());
    assert!(
        r["quarantined"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("not valid UTF-8"),
        "{run}"
    );
    let stored = site.ams.messages();
    let m = by_empaid(&stored, &names[0].to_string());
    assert_eq!(openssl_verify(&m[0].decoded_data().expect("b64")), utf8);
    assert!(site.left().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_rerun_sends_the_rest_at_least_once() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    let bodies: Vec<Vec<u8>> = (0..6).map(|i| cloud_message(&format!("vm-{i}"))).collect();
    let names = site.spool_messages(&bodies);
    // every publish takes 400 ms: kill once two are in
    site.ams
        .faults
        .push(Fault::delay(Duration::from_millis(400)).times(100));
    let mut child = site
        .command(&["accounting", "send"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // two accepted by the broker *and* removed from the spool: a kill between
    // a publish and its removal is the at-least-once case, not this one
    while site.ams.stats().published < 2 || site.left().len() > 4 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL, no chance to clean up
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    site.ams.faults.clear();
    // let a publish that was in flight land (or not)
    tokio::time::sleep(Duration::from_millis(600)).await;

    let left = site.left();
    assert!(!left.is_empty() && left.len() <= 4, "{left:?}");
    // the rerun sends everything not locked by the killed run
    let run = site.run(&["--json", "accounting", "send"]).await;
    let r = run.json();
    let locked = r["locked"].as_array().expect("locked").len();
    assert!(locked <= 1, "{run}");
    assert_eq!(run.code, if locked == 1 { 1 } else { 0 }, "{run}");
    // the killed run's lock is stale after 600 s: age it, and the next run sends it
    for l in site.locks() {
        age(&l, 601);
    }
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert!(site.left().is_empty(), "{run}");
    let stored = site.ams.messages();
    for n in &names {
        assert!(
            !by_empaid(&stored, &n.to_string()).is_empty(),
            "{n} never reached AMS: lost"
        );
    }
    assert!(stored.len() <= names.len() + 1, "at most one duplicate");
}
