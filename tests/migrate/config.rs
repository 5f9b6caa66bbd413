//! Schema-1 configurations -> schema 2: golden files, the dry-run diff,
//! the backup, `config check` of the result, and the no-op re-run.

use super::{backups, golden, stage, tree, Case};

/// The configuration cases (each a directory of `config/`).
const CASES: &[&str] = &[
    "v1-commented",
    "v1-refsite",
    "v1-flow",
    "v1-minimal",
    "v1-alias",
];

/// The files a dry run must leave as they are (all of them).
fn snapshot(c: &Case) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(c.dir(), &[])
}

fn check_case(case: &str) {
    let c = stage(&format!("config/{case}"));
    let original = std::fs::read_to_string(c.config()).unwrap();

    // --dry-run: the diff, and nothing written (not even the state dir).
    let before = snapshot(&c);
    let (out, err, code) = c.migrate(&["--dry-run"]);
    assert_eq!(code, 0, "{case}: dry run: {err}");
    golden(&format!("config/{case}/dry-run.txt"), &c.normalise(&out));
    assert_eq!(snapshot(&c), before, "{case}: --dry-run changed files");
    assert!(
        !c.state().exists(),
        "{case}: --dry-run created the state dir"
    );

    // The migration.
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{case}: {out}{err}");
    golden(&format!("config/{case}/expected.txt"), &c.normalise(&out));
    let migrated = std::fs::read_to_string(c.config()).unwrap();
    golden(
        &format!("config/{case}/expected.yaml"),
        &c.normalise(&migrated),
    );

    // The backup holds the original, and the state is stamped.
    let b = backups(&c);
    assert_eq!(b.len(), 1, "{case}: {b:?}");
    assert_eq!(
        std::fs::read_to_string(b[0].join("config/appliance.yaml")).unwrap(),
        original
    );
    assert!(b[0].join("migration.json").is_file());
    assert_eq!(
        std::fs::read_to_string(c.state().join("schema-version")).unwrap(),
        "2\n"
    );
    assert!(!c.state().join("migrate/journal.json").exists());
    assert!(!c.state().join("migrate/staged").exists());

    // The result passes `config check`.
    let (out, err, code) = c.run(&["config", "check"]);
    assert_eq!(
        code, 0,
        "{case}: config check of the migrated file:\n{out}{err}"
    );

    // Re-running is a no-op that says so, writes nothing, and is quiet.
    let before = snapshot(&c);
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{case}: {err}");
    assert_eq!(
        out,
        "up to date: nothing to migrate (configuration schema 2, state schema 2)\n"
    );
    assert_eq!(err, "", "{case}: a no-op run logs nothing");
    assert_eq!(snapshot(&c), before, "{case}: a no-op run changed files");
    assert_eq!(backups(&c).len(), 1);
}

#[test]
fn commented_config_keeps_every_comment() {
    check_case("v1-commented");
    // Every comment line of the original is still there, in order.
    let c = stage("config/v1-commented");
    let original = std::fs::read_to_string(c.config()).unwrap();
    c.migrate(&[]);
    let migrated = std::fs::read_to_string(c.config()).unwrap();
    let comments = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.find('#').map(|i| l[i..].to_string()))
            .collect()
    };
    let (old, new) = (comments(&original), comments(&migrated));
    let mut it = new.iter();
    for c in &old {
        assert!(it.any(|n| n == c), "comment lost or reordered: {c}");
    }
}

#[test]
fn reference_site_config_as_generated_before_schema_2() {
    check_case("v1-refsite");
}

#[test]
fn flow_style_config() {
    check_case("v1-flow");
}

#[test]
fn minimal_config_only_changes_its_version() {
    check_case("v1-minimal");
}

#[test]
fn config_with_aliases_is_rewritten_with_the_same_meaning() {
    check_case("v1-alias");
    let text =
        std::fs::read_to_string(super::fixtures().join("config/v1-alias/expected.txt")).unwrap();
    assert!(text.contains("rewritten"), "{text}");
}

#[test]
fn every_case_is_tested() {
    let mut dirs: Vec<String> = std::fs::read_dir(super::fixtures().join("config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut cases: Vec<&str> = CASES.to_vec();
    cases.sort();
    assert_eq!(dirs, cases);
}

/// A symlinked configuration (say, into a git checkout) is migrated where
/// it points, and stays a symlink.
#[test]
fn symlinked_config_stays_a_symlink() {
    let c = stage("config/v1-minimal");
    let real = c.dir().join("etc-git/appliance.yaml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::rename(c.config(), &real).unwrap();
    std::os::unix::fs::symlink(&real, c.config()).unwrap();
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::symlink_metadata(c.config())
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .starts_with("schema-version: 2\n"));
}
