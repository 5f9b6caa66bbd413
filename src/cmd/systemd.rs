//! `appliance systemd install|apply|firstboot`: the appliance's units and
//! timers installed and enabled (the image builder and `self-install` use
//! `install`), the configuration applied to them (`configure` calls the
//! library form), and the first-boot unit's work.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::cli::{GlobalArgs, DEFAULT_CONFIG};
use crate::exit::Outcome;
use crate::systemd::{self, banner, Configured, Report};

/// `appliance systemd ...`
#[derive(Debug, clap::Subcommand)]
pub enum SystemdCommand {
    /// Install the units, timers, sysusers.d and tmpfiles.d files, enable
    /// them as `systemctl enable` would, mask systemd-firstboot, and apply
    /// the configuration (timers, schedules, paths) when there is one
    /// (otherwise every job on its default schedule). Idempotent.
    Install(InstallArgs),
    /// Apply appliance.yaml to the installed units: enable exactly the
    /// enabled job timers, write schedule and path drop-ins, reload
    /// systemd. Run it after editing `components` or `paths` by hand.
    Apply(ApplyArgs),
    /// The first-boot unit's work: configure from OpenStack user data
    /// (`appliance configure --user-data`); when that leaves the appliance
    /// unconfigured, put the "how to configure" banner on the console and
    /// in /etc/issue.d/.
    #[command(hide = true)]
    Firstboot(FirstbootArgs),
}

/// Options of `appliance systemd install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Install into this root (an image's tree) instead of the running
    /// system; its appliance.yaml is read when `--config` is not given.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Do not reload the running systemd nor start timers.
    #[arg(long)]
    pub no_reload: bool,
}

/// Options of `appliance systemd apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Apply to the units under this root.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Do not reload the running systemd nor (re)start timers.
    #[arg(long)]
    pub no_reload: bool,
}

/// Options of `appliance systemd firstboot`.
#[derive(Debug, clap::Args)]
pub struct FirstbootArgs {
    /// The root whose banner and markers are written.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Run this program instead of `appliance configure --user-data`
    /// (with the same arguments; for tests).
    #[arg(long, hide = true)]
    pub configure_with: Option<PathBuf>,
}

/// Run `appliance systemd ...`.
pub fn run(g: &GlobalArgs, c: &SystemdCommand) -> anyhow::Result<Outcome> {
    match c {
        SystemdCommand::Install(a) => install(g, a),
        SystemdCommand::Apply(a) => apply(g, a),
        SystemdCommand::Firstboot(a) => firstboot(g, a),
    }
}

/// The configuration file for `root`: `--config` when given, else the
/// default path under the root.
fn config_file(g: &GlobalArgs, root: &Path) -> PathBuf {
    if g.config == Path::new(DEFAULT_CONFIG) {
        root.join(DEFAULT_CONFIG.trim_start_matches('/'))
    } else {
        g.config.clone()
    }
}

fn install(g: &GlobalArgs, a: &InstallArgs) -> anyhow::Result<Outcome> {
    let file = config_file(g, &a.root);
    let loaded = if file.exists() {
        match crate::config::load(&file) {
            Ok(l) => Some(l),
            Err(e) => {
                // An upgrade may bring a config that only `migrate` (run
                // before any job) can read: keep going on the defaults.
                tracing::warn!(config = %file.display(), error = %e, "the configuration does not load: the job timers are set to their defaults; run `appliance systemd apply` once it does");
                None
            }
        }
    } else {
        None
    };
    let how = loaded
        .as_ref()
        .map_or(Configured::Defaults, Configured::Loaded);
    let report = systemd::install(&a.root, how, !a.no_reload)?;
    print(g, &report)
}

fn apply(g: &GlobalArgs, a: &ApplyArgs) -> anyhow::Result<Outcome> {
    let loaded = crate::config::load(&config_file(g, &a.root))?;
    loaded.log_warnings();
    let report = systemd::apply(&a.root, &loaded, !a.no_reload)?;
    print(g, &report)
}

fn print(g: &GlobalArgs, r: &Report) -> anyhow::Result<Outcome> {
    for w in &r.warnings {
        tracing::warn!("{w}");
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        for c in &r.changes {
            println!("{:<9} {}", c.action, c.path);
        }
        for cmd in &r.ran {
            println!("ran       {cmd}");
        }
        println!(
            "timers enabled: {}",
            if r.enabled.is_empty() {
                "none".to_string()
            } else {
                r.enabled.join(", ")
            }
        );
        if !r.disabled.is_empty() {
            println!("timers disabled: {}", r.disabled.join(", "));
        }
    }
    Ok(if r.warnings.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

/// Where the first-boot unit mounts the config drive (under the root).
pub const CONFIG_DRIVE: &str = "run/fedcloud-appliance/config-drive";

fn firstboot(g: &GlobalArgs, a: &FirstbootArgs) -> anyhow::Result<Outcome> {
    let root = &a.root;
    if banner::configured(root) {
        banner::mark_firstboot_done(root).context("writing the first-boot marker")?;
        return Ok(Outcome::Success);
    }
    let mut cmd = match &a.configure_with {
        Some(p) => Command::new(p),
        None => {
            let mut c = Command::new(
                std::env::current_exe().context("finding this program to run `configure`")?,
            );
            c.arg("configure");
            c
        }
    };
    cmd.arg("--config")
        .arg(config_file(g, root))
        .arg("--user-data");
    // The unit mounted the config drive (a privileged step outside the
    // sandbox this runs in).
    let drive = root.join(CONFIG_DRIVE);
    if drive.join("openstack").is_dir() {
        cmd.arg("--config-drive").arg(&drive);
    }
    tracing::info!(command = ?cmd, "configuring from OpenStack user data, if any");
    let status = cmd.status();
    let failure = match &status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`appliance configure --user-data` ended with {s}")),
        Err(e) => Some(format!(
            "`appliance configure --user-data` did not start: {e}"
        )),
    };
    let outcome = if banner::configured(root) {
        banner::remove(root).context("removing the banner")?;
        tracing::info!("configured from the user data");
        Outcome::Success
    } else {
        let text = banner::text(env!("CARGO_PKG_VERSION"), failure.as_deref());
        let path = banner::show(root, &text).context("writing the banner")?;
        // stdout is the console too (StandardOutput=journal+console).
        print!("{text}");
        tracing::info!(banner = %path.display(), "not configured: banner shown");
        if failure.is_some() {
            Outcome::Error
        } else {
            Outcome::Success
        }
    };
    banner::mark_firstboot_done(root).context("writing the first-boot marker")?;
    Ok(outcome)
}
