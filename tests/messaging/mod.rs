//! Integration tests: `appliance accounting send|status` (issue #5) against
//! the project's AMS test server (in-process, per test, so faults can be
//! injected), with the test PKI's host certificate.
//!
//! - `send`: signing verified with `openssl smime -verify -CApath`, authx509
//!   and static tokens, encryption, dry run, status, legacy sender.cfg,
//!   pre-flight errors.
//! - `faults`: broker down, 503 then OK, 413, 401, kill -9 mid-run,
//!   non-ASCII records, a stale `.lck` from a dead ssmsend.
//! - `interop`: a spool written by cASO's SSM messenger (PyPI caso) and
//!   locks taken by Python dirq.
//! - `secrets`: neither the private key nor the token reach logs or `--json`.
//!
//! The Python side (dirq, caso) is `REFSITE_PEERS_PYTHON` / `REFSITE_PYTHON`
//! from the environment, else from the reference site's
//! `reference-site.env`; tests that need it fail with instructions when
//! there is none.

mod faults;
mod interop;
mod secrets;
mod send;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedcloud_appliance::spool::{ElementName, Options, QueueSimple, SystemClock};
use fedcloud_appliance::testsrv::ams::{self, AmsOptions, AmsServer, StoredMessage};
use fedcloud_appliance::testsrv::tls::TlsOptions;
use serde_json::Value;

use crate::testsrv::pki::{Issued, Pki};

/// The token of the test AMS.
pub const TOKEN: &str = "ams-t0ken-4f9a1c";
/// The OpenStack password in the test secrets file (never used: no
/// OpenStack call is made by `send`).
pub const OS_PASSWORD: &str = "os-pw-9e2b7d";

/// A site for one test: config, secrets, spool, state, and an AMS.
pub struct Site {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub spool: PathBuf,
    pub state: PathBuf,
    pub ams: AmsServer,
}

/// How a test site is set up.
pub struct Setup<'a> {
    /// Static token in the secrets file (else authx509).
    pub token: Option<&'a str>,
    /// Host certificate.
    pub host: &'a Issued,
    /// Extra lines under `ams:` (indented by 2).
    pub ams_extra: &'a str,
    /// Edit the AMS options.
    pub edit: &'a dyn Fn(&mut AmsOptions),
    /// Use this port instead of the server's (e.g. a closed one).
    pub port_override: Option<u16>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            token: None,
            host: &Pki::shared().client,
            ams_extra: "",
            edit: &|_| {},
            port_override: None,
        }
    }
}

/// A free loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Site {
    pub async fn new(setup: Setup<'_>) -> Site {
        let pki = Pki::shared();
        let dir = tempfile::tempdir().expect("tmp");
        let mut opts = AmsOptions::new(
            Some(TlsOptions {
                cert: pki.server.cert_path.clone(),
                key: pki.server.key_path.clone(),
                client_ca_dir: Some(pki.ca_dir.clone()),
            }),
            dir.path().join("ams"),
            TOKEN,
        );
        (setup.edit)(&mut opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let ams = ams::serve(listener, opts).expect("AMS starts");
        let port = setup.port_override.unwrap_or(ams.server.addr().port());
        let spool = dir.path().join("spool");
        let state = dir.path().join("state");
        let d = dir.path().display();
        let config = dir.path().join("appliance.yaml");
        let yaml = format!(
            "schema-version: 2
site:
  gocdb: TEST-SITE
  endpoint: https://keystone.test.example:5000/v3
openstack:
  auth:
    type: password
    username: fedcloud
    user-domain-name: Default
secrets-file: {d}/secrets.yaml
vos:
  - name: ops
    projects:
      - id: 0123456789abcdef0123456789abcdef
paths:
  spool: {spool}
  state: {state}
  host-cert: {cert}
  host-key: {key}
  ca-dir: {ca}
ams:
  host: localhost
  port: {port}
  authn-port: {port}
  timeout-seconds: 3
  retries: 2
  backoff-seconds: 0
{extra}",
            spool = spool.display(),
            state = state.display(),
            cert = setup.host.cert_path.display(),
            key = setup.host.key_path.display(),
            ca = pki.ca_dir.display(),
            extra = setup
                .ams_extra
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
        );
        std::fs::write(&config, yaml).expect("config");
        let mut secrets = format!("openstack:\n  password: {OS_PASSWORD}\n");
        if let Some(t) = setup.token {
            secrets.push_str(&format!("ams:\n  token: {t}\n"));
        }
        write_private(&dir.path().join("secrets.yaml"), secrets.as_bytes());
        Site {
            _dir: dir,
            config,
            spool,
            state,
            ams,
        }
    }

    /// The spool, opened.
    pub fn queue(&self) -> QueueSimple {
        QueueSimple::open(&self.spool, Options::default()).expect("spool")
    }

    /// Spool these messages; their names in order.
    pub fn spool_messages(&self, bodies: &[Vec<u8>]) -> Vec<ElementName> {
        let q = self.queue();
        bodies
            .iter()
            .map(|b| q.add(b, &SystemClock).expect("add"))
            .collect()
    }

    /// The appliance command for `args` with this site's configuration.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("appliance"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("APPLIANCE_CONFIG")
            .env_remove("APPLIANCE_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy");
        c
    }

    /// Run the appliance (off the async runtime, which serves the AMS).
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut c = self.command(args);
        let out = tokio::task::spawn_blocking(move || c.output())
            .await
            .expect("join")
            .expect("run appliance");
        Run::from(out)
    }

    /// Spool elements still there.
    pub fn left(&self) -> Vec<ElementName> {
        self.queue().names().expect("names")
    }

    /// `.lck` files in the spool.
    pub fn locks(&self) -> Vec<PathBuf> {
        files_with_suffix(&self.spool, ".lck")
    }

    /// The quarantine directory (default place).
    pub fn quarantine(&self) -> PathBuf {
        self.state.join("accounting/quarantine")
    }
}

