//! The I/O of `appliance migrate`: read the configuration and the state,
//! plan (pure, [`super::plan_config`] and [`super::plan_state`]), and
//! switch: backup, staging, journal, atomic operations.
//!
//! Order of a run:
//! 1. Read `appliance.yaml` (any schema) for `paths.state` and
//!    `paths.image-data` (defaults when there is no file).
//! 2. Survey: the journal of an interrupted run, the config's version, the
//!    state's stamp and view; plan. Anything newer than this release, an
//!    unreadable stamp or a config that is not YAML stops the run here,
//!    with nothing touched (exit 2). Nothing to do: say so and stop
//!    (no lock, no file written). `--dry-run`: show the diff and stop.
//! 3. Take `<state>/migrate/lock`; finish an interrupted run's journal;
//!    survey again under the lock.
//! 4. Backup: the old content of every file to be written, and the list of
//!    renames, under `<state>/backups/<timestamp>/` (`migration.json`,
//!    written last, marks it complete).
//! 5. Stage the new contents in `<state>/migrate/staged/`, write the
//!    journal `<state>/migrate/journal.json`: state renames, state files,
//!    the state's stamp, then the configuration — the configuration last,
//!    so a configuration at the new schema means the state switch is done.
//! 6. Carry the journal out ([`super::journal`]), remove it, remove the
//!    staging; check the migrated configuration as `config check` does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::journal::{self, Ended, Journal, Old, Op, Phase};
use super::report::{unified, ConfigReport, Outcome, Report, StateReport};
use super::view::{Loc, Root, StateOp, StateView};
use super::{plan_config, plan_state, ConfigPlan, PlanError, StatePlan};
use crate::config::yaml::{Document, Layout, ScalarKind};
use crate::config::Paths;
use crate::exit::UsageError;
use crate::state::schema::{self as stamp, JOURNAL_FILE, STAMP_FILE, STATE_SCHEMA_VERSION};

/// Files larger than this are listed in the view without their content.
const SMALL: u64 = 4 << 20;

/// Whether a step reads this file's content (every other file is only
/// listed, so the view stays small whatever the state holds): the image
/// cache's indexes.
fn content_wanted(loc: &Loc) -> bool {
    loc.root == Root::ImageData && loc.name() == "index.json"
}

/// What `appliance migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `appliance.yaml`.
    pub config: PathBuf,
    /// Only show what would change.
    pub dry_run: bool,
}

/// Where the state lives, from the configuration (any schema) or the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// `paths.state`.
    pub state: PathBuf,
    /// `paths.image-data`.
    pub image_data: PathBuf,
}

impl Places {
    /// `paths.state` and `paths.image-data` of a configuration document
    /// (absolute paths only; the defaults otherwise).
    pub fn of(doc: Option<&Document>) -> Places {
        let d = Paths::default();
        let get = |key: &str, default: PathBuf| {
            doc.and_then(|doc| doc.scalar(&["paths", key]))
                .filter(|(k, _)| *k == ScalarKind::Str)
                .map(|(_, t)| PathBuf::from(t))
                .filter(|p| p.is_absolute())
                .unwrap_or(default)
        };
        Places {
            state: get("state", d.state),
            image_data: get("image-data", d.image_data),
        }
    }

    fn path(&self, loc: &Loc) -> PathBuf {
        match loc.root {
            Root::State => self.state.join(&loc.rel),
            Root::ImageData => self.image_data.join(&loc.rel),
        }
    }

    fn journal(&self) -> PathBuf {
        self.state.join(JOURNAL_FILE)
    }
}

