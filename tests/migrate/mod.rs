//! Integration tests: `appliance migrate` (issue #12 point 1).
//!
//! Fixtures under `tests/fixtures/migrate/`:
//! - `config/<case>/appliance.yaml`: a schema-1 configuration;
//!   `expected.yaml` the migrated file, `expected.txt` the output of
//!   `appliance migrate`, `dry-run.txt` that of `--dry-run`.
//! - `state/v1/`: a release-1 appliance: `appliance.yaml`, the state and
//!   image cache in `before/`, what they become in `after/`, and the same
//!   three golden outputs.
//!
//! A case is copied into a temporary directory with `@DIR@` replaced by
//! that directory (and `@REFSITE@` by the reference site's base); outputs
//! have them replaced back, and the backup's timestamp by `@TS@`. Run with
//! `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate
//! change (and review the diff).

mod config;
mod crash;
mod json;
mod refuse;
mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::appliance;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrate")
}

/// A staged case.
pub struct Case {
    pub tmp: tempfile::TempDir,
    pub refsite: Option<String>,
}

impl Case {
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }
    pub fn config(&self) -> PathBuf {
        self.dir().join("appliance.yaml")
    }
    pub fn state(&self) -> PathBuf {
        self.dir().join("state")
    }
    pub fn image_data(&self) -> PathBuf {
        self.dir().join("image-data")
    }
    fn substitute(&self, text: &str) -> String {
        let mut t = text.replace("@DIR@", self.dir().to_str().unwrap());
        if let Some(r) = &self.refsite {
            t = t.replace("@REFSITE@", r);
        }
        t
    }
    /// Replace the temporary directory, the reference site and backup
    /// timestamps by placeholders.
    pub fn normalise(&self, text: &str) -> String {
        let mut t = text.replace(self.dir().to_str().unwrap(), "@DIR@");
        if let Some(r) = &self.refsite {
            t = t.replace(r.as_str(), "@REFSITE@");
        }
        static TS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let ts = TS.get_or_init(|| regex::Regex::new(r"backups/\d{8}T\d{6}Z(-\d+)?").unwrap());
        ts.replace_all(&t, "backups/@TS@").into_owned()
    }
    /// Run `appliance --config <case>/appliance.yaml <args>`: stdout,
    /// stderr, exit code.
    pub fn run(&self, args: &[&str]) -> (String, String, i32) {
        let out = appliance()
            .current_dir(self.dir())
            .env("HOME", self.dir())
            .env_remove("OS_CLIENT_CONFIG_FILE")
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run appliance");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }
    /// Rewrite the configuration's `schema-version`.
    pub fn set_version(&self, v: u32) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let text = regex::Regex::new(r"(?m)^schema-version: \d+")
            .unwrap()
            .replace(&text, format!("schema-version: {v}").as_str())
            .into_owned();
        std::fs::write(self.config(), text).unwrap();
    }
    pub fn migrate(&self, args: &[&str]) -> (String, String, i32) {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

/// Stage `<fixtures>/<case>`: its `appliance.yaml`, and its `before/` tree
/// if any.
pub fn stage(case: &str) -> Case {
    let src = fixtures().join(case);
    let text = std::fs::read_to_string(src.join("appliance.yaml"))
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let refsite = text
        .contains("@REFSITE@")
        .then(|| crate::util::refsite().var("REFSITE_BASE").to_string());
    let c = Case {
        tmp: tempfile::tempdir().unwrap(),
        refsite,
    };
    std::fs::write(c.config(), c.substitute(&text)).unwrap();
    let before = src.join("before");
    if before.is_dir() {
        copy_tree(&before, c.dir());
    }
    c
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).unwrap();
        }
    }
}

/// Every file below `dir` (relative path -> content), but `skip`ped
/// top-level entries.
pub fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>, skip: &[&str]) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if skip.contains(&child.as_str()) {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &child, out, skip);
            } else {
                out.insert(child, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out, skip);
    out
}

/// Compare `got` with the golden file `<fixtures>/<rel>` (or write it
/// with UPDATE_GOLDEN=1).
pub fn golden(rel: &str, got: &str) {
    crate::util::golden(&fixtures().join(rel), rel, got);
}

/// The one backup directory of a case's state.
pub fn backups(c: &Case) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(c.state().join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}
