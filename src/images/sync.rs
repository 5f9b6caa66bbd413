//! One run of image synchronisation over every source: the list state
//! machine (spec image-sync §7), downloads, and the Glance plan, with a
//! JSON report per source and image.
//!
//! Per source: fetch -> S/MIME verify -> parse -> policy (against the last
//! good list) -> plan -> apply. A source that fails before the plan changes
//! nothing in Glance; its last good list is kept and reported. An expired
//! list keeps its images (or retires them with `expired-list: remove`) and
//! is never updated. One source's failure never stops the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::config::sections::images::{
    ExpiredList, HarborSubscription, ListSource, Section, Subscription, Visibility,
};
use crate::openstack::Session;
use crate::secret::Secret;

use super::adopt;
use super::backoff::{self, Backoff};
use super::cache::Index;
use super::fetch::{Auth, FetchError, Fetcher, Place, Want};
use super::format::{self, Format};
use super::glance::{self, MemberProject, Upload};
use super::harbor;
use super::list::{self, ImageList, ListImage};
use super::plan::{self, Action, Conventions, Desired, Existing, ListMode};
use super::policy::{self, Endorser, Freshness, LastGood};
use super::smime::{self, Relax};
use super::text;

/// A subscription ready to run.
#[derive(Debug, Clone)]
pub struct Source {
    /// The subscription.
    pub sub: Subscription,
    /// Its token.
    pub token: Option<Secret>,
    /// Where it was defined (`appliance.yaml`, an atrope file, ...).
    pub origin: String,
}

/// Everything a run needs besides OpenStack.
#[derive(Debug, Clone)]
pub struct Context {
    /// The run's clock.
    pub now: DateTime<Utc>,
    /// `paths.image-data`.
    pub image_data: PathBuf,
    /// `paths.state`.
    pub state_dir: PathBuf,
    /// `paths.ca-dir`.
    pub ca_dir: PathBuf,
    /// The `images` section.
    pub section: Section,
    /// Accepted disk formats (empty: any).
    pub formats: Vec<Format>,
    /// HTTP.
    pub fetcher: Fetcher,
    /// Every subscription defined (enabled or not, of any origin): an
    /// image of one of them is never adopted by another.
    pub subscriptions: BTreeSet<String>,
    /// Try images again that the back-off stopped (`--retry-failed`).
    pub retry_failed: bool,
}

