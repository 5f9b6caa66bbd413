//! `appliance import-legacy`: the legacy appliance's files into one
//! `appliance.yaml` plus the secrets file, its state carried over, with a
//! report of every key (spec legacy-appliance.md; domain logic in
//! [`crate::legacy`]).
//!
//! Steps: read the legacy files under `--root`; detect the layout (or take
//! `--layout`); convert; unless `--offline`, log in to Keystone with the
//! imported credential and resolve project names to ids, then convert
//! again with them; write the secrets file (0600) and `appliance.yaml`
//! (0640) atomically under `--target`; carry the state over (cASO's
//! lastrun, the outgoing spool, the host certificate); check the result as
//! `config check` would; print the report. `--dry-run` does all of it but
//! the writes.
//!
//! Exit codes: 0 everything imported and the result passes `config check`;
//! 1 written, but something needs the admin (a check error, part of the
//! state left behind); 2 no legacy appliance at `--root`, a bad argument,
//! or an existing configuration without `--force`; 3 an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;

use crate::cli::{GlobalArgs, DEFAULT_CONFIG};
use crate::config::format::{write_yaml, Out};
use crate::exit::{Outcome, UsageError};
use crate::legacy::carry::{self, Carry};
use crate::legacy::convert::{self, name_key, DomainIs, Imported, Input};
use crate::legacy::report::Report;
use crate::legacy::{detect, Layout, Snapshot};
use crate::openstack::access::{DomainRef, ProjectRef};
use crate::openstack::OpenStack;
use crate::state::{set_owner, write_atomic, Owner};

/// `appliance import-legacy` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The legacy appliance's root: `/` on the legacy VM itself, or where
    /// its disk is mounted.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The appliance's root: every file is written under it and every path
    /// in the configuration points under it (`/` on the appliance).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub target: PathBuf,
    /// Read, convert and report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `auto` (detect from the files), or the layout letter A..H.
    #[arg(long, value_name = "auto|A..H", default_value = "auto")]
    pub layout: String,
    /// The site's fedcloud-catchall-operations `sites/<site>.yaml`, checked
    /// against the legacy files (VO project ids, endpoint, region).
    #[arg(long, value_name = "FILE")]
    pub catch_all: Option<PathBuf>,
    /// Do not contact Keystone: project names stay names (their ids are
    /// found at the first run).
    #[arg(long)]
    pub offline: bool,
    /// Replace an existing configuration (the old one is kept as
    /// `<file>.<time>.bak`).
    #[arg(long)]
    pub force: bool,
}

fn render(imp: &Imported) -> (String, String) {
    let config = write_yaml(&imp.header, &imp.config);
    let secrets = write_yaml(
        "Secrets imported by `appliance import-legacy` (mode 0600). Never in appliance.yaml.",
        &imp.secrets,
    );
    (config, secrets)
}

/// The configuration text with `secrets-file` pointing at `secrets`.
fn with_secrets_file(imp: &Imported, secrets: &Path) -> String {
    let mut doc = imp.config.clone();
    if let Some(v) = doc.get_mut("secrets-file") {
        *v = Out::str(secrets.display().to_string());
    }
    write_yaml(&imp.header, &doc)
}

/// Write a copy of the result into a private temporary directory (for the
/// online resolution and for the check of a dry run).
fn scratch(imp: &Imported) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let secrets = dir.path().join("secrets.yaml");
    let (_, secrets_text) = render(imp);
    write_atomic(&secrets, secrets_text.as_bytes(), 0o600)?;
    let config = dir.path().join("appliance.yaml");
    write_atomic(&config, with_secrets_file(imp, &secrets).as_bytes(), 0o600)?;
    Ok((dir, config))
}

/// Project names -> ids, with the imported credential.
async fn resolve(imp: &Imported) -> Result<BTreeMap<String, String>, String> {
    let names = imp.plan.names();
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let (_dir, config) = scratch(imp).map_err(|e| format!("{e:#}"))?;
    let loaded = crate::config::load(&config).map_err(|e| e.to_string())?;
    let access = loaded.cloud_access().map_err(|e| format!("{e:#}"))?;
    let os = OpenStack::new(access).map_err(|e| format!("{e:#}"))?;
    let mut failed = Vec::new();
    for (name, domain) in names {
        let d = match &domain {
            DomainIs::Id(d) => DomainRef::Id(d.clone()),
            DomainIs::Name(d) => DomainRef::Name(d.clone()),
        };
        let p = ProjectRef::Name {
            name: name.clone(),
            domain: d,
        };
        match os.scoped(&p).await {
            Ok(s) => {
                if let Some(id) = s.project_id() {
                    out.insert(name_key(&name, &domain), id.to_string());
                }
            }
            Err(e) => failed.push(format!("{p}: {e}")),
        }
    }
    if !failed.is_empty() && out.is_empty() {
        return Err(failed.join("; "));
    }
    for f in failed {
        tracing::warn!(project = %f, "not resolved; kept by name");
    }
    Ok(out)
}

/// Problems `config check` finds in `config` (empty: it passes).
fn check(config: &Path) -> Vec<String> {
    match crate::config::load(config) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(String::from).collect(),
    }
}

