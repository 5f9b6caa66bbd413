//! `appliance accounting extract` (issue #4): cASO's job, per project,
//! never losing a window (spec accounting.md §1, §8).
//!
//! For every VO project of the configuration (or `--project`), concurrently
//! (bounded by `accounting.concurrency`): scope a token, find the project's
//! VO (`accounting.vo-source`), take its window `[lastrun | cASO's lastrun |
//! first-run, now]` (or `--from/--to`), read Nova servers changed in the
//! window (deleted included) plus the live ones, flavors (embedded from
//! compute 2.47, else looked up), Glance image MPURIs, Keystone user names,
//! Cinder volumes and Neutron floating IPs, map them to records
//! ([`accounting::project_records`]), render messages and add them to the
//! dirq spool (each fsynced). Only when every message of the project is in
//! the spool does its lastrun move to the window end; a project that failed
//! anywhere keeps its lastrun and is retried next run (exit code 1).
//! `--from/--to` re-extract a past window and never move a lastrun.
//! One global run lock (`<state>/accounting/extract.lock`).
//!
//! Speed (the hot path of a site with 10 000+ servers): within a project
//! every independent call runs at once (both server listings, Cinder,
//! Neutron, the VO); servers are decoded straight into typed structs
//! ([`compute::servers_lean`]); Keystone user names and Glance MPURIs are
//! looked up once per run, not per project ([`Lookups`]); VOs without a
//! credential of their own share one client; the spool's fsyncs run on the
//! blocking pool, all messages of a project at once, so the filesystem
//! commits them together.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use crate::accounting::{
    self, render_all, BatchLimits, FlavorSpec, MappingOptions, Message, MessageKind, ProjectFacts,
    Record, Site, Window,
};
use crate::cli::GlobalArgs;
use crate::config::sections::accounting::{RecordType, Section, VoSource};
use crate::config::{self, Loaded};
use crate::exit::{Outcome, UsageError};
use crate::openstack::{
    self, access::ProjectRef, compute, identity, image, network, volume, OpenStack,
};
use crate::spool::{self, QueueSimple, SystemClock};
use crate::state::lastrun::{self, LastRunStore, Origin};
use crate::state::RunLock;

/// The Glance property with the AppDB MPURI (cASO `ImageId`).
const MPURI_PROPERTY: &str = "vmcatcher_event_ad_mpuri";
/// From this compute microversion servers embed their flavor.
const EMBEDDED_FLAVOR_MICROVERSION: &str = "2.47";
/// Keystone user and Glance image lookups in flight per project.
const LOOKUP_CONCURRENCY: usize = 8;

/// Options of `appliance accounting extract`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this project (id or name as in the configuration); repeatable.
    #[arg(long, value_name = "PROJECT")]
    pub project: Vec<String>,
    /// Window start (e.g. `2024-05-01` or `2024-05-01T10:00:00Z`; no zone
    /// means UTC). Re-extracts a past window: lastrun files are not moved.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Window end (default now; later than now is cut to now). VMs that
    /// ended after it are reported as running, as cASO does. With `--to`,
    /// lastrun files are not moved.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Extract and render, but write nothing (no spool, no lastrun).
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    lastrun::parse(s).ok_or_else(|| {
        format!("`{s}` is not a time; write e.g. 2024-05-01 or 2024-05-01T10:00:00Z")
    })
}

/// How many records of each type.
#[derive(Debug, Default, Serialize, Clone, Copy)]
struct Counts {
    cloud: usize,
    ip: usize,
    accelerator: usize,
    storage: usize,
}

/// The `--json` report of one project.
#[derive(Debug, Serialize)]
struct ProjectReport {
    /// As configured.
    project: String,
    /// Resolved id (after scoping).
    id: Option<String>,
    name: Option<String>,
    vo: Option<String>,
    ok: bool,
    error: Option<String>,
    from: Option<String>,
    to: String,
    /// `ours`, `caso`, `first-run` or `explicit`.
    from_source: Option<&'static str>,
    records: Counts,
    messages: usize,
    spooled: Vec<String>,
    lastrun_advanced: bool,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    dry_run: bool,
    spool: String,
    to: String,
    projects: Vec<ProjectReport>,
}

