//! `appliance images sync|list|verify` (issue #3): glue between the
//! configuration, the OpenStack client and [`crate::images`].

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::config::{self, Loaded};
use crate::exit::{Outcome, UsageError};
use crate::images::cache::Index;
use crate::images::fetch::{Fetcher, Limits};
use crate::images::format::Format;
use crate::images::glance::MemberProject;
use crate::images::legacy;
use crate::images::sync::{self, Context, GlanceAccess, RunReport, Source};
use crate::openstack::{access::ProjectRef, image, OpenStack, Session};

/// `appliance images ...`
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Synchronise subscribed image lists into Glance.
    Sync(SyncArgs),
    /// What is subscribed, cached and in Glance.
    List(ListArgs),
    /// Fetch and check a list without touching Glance.
    Verify(VerifyArgs),
}

/// Options of `appliance images sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Only this subscription.
    #[arg(long)]
    pub source: Option<String>,
    /// Print the plan (create/update/retire/share) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only fetch and verify the lists and download and verify their images
    /// into the cache (paths.image-data); Keystone and Glance are not
    /// contacted. Pre-seeds the cache (the next sync uploads from it).
    #[arg(long, conflicts_with = "dry_run")]
    pub download_only: bool,
}

/// Options of `appliance images list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Do not query Glance.
    #[arg(long)]
    pub offline: bool,
}

/// Options of `appliance images verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only this subscription.
    pub name: Option<String>,
}

/// Run `appliance images ...`.
pub async fn run(g: &GlobalArgs, c: &ImagesCommand) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    match c {
        ImagesCommand::Sync(a) => sync_cmd(g, &loaded, a).await,
        ImagesCommand::List(a) => list_cmd(g, &loaded, a).await,
        ImagesCommand::Verify(a) => verify_cmd(g, &loaded, a).await,
    }
}

/// A source and the project ids (atrope vo_map) it is shared with.
type SourceWithProjects = (Source, Vec<String>);

