//! The `--json` report: every outcome's report checked against the field
//! table of docs/migrate-json.md (`util::schema`), and one golden report.

use serde_json::Value;

use super::{golden, stage};

fn json(c: &super::Case, args: &[&str]) -> (Value, i32) {
    let mut all = vec!["--json", "migrate"];
    all.extend_from_slice(args);
    let (out, err, code) = c.run(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (v, code)
}

#[test]
fn every_outcome_matches_the_documented_schema() {
    let mut reports = Vec::new();

    // Dry run, migration, up to date: a release-1 appliance.
    let c = stage("state/v1");
    let (dry, code) = json(&c, &["--dry-run"]);
    assert_eq!((code, dry["outcome"].as_str()), (0, Some("dry-run")));
    assert!(dry["diff"]
        .as_str()
        .unwrap()
        .contains("+    send-schedule: hourly"));
    let (migrated, code) = json(&c, &[]);
    assert_eq!((code, migrated["outcome"].as_str()), (0, Some("migrated")));
    assert_eq!(migrated["state"]["renamed"], 3);
    let (current, code) = json(&c, &[]);
    assert_eq!((code, current["outcome"].as_str()), (0, Some("up-to-date")));
    assert_eq!(
        (
            current["config"]["found"].clone(),
            current["state"]["found"].clone()
        ),
        (2.into(), 2.into())
    );
    let mut golden_report = migrated.clone();
    golden_report["release"] = "@RELEASE@".into();
    golden(
        "state/v1/expected.json",
        &c.normalise(&(serde_json::to_string_pretty(&golden_report).unwrap() + "\n")),
    );
    reports.extend([dry, migrated, current]);

    // A migrated file that `config check` does not accept (for a reason of
    // its own): migrated all the same, the problems listed.
    let c = stage("config/v1-minimal");
    let text = std::fs::read_to_string(c.config()).unwrap().replace(
        "https://keystone.minimal.example.org:5000/v3",
        "keystone.minimal",
    );
    std::fs::write(c.config(), text).unwrap();
    let (checked, code) = json(&c, &[]);
    assert_eq!((code, checked["outcome"].as_str()), (0, Some("migrated")));
    let check = checked["check"].as_array().unwrap();
    assert!(
        check.len() == 1 && check[0].as_str().unwrap().contains("site.endpoint"),
        "{checked}"
    );
    reports.push(checked);

    // A failure half-way: rolled back.
    let c = stage("config/v1-minimal");
    std::fs::create_dir(c.dir().join(".appliance.yaml.migrate-tmp")).unwrap();
    let (failed, code) = json(&c, &[]);
    assert_eq!((code, failed["outcome"].as_str()), (3, Some("rolled-back")));
    reports.push(failed);

    // The journal of an interrupted run: finished first.
    let c = stage("config/v1-minimal");
    std::fs::create_dir_all(c.state().join("migrate")).unwrap();
    std::fs::write(
        c.state().join("migrate/journal.json"),
        serde_json::json!({
            "format": 1, "release": "0.1.0", "started": "2026-12-01T00:00:00Z",
            "phase": "forward", "backup": c.state().join("backups/x"),
            "summary": [], "ops": []
        })
        .to_string(),
    )
    .unwrap();
    let (resumed, code) = json(&c, &[]);
    assert_eq!(
        (code, resumed["finished_interrupted"].as_str()),
        (0, Some("forward"))
    );
    reports.push(resumed);

    let refs: Vec<&Value> = reports.iter().collect();
    crate::util::schema::check("docs/migrate-json.md", &refs);
}