/// What every project job shares.
struct Shared {
    section: Section,
    site: Site,
    limits: BatchLimits,
    store: LastRunStore,
    spool: Option<Arc<QueueSimple>>,
    voms: Option<HashMap<String, String>>,
    now: DateTime<Utc>,
    to: DateTime<Utc>,
    explicit_from: Option<DateTime<Utc>>,
    explicit: bool,
    /// Whether Nova embeds flavors (asked once per run).
    embedded: OnceCell<bool>,
    /// Glance image id -> `vmcatcher_event_ad_mpuri`, for the whole run.
    images: Lookups,
    /// Keystone user id -> name, for the whole run.
    users: Lookups,
}

/// Answers shared by every project of a run (Keystone user names, Glance
/// image MPURIs): one request per key, however many projects ask, and
/// concurrent askers wait for the first. Only answers are kept: a 403 or
/// 404 (not visible from this project's scope) is `None` for the asker and
/// asked again by the next project; any other error fails the asking
/// project and is not kept either.
#[derive(Default)]
struct Lookups {
    cells: Mutex<HashMap<String, Arc<OnceCell<Option<String>>>>>,
}

/// Why a lookup has no answer to keep.
enum Miss {
    /// 403/404: not visible from this scope.
    Hidden,
    /// Anything else.
    Failed(openstack::Error),
}

impl Lookups {
    async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<Option<String>, openstack::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<String>, openstack::Error>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells.entry(key.to_string()).or_default().clone()
        };
        let got = cell
            .get_or_try_init(|| async {
                match fetch().await {
                    Ok(v) => Ok(v),
                    Err(openstack::Error::NotFound { .. } | openstack::Error::Forbidden { .. }) => {
                        Err(Miss::Hidden)
                    }
                    Err(e) => Err(Miss::Failed(e)),
                }
            })
            .await;
        match got {
            Ok(v) => Ok(v.clone()),
            Err(Miss::Hidden) => Ok(None),
            Err(Miss::Failed(e)) => Err(e),
        }
    }

    /// Answers for `keys` (at most [`LOOKUP_CONCURRENCY`] requests at once).
    async fn get_all<'k, F, Fut>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
        fetch: F,
    ) -> Result<HashMap<String, Option<String>>, (String, openstack::Error)>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Option<String>, openstack::Error>>,
    {
        stream::iter(keys)
            .map(|k| {
                let fetch = &fetch;
                async move {
                    self.get(k, || fetch(k.to_string()))
                        .await
                        .map(|v| (k.to_string(), v))
                        .map_err(|e| (k.to_string(), e))
                }
            })
            .buffer_unordered(LOOKUP_CONCURRENCY)
            .try_collect()
            .await
    }
}

struct Job {
    vo: String,
    project: ProjectRef,
    client: OpenStack,
}

