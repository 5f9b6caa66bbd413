//! Integration tests: the systemd units (issue #11 point 1). No PID 1
//! systemd is needed: `appliance systemd install --root` into a temporary
//! root, then systemd's own offline tools (`systemctl --root`,
//! `systemd-analyze verify --root`, `security --offline=yes`,
//! `systemd-sysusers`/`systemd-tmpfiles --root`) judge the result; the
//! first-boot work end to end with the real `configure --user-data` on a
//! config drive (`firstboot`), and `accounting extract` under a notify
//! socket (`notify`).

mod firstboot;
mod notify;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::appliance;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("appliance")
}

/// A root holding this host's system units (what ours name) and the
/// appliance binary, as `systemd-analyze --root` needs.
fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let units = d.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
    let st = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system/."])
        .arg(&units)
        .status()
        .unwrap();
    assert!(st.success(), "copying the host's units");
    std::fs::copy(bin(), d.path().join("usr/bin/appliance")).unwrap();
    // The first-boot unit's config-drive steps run /bin/sh.
    std::fs::copy("/bin/sh", d.path().join("usr/bin/sh")).unwrap();
    std::os::unix::fs::symlink("usr/bin", d.path().join("bin")).unwrap();
    d
}

fn systemctl_root(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(args)
        .output()
        .expect("systemctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn verify(root: &Path) {
    let dir = root.join("usr/lib/systemd/system");
    let units: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("appliance-"))
        .collect();
    assert_eq!(units.len(), 13, "{units:?}");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(&units)
        .current_dir(&dir)
        .output()
        .expect("systemd-analyze");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify: {text}"
    );
}

fn exposure(root: &Path, unit: &str) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(format!("--root={}", root.display()))
        .arg(unit)
        .current_dir(root.join("usr/lib/systemd/system"))
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure for {unit}: {text}"));
    line.rsplit(": ")
        .next()
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

const TIMERS: [&str; 5] = [
    "appliance-accounting-extract.timer",
    "appliance-accounting-send.timer",
    "appliance-info-publish.timer",
    "appliance-images-sync.timer",
    "appliance-crl-refresh.timer",
];

#[test]
fn check_units_script_verifies_and_scores_every_service() {
    let out = Command::new(repo().join("scripts/check-units"))
        .arg(bin())
        .output()
        .expect("scripts/check-units");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verify ok: 13 units"), "{text}");
    assert!(text.contains("services=7 "), "{text}");
    assert!(text.contains(" ok=true"), "{text}");
    for l in text.lines().filter(|l| l.contains(" exposure ")) {
        let score: f64 = l.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(score <= 2.5, "{l}");
    }
}

