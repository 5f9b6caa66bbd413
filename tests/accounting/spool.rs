//! The dirq QueueSimple spool on its own (layout, locking, purge,
//! permissions, concurrency).

use fedcloud_appliance::spool::{
    Clock, ElementName, Options, PurgeAges, QueueSimple, SpoolError, SystemClock,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(secs: u64, micros: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

fn queue(dir: &Path) -> QueueSimple {
    QueueSimple::open(
        dir,
        Options {
            rndhex: Some(7),
            umask: Some(0o022),
            ..Options::default()
        },
    )
    .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// `utime` an element or lock back in time, as if it were old.
fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn add_writes_the_dirq_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(&tmp.path().join("outgoing/openstack"));
    let clock = || at(0x6b02_e27f, 0x70f5e);
    let name = q.add(b"APEL-cloud-message: v0.4\n", &clock).unwrap();
    // directory: the time rounded down to the minute (0x6b02e27f % 60 == 27)
    let dir = "6b02e264".to_string();
    // the temporary took the clock's microsecond, so (the clock standing
    // still) the element got the next one; rndhex 7 ends the name
    assert_eq!(name.to_string(), format!("{dir}/6b02e27f70f5f7"));
    assert_eq!(files(q.path()), vec![dir.clone()]);
    assert_eq!(
        files(&q.path().join(&dir)),
        vec!["6b02e27f70f5f7"],
        "no temporary left"
    );
    let element = q.path().join(&dir).join("6b02e27f70f5f7");
    assert_eq!(
        std::fs::read(&element).unwrap(),
        b"APEL-cloud-message: v0.4\n"
    );
    assert_eq!(
        std::fs::metadata(&element).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::metadata(q.path().join(&dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(q.names().unwrap(), vec![name]);
}

#[test]
fn umask_option_sets_exact_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let q = QueueSimple::open(
        tmp.path().join("q"),
        Options {
            umask: Some(0o077),
            ..Options::default()
        },
    )
    .unwrap();
    let name = q.add(b"x", &SystemClock).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(q.path()), 0o700);
    assert_eq!(mode(&q.path().join(name.dir())), 0o700);
    assert_eq!(mode(&q.path().join(name.to_string())), 0o600);
}

#[test]
fn a_frozen_clock_still_gives_unique_ordered_names() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let clock = || at(1_700_000_000, 999_990);
    let names: Vec<ElementName> = (0..50)
        .map(|i| q.add(format!("m{i}").as_bytes(), &clock).unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "unique and increasing");
    assert_eq!(q.names().unwrap(), names);
    for (i, name) in names.iter().enumerate() {
        assert!(q.lock(name).unwrap());
        assert_eq!(q.get(name).unwrap(), format!("m{i}").as_bytes());
    }
}

#[test]
fn names_are_in_chronological_order_across_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let mut want = Vec::new();
    for minute in [3u64, 0, 1] {
        let t = at(1_700_000_000 + minute * 60, 5);
        want.push((minute, q.add(&[minute as u8], &move || t).unwrap()));
    }
    want.sort();
    assert_eq!(
        q.names().unwrap(),
        want.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    );
    assert_eq!(files(q.path()).len(), 3);
    assert_eq!(q.count().unwrap(), 3);
}

#[test]
fn foreign_files_are_ignored_like_dirq() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let name = q.add(b"real", &SystemClock).unwrap();
    let d = q.path().join(name.dir());
    for junk in [
        "6B02E26470F5E0",
        "0123456789abcd.tmp",
        "6b02e26470f5e",
        "README",
        "0123456789abcde",
    ] {
        std::fs::write(d.join(junk), b"junk").unwrap();
    }
    std::fs::create_dir(q.path().join("ABCDEF01")).unwrap();
    std::fs::write(q.path().join("abcdef01"), b"not a dir").unwrap();
    std::fs::write(q.path().join("lastrun.x"), b"").unwrap();
    assert_eq!(q.names().unwrap(), vec![name]);
}

