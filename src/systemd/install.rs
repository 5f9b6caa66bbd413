//! Installing the units into a root (`/` or an image's tree) and applying
//! the configuration to them: the files of `systemd/`, enablement symlinks
//! exactly as `systemctl enable` makes them, the timers' schedule drop-ins,
//! the services' paths drop-ins, and (live, on a running systemd) a reload
//! and the timers (re)started.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use serde::Serialize;

use super::dropins::{self, Paths, PATHS_DROPIN, PATHS_TMPFILES, SCHEDULE_DROPIN};
use super::units::{self, ETC_UNIT_DIR, FILES, JOBS, MASKED, OBSOLETE, UNIT_DIR};
use crate::config::model::Components;

/// What an install or apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The root it worked on.
    pub root: PathBuf,
    /// Files written, links made or removed (paths under the root).
    pub changes: Vec<Change>,
    /// Commands run.
    pub ran: Vec<String>,
    /// Timers enabled (by their configuration).
    pub enabled: Vec<String>,
    /// Timers disabled.
    pub disabled: Vec<String>,
    /// What could not be done and is left to the next boot.
    pub warnings: Vec<String>,
}

/// One change under the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `wrote`, `linked`, `unlinked`, `removed`, `masked`.
    pub action: &'static str,
    /// The path, absolute as on the target system.
    pub path: String,
}

impl Report {
    fn new(root: &Path) -> Report {
        Report {
            root: root.to_path_buf(),
            ..Report::default()
        }
    }
    fn change(&mut self, action: &'static str, rel: &Path) {
        self.changes.push(Change {
            action,
            path: format!("/{}", rel.display()),
        });
    }
    fn merge(&mut self, other: Report) {
        self.changes.extend(other.changes);
        self.ran.extend(other.ran);
        self.enabled.extend(other.enabled);
        self.disabled.extend(other.disabled);
        self.warnings.extend(other.warnings);
    }
}

/// Whether `live` work may talk to the running system: the root is `/` and
/// PID 1 is systemd.
pub fn live_here(root: &Path, live: bool) -> bool {
    live && root == Path::new("/") && Path::new("/run/systemd/system").is_dir()
}

