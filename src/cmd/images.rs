//! `appliance images sync|list|verify` (issue #3): glue between the
//! configuration, the OpenStack client and [`crate::images`].

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::config::{self, Loaded};
use crate::exit::{Outcome, UsageError};
use crate::images::cache::{self, Index};
use crate::images::fetch::{Fetcher, Limits, Place};
use crate::images::format::Format;
use crate::images::glance::MemberProject;
use crate::images::harbor::HarborSource;
use crate::images::legacy;
use crate::images::sync::{self, Context, GlanceAccess, RegistrySource, RunReport, Source};
use crate::images::text::shown;
use crate::openstack::{access::ProjectRef, image, OpenStack, Session};

/// `appliance images ...`
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Synchronise subscribed image lists and registries into Glance.
    Sync(SyncArgs),
    /// What is subscribed, cached and in Glance.
    List(ListArgs),
    /// Fetch and check a list (or list a registry) without touching Glance.
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
    /// Accept a registry project that lists no artifacts although Glance
    /// holds images from it: they are retired. Without it such a run is
    /// refused (an outage or a robot account that lost access looks the
    /// same).
    #[arg(long)]
    pub accept_empty: bool,
    /// Try again the images the back-off stopped (failed verification or
    /// refused content, see `images list`); their failure counts restart.
    #[arg(long)]
    pub retry_failed: bool,
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

/// One subscription of any kind, owned.
#[allow(clippy::large_enum_variant)] // a handful, short-lived
enum Owned {
    /// A signed image list.
    List(Source),
    /// A Harbor registry.
    Registry(Box<RegistrySource>),
}

/// A subscription and the project ids (atrope vo_map) it is shared with.
struct Entry {
    source: Owned,
    extra: Vec<String>,
    /// Defined in the site configuration (its `vos` are configured VOs;
    /// a legacy file's VOs come through `extra`).
    configured: bool,
}

impl Entry {
    fn feed(&self) -> sync::Feed<'_> {
        match &self.source {
            Owned::List(s) => sync::Feed::List(s),
            Owned::Registry(s) => sync::Feed::Registry(s),
        }
    }
    fn name(&self) -> &str {
        self.feed().name()
    }
    fn origin(&self) -> &str {
        self.feed().origin()
    }
}

fn registry(
    ctx: &Context,
    sub: &crate::config::sections::images::HarborSubscription,
    password: Option<crate::secret::Secret>,
    origin: String,
) -> anyhow::Result<RegistrySource> {
    let harbor = HarborSource::from_config(sub, ctx.fetcher.client_for(Place::Registry), password)
        .map_err(|e| UsageError(format!("{e} ({origin})")))?;
    Ok(RegistrySource {
        sub: sub.clone(),
        harbor,
        origin,
    })
}

