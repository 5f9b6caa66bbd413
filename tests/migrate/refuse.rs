//! What is refused: a configuration or state newer than this release
//! (nothing touched), and jobs on an old configuration, an old state or
//! an unfinished migration (each saying to run `appliance migrate`).

use super::{stage, tree};

#[test]
fn newer_config_is_refused_and_nothing_touched() {
    let c = stage("state/v1");
    c.set_version(3);
    let before = tree(c.dir(), &[]);
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("the configuration is at schema 3, newer than this release reads (2); nothing was changed"),
        "{err}"
    );
    assert!(err.contains("appliance.yaml"), "names the file: {err}");
    assert_eq!(tree(c.dir(), &[]), before);
    let (_, err, code) = c.migrate(&["--dry-run"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn newer_state_is_refused_and_nothing_touched() {
    let c = stage("state/v1");
    std::fs::write(c.state().join("schema-version"), "7\n").unwrap();
    let before = tree(c.dir(), &[]);
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "the state is at schema 7, newer than this release uses (2); nothing was changed"
        ),
        "{err}"
    );
    assert_eq!(
        tree(c.dir(), &[]),
        before,
        "the schema-1 config was not migrated either"
    );
}

#[test]
fn garbled_stamp_and_broken_yaml_are_refused() {
    let c = stage("state/v1");
    std::fs::write(c.state().join("schema-version"), "two\n").unwrap();
    let (_, err, code) = c.migrate(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("`two` is not a schema version"), "{err}");
    std::fs::remove_file(c.state().join("schema-version")).unwrap();
    std::fs::write(c.config(), "schema-version: 1\nsite: [\n").unwrap();
    let (_, err, code) = c.migrate(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("YAML syntax error"), "{err}");
    std::fs::write(c.config(), "site: {}\n").unwrap();
    let (_, err, code) = c.migrate(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("`schema-version` is missing"), "{err}");
}

/// A job on a schema-1 configuration stops with exit 2 and says to run
/// `appliance migrate`.
#[test]
fn jobs_on_an_old_config_say_to_migrate() {
    let c = stage("config/v1-minimal");
    for job in [
        &["accounting", "extract"][..],
        &["accounting", "send"],
        &["info", "publish"],
        &["images", "sync"],
    ] {
        let (out, err, code) = c.run(job);
        assert_eq!(code, 2, "{job:?}: {out}{err}");
        assert!(
            err.contains("schema version 1 is from an earlier release")
                && err.contains("run `appliance migrate`"),
            "{job:?}: {err}"
        );
    }
}

/// A job on an old state, or while a migration is unfinished, stops with
/// exit 2 and says to run `appliance migrate`; nothing else is gated.
#[test]
fn jobs_on_an_old_state_or_unfinished_migration_say_to_migrate() {
    let c = stage("config/v1-minimal");
    let (_, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(c.state().join("schema-version"), "1\n").unwrap();
    let (out, err, code) = c.run(&["accounting", "extract"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("is at schema 1, this release uses schema 2; run `appliance migrate`"),
        "{err}"
    );
    std::fs::write(c.state().join("schema-version"), "2\n").unwrap();
    std::fs::write(c.state().join("migrate/journal.json"), "{}").unwrap();
    let (out, err, code) = c.run(&["images", "sync"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("is not finished") && err.contains("run `appliance migrate` to finish it"),
        "{err}"
    );
    // `config check` is not a job.
    let (out, err, code) = c.run(&["config", "check"]);
    assert_eq!(code, 0, "{out}{err}");
}
