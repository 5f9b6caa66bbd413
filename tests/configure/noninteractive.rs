//! `appliance configure` without a terminal: `--answers`, user data from a
//! directory laid out like a config drive and from a loopback metadata
//! service, `--only keystone`, and answers that do not check out.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{answers_yaml, configured, ok, Root};
use crate::util::refsite;

/// A loopback metadata service answering every request with `status` and
/// `body`; returns its user-data URL.
fn metadata_server(status: u16, body: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in l.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let reason = if status == 200 { "OK" } else { "Not Found" };
            let _ = write!(
                s,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/openstack/latest/user_data")
}

fn config_drive(root: &Root, user_data: &str) -> std::path::PathBuf {
    let d = root.path().join("config-drive");
    std::fs::create_dir_all(d.join("openstack/latest")).unwrap();
    std::fs::write(
        d.join("openstack/latest/meta_data.json"),
        "{\"uuid\": \"x\"}",
    )
    .unwrap();
    std::fs::write(d.join("openstack/latest/user_data"), user_data).unwrap();
    d
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn answers_config_drive_and_metadata_service_give_the_same_config() {
    let answers = answers_yaml();

    let a = Root::new();
    let f = a.answers_file(&answers);
    let mut c = a.configure();
    c.arg("--answers").arg(&f);
    let out = ok(c);
    assert!(out.contains("GOCDB endpoint id 1234G0"), "{out}");
    assert!(
        out.contains(&format!(
            "Register the Host DN in GOCDB (eu.egi.cloud.accounting, org.openstack.nova): {}",
            refsite().var("REFSITE_HOST_DN")
        )),
        "{out}"
    );
    assert!(
        !out.contains(refsite().var("REFSITE_PASSWORD")),
        "a secret was printed"
    );
    let files_a = a.files();
    // The endorser's CA comes from the verified signature.
    assert!(files_a.0.contains(&super::list().ca), "{}", files_a.0);
    assert_eq!(mode(&a.config()), 0o640);
    assert_eq!(mode(&a.secrets()), 0o600);
    assert!(a.marker().is_file());
    assert!(!files_a.0.contains(refsite().var("REFSITE_PASSWORD")));
    assert!(files_a.1.contains(refsite().var("REFSITE_PASSWORD")));
    let wants = a.path().join("etc/systemd/system/timers.target.wants");
    for t in [
        "accounting-extract",
        "accounting-send",
        "info-publish",
        "images-sync",
        "crl-refresh",
    ] {
        assert!(
            std::fs::symlink_metadata(wants.join(format!("appliance-{t}.timer"))).is_ok(),
            "{t} timer not enabled"
        );
    }
    a.appliance().args(["config", "check"]).assert().success();

    // The config drive (a directory laid out like one).
    let b = Root::new();
    let drive = config_drive(&b, &answers);
    let mut c = b.configure();
    c.args(["--user-data", "--config-drive"]).arg(&drive);
    ok(c);
    assert_eq!(b.files(), files_a, "config drive vs --answers");

    // The metadata service.
    let c_root = Root::new();
    let url = metadata_server(200, answers.clone());
    let mut c = c_root.configure();
    c.args(["--user-data", "--metadata-url", &url]);
    let out = ok(c);
    assert!(out.contains("configured:"), "{out}");
    assert_eq!(c_root.files(), files_a, "metadata service vs --answers");
}

#[test]
fn user_data_that_is_not_ours_is_left_alone() {
    let r = Root::new();
    let drive = config_drive(&r, "#cloud-config\npackages: [vim]\n");
    let mut c = r.configure();
    c.args(["--user-data", "--config-drive"]).arg(&drive);
    let out = ok(c);
    assert!(
        out.contains("is a cloud-init `#cloud-config` document, not ours (first line `#appliance-config`); left alone, nothing configured"),
        "{out}"
    );
    assert!(!r.config().exists() && !r.marker().exists());

    // No user data at all (the metadata service answers 404).
    let url = metadata_server(404, String::new());
    let mut c = r.configure();
    c.args(["--user-data", "--metadata-url", &url]);
    let out = ok(c);
    assert!(out.contains("no user data; nothing configured"), "{out}");
    assert!(!r.config().exists());
}

/// The VO part served by the application credential (bound to alpha-1).
fn appcred_answers() -> String {
    let s = refsite();
    let std = answers_yaml();
    let (head, rest) = std.split_once("keystone:").unwrap();
    let (_, after_vos) = rest.split_once("host-certificate:").unwrap();
    format!(
        "{head}keystone:\n  auth-type: v3applicationcredential\n  application-credential-id: {}\n  application-credential-secret: {}\n\
vos:\n  - name: {}\n    projects: [alpha-1]\nhost-certificate:{after_vos}",
        s.var("REFSITE_APPCRED_ID"),
        s.var("REFSITE_APPCRED_SECRET"),
        s.var("REFSITE_VO_ALPHA"),
    )
}

/// Line numbers (0-based) of the top-level block `key` in `text`.
fn block_lines(text: &str, key: &str) -> std::ops::Range<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("{key}:")))
        .unwrap();
    let end = (start + 1..lines.len())
        .find(|&i| !lines[i].is_empty() && !lines[i].starts_with([' ', '#']))
        .unwrap_or(lines.len());
    start..end
}