impl Context {
    fn relax(&self) -> Relax {
        Relax {
            host_cert_purpose: self.section.relax.host_cert_purpose,
            stale_crl: self.section.relax.stale_crl,
            missing_crl: self.section.relax.missing_crl,
        }
    }
    fn conventions(&self) -> Conventions {
        Conventions {
            tag: self.section.tag.clone(),
            prefix: self.section.prefix.clone(),
            cloudkeeper_properties: self.section.cloudkeeper_properties,
            min_ram_from_list: self.section.min_ram_from_list,
        }
    }
    /// `<state>/images/<kind>/<name>.json`.
    fn state_file(&self, kind: &str, name: &str) -> PathBuf {
        self.state_dir
            .join("images")
            .join(kind)
            .join(format!("{name}.json"))
    }
    fn read_state<T: serde::de::DeserializeOwned>(&self, kind: &str, name: &str) -> Option<T> {
        std::fs::read(self.state_file(kind, name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
    fn write_state<T: Serialize>(&self, kind: &str, name: &str, v: &T) -> std::io::Result<()> {
        crate::state::write_atomic(
            &self.state_file(kind, name),
            &serde_json::to_vec_pretty(v).expect("state JSON"),
            0o600,
        )
    }
    /// The last good list of `name`.
    pub fn last_good(&self, name: &str) -> Option<LastGood> {
        self.read_state("lists", name)
    }
    fn save_last_good(&self, name: &str, l: &LastGood) -> std::io::Result<()> {
        self.write_state("lists", name, l)
    }
    /// The last good listing of registry source `name`.
    pub fn last_listing(&self, name: &str) -> Option<LastListing> {
        self.read_state("registries", name)
    }
    fn save_listing(&self, name: &str, l: &LastListing) -> std::io::Result<()> {
        self.write_state("registries", name, l)
    }
    fn cache_dir(&self, list: &str) -> PathBuf {
        self.image_data.join(list)
    }
    /// The back-off state of source `name` (`<state>/images/backoff/<name>.json`).
    pub fn backoff(&self, name: &str) -> Backoff {
        self.read_state("backoff", name).unwrap_or_default()
    }
    fn save_backoff(&self, name: &str, b: &Backoff) {
        let r = if b.images.is_empty() {
            match std::fs::remove_file(self.state_file("backoff", name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            self.write_state("backoff", name, b)
        };
        if let Err(e) = r {
            tracing::warn!(source = %name, error = %e, "could not save the back-off state");
        }
    }
}

/// A failure, its text made safe to store and print.
fn failure(stage: &'static str, error: String, remedy: impl Into<String>) -> Failure {
    Failure {
        stage,
        error: text::shown(&error).into_owned(),
        remedy: remedy.into(),
    }
}

/// An entry of a source that is not synchronised because it is unsafe,
/// malformed, a duplicate or expired (not: left out by the subscription's
/// filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Position in the source, from 1 (`hv:images` of a list; 0 for a
    /// registry artifact).
    #[serde(skip_serializing_if = "is_zero")]
    pub entry: usize,
    /// Its identifier (list entries), or `<repository>@<digest>`, escaped.
    pub identifier: String,
    /// Why.
    pub reason: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Dropped {
    /// One line: `entry 3 (id): reason`.
    pub fn line(&self) -> String {
        if self.entry > 0 {
            format!(
                "entry {} ({}): {}",
                self.entry, self.identifier, self.reason
            )
        } else {
            format!("{}: {}", self.identifier, self.reason)
        }
    }
}

/// Where a source stopped.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `download`, `signature`, `parse`, `policy`, `glance`.
    pub stage: &'static str,
    /// What happened (names the list, file or request).
    pub error: String,
    /// What to do.
    pub remedy: String,
}

/// An accepted list.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The list.
    pub list: ImageList,
    /// Its signer.
    pub signer: smime::Signer,
    /// Current or expired.
    pub freshness: Freshness,
    /// The new last good record.
    pub last_good: LastGood,
    /// Warnings (relaxations).
    pub warnings: Vec<String>,
    /// Entries not synchronised: unsafe, malformed, duplicate, expired.
    pub dropped: Vec<Dropped>,
}

/// Summary of an accepted list for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ListInfo {
    /// `dc:identifier`.
    pub identifier: String,
    /// `hv:version`.
    pub version: String,
    /// `dc:date:expires`.
    pub expires: DateTime<Utc>,
    /// Signer DN.
    pub signer: String,
    /// Signer CA.
    pub signer_ca: String,
    /// Freshness.
    pub freshness: Freshness,
    /// Images in the list (well-formed entries).
    pub images: usize,
}

impl Accepted {
    /// The report view.
    pub fn info(&self) -> ListInfo {
        ListInfo {
            identifier: self.list.identifier.clone(),
            version: self.list.version.clone(),
            expires: self.list.expires,
            signer: self.signer.dn.clone(),
            signer_ca: self.signer.ca.clone(),
            freshness: self.freshness,
            images: self.list.images.len(),
        }
    }
}

/// The entries of `list` that are dropped: those the parser rejected
/// (unsafe, malformed, duplicate) and those past their own expiry, in list
/// order, numbered from 1.
fn dropped_entries(list: &ImageList, now: DateTime<Utc>) -> Vec<Dropped> {
    let mut out: Vec<Dropped> = list
        .rejected
        .iter()
        .map(|r| Dropped {
            entry: r.index + 1,
            identifier: text::shown(r.identifier.as_deref().unwrap_or("?")).into_owned(),
            reason: text::shown(&r.reason).into_owned(),
        })
        .collect();
    for img in &list.images {
        if let Some(e) = img.expires.filter(|e| *e <= now) {
            out.push(Dropped {
                entry: img.index + 1,
                identifier: img.identifier.to_string(),
                reason: format!("the image expired on {e} (dc:date:expires)"),
            });
        }
    }
    out.sort_by_key(|d| d.entry);
    out
}

/// Fetch, verify, parse and check a source's list (no Glance, no state
/// written).
pub async fn check(ctx: &Context, src: &Source) -> Result<Accepted, Failure> {
    let sub = &src.sub;
    crate::progress::source(&sub.name, crate::progress::SourceKind::List);
    let what = match &sub.source {
        ListSource::Url(u) => crate::redact::url(u),
        ListSource::File(f) => f.display().to_string(),
    };
    let body = ctx
        .fetcher
        .get_source(&sub.source, src.token.as_ref())
        .await
        .map_err(|e| failure("download", format!("list {}: {e}", sub.name), e.remedy()))?;
    let v = smime::verify(&body, &ctx.ca_dir, ctx.now, ctx.relax()).map_err(|e| {
        failure(
            "signature",
            format!("list {} ({what}): {e}", sub.name),
            e.remedy(),
        )
    })?;
    let parsed = list::parse(&v.content).map_err(|e| {
        failure(
            "parse",
            format!("list {} ({what}): {e}", sub.name),
            "the signed list is malformed; nothing was changed; report it to the list's publisher",
        )
    })?;
    let trusted = Endorser {
        dn: sub.endorser.dn.clone(),
        ca: sub.endorser.ca.clone(),
    };
    let last = ctx.last_good(&sub.name);
    let freshness = policy::check_list(&parsed, &v.signer, &trusted, last.as_ref(), ctx.now)
        .map_err(|e| {
            failure(
                "policy",
                format!("list {} ({what}): {e}", sub.name),
                e.remedy(),
            )
        })?;
    let digest = hex::encode(openssl::sha::sha512(&body));
    Ok(Accepted {
        dropped: dropped_entries(&parsed, ctx.now),
        last_good: LastGood {
            identifier: parsed.identifier.clone(),
            version: parsed.version.clone(),
            message_sha512: digest,
            expires: parsed.expires,
            fetched_at: ctx.now,
        },
        list: parsed,
        signer: v.signer,
        freshness,
        warnings: v.warnings,
    })
}

/// The report of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// `dc:identifier` (`appdb_id`).
    pub appdb_id: String,
    /// The plan step.
    pub action: String,
    /// Glance id (new or existing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glance_id: Option<String>,
    /// Done.
    pub ok: bool,
    /// Details (`resumed`, `deactivated`, members, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, serde_json::Value>,
    /// What failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// The report of one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// Subscription name.
    pub name: String,
    /// Where it was defined.
    pub origin: String,
    /// `ok`, `partial`, `failed`, `expired`, `disabled`.
    pub status: &'static str,
    /// Why it failed before touching Glance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The accepted list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<ListInfo>,
    /// The last good list kept (on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_good: Option<LastGood>,
    /// What a registry source listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryInfo>,
    /// The last good listing of a registry source (on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_listing: Option<LastListing>,
    /// Warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Entries not synchronised (unsafe, malformed, duplicate, expired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    /// Per image.
    pub images: Vec<ImageReport>,
}

impl SourceReport {
    /// An empty `ok` report of source `name`.
    pub fn named(name: &str, origin: &str) -> Self {
        SourceReport {
            name: name.to_string(),
            origin: origin.to_string(),
            status: "ok",
            failure: None,
            list: None,
            last_good: None,
            registry: None,
            last_listing: None,
            warnings: Vec::new(),
            dropped: Vec::new(),
            images: Vec::new(),
        }
    }
    fn new(src: &Source) -> Self {
        Self::named(&src.sub.name, &src.origin)
    }
}

/// How to reach Glance for a run.
#[derive(Clone)]
pub struct GlanceAccess {
    /// The owner project's session.
    pub owner: Session,
    /// Member projects per source name.
    pub members: BTreeMap<String, Vec<MemberProject>>,
}

fn action_name(a: &Action) -> (&'static str, String, Option<String>) {
    match a {
        Action::Create { appdb_id, .. } => ("create", appdb_id.clone(), None),
        Action::Update {
            glance_id,
            appdb_id,
            adopt,
            ..
        } => (
            if *adopt { "adopt" } else { "update" },
            appdb_id.clone(),
            Some(glance_id.clone()),
        ),
        Action::Keep {
            glance_id,
            appdb_id,
        } => ("unchanged", appdb_id.clone(), Some(glance_id.clone())),
        Action::Retire {
            glance_id,
            appdb_id,
            ..
        } => ("retire", appdb_id.clone(), Some(glance_id.clone())),
        Action::DeleteStuck { glance_id, .. } => {
            ("delete-stuck", String::new(), Some(glance_id.clone()))
        }
    }
}

/// Map the section's visibility.
fn visibility(v: Visibility) -> plan::Visibility {
    match v {
        Visibility::Private => plan::Visibility::Private,
        Visibility::Shared => plan::Visibility::Shared,
        Visibility::Community => plan::Visibility::Community,
        Visibility::Public => plan::Visibility::Public,
    }
}

/// The common start of a source run: a disabled source, or a list that
/// fails to download, verify or parse, ends the run with its report (the
/// rejection logged as `rejected`); otherwise the accepted list and the
/// report so far (warnings logged, list facts filled in).
async fn start(
    ctx: &Context,
    src: &Source,
    rejected: &str,
) -> Result<(Accepted, SourceReport), SourceReport> {
    let mut rep = SourceReport::new(src);
    if !src.sub.enabled {
        rep.status = "disabled";
        return Err(rep);
    }
    let accepted = match check(ctx, src).await {
        Ok(a) => a,
        Err(f) => {
            tracing::error!(list = %src.sub.name, stage = f.stage, error = %f.error, remedy = %f.remedy, "{rejected}");
            rep.status = "failed";
            rep.failure = Some(f);
            rep.last_good = ctx.last_good(&src.sub.name);
            return Err(rep);
        }
    };
    for w in &accepted.warnings {
        tracing::warn!(list = %src.sub.name, "{w}");
    }
    rep.warnings = accepted.warnings.clone();
    rep.list = Some(accepted.info());
    rep.dropped = accepted.dropped.clone();
    warn_dropped(&src.sub.name, &rep.dropped);
    Ok((accepted, rep))
}

/// Log every dropped entry as a warning.
fn warn_dropped(source: &str, dropped: &[Dropped]) {
    for d in dropped {
        tracing::warn!(source = %source, entry = d.entry, image = %d.identifier, reason = %d.reason, "entry dropped");
    }
}

/// Synchronise one image-list source. `dry_run`: plan only, change
/// nothing.
pub async fn sync_source(
    ctx: &Context,
    g: &GlanceAccess,
    src: &Source,
    dry_run: bool,
) -> SourceReport {
    let (accepted, mut rep) =
        match start(ctx, src, "list rejected; nothing changed in Glance").await {
            Ok(started) => started,
            Err(rep) => return rep,
        };
    let mode = match (accepted.freshness, ctx.section.expired_list) {
        (Freshness::Current, _) => ListMode::Current,
        (Freshness::Expired, ExpiredList::Keep) => {
            tracing::error!(list = %src.sub.name, expires = %accepted.list.expires, "the list expired: its images are kept but no longer updated; ask the endorser for a fresh list");
            rep.status = "expired";
            ListMode::ExpiredKeep
        }
        (Freshness::Expired, ExpiredList::Remove) => {
            rep.status = "expired";
            ListMode::ExpiredRemove
        }
    };
    let conv = ctx.conventions();
    let vis = visibility(src.sub.visibility);
    let mut desired: Vec<Desired> = Vec::new();
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    for img in &accepted.list.images {
        match policy::image_wanted(img, &src.sub.images, ctx.now) {
            Ok(()) => {
                desired.push(plan::desired(
                    &src.sub.name,
                    &accepted.list,
                    img,
                    &src.sub.prefix,
                    vis,
                    &conv,
                ));
                items.insert(
                    img.identifier.as_str().to_string(),
                    Item::List(Box::new(img.clone())),
                );
            }
            Err(policy::Unwanted::NotSubscribed) => {
                tracing::debug!(list = %src.sub.name, image = %img.identifier, "not subscribed (images filter)")
            }
            Err(policy::Unwanted::Expired) => {} // dropped, reported above
        }
    }
    let plan = Planned {
        mode,
        desired,
        items,
        vis,
        by_name: false,
    };
    let rep = reconcile(ctx, g, Feed::List(src), plan, dry_run, |_| Ok(()), rep).await;
    if !dry_run && rep.failure.is_none() {
        if let Err(e) = ctx.save_last_good(&src.sub.name, &accepted.last_good) {
            tracing::warn!(list = %src.sub.name, error = %e, "could not save the list state");
        }
    }
    rep
}

/// A `type: harbor` subscription ready to run.
#[derive(Debug, Clone)]
pub struct RegistrySource {
    /// The subscription.
    pub sub: HarborSubscription,
    /// The Harbor client and filters.
    pub harbor: harbor::HarborSource,
    /// Where it was defined.
    pub origin: String,
}

/// What a registry listing found.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryInfo {
    /// The registry (credentials redacted).
    pub registry: String,
    /// Artifacts listed per Harbor project.
    pub projects: BTreeMap<String, usize>,
    /// Artifacts that become images.
    pub images: usize,
    /// Artifacts left out by the selection (no `eu.egi.cloud.tag`, tag
    /// pattern), with why. (Unsafe or unusable ones are `dropped`.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// The last good listing of a registry source (its state file).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LastListing {
    /// When it was listed.
    pub fetched_at: DateTime<Utc>,
    /// Artifacts per project.
    pub projects: BTreeMap<String, usize>,
    /// Images wanted.
    pub images: usize,
}