/// Every subscription: the configuration's, then legacy files (only
/// `only`, when given). Records every subscription's name in
/// `ctx.subscriptions` (images of those are never adopted by another).
fn sources(
    loaded: &Loaded,
    ctx: &mut Context,
    only: Option<&str>,
) -> anyhow::Result<(Vec<Entry>, Vec<String>)> {
    let sec = &loaded.config.images;
    let here = loaded.source.display().to_string();
    let mut out: Vec<Entry> = sec
        .subscriptions
        .iter()
        .map(|s| Entry {
            source: Owned::List(Source {
                sub: s.clone(),
                token: loaded.image_list_token(&s.name),
                origin: here.clone(),
            }),
            extra: Vec::new(),
            configured: true,
        })
        .collect();
    for h in &sec.harbor {
        out.push(Entry {
            source: Owned::Registry(Box::new(registry(
                ctx,
                h,
                loaded.image_source_password(&h.name),
                here.clone(),
            )?)),
            extra: Vec::new(),
            configured: true,
        });
    }
    let mut problems = Vec::new();
    if let Some(path) = &sec.legacy.atrope_sources {
        let vo_map = match &sec.legacy.atrope_vo_map {
            Some(m) => legacy::atrope_vo_map(m).map_err(UsageError)?,
            None => BTreeMap::new(),
        };
        let got = legacy::atrope_sources(path, &vo_map).map_err(UsageError)?;
        problems.extend(got.problems);
        let origin = path.display().to_string();
        for s in got.lists {
            out.push(Entry {
                source: Owned::List(Source {
                    sub: s.sub,
                    token: s.token,
                    origin: origin.clone(),
                }),
                extra: s.projects,
                configured: false,
            });
        }
        for r in got.registries {
            out.push(Entry {
                source: Owned::Registry(Box::new(registry(
                    ctx,
                    &r.sub,
                    r.password,
                    origin.clone(),
                )?)),
                extra: r.projects,
                configured: false,
            });
        }
    }
    if let (Some(path), Some(e)) = (
        &sec.legacy.cloudkeeper_image_lists,
        &sec.legacy.cloudkeeper_endorser,
    ) {
        for s in legacy::cloudkeeper_lists(path, e).map_err(UsageError)? {
            out.push(Entry {
                source: Owned::List(Source {
                    sub: s.sub,
                    token: s.token,
                    origin: path.display().to_string(),
                }),
                extra: s.projects,
                configured: false,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &out {
        if !seen.insert(e.name().to_string()) {
            return Err(UsageError(format!(
                "image subscription `{}` is defined twice ({})",
                e.name(),
                e.origin()
            ))
            .into());
        }
    }
    ctx.subscriptions = seen;
    if let Some(name) = only {
        let names: Vec<String> = out.iter().map(|e| e.name().to_string()).collect();
        out.retain(|e| e.name() == name);
        if out.is_empty() {
            return Err(UsageError(format!(
                "no image subscription named `{name}` (known: {})",
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
    let fetcher = Fetcher::with_allow_http(
        Some(&c.paths.ca_dir),
        Limits::from_transfer(&c.images.transfer),
        c.images.allow_http,
    )
    .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    Ok(Context {
        now: chrono::Utc::now(),
        image_data: c.paths.image_data.clone(),
        state_dir: c.paths.state.clone(),
        ca_dir: c.paths.ca_dir.clone(),
        section: c.images.clone(),
        formats,
        fetcher,
        subscriptions: Default::default(),
        retry_failed: false,
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

/// The member projects of a subscription: its VOs' projects, plus project
/// ids from atrope's vo_map.
async fn members(loaded: &Loaded, os: &OpenStack, e: &Entry) -> anyhow::Result<Vec<MemberProject>> {
    let mut out = Vec::new();
    let vos = if e.configured { e.feed().vos() } else { &[] };
    for vo_name in vos {
        let vo = loaded
            .vos()
            .iter()
            .find(|v| &v.name == vo_name)
            .ok_or_else(|| {
                UsageError(format!(
                    "subscription `{}` shares with VO `{vo_name}`, which is not in `vos`",
                    e.name()
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
    for id in &e.extra {
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
    let mut ctx = context(loaded)?;
    ctx.retry_failed = a.retry_failed;
    let (srcs, problems) = sources(loaded, &mut ctx, a.source.as_deref())?;
    // The configuration and the subscriptions are read: systemd may count
    // the run as started (Type=notify; the watchdog runs from here).
    crate::progress::ready();
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
    if !a.dry_run {
        reclaim_at_start(&ctx, &srcs);
    }
    for p in &problems {
        tracing::warn!("{p}");
    }
    if ctx.section.relax != Default::default() {
        tracing::warn!(relax = ?ctx.section.relax, "image-list trust is relaxed by configuration (images.relax)");
    }
    if ctx.section.allow_http.any() {
        tracing::warn!(allow_http = ?ctx.section.allow_http, "plain http is allowed for some image downloads (images.allow-http)");
    }
    if a.download_only {
        let mut reports = Vec::new();
        for e in &srcs {
            reports.push(match &e.source {
                Owned::List(s) => sync::cache_source(&ctx, s).await,
                Owned::Registry(s) => sync::cache_registry(&ctx, s).await,
            });
        }
        return Ok(finish(g, &ctx, reports, problems, false));
    }
    let (os, owner) = owner_session(loaded).await?;
    let mut reports = Vec::new();
    for e in &srcs {
        let mut access = GlanceAccess {
            owner: owner.clone(),
            members: BTreeMap::new(),
        };
        if e.feed().enabled() {
            match members(loaded, &os, e).await {
                Ok(m) => {
                    access.members.insert(e.name().to_string(), m);
                }
                Err(err) if err.downcast_ref::<UsageError>().is_some() => return Err(err),
                Err(err) => {
                    let mut r = sync::SourceReport::named(e.name(), e.origin());
                    r.status = "failed";
                    r.failure = Some(sync::Failure {
                        stage: "glance",
                        error: crate::images::text::shown(&format!("{err:#}")).into_owned(),
                        remedy: "check the VO's credential and projects; nothing was changed"
                            .into(),
                    });
                    r.last_good = ctx.last_good(e.name());
                    r.last_listing = ctx.last_listing(e.name());
                    reports.push(r);
                    continue;
                }
            }
        }
        reports.push(match &e.source {
            Owned::List(s) => sync::sync_source(&ctx, &access, s, a.dry_run).await,
            Owned::Registry(s) => {
                sync::sync_registry(&ctx, &access, s, a.dry_run, a.accept_empty).await
            }
        });
    }
    Ok(finish(g, &ctx, reports, problems, a.dry_run))
}

/// Remove what killed syncs left (the temporaries of atomic writes whose
/// writer is gone): in the list, listing and back-off state, and in the
/// cache of every source this run serves (its index).
fn reclaim_at_start(ctx: &Context, srcs: &[Entry]) {
    let state = ctx.state_dir.join("images");
    for kind in ["lists", "registries", "backoff"] {
        crate::state::reclaim_at_start(&state.join(kind));
    }
    for e in srcs {
        crate::state::reclaim_at_start(&ctx.image_data.join(e.name()));
    }
}

/// The outcome of a run over sources with these statuses: 0 when every
/// source is fine (or disabled), 3 when every enabled source failed
/// before changing anything (nothing could be done), else 1 (partial).
fn outcome<'a>(statuses: impl Iterator<Item = &'a str> + Clone) -> Outcome {
    let enabled = statuses.filter(|s| *s != "disabled");
    if enabled.clone().all(|s| s == "ok") {
        Outcome::Success
    } else if enabled.clone().all(|s| s == "failed") {
        Outcome::Error
    } else {
        Outcome::Partial
    }
}

/// Print the run report; the outcome ([`outcome`]).
fn finish(
    g: &GlobalArgs,
    ctx: &Context,
    reports: Vec<sync::SourceReport>,
    problems: Vec<String>,
    dry_run: bool,
) -> Outcome {
    let out = outcome(reports.iter().map(|r| r.status));
    let dropped = reports.iter().map(|r| r.dropped.len()).sum();
    let report = RunReport {
        ok: out == Outcome::Success,
        dry_run,
        started: ctx.now,
        dropped,
        sources: reports,
        problems,
    };
    let (summary, detail) = crate::status::images::run_detail(&report);
    crate::state::runs::note_summary(summary);
    crate::state::runs::note_detail(detail);
    let failed = report.sources.iter().filter(|r| r.status != "ok").count();
    crate::progress::finished(&format!(
        "done: {} source(s), {failed} not ok",
        report.sources.len()
    ));
    print_report(g, &report);
    out
}

/// `p1 (3 artifacts), p2 (0 artifacts)`.
fn projects_text(p: &BTreeMap<String, usize>) -> String {
    p.iter()
        .map(|(k, n)| format!("{} ({n} artifacts)", shown(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warning lines of dropped entries (`  warning: dropped entry 3 (id): why`).
fn print_dropped(dropped: &[sync::Dropped]) {
    for d in dropped {
        println!("  warning: dropped {}", shown(&d.line()));
    }
}

fn print_report(g: &GlobalArgs, r: &RunReport) {
    if g.json {
        println!("{}", serde_json::to_string_pretty(r).expect("report JSON"));
        return;
    }
    for s in &r.sources {
        let head = match (&s.list, &s.registry) {
            (Some(l), _) => format!(
                "{} ({}): {} — list {} version {}, {} image(s), expires {}",
                s.name, s.origin, s.status, l.identifier, l.version, l.images, l.expires
            ),
            (None, Some(r)) => format!(
                "{} ({}): {} — registry {}, {} image(s) from {}",
                s.name,
                s.origin,
                s.status,
                r.registry,
                r.images,
                projects_text(&r.projects)
            ),
            (None, None) => format!("{} ({}): {}", s.name, s.origin, s.status),
        };
        println!("{}", shown(&head));
        for w in &s.warnings {
            println!("  warning: {}", shown(w));
        }
        print_dropped(&s.dropped);
        if let Some(f) = &s.failure {
            println!("  {} failed: {}", f.stage, shown(&f.error));
            println!("  remedy: {}", f.remedy);
            if let Some(lg) = &s.last_good {
                println!(
                    "  last good list kept: version {} fetched {}",
                    shown(&lg.version),
                    lg.fetched_at
                );
            }
            if let Some(l) = &s.last_listing {
                println!(
                    "  last good listing kept: {} image(s) listed {}",
                    l.images, l.fetched_at
                );
            }
        }
        for i in &s.images {
            let id = i.glance_id.as_deref().unwrap_or("-");
            match &i.error {
                None => println!("  {} {} (glance {id})", i.action, shown(&i.appdb_id)),
                Some(e) => {
                    println!("  {} {} FAILED: {}", i.action, shown(&i.appdb_id), shown(e));
                    if let Some(rm) = &i.remedy {
                        println!("    remedy: {rm}");
                    }
                }
            }
        }
    }
    for p in &r.problems {
        println!("warning: {}", shown(p));
    }
    if r.dropped > 0 {
        println!(
            "warning: {} entr{} dropped (unsafe, malformed, duplicate or expired); see above",
            r.dropped,
            if r.dropped == 1 { "y" } else { "ies" }
        );
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
    registry: Option<sync::RegistryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<sync::Failure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// Entries that a sync would not synchronise (unsafe, malformed,
    /// duplicate, expired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped: Vec<sync::Dropped>,
}

async fn verify_cmd(g: &GlobalArgs, loaded: &Loaded, a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let mut ctx = context(loaded)?;
    let (srcs, problems) = sources(loaded, &mut ctx, a.name.as_deref())?;
    for p in &problems {
        tracing::warn!("{p}");
    }
    let mut out = Vec::new();
    for e in &srcs {
        let mut r = VerifyReport {
            name: e.name().to_string(),
            ok: false,
            list: None,
            registry: None,
            failure: None,
            warnings: Vec::new(),
            dropped: Vec::new(),
        };
        match &e.source {
            Owned::List(s) => match sync::check(&ctx, s).await {
                Ok(acc) => {
                    r.ok = true;
                    r.list = Some(acc.info());
                    r.warnings = acc.warnings;
                    r.dropped = acc.dropped;
                }
                Err(f) => r.failure = Some(f),
            },
            Owned::Registry(s) => match sync::list_registry(&ctx, s).await {
                Ok(l) => {
                    r.ok = true;
                    r.registry = Some(l.info);
                    r.dropped = l.dropped;
                }
                Err(f) => r.failure = Some(f),
            },
        }
        for d in &r.dropped {
            tracing::warn!(source = %r.name, entry = d.entry, image = %d.identifier, reason = %d.reason, "entry dropped");
        }
        out.push(r);
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    } else {
        for r in &out {
            let ok = if r.dropped.is_empty() {
                "ok".to_string()
            } else {
                format!(
                    "ok, {} entr{} dropped",
                    r.dropped.len(),
                    if r.dropped.len() == 1 { "y" } else { "ies" }
                )
            };
            match (&r.list, &r.registry, &r.failure) {
                (Some(l), _, _) => println!(
                    "{}",
                    shown(&format!(
                        "{}: {ok} — list {} version {}, {} image(s), signed by {} ({}), {:?}",
                        r.name,
                        l.identifier,
                        l.version,
                        l.images,
                        l.signer,
                        l.signer_ca,
                        l.freshness
                    ))
                ),
                (None, Some(l), _) => {
                    println!(
                        "{}",
                        shown(&format!(
                            "{}: {ok} — registry {}, {} image(s) from {}",
                            r.name,
                            l.registry,
                            l.images,
                            projects_text(&l.projects)
                        ))
                    );
                    for s in &l.skipped {
                        println!("  left out {}", shown(s));
                    }
                }
                (None, None, Some(f)) => {
                    println!("{}: {} failed: {}", r.name, f.stage, shown(&f.error));
                    println!("  remedy: {}", f.remedy);
                }
                _ => {}
            }
            for w in &r.warnings {
                println!("  warning: {}", shown(w));
            }
            print_dropped(&r.dropped);
        }
        for p in &problems {
            println!("warning: {}", shown(p));
        }
    }
    Ok(outcome(
        out.iter().map(|r| if r.ok { "ok" } else { "failed" }),
    ))
}

#[derive(Debug, Serialize)]
struct ListEntry {
    name: String,
    kind: &'static str,
    origin: String,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_good: Option<crate::images::policy::LastGood>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_listing: Option<sync::LastListing>,
    cached: Vec<String>,
    /// Images the back-off tracks (failed verification or refused content).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    backoff: BTreeMap<String, crate::images::backoff::Record>,
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
    let mut ctx = context(loaded)?;
    let (srcs, _) = sources(loaded, &mut ctx, None)?;
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
    for e in &srcs {
        let name = e.name();
        let dir = ctx.image_data.join(name);
        out.push(ListEntry {
            name: name.to_string(),
            kind: match e.source {
                Owned::List(_) => "image-list",
                Owned::Registry(_) => "harbor",
            },
            origin: e.origin().to_string(),
            enabled: e.feed().enabled(),
            last_good: ctx.last_good(name),
            last_listing: ctx.last_listing(name),
            cached: Index::load(&dir).names(),
            backoff: ctx.backoff(name).images,
            glance: glance_images
                .iter()
                .filter(|i| i.property("image_list") == Some(name))
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
            let last = match (&e.last_good, &e.last_listing) {
                (Some(l), _) => format!("version {} fetched {}", l.version, l.fetched_at),
                (None, Some(l)) => format!("{} image(s) listed {}", l.images, l.fetched_at),
                (None, None) => "none".into(),
            };
            println!(
                "{} ({}, {}){}: last good {last}",
                e.name,
                e.kind,
                e.origin,
                if e.enabled { "" } else { " [disabled]" },
            );
            for c in &e.cached {
                match cache::entry_id(c) {
                    Some(id) => println!("  cached {} ({c})", shown(&id)),
                    None => println!("  cached {c}"),
                }
            }
            for (id, b) in &e.backoff {
                println!(
                    "  {} {}: {} of {} attempt(s) failed at this version, last {}: {}",
                    if b.given_up() { "given up" } else { "failing" },
                    shown(id),
                    b.attempts,
                    b.max_attempts,
                    b.last_failed,
                    shown(&b.error)
                );
            }
            for i in &e.glance {
                println!(
                    "  glance {} {} {} {} {}",
                    i.id,
                    i.status,
                    i.visibility,
                    shown(i.appdb_id.as_deref().unwrap_or("-")),
                    shown(i.name.as_deref().unwrap_or(""))
                );
            }
        }
    }
    Ok(Outcome::Success)
}
