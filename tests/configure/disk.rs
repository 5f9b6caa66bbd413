//! `/image_data` on a disk of its own: a file-backed loop device (no
//! partitions) handed to `configure` as the block device, the `--dry-run`
//! plan, the ext4 file system it makes, and the mount unit, checked with
//! `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{answers_yaml, ok, Root};

/// A loop device over a sparse file, detached on drop.
struct Loop {
    dev: PathBuf,
}

impl Loop {
    fn new(file: &Path) -> Result<Loop, String> {
        let st = Command::new("truncate")
            .args(["-s", "64M"])
            .arg(file)
            .status();
        if !st.is_ok_and(|s| s.success()) {
            return Err("truncate failed".into());
        }
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Loop {
            dev: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn blkid(dev: &Path) -> String {
    let out = Command::new("blkid").arg("-p").arg(dev).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unit_name(mount_point: &Path) -> String {
    let out = Command::new("systemd-escape")
        .args(["--path", "--suffix=mount"])
        .arg(mount_point)
        .output()
        .expect("systemd-escape");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn image_data_on_a_loop_device_plan_then_format_and_mount_unit() {
    let r = Root::new();
    let lp = match Loop::new(&r.path().join("disk.img")) {
        Ok(l) => l,
        Err(e) => panic!("this machine gives no loop device (losetup: {e}); the issue allows the --dry-run plan only where loop devices are missing, which is not the case on the build machines"),
    };
    let mount_point = r.path().join("image_data");
    let answers = format!(
        "{}image-data:\n  directory: {}\n  device: {}\n  format: true\n",
        answers_yaml(),
        mount_point.display(),
        lp.dev.display()
    );
    let f = r.answers_file(&answers);
    let unit = unit_name(&mount_point);

    // The plan, and nothing written.
    let mut c = r.configure();
    c.arg("--answers").arg(&f).arg("--dry-run");
    let out = ok(c);
    assert!(
        out.contains(&format!(
            "format {} with `mkfs.ext4 -L image_data` (everything on it is lost), mounted at {} by {unit}",
            lp.dev.display(),
            mount_point.display()
        )),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert!(blkid(&lp.dev).is_empty(), "the dry run formatted the disk");
    assert!(!r.config().exists());

    // For real.
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = ok(c);
    assert!(
        out.contains(&format!("formatted {}", lp.dev.display())),
        "{out}"
    );
    let probe = blkid(&lp.dev);
    assert!(
        probe.contains("LABEL=\"image_data\"") && probe.contains("TYPE=\"ext4\""),
        "{probe}"
    );
    let unit_file = r.path().join("etc/systemd/system").join(&unit);
    let text = std::fs::read_to_string(&unit_file).unwrap();
    assert!(
        text.contains("What=/dev/disk/by-label/image_data\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Where={}\n", mount_point.display())),
        "{text}"
    );
    let v = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_file)
        .output()
        .expect("systemd-analyze");
    assert!(
        v.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(std::fs::symlink_metadata(
        r.path()
            .join("etc/systemd/system/local-fs.target.wants")
            .join(&unit)
    )
    .is_ok());
    let config = std::fs::read_to_string(r.config()).unwrap();
    assert!(config.contains(&format!("  image-data: {}\n", mount_point.display())));

    // The disk now holds a file system: it is never formatted again.
    let mut c = r.configure();
    c.arg("--answers").arg(&f);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("image-data:") && (err.contains("not empty") || err.contains("file system")),
        "{err}"
    );
}