/// A registry listing: the report view and the images it wants.
pub struct Listed {
    /// The report view.
    pub info: RegistryInfo,
    /// Artifacts dropped: unsafe names, unusable manifests.
    pub dropped: Vec<Dropped>,
    /// Desired Glance image, artifact and its image layer.
    pub wanted: Vec<(Desired, harbor::Artifact, harbor::Layer)>,
}

/// Manifests read at once.
const MANIFESTS_IN_FLIGHT: usize = 8;

/// List a registry source: every project's artifacts, the selection, and
/// each selected artifact's image layer. A listing or transport failure
/// fails the source (nothing changes in Glance); an artifact whose
/// manifest is unusable is left out and reported.
pub async fn list_registry(ctx: &Context, src: &RegistrySource) -> Result<Listed, Failure> {
    crate::progress::source(&src.sub.name, crate::progress::SourceKind::Registry);
    let limit = ctx.fetcher.limits().list_deadline;
    match tokio::time::timeout(limit, list_registry_now(ctx, src)).await {
        Ok(r) => r,
        Err(_) => Err(Failure {
            stage: "listing",
            error: format!(
                "registry source {} ({}): timeout: the listing did not complete within the list deadline of {} s (images.transfer.list-deadline-seconds)",
                src.sub.name,
                crate::redact::url(src.harbor.harbor.base()),
                limit.as_secs()
            ),
            remedy: "the registry answered too slowly or not at all; nothing was changed; the next run retries".into(),
        }),
    }
}

async fn list_registry_now(ctx: &Context, src: &RegistrySource) -> Result<Listed, Failure> {
    let h = &src.harbor;
    let registry = crate::redact::url(h.harbor.base());
    let failed = |what: String, e: &harbor::HarborError| {
        failure(
            "listing",
            format!("registry source {} ({registry}): {what}: {e}", src.sub.name),
            format!("{}; nothing was changed", e.remedy()),
        )
    };
    let mut arts = Vec::new();
    let mut projects = BTreeMap::new();
    for p in &src.sub.projects {
        let found = h
            .harbor
            .project_artifacts(p, h.repo_filter.as_ref())
            .await
            .map_err(|e| failed(format!("project {p}"), &e))?;
        projects.insert(p.clone(), found.len());
        arts.extend(found);
    }
    let (keep, skipped) = harbor::select(arts, h.tag_pattern.as_ref());
    type Got = (
        harbor::Artifact,
        String,
        Result<harbor::Layer, harbor::HarborError>,
    );
    let layers: Vec<Got> = stream::iter(keep)
        .map(|(a, tag)| async move {
            let l = h.harbor.layer(&a).await;
            (a, tag, l)
        })
        .buffered(MANIFESTS_IN_FLIGHT)
        .collect()
        .await;
    let mut conv = ctx.conventions();
    conv.prefix.push_str(&src.sub.prefix);
    let vis = visibility(src.sub.visibility);
    let mut wanted = Vec::new();
    let mut dropped: Vec<Dropped> = skipped
        .iter()
        .filter(|s| s.dropped)
        .map(|s| Dropped {
            entry: 0,
            identifier: s.artifact.clone(),
            reason: s.reason.clone(),
        })
        .collect();
    for (a, tag, l) in layers {
        match l {
            Ok(layer) => {
                let d =
                    harbor::desired(&src.sub.name, h.harbor.base(), &a, &tag, &layer, vis, &conv);
                wanted.push((d, a, layer));
            }
            Err(e @ harbor::HarborError::Shape { .. }) => dropped.push(Dropped {
                entry: 0,
                identifier: format!("{}@{}", a.repository, a.digest),
                reason: text::shown(&format!("unusable manifest: {e}")).into_owned(),
            }),
            Err(e) => {
                return Err(failed(
                    format!("manifest of {}@{}", a.repository, a.digest),
                    &e,
                ))
            }
        }
    }
    Ok(Listed {
        info: RegistryInfo {
            registry,
            projects,
            images: wanted.len(),
            skipped: skipped
                .iter()
                .filter(|s| !s.dropped)
                .map(|s| format!("{}: {}", s.artifact, s.reason))
                .collect(),
        },
        dropped,
        wanted,
    })
}

