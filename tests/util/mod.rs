//! Shared test helpers: the local reference site's environment and running
//! the `appliance` binary.

#![allow(dead_code)]

pub mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// Start a test server with `serve` on a free loopback port, on the shared
/// test runtime (it outlives blocking CLI runs).
pub fn serve_on_loopback<T>(serve: impl FnOnce(tokio::net::TcpListener) -> T) -> T {
    let handle = fedcloud_appliance::testsrv::runtime();
    let _g = handle.enter();
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_l.set_nonblocking(true).unwrap();
    serve(tokio::net::TcpListener::from_std(std_l).unwrap())
}
