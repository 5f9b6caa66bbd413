//! kill -9 at random points of a migration: every artifact is its old or
//! its new version, never a mix; a configuration at the new schema means
//! the state's switch is complete; and the next run finishes the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{stage, tree, Case};

/// Image cache entries to rename: enough fsynced operations that a random
/// kill mostly lands in the middle of the switch.
const ENTRIES: usize = 500;
const RUNS: usize = 24;

/// A release-1 appliance (the `state/v1` fixture) with `ENTRIES` more
/// cached images in its list directory.
fn make() -> Case {
    let c = stage("state/v1");
    let dir = c.image_data().join("fedcloud.egi.eu");
    let ix_path = dir.join("index.json");
    let mut ix: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&ix_path).unwrap()).unwrap();
    for i in 0..ENTRIES {
        let id = format!("0000{i:04}-aaaa-4bbb-8ccc-dddddddddddd");
        std::fs::write(dir.join(&id), format!("image {i}\n")).unwrap();
        ix.insert(
            id,
            serde_json::json!({"size": 11, "mtime_ns": 1, "inode": i, "sha512": format!("s{i}")}),
        );
    }
    std::fs::write(&ix_path, serde_json::to_vec_pretty(&ix).unwrap()).unwrap();
    c
}

const SKIP: &[&str] = &["state/backups", "state/migrate"];

/// The tree without the migration's own files, paths normalised.
fn snapshot(c: &Case) -> BTreeMap<String, String> {
    tree(c.dir(), SKIP)
        .into_iter()
        .map(|(k, v)| (k, c.normalise(&String::from_utf8_lossy(&v))))
        .collect()
}

struct Reference {
    old: BTreeMap<String, String>,
    new: BTreeMap<String, String>,
    /// (old path, new path) of every rename, relative.
    renames: Vec<(String, String)>,
    /// An uninterrupted run.
    took: Duration,
    /// Its switch: from the journal's appearance to the end.
    switch: Duration,
}

fn spawn(c: &Case) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("appliance"))
        .env_remove("APPLIANCE_LOG")
        .env_remove("JOURNAL_STREAM")
        .arg("--config")
        .arg(c.config())
        .arg("migrate")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until the run's journal appears (or the run ends): when its
/// switch starts.
fn until_switch(c: &Case, child: &mut std::process::Child) -> Instant {
    let journal = c.state().join("migrate/journal.json");
    while !journal.exists() && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_micros(200));
    }
    Instant::now()
}

fn reference() -> Reference {
    let c = make();
    let old = snapshot(&c);
    let t = Instant::now();
    let mut child = spawn(&c);
    let switch_at = until_switch(&c, &mut child);
    let status = child.wait().unwrap();
    let took = t.elapsed();
    let switch = switch_at.elapsed();
    assert!(status.success());
    let new = snapshot(&c);
    let backup = super::backups(&c).pop().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("migration.json")).unwrap()).unwrap();
    let root = format!("{}/", c.dir().display());
    let rel = |v: &serde_json::Value| v.as_str().unwrap().strip_prefix(&root).unwrap().to_string();
    let renames: Vec<(String, String)> = manifest["renames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (rel(&p[0]), rel(&p[1])))
        .collect();
    assert!(renames.len() > ENTRIES, "{}", renames.len());
    Reference {
        old,
        new,
        renames,
        took,
        switch,
    }
}

/// Where the kill landed, from what it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// Nothing switched yet (reading, backup, staging).
    Before,
    /// The journal was there: some operations done, some not.
    MidSwitch,
    /// All switched (the journal may still have been there).
    After,
}

/// Every artifact old or new; the order's promise; where it landed.
fn check_no_mix(r: &Reference, got: &BTreeMap<String, String>, journal: bool) -> Landed {
    let is = |k: &str, v: &BTreeMap<String, String>| got.get(k) == v.get(k);
    let renamed: Vec<bool> = r
        .renames
        .iter()
        .map(|(from, to)| {
            match (got.get(from), got.get(to)) {
                (Some(a), None) => assert_eq!(Some(a), r.old.get(from), "{from} changed"),
                (None, Some(b)) => assert_eq!(Some(b), r.new.get(to), "{to} changed"),
                (a, b) => panic!("{from} -> {to}: both or neither ({a:?}, {b:?})"),
            }
            got.contains_key(to)
        })
        .collect();
    let moved: std::collections::BTreeSet<&str> = r
        .renames
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    // Every other file: old or new, whole.
    let mut switched = BTreeMap::new();
    for k in r.old.keys().chain(r.new.keys()) {
        if moved.contains(k.as_str()) {
            continue;
        }
        let old = is(k, &r.old);
        let new = is(k, &r.new);
        assert!(old || new, "{k} is neither old nor new: {:?}", got.get(k));
        if r.old.get(k) != r.new.get(k) {
            switched.insert(k.clone(), new);
        }
    }
    let config = switched["appliance.yaml"];
    let stamp = switched["state/schema-version"];
    let index = switched["image-data/fedcloud.egi.eu/index.json"];
    let all_renamed = renamed.iter().all(|x| *x);
    // The order: renames, indexes, stamp, configuration.
    if index {
        assert!(all_renamed, "an index switched before its renames");
    }
    if stamp {
        assert!(index && all_renamed, "the stamp switched before the state");
    }
    if config {
        assert!(stamp, "the configuration switched before the state");
    }
    match (config, renamed.iter().any(|x| *x) || index || stamp) {
        (true, _) => Landed::After,
        (false, true) => Landed::MidSwitch,
        (false, false) if journal => Landed::MidSwitch,
        (false, false) => Landed::Before,
    }
}