/// Everything read, and the plans.
struct Survey {
    config_path: PathBuf,
    places: Places,
    config_text: Option<String>,
    config: Option<ConfigPlan>,
    stamp: Option<u64>,
    view: StateView,
    state: StatePlan,
    pending: Option<Journal>,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn read_config(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| usage(format!("{}: not UTF-8 text", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(usage(format!("cannot read {}: {e}", path.display()))),
    }
}

fn survey(opts: &Options) -> anyhow::Result<Survey> {
    let config_text = read_config(&opts.config)?;
    let in_file = |e: PlanError| usage(format!("{}: {e}", opts.config.display()));
    let doc = match &config_text {
        Some(t) => Some(Document::parse(t).map_err(|e| {
            in_file(PlanError::Syntax {
                line: e.mark.line,
                column: e.mark.column,
                message: e.message,
            })
        })?),
        None => None,
    };
    let places = Places::of(doc.as_ref());
    let pending = journal::load(&places.journal()).map_err(usage)?;
    let config = match &config_text {
        Some(t) => Some(plan_config(t).map_err(in_file)?),
        None => None,
    };
    let stamp = stamp::read(&places.state).map_err(usage)?;
    let view = read_view(&places).context("reading the state")?;
    let state =
        plan_state(stamp, &view).map_err(|e| usage(format!("{}: {e}", places.state.display())))?;
    Ok(Survey {
        config_path: opts.config.clone(),
        places,
        config_text,
        config,
        stamp,
        view,
        state,
        pending,
    })
}

impl Survey {
    fn config_changes(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.text.is_some())
    }

    /// Whether the state needs a change (a fresh state directory that
    /// exists needs its stamp; one that does not exist needs nothing).
    fn state_changes(&self) -> bool {
        match self.state.from {
            // Fresh: stamped when the directory exists, or is about to
            // (the configuration's switch keeps its backup there).
            None => self.places.state.is_dir() || self.config_changes(),
            Some(v) => v != self.state.to,
        }
    }

    fn is_current(&self) -> bool {
        self.pending.is_none() && !self.config_changes() && !self.state_changes()
    }

    fn report(&self, outcome: Outcome) -> Report {
        let c = self.config.as_ref();
        let changed = self.config_changes();
        let state_changed = self.state_changes();
        let renamed = self
            .state
            .ops
            .iter()
            .filter(|o| matches!(o, StateOp::Rename { .. }))
            .count();
        let fresh = self.stamp.is_none() && self.state.from.is_none();
        Report {
            outcome,
            release: env!("CARGO_PKG_VERSION"),
            config: ConfigReport {
                path: self.config_path.clone(),
                exists: self.config_text.is_some(),
                found: c.map(|c| c.from),
                version: c.map(|c| c.to),
                changed,
                layout: c.filter(|_| changed).map(|c| match &c.layout {
                    Layout::Kept => "kept".to_string(),
                    Layout::Rewritten(why) => format!("rewritten: {why}"),
                }),
                changes: c.map(|c| c.notes.clone()).unwrap_or_default(),
            },
            state: StateReport {
                path: self.places.state.clone(),
                image_data: self.places.image_data.clone(),
                found: self.stamp,
                fresh,
                version: (state_changed || self.stamp.is_some()).then_some(self.state.to),
                changed: state_changed,
                renamed,
                written: self.state.ops.len() - renamed + usize::from(state_changed),
                changes: self.state.notes.clone(),
            },
            backup: None,
            finished_interrupted: None,
            failure: None,
            diff: None,
            check: Vec::new(),
        }
    }

    /// The unified diff of everything the run would write, and its renames.
    fn diff(&self) -> String {
        let mut out = String::new();
        if let (
            Some(old),
            Some(ConfigPlan {
                text: Some(new), ..
            }),
        ) = (&self.config_text, &self.config)
        {
            let name = self.config_path.display().to_string();
            out.push_str(&unified(&name, &name, old, new));
        }
        for op in &self.state.ops {
            match op {
                StateOp::Rename { from, to } => {
                    out.push_str(&format!("rename {} -> {}\n", from.display(), to.display()));
                }
                StateOp::Put { loc, bytes } => {
                    let old = self
                        .view
                        .read(loc)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    let name = loc.display();
                    out.push_str(&unified(
                        &name,
                        &name,
                        &old,
                        &String::from_utf8_lossy(bytes),
                    ));
                }
            }
        }
        if self.state_changes() {
            let name = Loc::new(Root::State, STAMP_FILE).display();
            out.push_str(&unified(
                "/dev/null",
                &name,
                "",
                &stamp::render(STATE_SCHEMA_VERSION),
            ));
        }
        out
    }
}

/// Read the state view: every regular file below `paths.state` (but the
/// backups, the migration's own files and the stamp) and, in the image
/// cache, the files of each subscription directory and of its `.partial/`;
/// the content of the small files a step reads ([`content_wanted`]).
pub fn read_view(places: &Places) -> std::io::Result<StateView> {
    let mut view = StateView::default();
    walk(&places.state, "", Root::State, &mut view)?;
    walk(&places.image_data, "", Root::ImageData, &mut view)?;
    Ok(view)
}

fn walk(dir: &Path, rel: &str, root: Root, view: &mut StateView) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // not UTF-8: no step of ours names such a file
        };
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if root == Root::State
            && rel.is_empty()
            && matches!(name.as_str(), "backups" | "migrate" | STAMP_FILE)
        {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            // The cache: its subscription directories and their `.partial/`.
            let descend = match root {
                Root::State => true,
                Root::ImageData if rel.is_empty() => !name.starts_with('.'),
                Root::ImageData => !rel.contains('/') && name == ".partial",
            };
            if descend {
                walk(&entry.path(), &child, root, view)?;
            }
        } else if ft.is_file() {
            let loc = Loc::new(root, child);
            let content = if content_wanted(&loc) && entry.metadata()?.len() <= SMALL {
                Some(std::fs::read(entry.path())?)
            } else {
                None
            };
            view.insert(loc, content);
        }
    }
    Ok(())
}

