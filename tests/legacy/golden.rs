//! Every legacy layout, file by file: the fixture root -> `appliance.yaml`,
//! the secrets file and the report (goldens), `config check` on the result,
//! and the state carried over.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{fixtures, stage};
use crate::util::appliance;

/// Secrets of the fixtures (spec §7): none may reach a report.
const SECRETS: &[&str] = &[
    "acct-secret",
    "ck-secret",
    "info-secret",
    "img-secret",
    "11111111-2222-4333-8444-555555555555",
];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn import(root: &Path, target: &Path, layout: &str, extra: &[&str]) -> Run {
    let mut cmd = appliance();
    cmd.arg("import-legacy")
        .arg("--root")
        .arg(root)
        .arg("--target")
        .arg(target)
        .arg("--offline")
        .args(extra);
    if layout == "H" {
        cmd.arg("--catch-all")
            .arg(fixtures().join("H/catch-all.yaml"));
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The text with the run's directories replaced by placeholders.
fn normalise(text: &str, dir: &Path) -> String {
    text.replace(
        &fixtures().join("H/catch-all.yaml").display().to_string(),
        "<catch-all>",
    )
    .replace(&dir.join("root").display().to_string(), "<root>")
    .replace(&dir.join("target").display().to_string(), "<target>")
}

fn compare(layout: &str, file: &str, got: &str) {
    let path = fixtures().join(layout).join("expected").join(file);
    crate::util::golden(&path, &format!("{layout}/{file}"), got);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Elements (`dir/file`) of a dirq spool.
fn elements(spool: &Path) -> Vec<String> {
    super::spool_bodies(spool).into_keys().collect()
}

fn golden(layout: &str) {
    // The JSON report of a dry run: nothing written, everything counted.
    let dry = stage(layout);
    let root = dry.path().join("root");
    let before = elements(&root.join("var/spool/apel/outgoing/openstack"));
    let r = import(
        &root,
        &dry.path().join("target"),
        layout,
        &["--dry-run", "--json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["layout"], layout);
    assert_eq!(report["dry_run"], true);
    assert!(
        !dry.path().join("target").exists(),
        "a dry run wrote something"
    );
    assert_eq!(
        elements(&root.join("var/spool/apel/outgoing/openstack")),
        before,
        "a dry run changed the legacy spool"
    );
    assert_eq!(report["check"], Value::Array(vec![]), "{report:#}");
    for s in SECRETS {
        assert!(!r.stdout.contains(s), "secret {s} in the JSON report");
    }
    let keys = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["keys"].as_array().unwrap())
        .count();
    assert!(keys > 20, "only {keys} keys reported");
    let dry_spool = report["state"]["spool"].clone();

    // The real import.
    let dir = stage(layout);
    let root = dir.path().join("root");
    let target = dir.path().join("target");
    let legacy_spool = root.join("var/spool/apel/outgoing/openstack");
    let waiting: Vec<(String, Vec<u8>)> = elements(&legacy_spool)
        .into_iter()
        .map(|e| {
            let b = std::fs::read(legacy_spool.join(&e)).unwrap();
            (e, b)
        })
        .collect();
    let r = import(&root, &target, layout, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for s in SECRETS {
        assert!(!r.stdout.contains(s), "secret {s} in the report");
        assert!(!r.stderr.contains(s), "secret {s} in the log");
    }
    let cfg = target.join("etc/fedcloud-appliance/appliance.yaml");
    let sec = target.join("etc/fedcloud-appliance/secrets.yaml");
    compare(layout, "report.txt", &normalise(&r.stdout, dir.path()));
    compare(
        layout,
        "appliance.yaml",
        &normalise(&std::fs::read_to_string(&cfg).unwrap(), dir.path()),
    );
    compare(
        layout,
        "secrets.yaml",
        &std::fs::read_to_string(&sec).unwrap(),
    );
    assert_eq!(mode(&sec), 0o600);
    assert_eq!(mode(&cfg), 0o640);
    for s in SECRETS {
        assert!(
            !std::fs::read_to_string(&cfg).unwrap().contains(s),
            "secret {s} in appliance.yaml"
        );
    }

    // The result passes `config check`.
    let out = appliance()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "config check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The spool: every waiting element moved, same name, same bytes.
    let spool = target.join("var/spool/apel/outgoing/openstack");
    for (e, b) in &waiting {
        let got =
            std::fs::read(spool.join(e)).unwrap_or_else(|err| panic!("{e} not taken over: {err}"));
        assert_eq!(&got, b, "{e} changed on the way");
        assert!(
            !legacy_spool.join(e).exists(),
            "{e} left in the legacy spool"
        );
    }
    let taken = elements(&spool);
    assert_eq!(
        taken.len() as u64,
        dry_spool["waiting"].as_u64().unwrap(),
        "{dry_spool:#}"
    );
    // The host key, private.
    assert_eq!(mode(&target.join("etc/grid-security/hostkey.pem")), 0o600);
    // A second import does not overwrite the first.
    let again = import(&root, &target, layout, &[]);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}

fn lastrun(target: &Path, id: &str) -> Option<String> {
    std::fs::read_to_string(
        target
            .join("var/lib/fedcloud-appliance/accounting")
            .join(format!("lastrun.{id}")),
    )
    .ok()
    .map(|s| s.trim().to_string())
}

fn copied(target: &Path) -> Vec<String> {
    let d: PathBuf = target.join("var/lib/fedcloud-appliance/accounting/caso");
    let mut v: Vec<String> = std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const FEDCLOUD_ID: &str = "3b1d2e4f5a6b47c8a9d0e1f2a3b4c5d6";
const OPS_ID: &str = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5";

macro_rules! layouts {
    ($($name:ident => $l:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                golden($l);
            }
        )*
    };
}

layouts! {
    layout_a_20160403 => "A",
    layout_b_2017_08_09 => "B",
    layout_c_2018_05_07 => "C",
    layout_d_2019_07_11 => "D",
    layout_e_2020_03_02 => "E",
    layout_f_2020_08_27 => "F",
    layout_g_2021_09_13 => "G",
    layout_h_2022_04_25 => "H",
}

/// G: per-project lastrun keyed by id -> the appliance's own marks; the
/// spool's stale lock and stranded temporaries.
#[test]
fn layout_g_state_in_detail() {
    let dir = stage("G");
    let root = dir.path().join("root");
    let target = dir.path().join("target");
    let r = import(&root, &target, "G", &["--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    for id in [FEDCLOUD_ID, OPS_ID] {
        assert_eq!(
            lastrun(&target, id).as_deref(),
            Some("2022-04-01 00:14:06.775120+00:00"),
            "lastrun of {id}"
        );
    }
    assert_eq!(
        copied(&target),
        [
            format!("lastrun.{OPS_ID}"),
            format!("lastrun.{FEDCLOUD_ID}")
        ]
    );
    let s = &rep["state"]["spool"];
    assert_eq!(s["waiting"], 4, "{s:#}");
    assert_eq!(s["stale_locks"], 1, "{s:#}");
    assert_eq!(s["recovered_temporaries"], 1, "{s:#}");
    assert_eq!(
        s["incomplete_temporaries"].as_array().unwrap().len(),
        1,
        "{s:#}"
    );
    assert_eq!(s["oldest"], "2021-09-20T08:14:07Z");
    assert_eq!(s["kinds"]["cloud_v04"], 4);
    // the incomplete one is kept aside, never in the spool
    let aside = target.join("var/lib/fedcloud-appliance/accounting/legacy-incomplete");
    assert_eq!(std::fs::read_dir(&aside).unwrap().count(), 1);
    let legacy = root.join("var/spool/apel/outgoing/openstack");
    let left: Vec<String> = walk(&legacy);
    assert!(left.is_empty(), "left in the legacy spool: {left:?}");
}

/// F: cASO 1.4.3 kept per-project files keyed by name next to the global
/// one of before its upgrade; v0.2 and v0.4 messages waiting.
#[test]
fn layout_f_names_global_lastrun_and_v02() {
    let dir = stage("F");
    let target = dir.path().join("target");
    let r = import(&dir.path().join("root"), &target, "F", &["--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        copied(&target),
        ["lastrun", "lastrun.fedcloud", "lastrun.ops"]
    );
    let projects = rep["state"]["lastrun"].as_array().unwrap();
    let fedcloud = projects
        .iter()
        .find(|p| p["vo"] == "fedcloud.egi.eu")
        .unwrap();
    assert_eq!(fedcloud["starts"], "2020-11-15 12:14:06.120448+00:00");
    assert_eq!(fedcloud["from_file"], "/var/spool/caso/lastrun.fedcloud");
    let k = &rep["state"]["spool"]["kinds"];
    assert_eq!(
        (k["cloud_v02"].as_u64(), k["cloud_v04"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(rep["state"]["spool"]["oldest"], "2020-08-26T20:14:03Z");
}

/// The layout is detected from the files; `--layout` overrides it and the
/// disagreement is reported; nothing legacy is a usage error.
#[test]
fn layout_detection_and_override() {
    let dir = stage("E");
    let root = dir.path().join("root");
    let r = import(
        &root,
        &dir.path().join("t"),
        "E",
        &["--dry-run", "--json", "--layout", "d"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["layout"], "D");
    let doubts = rep["doubts"].to_string();
    assert!(doubts.contains("layout E"), "{doubts}");
    let empty = tempfile::tempdir().unwrap();
    let r = import(empty.path(), &dir.path().join("t"), "E", &["--dry-run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("no legacy FedCloud appliance"),
        "{}",
        r.stderr
    );
    let r = import(
        &root,
        &dir.path().join("t"),
        "E",
        &["--dry-run", "--layout", "Z"],
    );
    assert_eq!(r.code, 2);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// The `--json` report of every layout, and of the cases that fill its
/// rarer fields, against `docs/import-legacy-json.md`.
#[test]
fn json_report_matches_its_documentation() {
    let mut reports: Vec<Value> = Vec::new();
    let json = |dir: &Path, layout: &str, extra: &[&str]| -> Value {
        let mut args = vec!["--dry-run", "--json"];
        args.extend_from_slice(extra);
        let r = import(&dir.join("root"), &dir.join("target"), layout, &args);
        assert!(matches!(r.code, 0 | 1), "{}\n{}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    };
    let mut dirs = Vec::new();
    for l in ["A", "B", "C", "D", "E", "F", "G", "H"] {
        let d = stage(l);
        reports.push(json(d.path(), l, &[]));
        dirs.push(d);
    }
    // a forced layout: doubts
    let d = stage("E");
    reports.push(json(d.path(), "E", &["--layout", "D"]));
    // a legacy spool in use (fresh locks and temporaries), a site name
    // never configured (the result fails `config check`)
    let fresh = tempfile::tempdir().unwrap();
    super::copy_tree(&fixtures().join("G/root"), &fresh.path().join("root"));
    for f in [
        "etc/caso/caso.conf",
        "etc/cloud-info-provider/openstack.yaml",
    ] {
        let p = fresh.path().join("root").join(f);
        let t = std::fs::read_to_string(&p)
            .unwrap()
            .replace("EXAMPLE-SITE", "SITE-NAME");
        std::fs::write(&p, t).unwrap();
    }
    let rep = json(fresh.path(), "G", &[]);
    assert!(!rep["check"].as_array().unwrap().is_empty(), "{rep:#}");
    assert!(!rep["state"]["spool"]["locked"]
        .as_array()
        .unwrap()
        .is_empty());
    reports.push(rep);
    // in place: the appliance on the legacy machine itself
    let d = stage("H");
    let root = d.path().join("root");
    let r = import(&root, &root, "H", &["--dry-run", "--json"]);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        rep["state"]["spool"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("legacy one"),
        "{rep:#}"
    );
    reports.push(rep);
    let refs: Vec<&Value> = reports.iter().collect();
    crate::util::schema::check("docs/import-legacy-json.md", &refs);
}