#[test]
fn install_into_a_root_enables_what_systemctl_would() {
    let r = root();
    let out = appliance()
        .args(["--json", "systemd", "install", "--root"])
        .arg(r.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["enabled"].as_array().unwrap().len(), 5);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );

    // systemctl agrees with the links we made.
    for t in TIMERS {
        assert_eq!(
            systemctl_root(r.path(), &["is-enabled", t]).1,
            "enabled",
            "{t}"
        );
    }
    for u in [
        "appliance-migrate.service",
        "appliance-firstboot.service",
        "appliance-configured.target",
    ] {
        assert_eq!(
            systemctl_root(r.path(), &["is-enabled", u]).1,
            "enabled",
            "{u}"
        );
    }
    assert_eq!(
        systemctl_root(r.path(), &["is-enabled", "systemd-firstboot.service"]).1,
        "masked"
    );
    assert_eq!(
        systemctl_root(r.path(), &["is-enabled", "appliance-images-sync.service"]).1,
        "static"
    );
    // systemd-sysusers and systemd-tmpfiles ran on the root.
    let passwd = std::fs::read_to_string(r.path().join("etc/passwd")).unwrap();
    assert!(passwd.contains("appliance:x:"), "{passwd}");
    let state = r.path().join("var/lib/fedcloud-appliance");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with("appliance:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|u| u.parse().ok())
        .unwrap();
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), uid);
    assert_eq!(
        std::fs::metadata(state.join("runs"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o2770
    );
    assert!(r.path().join("var/spool/apel/outgoing/openstack").is_dir());
    // No drop-ins for the defaults.
    assert!(!r
        .path()
        .join("etc/systemd/system/appliance-images-sync.timer.d")
        .exists());
    verify(r.path());

    // Idempotent: a second install changes nothing.
    let again = appliance()
        .args(["--json", "systemd", "install", "--root"])
        .arg(r.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
}

/// `appliance --config CFG ARGS --root ROOT`.
fn with_config(cfg: &Path, args: &[&str], root: &Path) -> std::process::Output {
    appliance()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

/// The example configuration with `components` and `paths` changed.
fn config_with(dir: &Path, components: &str, paths: &str, info: &str) -> PathBuf {
    let example = appliance().args(["config", "example"]).output().unwrap();
    let text = String::from_utf8(example.stdout).unwrap();
    let start = text.find("\npaths:\n").unwrap();
    let end = text.find("\n# Accounting extraction").unwrap();
    let text = format!(
        "{}\n{paths}\n{components}\n{info}\n{}",
        &text[..start],
        &text[end..]
    );
    let p = dir.join("appliance.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_configuration_decides_timers_schedules_and_writable_paths() {
    let r = root();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        cfg_dir.path(),
        "components:\n  accounting: {enabled: true, extract-schedule: \"*:0/20\"}\n  info: {enabled: false}\n  images: {enabled: true, schedule: daily}\n",
        "paths:\n  image-data: /srv/image-data\n",
        "info:\n  publish: {file: /srv/www/cloud-info.json}\n",
    );
    let out = with_config(&cfg, &["--json", "systemd", "install"], r.path());
    assert!(out.status.success(), "{out:?}");
    let etc = r.path().join("etc/systemd/system");
    assert_eq!(
        systemctl_root(r.path(), &["is-enabled", "appliance-info-publish.timer"]).1,
        "disabled"
    );
    for t in TIMERS.iter().filter(|t| !t.contains("info")) {
        assert_eq!(
            systemctl_root(r.path(), &["is-enabled", t]).1,
            "enabled",
            "{t}"
        );
    }
    let sched = |t: &str| std::fs::read_to_string(etc.join(format!("{t}.d/50-schedule.conf")));
    assert!(sched("appliance-images-sync.timer")
        .unwrap()
        .ends_with("[Timer]\nOnCalendar=\nOnCalendar=daily\n"));
    assert!(sched("appliance-accounting-extract.timer")
        .unwrap()
        .contains("OnCalendar=*:0/20\n"));
    assert!(sched("appliance-accounting-send.timer").is_err());
    let paths =
        std::fs::read_to_string(etc.join("appliance-images-sync.service.d/50-paths.conf")).unwrap();
    assert!(
        paths.ends_with(
            "ReadWritePaths=\nReadWritePaths=-/srv/image-data -/var/lib/fedcloud-appliance\n"
        ),
        "{paths}"
    );
    assert!(
        std::fs::read_to_string(etc.join("appliance-info-publish.service.d/50-paths.conf"))
            .unwrap()
            .contains("-/srv/www ")
    );
    assert!(!etc.join("appliance-accounting-send.service.d").exists());
    let tmpfiles = std::fs::read_to_string(
        r.path()
            .join("etc/tmpfiles.d/fedcloud-appliance-paths.conf"),
    )
    .unwrap();
    assert!(
        tmpfiles.contains("d /srv/image-data 0750 appliance appliance -"),
        "{tmpfiles}"
    );
    // systemd reads the drop-ins: the timer's schedule and the sandbox.
    let cat = Command::new("systemd-analyze")
        .arg("cat-config")
        .arg(format!("--root={}", r.path().display()))
        .arg("systemd/system/appliance-images-sync.timer")
        .output()
        .unwrap();
    let cat = String::from_utf8_lossy(&cat.stdout);
    assert!(
        cat.contains("OnCalendar=*-*-* 00/4:00:00\n")
            && cat.ends_with("[Timer]\nOnCalendar=\nOnCalendar=daily\n"),
        "{cat}"
    );
    verify(r.path());
    let score = exposure(r.path(), "appliance-images-sync.service");
    assert!(score <= 2.5, "{score}");

    // Back to the defaults: drop-ins go, the timer comes back.
    let plain = config_with(cfg_dir.path(), "", "", "");
    let out = with_config(&plain, &["systemd", "apply"], r.path());
    assert!(out.status.success(), "{out:?}");
    assert!(!etc.join("appliance-images-sync.timer.d").exists());
    assert!(!etc.join("appliance-images-sync.service.d").exists());
    assert!(!r
        .path()
        .join("etc/tmpfiles.d/fedcloud-appliance-paths.conf")
        .exists());
    assert_eq!(
        systemctl_root(r.path(), &["is-enabled", "appliance-info-publish.timer"]).1,
        "enabled"
    );
}

#[test]
fn a_bad_schedule_is_refused_naming_its_key_and_nothing_is_written() {
    let r = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        cfg_dir.path(),
        "components:\n  images: {schedule: \"every tuesday\"}\n  crl-refresh: {schedule: \"25:00\"}\n",
        "",
        "",
    );
    let out = with_config(&cfg, &["systemd", "apply", "--no-reload"], r.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("components.images.schedule: `every tuesday`"),
        "{err}"
    );
    assert!(
        err.contains("components.crl-refresh.schedule: `25:00`"),
        "{err}"
    );
    assert!(!r.path().join("etc/systemd").exists());
}

#[test]
fn old_release_units_are_replaced() {
    let r = tempfile::tempdir().unwrap();
    let old = r
        .path()
        .join("usr/lib/systemd/system/appliance-accounting.timer");
    let wants = r
        .path()
        .join("etc/systemd/system/timers.target.wants/appliance-accounting.timer");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::create_dir_all(wants.parent().unwrap()).unwrap();
    std::fs::write(&old, "[Timer]\nOnCalendar=hourly\n").unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/appliance-accounting.timer", &wants)
        .unwrap();
    let out = appliance()
        .args(["systemd", "install", "--no-reload", "--root"])
        .arg(r.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!old.exists());
    assert!(std::fs::symlink_metadata(&wants).is_err());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "unlinked  /etc/systemd/system/timers.target.wants/appliance-accounting.timer"
        ),
        "{text}"
    );
}
