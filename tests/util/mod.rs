//! Shared test helpers: the local reference site's environment and running
//! the `appliance` binary.

#![allow(dead_code)]

pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The running local reference site (`scripts/reference-site up`), as
/// described by its `reference-site.env` file (`KEY=VALUE` lines).
pub struct RefSite {
    vars: BTreeMap<String, String>,
}

impl RefSite {
    /// A variable of the reference site's environment; panics with a clear
    /// message when it is missing (tests that need the site fail, never skip).
    pub fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!("reference site: {key} is not in reference-site.env (is the site up to date? run `scripts/reference-site up`)")
        })
    }
    /// Like [`RefSite::var`], as a path.
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.var(key))
    }
    /// All variables.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
    /// The site's Python (`REFSITE_PYTHON`: openstacksdk) with the site's
    /// environment (`OS_CLIENT_CONFIG_FILE`, the `REFSITE_*` ids).
    pub fn python(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.var("REFSITE_PYTHON"));
        cmd.envs(&self.vars).env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }
}

/// The reference site, loaded once per test process from
/// `$REFSITE_BASE/reference-site.env` (default base: `<repo>/.reference-site`).
pub fn refsite() -> &'static RefSite {
    static SITE: OnceLock<RefSite> = OnceLock::new();
    SITE.get_or_init(|| {
        let base = std::env::var_os("REFSITE_BASE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".reference-site"));
        let file = base.join("reference-site.env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "the local reference site is not up ({}: {e}); start it with `scripts/reference-site up` \
                 or run the whole suite with `scripts/test`",
                file.display()
            )
        });
        let vars = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.trim_start_matches("export ").split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').trim_matches('\'').to_string()))
            .collect();
        RefSite { vars }
    })
}

/// The `appliance` binary built for this test run.
pub fn appliance() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("appliance").expect("appliance binary");
    cmd.env_remove("APPLIANCE_CONFIG")
        .env_remove("APPLIANCE_LOG")
        .env_remove("JOURNAL_STREAM");
    cmd
}

/// A service manager's notification socket for a child process
/// (`NOTIFY_SOCKET`): a Unix datagram socket the test binds, and every
/// line received with the time it arrived.
pub struct NotifySocket {
    _dir: tempfile::TempDir,
    /// The socket's path (what `NOTIFY_SOCKET` names).
    pub path: PathBuf,
    socket: std::os::unix::net::UnixDatagram,
    start: std::time::Instant,
    /// `(seconds since bound, "KEY=value")`, in arrival order.
    pub lines: Vec<(f64, String)>,
}

impl NotifySocket {
    /// Bind a fresh socket.
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket =
            std::os::unix::net::UnixDatagram::bind(&path).expect("binding the notify socket");
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .expect("read timeout");
        NotifySocket {
            _dir: dir,
            path,
            socket,
            start: std::time::Instant::now(),
            lines: Vec::new(),
        }
    }

    /// Receive until `child` exits (and a little after); its exit code.
    pub fn collect(&mut self, child: &mut std::process::Child, limit: std::time::Duration) -> i32 {
        let mut buf = vec![0u8; 8192];
        let mut exited: Option<(i32, std::time::Instant)> = None;
        loop {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let t = self.start.elapsed().as_secs_f64();
                for l in String::from_utf8_lossy(&buf[..n]).lines() {
                    self.lines.push((t, l.to_string()));
                }
                continue;
            }
            match exited {
                Some((code, at)) if at.elapsed() > std::time::Duration::from_millis(300) => {
                    return code
                }
                Some(_) => {}
                None => {
                    if let Some(st) = child.try_wait().expect("waiting for the child") {
                        exited = Some((st.code().unwrap_or(-1), std::time::Instant::now()));
                    } else if self.start.elapsed() > limit {
                        let _ = child.kill();
                        panic!(
                            "the child ran longer than {limit:?}; received: {:#?}",
                            self.lines
                        );
                    }
                }
            }
        }
    }

    /// Arrival times of the lines equal to `line`.
    pub fn times(&self, line: &str) -> Vec<f64> {
        self.lines
            .iter()
            .filter(|(_, l)| l == line)
            .map(|(t, _)| *t)
            .collect()
    }

    /// The `STATUS=` values with their times.
    pub fn statuses(&self) -> Vec<(f64, &str)> {
        self.lines
            .iter()
            .filter_map(|(t, l)| l.strip_prefix("STATUS=").map(|s| (*t, s)))
            .collect()
    }
}

/// Compare `got` with the golden file `path` (named `label` in the
/// message), or write it when `UPDATE_GOLDEN` is set.
pub fn golden(path: &Path, label: &str, got: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        want == got,
        "golden mismatch for {label}\n--- expected\n{want}--- got\n{got}---\n(run with UPDATE_GOLDEN=1 to accept)"
    );
}

/// Start a test server with `serve` on a free loopback port, on the shared
/// test runtime (it outlives blocking CLI runs).
pub fn serve_on_loopback<T>(serve: impl FnOnce(tokio::net::TcpListener) -> T) -> T {
    let handle = fedcloud_appliance::testsrv::runtime();
    let _g = handle.enter();
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_l.set_nonblocking(true).unwrap();
    serve(tokio::net::TcpListener::from_std(std_l).unwrap())
}

/// How many random SIGKILLs a kill test makes (`APPLIANCE_TEST_KILLS`,
/// default 20; raise it for a long soak).
pub fn kills() -> u32 {
    std::env::var("APPLIANCE_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// The JSON on `out`'s stdout, or a panic showing both streams.
pub fn stdout_json(out: &std::process::Output, what: &str) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