/// Write `text` at `rel` under `root` (atomically, mode `mode`) unless it
/// already holds it.
fn write(root: &Path, rel: &Path, text: &str, mode: u32, r: &mut Report) -> anyhow::Result<()> {
    let path = root.join(rel);
    if std::fs::read(&path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    crate::state::write_atomic(&path, text.as_bytes(), mode)
        .with_context(|| format!("writing {}", path.display()))?;
    r.change("wrote", rel);
    Ok(())
}

/// Remove `rel` under `root` if it exists (and its directory if it is a
/// `.d`/`.wants` directory left empty).
fn remove(root: &Path, rel: &Path, r: &mut Report) -> anyhow::Result<()> {
    let path = root.join(rel);
    match std::fs::remove_file(&path) {
        Ok(()) => r.change(
            if rel.starts_with(ETC_UNIT_DIR) && !rel.to_string_lossy().ends_with(".conf") {
                "unlinked"
            } else {
                "removed"
            },
            rel,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        let n = dir.file_name().map(|n| n.to_string_lossy().to_string());
        if n.is_some_and(|n| n.ends_with(".d") || n.ends_with(".wants")) {
            let _ = std::fs::remove_dir(dir); // only when empty
        }
    }
    Ok(())
}

/// Make `rel` under `root` a symlink to `target` (an absolute path on the
/// target system, as systemctl writes it).
fn link(root: &Path, rel: &Path, target: &Path, r: &mut Report) -> anyhow::Result<()> {
    let path = root.join(rel);
    if std::fs::read_link(&path).ok().as_deref() == Some(target) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing {}", path.display())),
    }
    std::os::unix::fs::symlink(target, &path)
        .with_context(|| format!("linking {} to {}", path.display(), target.display()))?;
    r.change(
        if target == Path::new("/dev/null") {
            "masked"
        } else {
            "linked"
        },
        rel,
    );
    Ok(())
}

fn etc(rel: impl AsRef<Path>) -> PathBuf {
    Path::new(ETC_UNIT_DIR).join(rel)
}

fn vendor_unit(name: &str) -> PathBuf {
    Path::new("/").join(UNIT_DIR).join(name)
}

/// The enablement links of unit `name` (`<target>.wants/<name>`).
fn wants_links(name: &str) -> Vec<PathBuf> {
    units::unit(name)
        .map(|f| {
            units::wanted_by(f.text)
                .iter()
                .map(|t| etc(format!("{t}.wants")).join(name))
                .collect()
        })
        .unwrap_or_default()
}

/// Run a command; a failure is an error naming it and its output.
fn run(cmd: &mut Command, r: &mut Report) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    r.ran.push(shown.clone());
    if !out.status.success() {
        anyhow::bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether `tool` is on PATH.
fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Check every schedule with `systemd-analyze calendar` (when it is
/// installed); all bad ones at once, each with its configuration key.
pub fn check_schedules(components: &Components) -> anyhow::Result<()> {
    if !have("systemd-analyze") {
        return Ok(());
    }
    let mut bad = Vec::new();
    for (job, unit) in components.jobs().iter().zip(JOBS.iter()) {
        let out = Command::new("systemd-analyze")
            .args(["calendar", "--iterations=1", job.schedule.trim()])
            .output()
            .context("running systemd-analyze calendar")?;
        if !out.status.success() {
            bad.push(format!(
                "{}: `{}` is not a systemd calendar expression ({}); see `man systemd.time`",
                unit.schedule_key,
                job.schedule,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(crate::exit::UsageError(bad.join("\n")).into())
    }
}

/// Write the schedule drop-ins of the job timers and enable exactly the
/// enabled ones (disable the others); `live`: also reload the running
/// systemd and (re)start or stop the timers. `configure` and
/// `systemd install` call this.
pub fn apply_jobs(root: &Path, components: &Components, live: bool) -> anyhow::Result<Report> {
    check_schedules(components)?;
    let mut r = Report::new(root);
    let jobs = components.jobs();
    for (job, unit) in jobs.iter().zip(JOBS.iter()) {
        let timer = unit.timer();
        let dropin = etc(format!("{timer}.d")).join(SCHEDULE_DROPIN);
        match dropins::schedule(unit, &job.schedule) {
            Some(text) => write(root, &dropin, &text, 0o644, &mut r)?,
            None => remove(root, &dropin, &mut r)?,
        }
        for l in wants_links(&timer) {
            if job.enabled {
                link(root, &l, &vendor_unit(&timer), &mut r)?;
            } else {
                remove(root, &l, &mut r)?;
            }
        }
        if job.enabled {
            r.enabled.push(timer);
        } else {
            r.disabled.push(timer);
        }
    }
    if live_here(root, live) {
        run(Command::new("systemctl").arg("daemon-reload"), &mut r)?;
        if !r.enabled.is_empty() {
            let mut c = Command::new("systemctl");
            c.args(["--no-block", "restart"]).args(&r.enabled);
            run(&mut c, &mut r)?;
        }
        if !r.disabled.is_empty() {
            let mut c = Command::new("systemctl");
            c.args(["--no-block", "stop"]).args(&r.disabled);
            run(&mut c, &mut r)?;
        }
    }
    Ok(r)
}

/// Write the paths drop-ins of the services whose paths the
/// configuration moved (remove them where it did not), and the tmpfiles
/// lines creating those paths; `live`: also create them now and reload.
pub fn apply_paths(root: &Path, paths: &Paths, live: bool) -> anyhow::Result<Report> {
    let mut r = Report::new(root);
    for unit in Paths::UNITS {
        let dropin = etc(format!("{unit}.d")).join(PATHS_DROPIN);
        match paths.dropin(unit) {
            Some(text) => write(root, &dropin, &text, 0o644, &mut r)?,
            None => remove(root, &dropin, &mut r)?,
        }
    }
    match paths.tmpfiles() {
        Some(text) => write(root, Path::new(PATHS_TMPFILES), &text, 0o644, &mut r)?,
        None => remove(root, Path::new(PATHS_TMPFILES), &mut r)?,
    }
    if live_here(root, live) {
        if root.join(PATHS_TMPFILES).exists() {
            run(
                Command::new("systemd-tmpfiles")
                    .arg("--create")
                    .arg(Path::new("/").join(PATHS_TMPFILES)),
                &mut r,
            )?;
        }
        run(Command::new("systemctl").arg("daemon-reload"), &mut r)?;
    }
    Ok(r)
}

/// Paths and jobs of a loaded configuration, applied together
/// ([`apply_paths`] then [`apply_jobs`]).
pub fn apply(root: &Path, loaded: &crate::config::Loaded, live: bool) -> anyhow::Result<Report> {
    check_schedules(&loaded.config.components)?;
    let mut r = apply_paths(root, &paths_of(loaded)?, live)?;
    r.merge(apply_jobs(root, &loaded.config.components, live)?);
    Ok(r)
}

/// The paths the jobs of a loaded configuration write (the legacy
/// sender.cfg it names is read for the spool).
pub fn paths_of(loaded: &crate::config::Loaded) -> anyhow::Result<Paths> {
    let c = &loaded.config;
    let ams = crate::messaging::settings::from_config(loaded)?;
    Ok(Paths {
        // The units run with the default configuration file, wherever this
        // one was read from.
        config_dir: Paths::default().config_dir,
        state: c.paths.state.clone(),
        image_data: c.paths.image_data.clone(),
        ca_dir: c.paths.ca_dir.clone(),
        extract_spool: c
            .accounting
            .spool
            .clone()
            .unwrap_or_else(|| c.paths.spool.clone()),
        send_spool: ams.spool,
        quarantine: ams.quarantine,
        info_file: c.info.publish.file.clone(),
    })
}

/// The configuration an install applies.
#[derive(Debug)]
pub enum Configured<'a> {
    /// A loaded appliance.yaml.
    Loaded(&'a crate::config::Loaded),
    /// None yet (an image build): every job enabled on its default
    /// schedule (the jobs wait for the "configured" marker).
    Defaults,
}

/// Install the units, sysusers.d and tmpfiles.d files into `root`, remove
/// those of earlier releases, mask systemd-firstboot, enable the
/// appliance's units as `systemctl enable` would, then apply the
/// configuration ([`apply`]). Creates the `appliance` user and the
/// directories with `systemd-sysusers`/`systemd-tmpfiles` (`--root` for
/// another root) when they are installed. `live`: also reload the running
/// systemd and start the timers.
pub fn install(root: &Path, config: Configured<'_>, live: bool) -> anyhow::Result<Report> {
    if let Configured::Loaded(l) = &config {
        check_schedules(&l.config.components)?;
    }
    let mut r = Report::new(root);
    for f in FILES {
        write(root, Path::new(f.path), f.text, 0o644, &mut r)?;
    }
    for name in OBSOLETE {
        remove(root, &Path::new(UNIT_DIR).join(name), &mut r)?;
        for t in ["timers.target", "multi-user.target"] {
            remove(root, &etc(format!("{t}.wants")).join(name), &mut r)?;
        }
    }
    for name in MASKED {
        link(root, &etc(name), Path::new("/dev/null"), &mut r)?;
    }
    let job_units: Vec<String> = JOBS.iter().map(|j| j.timer()).collect();
    for f in FILES.iter().filter(|f| f.is_unit()) {
        if job_units.iter().any(|t| t == f.name()) {
            continue; // by the configuration, below
        }
        for l in wants_links(f.name()) {
            link(root, &l, &vendor_unit(f.name()), &mut r)?;
        }
    }
    let other_root = root != Path::new("/");
    let rooted = |tool: &str| {
        let mut c = Command::new(tool);
        if other_root {
            c.arg(format!("--root={}", root.display()));
        }
        c
    };
    let sysusers = Path::new("/usr/lib/sysusers.d/fedcloud-appliance.conf");
    let tmpfiles = Path::new("/usr/lib/tmpfiles.d/fedcloud-appliance.conf");
    if other_root || live {
        for (tool, file, extra) in [
            ("systemd-sysusers", sysusers, None),
            ("systemd-tmpfiles", tmpfiles, Some("--create")),
        ] {
            if !have(tool) {
                r.warnings.push(format!(
                    "{tool} is not installed: {} is applied at the next boot",
                    file.display()
                ));
                continue;
            }
            // A bare name: looked up in the tool's directories under the root.
            let mut c = rooted(tool);
            c.args(extra).arg(file.file_name().unwrap_or_default());
            if let Err(e) = run(&mut c, &mut r) {
                r.warnings.push(format!("{e:#}"));
            }
        }
    }
    r.merge(match config {
        Configured::Loaded(l) => apply(root, l, live)?,
        Configured::Defaults => {
            let mut a = apply_paths(root, &Paths::default(), false)?;
            a.merge(apply_jobs(root, &Components::default(), live)?);
            a
        }
    });
    Ok(r)
}
