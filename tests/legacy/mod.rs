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
mod vo_names;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fedcloud_appliance::testsrv::ams::{self, AmsOptions, AmsServer};
use fedcloud_appliance::testsrv::{self, tls::TlsOptions};

use crate::testsrv::pki::Pki;

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

/// The project's AMS test server on a loopback port (TLS with the test
/// PKI, authx509 for the test host certificate), on the shared runtime.
fn test_ams(state: &Path) -> AmsServer {
    let pki = Pki::shared();
    let opts = AmsOptions::new(
        Some(TlsOptions {
            cert: pki.server.cert_path.clone(),
            key: pki.server.key_path.clone(),
            client_ca_dir: Some(pki.ca_dir.clone()),
        }),
        state,
        "legacy-ams-token",
    );
    let handle = testsrv::runtime();
    let _g = handle.enter();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    ams::serve(tokio::net::TcpListener::from_std(l).unwrap(), opts).unwrap()
}

/// Point the imported configuration's `ams` section at the test AMS port.
fn patch_ams(config: &Path, port: u16) {
    let text = std::fs::read_to_string(config).unwrap();
    let add = format!(
        "  port: {port}\n  authn-port: {port}\n  timeout-seconds: 10\n  retries: 1\n  backoff-seconds: 0\n"
    );
    let text = if text.contains("\nams:\n") {
        text.replacen("\nams:\n", &format!("\nams:\n{add}"), 1)
    } else {
        format!("{text}ams:\n  host: localhost\n{add}")
    };
    std::fs::write(config, text).unwrap();
}

/// Every element of a dirq spool by name (`dir/file`).
fn spool_bodies(spool: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(spool) else {
        return out;
    };
    for d in rd.flatten() {
        let dn = d.file_name().into_string().unwrap();
        if dn.len() != 8 || !d.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let name = f.file_name().into_string().unwrap();
            if name.len() == 14 {
                out.insert(format!("{dn}/{name}"), std::fs::read(f.path()).unwrap());
            }
        }
    }
    out
}

/// `appliance --json import-legacy --root ROOT --target TARGET EXTRA...`,
/// which must succeed; its report.
fn import_json(root: &Path, target: &Path, extra: &[&str]) -> serde_json::Value {
    let out = crate::util::appliance()
        .arg("--json")
        .arg("import-legacy")
        .arg("--root")
        .arg(root)
        .arg("--target")
        .arg(target)
        .args(extra)
        .output()
        .unwrap();
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{rep:#}");
    rep
}

/// Make a legacy root's ssmsend identity the test PKI's: `sender.cfg`'s
/// `capath` its CA directory, the host certificate and key its client
/// certificate (which the AMS test server's authx509 accepts).
fn use_test_pki(root: &Path) {
    let pki = Pki::shared();
    let sender = root.join("etc/apel/sender.cfg");
    let text = std::fs::read_to_string(&sender).unwrap().replace(
        "capath: /etc/grid-security/certificates",
        &format!("capath: {}", pki.ca_dir.display()),
    );
    std::fs::write(&sender, text).unwrap();
    let certs = root.join("etc/grid-security");
    std::fs::write(certs.join("hostcert.pem"), pki.client.cert_pem()).unwrap();
    std::fs::write(certs.join("hostkey.pem"), pki.client.key_pem()).unwrap();
}