/// Every source: the configuration's subscriptions, then legacy files.
fn sources(
    loaded: &Loaded,
    only: Option<&str>,
) -> anyhow::Result<(Vec<SourceWithProjects>, Vec<String>)> {
    let sec = &loaded.config.images;
    let mut out: Vec<SourceWithProjects> = sec
        .subscriptions
        .iter()
        .map(|s| {
            (
                Source {
                    sub: s.clone(),
                    token: loaded.image_list_token(&s.name),
                    origin: loaded.source.display().to_string(),
                },
                Vec::new(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    if let Some(path) = &sec.legacy.atrope_sources {
        let vo_map = match &sec.legacy.atrope_vo_map {
            Some(m) => legacy::atrope_vo_map(m).map_err(UsageError)?,
            None => BTreeMap::new(),
        };
        let (l, p) = legacy::atrope_sources(path, &vo_map).map_err(UsageError)?;
        problems.extend(p);
        for s in l {
            out.push((
                Source {
                    sub: s.sub,
                    token: s.token,
                    origin: path.display().to_string(),
                },
                s.projects,
            ));
        }
    }
    if let (Some(path), Some(e)) = (
        &sec.legacy.cloudkeeper_image_lists,
        &sec.legacy.cloudkeeper_endorser,
    ) {
        for s in legacy::cloudkeeper_lists(path, e).map_err(UsageError)? {
            out.push((
                Source {
                    sub: s.sub,
                    token: s.token,
                    origin: path.display().to_string(),
                },
                s.projects,
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (s, _) in &out {
        if !seen.insert(s.sub.name.clone()) {
            return Err(UsageError(format!(
                "image-list subscription `{}` is defined twice ({})",
                s.sub.name, s.origin
            ))
            .into());
        }
    }
    if let Some(name) = only {
        out.retain(|(s, _)| s.sub.name == name);
        if out.is_empty() {
            let names: Vec<String> = sec.subscriptions.iter().map(|s| s.name.clone()).collect();
            return Err(UsageError(format!(
                "no image-list subscription named `{name}` (known: {})",
                names.join(", ")
            ))
            .into());
        }
    }
    Ok((out, problems))
}

fn context(loaded: &Loaded) -> anyhow::Result<Context> {
    let c = &loaded.config;
    let names: Vec<String> = if c.images.formats.is_empty() {
        c.site
            .catch_all
            .as_ref()
            .map(|ca| ca.image_formats.clone())
            .unwrap_or_default()
    } else {
        c.images.formats.clone()
    };
    let formats = names.iter().filter_map(|n| Format::parse(n)).collect();
    let fetcher = Fetcher::new(Some(&c.paths.ca_dir), Limits::default())
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    Ok(Context {
        now: chrono::Utc::now(),
        image_data: c.paths.image_data.clone(),
        state_dir: c.paths.state.clone(),
        ca_dir: c.paths.ca_dir.clone(),
        section: c.images.clone(),
        formats,
        fetcher,
    })
}

async fn owner_session(loaded: &Loaded) -> anyhow::Result<(OpenStack, Session)> {
    let os = OpenStack::new(loaded.cloud_access()?)?;
    let mut s = os
        .session()
        .await
        .context("authenticating to Keystone with the site credential")?;
    if let Some(u) = &loaded.config.images.glance_endpoint {
        s = s.with_endpoint("image", u.clone());
    }
    Ok((os, s))
}

/// The member projects of a source: its VOs' projects, plus project ids
/// from atrope's vo_map.
async fn members(
    loaded: &Loaded,
    os: &OpenStack,
    src: &Source,
    extra: &[String],
) -> anyhow::Result<Vec<MemberProject>> {
    let mut out = Vec::new();
    let from_config = src.origin == loaded.source.display().to_string();
    if from_config {
        for vo_name in &src.sub.vos {
            let vo = loaded
                .vos()
                .iter()
                .find(|v| &v.name == vo_name)
                .ok_or_else(|| {
                    UsageError(format!(
                        "subscription `{}` shares with VO `{vo_name}`, which is not in `vos`",
                        src.sub.name
                    ))
                })?;
            let client = OpenStack::new(loaded.vo_access(vo)?)?;
            for p in &vo.projects {
                let mut s = client
                    .scoped(p)
                    .await
                    .with_context(|| format!("scoping to project {p} of VO {vo_name}"))?;
                if let Some(u) = &loaded.config.images.glance_endpoint {
                    s = s.with_endpoint("image", u.clone());
                }
                let id = s.project_id().unwrap_or_default().to_string();
                out.push(MemberProject {
                    id,
                    vo: vo_name.clone(),
                    session: s,
                });
            }
        }
    }
    for id in extra {
        let mut s = os
            .scoped(&ProjectRef::Id(id.clone()))
            .await
            .with_context(|| format!("scoping to project {id}"))?;
        if let Some(u) = &loaded.config.images.glance_endpoint {
            s = s.with_endpoint("image", u.clone());
        }
        out.push(MemberProject {
            id: id.clone(),
            vo: String::new(),
            session: s,
        });
    }
    Ok(out)
}

async fn sync_cmd(g: &GlobalArgs, loaded: &Loaded, a: &SyncArgs) -> anyhow::Result<Outcome> {
    let (srcs, problems) = sources(loaded, a.source.as_deref())?;
    let ctx = context(loaded)?;
    let _lock =
        match crate::state::RunLock::acquire(&ctx.state_dir.join("images").join("sync.lock")) {
            Ok(l) => l,
            Err(e @ crate::state::LockError::Busy { .. }) => {
                tracing::warn!("{e}");
                eprintln!("{e}");
                return Ok(Outcome::Partial);
            }
            Err(e) => return Err(e.into()),
        };
    for p in &problems {
        tracing::warn!("{p}");
    }
    if ctx.section.relax != Default::default() {
        tracing::warn!(relax = ?ctx.section.relax, "image-list trust is relaxed by configuration (images.relax)");
    }
    if a.download_only {
        let mut reports = Vec::new();
        for (src, _) in &srcs {
            reports.push(sync::cache_source(&ctx, src).await);
        }
        return Ok(finish(g, &ctx, reports, problems, false));
    }
    let (os, owner) = owner_session(loaded).await?;
    let mut reports = Vec::new();
    for (src, extra) in &srcs {
        let mut access = GlanceAccess {
            owner: owner.clone(),
            members: BTreeMap::new(),
        };
        if src.sub.enabled {
            match members(loaded, &os, src, extra).await {
                Ok(m) => {
                    access.members.insert(src.sub.name.clone(), m);
                }
                Err(e) if e.downcast_ref::<UsageError>().is_some() => return Err(e),
                Err(e) => {
                    let mut r = sync::SourceReport {
                        name: src.sub.name.clone(),
                        origin: src.origin.clone(),
                        status: "failed",
                        failure: Some(sync::Failure {
                            stage: "glance",
                            error: format!("{e:#}"),
                            remedy: "check the VO's credential and projects; nothing was changed"
                                .into(),
                        }),
                        list: None,
                        last_good: ctx.last_good(&src.sub.name),
                        warnings: Vec::new(),
                        images: Vec::new(),
                    };
                    r.images.clear();
                    reports.push(r);
                    continue;
                }
            }
        }
        reports.push(sync::sync_source(&ctx, &access, src, a.dry_run).await);
    }
    Ok(finish(g, &ctx, reports, problems, a.dry_run))
}

/// Print the run report; the outcome (0 when every source is fine, else 1).
fn finish(
    g: &GlobalArgs,
    ctx: &Context,
    reports: Vec<sync::SourceReport>,
    problems: Vec<String>,
    dry_run: bool,
) -> Outcome {
    let ok = reports
        .iter()
        .all(|r| matches!(r.status, "ok" | "disabled"));
    let report = RunReport {
        ok,
        dry_run,
        started: ctx.now,
        sources: reports,
        problems,
    };
    print_report(g, &report);
    if ok {
        Outcome::Success
    } else {
        Outcome::Partial
    }
}

fn print_report(g: &GlobalArgs, r: &RunReport) {
    if g.json {
        println!("{}", serde_json::to_string_pretty(r).expect("report JSON"));
        return;
    }
    for s in &r.sources {
        let head = match &s.list {
            Some(l) => format!(
                "{} ({}): {} — list {} version {}, {} image(s), expires {}",
                s.name, s.origin, s.status, l.identifier, l.version, l.images, l.expires
            ),
            None => format!("{} ({}): {}", s.name, s.origin, s.status),
        };
        println!("{head}");
        if let Some(f) = &s.failure {
            println!("  {} failed: {}", f.stage, f.error);
            println!("  remedy: {}", f.remedy);
            if let Some(lg) = &s.last_good {
                println!(
                    "  last good list kept: version {} fetched {}",
                    lg.version, lg.fetched_at
                );
            }
        }
        for i in &s.images {
            let id = i.glance_id.as_deref().unwrap_or("-");
            match &i.error {
                None => println!("  {} {} (glance {id})", i.action, i.appdb_id),
                Some(e) => {
                    println!("  {} {} FAILED: {e}", i.action, i.appdb_id);
                    if let Some(rm) = &i.remedy {
                        println!("    remedy: {rm}");
                    }
                }
            }
        }
    }
    for p in &r.problems {
        println!("warning: {p}");
    }
    if r.dry_run {
        println!("dry run: nothing was changed");
    }
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<sync::ListInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<sync::Failure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

async fn verify_cmd(g: &GlobalArgs, loaded: &Loaded, a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let (srcs, _) = sources(loaded, a.name.as_deref())?;
    let ctx = context(loaded)?;
    let mut out = Vec::new();
    for (src, _) in &srcs {
        match sync::check(&ctx, src).await {
            Ok(acc) => out.push(VerifyReport {
                name: src.sub.name.clone(),
                ok: true,
                list: Some(acc.info()),
                failure: None,
                warnings: acc.warnings,
            }),
            Err(f) => out.push(VerifyReport {
                name: src.sub.name.clone(),
                ok: false,
                list: None,
                failure: Some(f),
                warnings: Vec::new(),
            }),
        }
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    } else {
        for r in &out {
            match (&r.list, &r.failure) {
                (Some(l), _) => println!(
                    "{}: ok — list {} version {}, {} image(s), signed by {} ({}), {:?}",
                    r.name, l.identifier, l.version, l.images, l.signer, l.signer_ca, l.freshness
                ),
                (None, Some(f)) => {
                    println!("{}: {} failed: {}", r.name, f.stage, f.error);
                    println!("  remedy: {}", f.remedy);
                }
                _ => {}
            }
        }
    }
    Ok(if out.iter().all(|r| r.ok) {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

#[derive(Debug, Serialize)]
struct ListEntry {
    name: String,
    origin: String,
    enabled: bool,
    last_good: Option<crate::images::policy::LastGood>,
    cached: Vec<String>,
    glance: Vec<GlanceEntry>,
}

#[derive(Debug, Serialize)]
struct GlanceEntry {
    id: String,
    name: Option<String>,
    status: String,
    visibility: String,
    appdb_id: Option<String>,
    image_hash: Option<String>,
}

async fn list_cmd(g: &GlobalArgs, loaded: &Loaded, a: &ListArgs) -> anyhow::Result<Outcome> {
    let (srcs, _) = sources(loaded, None)?;
    let ctx = context(loaded)?;
    let glance_images = if a.offline {
        Vec::new()
    } else {
        let (_, owner) = owner_session(loaded).await?;
        image::images(
            &owner,
            &image::ImageQuery {
                tags: vec![ctx.section.tag.clone()],
                ..Default::default()
            },
        )
        .await?
    };
    let mut out = Vec::new();
    for (src, _) in &srcs {
        let dir = ctx.image_data.join(&src.sub.name);
        out.push(ListEntry {
            name: src.sub.name.clone(),
            origin: src.origin.clone(),
            enabled: src.sub.enabled,
            last_good: ctx.last_good(&src.sub.name),
            cached: Index::load(&dir).names(),
            glance: glance_images
                .iter()
                .filter(|i| i.property("image_list") == Some(src.sub.name.as_str()))
                .map(|i| GlanceEntry {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    status: i.status.clone(),
                    visibility: i.visibility.clone(),
                    appdb_id: i.property("appdb_id").map(String::from),
                    image_hash: i.property("image_hash").map(String::from),
                })
                .collect(),
        });
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    } else {
        for e in &out {
            println!(
                "{} ({}){}: last good {}",
                e.name,
                e.origin,
                if e.enabled { "" } else { " [disabled]" },
                e.last_good
                    .as_ref()
                    .map(|l| format!("version {} fetched {}", l.version, l.fetched_at))
                    .unwrap_or_else(|| "none".into())
            );
            for c in &e.cached {
                println!("  cached {c}");
            }
            for i in &e.glance {
                println!(
                    "  glance {} {} {} {} {}",
                    i.id,
                    i.status,
                    i.visibility,
                    i.appdb_id.as_deref().unwrap_or("-"),
                    i.name.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(Outcome::Success)
}