/// The common start of a registry source run (like [`start`] for lists):
/// a disabled source or a failed listing ends the run with its report.
async fn start_registry(
    ctx: &Context,
    src: &RegistrySource,
) -> Result<(Listed, SourceReport), SourceReport> {
    let mut rep = SourceReport::named(&src.sub.name, &src.origin);
    if !src.sub.enabled {
        rep.status = "disabled";
        return Err(rep);
    }
    match list_registry(ctx, src).await {
        Ok(l) => {
            rep.dropped = l.dropped.clone();
            warn_dropped(&src.sub.name, &rep.dropped);
            Ok((l, rep))
        }
        Err(f) => Err(listing_failed(ctx, rep, f)),
    }
}

fn listing_failed(ctx: &Context, mut rep: SourceReport, f: Failure) -> SourceReport {
    tracing::error!(source = %rep.name, stage = f.stage, error = %f.error, remedy = %f.remedy, "registry listing failed; nothing changed in Glance");
    rep.status = "failed";
    rep.failure = Some(f);
    rep.last_listing = ctx.last_listing(&rep.name);
    rep
}

/// The repository path (`<project>/<repo>`) of a registry `appdb_id`
/// (`<host>/<project>/<repo>:<tag>-<digest>`).
fn registry_repo(appdb_id: &str) -> &str {
    let rest = appdb_id.split_once('/').map(|(_, r)| r).unwrap_or("");
    rest.split_once(':').map(|(r, _)| r).unwrap_or(rest)
}

/// Synchronise one registry source. A project that lists no artifacts
/// while Glance holds images from it refuses the run (a registry outage or
/// a robot account that lost access looks exactly like this) unless
/// `accept_empty`.
pub async fn sync_registry(
    ctx: &Context,
    g: &GlanceAccess,
    src: &RegistrySource,
    dry_run: bool,
    accept_empty: bool,
) -> SourceReport {
    let (listed, mut rep) = match start_registry(ctx, src).await {
        Ok(started) => started,
        Err(rep) => return rep,
    };
    let info = listed.info.clone();
    rep.registry = Some(listed.info);
    let mut desired = Vec::new();
    let mut items = BTreeMap::new();
    for (d, a, l) in listed.wanted {
        items.insert(d.appdb_id.clone(), Item::Layer(Box::new((a, l))));
        desired.push(d);
    }
    let plan = Planned {
        mode: ListMode::Current,
        desired,
        items,
        vis: visibility(src.sub.visibility),
        by_name: true,
    };
    let guard = |ours: &[Existing]| -> Result<(), Failure> {
        if accept_empty {
            return Ok(());
        }
        for (p, _) in info.projects.iter().filter(|(_, n)| **n == 0) {
            let held = ours
                .iter()
                .filter(|e| {
                    e.appdb_id()
                        .is_some_and(|id| registry_repo(id).starts_with(&format!("{p}/")))
                })
                .count();
            if held > 0 {
                return Err(Failure {
                    stage: "listing",
                    error: format!(
                        "registry source {} ({}): project {p} lists no artifacts, but Glance holds {held} image(s) from it",
                        src.sub.name, info.registry
                    ),
                    remedy: format!(
                        "nothing was retired: a registry outage or a robot account that lost access looks like this; if the project was emptied on purpose, run `appliance images sync --source {} --accept-empty`",
                        src.sub.name
                    ),
                });
            }
        }
        Ok(())
    };
    let mut rep = reconcile(ctx, g, Feed::Registry(src), plan, dry_run, guard, rep).await;
    if rep.failure.is_some() {
        rep.last_listing = ctx.last_listing(&src.sub.name);
    }
    if !dry_run && rep.failure.is_none() {
        let l = LastListing {
            fetched_at: ctx.now,
            projects: info.projects.clone(),
            images: info.images,
        };
        if let Err(e) = ctx.save_listing(&src.sub.name, &l) {
            tracing::warn!(source = %src.sub.name, error = %e, "could not save the listing state");
        }
    }
    rep
}

/// A source of either kind: where its images come from.
#[derive(Clone, Copy)]
pub enum Feed<'a> {
    /// A signed image list.
    List(&'a Source),
    /// A Harbor registry.
    Registry(&'a RegistrySource),
}

impl<'a> Feed<'a> {
    /// The subscription name.
    pub fn name(&self) -> &'a str {
        match self {
            Feed::List(s) => &s.sub.name,
            Feed::Registry(s) => &s.sub.name,
        }
    }
    /// Where it was defined.
    pub fn origin(&self) -> &'a str {
        match self {
            Feed::List(s) => &s.origin,
            Feed::Registry(s) => &s.origin,
        }
    }
    /// Whether it is synchronised.
    pub fn enabled(&self) -> bool {
        match self {
            Feed::List(s) => s.sub.enabled,
            Feed::Registry(s) => s.sub.enabled,
        }
    }
    /// The VOs it shares with (configured VO names).
    pub fn vos(&self) -> &'a [String] {
        match self {
            Feed::List(s) => &s.sub.vos,
            Feed::Registry(s) => &s.sub.vos,
        }
    }
    /// How errors name this feed.
    fn what(&self) -> String {
        match self {
            Feed::List(s) => format!("list {}", s.sub.name),
            Feed::Registry(s) => format!("registry source {}", s.sub.name),
        }
    }
    /// How errors name an image of this feed.
    fn image(&self, appdb_id: &str) -> String {
        format!("{}, image {appdb_id}", self.what())
    }
}

/// What an image is made from.
#[derive(Debug, Clone)]
enum Item {
    /// A list entry (`hv:uri`, size, sha512).
    List(Box<ListImage>),
    /// A registry artifact's image layer (size, sha256).
    Layer(Box<(harbor::Artifact, harbor::Layer)>),
}

