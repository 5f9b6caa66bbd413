//! The "not configured yet" banner: on the console at first boot and in
//! `/etc/issue.d/` (agetty shows it above every login prompt) until
//! `appliance configure` succeeds and removes it ([`remove`]).

use std::path::{Path, PathBuf};

/// The banner file (under the root); agetty reads `/etc/issue.d/*.issue`.
pub const ISSUE_FILE: &str = "etc/issue.d/fedcloud-appliance.issue";
/// The "configured" marker (under the root), written by `configure`.
pub const CONFIGURED: &str = "var/lib/fedcloud-appliance/.configured";
/// Written when the first-boot unit has run (under the root).
pub const FIRSTBOOT_DONE: &str = "var/lib/fedcloud-appliance/firstboot.done";

/// The banner's text. `failure`: why configuring from the user data did
/// not work, if it was tried and failed.
pub fn text(version: &str, failure: Option<&str>) -> String {
    let mut t = format!(
        "\n  fedcloud-appliance {version} is not configured yet.\n\n  Log in as root and run the wizard:      appliance configure\n  or answer it from a file:               appliance configure --answers FILE\n  (`appliance configure --help` lists the answers; OpenStack user data\n  carrying them configures the appliance at first boot.)\n"
    );
    if let Some(f) = failure {
        t.push_str(&format!(
            "\n  Configuring from the OpenStack user data failed: {f}\n  Details: journalctl -b -u appliance-firstboot\n"
        ));
    }
    t.push('\n');
    t
}

/// agetty expands `\x` escapes in issue files: keep backslashes literal.
fn issue_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
}

fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

/// Whether the appliance under `root` is configured.
pub fn configured(root: &Path) -> bool {
    under(root, CONFIGURED).exists()
}

/// Put `text` in the issue file under `root` (mode 0644).
pub fn show(root: &Path, text: &str) -> std::io::Result<PathBuf> {
    let path = under(root, ISSUE_FILE);
    crate::state::write_atomic(&path, issue_escape(text).as_bytes(), 0o644)?;
    Ok(path)
}

/// Remove the banner under `root` (`appliance configure` calls this once
/// the appliance is configured); `Ok(false)` when there was none.
pub fn remove(root: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(under(root, ISSUE_FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Record that the first-boot unit ran (so later boots skip it).
pub fn mark_firstboot_done(root: &Path) -> std::io::Result<()> {
    crate::state::write_atomic(&under(root, FIRSTBOOT_DONE), b"", 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_the_wizard_and_the_failure() {
        let t = text("1.2.3", None);
        assert!(t.contains("fedcloud-appliance 1.2.3 is not configured yet"));
        assert!(t.contains("appliance configure\n"));
        assert!(!t.contains("failed"));
        let f = text("1.2.3", Some("exit status 2"));
        assert!(f.contains("user data failed: exit status 2"));
        assert!(f.contains("journalctl -b -u appliance-firstboot"));
        assert_eq!(issue_escape(r"a\b"), r"a\\b");
    }

    #[test]
    fn show_then_remove() {
        let root = tempfile::tempdir().unwrap();
        assert!(!remove(root.path()).unwrap());
        let p = show(root.path(), "x\\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x\\\\n");
        assert!(remove(root.path()).unwrap());
        assert!(!p.exists());
        assert!(!configured(root.path()));
    }
}