/// Run it.
pub async fn run(g: &GlobalArgs, a: &Args) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    let section = loaded.config.accounting.clone();
    let site = site_of(&loaded)?;
    let limits = BatchLimits::new(section.max_records_per_message, section.max_message_bytes)
        .map_err(|e| UsageError(format!("accounting batch limits: {e}")))?;
    let now = Utc::now();
    let mut to = a.to.unwrap_or(now);
    if to > now {
        tracing::warn!(to = %to, now = %now, "--to is in the future: the window ends now");
        to = now;
    }
    if let Some(from) = a.from {
        if from > to {
            return Err(UsageError(format!(
                "--from {} is after the window end {}",
                lastrun::format(&from),
                lastrun::format(&to)
            ))
            .into());
        }
    }
    let state_dir = loaded.config.paths.state.join("accounting");
    let spool_path: PathBuf = section
        .spool
        .clone()
        .unwrap_or_else(|| loaded.config.paths.spool.clone());
    let voms = match (section.vo_source, &section.voms_json) {
        (VoSource::VomsJson, Some(path)) => Some(read_voms_json(path)?),
        _ => None,
    };

    // The run lock, then the spool: nothing is written before both.
    let _lock = if a.dry_run {
        None
    } else {
        Some(
            RunLock::acquire(&state_dir.join("extract.lock"))
                .context("taking the accounting run lock")?,
        )
    };
    let spool = if a.dry_run {
        None
    } else {
        let q = QueueSimple::open(&spool_path, spool::Options::default())
            .with_context(|| format!("opening the spool {}", spool_path.display()))?;
        reclaim(&q, &state_dir)?;
        Some(Arc::new(q))
    };

    let mut jobs = Vec::new();
    // VOs without a credential of their own share the site's client (one
    // TLS setup, one connection pool, one unscoped token).
    let mut site_client: Option<OpenStack> = None;
    for vo in loaded.vos() {
        let client = match (&vo.auth, &site_client) {
            (None, Some(c)) => c.clone(),
            (None, None) => {
                let c = OpenStack::new(loaded.cloud_access()?)
                    .context("building the OpenStack client for the site")?;
                site_client = Some(c.clone());
                c
            }
            (Some(_), _) => OpenStack::new(loaded.vo_access(vo)?)
                .with_context(|| format!("building the OpenStack client for VO {}", vo.name))?,
        };
        for project in &vo.projects {
            if !a.project.is_empty() && !a.project.iter().any(|p| matches_project(project, p)) {
                continue;
            }
            jobs.push(Job {
                vo: vo.name.clone(),
                project: project.clone(),
                client: client.clone(),
            });
        }
    }
    if jobs.is_empty() {
        return Err(UsageError(if a.project.is_empty() {
            "no VO projects in the configuration: nothing to account".to_string()
        } else {
            format!(
                "--project {}: no such project under `vos` in the configuration",
                a.project.join(", ")
            )
        })
        .into());
    }

    let shared = Arc::new(Shared {
        store: LastRunStore::new(&state_dir, Some(section.caso_spool_dir.clone())),
        section,
        site,
        limits,
        spool,
        voms,
        now,
        to,
        explicit_from: a.from,
        explicit: a.from.is_some() || a.to.is_some(),
        embedded: OnceCell::new(),
        images: Lookups::default(),
        users: Lookups::default(),
    });
    let concurrency = shared.section.concurrency;
    crate::progress::projects_planned(jobs.len());
    let mut projects: Vec<ProjectReport> = stream::iter(jobs)
        .map(|job| {
            let shared = shared.clone();
            async move { extract_project(&shared, job).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    projects.sort_by(|a, b| a.project.cmp(&b.project));

    let ok = projects.iter().all(|p| p.ok);
    let any_ok = projects.iter().any(|p| p.ok);
    crate::progress::finished(&format!(
        "done: {} of {} projects extracted",
        projects.iter().filter(|p| p.ok).count(),
        projects.len()
    ));
    let report = Report {
        ok,
        dry_run: a.dry_run,
        spool: spool_path.display().to_string(),
        to: lastrun::format(&to),
        projects,
    };
    crate::state::runs::note_summary(format!(
        "{} project(s), {} failed; {} message(s) spooled",
        report.projects.len(),
        report.projects.iter().filter(|p| !p.ok).count(),
        report.projects.iter().map(|p| p.messages).sum::<usize>()
    ));
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(match (ok, any_ok) {
        (true, _) => Outcome::Success,
        (false, true) => Outcome::Partial,
        (false, false) => Outcome::Error,
    })
}

/// `SiteName` / `CloudComputeService` from the configuration.
fn site_of(loaded: &Loaded) -> anyhow::Result<Site> {
    let c = &loaded.config;
    let name = c
        .accounting
        .site_name
        .clone()
        .or_else(|| {
            c.site
                .catch_all
                .as_ref()
                .and_then(|ca| ca.accounting_site_name.clone())
        })
        .unwrap_or_else(|| c.site.gocdb.clone());
    let service = c
        .accounting
        .service_name
        .clone()
        .unwrap_or_else(|| name.clone());
    Site::new(&name, &service).map_err(|e| {
        UsageError(format!(
            "{}: the accounting site name: {e}; set `accounting.site-name`",
            loaded.source.display()
        ))
        .into()
    })
}

fn matches_project(project: &ProjectRef, wanted: &str) -> bool {
    match project {
        ProjectRef::Id(id) => id == wanted,
        ProjectRef::Name { name, .. } => name == wanted,
    }
}

/// With the run lock held: remove what a killed run of ours left, the
/// spool temporaries of dead writers of ours and the `.tmp-*` files of
/// `lastrun` writes (dirq's temporaries of other writers keep their 300 s).
fn reclaim(spool: &QueueSimple, state_dir: &std::path::Path) -> anyhow::Result<()> {
    let removed = spool
        .reclaim_temporaries()
        .context("removing the spool temporaries of a killed run")?;
    for f in &removed {
        tracing::info!(file = %f.display(), "temporary of a killed run removed");
    }
    crate::state::reclaim_at_start(state_dir);
    Ok(())
}

/// A legacy cASO `voms.json`: `{"<vo>": {"projects": [..]}}` (`tenant` and
/// `tenants` are cASO's deprecated aliases) -> project (id or name) -> VO.
pub fn parse_voms_json(text: &str) -> Result<HashMap<String, String>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let obj = v
        .as_object()
        .ok_or("the top level is not an object of VOs")?;
    let mut out = HashMap::new();
    for (vo, entry) in obj {
        accounting::check_vo_name(vo).map_err(|e| e.to_string())?;
        let mut add = |p: &serde_json::Value| {
            if let Some(p) = p.as_str() {
                out.insert(p.to_string(), vo.clone());
            }
        };
        for key in ["projects", "tenants"] {
            if let Some(list) = entry.get(key).and_then(|l| l.as_array()) {
                list.iter().for_each(&mut add);
            }
        }
        if let Some(t) = entry.get("tenant") {
            add(t);
        }
    }
    Ok(out)
}

fn read_voms_json(path: &std::path::Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "{}: {e} (accounting.vo-source is voms-json)",
            path.display()
        ))
    })?;
    parse_voms_json(&text).map_err(|e| {
        UsageError(format!(
            "{}: not a cASO voms.json: {e} (expected {{\"<vo>\": {{\"projects\": [\"<project id or name>\"]}}}})",
            path.display()
        ))
        .into()
    })
}