/// Run `appliance migrate`. `now` names the backup.
pub fn run(opts: &Options, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let first = survey(opts)?;
    if first.is_current() {
        return Ok(first.report(Outcome::UpToDate));
    }
    if opts.dry_run {
        let mut r = first.report(Outcome::DryRun);
        if let Some(j) = &first.pending {
            r.finished_interrupted = Some(format!(
                "pending: the journal of a run started {} will be carried out ({:?}) first",
                j.started, j.phase
            ));
        }
        r.diff = Some(first.diff());
        return Ok(r);
    }
    let places = first.places.clone();
    std::fs::create_dir_all(places.state.join("migrate"))
        .with_context(|| format!("creating {}", places.state.join("migrate").display()))?;
    let _lock = crate::state::RunLock::acquire(&places.state.join("migrate/lock"))?;

    let mut finished = None;
    if let Some(j) = journal::load(&places.journal()).map_err(usage)? {
        let phase = j.phase;
        tracing::warn!(started = %j.started, phase = ?phase, "finishing an interrupted migration");
        match journal::carry_out(&places.journal(), j)? {
            Ended::Done => finished = Some("forward".to_string()),
            Ended::RolledBack { failure } => {
                finished = Some(format!("rollback of: {failure}"));
            }
        }
        let _ = std::fs::remove_dir_all(places.state.join("migrate/staged"));
    }

    let s = survey(opts)?;
    if s.places != places {
        // The interrupted run changed where the state is: start again.
        anyhow::bail!("paths.state or paths.image-data changed while finishing an interrupted migration; run `appliance migrate` again");
    }
    if s.is_current() {
        let mut r = s.report(Outcome::UpToDate);
        r.finished_interrupted = finished;
        return Ok(r);
    }
    if !s.config_changes() && s.state.from.is_none() {
        // A fresh state directory: only its stamp.
        journal::write_durable(
            &places.state.join(STAMP_FILE),
            stamp::render(STATE_SCHEMA_VERSION).as_bytes(),
            None,
            0o644,
        )
        .with_context(|| format!("stamping {}", places.state.display()))?;
        tracing::debug!(state = %places.state.display(), "fresh state stamped");
        let mut r = s.report(Outcome::Initialised);
        r.finished_interrupted = finished;
        return Ok(r);
    }
    let mut r = switch(opts, &s, now)?;
    r.finished_interrupted = finished;
    Ok(r)
}

