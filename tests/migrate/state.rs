//! Schema-1 state -> schema 2: the image cache's entries take the new
//! names (file and index key), nothing else moves, nothing is downloaded
//! again; fresh and unstamped states.

use fedcloud_appliance::images::cache::{entry_name, legacy_entry_name, Index};

use super::{backups, golden, stage, tree};

/// The release-1 fixture: config, state and cache -> golden `after/`.
#[test]
fn release_1_state_and_cache() {
    let c = stage("state/v1");
    let (out, err, code) = c.migrate(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    golden("state/v1/dry-run.txt", &c.normalise(&out));

    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{out}{err}");
    golden("state/v1/expected.txt", &c.normalise(&out));
    golden(
        "state/v1/expected.yaml",
        &c.normalise(&std::fs::read_to_string(c.config()).unwrap()),
    );
    let after = super::fixtures().join("state/v1/after");
    let got = tree(
        c.dir(),
        &["appliance.yaml", "state/backups", "state/migrate"],
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&after);
        for (rel, bytes) in &got {
            let p = after.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
    }
    let want = tree(&after, &[]);
    let names =
        |t: &std::collections::BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for (rel, bytes) in &want {
        assert_eq!(
            String::from_utf8_lossy(&got[rel]),
            String::from_utf8_lossy(bytes),
            "{rel}"
        );
    }
    // The backup: the old indexes, the list of renames.
    let b = &backups(&c)[0];
    assert_eq!(
        std::fs::read(b.join("image-data/fedcloud.egi.eu/index.json")).unwrap(),
        std::fs::read(
            super::fixtures().join("state/v1/before/image-data/fedcloud.egi.eu/index.json")
        )
        .unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("migration.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["renames"].as_array().unwrap().len(),
        3,
        "{manifest}"
    );
    // And it is done.
    let (out, _, code) = c.migrate(&[]);
    assert_eq!((code, out.starts_with("up to date")), (0, true), "{out}");
}

/// A cache written by the release-1 code (real index records: size,
/// mtime, inode) is still trusted after the migration: the renamed files
/// verify without being read or downloaded again.
#[test]
fn renamed_entries_stay_verified() {
    let c = stage("config/v1-minimal");
    let dir = c.image_data().join("egi");
    std::fs::create_dir_all(&dir).unwrap();
    let ids = [
        "c0482bc2-bf41-5d49-aaaa-a750174a186b",
        "ubuntu-24.04",
        "os:centos:9",
    ];
    let mut ix = Index::load(&dir);
    for (i, id) in ids.iter().enumerate() {
        let old = legacy_entry_name(id);
        std::fs::write(dir.join(&old), format!("image {i}")).unwrap();
        ix.record(&old, &format!("sha-{i}")).unwrap();
    }
    ix.save().unwrap();
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{out}{err}");
    let ix = Index::load(&dir);
    for (i, id) in ids.iter().enumerate() {
        let sha = format!("sha-{i}");
        if id.contains(':') {
            // Ambiguous old name (`os_centos_9`): left for `images sync`,
            // which adopts it when the digest matches.
            assert!(ix.verified(&legacy_entry_name(id), &sha).is_some(), "{id}");
        } else {
            assert!(ix.verified(&entry_name(id), &sha).is_some(), "{id}: {out}");
            assert!(!dir.join(legacy_entry_name(id)).exists());
        }
    }
}

/// A state directory that exists but holds nothing (a fresh install, or
/// tmpfiles.d's empty directory) is stamped quietly; one that does not
/// exist is left alone.
#[test]
fn fresh_state_is_stamped_and_absent_state_left_alone() {
    let c = stage("config/v1-minimal");
    // Make the config current, with no state at all.
    c.set_version(2);
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "up to date: nothing to migrate (configuration schema 2, state none yet)\n"
    );
    assert!(!c.state().exists());

    std::fs::create_dir_all(c.state()).unwrap();
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state stamped"), "{out}");
    assert_eq!(
        std::fs::read_to_string(c.state().join("schema-version")).unwrap(),
        "2\n"
    );
    assert!(backups(&c).is_empty(), "nothing to back up");
    let (out, _, _) = c.migrate(&[]);
    assert!(out.starts_with("up to date"), "{out}");
}

/// State data without a stamp is schema 1, whatever the configuration.
#[test]
fn unstamped_state_data_is_schema_1() {
    let c = stage("config/v1-minimal");
    c.set_version(2);
    std::fs::create_dir_all(c.state().join("accounting")).unwrap();
    std::fs::write(
        c.state().join("accounting/lastrun.p-ops"),
        "2026-01-01 00:00:00+00:00",
    )
    .unwrap();
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("schema 1 (no stamp) -> 2"), "{out}");
    assert!(!out.contains("configuration"), "{out}");
    assert_eq!(backups(&c).len(), 1);
}
