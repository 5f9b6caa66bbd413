//! A legacy `voms.json` whose VO name APEL records cannot carry (issue #14
//! item 14): the import does not carry it over silently; its `config check`
//! names the VO and the reason, and the run says so (exit 1).

use serde_json::Value;

use super::{fixtures, stage};
use crate::util::appliance;

#[test]
fn a_voms_json_vo_name_apel_cannot_carry_is_reported_by_the_import() {
    let dir = stage("H");
    let voms = dir.path().join("root/etc/caso/voms.json");
    let text = std::fs::read_to_string(&voms)
        .unwrap()
        .replace("\"fedcloud.egi.eu\"", "\"fedcloud.egi.eu:cloud%\"");
    assert!(
        text.contains("fedcloud.egi.eu:cloud%"),
        "fixture changed: {text}"
    );
    std::fs::write(&voms, text).unwrap();
    let out = appliance()
        .arg("import-legacy")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--target")
        .arg(dir.path().join("target"))
        .args(["--offline", "--dry-run", "--json", "--catch-all"])
        .arg(fixtures().join("H/catch-all.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let check: Vec<&str> = report["check"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        check.iter().any(|c| c.contains(
            "`fedcloud.egi.eu:cloud%` is not a VO name APEL records can carry: `:` is not part of a VO name"
        )),
        "{check:#?}"
    );
}