impl Item {
    /// What the source says about the entry's bytes: another key means the
    /// source changed the entry (the back-off starts afresh).
    fn version_key(&self) -> String {
        match self {
            Item::List(img) => format!(
                "{} sha512:{} {} {}",
                img.version, img.sha512, img.size, img.uri
            ),
            Item::Layer(al) => format!("{} {}", al.1.digest, al.1.size),
        }
    }
    /// Its file in the cache directory.
    fn entry_name(&self) -> String {
        match self {
            Item::List(img) => img.identifier.file_name(),
            Item::Layer(al) => al.1.sha256_hex().to_string(),
        }
    }
}

/// A source's wanted state, ready to reconcile with Glance.
struct Planned {
    mode: ListMode,
    desired: Vec<Desired>,
    /// By `appdb_id`: what each desired image is made from.
    items: BTreeMap<String, Item>,
    vis: plan::Visibility,
    /// Registry tags: an image of the same name is replaced only after
    /// the new one is active ([`harbor::as_replacements`]).
    by_name: bool,
}

fn plan_reports(
    actions: &[Action],
    blocked: &dyn Fn(&str) -> Option<backoff::Record>,
) -> Vec<ImageReport> {
    actions
        .iter()
        .map(|a| {
            let (name, appdb_id, glance_id) = action_name(a);
            let mut detail = BTreeMap::new();
            detail.insert("plan".into(), serde_json::to_value(a).unwrap_or_default());
            if let (Action::Create { .. }, Some(b)) = (a, blocked(&appdb_id)) {
                detail.insert(
                    "backoff".into(),
                    serde_json::to_value(b).unwrap_or_default(),
                );
            }
            ImageReport {
                appdb_id,
                action: name.into(),
                glance_id,
                ok: true,
                detail,
                error: None,
                remedy: None,
            }
        })
        .collect()
}

/// Reconcile Glance with a source's wanted state: adoption lookup, plan,
/// then (unless `dry_run`) creates (download, verify, upload, share;
/// bounded in parallel) and the other steps. `guard` may refuse the run
/// after seeing this source's images in Glance (nothing is changed then).
async fn reconcile(
    ctx: &Context,
    g: &GlanceAccess,
    feed: Feed<'_>,
    p: Planned,
    dry_run: bool,
    guard: impl Fn(&[Existing]) -> Result<(), Failure>,
    mut rep: SourceReport,
) -> SourceReport {
    let name = feed.name().to_string();
    let conv = ctx.conventions();
    let glance_fail = |rep: &mut SourceReport, e: crate::openstack::Error| {
        rep.status = "failed";
        rep.failure = Some(failure(
            "glance",
            format!("{}: {e}", feed.what()),
            "check Glance and the site credential; nothing was changed",
        ));
    };
    let (ours, mut others) = match glance::existing(&g.owner, &conv.tag, &name).await {
        Ok(x) => x,
        Err(e) => {
            glance_fail(&mut rep, e);
            return rep;
        }
    };
    if let Err(f) = guard(&ours) {
        tracing::error!(source = %name, error = %f.error, remedy = %f.remedy, "source refused; nothing changed in Glance");
        rep.status = "failed";
        rep.failure = Some(f);
        return rep;
    }
    // Adoption candidates: images other tools uploaded (atrope,
    // cloudkeeper-os, hand uploads), and ours whose subscription is gone;
    // never an image of another subscription (it keeps its own).
    let adoptable = |e: &Existing| plan::adoptable(e, &conv.tag, &ctx.subscriptions);
    others.retain(adoptable);
    let mut legacy = Vec::new();
    for d in &p.desired {
        let known = ours
            .iter()
            .chain(&others)
            .any(|e| e.appdb_id() == Some(d.appdb_id.as_str()));
        if !known {
            let found = match glance::by_appdb_id(&g.owner, &d.appdb_id).await {
                Ok(found) => adopt::candidates(&g.owner, &d.appdb_id)
                    .await
                    .map(|ck| (found, ck)),
                Err(e) => Err(e),
            };
            match found {
                Ok((found, ck)) => {
                    others.extend(found.into_iter().filter(adoptable));
                    legacy.extend(ck.into_iter().filter(adoptable));
                }
                Err(e) => {
                    glance_fail(&mut rep, e);
                    return rep;
                }
            }
        }
    }
    let mut actions = plan::plan(
        p.mode,
        &p.desired,
        &ours,
        &others,
        &conv.tag,
        ctx.now,
        chrono::Duration::minutes(ctx.section.stuck_minutes as i64),
    );
    actions = adopt::adopt(actions, &p.desired, &legacy, &conv.tag);
    if p.by_name {
        actions = harbor::as_replacements(actions, &p.desired, &ours);
    }
    let backoff = if ctx.retry_failed {
        Backoff::default()
    } else {
        ctx.backoff(&name)
    };
    let given_up: BTreeMap<&str, backoff::Record> = p
        .items
        .iter()
        .filter_map(|(id, item)| {
            backoff
                .blocked(id, &item.version_key())
                .map(|r| (id.as_str(), r.clone()))
        })
        .collect();
    let blocked = |id: &str| given_up.get(id).cloned();
    if dry_run {
        rep.images = plan_reports(&actions, &blocked);
        return rep;
    }
    let members = g.members.get(&name).cloned().unwrap_or_default();
    let desired_by_id: BTreeMap<&str, &Desired> =
        p.desired.iter().map(|d| (d.appdb_id.as_str(), d)).collect();
    let existing_status: BTreeMap<String, String> = ours
        .iter()
        .chain(&others)
        .chain(&legacy)
        .map(|e| (e.id.clone(), e.status.clone()))
        .collect();
    let dir = ctx.cache_dir(&name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        rep.status = "failed";
        rep.failure = Some(failure(
            "download",
            format!("{}: {e}", dir.display()),
            "check paths.image-data",
        ));
        return rep;
    }
    super::cache::sweep(&dir, &p.items.values().map(Item::entry_name).collect());
    let index = Arc::new(Mutex::new(Index::load(&dir)));
    let backoff = Arc::new(Mutex::new(backoff));
    let vis = p.vis;

    // Creates (download + upload), bounded in parallel.
    let creates: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .collect();
    crate::progress::images_planned(creates.len());
    let results: Vec<ImageReport> = stream::iter(creates)
        .map(|a| {
            let Action::Create { appdb_id, replaces } = a else {
                unreachable!()
            };
            let d = desired_by_id[appdb_id.as_str()];
            let item = &p.items[appdb_id.as_str()];
            let index = index.clone();
            let backoff = backoff.clone();
            let members = &members;
            let existing_status = &existing_status;
            let dir = &dir;
            let name = &name;
            let blocked = blocked(appdb_id);
            async move {
                let mut r = ImageReport {
                    appdb_id: appdb_id.clone(),
                    action: "create".into(),
                    glance_id: None,
                    ok: false,
                    detail: BTreeMap::new(),
                    error: None,
                    remedy: None,
                };
                if let Some(b) = blocked {
                    report_given_up(&mut r, &b, feed);
                    tracing::error!(source = %name, image = %appdb_id, error = %r.error.as_deref().unwrap_or(""), "image not synchronised (back-off)");
                    return r;
                }
                let res = create_one(ctx, g, feed, d, item, dir, &index, members, &mut r).await;
                record_outcome(ctx, &backoff, appdb_id, item, res.as_ref().err(), &mut r);
                match res {
                    Ok(id) => {
                        r.ok = true;
                        r.glance_id = Some(id);
                        let mut retired = Vec::new();
                        for old in replaces {
                            match glance::retire(&g.owner, old, existing_status.get(old).map(String::as_str)).await {
                                Ok(how) => retired.push(serde_json::json!({"glance_id": old, "result": how})),
                                Err(e) => retired.push(serde_json::json!({"glance_id": old, "error": e.to_string()})),
                            }
                        }
                        if !retired.is_empty() {
                            r.detail.insert("retired".into(), retired.into());
                        }
                    }
                    Err(e) => {
                        if replaces.is_empty() {
                            tracing::error!(source = %name, image = %appdb_id, error = %e.error, remedy = %e.remedy, "image not synchronised");
                        } else {
                            tracing::error!(source = %name, image = %appdb_id, error = %e.error, remedy = %e.remedy, kept = ?replaces, "image not synchronised; the image it replaces is kept");
                        }
                        r.error = Some(e.error);
                        r.remedy = Some(e.remedy);
                    }
                }
                r
            }
        })
        .buffer_unordered(ctx.section.parallel_downloads.max(1) as usize)
        .collect()
        .await;
    rep.images.extend(results);
    if let Err(e) = index.lock().expect("index lock").save() {
        tracing::warn!(dir = %dir.display(), error = %e, "could not save the cache index");
    }
    {
        let mut b = backoff.lock().expect("backoff");
        for a in &actions {
            if let Action::Keep { appdb_id, .. } | Action::Update { appdb_id, .. } = a {
                b.succeeded(appdb_id);
            }
        }
        b.retain(&p.items.keys().map(String::as_str).collect());
        ctx.save_backoff(&name, &b);
    }

    for a in &actions {
        let (step, appdb_id, glance_id) = action_name(a);
        let mut r = ImageReport {
            appdb_id: appdb_id.clone(),
            action: step.into(),
            glance_id: glance_id.clone(),
            ok: true,
            detail: BTreeMap::new(),
            error: None,
            remedy: None,
        };
        let res: Result<(), glance::GlanceStepError> = match a {
            Action::Create { .. } => continue,
            Action::Keep { glance_id, .. } => {
                share_if(&g.owner, glance_id, vis, &members, &mut r).await
            }
            Action::Update {
                glance_id, patch, ..
            } => match glance::patch(&g.owner, glance_id, patch).await {
                Ok(()) => {
                    r.detail.insert(
                        "patched".into(),
                        patch
                            .iter()
                            .map(|p| p.path.clone())
                            .collect::<Vec<_>>()
                            .into(),
                    );
                    share_if(&g.owner, glance_id, vis, &members, &mut r).await
                }
                Err(e) => Err(e),
            },
            Action::Retire {
                glance_id, reason, ..
            } => {
                r.detail.insert("reason".into(), reason.clone().into());
                glance::retire(
                    &g.owner,
                    glance_id,
                    existing_status.get(glance_id).map(String::as_str),
                )
                .await
                .map(|how| {
                    r.detail.insert(
                        "result".into(),
                        serde_json::to_value(how).unwrap_or_default(),
                    );
                })
            }
            Action::DeleteStuck { glance_id, status } => {
                r.detail.insert("status".into(), status.clone().into());
                crate::openstack::image::delete_image(&g.owner, glance_id)
                    .await
                    .map_err(|source| glance::GlanceStepError::Api {
                        step: "delete stuck image",
                        source,
                    })
            }
        };
        if let Err(e) = res {
            tracing::error!(source = %name, image = %appdb_id, glance_id = glance_id.as_deref(), error = %e, "Glance step failed");
            r.ok = false;
            r.remedy = Some(e.remedy().into());
            r.error = Some(text::shown(&e.to_string()).into_owned());
        } else {
            tracing::info!(source = %name, image = %appdb_id, glance_id = glance_id.as_deref(), action = step, "done");
        }
        rep.images.push(r);
    }
    if rep.images.iter().any(|i| !i.ok) && rep.status == "ok" {
        rep.status = "partial";
    }
    rep
}

