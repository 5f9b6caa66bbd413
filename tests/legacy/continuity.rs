//! Continuity of accounting across the switch, with the real peer: cASO
//! 5.2.2 (the reference site's peers venv) runs against the reference site
//! with a legacy-layout `caso.conf` and `voms.json` (layout G's shipped
//! files, the site's values on the lines the admin edits), twice; the
//! legacy sender "sends" the older half of its spool (removes it as ssmsend
//! does); then `import-legacy` (online: project names resolved to ids with
//! the imported credential), `accounting extract` and `accounting send` to
//! the project's AMS test server. Asserted:
//!
//! - every message cASO left in the spool reaches AMS, byte for byte (the
//!   S/MIME content verified with `openssl smime -verify`), under its own
//!   name (`empaid`), before anything extracted after the switch;
//! - each project's first window starts at cASO's `lastrun.<project>`,
//!   carried into the appliance's own mark of the project id the new
//!   configuration uses (cASO 5.2.2 needs ids in `projects`; the names of
//!   the older layouts are resolved online and re-keyed in
//!   `names_resolved_online_and_lastrun_rekeyed`);
//! - per VM: the one that ended before cASO's last run is not extracted
//!   again; the one that ended after it is (with its end): no gap; the
//!   running GPU VM and its accelerator record are there; the volume's
//!   storage record starts exactly at cASO's lastrun (StAR `StartTime` is
//!   `max(created, window start)`).
//!
//! Mutates Nova and Cinder (`serial_`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fedcloud_appliance::spool::{Options, QueueSimple};
use fedcloud_appliance::state::lastrun;
use serde_json::Value;

use super::{copy_tree, fixtures, import_json, patch_ams, spool_bodies, test_ams, use_test_pki};
use crate::messaging::{by_empaid, openssl_verify};
use crate::util::{appliance, refsite};

fn python() -> Command {
    let mut cmd = refsite().python();
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy/continuity.py"));
    cmd
}

fn py(args: &[&str]) -> String {
    let out = python().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "continuity.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What the test made on the site; removed on drop, also on failure.
#[derive(Default)]
struct Made {
    servers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        let json = serde_json::json!({"servers": self.servers, "volumes": self.volumes});
        if let Ok(mut child) = python()
            .arg("cleanup")
            .stdin(std::process::Stdio::piped())
            .spawn()
        {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(json.to_string().as_bytes());
            }
            let _ = child.wait();
        }
    }
}

/// Replace whole lines (1-based) of a file.
fn edit(path: &Path, lines: &[(usize, String)]) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<String> = text.lines().map(String::from).collect();
    for (n, t) in lines {
        out[n - 1] = t.clone();
    }
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