/// Files under `dir` (one level of subdirectories) ending in `suffix`.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for d in rd.flatten() {
        if let Ok(inner) = std::fs::read_dir(d.path()) {
            for f in inner.flatten() {
                if f.file_name().to_string_lossy().ends_with(suffix) {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Write a 0600 file.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("open");
    f.write_all(bytes).expect("write");
}

/// A finished appliance run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The `--json` report.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A cloud message like cASO's, with a marker.
pub fn cloud_message(marker: &str) -> Vec<u8> {
    format!(
        "APEL-cloud-message: v0.4\nCloudComputeService: TEST-SITE\nCloudType: caso/5.2.2 (OpenStack)\nCpuCount: 1\nEndTime: 0\nFQAN: ops\nMachineName: {marker}\nSiteName: TEST-SITE\nStatus: started\nVMUUID: 721cf1db-0e0f-4c24-a5ea-cd75e0f303e8\nWallDuration: 3600\n%%\n"
    )
    .into_bytes()
}

/// `openssl smime -verify -CApath <test CA dir>` on a published payload
/// (base64-decoded); the verified content with the inner `text/plain`
/// header removed (`-text`), read with universal newlines (CRLF -> LF) as
/// the APEL receiver reads `openssl`'s output (`ssm/crypto.py` runs it with
/// `universal_newlines=True`): exactly what the receiver gets. The chain is
/// verified against the CA directory; `-purpose any` because IGTF host
/// certificates (and the test one) are not S/MIME certificates (the APEL
/// receiver checks the chain with `openssl verify -CApath` and the
/// signature with `-noverify`, spec §4.7).
pub fn openssl_verify(payload: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("msg.smime");
    let output = dir.path().join("content");
    std::fs::write(&input, payload).expect("write");
    let out = Command::new("openssl")
        .args(["smime", "-verify", "-text", "-purpose", "any", "-CApath"])
        .arg(&Pki::shared().ca_dir)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .output()
        .expect("openssl smime -verify (is the openssl CLI installed?)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("Verification successful"),
        "openssl smime -verify failed: {stderr}"
    );
    let content = std::fs::read(&output).expect("verified content");
    String::from_utf8_lossy(&content)
        .replace("\r\n", "\n")
        .into_bytes()
}

/// Stored messages by `empaid`.
pub fn by_empaid(msgs: &[StoredMessage], empaid: &str) -> Vec<StoredMessage> {
    msgs.iter()
        .filter(|m| m.attributes.get("empaid").map(String::as_str) == Some(empaid))
        .cloned()
        .collect()
}

/// The reference Python with `dirq` (and `caso` when `caso` is set).
pub fn python(caso: bool) -> Command {
    let keys: &[&str] = if caso {
        &["REFSITE_PEERS_PYTHON", "REFSITE_PYTHON"]
    } else {
        &["REFSITE_PYTHON", "REFSITE_PEERS_PYTHON"]
    };
    let from_env = keys
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let from_site = || {
        let base = std::env::var_os("REFSITE_BASE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".reference-site"));
        let text = std::fs::read_to_string(base.join("reference-site.env")).ok()?;
        keys.iter().find_map(|k| {
            text.lines()
                .filter_map(|l| l.trim_start_matches("export ").split_once('='))
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.trim_matches('"').trim_matches('\'').to_string())
                .filter(|v| !v.is_empty())
        })
    };
    let py = from_env.or_else(from_site).unwrap_or_else(|| {
        panic!(
            "no reference Python: set REFSITE_PEERS_PYTHON (or REFSITE_PYTHON) to a Python with \
             caso==5.2.2 and dirq==1.8 (python3 -m venv /tmp/v && /tmp/v/bin/pip install caso==5.2.2 \
             dirq==1.8), or bring the reference site up (scripts/reference-site up)"
        )
    });
    Command::new(py)
}

/// Run a Python snippet with `args`; its stdout.
pub fn run_python(caso: bool, code: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = python(caso)
        .arg("-c")
        .arg(code)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Set a file's mtime (a lock's age is its element's mtime: same inode).
pub fn age(path: &Path, secs: u64) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(t)
        .expect("set mtime");
}