fn has(section: &Section, t: RecordType) -> bool {
    section.record_types.contains(&t)
}

/// One project, end to end. Never panics on bad data; any failure leaves
/// the project's lastrun where it was.
async fn extract_project(shared: &Shared, job: Job) -> ProjectReport {
    let mut report = ProjectReport {
        project: job.project.to_string(),
        id: None,
        name: None,
        vo: None,
        ok: false,
        error: None,
        from: None,
        to: lastrun::format(&shared.to),
        from_source: None,
        records: Counts::default(),
        messages: 0,
        spooled: Vec::new(),
        lastrun_advanced: false,
        warnings: Vec::new(),
    };
    crate::progress::project_started(&report.project);
    let span = tracing::info_span!("project", project = %job.project, vo = %job.vo);
    let result = extract_inner(shared, &job, &mut report)
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    match result {
        Ok(()) => {
            report.ok = true;
            tracing::info!(
                cloud = report.records.cloud,
                ip = report.records.ip,
                accelerator = report.records.accelerator,
                storage = report.records.storage,
                messages = report.messages,
                "project extracted"
            );
        }
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!(error = %msg, "project not extracted; its lastrun is unchanged");
            report.error = Some(msg);
        }
    }
    crate::progress::project_finished(&report.project, report.ok);
    report
}