#[test]
fn lock_get_unlock_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let name = q.add(b"payload", &SystemClock).unwrap();
    assert!(matches!(q.get(&name), Err(SpoolError::NotLocked { .. })));
    assert!(matches!(q.remove(&name), Err(SpoolError::NotLocked { .. })));
    assert!(q.lock(&name).unwrap());
    assert!(!q.lock(&name).unwrap(), "second lock loses");
    assert!(q.path().join(format!("{name}.lck")).exists());
    assert_eq!(q.get(&name).unwrap(), b"payload");
    assert_eq!(q.count().unwrap(), 1, "locked elements count");
    q.unlock(&name).unwrap();
    assert!(matches!(q.unlock(&name), Err(SpoolError::NotLocked { .. })));
    assert!(q.lock(&name).unwrap());
    q.remove(&name).unwrap();
    assert_eq!(files(&q.path().join(name.dir())), Vec::<String>::new());
    assert!(
        !q.lock(&name).unwrap(),
        "a removed element cannot be locked"
    );
    assert_eq!(q.count().unwrap(), 0);
}

#[test]
fn lock_refreshes_the_element_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let name = q.add(b"x", &SystemClock).unwrap();
    let path = q.path().join(name.to_string());
    set_mtime(&path, at(1_000_000_000, 0));
    assert!(q.lock(&name).unwrap());
    let age = SystemTime::now()
        .duration_since(std::fs::metadata(&path).unwrap().modified().unwrap())
        .unwrap();
    assert!(age < Duration::from_secs(60), "{age:?}");
}

#[test]
fn purge_removes_stale_temporaries_and_locks_and_empty_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let q = queue(tmp.path());
    let old = SystemTime::now() - Duration::from_secs(3600);
    // an old, now empty directory; an old directory with an element; the newest (empty) one
    let gone = q.add(b"a", &move || old).unwrap();
    assert!(q.lock(&gone).unwrap());
    q.remove(&gone).unwrap();
    let kept = q
        .add(b"b", &move || old + Duration::from_secs(120))
        .unwrap();
    let newest = q.add(b"c", &SystemClock).unwrap();
    assert!(q.lock(&newest).unwrap());
    q.remove(&newest).unwrap();
    // a stale lock and a stale temporary next to `kept`
    assert!(q.lock(&kept).unwrap());
    let d = q.path().join(kept.dir());
    std::fs::write(d.join("0000000000000a.tmp"), b"half").unwrap();
    let now = SystemTime::now();
    // nothing is old enough yet (locks 600 s, temporaries 300 s)
    let r = q.purge(&SystemClock, &PurgeAges::default()).unwrap();
    assert_eq!((r.temporaries.len(), r.locks.len()), (0, 0));
    assert_eq!(r.dirs, vec![gone.dir().to_string()]);
    // 301 s later: the temporary goes, the lock stays
    let later = move || now + Duration::from_secs(301);
    let r = q.purge(&later, &PurgeAges::default()).unwrap();
    assert_eq!((r.temporaries.len(), r.locks.len()), (1, 0));
    // 601 s later: the lock goes; the element is unlocked, not removed
    let later = move || now + Duration::from_secs(601);
    let r = q.purge(&later, &PurgeAges::default()).unwrap();
    assert_eq!(r.locks, vec![kept.clone()]);
    assert_eq!(files(&d), vec![kept.file().to_string()]);
    assert!(q.lock(&kept).unwrap());
    // the newest directory survives although empty
    assert!(q.path().join(newest.dir()).is_dir());
    // zero ages disable that part
    let ages = PurgeAges {
        max_temp: Duration::ZERO,
        max_lock: Duration::ZERO,
    };
    let far = move || now + Duration::from_secs(86_400);
    assert_eq!(q.purge(&far, &ages).unwrap().locks.len(), 0);
}

#[test]
fn concurrent_writers_never_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                // the same rndhex in every writer: only the no-clobber link saves us
                let q = QueueSimple::open(
                    root,
                    Options {
                        rndhex: Some(3),
                        ..Options::default()
                    },
                )
                .unwrap();
                (0..100)
                    .map(|i| {
                        (
                            q.add(format!("{t}-{i}").as_bytes(), &SystemClock).unwrap(),
                            format!("{t}-{i}"),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut added: Vec<(ElementName, String)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    added.sort();
    let q = queue(&root);
    assert_eq!(
        q.names().unwrap(),
        added.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    for (name, body) in &added {
        assert!(q.lock(name).unwrap());
        assert_eq!(q.get(name).unwrap(), body.as_bytes());
    }
}

#[test]
fn clock_trait_accepts_closures_and_the_system_clock() {
    fn now_of(c: &dyn Clock) -> SystemTime {
        c.now()
    }
    assert_eq!(now_of(&|| at(5, 0)), at(5, 0));
    assert!(now_of(&SystemClock) > at(1_600_000_000, 0));
}
