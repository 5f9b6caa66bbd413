//! `appliance self-install`: this binary and its units onto a running
//! appliance (the in-place upgrade); `migrate` runs before the next job.
//!
//! Run the NEW binary (the release's static `appliance`, copied anywhere):
//!
//! 1. it copies itself next to `<root>/usr/bin/appliance` (same filesystem),
//!    closed and synced, and checks the copy runs and says this version;
//! 2. the copy installs its own units, timers, sysusers.d and tmpfiles.d
//!    (`appliance systemd install --root <root>`); only then
//! 3. it takes the place of `<root>/usr/bin/appliance` by `rename(2)` (a job
//!    already running keeps the old file; the next one starts the new one);
//! 4. `<root>/etc/fedcloud-appliance/release` gets the new version
//!    ([`crate::release::upgraded`]);
//! 5. on a live system (`--root /` under systemd) it stops
//!    `appliance-migrate.service` (a oneshot that stays active after it ran
//!    at boot): every job `Requires=` and is ordered after it, so the next
//!    job, whichever timer fires first, runs the new binary's `migrate`
//!    before itself; a job still running is stopped with it (all of them
//!    resume safely at their next run). Without systemd it runs `appliance
//!    migrate` itself; for another `--root` the image's
//!    `appliance-migrate.service` does it at that system's next boot.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance self-install` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The root of the system to install into.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Leave the migration to the next boot (appliance-migrate.service).
    #[arg(long)]
    pub no_migrate: bool,
}

/// The unit that migrates configuration and state (every boot, before jobs).
const MIGRATE_UNIT: &str = "appliance-migrate.service";

/// What `self-install` did (`--json`).
#[derive(Debug, Serialize)]
struct Report {
    from_version: Option<String>,
    to_version: String,
    binary: PathBuf,
    units: String,
    release_file: PathBuf,
    migrate: String,
}

/// Run `appliance self-install`.
pub fn run(g: &GlobalArgs, args: &Args) -> anyhow::Result<Outcome> {
    let version = env!("CARGO_PKG_VERSION");
    let root = &args.root;
    if !root.is_dir() {
        return Err(
            crate::exit::UsageError(format!("--root {}: not a directory", root.display())).into(),
        );
    }
    let source = std::env::current_exe().context("cannot tell which file this binary is")?;
    let dest = root.join("usr/bin/appliance");
    let from_version = installed_version(root, &dest);

    // 1. the copy, beside its destination
    let dir = dest.parent().expect("usr/bin");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let staged = stage_copy(&source, dir)?;
    let said = run_capture(Command::new(&*staged).arg("--version"))
        .with_context(|| format!("the copy {} does not run", staged.display()))?;
    if !said.contains(version) {
        bail!(
            "the copy {} says {said:?}, not version {version}",
            staged.display()
        );
    }

    // 2. its units
    let units = run_capture(
        Command::new(&*staged)
            .args(["systemd", "install", "--root"])
            .arg(root),
    )
    .context("installing the units (appliance systemd install) failed; nothing was replaced")?;

    // 3. the binary
    staged
        .persist(&dest)
        .with_context(|| format!("cannot move the new binary to {}", dest.display()))?;
    sync_dir(dir);
    tracing::info!(binary = %dest.display(), from = ?from_version, to = version, "appliance binary installed");

    // 4. the release file
    let release_file = root.join(crate::release::PATH);
    let old = std::fs::read_to_string(&release_file).unwrap_or_default();
    crate::state::write_atomic(
        &release_file,
        crate::release::upgraded(&old, version).as_bytes(),
        0o644,
    )
    .with_context(|| format!("cannot write {}", release_file.display()))?;

    // 5. the migration, before the next job
    let live = root == Path::new("/");
    let migrate = if args.no_migrate {
        format!("left to the next boot ({MIGRATE_UNIT})")
    } else if live && Path::new("/run/systemd/system").is_dir() {
        run_capture(Command::new("systemctl").arg("daemon-reload"))
            .context("systemctl daemon-reload")?;
        // Stopped, not restarted: the unit refuses a manual start
        // (RefuseManualStart=yes, so only a job or the boot pulls it in).
        run_capture(Command::new("systemctl").args(["stop", MIGRATE_UNIT]))
            .with_context(|| format!("systemctl stop {MIGRATE_UNIT}"))?;
        format!("before the next job ({MIGRATE_UNIT} stopped; every job requires it)")
    } else if live {
        run_capture(
            Command::new(&dest)
                .arg("--config")
                .arg(&g.config)
                .arg("migrate"),
        )
        .context("appliance migrate")?;
        "done (appliance migrate)".to_string()
    } else {
        format!("at the next boot of {} ({MIGRATE_UNIT})", root.display())
    };

    let report = Report {
        from_version,
        to_version: version.to_string(),
        binary: dest,
        units: units
            .lines()
            .last()
            .unwrap_or("installed")
            .trim()
            .to_string(),
        release_file,
        migrate,
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "appliance {} -> {} installed at {}\nunits: {}\nmigrate: {}",
            report.from_version.as_deref().unwrap_or("(none)"),
            report.to_version,
            report.binary.display(),
            report.units,
            report.migrate
        );
    }
    Ok(Outcome::Success)
}

/// The version installed before: the release file's, else what the
/// installed binary says.
fn installed_version(root: &Path, binary: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(root.join(crate::release::PATH)) {
        if let Some(v) = crate::release::get(&text, "APPLIANCE_VERSION") {
            return Some(v.to_string());
        }
    }
    let out = Command::new(binary).arg("--version").output().ok()?;
    let said = String::from_utf8_lossy(&out.stdout);
    said.split_whitespace().last().map(str::to_string)
}

/// A closed, synced, executable copy of `source` in `dir` (deleted on drop
/// unless persisted).
fn stage_copy(source: &Path, dir: &Path) -> anyhow::Result<tempfile::TempPath> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .prefix(".appliance.self-install.")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut src =
        std::fs::File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
    std::io::copy(&mut src, tmp.as_file_mut())
        .with_context(|| format!("cannot copy into {}", dir.display()))?;
    tmp.as_file().sync_all()?;
    // Closed before it is run: executing a file open for writing is ETXTBSY.
    Ok(tmp.into_temp_path())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Run `cmd`; its stdout on success, an error with its stderr otherwise.
fn run_capture(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