async fn share_if(
    s: &Session,
    id: &str,
    vis: plan::Visibility,
    members: &[MemberProject],
    r: &mut ImageReport,
) -> Result<(), glance::GlanceStepError> {
    if vis != plan::Visibility::Shared {
        return Ok(());
    }
    let sh = glance::share(s, id, members).await?;
    if sh != glance::Sharing::default() {
        r.detail.insert(
            "members".into(),
            serde_json::to_value(sh).unwrap_or_default(),
        );
    }
    Ok(())
}

/// Why one image was not synchronised: the error (escaped), what to do,
/// and whether it counts for the back-off.
#[derive(Debug, Clone)]
struct ImageError {
    error: String,
    remedy: String,
    counts: Option<backoff::Kind>,
}

impl ImageError {
    fn new(error: String, remedy: impl Into<String>, counts: Option<backoff::Kind>) -> Self {
        ImageError {
            error: text::shown(&error).into_owned(),
            remedy: remedy.into(),
            counts,
        }
    }
    fn fetch(feed: Feed<'_>, id: &str, e: &FetchError) -> Self {
        let counts = matches!(
            e,
            FetchError::ChecksumMismatch { .. }
                | FetchError::Oversize { .. }
                | FetchError::Short { .. }
        )
        .then_some(backoff::Kind::Verification);
        ImageError::new(format!("{}: {e}", feed.image(id)), e.remedy(), counts)
    }
}

/// Count a failed (or forget a successful) create in the back-off state.
fn record_outcome(
    ctx: &Context,
    backoff: &Mutex<Backoff>,
    id: &str,
    item: &Item,
    err: Option<&ImageError>,
    r: &mut ImageReport,
) {
    let mut b = backoff.lock().expect("backoff");
    match err {
        None => b.succeeded(id),
        Some(ImageError {
            counts: Some(kind),
            error,
            ..
        }) => {
            let rec = b.failed(
                id,
                &item.version_key(),
                *kind,
                ctx.section.max_attempts,
                error,
                ctx.now,
            );
            r.detail.insert(
                "attempts".into(),
                serde_json::json!({"failed": rec.attempts, "max": rec.max_attempts}),
            );
        }
        Some(_) => {}
    }
}