#[test]
fn only_keystone_changes_only_the_credential() {
    let r = Root::new();
    let f = r.answers_file(&appcred_answers());
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    ok(c);
    let (config0, secrets0) = r.files();
    assert!(
        config0.contains("type: v3applicationcredential"),
        "{config0}"
    );

    // Rotation: a password credential instead; the other sections of the
    // answers file are ignored with --only.
    let s = refsite();
    let rot = format!(
        "keystone:\n  auth-type: password\n  username: {}\n  password: {}\n  project: alpha-1\n\
site:\n  name: IGNORED\ncomponents:\n  accounting: false\n",
        s.var("REFSITE_USER"),
        s.var("REFSITE_PASSWORD")
    );
    let rf = r.path().join("rotate.yaml");
    std::fs::write(&rf, rot).unwrap();
    let mut c = r.configure();
    c.arg("--answers").arg(&rf).args(["--only", "keystone"]);
    ok(c);
    let (config1, secrets1) = r.files();

    // appliance.yaml: everything outside `openstack:` byte-identical.
    let b0 = block_lines(&config0, "openstack");
    let b1 = block_lines(&config1, "openstack");
    let l0: Vec<&str> = config0.lines().collect();
    let l1: Vec<&str> = config1.lines().collect();
    assert_eq!(l0[..b0.start], l1[..b1.start], "before openstack:");
    assert_eq!(l0[b0.end..], l1[b1.end..], "after openstack:");
    assert_ne!(l0[b0.clone()], l1[b1.clone()]);
    let block1 = l1[b1].join("\n");
    assert!(
        block1.contains("type: password") && block1.contains("username: fedcloud"),
        "{block1}"
    );
    assert!(!config1.contains("IGNORED"));
    // secrets: only the openstack secret changed.
    let s0 = block_lines(&secrets0, "openstack");
    let s1 = block_lines(&secrets1, "openstack");
    let k0: Vec<&str> = secrets0.lines().collect();
    let k1: Vec<&str> = secrets1.lines().collect();
    assert_eq!(k0[..s0.start], k1[..s1.start]);
    assert_eq!(k0[s0.end..], k1[s1.end..]);
    assert!(secrets1.contains("  password: "), "password secret written");
    assert!(!secrets1.contains("application-credential-secret"));
    r.appliance().args(["config", "check"]).assert().success();

    // Components: exactly the timers of the enabled ones.
    let cf = r.path().join("components.yaml");
    std::fs::write(&cf, "components:\n  accounting: false\n").unwrap();
    let mut c = r.configure();
    c.arg("--answers").arg(&cf).args(["--only", "components"]);
    ok(c);
    let wants = r.path().join("etc/systemd/system/timers.target.wants");
    let linked =
        |t: &str| std::fs::symlink_metadata(wants.join(format!("appliance-{t}.timer"))).is_ok();
    assert!(!linked("accounting-extract") && !linked("accounting-send"));
    assert!(linked("info-publish") && linked("images-sync") && linked("crl-refresh"));
    let (config2, _) = r.files();
    assert!(
        config2.contains("  accounting:\n    enabled: false\n"),
        "{config2}"
    );
}

#[test]
fn answers_that_do_not_check_out_are_all_reported_and_nothing_is_written() {
    let s = refsite();
    let good = answers_yaml();
    let bad = good
        .replace(s.var("REFSITE_PASSWORD"), "not-the-password-xyz")
        .replace(
            &format!("key: {}", s.var("REFSITE_HOST_KEY")),
            &format!("key: {}", s.var("REFSITE_REVOKED_KEY")),
        )
        .replace(
            &format!("ca-dir: {}", s.var("REFSITE_CA_DIR")),
            "ca-dir: /nonexistent/certificates",
        );
    let r = Root::new();
    let f = r.answers_file(&bad);
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("keystone: Keystone refused the credential"),
        "{err}"
    );
    assert!(
        err.contains("host-certificate: the key does not match the certificate"),
        "{err}"
    );
    assert!(
        err.contains(
            "trust-anchors: /nonexistent/certificates does not exist or is not a directory"
        ),
        "{err}"
    );
    assert!(
        !err.contains("not-the-password-xyz"),
        "the secret was printed"
    );
    assert!(!r.config().exists() && !r.secrets().exists() && !r.marker().exists());

    // A project the credential cannot see.
    let bad = good.replace("[alpha-1, alpha-2]", "[alpha-1, no-such-project]");
    let f = r.answers_file(&bad);
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("vos: project no-such-project is not among the projects the credential can see (alpha-1, alpha-2, beta-1)"),
        "{err}"
    );
    assert!(!r.config().exists());

    // Keys that are not answers: file:line:column.
    let f = r.answers_file("site:\n  nmae: X\n");
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("answers.yaml:2:3: site.nmae: unknown key; did you mean `name`?"),
        "{err}"
    );
}