/// A new directory `<state>/backups/<timestamp>[-n]`, mode 0700.
fn backup_dir(state: &Path, now: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let base = state.join("backups");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    for n in 1..1000 {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(
                    &dir,
                    <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
                )?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!("{}: too many backups named {stamp}", base.display())
}

/// A file to write: where, its new content, and its name in the backup.
struct Write {
    path: PathBuf,
    bytes: Vec<u8>,
    label: String,
}

fn switch(opts: &Options, s: &Survey, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let places = &s.places;
    // The operations, in order: state renames and writes as the steps gave
    // them, the stamp, the configuration last.
    let mut plan: Vec<Result<(PathBuf, PathBuf), Write>> = Vec::new();
    for op in &s.state.ops {
        match op {
            StateOp::Rename { from, to } => plan.push(Ok((places.path(from), places.path(to)))),
            StateOp::Put { loc, bytes } => plan.push(Err(Write {
                path: places.path(loc),
                bytes: bytes.clone(),
                label: format!(
                    "{}/{}",
                    match loc.root {
                        Root::State => "state",
                        Root::ImageData => "image-data",
                    },
                    loc.rel
                ),
            })),
        }
    }
    if s.state_changes() {
        plan.push(Err(Write {
            path: places.state.join(STAMP_FILE),
            bytes: stamp::render(STATE_SCHEMA_VERSION).into_bytes(),
            label: format!("state/{STAMP_FILE}"),
        }));
    }
    if let Some(ConfigPlan { text: Some(t), .. }) = &s.config {
        // A symlinked configuration (e.g. into a git checkout) is written
        // where it points, and stays a symlink.
        let path = match std::fs::symlink_metadata(&opts.config) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&opts.config)
                .with_context(|| format!("resolving {}", opts.config.display()))?,
            _ => opts.config.clone(),
        };
        let name = opts
            .config
            .file_name()
            .map_or("appliance.yaml".into(), |n| {
                n.to_string_lossy().into_owned()
            });
        plan.push(Err(Write {
            path,
            bytes: t.clone().into_bytes(),
            label: format!("config/{name}"),
        }));
    }

    let backup = backup_dir(&places.state, now)?;
    let staged_dir = places.state.join("migrate/staged");
    let _ = std::fs::remove_dir_all(&staged_dir);
    std::fs::create_dir_all(&staged_dir)
        .with_context(|| format!("creating {}", staged_dir.display()))?;
    let mut ops = Vec::new();
    let mut renames = Vec::new();
    for (i, p) in plan.into_iter().enumerate() {
        match p {
            Ok((from, to)) => {
                renames.push((from.clone(), to.clone()));
                ops.push(Op::Rename { from, to });
            }
            Err(w) => {
                let old = match std::fs::read(&w.path) {
                    Ok(bytes) => {
                        let copy = backup.join(&w.label);
                        if let Some(dir) = copy.parent() {
                            std::fs::create_dir_all(dir)?;
                        }
                        journal::write_durable(&copy, &bytes, None, 0o600)
                            .with_context(|| format!("backing up {}", w.path.display()))?;
                        Some(Old {
                            backup: copy,
                            sha256: journal::sha256_hex(&bytes),
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading {}", w.path.display()))
                    }
                };
                let staged = staged_dir.join(format!("{i:06}"));
                journal::write_durable(&staged, &w.bytes, None, 0o600)
                    .with_context(|| format!("staging {}", staged.display()))?;
                ops.push(Op::Put {
                    path: w.path,
                    staged,
                    sha256: journal::sha256_hex(&w.bytes),
                    old,
                });
            }
        }
    }
    let mut summary = Vec::new();
    if let Some(c) = s.config.as_ref().filter(|_| s.config_changes()) {
        summary.push(format!(
            "config {}: {} -> {}",
            opts.config.display(),
            c.from,
            c.to
        ));
    }
    if s.state_changes() {
        summary.push(format!(
            "state {}: {} -> {}",
            places.state.display(),
            s.state.from.map_or("fresh".into(), |v| v.to_string()),
            s.state.to
        ));
    }
    // The backup's manifest, last: its presence says the backup is whole.
    let manifest = serde_json::json!({
        "release": env!("CARGO_PKG_VERSION"),
        "started": now.to_rfc3339(),
        "summary": summary,
        "config": opts.config,
        "state": places.state,
        "image-data": places.image_data,
        "renames": renames.iter().map(|(f, t)| [f, t]).collect::<Vec<_>>(),
        "restore": "copy config/* and state/* and image-data/* back to their places, and undo the renames (to -> from)",
    });
    journal::write_durable(
        &backup.join("migration.json"),
        &serde_json::to_vec_pretty(&manifest)?,
        None,
        0o600,
    )?;
    journal::sync_dir(&backup)?;

    let j = Journal {
        format: journal::FORMAT,
        release: env!("CARGO_PKG_VERSION").into(),
        started: now.to_rfc3339(),
        phase: Phase::Forward,
        failure: None,
        backup: backup.clone(),
        summary,
        ops,
    };
    journal::save(&places.journal(), &j)
        .with_context(|| format!("writing {}", places.journal().display()))?;
    let ended = journal::carry_out(&places.journal(), j)?;
    let _ = std::fs::remove_dir_all(&staged_dir);

    let mut r = s.report(Outcome::Migrated);
    r.backup = Some(backup);
    match ended {
        Ended::Done => {
            if s.config_changes() {
                r.check = check(&opts.config);
            }
        }
        Ended::RolledBack { failure } => {
            r.outcome = Outcome::RolledBack;
            r.failure = Some(failure);
            r.config.version = r.config.found;
            r.state.version = r.state.found;
        }
    }
    Ok(r)
}

/// The problems `config check` reports for the migrated file.
fn check(path: &Path) -> Vec<String> {
    match crate::config::load(path) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_come_from_the_config_of_any_schema() {
        let doc =
            Document::parse("schema-version: 1\npaths:\n  state: /srv/s\n  image-data: rel\n")
                .unwrap();
        let p = Places::of(Some(&doc));
        assert_eq!(p.state, PathBuf::from("/srv/s"));
        assert_eq!(p.image_data, PathBuf::from("/image_data"));
        assert_eq!(
            Places::of(None).state,
            PathBuf::from("/var/lib/fedcloud-appliance")
        );
    }

    #[test]
    fn the_view_skips_the_migrations_own_files_and_large_contents() {
        let d = tempfile::tempdir().unwrap();
        let places = Places {
            state: d.path().join("state"),
            image_data: d.path().join("img"),
        };
        for f in [
            "state/schema-version",
            "state/backups/x/appliance.yaml",
            "state/migrate/lock",
            "state/accounting/lastrun.p",
            "img/list/index.json",
            "img/list/k_1",
            "img/list/.partial/k_1",
            "img/list/deep/er/file",
            "img/.hidden/x",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "{}").unwrap();
        }
        let v = read_view(&places).unwrap();
        let all: Vec<String> = v
            .under(Root::State, "")
            .chain(v.under(Root::ImageData, ""))
            .map(Loc::display)
            .collect();
        assert_eq!(
            all,
            [
                "state:accounting/lastrun.p",
                "image-data:list/.partial/k_1",
                "image-data:list/index.json",
                "image-data:list/k_1",
            ]
        );
        assert_eq!(
            v.read(&Loc::new(Root::ImageData, "list/index.json")),
            Some(&b"{}"[..])
        );
        assert_eq!(v.read(&Loc::new(Root::State, "accounting/lastrun.p")), None);
    }
}