/// The report of an image the back-off stops.
fn report_given_up(r: &mut ImageReport, b: &backoff::Record, feed: Feed<'_>) {
    r.detail.insert(
        "backoff".into(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    r.error = Some(format!(
        "{}: not tried again: {} failed attempt(s) at this version since {} (last: {})",
        feed.image(&r.appdb_id),
        b.attempts,
        b.first_failed,
        b.error
    ));
    r.remedy = Some(match b.kind {
        backoff::Kind::Verification => "the served file is not the one the source describes; it is tried again when the source changes the entry, or with `appliance images sync --retry-failed`; report it to the publisher".into(),
        backoff::Kind::Content => "the image's content is refused (format safety checks); it is tried again when the source changes the entry, or with `appliance images sync --retry-failed`; report it to the publisher".into(),
    });
}

#[allow(clippy::too_many_arguments)]
async fn create_one(
    ctx: &Context,
    g: &GlanceAccess,
    feed: Feed<'_>,
    d: &Desired,
    item: &Item,
    dir: &Path,
    index: &Arc<Mutex<Index>>,
    members: &[MemberProject],
    r: &mut ImageReport,
) -> Result<String, ImageError> {
    let (path, sha512) = ensure_cached(ctx, feed, item, dir, index, r).await?;
    let (upload_path, fmt, sha) = prepare(ctx, dir, &path, &sha512, index, r)
        .await
        .map_err(|e| {
            let content = matches!(
                e,
                format::FormatError::Unsafe { .. }
                    | format::FormatError::Ova { .. }
                    | format::FormatError::Convert { ran: true, .. }
            );
            ImageError::new(
                format!("{}: {e}", feed.image(&d.appdb_id)),
                match e {
                    format::FormatError::Unsafe { .. } => "the image would make qemu-img, Glance or a hypervisor read other files; nothing was uploaded, and this version is not tried again; report it to the publisher",
                    _ => "the image's format cannot be used by this site; see the error",
                },
                content.then_some(backoff::Kind::Content),
            )
        })?;
    r.detail.insert("format".into(), fmt.as_str().into());
    let size = std::fs::metadata(&upload_path)
        .map(|m| m.len())
        .unwrap_or(0);
    // The file must still be what was verified.
    let still = {
        let ix = index.lock().expect("index");
        let n = upload_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        ix.digest(n).map(String::from)
    };
    if still.as_deref() != Some(sha.as_str()) {
        return Err(ImageError::new(
            format!(
                "{} changed since it was verified; not uploaded",
                upload_path.display()
            ),
            "something modified paths.image-data; the next run re-verifies",
            None,
        ));
    }
    let up = Upload {
        path: &upload_path,
        format: fmt,
        size,
        sha512: &sha,
    };
    glance::create_and_upload(&g.owner, d, &ctx.section.tag, &up, members, 1)
        .await
        .map_err(|e| {
            ImageError::new(
                format!("{}: {e}", feed.image(&d.appdb_id)),
                e.remedy(),
                matches!(e, glance::GlanceStepError::ContentRefused { .. })
                    .then_some(backoff::Kind::Content),
            )
        })
}

/// The verified file of an item in the cache and its sha512: an indexed,
/// unchanged file is used as is (never hashed again); otherwise it is
/// downloaded through the verifier (the list's sha512, or the layer's
/// sha256) and indexed.
async fn ensure_cached(
    ctx: &Context,
    feed: Feed<'_>,
    item: &Item,
    dir: &Path,
    index: &Arc<Mutex<Index>>,
    r: &mut ImageReport,
) -> Result<(PathBuf, String), ImageError> {
    let dl = match (feed, item) {
        (Feed::List(src), Item::List(img)) => {
            let name = img.identifier.file_name();
            let _progress = crate::progress::image(&name, img.identifier.as_str(), img.size);
            let cached = {
                let mut ix = index.lock().expect("index");
                ix.verified(&name, &img.sha512).or_else(|| {
                    // A download of a release with the old naming, when its
                    // digest is this image's.
                    let old = super::cache::legacy_entry_name(img.identifier.as_str());
                    ix.adopt(&old, &name, &img.sha512)
                })
            };
            if let Some(p) = cached {
                r.detail.insert("cache".into(), "hit".into());
                return Ok((p, img.sha512.clone()));
            }
            // Same-origin token only: never hand a list token to another host.
            let token = match &src.sub.source {
                ListSource::Url(u) if u.origin() == img.uri.origin() => src.token.as_ref(),
                _ => None,
            };
            ctx.fetcher
                .download(
                    &img.uri,
                    Place::Image,
                    Auth::list_token(token),
                    img.size,
                    Want::Sha512(&img.sha512),
                    dir,
                    &name,
                )
                .await
                .map_err(|e| ImageError::fetch(feed, img.identifier.as_str(), &e))?
        }
        (Feed::Registry(src), Item::Layer(al)) => {
            let (art, layer) = &**al;
            let id = r.appdb_id.clone();
            let name = layer.sha256_hex().to_string();
            let _progress = crate::progress::image(&name, &id, layer.size);
            let known = index.lock().expect("index").digest(&name).map(String::from);
            if let Some(sha512) = known {
                r.detail.insert("cache".into(), "hit".into());
                return Ok((dir.join(&name), sha512));
            }
            let (url, auth) = src
                .harbor
                .harbor
                .blob_access(art, layer)
                .await
                .map_err(|e| {
                    ImageError::new(format!("{}: {e}", feed.image(&id)), e.remedy(), None)
                })?;
            ctx.fetcher
                .download(
                    &url,
                    Place::Registry,
                    auth.as_auth(),
                    layer.size,
                    Want::Sha256(layer.sha256_hex()),
                    dir,
                    &name,
                )
                .await
                .map_err(|e| ImageError::fetch(feed, &id, &e))?
        }
        _ => unreachable!("items come from their own feed"),
    };
    r.detail.insert("downloaded".into(), dl.transferred.into());
    if dl.resumed {
        r.detail.insert("resumed".into(), true.into());
    }
    let name = dl
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    index
        .lock()
        .expect("index")
        .record(&name, &dl.sha512)
        .map_err(|e| {
            ImageError::new(
                format!("{}: {e}", dl.path.display()),
                "check paths.image-data",
                None,
            )
        })?;
    Ok((dl.path, dl.sha512))
}

/// Download-only run of one source (`images sync --download-only`): fetch
/// and verify the list, then download and verify every wanted image into
/// the cache (`paths.image-data/<list>/`, indexed), exactly as a full sync
/// would before touching Glance. Keystone and Glance are never contacted
/// and no list state is saved. Pre-seeds the cache; also the like-for-like
/// comparison with atrope's `cache-sync`.
pub async fn cache_source(ctx: &Context, src: &Source) -> SourceReport {
    let (accepted, mut rep) = match start(ctx, src, "list rejected").await {
        Ok(started) => started,
        Err(rep) => return rep,
    };
    if accepted.freshness == Freshness::Expired {
        tracing::error!(list = %src.sub.name, expires = %accepted.list.expires, "the list expired: nothing is downloaded; ask the endorser for a fresh list");
        rep.status = "expired";
        return rep;
    }
    let items: Vec<(String, Item)> = accepted
        .list
        .images
        .iter()
        .filter(|img| policy::image_wanted(img, &src.sub.images, ctx.now).is_ok())
        .map(|img| {
            (
                img.identifier.as_str().to_string(),
                Item::List(Box::new(img.clone())),
            )
        })
        .collect();
    cache_items(ctx, Feed::List(src), items, rep).await
}

/// Download-only run of one registry source: list, then download and
/// verify every selected layer into the cache.
pub async fn cache_registry(ctx: &Context, src: &RegistrySource) -> SourceReport {
    let (listed, mut rep) = match start_registry(ctx, src).await {
        Ok(started) => started,
        Err(rep) => return rep,
    };
    rep.registry = Some(listed.info);
    let items = listed
        .wanted
        .into_iter()
        .map(|(d, a, l)| (d.appdb_id, Item::Layer(Box::new((a, l)))))
        .collect();
    cache_items(ctx, Feed::Registry(src), items, rep).await
}

async fn cache_items(
    ctx: &Context,
    feed: Feed<'_>,
    items: Vec<(String, Item)>,
    mut rep: SourceReport,
) -> SourceReport {
    let name = feed.name();
    let dir = ctx.cache_dir(name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        rep.status = "failed";
        rep.failure = Some(failure(
            "download",
            format!("{}: {e}", dir.display()),
            "check paths.image-data",
        ));
        return rep;
    }
    super::cache::sweep(&dir, &items.iter().map(|(_, i)| i.entry_name()).collect());
    crate::progress::images_planned(items.len());
    let index = Arc::new(Mutex::new(Index::load(&dir)));
    let backoff = Arc::new(Mutex::new(if ctx.retry_failed {
        Backoff::default()
    } else {
        ctx.backoff(name)
    }));
    let listed: BTreeSet<String> = items.iter().map(|(id, _)| id.clone()).collect();
    let results: Vec<ImageReport> = stream::iter(items)
        .map(|(appdb_id, item)| {
            let index = index.clone();
            let backoff = backoff.clone();
            let dir = &dir;
            async move {
                let mut r = ImageReport {
                    appdb_id,
                    action: "cache".into(),
                    glance_id: None,
                    ok: false,
                    detail: BTreeMap::new(),
                    error: None,
                    remedy: None,
                };
                let blocked = backoff
                    .lock()
                    .expect("backoff")
                    .blocked(&r.appdb_id, &item.version_key())
                    .cloned();
                if let Some(b) = blocked {
                    report_given_up(&mut r, &b, feed);
                    return r;
                }
                let res = ensure_cached(ctx, feed, &item, dir, &index, &mut r).await;
                match res {
                    Ok((p, _)) => {
                        r.ok = true;
                        r.detail
                            .insert("path".into(), p.display().to_string().into());
                    }
                    Err(e) => {
                        let id = r.appdb_id.clone();
                        record_outcome(ctx, &backoff, &id, &item, Some(&e), &mut r);
                        tracing::error!(source = %feed.name(), image = %r.appdb_id, error = %e.error, remedy = %e.remedy, "image not cached");
                        r.error = Some(e.error);
                        r.remedy = Some(e.remedy);
                    }
                }
                r
            }
        })
        .buffer_unordered(ctx.section.parallel_downloads.max(1) as usize)
        .collect()
        .await;
    rep.images = results;
    if let Err(e) = index.lock().expect("index lock").save() {
        tracing::warn!(dir = %dir.display(), error = %e, "could not save the cache index");
    }
    {
        // Only verification failures are known here: a download that
        // succeeds says nothing about Glance's verdict, so records stay.
        let mut b = backoff.lock().expect("backoff");
        b.retain(&listed.iter().map(String::as_str).collect());
        ctx.save_backoff(name, &b);
    }
    if rep.images.iter().any(|i| !i.ok) {
        rep.status = "partial";
    }
    rep
}

/// The file to upload: the download itself, the disk of an OVA, or a
/// conversion to the site's first accepted format (made once, keyed by the
/// source digest, indexed with its own digest).
async fn prepare(
    ctx: &Context,
    dir: &Path,
    path: &Path,
    sha512: &str,
    index: &Arc<Mutex<Index>>,
    r: &mut ImageReport,
) -> Result<(PathBuf, Format, String), format::FormatError> {
    // Extraction, hashing, conversion: no byte count, but work.
    let _busy = crate::progress::busy();
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| format::FormatError::Io { path: p, source }
    };
    let key = &sha512[..32.min(sha512.len())];
    let mut fmt = format::detect(path).map_err(io(path))?;
    let mut cur = path.to_path_buf();
    let mut sha = sha512.to_string();
    if fmt == Format::Ova && !ctx.formats.contains(&Format::Ova) {
        let disk_name = format!("{key}.disk");
        let disk = dir.join(&disk_name);
        let known = index
            .lock()
            .expect("index")
            .digest(&disk_name)
            .map(String::from);
        let digest = match known {
            Some(d) => d,
            None => {
                let (p, d) = (path.to_path_buf(), disk.clone());
                tokio::task::spawn_blocking(move || format::extract_ova_disk(&p, &d))
                    .await
                    .map_err(|e| io(&disk)(std::io::Error::other(e)))??;
                let (h, _) = super::fetch::hash_file(&disk).map_err(io(&disk))?;
                index
                    .lock()
                    .expect("index")
                    .record(&disk_name, &h)
                    .map_err(io(&disk))?;
                h
            }
        };
        fmt = format::detect(&disk).map_err(io(&disk))?;
        cur = disk;
        sha = digest;
    }
    // Before anything reads it as a disk image (qemu-img, Glance).
    format::check_safety(&cur, fmt)?;
    if !ctx.formats.is_empty() && !ctx.formats.contains(&fmt) {
        let to = ctx.formats[0];
        let out_name = format!("{key}.{}", to.as_str());
        let out = dir.join(&out_name);
        let known = index
            .lock()
            .expect("index")
            .digest(&out_name)
            .map(String::from);
        r.detail.insert(
            "conversion".into(),
            serde_json::json!({"from": fmt.as_str(), "to": to.as_str(), "file": out_name, "made": known.is_none()}),
        );
        let digest = match known {
            Some(d) => d,
            None => {
                format::convert(&cur, fmt, to, &out).await?;
                let (h, _) = super::fetch::hash_file(&out).map_err(io(&out))?;
                index
                    .lock()
                    .expect("index")
                    .record(&out_name, &h)
                    .map_err(io(&out))?;
                h
            }
        };
        return Ok((out, to, digest));
    }
    Ok((cur, fmt, sha))
}

/// The whole run's report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Every source succeeded.
    pub ok: bool,
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Entries dropped, over every source (unsafe, malformed, duplicate,
    /// expired; listed per source).
    pub dropped: usize,
    /// Per source.
    pub sources: Vec<SourceReport>,
    /// Problems with the sources' definitions (legacy files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}
