//! Integration tests: accounting records and the dirq spool.
//!
//! - `golden`: our rendering of `tests/fixtures/accounting/inputs.json`
//!   against the messages cASO 5.2.2 rendered from the same inputs
//!   (`scripts/golden/accounting.py`), byte for byte; and the script still
//!   reproduces the checked-in goldens.
//! - `spool`: the QueueSimple writer and reader on their own.
//! - `interop`: Python `dirq` reading our spool and we reading its.
//! - `extract_refsite`: the same against the local reference site, every
//!   record field asserted.
//! - `extract_sim`: `appliance accounting extract` against the project's
//!   Nova/Keystone simulator: lastrun discipline, faults, SIGKILL, VO sources.
//! - `refsite_peers`: the simulator replays the reference site's answers
//!   (`sim_replay.py`) and yields the same records; cASO's `caso-extract`
//!   live on the reference site spools the same records as the appliance
//!   (also under a non-UTC `TZ`).
//!
//! The Python side is the interpreter in `REFSITE_PYTHON` (any Python with
//! `caso==5.2.2` and `dirq==1.8`), else the reference site's venvs (see
//! [`python`]). Tests that need it fail with instructions when there is
//! none; none skips.

mod extract_refsite;
mod extract_sim;
mod golden;
mod interop;
mod refsite_peers;
mod spool;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/accounting/<rel>`.
fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures/accounting").join(rel)
}

/// Which Python packages a test needs from the reference interpreter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Needs {
    /// `dirq==1.8` (the spool interop tests).
    Dirq,
    /// `caso==5.2.2` and `dirq==1.8` (the golden script).
    Caso,
}

/// The reference site's `reference-site.env` values, if the site was set up
/// (`$REFSITE_BASE` or `<repo>/.reference-site`), read without requiring it.
fn refsite_env(key: &str) -> Option<String> {
    let base = std::env::var_os("REFSITE_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".reference-site"));
    let text = std::fs::read_to_string(base.join("reference-site.env")).ok()?;
    text.lines()
        .filter_map(|l| l.trim_start_matches("export ").split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim_matches('"').trim_matches('\'').to_string())
        .filter(|v| !v.is_empty())
}

/// The reference Python interpreter for a test. `REFSITE_PYTHON` from the
/// environment first (for the golden script `REFSITE_PEERS_PYTHON` before
/// it: the reference site keeps cASO in a separate venv), then the same keys
/// from the reference site's `reference-site.env`. Fails, never skips, when
/// none is set or the interpreter lacks the packages.
fn python(needs: Needs) -> Command {
    let keys: &[&str] = match needs {
        Needs::Dirq => &["REFSITE_PYTHON", "REFSITE_PEERS_PYTHON"],
        Needs::Caso => &["REFSITE_PEERS_PYTHON", "REFSITE_PYTHON"],
    };
    let from_env = keys.iter().find_map(|k| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (*k, v))
    });
    let (key, py) = from_env
        .or_else(|| keys.iter().find_map(|k| refsite_env(k).map(|v| (*k, v))))
        .unwrap_or_else(|| {
            panic!(
                "REFSITE_PYTHON is not set (nor is the reference site up). These tests compare with \
                 Python cASO and dirq: point REFSITE_PYTHON at a Python with caso==5.2.2 and dirq==1.8, \
                 e.g.\n  python3 -m venv /tmp/caso-venv && /tmp/caso-venv/bin/pip install caso==5.2.2 \
                 dirq==1.8\n  export REFSITE_PYTHON=/tmp/caso-venv/bin/python\nor bring the reference \
                 site up (scripts/reference-site up), whose venvs have both"
            )
        });
    let (want, script) = match needs {
        Needs::Dirq => (
            "1.8",
            "import importlib.metadata as m; print(m.version('dirq'))",
        ),
        Needs::Caso => (
            "5.2.2 1.8",
            "import importlib.metadata as m; print(m.version('caso'), m.version('dirq'))",
        ),
    };
    static CHECKED: std::sync::Mutex<Vec<(Needs, String)>> = std::sync::Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if !checked.contains(&(needs, py.clone())) {
        let out = Command::new(&py)
            .args(["-c", script])
            .output()
            .unwrap_or_else(|e| panic!("{key}={py}: cannot run it: {e}"));
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && found == want,
            "{key}={py} must have {} installed (found versions {found:?}; {})\n\
             pip install caso==5.2.2 dirq==1.8 into it, or point {key} at a venv that has them",
            match needs {
                Needs::Dirq => "dirq==1.8",
                Needs::Caso => "caso==5.2.2 and dirq==1.8",
            },
            String::from_utf8_lossy(&out.stderr).trim()
        );
        checked.push((needs, py.clone()));
    }
    let mut cmd = Command::new(py);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Architecture invariant: the accounting domain does no I/O and reads no
/// clock or time zone (spec aesthetics.md lesson 11; times are passed in).
#[test]
fn accounting_domain_does_no_io_and_reads_no_clock() {
    let forbidden = [
        "std::fs",
        "std::net::TcpStream",
        "std::env",
        "std::process",
        "SystemTime::now",
        "Utc::now",
        "chrono::Local",
        "Local::now",
        "tokio",
        "reqwest",
        "rand::",
    ];
    let dir = repo().join("src/accounting");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for word in forbidden {
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                assert!(
                    !code.contains(word),
                    "{}:{}: `{word}` in the accounting domain",
                    path.display(),
                    i + 1
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} files under {}",
        dir.display()
    );
}
