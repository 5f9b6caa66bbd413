//! Our spool against Python `dirq` 1.8 (what cASO writes with and
//! `ssmsend` reads with), in both directions, including locks and purge.

use super::{python, Needs};
use fedcloud_appliance::spool::{ElementName, Options, PurgeAges, QueueSimple, SystemClock};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Runs a Python snippet with the queue path as `sys.argv[1]`; returns its
/// stdout parsed as JSON.
fn run_py(code: &str, queue: &Path) -> Value {
    let out = python(Needs::Dirq)
        .arg("-c")
        .arg(code)
        .arg(queue)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// What ssmsend does with a spool: iterate, lock, get, remove, purge.
const PY_CONSUME: &str = r#"
import json, sys
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
res = {"count": q.count(), "elements": []}
for name in q:
    if not q.lock(name):
        res["elements"].append([name, None])
        continue
    res["elements"].append([name, q.get(name).hex()])
    q.remove(name)
q.purge()
res["after"] = q.count()
print(json.dumps(res))
"#;

#[test]
fn python_dirq_reads_what_we_write() {
    let tmp = tempfile::tempdir().unwrap();
    let q = QueueSimple::open(tmp.path().join("openstack"), Options::default()).unwrap();
    let big = vec![b'x'; 600 * 1024];
    let bodies: Vec<Vec<u8>> = vec![
        b"APEL-cloud-message: v0.4\nVMUUID: 721cf1db-0e0f-4c24-a5ea-cd75e0f303e8\nSiteName: S\n"
            .to_vec(),
        br#"{"Type": "APEL Public IP message", "Version": "0.2", "UsageRecords": []}"#.to_vec(),
        Vec::new(),
        (0..=255u8).collect(),
        big,
    ];
    let mut names = Vec::new();
    let start = SystemTime::now() - Duration::from_secs(180);
    for (i, body) in bodies.iter().enumerate() {
        // spread over two intermediate directories
        let t = start + Duration::from_secs(if i < 2 { 0 } else { 61 });
        names.push(q.add(body, &move || t).unwrap());
    }
    // one more, locked by us: Python must leave it alone
    let locked = q.add(b"locked by rust", &SystemClock).unwrap();
    assert!(q.lock(&locked).unwrap());

    let res = run_py(PY_CONSUME, q.path());
    assert_eq!(res["count"], 6);
    let mut want: Vec<Value> = names
        .iter()
        .zip(&bodies)
        .map(|(n, b)| serde_json::json!([n.to_string(), hex(b)]))
        .collect();
    want.push(serde_json::json!([locked.to_string(), null]));
    assert_eq!(res["elements"], Value::Array(want));
    assert_eq!(res["after"], 1);
    // Python's purge removed the old empty directories, not our locked element
    assert_eq!(q.names().unwrap(), vec![locked.clone()]);
    assert_eq!(q.get(&locked).unwrap(), b"locked by rust");
}

#[test]
fn we_read_what_python_dirq_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("openstack");
    let code = r#"
import json, os, sys
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
names = [q.add(b"bytes-1"), q.add("str \u00e9 utf8"), q.add(b""), q.add(bytes(range(256)))]
locked = q.add(b"locked by python")
assert q.lock(locked)
d = os.path.join(sys.argv[1], names[0].split("/")[0])
open(os.path.join(d, "0123456789abcd.tmp"), "wb").write(b"half-written")
print(json.dumps({"names": names, "locked": locked}))
"#;
    let res = run_py(code, &path);
    let py_names: Vec<ElementName> = res["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| ElementName::parse(n.as_str().unwrap()).unwrap())
        .collect();
    let py_locked = ElementName::parse(res["locked"].as_str().unwrap()).unwrap();

    let q = QueueSimple::open(&path, Options::default()).unwrap();
    let mut all = py_names.clone();
    all.push(py_locked.clone());
    all.sort();
    assert_eq!(q.names().unwrap(), all, "dirq order, temporaries ignored");
    assert_eq!(q.count().unwrap(), 5);

    let want: [&[u8]; 4] = [
        b"bytes-1",
        "str \u{e9} utf8".as_bytes(),
        b"",
        &(0..=255u8).collect::<Vec<_>>(),
    ];
    for (name, body) in py_names.iter().zip(want) {
        assert!(q.lock(name).unwrap(), "{name}");
        assert_eq!(q.get(name).unwrap(), body, "{name}");
        q.remove(name).unwrap();
    }
    assert!(!q.lock(&py_locked).unwrap(), "locked by Python");

    let res = run_py(
        r#"
import json, sys
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
print(json.dumps({"count": q.count(), "names": list(q)}))
"#,
        &path,
    );
    assert_eq!(res["count"], 1);
    assert_eq!(res["names"], serde_json::json!([py_locked.to_string()]));
}

#[test]
fn stale_locks_are_purged_across_implementations() {
    let tmp = tempfile::tempdir().unwrap();
    let q = QueueSimple::open(tmp.path(), Options::default()).unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);

    // our stale lock, purged by Python (ssmsend's tidy-up)
    let ours = q.add(b"ours", &SystemClock).unwrap();
    assert!(q.lock(&ours).unwrap());
    set_mtime(&q.path().join(ours.to_string()), two_hours_ago);
    let res = run_py(
        r#"
import json, sys
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
q.purge()
names = list(q)
print(json.dumps({"relocked": [q.lock(n) for n in names], "names": names}))
"#,
        q.path(),
    );
    assert_eq!(res["names"], serde_json::json!([ours.to_string()]));
    assert_eq!(
        res["relocked"],
        serde_json::json!([true]),
        "Python's purge unlocked our stale lock"
    );

    // Python's stale lock (it just took one), purged by us
    let lck = q.path().join(format!("{ours}.lck"));
    assert!(lck.exists());
    set_mtime(&q.path().join(ours.to_string()), two_hours_ago);
    let report = q.purge(&SystemClock, &PurgeAges::default()).unwrap();
    assert_eq!(report.locks, vec![ours.clone()]);
    assert!(!lck.exists());
    assert!(q.lock(&ours).unwrap());
    assert_eq!(q.get(&ours).unwrap(), b"ours");
    // a lock that is not stale stays, whoever purges
    let fresh = run_py(
        r#"
import json, sys
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
q.purge()
print(json.dumps([q.lock(n) for n in q]))
"#,
        q.path(),
    );
    assert_eq!(fresh, serde_json::json!([false]));
}
