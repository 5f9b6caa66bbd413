//! The plan of `appliance configure` and its execution: render and merge
//! the files, check them with the configuration loader before anything is
//! written, then write them atomically with their owners and modes, set up
//! `/image_data`, enable the timers and leave the "configured" marker.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config;
use crate::exit::{Outcome, UsageError};
use crate::setup::answers::{under, Answers, Material, IMAGE_DATA_LABEL};
use crate::setup::{disk, render};

use super::{checks, Existing};

/// Who owns a file the wizard writes (when it runs as root and the
/// `appliance` user exists; otherwise ownership is left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root:root.
    Root,
    /// root:appliance (appliance.yaml, 0640).
    RootAppliance,
    /// appliance:appliance (secrets, host key, state).
    Appliance,
}

impl Owner {
    fn text(self) -> &'static str {
        match self {
            Owner::Root => "root:root",
            Owner::RootAppliance => "root:appliance",
            Owner::Appliance => "appliance:appliance",
        }
    }
}

/// The `appliance` user's uid and gid, when this runs as root and it exists.
fn appliance_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("appliance").expect("no NUL");
    // SAFETY: getpwnam reads a NUL-terminated name; the result is copied
    // out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null result of getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn ids_of(owner: Owner) -> Option<(u32, u32)> {
    let (uid, gid) = appliance_ids()?;
    Some(match owner {
        Owner::Root => (0, 0),
        Owner::RootAppliance => (0, gid),
        Owner::Appliance => (uid, gid),
    })
}

