//! The interactive wizard, driven in tmux: answers typed as a person would,
//! wrong ones included (a bad Keystone password, a project the credential
//! cannot see, a key that does not match the certificate, a CA directory
//! that does not exist); the screen is read for each re-ask. The resulting
//! configuration passes `config check` and `doctor`, equals the one the
//! same answers give with `--answers`, and the three flows run with it.
//! Ctrl-C in the middle of a re-run leaves the files byte-identical.
//!
//! Waits poll the screen (no fixed sleeps) with generous limits: a busy
//! 2-core machine may take many seconds for a Keystone round trip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{answers_yaml, configured, list, ok, Root};
use crate::util::refsite;

const WAIT: Duration = Duration::from_secs(120);

struct Tmux {
    name: String,
    log: std::path::PathBuf,
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().expect("tmux")
}

impl Tmux {
    /// Run `cmd` in a detached tmux session of 200x50; the exit code is
    /// printed as `EXIT=<n>` when it ends.
    fn start(root: &Root, args: &str) -> Tmux {
        let name = format!("cfg-{}-{}", std::process::id(), rand_suffix());
        let bin = assert_cmd::cargo::cargo_bin("appliance");
        let log = root.path().join("tmux.log");
        let cmd = format!(
            "env -u APPLIANCE_CONFIG -u JOURNAL_STREAM APPLIANCE_LOG=warn TERM=xterm {} --config {} configure --root {} {args}; echo EXIT=$?; sleep 600",
            bin.display(),
            root.config().display(),
            root.path().display()
        );
        let out = tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "50",
            &cmd,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux(&["set-option", "-t", &name, "history-limit", "5000"]);
        Tmux { name, log }
    }

    fn screen(&self) -> String {
        let out = tmux(&["capture-pane", "-p", "-J", "-S", "-5000", "-t", &self.name]);
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        let _ = std::fs::write(&self.log, &s);
        s
    }

