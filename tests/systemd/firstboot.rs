//! The first-boot unit's work (`appliance systemd firstboot`, hidden): the
//! user-data configuration is a separate program (`configure
//! --user-data`), replaced here by small scripts so no test ever reaches
//! for a metadata service.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::appliance;

const ISSUE: &str = "etc/issue.d/fedcloud-appliance.issue";
const CONFIGURED: &str = "var/lib/fedcloud-appliance/.configured";
const DONE: &str = "var/lib/fedcloud-appliance/firstboot.done";

/// A `configure --user-data` stand-in running `body` (sh), which sees
/// its arguments and `$ROOT`.
fn stand_in(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("configure");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Write `text` at `rel` under `root`, making its directories.
fn put(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn firstboot(root: &Path, configure: &Path) -> (i32, String) {
    let out = appliance()
        .args(["systemd", "firstboot", "--root"])
        .arg(root)
        .arg("--configure-with")
        .arg(configure)
        .env("ROOT", root)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn without_user_data_the_banner_says_how_to_configure() {
    let root = tempfile::tempdir().unwrap();
    let args = root.path().join("args");
    let c = stand_in(root.path(), &format!("echo \"$@\" > {}", args.display()));
    let (code, stdout) = firstboot(root.path(), &c);
    assert_eq!(code, 0, "{stdout}");
    // It was asked to configure from user data, with the root's config.
    let called = std::fs::read_to_string(&args).unwrap();
    assert!(called.contains("--user-data"), "{called}");
    assert!(
        !called.contains("--config-drive"),
        "no drive mounted: {called}"
    );
    assert!(
        called.contains(&format!(
            "--config {}/etc/fedcloud-appliance/appliance.yaml",
            root.path().display()
        )),
        "{called}"
    );
    let issue = std::fs::read_to_string(root.path().join(ISSUE)).unwrap();
    assert!(issue.contains("is not configured yet"), "{issue}");
    assert!(issue.contains("appliance configure\n"), "{issue}");
    assert!(!issue.contains("failed"));
    // The same text on the console (stdout is the console in the unit).
    assert!(
        stdout.contains("Log in as root and run the wizard"),
        "{stdout}"
    );
    assert!(root.path().join(DONE).exists());
}

#[test]
fn configured_from_user_data_removes_the_banner() {
    let root = tempfile::tempdir().unwrap();
    let issue = put(root.path(), ISSUE, "old banner");
    let c = stand_in(
        root.path(),
        &format!(
            "mkdir -p \"$(dirname \"$ROOT/{0}\")\" && touch \"$ROOT/{0}\"",
            CONFIGURED
        ),
    );
    let (code, stdout) = firstboot(root.path(), &c);
    assert_eq!(code, 0, "{stdout}");
    assert!(root.path().join(CONFIGURED).exists());
    assert!(!issue.exists(), "the banner is gone once configured");
    assert!(!stdout.contains("not configured"), "{stdout}");
    assert!(root.path().join(DONE).exists());
}

#[test]
fn failed_user_data_is_on_the_banner_and_fails_the_unit() {
    let root = tempfile::tempdir().unwrap();
    let c = stand_in(root.path(), "echo 'bad answers' >&2; exit 2");
    let (code, stdout) = firstboot(root.path(), &c);
    assert_eq!(code, 3, "{stdout}");
    let issue = std::fs::read_to_string(root.path().join(ISSUE)).unwrap();
    assert!(
        issue.contains("Configuring from the OpenStack user data failed: `appliance configure --user-data` ended with exit status: 2"),
        "{issue}"
    );
    assert!(issue.contains("journalctl -b -u appliance-firstboot"));
    assert!(root.path().join(DONE).exists(), "later boots skip it");
}

#[test]
fn an_already_configured_appliance_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), CONFIGURED, "");
    let called = root.path().join("called");
    let c = stand_in(root.path(), &format!("touch {}", called.display()));
    let (code, _) = firstboot(root.path(), &c);
    assert_eq!(code, 0);
    assert!(!called.exists(), "configure is not run again");
    assert!(!root.path().join(ISSUE).exists());
}

/// The whole first boot with the real `configure --user-data` reading a
/// config drive (a directory laid out like one) against the reference
/// site: the banner of an earlier boot goes, the timers are enabled.
#[test]
fn first_boot_with_user_data_configures_and_clears_the_banner() {
    let root = crate::configure::Root::new();
    let issue = put(root.path(), ISSUE, "old banner");
    // Where the unit's privileged pre-step copies the config drive.
    let drive = root
        .path()
        .join("run/fedcloud-appliance/config-drive/openstack/latest");
    std::fs::create_dir_all(&drive).unwrap();
    std::fs::write(drive.join("meta_data.json"), "{\"uuid\": \"x\"}").unwrap();
    std::fs::write(drive.join("user_data"), crate::configure::answers_yaml()).unwrap();
    // Where the unit runs `appliance configure --config ... --user-data
    // --config-drive ...`, the test adds its root.
    let c = stand_in(
        root.path(),
        &format!(
            "exec {} configure \"$@\" --root \"$ROOT\"",
            assert_cmd::cargo::cargo_bin("appliance").display()
        ),
    );
    let (code, stdout) = firstboot(root.path(), &c);
    assert_eq!(code, 0, "{stdout}");
    assert!(root.marker().is_file(), "{stdout}");
    assert!(!issue.exists(), "{stdout}");
    assert!(stdout.contains("removed the first-boot banner"), "{stdout}");
    assert!(root.path().join(DONE).exists());
    let wants = root.path().join("etc/systemd/system/timers.target.wants");
    for t in super::TIMERS {
        assert_eq!(
            std::fs::read_link(wants.join(t)).unwrap(),
            Path::new("/usr/lib/systemd/system").join(t)
        );
    }
}
