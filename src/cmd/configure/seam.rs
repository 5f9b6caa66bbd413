//! What `configure` takes from other parts of this release, in one small
//! seam: enabling exactly the timers of the enabled components and the
//! paths drop-ins (`crate::systemd::apply`, issue #11), removing the
//! first-boot banner (`crate::systemd::banner`), and refreshing the CRLs of
//! the CA directory (`crate::trust::crl::refresh`, issue #11).

use std::path::Path;

use crate::config::Components;

/// Enable exactly the timers of the enabled jobs under `root`, with their
/// schedule drop-ins, and the paths drop-ins of the services whose paths
/// the configuration at `config` (as written) moved
/// ([`crate::systemd::apply`]); when `live`, the running systemd is
/// reloaded and the timers (re)started. Returns what was done, one line
/// each.
pub fn apply_jobs(
    root: &Path,
    config: &Path,
    components: &Components,
    live: bool,
) -> anyhow::Result<Vec<String>> {
    let report = match crate::config::load(config) {
        Ok(loaded) => crate::systemd::apply(root, &loaded, live)?,
        Err(e) => {
            tracing::warn!(config = %config.display(), error = %e, "the written configuration does not load: timers set, paths drop-ins left as they were");
            crate::systemd::apply_jobs(root, components, live)?
        }
    };
    let mut done: Vec<String> = report
        .changes
        .iter()
        .map(|c| format!("{} {}", c.action, c.path))
        .collect();
    done.extend(report.enabled.iter().map(|t| format!("enabled {t}")));
    done.extend(report.disabled.iter().map(|t| format!("disabled {t}")));
    done.extend(report.ran.iter().map(|c| format!("ran {c}")));
    done.extend(report.warnings);
    Ok(done)
}

/// The appliance is configured: the first-boot banner goes.
pub fn configured(root: &Path) -> anyhow::Result<()> {
    if crate::systemd::banner::remove(root)? {
        println!(
            "removed the first-boot banner (/{})",
            crate::systemd::banner::ISSUE_FILE
        );
    }
    Ok(())
}

/// Refresh the CRLs of `ca_dir` now (what `appliance crl refresh` does).
pub async fn refresh_crls(ca_dir: &Path) -> anyhow::Result<String> {
    let _ = ca_dir;
    anyhow::bail!("`appliance crl refresh` is not in this build yet (issue #11); the crl-refresh timer runs it once it is")
}