/// A layout-G legacy root for the reference site: the fixture's shipped
/// files with the site's values on the lines an admin edits, an empty
/// state, the test PKI's host certificate.
fn legacy_root(dir: &Path) -> PathBuf {
    let site = refsite();
    let root = dir.join("root");
    copy_tree(&fixtures().join("G/root"), &root);
    let caso = root.join("etc/caso/caso.conf");
    edit(
        &caso,
        &[
            (12, format!("site_name = {}", site.var("REFSITE_SITE_NAME"))),
            // cASO 5.2.2 reads each project's VO with projects.get(<entry>):
            // ids (as layouts G and H shipped them)
            (
                20,
                format!(
                    "projects = {}, {}",
                    site.var("REFSITE_PROJECT_ALPHA1_ID"),
                    site.var("REFSITE_PROJECT_ALPHA2_ID")
                ),
            ),
            (32, format!("auth_url = {}", site.var("OS_AUTH_URL"))),
            (38, "project_domain_name = Default".into()),
            (41, format!("username = {}", site.var("REFSITE_USER"))),
            (44, "user_domain_name = Default".into()),
            (47, format!("password = {}", site.var("REFSITE_PASSWORD"))),
        ],
    );
    std::fs::write(
        root.join("etc/caso/voms.json"),
        format!(
            "{{\n        \"vo.alpha.example\": {{\n            \"projects\": [\"{}\", \"{}\"]\n        }}\n}}\n",
            site.var("REFSITE_PROJECT_ALPHA1_ID"),
            site.var("REFSITE_PROJECT_ALPHA2_ID")
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/cloudkeeper-os/mapping.json"),
        "{\n        \"vo.alpha.example\": {\n            \"project\": \"alpha-1\",\n            \"domain\": \"Default\"\n        }\n}\n",
    )
    .unwrap();
    // the shipped sample list only (APPDB_TOKEN: never configured)
    std::fs::write(
        root.join("etc/cloudkeeper/image-lists.conf"),
        "# One image list per line\n# Lines can be commented if started with \"#\"\nhttps://APPDB_TOKEN:x-oauth-basic@vmcaster.appdb.egi.eu/store/vo/ops/image.list\n",
    )
    .unwrap();
    edit(
        &root.join("etc/cloud-info-provider/openstack.rc"),
        &[(2, format!("export OS_AUTH_URL={}", site.var("OS_AUTH_URL")))],
    );
    std::fs::write(
        root.join("etc/cloud-info-provider/openstack.yaml"),
        format!(
            "site:\n    name: {}\n\ncompute:\n    shares:\n        vo.alpha.example:\n            auth:\n                project_id: {}\n            default_network_type: public\n            public_network_name: PUBLIC\n    total_cores: 0\n    total_ram: 0\n",
            site.var("REFSITE_SITE_NAME"),
            site.var("REFSITE_PROJECT_ALPHA1_ID")
        ),
    )
    .unwrap();
    let sender = root.join("etc/apel/sender.cfg");
    let text = std::fs::read_to_string(&sender)
        .unwrap()
        .replace("host: msg.argo.grnet.gr", "host: localhost");
    std::fs::write(&sender, text).unwrap();
    use_test_pki(&root);
    for d in ["var/spool/caso", "var/spool/apel/outgoing/openstack"] {
        let _ = std::fs::remove_dir_all(root.join(d));
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}

/// One `caso-extract` run with the legacy `caso.conf`, its state and spool
/// where the legacy appliance kept them (under `root`).
fn caso(root: &Path, dir: &Path) {
    let overrides = dir.join("caso-paths.conf");
    std::fs::write(
        &overrides,
        format!(
            "[DEFAULT]\nspooldir = {r}/var/spool/caso\nlock_path = {r}/var/spool/caso\nmapping_file = {r}/etc/caso/voms.json\nregion_name = RegionOne\n[ssm]\noutput_path = {r}/var/spool/apel/outgoing/openstack\n",
            r = root.display()
        ),
    )
    .unwrap();
    let out = Command::new(refsite().var("REFSITE_CASO_EXTRACT"))
        .env("TZ", "UTC")
        .arg("--config-file")
        .arg(root.join("etc/caso/caso.conf"))
        .arg("--config-file")
        .arg(&overrides)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "caso-extract failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `appliance --config CONFIG --json accounting SUB`, which must succeed;
/// its report.
fn accounting(config: &Path, sub: &str) -> Value {
    let out = appliance()
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(["accounting", sub])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "accounting {sub}: {v:#}");
    v
}

fn cloud_records(body: &str) -> Vec<BTreeMap<String, String>> {
    let Some(rest) = body.split_once('\n').map(|(_, r)| r) else {
        return Vec::new();
    };
    rest.trim_end_matches('\n')
        .split("\n%%\n")
        .map(|rec| {
            rec.lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)?;
    Some(&s[i..i + j])
}

#[test]
fn serial_caso_then_appliance_without_gap_or_reextraction() {
    let site = refsite();
    let tag = format!("ct{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let mut made = Made::default();

    // VMs and a volume of the legacy era; one VM ends before cASO runs.
    let before = py(&["boot", &format!("{tag}-before"), "tiny"]);
    made.servers.push(before.clone());
    let straddle = py(&["boot", &format!("{tag}-straddle"), "tiny"]);
    made.servers.push(straddle.clone());
    let gpu = py(&["boot", &format!("{tag}-gpu"), "gpu"]);
    made.servers.push(gpu.clone());
    let vol = py(&["volume", &format!("{tag}-vol")]);
    made.volumes.push(vol.clone());
    py(&["delete", &before]);

    // The legacy appliance: cASO, twice; ssmsend sent the older half.
    let root = legacy_root(dir.path());
    caso(&root, dir.path());
    std::thread::sleep(std::time::Duration::from_secs(2));
    caso(&root, dir.path());
    let legacy_spool = root.join("var/spool/apel/outgoing/openstack");
    let caso_all = spool_bodies(&legacy_spool);
    let saw_before = caso_all
        .values()
        .flat_map(|b| cloud_records(&String::from_utf8_lossy(b)))
        .any(|r| r.get("VMUUID") == Some(&before));
    assert!(
        saw_before,
        "cASO did not account the VM that ended before it ran"
    );
    let q = QueueSimple::open(&legacy_spool, Options::default()).unwrap();
    let names = q.names().unwrap();
    assert!(
        names.len() >= 4,
        "cASO spooled only {} messages",
        names.len()
    );
    for n in &names[..names.len() / 2] {
        assert!(q.lock(n).unwrap());
        q.remove(n).unwrap();
    }
    let left = spool_bodies(&legacy_spool);
    let lastrun_of = |p: &str| {
        std::fs::read_to_string(root.join(format!("var/spool/caso/lastrun.{p}"))).unwrap()
    };
    let (lr1, lr2) = (
        lastrun_of(site.var("REFSITE_PROJECT_ALPHA1_ID")),
        lastrun_of(site.var("REFSITE_PROJECT_ALPHA2_ID")),
    );
    let lr2_t = lastrun::parse(&lr2).unwrap();

    // After the legacy appliance stopped: one VM ends.
    std::thread::sleep(std::time::Duration::from_secs(1));
    py(&["delete", &straddle]);

    // The switch.
    let target = dir.path().join("target");
    let rep = import_json(&root, &target, &[]);
    let alpha1 = site.var("REFSITE_PROJECT_ALPHA1_ID");
    let alpha2 = site.var("REFSITE_PROJECT_ALPHA2_ID");
    for (id, lr) in [(alpha1, &lr1), (alpha2, &lr2)] {
        let p = rep["state"]["lastrun"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["project"] == id)
            .unwrap_or_else(|| panic!("project {id} not resolved by id: {rep:#}"));
        assert_eq!(p["starts"].as_str(), Some(lr.as_str()), "{p:#}");
        assert!(p["how"].as_str().unwrap().contains("carried over"), "{p:#}");
    }
    assert_eq!(
        rep["state"]["spool"]["waiting"].as_u64(),
        Some(left.len() as u64)
    );
    let config = target.join("etc/fedcloud-appliance/appliance.yaml");
    let ams = test_ams(&dir.path().join("ams"));
    patch_ams(&config, ams.server.addr().port());

    // The first extraction: from cASO's lastrun, re-keyed to the ids.
    let ex = accounting(&config, "extract");
    for (id, lr) in [(alpha1, &lr1), (alpha2, &lr2)] {
        let p = ex["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} not extracted: {ex:#}"));
        assert_eq!(p["from"].as_str(), Some(lr.trim()), "{p:#}");
        assert_eq!(p["from_source"], "ours", "{p:#}");
    }
    let all = spool_bodies(&target.join("var/spool/apel/outgoing/openstack"));
    let new: BTreeMap<&String, String> = all
        .iter()
        .filter(|(n, _)| !left.contains_key(*n))
        .map(|(n, b)| (n, String::from_utf8_lossy(b).into_owned()))
        .collect();
    let ours: Vec<BTreeMap<String, String>> = new
        .values()
        .filter(|b| b.starts_with("APEL-cloud-message:"))
        .flat_map(|b| cloud_records(b))
        .collect();
    let vm = |id: &str| {
        ours.iter()
            .find(|r| r.get("VMUUID").map(String::as_str) == Some(id))
    };
    assert!(
        vm(&before).is_none(),
        "the VM that ended before cASO's last run was extracted again"
    );
    let s = vm(&straddle).expect("the VM that ended after cASO's last run is missing: a gap");
    let end: i64 = s["EndTime"].parse().unwrap_or_else(|_| panic!("{s:?}"));
    let lr_secs = lastrun::parse(&lr1).unwrap().timestamp();
    assert!(end >= lr_secs, "{s:?} ended before cASO's lastrun {lr1}");
    assert!(vm(&gpu).is_some(), "the running GPU VM is missing");
    // The GPU VM keeps its accelerator record (cumulative within the month,
    // as cASO's: not a window witness).
    let accel = new
        .values()
        .filter(|b| b.contains("APEL-accelerator-message"))
        .flat_map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["UsageRecords"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|r| r["AssociatedRecord"] == gpu.as_str())
        .count();
    assert_eq!(accel, 1, "the GPU VM's accelerator record is missing");
    // The volume's storage time starts at cASO's lastrun.
    let storage = new
        .values()
        .filter(|b| b.starts_with("<sr:StorageUsageRecords"))
        .flat_map(|b| b.split("<sr:StorageUsageRecord>").skip(1))
        .find(|r| r.contains(&vol))
        .unwrap_or_else(|| panic!("no storage record of volume {vol}"));
    let start = between(storage, "<sr:StartTime>", "</sr:StartTime>").unwrap();
    assert_eq!(lastrun::parse(start), Some(lr2_t), "{storage}");

    // Send: cASO's leftovers first, every one delivered as it was.
    let sent = accounting(&config, "send");
    assert_eq!(sent["sent"].as_u64(), Some(all.len() as u64), "{sent:#}");
    assert_eq!(sent["left"], 0);
    let msgs = ams.messages();
    for (name, body) in &left {
        let m = by_empaid(&msgs, name);
        assert_eq!(m.len(), 1, "{name}: {} deliveries", m.len());
        assert_eq!(
            openssl_verify(&m[0].decoded_data().unwrap()),
            *body,
            "{name} delivered with other content"
        );
    }
    let position = |name: &str| {
        msgs.iter()
            .position(|m| m.attributes.get("empaid").map(String::as_str) == Some(name))
            .unwrap()
    };
    let last_legacy = left.keys().map(|n| position(n)).max().unwrap();
    let first_new = new.keys().map(|n| position(n)).min().unwrap();
    assert!(
        last_legacy < first_new,
        "a new message went before cASO's leftovers"
    );
    drop(made);
}

/// The older layouts named projects in `caso.conf` (cASO's lastrun files
/// are `lastrun.<name>`): `import-legacy` logs in with the imported
/// credential, resolves the names to ids, writes the ids into `vos`, and
/// carries each `lastrun.<name>` into the appliance's mark of that id.
/// (Keystone only: nothing on the site changes.)
#[test]
fn names_resolved_online_and_lastrun_rekeyed() {
    let site = refsite();
    let dir = tempfile::tempdir().unwrap();
    let root = legacy_root(dir.path());
    edit(
        &root.join("etc/caso/caso.conf"),
        &[(20, "projects = alpha-1, alpha-2".into())],
    );
    std::fs::write(
        root.join("etc/caso/voms.json"),
        "{\"vo.alpha.example\": {\"projects\": [\"alpha-1\", \"alpha-2\"]}}\n",
    )
    .unwrap();
    let caso_dir = root.join("var/spool/caso");
    std::fs::write(caso_dir.join("lastrun"), "2020-08-26 20:14:04.551203+00:00").unwrap();
    std::fs::write(
        caso_dir.join("lastrun.alpha-1"),
        "2020-11-15 12:14:06.120448+00:00",
    )
    .unwrap();
    let target = dir.path().join("target");
    let rep = import_json(&root, &target, &[]);
    let config =
        std::fs::read_to_string(target.join("etc/fedcloud-appliance/appliance.yaml")).unwrap();
    let (a1, a2) = (
        site.var("REFSITE_PROJECT_ALPHA1_ID"),
        site.var("REFSITE_PROJECT_ALPHA2_ID"),
    );
    for id in [a1, a2] {
        assert!(
            config.contains(&format!("- id: {id}")),
            "{id} not in vos:\n{config}"
        );
    }
    assert!(config.contains(&format!("project-id: {a1}")), "{config}");
    let ours = |id: &str| {
        std::fs::read_to_string(target.join(format!(
            "var/lib/fedcloud-appliance/accounting/lastrun.{id}"
        )))
        .unwrap()
    };
    // its own file, by name
    assert_eq!(ours(a1).trim(), "2020-11-15 12:14:06.120448+00:00");
    // none by name: cASO's global one, as cASO would have
    assert_eq!(ours(a2).trim(), "2020-08-26 20:14:04.551203+00:00");
    // the image project named in mapping.json is the same project: no conflict
    let mapping = rep["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/cloudkeeper-os/mapping.json")
        .unwrap();
    assert_eq!(mapping["keys"][0]["outcome"], "imported", "{mapping:#}");
}
