//! The two things `configure` takes from other parts of this release, behind
//! one small seam until they land: enabling exactly the timers of the
//! enabled components (`crate::systemd::apply_jobs`, issue #11) and
//! refreshing the CRLs of the CA directory (`crate::trust::crl::refresh`,
//! issue #11).

use std::path::Path;

use crate::config::Components;

/// Enable exactly the timers of the enabled jobs under `root` (and, when
/// `live`, in the running systemd). Returns what was done, one line each.
///
/// Until `crate::systemd::apply_jobs` lands, this does what `systemctl
/// --root=ROOT enable|disable appliance-<job>.timer` does offline: the
/// `timers.target.wants` links of `/etc/systemd/system`.
pub fn apply_jobs(root: &Path, components: &Components, live: bool) -> anyhow::Result<Vec<String>> {
    let wants = crate::setup::answers::under(root, "/etc/systemd/system/timers.target.wants");
    std::fs::create_dir_all(&wants)?;
    let mut done = Vec::new();
    for job in components.jobs() {
        let unit = format!("appliance-{}.timer", job.name);
        let link = wants.join(&unit);
        if job.enabled {
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("/lib/systemd/system/{unit}"), &link)?;
            }
            done.push(format!("enabled {unit}"));
        } else {
            if std::fs::symlink_metadata(&link).is_ok() {
                std::fs::remove_file(&link)?;
            }
            done.push(format!("disabled {unit}"));
        }
    }
    if live {
        done.push("the running systemd picks the timers up at `systemctl daemon-reload`".into());
    }
    Ok(done)
}

/// Refresh the CRLs of `ca_dir` now (what `appliance crl refresh` does).
pub async fn refresh_crls(ca_dir: &Path) -> anyhow::Result<String> {
    let _ = ca_dir;
    anyhow::bail!("`appliance crl refresh` is not in this build yet (issue #11); the crl-refresh timer runs it once it is")
}