    /// Wait until the screen shows `text` at least `n` times.
    fn wait_n(&self, text: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(text).count() >= n {
                return s;
            }
            if s.contains("EXIT=") || start.elapsed() > WAIT {
                panic!("waited for {text:?} (x{n}); the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn wait(&self, text: &str) -> String {
        self.wait_n(text, 1)
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", self.name.as_str()];
        a.extend_from_slice(keys);
        tmux(&a);
    }

    /// Type `text` and Enter.
    fn type_line(&self, text: &str) {
        if !text.is_empty() {
            self.keys(&["-l", text]);
        }
        self.keys(&["Enter"]);
    }

    /// Wait for the `n`th occurrence of `prompt`, then answer `text`.
    fn answer_n(&self, prompt: &str, n: usize, text: &str) {
        self.wait_n(prompt, n);
        self.type_line(text);
    }

    fn answer(&self, prompt: &str, text: &str) {
        self.answer_n(prompt, 1, text);
    }

    /// Wait for the end; its exit code.
    fn exit_code(&self) -> i32 {
        let s = self.wait("EXIT=");
        let tail = s.rsplit("EXIT=").next().unwrap();
        tail.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.name]);
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// The site questions (shared by the tests).
fn answer_site(t: &Tmux) {
    let s = refsite();
    t.answer("GOCDB site name", s.var("REFSITE_SITE_NAME"));
    t.answer("Keystone endpoint URL", s.var("REFSITE_KEYSTONE_URL"));
    t.answer(
        "GOCDB public API",
        &format!("{}/gocdbpi/public/", s.var("REFSITE_GOCDB_URL")),
    );
    // Offered from GOCDB's answer: accept it.
    t.wait("GOCDB: endpoint id 1234G0 of site REFSITE-LOCAL");
    t.answer("GOCDB endpoint id", "");
}

#[test]
fn serial_wizard_with_wrong_answers_then_check_doctor_and_the_three_flows() {
    let s = refsite();
    let l = list();
    let root = Root::new();
    let t = Tmux::start(&root, "");

    answer_site(&t);

    // Keystone: a wrong password first.
    t.answer("Keystone auth URL", "");
    t.answer("Region", "");
    t.wait("Authentication");
    t.keys(&["Down"]);
    t.keys(&["Enter"]);
    t.answer("User name", s.var("REFSITE_USER"));
    t.answer("User domain", "");
    t.answer("Project (name or id) to scope to", "alpha-1");
    t.answer("Project domain", "");
    t.answer("Password", "wrong-password-123");
    t.wait("✘ Keystone refused the credential");
    t.wait("Asking the keystone questions again.");
    // Again: the previous answers are the defaults; only the password changes.
    t.answer_n("Keystone auth URL", 2, "");
    t.answer_n("Region", 2, "");
    t.wait_n("Authentication", 2);
    t.keys(&["Enter"]);
    t.answer_n("User name", 2, "");
    t.answer_n("User domain", 2, "");
    t.answer_n("Project (name or id) to scope to", 2, "");
    t.answer_n("Project domain", 2, "");
    t.answer(
        "Password (Enter keeps the current one)",
        s.var("REFSITE_PASSWORD"),
    );
    t.wait("project(s) visible");

    // VOs: a project that does not exist first.
    t.wait("Projects the credential can see:");
    t.answer(
        "VOs this site serves",
        &format!(
            "{}, {}",
            s.var("REFSITE_VO_ALPHA"),
            s.var("REFSITE_VO_BETA")
        ),
    );
    t.answer(
        &format!("Projects of {}", s.var("REFSITE_VO_ALPHA")),
        "alpha-1, no-such-project",
    );
    t.answer(
        &format!("Projects of {}", s.var("REFSITE_VO_BETA")),
        "beta-1",
    );
    t.wait("✘ project no-such-project is not among the projects the credential can see");
    t.answer_n("VOs this site serves", 2, "");
    t.answer_n(
        &format!("Projects of {}", s.var("REFSITE_VO_ALPHA")),
        2,
        "alpha-1, alpha-2",
    );
    t.answer_n(&format!("Projects of {}", s.var("REFSITE_VO_BETA")), 2, "");

    // Components (all on), then the AMS of the site.
    t.answer("Accounting: extract usage records", "");
    t.answer("Information publishing", "");
    t.answer("Image synchronisation", "");
    t.answer("CRL refresh of the IGTF CA directory", "");

    // Host certificate: a key that does not match first.
    t.answer("Host certificate (path", s.var("REFSITE_HOST_CERT"));
    t.answer("Host key (path", s.var("REFSITE_REVOKED_KEY"));
    t.wait("✘ the key does not match the certificate");
    t.answer_n("Host certificate (path", 2, "");
    t.answer_n("Host key (path", 2, s.var("REFSITE_HOST_KEY"));
    t.wait(&format!(
        "register this Host DN in GOCDB for the services eu.egi.cloud.accounting and org.openstack.nova: {}",
        s.var("REFSITE_HOST_DN")
    ));

    // Trust anchors: a directory that does not exist first.
    t.answer(
        "IGTF CA directory",
        "/nonexistent/grid-security/certificates",
    );
    t.wait("✘ /nonexistent/grid-security/certificates does not exist or is not a directory");
    t.answer_n("IGTF CA directory", 2, s.var("REFSITE_CA_DIR"));
    t.wait("1 CA certificate(s), 1 CRL(s)");
    t.answer("Refresh the CRLs now", "");

    t.answer("AMS host", "127.0.0.1");
    let ams_port = s.var("REFSITE_AMS_URL").rsplit(':').next().unwrap();
    t.answer("AMS port", ams_port);
    t.answer("AMS authn (X.509) port", ams_port);

    t.answer("Publish the GLUE document to this file", "");
    t.answer("... and to this Swift container", "");

    t.answer("Signed image list URLs", &l.url);
    t.answer("Name of the list", &l.name);
    t.answer("AppDB token", "");
    t.answer("Expected endorser DN", &l.dn);
    t.answer("Share with the projects of these VOs", "");
    t.answer("Synchronise from the EGI registry", "");
    t.wait(&format!("list {}: signed by {}", l.name, l.dn));

    // /image_data: a directory (a disk menu appears only when a bare disk
    // is attached; take the directory there too).
    let screen = {
        let start = Instant::now();
        loop {
            let sc = t.screen();
            if sc.contains("Where do downloaded images go?") || sc.contains("Image cache directory")
            {
                break sc;
            }
            assert!(start.elapsed() < WAIT, "no /image_data question:\n{sc}");
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    if screen.contains("Where do downloaded images go?") {
        t.keys(&["Enter"]);
    }
    t.answer("Image cache directory", "");

    t.wait("Plan:");
    t.answer("Write this configuration?", "");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    let screen = t.screen();
    assert!(
        !screen.contains(s.var("REFSITE_PASSWORD")),
        "the password was echoed"
    );
    let interactive = root.files();

    // The same answers from a file give the same configuration.
    let other = Root::new();
    let f = other.answers_file(&answers_yaml());
    let mut c = other.configure();
    c.arg("--answers").arg(&f);
    ok(c);
    assert_eq!(
        interactive.0,
        other.files().0,
        "appliance.yaml: wizard vs --answers"
    );
    assert_eq!(
        interactive.1,
        other.files().1,
        "secrets: wizard vs --answers"
    );

    // config check, doctor, and the three flows.
    root.appliance()
        .args(["config", "check"])
        .assert()
        .success();
    // The reference site's GOCDB registers no accounting service with the
    // host DN (the doctor tests inject that fault with it): the one check
    // that may fail.
    let out = root
        .appliance()
        .args(["--json", "doctor"])
        .output()
        .unwrap();
    let report = crate::util::stdout_json(&out, "doctor --json");
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed" && c["id"] != "gocdb.host-dn")
        .collect();
    assert!(
        failed.is_empty() && out.status.code().is_some_and(|c| c <= 1),
        "doctor: exit {:?}, {failed:#?}",
        out.status.code()
    );
    run_flows(&root, &l.name);
}

fn run_flows(root: &Root, list_name: &str) {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = root.appliance().arg("--json").args(args).output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{args:?}: exit {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let ext = json(&["accounting", "extract"]);
    assert!(
        ext["projects"]
            .as_array()
            .is_some_and(|p| p.len() == 3 && p.iter().all(|p| p["ok"] == true)),
        "{ext:#}"
    );
    let send = json(&["accounting", "send"]);
    assert_eq!(
        send["quarantined"].as_array().map_or(0, Vec::len),
        0,
        "{send:#}"
    );
    assert_eq!(send["sent"], send["found"], "{send:#}");
    let publish = json(&["info", "publish"]);
    let file = root
        .path()
        .join("var/lib/fedcloud-appliance/info/cloud-info.json");
    assert!(file.is_file(), "{publish:#}");
    let glue: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        glue["Share"].as_array().is_some_and(|s| s.len() == 3),
        "{glue:#}"
    );
    let sync = json(&["images", "sync"]);
    let src = sync["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == list_name))
        .unwrap_or_else(|| panic!("{sync:#}"));
    assert!(
        src["images"]
            .as_array()
            .is_some_and(|i| i.len() == 1 && i[0]["ok"] == true),
        "{sync:#}"
    );
    cleanup_glance(list_name);
}

/// Delete the test's images from Glance (found by their `image_list`).
fn cleanup_glance(list_name: &str) {
    let s = refsite();
    let os = s.var("REFSITE_OPENSTACK");
    let mut cmd = Command::new(os);
    cmd.args([
        "image",
        "list",
        "--property",
        &format!("image_list={list_name}"),
        "-f",
        "value",
        "-c",
        "ID",
    ]);
    for (k, v) in s.vars() {
        if k.starts_with("OS_") {
            cmd.env(k, v);
        }
    }
    let Ok(out) = cmd.output() else { return };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let mut d = Command::new(os);
        d.args(["image", "delete", id]);
        for (k, v) in s.vars() {
            if k.starts_with("OS_") {
                d.env(k, v);
            }
        }
        let _ = d.output();
    }
}

#[test]
fn ctrl_c_in_the_middle_leaves_the_configuration_byte_identical() {
    let root = configured();
    let config = std::fs::read(root.config()).unwrap();
    let secrets = std::fs::read(root.secrets()).unwrap();
    let listing = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let etc = root.path().join("etc/fedcloud-appliance");
    let files_before = listing(&etc);

    let t = Tmux::start(&root, "");
    // Change answers in the first sections, then stop at the password.
    t.answer("GOCDB site name", "SOMETHING-ELSE");
    t.answer("Keystone endpoint URL", "");
    t.answer("GOCDB public API", "");
    t.answer("GOCDB endpoint id", "");
    t.answer("Keystone auth URL", "");
    t.answer("Region", "");
    t.wait("Authentication");
    t.keys(&["Enter"]);
    t.answer("User name", "");
    t.answer("User domain", "");
    t.answer("Project (name or id) to scope to", "alpha-2");
    t.answer("Project domain", "");
    t.wait("Password (Enter keeps the current one)");
    t.keys(&["C-c"]);
    t.wait("interrupted; nothing was written, the configuration is unchanged");
    assert_eq!(t.exit_code(), 2);

    assert_eq!(
        std::fs::read(root.config()).unwrap(),
        config,
        "appliance.yaml changed"
    );
    assert_eq!(
        std::fs::read(root.secrets()).unwrap(),
        secrets,
        "secrets changed"
    );
    assert_eq!(listing(&etc), files_before, "files left behind");
}
