//! Integration tests: `appliance import-legacy` (issue #12, points 2–4).
//!
//! - `golden`: for every legacy layout A–H, the files of
//!   `tests/fixtures/legacy/<L>/root` (the shipped files at the commits the
//!   spec cites, site values applied: `scripts/golden/legacy-fixtures`) ->
//!   the imported `appliance.yaml`, secrets file and report, compared with
//!   `tests/fixtures/legacy/<L>/expected/`; the result passes `config
//!   check`; the state is carried over (lastrun, spool with stale locks and
//!   stranded temporaries, host certificate); no secret reaches the report.
//! - `continuity`: cASO 5.2.2 against the reference site with a legacy
//!   `caso.conf`/`voms.json`, part of its spool "sent" by the legacy sender,
//!   then import + `accounting extract` + `send`: every message cASO left
//!   reaches the test AMS, and per VM the new window starts where cASO's
//!   lastrun ended.
//! - `backlog`: a legacy sender outage: thousands of v0.2 and v0.4 messages
//!   taken over and sent oldest first, with the sender's peak memory.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a
//! deliberate change (then review the diff).

mod backlog;
mod continuity;
mod golden;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `tests/fixtures/legacy`.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy")
}

/// Copy a directory tree (files and directories; modes kept).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Set the mtime of every file under `dir` to `t` (git does not keep
/// mtimes: the legacy spool's locks and temporaries must look as old as
/// they would be on a stopped legacy appliance).
fn age_tree(dir: &Path, t: SystemTime) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            age_tree(&e.path(), t);
        } else {
            let f = std::fs::File::options().write(true).open(e.path()).unwrap();
            f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
                .unwrap();
        }
    }
}

/// A legacy root staged from a fixture, its spool aged a day.
fn stage(layout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &fixtures().join(layout).join("root"),
        &dir.path().join("root"),
    );
    age_tree(
        &dir.path().join("root/var/spool"),
        SystemTime::now() - Duration::from_secs(86_400),
    );
    dir
}