/// Write `bytes` to `path` atomically (temporary file in the same
/// directory, mode and owner set before the rename, fsync of file and
/// directory).
pub fn write_owned(path: &Path, bytes: &[u8], mode: u32, owner: Owner) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".configure-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if let Some((uid, gid)) = ids_of(owner) {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Make `path` (and its parents) and give it to `owner`; a directory that
/// is already theirs is left untouched (it may sit on a file system the
/// first-boot unit sees read-only, as the image's tmpfiles made it).
fn make_dir(path: &Path, owner: Owner) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(path)?;
    if let Some((uid, gid)) = ids_of(owner) {
        let m = std::fs::metadata(path)?;
        if (m.uid(), m.gid()) != (uid, gid) {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct FileWrite {
    /// Where.
    pub path: PathBuf,
    /// What (never printed for secrets).
    pub bytes: Vec<u8>,
    /// Mode.
    pub mode: u32,
    /// Owner.
    pub owner: Owner,
    /// What it is, for the plan.
    pub what: &'static str,
}

/// Everything `configure` is about to do.
pub struct Plan {
    /// The root file system.
    pub root: PathBuf,
    /// `appliance.yaml` as it will be.
    pub config_text: String,
    /// Files, in writing order.
    pub files: Vec<FileWrite>,
    /// A disk to format, and its mount point.
    pub format: Option<(PathBuf, PathBuf)>,
    /// Directories to create.
    pub dirs: Vec<(PathBuf, Owner)>,
    /// Run `crl refresh` on this CA directory.
    pub refresh_crls: Option<PathBuf>,
    /// The "configured" marker.
    pub marker: PathBuf,
    /// Where appliance.yaml is written.
    pub config_path: PathBuf,
    /// The host certificate's DN (to register in GOCDB).
    pub dn: Option<String>,
    /// Notes from merging into the existing files.
    pub notes: Vec<String>,
    /// Whether the running systemd is told.
    pub live: bool,
}

/// The line `secrets-file: ...` of a rendered configuration replaced, for
/// checking it against a temporary secrets file.
fn with_secrets_file(text: &str, file: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    for l in text.split_inclusive('\n') {
        if l.starts_with("secrets-file:") {
            out.push_str(&format!(
                "secrets-file: {}\n",
                crate::config::format::scalar(&file.to_string_lossy())
            ));
        } else {
            out.push_str(l);
        }
    }
    out
}

impl Plan {
    /// Render, merge and check the files; decide the rest.
    pub fn make(
        root: &Path,
        config_path: &Path,
        existing: &Existing,
        before: &Answers,
        a: &Answers,
        dn: Option<String>,
    ) -> anyhow::Result<Plan> {
        let mut notes = Vec::new();
        let mut merged = |old: Option<&String>, b: String, n: String| match old {
            Some(old) => {
                let (text, mut ns) = render::merge(old, &b, &n);
                notes.append(&mut ns);
                text
            }
            None => n,
        };
        let config_text = merged(
            existing.config.as_ref(),
            render::config(before),
            render::config(a),
        );
        let secrets_text = merged(
            existing.secrets.as_ref(),
            render::secrets(before),
            render::secrets(a),
        );

        // `config check` of exactly what will be written.
        let tmp = tempfile::tempdir()?;
        let tmp_secrets = tmp.path().join("secrets.yaml");
        write_owned(&tmp_secrets, secrets_text.as_bytes(), 0o600, Owner::Root)?;
        let tmp_config = tmp.path().join("appliance.yaml");
        std::fs::write(&tmp_config, with_secrets_file(&config_text, &tmp_secrets))?;
        match config::load(&tmp_config) {
            Ok(l) => {
                for w in &l.warnings {
                    notes.push(w.replace(
                        &tmp_config.display().to_string(),
                        &config_path.display().to_string(),
                    ));
                }
            }
            Err(e) => {
                let text = e
                    .to_string()
                    .replace(
                        &tmp_config.display().to_string(),
                        &config_path.display().to_string(),
                    )
                    .replace(
                        &tmp_secrets.display().to_string(),
                        &a.secrets_file.display().to_string(),
                    );
                return Err(UsageError(format!(
                    "the configuration made from the answers does not pass `config check`; nothing was written:\n{text}"
                ))
                .into());
            }
        }

        let mut files = Vec::new();
        let hc = &a.host_certificate;
        if let Material::Pem(p) = &hc.certificate {
            files.push(FileWrite {
                path: hc.cert_path.clone(),
                bytes: p.expose().as_bytes().to_vec(),
                mode: 0o644,
                owner: Owner::Root,
                what: "host certificate",
            });
        }
        if let Material::Pem(p) = &hc.key {
            files.push(FileWrite {
                path: hc.key_path.clone(),
                bytes: p.expose().as_bytes().to_vec(),
                mode: 0o600,
                owner: Owner::Appliance,
                what: "host key",
            });
        }
        files.push(FileWrite {
            path: a.secrets_file.clone(),
            bytes: secrets_text.into_bytes(),
            mode: 0o600,
            owner: Owner::Appliance,
            what: "secrets",
        });
        let mut format = None;
        if let (Some(dev), true) = (&a.image_data.device, a.image_data.format) {
            let unit = disk::mount_unit_name(&a.image_data.directory);
            files.push(FileWrite {
                path: under(root, "/etc/systemd/system").join(&unit),
                bytes: disk::mount_unit(IMAGE_DATA_LABEL, &a.image_data.directory).into_bytes(),
                mode: 0o644,
                owner: Owner::Root,
                what: "mount unit of /image_data",
            });
            format = Some((dev.clone(), a.image_data.directory.clone()));
        }
        files.push(FileWrite {
            path: config_path.to_path_buf(),
            bytes: config_text.clone().into_bytes(),
            mode: 0o640,
            owner: Owner::RootAppliance,
            what: "configuration",
        });
        let dirs = vec![
            (a.paths.state.clone(), Owner::Appliance),
            (a.paths.spool.clone(), Owner::Appliance),
            (a.image_data.directory.clone(), Owner::Appliance),
        ];
        let live = root == Path::new("/") && Path::new("/run/systemd/system").is_dir();
        Ok(Plan {
            root: root.to_path_buf(),
            config_text,
            files,
            format,
            dirs,
            refresh_crls: a.trust.refresh_crls.then(|| a.trust.ca_dir.clone()),
            // Where the units look for it, whatever `paths.state` says.
            marker: root.join(crate::systemd::banner::CONFIGURED),
            config_path: config_path.to_path_buf(),
            dn,
            notes,
            live,
        })
    }

    /// Print the plan (stdout).
    pub fn print(&self, dry_run: bool) {
        println!(
            "{}",
            if dry_run {
                "Plan (dry run: nothing is written):"
            } else {
                "Plan:"
            }
        );
        if let Some((dev, at)) = &self.format {
            println!(
                "  format {} with `mkfs.ext4 -L {IMAGE_DATA_LABEL}` (everything on it is lost), mounted at {} by {}",
                dev.display(),
                at.display(),
                disk::mount_unit_name(at)
            );
        }
        for (d, o) in &self.dirs {
            println!("  directory {} ({})", d.display(), o.text());
        }
        for f in &self.files {
            println!(
                "  write {} {} ({} {:04o})",
                f.what,
                f.path.display(),
                f.owner.text(),
                f.mode
            );
        }
        if let Some(d) = &self.refresh_crls {
            println!("  refresh the CRLs of {}", d.display());
        }
        println!("  enable the timers of the enabled components, disable the others; let the units write the configured paths");
        println!("  mark the appliance configured: {}", self.marker.display());
        if let Some(dn) = &self.dn {
            println!(
                "Register the Host DN in GOCDB (eu.egi.cloud.accounting, org.openstack.nova): {dn}"
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }

    /// Do it.
    pub async fn apply(&self) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::Success;
        if let Some((dev, _)) = &self.format {
            if let Some(sig) = checks::probe_signature(dev).map_err(anyhow::Error::msg)? {
                return Err(UsageError(format!(
                    "{} is not empty any more (blkid: {sig}); nothing was written",
                    dev.display()
                ))
                .into());
            }
            let out = std::process::Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", IMAGE_DATA_LABEL])
                .arg(dev)
                .output()?;
            if !out.status.success() {
                anyhow::bail!(
                    "mkfs.ext4 {} failed: {}; nothing else was written",
                    dev.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            println!(
                "formatted {} (ext4, label {IMAGE_DATA_LABEL})",
                dev.display()
            );
        }
        // A state directory without data yet is this release's: stamped,
        // so that the next boot's `migrate` does not take it for an
        // earlier release's (an existing one is left to `migrate`).
        let state = &self.dirs[0].0;
        let fresh_state = std::fs::read_dir(state).map_or(true, |mut d| d.next().is_none());
        for (d, o) in &self.dirs {
            make_dir(d, *o).with_context(|| format!("directory {}", d.display()))?;
        }
        if fresh_state && crate::state::schema::read(state).ok().flatten().is_none() {
            crate::state::schema::stamp(state)
                .with_context(|| format!("stamping the state schema in {}", state.display()))?;
        }
        for f in &self.files {
            write_owned(&f.path, &f.bytes, f.mode, f.owner)
                .with_context(|| format!("writing the {} {}", f.what, f.path.display()))?;
            println!("wrote {} ({:04o})", f.path.display(), f.mode);
        }
        if let Some((_, at)) = &self.format {
            let unit = disk::mount_unit_name(at);
            if self.live {
                for args in [
                    vec!["daemon-reload"],
                    vec!["enable", "--now", unit.as_str()],
                ] {
                    let st = std::process::Command::new("systemctl")
                        .args(&args)
                        .status()?;
                    if !st.success() {
                        anyhow::bail!("systemctl {} failed", args.join(" "));
                    }
                }
                println!("mounted {} ({unit})", at.display());
            } else {
                let wants = under(&self.root, "/etc/systemd/system/local-fs.target.wants");
                std::fs::create_dir_all(&wants)?;
                let link = wants.join(&unit);
                if std::fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(format!("../{unit}"), &link)?;
                }
                println!("enabled {unit} (mounts at the next boot)");
            }
        }
        if let Some(d) = &self.refresh_crls {
            let opts = crate::trust::crl::Options::new(chrono::Utc::now());
            match crate::trust::crl::refresh(d, &opts).await {
                Ok(r) => {
                    let c = &r.summary;
                    println!(
                        "CRLs of {}: {} CA(s), {} updated, {} unchanged, {} failed, {} without CRL URL",
                        d.display(),
                        c.cas,
                        c.updated,
                        c.unchanged,
                        c.failed,
                        c.skipped
                    );
                    if c.failed > 0 {
                        outcome = Outcome::Partial;
                    }
                }
                Err(e) => {
                    eprintln!("warning: CRL refresh of {}: {e}", d.display());
                    outcome = Outcome::Partial;
                }
            }
        }
        // The units follow the configuration just written: the paths each
        // sandboxed job may write, and exactly the timers of the enabled
        // components.
        let loaded = config::load(&self.config_path)?;
        match crate::systemd::apply(&self.root, &loaded, self.root == Path::new("/")) {
            Ok(r) => {
                if !r.enabled.is_empty() {
                    println!("timers enabled: {}", r.enabled.join(", "));
                }
                if !r.disabled.is_empty() {
                    println!("timers disabled: {}", r.disabled.join(", "));
                }
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
            }
            Err(e) => {
                eprintln!("warning: the units could not follow the configuration: {e:#}");
                outcome = Outcome::Partial;
            }
        }
        let stamp = format!(
            "configured by appliance configure {} at {}\n",
            env!("CARGO_PKG_VERSION"),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        write_owned(&self.marker, stamp.as_bytes(), 0o644, Owner::Appliance)
            .with_context(|| format!("writing the marker {}", self.marker.display()))?;
        println!("configured: {}", self.marker.display());
        if crate::systemd::banner::remove(&self.root)? {
            println!("removed the first-boot banner (\"not configured yet\")");
        }
        Ok(outcome)
    }
}

/// The terminal's settings, restored after an interrupted prompt (echo
/// back on, cursor shown).
pub struct TermState(Option<libc::termios>);

impl TermState {
    /// Save the settings of stdin.
    pub fn save() -> TermState {
        // SAFETY: tcgetattr writes into the struct we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                TermState(Some(t))
            } else {
                TermState(None)
            }
        }
    }

    /// Put them back.
    pub fn restore(&self) {
        if let Some(t) = &self.0 {
            // SAFETY: a termios read by tcgetattr for the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
        eprint!("\x1b[?25h");
    }
}

/// Read `rel` from the config drive `dev` (mounted read-only on a private
/// directory for the read).
pub fn read_config_drive_device(dev: &Path, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let mnt = tempfile::tempdir()?;
    let st = std::process::Command::new("mount")
        .args(["-o", "ro"])
        .arg(dev)
        .arg(mnt.path())
        .status()?;
    if !st.success() {
        anyhow::bail!("cannot mount the config drive {}", dev.display());
    }
    let r = std::fs::read(mnt.path().join(rel));
    let _ = std::process::Command::new("umount")
        .arg(mnt.path())
        .status();
    match r {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}