async fn extract_inner(
    shared: &Shared,
    job: &Job,
    report: &mut ProjectReport,
) -> anyhow::Result<()> {
    let session = job
        .client
        .scoped(&job.project)
        .await
        .context("scoping a token to the project")?;
    let project_id = session
        .project_id()
        .map(str::to_string)
        .unwrap_or_else(|| job.project.to_string());
    let project_name = session.project().and_then(|p| p.name.clone());
    report.id = Some(project_id.clone());
    report.name.clone_from(&project_name);

    // The window.
    let (from, source) = match shared.explicit_from {
        Some(f) => (f, "explicit"),
        None => match shared
            .store
            .get(&project_id, project_name.as_deref())
            .context("reading the project's lastrun")?
        {
            Some(l) => (
                l.at,
                match l.origin {
                    Origin::Ours(_) => "ours",
                    Origin::Caso(_) => "caso",
                },
            ),
            None => (shared.section.first_run.start(shared.now), "first-run"),
        },
    };
    report.from = Some(lastrun::format(&from));
    report.from_source = Some(source);
    let window = Window::new(from, shared.to).map_err(|_| {
        anyhow::anyhow!(
            "the project's window starts ({}, from {source}) after it ends ({}): a lastrun in the future? \
             Check the clock; the lastrun is left as is",
            lastrun::format(&from),
            lastrun::format(&shared.to)
        )
    })?;

    // Everything independent at once: the VO, Nova, Cinder, Neutron.
    let (vo, servers, volumes, floating_ips) = tokio::try_join!(
        project_vo(shared, job, &session, &project_id, project_name.as_deref()),
        project_servers(shared, &session, &window),
        async {
            if !has(&shared.section, RecordType::Storage) {
                return Ok(Ok(Vec::new()));
            }
            optional_service(
                volume::volumes(&session, &volume::VolumeQuery::default()).await,
                "block-storage",
            )
            .context("listing Cinder volumes")
        },
        async {
            if !has(&shared.section, RecordType::Ip) {
                return Ok(Ok(Vec::new()));
            }
            let q = network::FloatingIpQuery {
                project_id: Some(project_id.clone()),
                ..Default::default()
            };
            optional_service(network::floating_ips(&session, &q).await, "network")
                .context("listing Neutron floating IPs")
        },
    )?;
    report.vo = Some(vo.clone());
    let volumes = volumes.unwrap_or_else(|w| {
        report.warnings.push(w);
        Vec::new()
    });
    let floating_ips = floating_ips.unwrap_or_else(|w| {
        report.warnings.push(w);
        Vec::new()
    });

    // Flavors (only for servers that do not embed theirs: Nova < 2.47),
    // Glance MPURIs and Keystone user names, at once.
    let need_flavors = servers
        .iter()
        .any(|s| FlavorSpec::from_embedded(&s.flavor).is_none());
    let image_ids: HashSet<&str> = servers.iter().filter_map(|s| s.image_id()).collect();
    let user_ids: HashSet<&str> = servers
        .iter()
        .map(|s| s.user_id.as_str())
        .chain(volumes.iter().filter_map(|v| v.user_id.as_deref()))
        .filter(|u| !u.is_empty())
        .collect();
    let (flavors, images, users) = tokio::try_join!(
        async {
            let mut flavors = HashMap::new();
            if need_flavors {
                let q = compute::FlavorQuery::default();
                for f in compute::flavors(&session, &q)
                    .await
                    .context("listing Nova flavors")?
                {
                    flavors.insert(f.id.clone(), FlavorSpec::from_flavor(&f));
                }
            }
            Ok::<_, anyhow::Error>(flavors)
        },
        async {
            shared
                .images
                .get_all(image_ids.iter().copied(), |id| {
                    let session = &session;
                    async move {
                        image::image(session, &id)
                            .await
                            .map(|img| img.property(MPURI_PROPERTY).map(str::to_string))
                    }
                })
                .await
                .map_err(|(id, e)| {
                    anyhow::Error::new(e).context(format!("reading Glance image {id}"))
                })
        },
        async {
            // cASO: no system reader role -> no GlobalUserName.
            shared
                .users
                .get_all(user_ids.iter().copied(), |id| {
                    let session = &session;
                    async move { identity::user(session, &id).await.map(|u| Some(u.name)) }
                })
                .await
                .map_err(|(id, e)| {
                    anyhow::Error::new(e).context(format!("reading Keystone user {id}"))
                })
        },
    )?;

    // Records and messages.
    let opts = MappingOptions {
        site: shared.site.clone(),
        benchmark_type_key: shared.section.benchmark_type_key.clone(),
        benchmark_value_key: shared.section.benchmark_value_key.clone(),
        cloud: has(&shared.section, RecordType::Cloud),
        ip: has(&shared.section, RecordType::Ip),
        accelerator: has(&shared.section, RecordType::Accelerator),
        storage: has(&shared.section, RecordType::Storage),
    };
    let facts = ProjectFacts {
        project_id: &project_id,
        vo: &vo,
        servers: &servers,
        flavors: &flavors,
        images: &images,
        users: &users,
        volumes: &volumes,
        floating_ips: &floating_ips,
    };
    let mapped = accounting::project_records(&facts, &opts, &window, Utc::now(), &mut || {
        rand::random::<[u8; 16]>()
    });
    drop(servers);
    for w in &mapped.warnings {
        tracing::warn!(warning = %w, "odd input");
        report.warnings.push(w.to_string());
    }
    for r in &mapped.records {
        match r {
            Record::Cloud(_) => report.records.cloud += 1,
            Record::Ip(_) => report.records.ip += 1,
            Record::Accelerator(_) => report.records.accelerator += 1,
            Record::Storage(_) => report.records.storage += 1,
        }
    }
    let messages =
        render_all(&mapped.records, &shared.limits).context("rendering APEL messages")?;
    drop(mapped);
    report.messages = messages.len();

    // The spool, then the lastrun: in that order, or not at all.
    let Some(spool) = &shared.spool else {
        return Ok(()); // dry run
    };
    report.spooled = spool_messages(spool, messages).await?;
    if !shared.explicit {
        let store = shared.store.clone();
        let (id, to) = (project_id.clone(), window.to());
        report.lastrun_advanced = tokio::task::spawn_blocking(move || store.advance(&id, to))
            .await
            .context("recording the project's lastrun")?
            .context("recording the project's lastrun")?;
    }
    Ok(())
}