/// Run `appliance import-legacy`.
pub async fn run(g: &GlobalArgs, args: &Args) -> anyhow::Result<Outcome> {
    let now = SystemTime::now();
    let forced = match args.layout.trim() {
        "auto" | "" => None,
        l => Some(
            Layout::parse(l)
                .ok_or_else(|| UsageError(format!("--layout {l}: expected auto or one of A..H")))?,
        ),
    };
    let root = &args.root;
    if !root.is_dir() {
        return Err(UsageError(format!("--root {}: not a directory", root.display())).into());
    }
    let snap = Snapshot::read(root);
    let detected = detect(&snap);
    let (layout, evidence, mut doubts) = match (forced, detected) {
        (Some(l), Some(d)) => {
            let mut doubts = crate::legacy::layout::confirm(&snap, l);
            if d.layout != l {
                doubts.push(format!(
                    "the files look like layout {} ({})",
                    d.layout.letter(),
                    d.evidence.join(", ")
                ));
            }
            (l, vec![format!("--layout {}", l.letter())], doubts)
        }
        (Some(l), None) => (
            l,
            vec![format!("--layout {}", l.letter())],
            crate::legacy::layout::confirm(&snap, l),
        ),
        (None, Some(d)) => (d.layout, d.evidence, d.doubts),
        (None, None) => {
            return Err(UsageError(format!(
                "no legacy FedCloud appliance under {}: none of /etc/egi/defaults, /etc/cloudkeeper-os, /etc/cloudkeeper/cloudkeeper-os.conf with /etc/voms.json, /etc/atrope exists there{}. Point --root at the legacy system's root, or name its layout with --layout",
                root.display(),
                if snap.has(crate::legacy::snapshot::CASO_CONF) { " (only /etc/caso/caso.conf)" } else { "" }
            ))
            .into())
        }
    };
    for (f, why) in &snap.unreadable {
        doubts.push(format!("{f}: {why}"));
    }
    let catch_all = match &args.catch_all {
        Some(p) => Some((
            p.display().to_string(),
            std::fs::read_to_string(p)
                .map_err(|e| UsageError(format!("--catch-all {}: {e}", p.display())))?,
        )),
        None => None,
    };
    let empty = BTreeMap::new();
    let input = |resolved| Input {
        snap: &snap,
        layout,
        target: &args.target,
        catch_all: catch_all.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
        resolved,
    };
    let mut imp = convert::convert(&input(&empty));
    let mut resolution_note = None;
    let resolved;
    if !args.offline && !imp.plan.names().is_empty() {
        match resolve(&imp).await {
            Ok(r) => {
                resolution_note = Some(format!(
                    "{} project name(s) resolved to ids with the imported credential",
                    r.len()
                ));
                resolved = r;
                imp = convert::convert(&input(&resolved));
            }
            Err(e) => {
                resolution_note = Some(format!(
                    "project names not resolved online ({e}): they stay names; their ids are found at the first run"
                ));
            }
        }
    }

    let config_path = if g.config == Path::new(DEFAULT_CONFIG) {
        imp.plan.paths.config.clone()
    } else {
        g.config.clone()
    };
    let secrets_path = imp.plan.paths.secrets.clone();
    if config_path.exists() && !args.force && !args.dry_run {
        return Err(UsageError(format!(
            "{} exists: import-legacy does not overwrite a configuration (add --force to replace it; the old one is kept as a .bak)",
            config_path.display()
        ))
        .into());
    }
    let (config_text, secrets_text) = render(&imp);
    let mut written = vec![
        config_path.display().to_string(),
        secrets_path.display().to_string(),
    ];
    let check_result = if args.dry_run {
        let (dir, cfg) = scratch(&imp)?;
        check(&cfg)
            .into_iter()
            .map(|l| {
                l.replace(
                    &cfg.display().to_string(),
                    &config_path.display().to_string(),
                )
                .replace(
                    &dir.path().join("secrets.yaml").display().to_string(),
                    &secrets_path.display().to_string(),
                )
            })
            .collect()
    } else {
        if config_path.exists() {
            let stamp = chrono::DateTime::<chrono::Utc>::from(now).format("%Y%m%dT%H%M%SZ");
            let bak = PathBuf::from(format!("{}.{stamp}.bak", config_path.display()));
            std::fs::rename(&config_path, &bak).with_context(|| {
                format!("keeping {} as {}", config_path.display(), bak.display())
            })?;
            written.push(format!("{} (the previous configuration)", bak.display()));
        }
        write_atomic(&secrets_path, secrets_text.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", secrets_path.display()))?;
        set_owner(&secrets_path, Owner::User)
            .with_context(|| format!("chown {}", secrets_path.display()))?;
        write_atomic(&config_path, config_text.as_bytes(), 0o640)
            .with_context(|| format!("writing {}", config_path.display()))?;
        set_owner(&config_path, Owner::RootGroup)
            .with_context(|| format!("chown {}", config_path.display()))?;
        tracing::info!(config = %config_path.display(), secrets = %secrets_path.display(), "configuration written");
        check(&config_path)
    };

    let (mut state, carried) = carry::carry(
        &imp.plan,
        Carry {
            root,
            dry_run: args.dry_run,
            now,
        },
    );
    if let Some(n) = resolution_note {
        state.notes.insert(0, n);
    }
    let mut report = Report {
        root: root.display().to_string(),
        layout: layout.letter().to_string(),
        releases: layout.releases().to_string(),
        evidence,
        doubts,
        dry_run: args.dry_run,
        files: imp.ledger.finish(),
        state,
        written,
        check: check_result,
        conflicts: 0,
        never_configured: 0,
    };
    report.tally();
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(if report.check.is_empty() && carried {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
