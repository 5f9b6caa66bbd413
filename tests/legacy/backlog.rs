//! A legacy sender outage (layouts D–G shipped ssmsend broken, spec
//! legacy-appliance.md §3.2): a backlog of 3 000 messages, v0.2 and v0.4
//! cloud messages of cASO's size (up to 100 records), left in the legacy
//! spool over months, taken over by `import-legacy` and sent by `accounting
//! send` to the AMS test server: every one delivered, in order of age
//! (dirq names), with the sender's peak resident memory measured (`wait4`)
//! and bounded far below the backlog's size.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Stdio;

use fedcloud_appliance::spool::ElementName;
use serde_json::Value;

use super::{copy_tree, fixtures, import_json, patch_ams, spool_bodies, test_ams, use_test_pki};
use crate::messaging::openssl_verify;

const MESSAGES: usize = 3000;

/// A cloud message of `records` records, cASO's shape.
fn message(version: &str, t: u64, records: usize) -> Vec<u8> {
    let mut m = format!("APEL-cloud-message: v{version}\n");
    for r in 0..records {
        if r > 0 {
            m.push_str("%%\n");
        }
        m.push_str(&format!(
            "CloudComputeService: EXAMPLE-SITE\nCloudType: caso/1.4.3 (OpenStack)\nCpuCount: 2\nCpuDuration: 7200\nDisk: 20\nEndTime: None\nFQAN: fedcloud.egi.eu\nGlobalUserName: /DC=eu/DC=egi/CN=user{r}\nImageId: https://appdb.egi.eu/store/vo/image/abc:1/\nLocalGroupId: 3b1d2e4f5a6b47c8a9d0e1f2a3b4c5d6\nLocalUserId: 8c1e0f{r:04}\nMachineName: vm-{t}-{r}\nMemory: 4096\nSiteName: EXAMPLE-SITE\nStartTime: {}\nStatus: started\nSuspendDuration: None\nVMUUID: {:08x}-0000-4000-8000-{:012x}\nWallDuration: 3600\n",
            t - 3600,
            t,
            r
        ));
    }
    m.into_bytes()
}

/// Run a child; its exit code, output and peak resident memory (KiB: the
/// `VmHWM` of its own address space, polled from `/proc` while it runs;
/// `wait4`'s `ru_maxrss` would count the parent's pages shared at spawn).
fn run_measured(mut cmd: std::process::Command) -> (i32, String, String, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut o = String::new();
        so.read_to_string(&mut o).unwrap();
        o
    });
    let err_t = std::thread::spawn(move || {
        let mut e = String::new();
        se.read_to_string(&mut e).unwrap();
        e
    });
    let hwm = || -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let mut peak = 0;
    let status = loop {
        if let Some(h) = hwm() {
            peak = peak.max(h);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        out_t.join().unwrap(),
        err_t.join().unwrap(),
        peak,
    )
}

#[test]
fn backlog_of_thousands_sent_oldest_first_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixtures().join("F/root"), &root);
    let spool = root.join("var/spool/apel/outgoing/openstack");
    std::fs::remove_dir_all(&spool).unwrap();
    // The outage: from F's upgrade (2020-08-27) on, every 4 h a run of
    // cASO; v0.2 (messengers = ssm, cASO 1.4.3) with older v0.4 before.
    let start: u64 = 1_598_544_000;
    let mut order: Vec<usize> = (0..MESSAGES).collect();
    // written in a scrambled order: only the names say how old they are
    order.sort_by_key(|i| (i * 7919) % MESSAGES);
    let mut total = 0u64;
    for i in order {
        // cASO every 4 h, 20 messages a run (one dirq directory per run)
        let t = start + (i as u64 / 20) * 14_400 + (i as u64 % 20);
        let version = if i % 3 == 0 { "0.4" } else { "0.2" };
        let body = message(version, t, 40 + i % 61);
        total += body.len() as u64;
        let name = format!("{:08x}/{:08x}{:05x}7", t - t % 60, t, i % 100_000);
        let path = spool.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    use_test_pki(&root);

    // Take it over.
    let target = dir.path().join("target");
    let rep = import_json(&root, &target, &["--offline"]);
    let s = &rep["state"]["spool"];
    assert_eq!(s["waiting"].as_u64(), Some(MESSAGES as u64), "{s:#}");
    assert_eq!(s["moved"].as_u64(), Some(MESSAGES as u64), "{s:#}");
    assert_eq!(s["oldest"], "2020-08-27T16:00:00Z", "{s:#}");
    assert_eq!(
        s["kinds"]["cloud_v02"].as_u64().unwrap() + s["kinds"]["cloud_v04"].as_u64().unwrap(),
        MESSAGES as u64
    );
    assert_eq!(s["bytes"].as_u64(), Some(total));
    // Only the digests stay in this process: its memory is not the sender's.
    let taken: BTreeMap<String, [u8; 64]> =
        spool_bodies(&target.join("var/spool/apel/outgoing/openstack"))
            .into_iter()
            .map(|(n, b)| (n, openssl::sha::sha512(&b)))
            .collect();
    assert_eq!(taken.len(), MESSAGES);

    // Send it.
    let config = target.join("etc/fedcloud-appliance/appliance.yaml");
    let ams = test_ams(&dir.path().join("ams"));
    patch_ams(&config, ams.server.addr().port());
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("appliance"));
    cmd.arg("--config")
        .arg(&config)
        .arg("--json")
        .args(["accounting", "send"])
        .env_remove("APPLIANCE_CONFIG")
        .env_remove("JOURNAL_STREAM");
    let t0 = std::time::Instant::now();
    let (code, stdout, stderr, peak_kib) = run_measured(cmd);
    let took = t0.elapsed();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let sent: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sent["sent"].as_u64(), Some(MESSAGES as u64), "{sent:#}");
    assert_eq!(sent["left"], 0);
    eprintln!(
        "backlog: {MESSAGES} messages, {:.1} MiB, sent in {:.1} s; peak RSS of `accounting send` {:.1} MiB",
        total as f64 / 1048576.0,
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
    // Bounded: a fraction of the backlog, whatever its size.
    assert!(
        peak_kib * 1024 < total / 2 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB for a {total} byte backlog"
    );

    // In order of age, every one.
    let msgs = ams.messages();
    assert_eq!(msgs.len(), MESSAGES);
    let empaids: Vec<&str> = msgs
        .iter()
        .map(|m| m.attributes.get("empaid").map(String::as_str).unwrap())
        .collect();
    let mut sorted = empaids.clone();
    sorted.sort_by_key(|n| ElementName::parse(n).unwrap().time());
    assert_eq!(empaids, sorted, "not sent oldest first");
    let names: Vec<&String> = taken.keys().collect();
    assert_eq!(
        empaids,
        names.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
    // the content, on a sample (openssl per message is slow)
    for m in msgs.iter().step_by(MESSAGES / 25) {
        let name = m.attributes["empaid"].as_str();
        let content = openssl_verify(&m.decoded_data().unwrap());
        assert_eq!(openssl::sha::sha512(&content), taken[name], "{name}");
    }
}