#[test]
fn rerun_with_the_same_answers_keeps_the_files_and_foreign_keys() {
    let r = configured();
    // An operator's own key, which the wizard does not ask for.
    let mut text = std::fs::read_to_string(r.config()).unwrap();
    text.push_str("\naccounting:\n  first-run: 7d   # mine\n");
    std::fs::write(r.config(), &text).unwrap();
    let before = std::fs::read(r.config()).unwrap();
    let before_secrets = std::fs::read(r.secrets()).unwrap();
    let f = r.answers_file(&answers_yaml());
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    ok(c);
    assert_eq!(
        String::from_utf8(std::fs::read(r.config()).unwrap()).unwrap(),
        String::from_utf8(before).unwrap()
    );
    assert_eq!(std::fs::read(r.secrets()).unwrap(), before_secrets);
}

#[test]
fn pasted_pem_is_written_key_0600_and_never_into_the_configuration() {
    let s = refsite();
    let indent = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let answers = answers_yaml().replace(
        &format!(
            "host-certificate:\n  certificate: {}\n  key: {}\n",
            s.var("REFSITE_HOST_CERT"),
            s.var("REFSITE_HOST_KEY")
        ),
        &format!(
            "host-certificate:\n  certificate: |\n{}  key: |\n{}",
            indent(s.var("REFSITE_HOST_CERT")),
            indent(s.var("REFSITE_HOST_KEY"))
        ),
    );
    assert!(answers.contains("BEGIN"), "{answers}");
    let r = Root::new();
    let f = r.answers_file(&answers);
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = ok(c);
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    let key = r.path().join("etc/grid-security/hostkey.pem");
    let cert = r.path().join("etc/grid-security/hostcert.pem");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&cert), 0o644);
    assert_eq!(
        std::fs::read_to_string(&key).unwrap().trim(),
        std::fs::read_to_string(s.var("REFSITE_HOST_KEY"))
            .unwrap()
            .trim()
    );
    let (config, _) = r.files();
    assert!(
        config.contains("  host-key: @ROOT@/etc/grid-security/hostkey.pem\n"),
        "{config}"
    );
    assert!(!config.contains("PRIVATE KEY"));
    r.appliance().args(["config", "check"]).assert().success();
}

#[test]
fn registry_robot_account_is_tested_before_it_is_saved() {
    let s = refsite();
    // The project must exist, also on a freshly bootstrapped site: one
    // small image pushed into it (as a site's registry would hold).
    let disk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(disk.path(), vec![0u8; 64 * 1024]).unwrap();
    let push = std::process::Command::new(s.var("REFSITE_TESTSRV_BIN"))
        .arg("oci-push")
        .args(["--registry", s.var("REFSITE_REGISTRY_URL")])
        .args(["--token-service", s.var("REFSITE_HARBOR_TOKEN_URL")])
        .args(["--user", s.var("REFSITE_HARBOR_ROBOT")])
        .args(["--password-file", s.var("REFSITE_HARBOR_PASSWORD_FILE")])
        .args(["--repo", "egi_vm_images/configure-test", "--tag", "1"])
        .arg("--file")
        .arg(disk.path())
        .output()
        .unwrap();
    assert!(push.status.success(), "oci-push: {push:?}");
    let with = |pw: &str| {
        format!(
            "{}  registries:\n    - name: registry-configure\n      url: {}\n      projects: [egi_vm_images]\n      robot: {}\n      password: \"{pw}\"\n",
            answers_yaml(),
            s.var("REFSITE_HARBOR_URL"),
            s.var("REFSITE_HARBOR_ROBOT"),
        )
    };
    let r = Root::new();
    let f = r.answers_file(&with("not-the-robot-password"));
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("images: registry registry-configure: cannot list project egi_vm_images"),
        "{err}"
    );
    assert!(!err.contains("not-the-robot-password"));
    assert!(!r.config().exists());

    let f = r.answers_file(&with(s.var("REFSITE_HARBOR_PASSWORD")));
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = ok(c);
    assert!(out.contains("registry registry-configure:"), "{out}");
    let (config, secrets) = r.files();
    assert!(
        config.contains("type: harbor") && config.contains("robot: refsite-robot"),
        "{config}"
    );
    assert!(!config.contains(s.var("REFSITE_HARBOR_PASSWORD")));
    assert!(
        secrets.contains("registry-configure:\n    password:"),
        "secrets"
    );
    r.appliance().args(["config", "check"]).assert().success();
}
