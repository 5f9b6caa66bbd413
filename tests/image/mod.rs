//! Integration tests of the image area (issue #13): the explicit system TLS
//! roots, `appliance self-install`, and the OVA checker of
//! `scripts/build-image`. The image itself is built and booted by
//! `scripts/build-image` and `scripts/boot-test` (CI runs both).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{appliance, refsite};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference site's configuration with Keystone behind the site's TLS
/// proxy, by name, and no site CA: only the system roots can verify it.
fn tls_only_config(dir: &Path) -> PathBuf {
    let site = refsite();
    let url = site
        .var("REFSITE_KEYSTONE_TLS_URL")
        .replace("127.0.0.1", "localhost");
    let text = std::fs::read_to_string(site.path("REFSITE_CONFIG")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("auth-url:") {
            out.push_str(&format!("    auth-url: {url}\n"));
        } else if line.starts_with("  ca-dir:") && !out.contains("\npaths:") {
            continue; // the openstack section's site CA
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.join("appliance.yaml");
    std::fs::write(&path, out).unwrap();
    path
}

/// Every TLS client trusts exactly the system roots plus the site's CAs:
/// the system roots are read explicitly from `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// (default Debian's `/etc/ssl/certs`), never from OpenSSL's compiled-in
/// path (which the vendored OpenSSL of the static build would point
/// elsewhere; `scripts/build-static --check-tls` proves that build in a
/// chroot whose only trust is `/etc/ssl/certs/ca-certificates.crt`).
#[test]
fn tls_trusts_the_system_roots_and_nothing_else() {
    let site = refsite();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tls_only_config(tmp.path());
    let empty = tmp.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();

    let ok = appliance()
        .args(["--json", "--config"])
        .arg(&cfg)
        .arg("doctor")
        .env("SSL_CERT_FILE", site.var("REFSITE_CA_FILE"))
        .env("SSL_CERT_DIR", tmp.path().join("none"))
        .output()
        .unwrap();
    // Keystone over TLS answered (the projects are listed); doctor's other
    // checks (GOCDB, AMS at their public hosts) are not this test's.
    let report = String::from_utf8_lossy(&ok.stdout);
    let json: serde_json::Value = serde_json::from_str(&report).unwrap_or_default();
    assert!(
        json["accessible"]["ok"] == true,
        "doctor over TLS with the site CA as the system bundle: {}\n{report}\n{}",
        ok.status,
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = appliance()
        .args(["--json", "--config"])
        .arg(&cfg)
        .arg("doctor")
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", tmp.path().join("none"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(3), "{report}");
    assert!(report.contains("certificate verify failed"), "{report}");
}

/// `self-install --root` into a directory: binary, units, release file; the
/// migration is left to that system's next boot.
#[test]
fn self_install_into_a_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("etc/fedcloud-appliance")).unwrap();
    std::fs::write(
        root.join("etc/fedcloud-appliance/release"),
        "# image\nAPPLIANCE_VERSION=0.0.9\nDEBIAN_SUITE=trixie\n",
    )
    .unwrap();
    let out = appliance()
        .args(["--json", "self-install", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(report["from_version"], "0.0.9");
    assert_eq!(report["to_version"], version);
    assert!(report["migrate"].as_str().unwrap().contains("next boot"));

    let bin = root.join("usr/bin/appliance");
    let said = Command::new(&bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&said.stdout).contains(version));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let release = std::fs::read_to_string(root.join("etc/fedcloud-appliance/release")).unwrap();
    assert_eq!(
        release,
        format!("# image\nAPPLIANCE_VERSION={version}\nDEBIAN_SUITE=trixie\nAPPLIANCE_IMAGE_VERSION=0.0.9\n")
    );
    // the units of `appliance systemd install`, the migration unit among them
    let units = walk(root);
    assert!(
        units
            .iter()
            .any(|p| p.ends_with("appliance-migrate.service")),
        "no appliance-migrate.service under {}: {units:?}",
        root.display()
    );
    // nothing staged is left beside the binary
    let left: Vec<_> = std::fs::read_dir(root.join("usr/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("appliance")]);
}

/// A root that is not a directory is a usage error, and nothing is written.
#[test]
fn self_install_refuses_a_missing_root() {
    let tmp = tempfile::tempdir().unwrap();
    appliance()
        .args(["self-install", "--root"])
        .arg(tmp.path().join("nope"))
        .assert()
        .code(2);
    assert!(!tmp.path().join("nope").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A small OVA made by the build's own `make-ova`, and a few broken ones:
/// `check-ova` accepts the first and names what is wrong with the others.
#[test]
fn check_ova_accepts_ours_and_refuses_broken_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sh = |script: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .env("REPO", repo())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = sh(
        "set -e; truncate -s 8M disk.raw; printf 'fedcloud' | dd of=disk.raw bs=1 seek=4096 conv=notrunc status=none
         mkdir w; qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic disk.raw w/t-disk1.vmdk
         $REPO/scripts/lib/make-ova w/t-disk1.vmdk 8 good.ova t 1.2.3
         $REPO/scripts/check-ova good.ova disk.raw",
    );
    assert!(ok, "our OVA: {err}");
    assert!(err.contains("identical to disk.raw"), "{err}");

    // GNU tar format instead of USTAR
    let (ok, err) = sh("set -e; mkdir g; tar -C g -xf good.ova; tar -C g --format=gnu -cf $PWD/gnu.ova t.ovf t.mf t-disk1.vmdk
                        $REPO/scripts/check-ova gnu.ova disk.raw");
    assert!(!ok && err.contains("not a USTAR archive"), "{err}");
    // the manifest second, not first
    let (ok, err) = sh("set -e; mkdir o; tar -C o -xf good.ova; tar -C o --format=ustar -cf $PWD/order.ova t.mf t.ovf t-disk1.vmdk
                        $REPO/scripts/check-ova order.ova");
    assert!(!ok && err.contains("not the descriptor"), "{err}");
    // a disk that does not match its manifest line
    let (ok, err) = sh("set -e; mkdir m; tar -C m -xf good.ova; printf x >> m/t-disk1.vmdk
                        tar -C m --format=ustar --owner=0 --group=0 --numeric-owner -cf $PWD/bad.ova t.ovf t.mf t-disk1.vmdk
                        $REPO/scripts/check-ova bad.ova");
    assert!(!ok && err.contains("manifest does not verify"), "{err}");
    // a capacity that is not the disk's
    let (ok, err) = sh("set -e; truncate -s 16M big.raw; $REPO/scripts/check-ova good.ova big.raw");
    assert!(!ok && err.contains("capacity"), "{err}");
}
