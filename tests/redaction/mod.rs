//! Redaction of configured URLs (issue #14 item 8): a credential in the
//! userinfo (`https://user:pass@host/`) or in a query value (`?access_code=`,
//! under any name but the harmless ones) never reaches `config show`, a
//! `--json` report, an error or a log line, even at trace level, when a list
//! fetch fails (connection refused, HTTP 404). Self-contained: its own file
//! server on a loopback port, no reference site.

use std::path::{Path, PathBuf};

use fedcloud_appliance::testsrv::files;

use crate::util::appliance;

/// Every secret the configurations below carry.
const SECRETS: &[&str] = &[
    "acc3ss-c0de-1",
    "acc3ss-c0de-2",
    "acc3ss-c0de-3",
    "acc3ss-c0de-4",
    "l1st-pa55",
    "gl4nce-pa55",
    "ks-pa55",
    "r3g-pa55",
    "os-pw-77",
];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what}: `{s}` leaked:\n{text}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A configuration whose every URL carries a credential; the image list
/// subscriptions point at `lists` (two URLs).
fn config(dir: &Path, lists: [&str; 2]) -> PathBuf {
    write(dir, "secrets.yaml", "openstack:\n  password: os-pw-77\n");
    let d = dir.display();
    write(
        dir,
        "appliance.yaml",
        &format!(
            "schema-version: 2
site:
  gocdb: TEST-SITE
  endpoint: https://keystone.test.example:5000/v3?access_code=acc3ss-c0de-1
openstack:
  auth:
    type: password
    auth-url: https://admin:ks-pa55@keystone.test.example:5000/v3
    username: fedcloud
    user-domain-name: Default
    project-id: 0123456789abcdef0123456789abcdef
secrets-file: {d}/secrets.yaml
vos:
  - name: ops
    projects:
      - id: 0123456789abcdef0123456789abcdef
paths:
  image-data: {d}/image-data
  spool: {d}/spool
  state: {d}/state
  ca-dir: {d}
info:
  gocdb-url: https://goc.example/gocdbpi/public/?access_code=acc3ss-c0de-2
images:
  glance-endpoint: https://glance:gl4nce-pa55@glance.example:9292
  allow-http: [lists]
  subscriptions:
    - name: refused
      url: {refused}
      endorser: {{dn: /CN=E, ca: /CN=CA}}
    - name: missing
      url: {missing}
      endorser: {{dn: /CN=E, ca: /CN=CA}}
    - name: egi
      type: harbor
      registry: https://robot:r3g-pa55@registry.example/?access_code=acc3ss-c0de-4
      projects: [egi_vm_images]
",
            refused = lists[0],
            missing = lists[1],
        ),
    )
}

fn run(cfg: &Path, args: &[&str]) -> (i32, String) {
    let out = appliance()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn credentials_in_configured_urls_never_reach_config_show_json_errors_or_trace_logs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let server = {
        let _rt = fedcloud_appliance::testsrv::runtime().enter();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(l).unwrap();
        files::serve(
            l,
            files::FilesOptions {
                root: root.clone(),
                token: None,
            },
        )
        .unwrap()
    };
    let lists = [
        format!(
            "http://lister:l1st-pa55@127.0.0.1:{}/a.list?access_code=acc3ss-c0de-3",
            closed_port()
        ),
        format!(
            "http://lister:l1st-pa55@{}/missing.list?access_code=acc3ss-c0de-3&limit=5",
            server.server.addr()
        ),
    ];
    let cfg = config(dir.path(), [&lists[0], &lists[1]]);

    // config show, both forms: the URLs are there, redacted
    let (code, out) = run(&cfg, &["config", "show"]);
    assert_eq!(code, 0, "{out}");
    assert_clean("config show", &out);
    assert!(
        out.contains("access_code=<redacted>") && out.contains("//<redacted>@"),
        "{out}"
    );
    assert!(out.contains("&limit=5"), "harmless values stay: {out}");
    let (code, out) = run(&cfg, &["--json", "config", "show"]);
    assert_eq!(code, 0, "{out}");
    assert_clean("config show --json", &out);

    // a list that cannot be fetched (refused, 404), at trace level, with
    // and without --json
    for json in [false, true] {
        let mut args = vec!["--log-level", "trace"];
        if json {
            args.push("--json");
        }
        args.extend(["images", "verify", "refused"]);
        let (code, out) = run(&cfg, &args);
        assert_ne!(code, 0, "{out}");
        assert_clean("images verify (connection refused)", &out);
        assert!(out.contains("a.list?access_code=<redacted>"), "{out}");
        args.pop();
        args.push("missing");
        let (code, out) = run(&cfg, &args);
        assert_ne!(code, 0, "{out}");
        assert_clean("images verify (404)", &out);
        assert!(out.contains("404"), "{out}");
    }
    assert!(server.stats().not_found >= 2);
}

/// A URL the configuration rejects is quoted redacted in the error.
#[test]
fn a_rejected_url_is_quoted_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        [
            "https://lister:l1st-pa55@h:99999/a.list?access_code=acc3ss-c0de-3",
            "ftp://lister:l1st-pa55@h/b.list?access_code=acc3ss-c0de-3",
        ],
    );
    for json in [false, true] {
        let mut args = vec![];
        if json {
            args.push("--json");
        }
        args.extend(["config", "check"]);
        let (code, out) = run(&cfg, &args);
        assert_eq!(code, 2, "{out}");
        assert_clean("config check", &out);
        assert!(out.contains("<redacted>@h:99999/a.list"), "{out}");
    }
}
