//! Integration tests: `appliance status` (issue #11 point 3). Each test
//! builds an appliance's local state (run records from real job runs and
//! from the library, a dirq spool, the quarantine, image list state, a CA
//! directory with stale and missing CRLs, a host certificate) and reads it
//! back with `status` run in a network namespace of its own (`unshare
//! --net`: no network at all), as a screen, as JSON checked against
//! `docs/status-json.md`, and as a Nagios line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use fedcloud_appliance::messaging::quarantine::{Note, Quarantine};
use fedcloud_appliance::spool::{Options, QueueSimple};
use fedcloud_appliance::state::runs::{self, RunOutcome, RunRecord};
use serde_json::{json, Value};

use crate::crl::{Extra, World};
use crate::testsrv::pki::{Issued, Pki, Usage};

/// A test appliance: the CRL test world plus a configuration.
struct Site {
    w: World,
    config: PathBuf,
}

impl Site {
    /// `accounting`: whether accounting is on (it needs the host certificate).
    fn new(host: &Issued, accounting: bool) -> Site {
        let w = World::new();
        let d = w.dir.path().to_path_buf();
        std::fs::create_dir_all(d.join("image-data")).unwrap();
        let closed = crate::messaging::closed_port();
        let config = w.write_config(&Extra {
            subscription: "vo-list",
            auth: &format!("    auth-url: http://127.0.0.1:{closed}/v3\n"),
            paths: &format!(
                "  host-cert: {}\n  host-key: {}\n",
                host.cert_path.display(),
                host.key_path.display()
            ),
            top: &format!(
                "components:
  accounting: {{enabled: {accounting}}}
ams:
  host: localhost
  port: {closed}
  authn-port: {closed}
  timeout-seconds: 2
  retries: 0
  backoff-seconds: 0
info:
  publish:
    file: {d}/info/cloud-info.json
",
                d = d.display()
            ),
        });
        Site { w, config }
    }

    fn dir(&self) -> &Path {
        self.w.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.dir().join("state")
    }

