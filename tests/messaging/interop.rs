//! With the Python peers: a spool written by cASO's SSM messenger (PyPI
//! caso 5.2.2) is sent completely, and a lock left by a dead `ssmsend`
//! (Python dirq) is honoured, then cleared once stale.

use std::ffi::OsStr;

use super::*;

/// cASO's records from the golden inputs, pushed by `SSMMessenger` into the
/// spool `sys.argv[1]` in messages of at most 2 records.
const PY_CASO_SPOOL: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[2])
import accounting as g
g.check_versions()
data = json.load(open(sys.argv[3], encoding="utf-8"))
g.init_conf(data)
records = g.build_records(data)
g.set_spool(sys.argv[1], 2)
import caso.messenger.ssm
caso.messenger.ssm.SSMMessenger().push(records)
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
print(json.dumps({"count": q.count()}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_written_by_caso_is_sent_completely() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_python(
        true,
        PY_CASO_SPOOL,
        &[
            site.spool.as_os_str(),
            repo.join("scripts/golden").as_os_str(),
            repo.join("tests/fixtures/accounting/inputs.json")
                .as_os_str(),
        ],
    );
    let count = serde_json::from_str::<Value>(&out).expect("json")["count"]
        .as_u64()
        .expect("count") as usize;
    assert!(count >= 4, "caso wrote {count} messages");
    // what caso wrote, element by element
    let q = site.queue();
    let names = q.names().expect("names");
    assert_eq!(names.len(), count);
    let originals: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(site.spool.join(n.dir()).join(n.file())).expect("read"))
        .collect();

    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["sent"], count);
    assert!(site.left().is_empty());
    let stored = site.ams.messages();
    assert_eq!(stored.len(), count);
    for (n, original) in names.iter().zip(&originals) {
        let m = by_empaid(&stored, &n.to_string());
        assert_eq!(m.len(), 1, "{n}");
        assert_eq!(
            &openssl_verify(&m[0].decoded_data().expect("b64")),
            original,
            "{n}"
        );
    }
    // and the Python reader sees an empty queue (and purged directories)
    let py = run_python(
        false,
        "import sys\nfrom dirq.QueueSimple import QueueSimple\nprint(QueueSimple(sys.argv[1]).count())",
        &[site.spool.as_os_str()],
    );
    assert_eq!(py.trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_from_a_dead_ssmsend_is_cleared_after_the_timeout() {
    let site = Site::new(Setup {
        token: Some(TOKEN),
        ..Setup::default()
    })
    .await;
    let names = site.spool_messages(&[cloud_message("locked"), cloud_message("free")]);
    // ssmsend locks the first element and dies (the lock stays, as observed)
    let locked = names[0].to_string();
    run_python(
        false,
        "import sys\nfrom dirq.QueueSimple import QueueSimple\nassert QueueSimple(sys.argv[1]).lock(sys.argv[2])",
        &[site.spool.as_os_str(), OsStr::new(&locked)],
    );
    // a fresh lock is respected: the element is skipped, the other one goes
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 1, "{run}");
    let r = run.json();
    assert_eq!(r["sent"], 1);
    assert_eq!(r["locked"], serde_json::json!([locked]));
    assert_eq!(site.left(), vec![names[0].clone()]);
    assert_eq!(site.locks().len(), 1);
    // ten minutes later (dirq's maxlock, 600 s) the lock is stale: cleared and sent
    age(&site.locks()[0], 601);
    let run = site.run(&["--json", "accounting", "send"]).await;
    assert_eq!(run.code, 0, "{run}");
    let r = run.json();
    assert_eq!(r["purged_locks"], serde_json::json!([locked]));
    assert_eq!(r["sent"], 1);
    assert!(site.left().is_empty());
    assert!(site.locks().is_empty());
    assert_eq!(by_empaid(&site.ams.messages(), &locked).len(), 1);
}