#[test]
fn kill_9_at_random_points_leaves_old_or_new_and_the_next_run_completes() {
    let r = reference();
    let mut landed = BTreeMap::new();
    for run in 0..RUNS {
        let c = make();
        assert_eq!(snapshot(&c), r.old);
        let mut child = spawn(&c);
        // Even runs: a kill point anywhere in the whole run (start-up,
        // reading, backup, staging, switch). Odd runs: anywhere in the
        // switch, the part that matters most and the shortest.
        let at = if run % 2 == 0 {
            let span = r.took.as_micros() as u64 * 11 / 10;
            Duration::from_micros(rand::random_range(0..span.max(1)))
        } else {
            until_switch(&c, &mut child);
            let span = r.switch.as_micros() as u64;
            Duration::from_micros(rand::random_range(0..span.max(1)))
        };
        std::thread::sleep(at);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let journal = c.state().join("migrate/journal.json").exists();
        // A temporary file next to an artifact is not one (never read; the
        // next run's write of that artifact replaces it).
        let mut got = snapshot(&c);
        got.retain(|k, _| !k.ends_with(".migrate-tmp"));
        let l = check_no_mix(&r, &got, journal);
        *landed.entry(l).or_insert(0) += 1;
        // The next run completes, and the one after has nothing to do.
        let (out, err, code) = c.migrate(&[]);
        assert_eq!(code, 0, "run {run} (killed at {at:?}, {l:?}): {out}{err}");
        assert_eq!(snapshot(&c), r.new, "run {run}: not completed");
        assert!(!c.state().join("migrate/journal.json").exists());
        if l == Landed::MidSwitch && journal {
            assert!(out.contains("finished an interrupted migration"), "{out}");
        }
        let (out, _, code) = c.migrate(&[]);
        assert_eq!((code, out.starts_with("up to date")), (0, true), "{out}");
    }
    eprintln!(
        "{RUNS} kills; an uninterrupted run takes {:?}, its switch {:?}; landed: {landed:?}",
        r.took, r.switch
    );
    assert!(
        landed.get(&Landed::MidSwitch).copied().unwrap_or(0) >= RUNS / 4,
        "too few kills landed mid-switch to prove anything: {landed:?}"
    );
}

/// A failure half-way (here: the configuration, switched last, cannot be
/// written) undoes everything already switched: the old version is in
/// place, exit 3; once the cause is gone, the next run migrates.
#[test]
fn a_failure_half_way_leaves_the_old_version_in_place() {
    let c = stage("state/v1");
    let before = snapshot(&c);
    // What the configuration's temporary file would be: a directory.
    let blocker = c.dir().join(".appliance.yaml.migrate-tmp");
    std::fs::create_dir(&blocker).unwrap();
    let (out, err, code) = c.run(&["--json", "migrate"]);
    assert_eq!(code, 3, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["outcome"], "rolled-back", "{r}");
    assert!(
        r["failure"].as_str().unwrap().contains("appliance.yaml"),
        "{r}"
    );
    assert_eq!(
        (
            r["config"]["version"].clone(),
            r["state"]["version"].clone()
        ),
        (1.into(), serde_json::Value::Null)
    );
    let mut after = snapshot(&c);
    after.retain(|k, _| !k.starts_with(".appliance.yaml.migrate-tmp"));
    assert_eq!(after, before, "not rolled back");
    assert!(!c.state().join("migrate/journal.json").exists());
    assert_eq!(super::backups(&c).len(), 1, "the backup stays");
    std::fs::remove_dir(&blocker).unwrap();
    let (out, err, code) = c.migrate(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("migrated\n"), "{out}");
}