/// The project's VO (`accounting.vo-source`).
async fn project_vo(
    shared: &Shared,
    job: &Job,
    session: &openstack::Session,
    project_id: &str,
    project_name: Option<&str>,
) -> anyhow::Result<String> {
    Ok(match shared.section.vo_source {
        VoSource::Config => job.vo.clone(),
        VoSource::Property => {
            let key = &shared.section.vo_property;
            let p = identity::project(session, project_id)
                .await
                .context("reading the project from Keystone for its VO property")?;
            match p.property(key).map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => {
                    accounting::check_vo_name(v).map_err(|e| {
                        anyhow::anyhow!(
                            "project {project_id}: Keystone property `{key}`: {e}; {}",
                            accounting::vo::VO_NAME_RULE
                        )
                    })?;
                    v.to_string()
                }
                None => anyhow::bail!(
                    "project {project_id} has no VO: Keystone property `{key}` is not set; set it with \
                     `openstack project set --property {key}=<vo> {project_id}` (or use accounting.vo-source: config)"
                ),
            }
        }
        VoSource::VomsJson => {
            let map = shared.voms.as_ref().expect("voms.json read at start");
            match map
                .get(project_id)
                .or_else(|| project_name.and_then(|n| map.get(n)))
            {
                Some(v) => v.clone(),
                None => anyhow::bail!(
                    "project {project_id} has no VO: it is not listed in {} (accounting.voms-json)",
                    shared
                        .section
                        .voms_json
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            }
        }
    })
}

/// Nova servers changed in the window (deleted included: `changes-since`)
/// and the live ones (a server untouched since before the window does not
/// show in `changes-since`), both listings at once; duplicates are left to
/// the mapping (first listing wins). With compute >= 2.47 each server
/// embeds its flavor (even one deleted since).
async fn project_servers(
    shared: &Shared,
    session: &openstack::Session,
    window: &Window,
) -> anyhow::Result<Vec<compute::Server>> {
    if !has(&shared.section, RecordType::Cloud) && !has(&shared.section, RecordType::Accelerator) {
        return Ok(Vec::new());
    }
    let embedded = *shared
        .embedded
        .get_or_try_init(|| async {
            let v = compute::version(session).await?;
            Ok::<bool, openstack::Error>(
                openstack::parse_microversion(&v.version)
                    >= openstack::parse_microversion(EMBEDDED_FLAVOR_MICROVERSION),
            )
        })
        .await
        .context("reading Nova's API version")?;
    let mv = embedded.then(|| EMBEDDED_FLAVOR_MICROVERSION.to_string());
    let changed = compute::ServerQuery {
        changes_since: Some(window.from()),
        microversion: mv.clone(),
        ..Default::default()
    };
    let live = compute::ServerQuery {
        microversion: mv,
        ..Default::default()
    };
    let (mut changed, live) = tokio::try_join!(
        compute::servers_lean(session, &changed),
        compute::servers_lean(session, &live)
    )
    .context("listing Nova servers")?;
    changed.extend(live);
    Ok(changed)
}