    /// `appliance --config C ARGS` in a network namespace of its own.
    fn offline(&self, args: &[&str]) -> (i32, String) {
        let bin = assert_cmd::cargo::cargo_bin("appliance");
        let out = Command::new("unshare")
            .args(["--net", "--"])
            .arg(bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("APPLIANCE_LOG")
            .env_remove("JOURNAL_STREAM")
            .output()
            .expect("unshare (util-linux) runs the status without any network");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn status_json(&self) -> (i32, Value) {
        self.status_json_with(&[])
    }

    /// `appliance --json status ARGS`.
    fn status_json_with(&self, args: &[&str]) -> (i32, Value) {
        let args: Vec<&str> = ["--json", "status"].iter().chain(args).copied().collect();
        let (code, out) = self.offline(&args);
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"));
        (code, v)
    }

    /// A job command of the appliance (on the network of the test).
    fn run(&self, args: &[&str]) -> i32 {
        crate::util::appliance()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    }
}

fn record(job: &str, outcome: RunOutcome, ago_min: i64, summary: &str) -> RunRecord {
    let finished = Utc::now() - chrono::Duration::minutes(ago_min);
    RunRecord {
        schema: runs::RECORD_SCHEMA,
        job: job.into(),
        argv: vec![],
        pid: 1,
        started: finished - chrono::Duration::seconds(42),
        finished,
        duration_seconds: 42.0,
        outcome,
        exit_code: match outcome {
            RunOutcome::Success => 0,
            RunOutcome::Partial => 1,
            RunOutcome::Usage => 2,
            RunOutcome::Error => 3,
        },
        summary: summary.into(),
        detail: None,
        last_success: None,
    }
}

fn job<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {s:#}"))
}

fn has_problem(s: &Value, severity: &str, subject: &str, text: &str) -> bool {
    s["problems"].as_array().unwrap().iter().any(|p| {
        p["severity"] == severity
            && p["subject"] == subject
            && p["message"].as_str().unwrap().contains(text)
            && !p["remedy"].as_str().unwrap().is_empty()
    })
}

/// A configured appliance where nothing has run yet: every job "never ran"
/// (warnings, exit 1), next runs unknown because systemd is not running
/// here, and no problem is invented.
fn fresh() -> (Site, Value) {
    let host = Pki::shared().issue_valid(
        "status-fresh",
        "/DC=org/DC=example/CN=fresh",
        Usage::Client,
        0..365,
    );
    let site = Site::new(&host, true);
    let (code, s) = site.status_json_with(&NO_DISK_ALARM);
    assert_eq!(code, 1, "{s:#}");
    assert_eq!(s["exit_code"], 1);
    for j in s["jobs"].as_array().unwrap() {
        assert!(j["last_run"].is_null(), "{j:#}");
        assert!(
            j["missing"]["last_run"]
                .as_str()
                .unwrap()
                .contains("never ran"),
            "{j:#}"
        );
        assert!(
            j["missing"]["next_run"]
                .as_str()
                .unwrap()
                .contains("systemd"),
            "{j:#}"
        );
        assert_eq!(j["health"], "warning");
    }
    assert_eq!(s["accounting"]["queued"], 0);
    assert!(s["accounting"]["missing"]["last_sent_at"].is_string());
    assert_eq!(s["crl"]["cas"], 1);
    assert_eq!(s["crl"]["fresh"], 1);
    assert!(s["images"]["image_data"]["free_bytes"].as_u64().unwrap() > 0);
    // Besides the jobs that never ran: the configuration's own warning
    // about the plain http it allows (the test list is served over http).
    assert!(
        s["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["severity"] == "warning"
                && (p["subject"].as_str().unwrap().starts_with("job ")
                    || p["subject"] == "configuration"
                        && p["message"].as_str().unwrap_or("").contains("allow-http"))),
        "{s:#}"
    );
    (site, s)
}

/// Free space thresholds that the test machine's own disk cannot trip (its
/// free space is not the tests'): the space is still reported.
const NO_DISK_ALARM: [&str; 6] = [
    "--image-data-warning",
    "0",
    "--image-data-critical",
    "0",
    "--image-data-critical-gib",
    "0",
];

#[test]
fn a_fresh_appliance_says_its_jobs_never_ran() {
    let (site, _) = fresh();
    let args: Vec<&str> = ["status", "--nagios"]
        .iter()
        .chain(&NO_DISK_ALARM)
        .copied()
        .collect();
    let (code, line) = site.offline(&args);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("APPLIANCE WARNING - "), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains(";0:;0:;0;100"),
        "the thresholds given: {line}"
    );
}

/// The free space of `paths.image-data` against the thresholds given on
/// the command line: a warning, then an error (Nagios CRITICAL) with the
/// remedy; a threshold that is no percentage is a usage error.
#[test]
fn free_space_of_image_data_against_the_thresholds_given() {
    let host = Pki::shared().issue_valid(
        "status-disk",
        "/DC=org/DC=example/CN=disk",
        Usage::Client,
        0..365,
    );
    let site = Site::new(&host, true);
    let free = |s: &Value| s["images"]["image_data"]["free_percent"].as_f64().unwrap();
    let (_, s) = site.status_json_with(&[
        "--image-data-warning",
        "100",
        "--image-data-critical",
        "0",
        "--image-data-critical-gib",
        "0",
    ]);
    assert!(free(&s) < 100.0, "{s:#}");
    assert!(has_problem(&s, "warning", "image data", "free ("), "{s:#}");
    assert!(!has_problem(&s, "error", "image data", ""), "{s:#}");

    let (code, s) = site.status_json_with(&["--image-data-critical", "100"]);
    assert_eq!(code, 3, "{s:#}");
    assert!(has_problem(&s, "error", "image data", "free ("), "{s:#}");
    // A floor in GiB above the disk's size trips alone.
    let (code, s) = site.status_json_with(&[
        "--image-data-warning",
        "0",
        "--image-data-critical",
        "0",
        "--image-data-critical-gib",
        "1000000",
    ]);
    assert_eq!(code, 3, "{s:#}");
    assert!(has_problem(&s, "error", "image data", "free ("), "{s:#}");

    let (code, line) = site.offline(&[
        "status",
        "--nagios",
        "--image-data-warning",
        "100",
        "--image-data-critical",
        "100",
    ]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("APPLIANCE CRITICAL - "), "{line}");
    assert!(line.contains("%;100:;100:;0;100"), "{line}");

    let (code, _) = site.offline(&["status", "--image-data-warning", "120"]);
    assert_eq!(code, 2, "not a percentage: usage error");
}

/// The whole picture: job runs of every outcome (two from real runs:
/// `crl refresh` and an `accounting send` whose broker is down), an old
/// spooled message, a quarantined one, a host certificate that expires in
/// days, a stale CRL and a CA with a CRL URL but no CRL, an image source
/// whose last good list has expired and whose last sync was partial.
#[test]
fn the_appliance_state_on_one_screen_in_json_and_for_nagios() {
    let (_fresh_site, fresh_json) = fresh();
    let host = Pki::shared().issue_valid(
        "status-soon",
        "/DC=org/DC=example/CN=soon",
        Usage::Client,
        0..10,
    );
    let site = Site::new(&host, true);
    let w = &site.w;
    let state = site.state();

    // Real runs: crl refresh (serving the CRL in place: success), then a
    // stale CRL in its place; accounting send with the broker down (error).
    w.serve_crl(&std::fs::read(w.crl_file()).unwrap());
    assert_eq!(site.run(&["crl", "refresh"]), 0);
    std::fs::write(w.crl_file(), w.gencrl_with("ca", &["-crlsec", "1"])).unwrap();
    let other = Pki::shared();
    std::fs::copy(&other.ca.cert_path, w.certs.join("OtherCA.pem")).unwrap();
    std::fs::write(
        w.certs.join("OtherCA.crl_url"),
        "http://127.0.0.1:9/other.crl\n",
    )
    .unwrap();
    let spool = QueueSimple::open(site.dir().join("spool"), Options::default()).unwrap();
    let two_days_ago = || SystemTime::now() - Duration::from_secs(2 * 86_400);
    spool
        .add(b"APEL-cloud-message: v0.4\n", &two_days_ago)
        .unwrap();
    assert_eq!(site.run(&["accounting", "send"]), 3, "the broker is down");

    // Library-written records for the rest.
    runs::write(
        &state,
        &record(
            "accounting-extract",
            RunOutcome::Success,
            10,
            "3 project(s), 0 failed; 2 message(s) spooled",
        ),
    )
    .unwrap();
    runs::write(
        &state,
        &record(
            "info-publish",
            RunOutcome::Partial,
            5,
            "published: 4096 bytes",
        ),
    )
    .unwrap();
    let mut img = record(
        "images-sync",
        RunOutcome::Partial,
        30,
        "1 source(s): 0 ok, 1 not ok",
    );
    img.detail = Some(json!({"sources": {"vo-list": {
        "status": "partial", "in_glance": 3, "failed": 1, "failure": null}}}));
    runs::write(&state, &img).unwrap();
    std::fs::create_dir_all(state.join("images/lists")).unwrap();
    std::fs::write(
        state.join("images/lists/vo-list.json"),
        serde_json::to_vec(&json!({
            "identifier": "bbbbbbbb-0000-0000-0000-0000000000c1", "version": "20260101000001",
            "message_sha512": "00", "expires": "2020-01-01T00:00:00Z",
            "fetched_at": "2019-12-01T00:00:00Z"}))
        .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(state.join("images/backoff")).unwrap();
    std::fs::write(
        state.join("images/backoff/vo-list.json"),
        serde_json::to_vec(&json!({"images": {"cccccccc-0000-0000-0000-000000000001": {
            "version": "1.0 sha512:00 1 http://x/img", "attempts": 3, "max_attempts": 3,
            "kind": "verification", "first_failed": "2026-01-01T00:00:00Z",
            "last_failed": "2026-01-01T08:00:00Z", "error": "sha512 mismatch"}}}))
        .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(state.join("images/registries")).unwrap();
    std::fs::write(
        state.join("images/registries/legacy-harbor.json"),
        br#"{"fetched_at": "2026-01-01T00:00:00Z", "projects": {"egi": 2}, "images": 2}"#,
    )
    .unwrap();
    std::fs::create_dir_all(site.dir().join("info")).unwrap();
    std::fs::write(site.dir().join("info/cloud-info.json"), b"{}").unwrap();
    let q = Quarantine::new(state.join("accounting/quarantine"));
    let name = spool.names().unwrap()[0].clone();
    q.put(
        &name,
        b"refused",
        &Note {
            empaid: "x".into(),
            reason: "413 from the broker".into(),
            status: Some(413),
            answer: None,
            quarantined_at: "2026-01-01T00:00:00Z".into(),
            bytes: 7,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // the CRL goes stale

    let (code, s) = site.status_json();
    assert_eq!(code, 3, "{s:#}");
    assert_eq!(s["health"], "error");
    assert_eq!(job(&s, "accounting-extract")["health"], "ok");
    let send = job(&s, "accounting-send");
    assert_eq!(send["last_run"]["outcome"], "error", "{send:#}");
    assert_eq!(send["health"], "error");
    assert!(
        has_problem(&s, "error", "job accounting-send", "failed (exit 3)"),
        "{s:#}"
    );
    assert_eq!(job(&s, "info-publish")["health"], "warning");
    assert!(has_problem(&s, "warning", "job info-publish", "partial"));
    let crl = job(&s, "crl-refresh");
    assert_eq!(crl["last_run"]["outcome"], "success");
    assert!(
        crl["last_run"]["summary"]
            .as_str()
            .unwrap()
            .contains("1 unchanged"),
        "{crl:#}"
    );

    let a = &s["accounting"];
    assert_eq!(a["queued"], 1);
    assert!(a["oldest"]["age_seconds"].as_u64().unwrap() >= 2 * 86_400 - 60);
    assert_eq!(a["quarantined"], 1);
    assert!(has_problem(
        &s,
        "warning",
        "accounting",
        "the oldest was spooled"
    ));
    assert!(has_problem(
        &s,
        "warning",
        "accounting",
        "in the quarantine"
    ));

    let hc = &s["host_certificate"];
    assert_eq!(hc["subject"], "/DC=org/DC=example/CN=soon");
    assert_eq!(hc["days_left"], 9);
    assert!(has_problem(
        &s,
        "warning",
        "host certificate",
        "expires in 9 day(s)"
    ));

    let c = &s["crl"];
    assert_eq!(c["cas"], 2, "{c:#}");
    let states: Vec<(&str, bool)> = c["not_fresh"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap(),
                p["has_url"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        states.contains(&("stale", true)) && states.contains(&("missing", true)),
        "{c:#}"
    );
    assert!(
        has_problem(&s, "error", "CRLs", "without a current CRL"),
        "{s:#}"
    );
    assert!(has_problem(&s, "warning", "CRLs", "a CRL URL but no CRL"));

    let srcs = s["images"]["sources"].as_array().unwrap();
    let vo = srcs.iter().find(|x| x["name"] == "vo-list").unwrap();
    assert_eq!(vo["kind"], "list");
    assert_eq!(vo["enabled"], true);
    assert_eq!(vo["last_good"]["version"], "20260101000001");
    assert_eq!(vo["last_sync"]["in_glance"], 3);
    assert!(has_problem(
        &s,
        "warning",
        "image source vo-list",
        "expired"
    ));
    assert!(has_problem(
        &s,
        "warning",
        "image source vo-list",
        "partial in the last sync"
    ));
    assert_eq!(vo["backoff"][0]["given_up"], true, "{vo:#}");
    assert!(has_problem(
        &s,
        "warning",
        "image source vo-list",
        "no longer tried"
    ));
    let legacy = srcs.iter().find(|x| x["name"] == "legacy-harbor").unwrap();
    assert_eq!(legacy["kind"], "registry");
    assert!(legacy["enabled"].is_null());
    assert!(s["info"]["file_modified"].is_string());

    // Figures that cannot be had: no CA directory, no host certificate, no
    // image-data directory; and a configuration warning.
    let broken = site.dir().join("broken.yaml");
    let yaml = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace(&w.certs.display().to_string(), "/nonexistent/certificates")
        .replace(
            &host.cert_path.display().to_string(),
            "/nonexistent/hostcert.pem",
        )
        .replace("/image-data", "/no-image-data")
        .replace("  auth:\n", "  insecure: true\n  auth:\n");
    std::fs::write(&broken, yaml).unwrap();
    let (code, b) = Site {
        w: World::new(),
        config: broken,
    }
    .status_json();
    assert_eq!(code, 3, "{b:#}");
    assert!(b["crl"]["missing"]["cas"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/certificates"));
    assert!(b["host_certificate"]["missing"]["subject"].is_string());
    assert!(b["images"]["missing"]["image_data"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    assert!(
        !b["config_warnings"].as_array().unwrap().is_empty(),
        "{b:#}"
    );
    assert!(
        has_problem(&b, "warning", "configuration", "insecure"),
        "{b:#}"
    );
    assert!(has_problem(
        &b,
        "error",
        "CRLs",
        "/nonexistent/certificates"
    ));
    assert!(has_problem(
        &b,
        "error",
        "host certificate",
        "/nonexistent/hostcert.pem"
    ));

    crate::util::schema::check("docs/status-json.md", &[&fresh_json, &s, &b]);

    // The same on one screen, and for Nagios.
    let (code, screen) = site.offline(&["status"]);
    assert_eq!(code, 3);
    for text in [
        "appliance status: ERROR",
        "accounting-send",
        "1 message(s) queued",
        "vo-list",
        "problems:",
        "remedy: run `appliance crl refresh`",
    ] {
        assert!(screen.contains(text), "`{text}` missing from:\n{screen}");
    }
    let (code, line) = site.offline(&["status", "--nagios"]);
    assert_eq!(code, 2, "CRITICAL: {line}");
    assert!(line.starts_with("APPLIANCE CRITICAL - "), "{line}");
    let perf = line.split_once(" | ").unwrap().1;
    for p in [
        "queued=1;",
        "quarantined=1;",
        "cert_days=9;14:;1:",
        "jobs_failed=1;",
        "crl_not_fresh=2;",
    ] {
        assert!(perf.contains(p), "{p} missing from {perf}");
    }
}

/// An expired host certificate is an error when accounting needs it, and
/// no concern when nothing does.
#[test]
fn an_expired_host_certificate_matters_only_when_a_job_needs_it() {
    let expired = &Pki::shared().expired_client;
    let site = Site::new(expired, true);
    let (_, s) = site.status_json();
    assert!(s["host_certificate"]["days_left"].as_i64().unwrap() < 0);
    assert!(
        has_problem(&s, "error", "host certificate", "has expired"),
        "{s:#}"
    );
    assert_eq!(s["exit_code"], 3);

    let site = Site::new(expired, false);
    let (_, s) = site.status_json();
    assert_eq!(s["host_certificate"]["needed"], false);
    assert!(!s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["subject"] == "host certificate"));
    assert_eq!(job(&s, "accounting-send")["health"], "disabled");
}

#[test]
fn nagios_is_unknown_when_the_configuration_does_not_load() {
    let out = crate::util::appliance()
        .args([
            "--config",
            "/nonexistent/appliance.yaml",
            "status",
            "--nagios",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("APPLIANCE UNKNOWN - "), "{line}");
    // Without --nagios: the usual configuration error.
    crate::util::appliance()
        .args(["--config", "/nonexistent/appliance.yaml", "status"])
        .assert()
        .code(2);
}

/// A real job leaves its record: `info publish` (to a file) against the
/// reference site, then `status` shows its run, its summary line and the
/// file it wrote; a dry run leaves nothing.
#[test]
fn a_job_run_leaves_the_record_status_shows() {
    let site = crate::util::refsite();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = site.path("REFSITE_BASE");
    let text = std::fs::read_to_string(site.path("REFSITE_CONFIG"))
        .unwrap()
        .replace(
            &base.join("appliance").display().to_string(),
            &d.display().to_string(),
        );
    assert!(
        text.contains(&format!("state: {}/state", d.display())),
        "{text}"
    );
    let config = d.join("appliance.yaml");
    std::fs::write(
        &config,
        format!(
            "{text}\ninfo:\n  gocdb-url: {}/gocdbpi/public/\n  publish:\n    file: {}/cloud-info.json\n",
            site.var("REFSITE_GOCDB_URL"),
            d.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        crate::util::appliance()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["info", "publish", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !d.join("state/runs/info-publish.json").exists(),
        "a dry run is not the job's run"
    );
    let out = run(&["info", "publish"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value =
        serde_json::from_slice(&std::fs::read(d.join("state/runs/info-publish.json")).unwrap())
            .unwrap();
    assert_eq!(rec["outcome"], "success", "{rec:#}");
    assert_eq!(rec["argv"][3], "publish", "{rec:#}");
    assert!(
        rec["summary"].as_str().unwrap().starts_with("published: "),
        "{rec:#}"
    );
    assert!(
        rec["summary"].as_str().unwrap().contains("file ok"),
        "{rec:#}"
    );
    assert_eq!(rec["last_success"], rec["finished"]);
    let s = crate::util::stdout_json(&run(&["--json", "status"]), "status --json");
    let info = job(&s, "info-publish");
    assert_eq!(info["last_run"]["outcome"], "success", "{info:#}");
    assert_eq!(info["last_run"]["summary"], rec["summary"]);
    assert_eq!(s["info"]["last_publish"], rec["finished"]);
    assert!(s["info"]["file_modified"].is_string(), "{s:#}");
}