/// Adds every message to the spool, all at once on the blocking pool (each
/// add fsyncs; concurrent fsyncs are committed together), and waits for all
/// of them. Their names, in message order; the first failure otherwise (the
/// others are still waited for, so nothing is left being written).
async fn spool_messages(
    spool: &Arc<QueueSimple>,
    messages: Vec<Message>,
) -> anyhow::Result<Vec<String>> {
    let tasks = messages.into_iter().map(|m| {
        let spool = spool.clone();
        tokio::task::spawn_blocking(move || {
            spool
                .add(&m.body, &SystemClock)
                .with_context(|| format!("adding a {} message to the spool", kind_name(m.kind)))
        })
    });
    let mut names = Vec::new();
    let mut first_error = None;
    for r in futures::future::join_all(tasks).await {
        match r.map_err(anyhow::Error::new).and_then(|r| r) {
            Ok(name) => names.push(name.to_string()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(names),
    }
}

fn kind_name(k: MessageKind) -> String {
    k.to_string()
}

/// A listing from a service the site may not run: a missing catalog entry
/// is `Ok(Err(warning))` (no such records), anything else an error.
fn optional_service<T>(
    r: Result<Vec<T>, openstack::Error>,
    service: &str,
) -> Result<Result<Vec<T>, String>, openstack::Error> {
    match r {
        Err(openstack::Error::Catalog { .. }) => {
            let w = format!("no {service} endpoint in the catalog: no records from it");
            tracing::warn!(service, "{w}");
            Ok(Err(w))
        }
        Err(e) => Err(e),
        Ok(v) => Ok(Ok(v)),
    }
}

fn print_human(report: &Report) {
    let mode = if report.dry_run { " (dry run)" } else { "" };
    println!("accounting extract up to {}{mode}", report.to);
    for p in &report.projects {
        let id = p.id.as_deref().unwrap_or(&p.project);
        let name = p.name.as_deref().unwrap_or("");
        let vo = p.vo.as_deref().unwrap_or("-");
        if p.ok {
            println!(
                "OK    {id} {name} [{vo}] from {} ({}): cloud {}, ip {}, accelerator {}, storage {} in {} messages{}",
                p.from.as_deref().unwrap_or("-"),
                p.from_source.unwrap_or("-"),
                p.records.cloud,
                p.records.ip,
                p.records.accelerator,
                p.records.storage,
                p.messages,
                if p.lastrun_advanced { "; lastrun advanced" } else { "" },
            );
        } else {
            println!("FAIL  {id} {name} [{vo}]: lastrun unchanged");
            if let Some(e) = &p.error {
                println!("      {e}");
            }
        }
        for w in &p.warnings {
            println!("      warning: {w}");
        }
    }
    println!("spool: {}", report.spool);
    println!(
        "{}",
        if report.ok {
            "all projects extracted"
        } else {
            "some projects FAILED (retried next run)"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voms_json_forms() {
        let m = parse_voms_json(
            r#"{"vo.a": {"projects": ["p1", "alpha"]}, "ops": {"tenant": "ops"}, "vo.b": {"tenants": ["p3"]}}"#,
        )
        .unwrap();
        let mut got: Vec<_> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("alpha", "vo.a"),
                ("ops", "ops"),
                ("p1", "vo.a"),
                ("p3", "vo.b")
            ]
        );
        assert!(parse_voms_json("[]").is_err());
        let e = parse_voms_json(r#"{"vo.a": {"projects": ["p1"]}, "vo:b": {"projects": ["p2"]}}"#)
            .unwrap_err();
        assert!(e.contains("`vo:b` is not a VO name"), "{e}");
    }

    #[test]
    fn cli_times() {
        assert!(parse_time("2024-05-01").is_ok());
        assert!(parse_time("2024-05-01T10:00:00Z").is_ok());
        assert!(parse_time("tomorrow").is_err());
    }
}
