//! One run of image synchronisation over every source: the list state
//! machine (spec image-sync §7), downloads, and the Glance plan, with a
//! JSON report per source and image.
//!
//! Per source: fetch -> S/MIME verify -> parse -> policy (against the last
//! good list) -> plan -> apply. A source that fails before the plan changes
//! nothing in Glance; its last good list is kept and reported. An expired
//! list keeps its images (or retires them with `expired-list: remove`) and
//! is never updated. One source's failure never stops the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::config::sections::images::{ExpiredList, ListSource, Section, Subscription, Visibility};
use crate::openstack::Session;
use crate::secret::Secret;

use super::cache::Index;
use super::fetch::{FetchError, Fetcher};
use super::format::{self, Format};
use super::glance::{self, MemberProject, Upload};
use super::list::{self, ImageList, ListImage};
use super::plan::{self, Action, Conventions, Desired, ListMode};
use super::policy::{self, Endorser, Freshness, LastGood};
use super::smime::{self, Relax};

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
    fn state_file(&self, list: &str) -> PathBuf {
        self.state_dir
            .join("images")
            .join("lists")
            .join(format!("{list}.json"))
    }
    /// The last good list of `name`.
    pub fn last_good(&self, name: &str) -> Option<LastGood> {
        std::fs::read(self.state_file(name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
    fn save_last_good(&self, name: &str, l: &LastGood) -> std::io::Result<()> {
        crate::state::write_atomic(
            &self.state_file(name),
            &serde_json::to_vec_pretty(l).expect("state JSON"),
            0o600,
        )
    }
    fn cache_dir(&self, list: &str) -> PathBuf {
        self.image_data.join(list)
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
    /// Images in the list.
    pub images: usize,
    /// Images dropped as malformed, with reasons.
    pub rejected: Vec<String>,
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
            rejected: self
                .list
                .rejected
                .iter()
                .map(|r| {
                    format!(
                        "#{} {}: {}",
                        r.index,
                        r.identifier.as_deref().unwrap_or("?"),
                        r.reason
                    )
                })
                .collect(),
        }
    }
}

/// Fetch, verify, parse and check a source's list (no Glance, no state
/// written).
pub async fn check(ctx: &Context, src: &Source) -> Result<Accepted, Failure> {
    let sub = &src.sub;
    let what = match &sub.source {
        ListSource::Url(u) => crate::openstack::error::redact_url(u),
        ListSource::File(f) => f.display().to_string(),
    };
    let body = match &sub.source {
        ListSource::Url(u) => ctx.fetcher.get_list(u, src.token.as_ref()).await,
        ListSource::File(f) => std::fs::read(f).map_err(|e| FetchError::Io {
            path: f.clone(),
            source: e,
        }),
    }
    .map_err(|e| Failure {
        stage: "download",
        error: format!("list {}: {e}", sub.name),
        remedy: e.remedy().into(),
    })?;
    let v = smime::verify(&body, &ctx.ca_dir, ctx.now, ctx.relax()).map_err(|e| Failure {
        stage: "signature",
        error: format!("list {} ({what}): {e}", sub.name),
        remedy: e.remedy().into(),
    })?;
    let parsed = list::parse(&v.content).map_err(|e| Failure {
        stage: "parse",
        error: format!("list {} ({what}): {e}", sub.name),
        remedy:
            "the signed list is malformed; nothing was changed; report it to the list's publisher"
                .into(),
    })?;
    let trusted = Endorser {
        dn: sub.endorser.dn.clone(),
        ca: sub.endorser.ca.clone(),
    };
    let last = ctx.last_good(&sub.name);
    let freshness = policy::check_list(&parsed, &v.signer, &trusted, last.as_ref(), ctx.now)
        .map_err(|e| Failure {
            stage: "policy",
            error: format!("list {} ({what}): {e}", sub.name),
            remedy: e.remedy().into(),
        })?;
    let digest = hex::encode(openssl::sha::sha512(&body));
    Ok(Accepted {
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
    /// Warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per image.
    pub images: Vec<ImageReport>,
}

impl SourceReport {
    fn new(src: &Source) -> Self {
        SourceReport {
            name: src.sub.name.clone(),
            origin: src.origin.clone(),
            status: "ok",
            failure: None,
            list: None,
            last_good: None,
            warnings: Vec::new(),
            images: Vec::new(),
        }
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
    Ok((accepted, rep))
}

/// Synchronise one source. `dry_run`: plan only, change nothing.
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
    let mut wanted: BTreeMap<String, ListImage> = BTreeMap::new();
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
                wanted.insert(img.identifier.as_str().to_string(), img.clone());
            }
            Err(why) => {
                tracing::info!(list = %src.sub.name, image = %img.identifier, reason = ?why, "image not wanted")
            }
        }
    }
    let glance_fail = |rep: &mut SourceReport, e: crate::openstack::Error| {
        rep.status = "failed";
        rep.failure = Some(Failure {
            stage: "glance",
            error: format!("list {}: {e}", src.sub.name),
            remedy: "check Glance and the site credential; nothing was changed".into(),
        });
    };
    let (ours, mut others) = match glance::existing(&g.owner, &conv.tag, &src.sub.name).await {
        Ok(x) => x,
        Err(e) => {
            glance_fail(&mut rep, e);
            return rep;
        }
    };
    // Adoption candidates without our tag (cloudkeeper-os, hand uploads).
    for d in &desired {
        let known = ours
            .iter()
            .chain(&others)
            .any(|e| e.appdb_id() == Some(d.appdb_id.as_str()));
        if !known {
            match glance::by_appdb_id(&g.owner, &d.appdb_id).await {
                Ok(found) => others.extend(found),
                Err(e) => {
                    glance_fail(&mut rep, e);
                    return rep;
                }
            }
        }
    }
    let actions = plan::plan(
        mode,
        &desired,
        &ours,
        &others,
        &conv.tag,
        ctx.now,
        chrono::Duration::minutes(ctx.section.stuck_minutes as i64),
    );
    if dry_run {
        for a in &actions {
            let (name, appdb_id, glance_id) = action_name(a);
            let mut detail = BTreeMap::new();
            detail.insert("plan".into(), serde_json::to_value(a).unwrap_or_default());
            rep.images.push(ImageReport {
                appdb_id,
                action: name.into(),
                glance_id,
                ok: true,
                detail,
                error: None,
                remedy: None,
            });
        }
        return rep;
    }
    if let Err(e) = ctx.save_last_good(&src.sub.name, &accepted.last_good) {
        tracing::warn!(list = %src.sub.name, error = %e, "could not save the list state");
    }
    let members = g.members.get(&src.sub.name).cloned().unwrap_or_default();
    let desired_by_id: BTreeMap<&str, &Desired> =
        desired.iter().map(|d| (d.appdb_id.as_str(), d)).collect();
    let existing_status: BTreeMap<String, String> = ours
        .iter()
        .chain(&others)
        .map(|e| (e.id.clone(), e.status.clone()))
        .collect();
    let dir = ctx.cache_dir(&src.sub.name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        rep.status = "failed";
        rep.failure = Some(Failure {
            stage: "download",
            error: format!("{}: {e}", dir.display()),
            remedy: "check paths.image-data".into(),
        });
        return rep;
    }
    let index = Arc::new(Mutex::new(Index::load(&dir)));

    // Creates (download + upload), bounded in parallel.
    let creates: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .collect();
    let results: Vec<ImageReport> = stream::iter(creates)
        .map(|a| {
            let Action::Create { appdb_id, replaces } = a else {
                unreachable!()
            };
            let d = desired_by_id[appdb_id.as_str()];
            let img = &wanted[appdb_id.as_str()];
            let index = index.clone();
            let members = &members;
            let existing_status = &existing_status;
            let dir = &dir;
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
                match create_one(ctx, g, src, d, img, dir, &index, members, &mut r).await {
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
                    Err((e, remedy)) => {
                        tracing::error!(list = %src.sub.name, image = %appdb_id, error = %e, remedy = %remedy, "image not synchronised");
                        r.error = Some(e);
                        r.remedy = Some(remedy);
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

    for a in &actions {
        let (name, appdb_id, glance_id) = action_name(a);
        let mut r = ImageReport {
            appdb_id: appdb_id.clone(),
            action: name.into(),
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
            tracing::error!(list = %src.sub.name, image = %appdb_id, glance_id = ?glance_id, error = %e, "Glance step failed");
            r.ok = false;
            r.remedy = Some(e.remedy().into());
            r.error = Some(e.to_string());
        } else {
            tracing::info!(list = %src.sub.name, image = %appdb_id, glance_id = ?glance_id, action = name, "done");
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

#[allow(clippy::too_many_arguments)]
async fn create_one(
    ctx: &Context,
    g: &GlanceAccess,
    src: &Source,
    d: &Desired,
    img: &ListImage,
    dir: &Path,
    index: &Arc<Mutex<Index>>,
    members: &[MemberProject],
    r: &mut ImageReport,
) -> Result<String, (String, String)> {
    let path = ensure_cached(ctx, src, img, dir, index, r).await?;
    let (upload_path, fmt, sha) = prepare(ctx, dir, &path, img, index, r).await.map_err(|e| {
        (
            format!("list {}, image {}: {e}", src.sub.name, img.identifier),
            "the image's format cannot be used by this site; see the error".to_string(),
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
        return Err((
            format!(
                "{} changed since it was verified; not uploaded",
                upload_path.display()
            ),
            "something modified paths.image-data; the next run re-verifies".into(),
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
            (
                format!("list {}, image {}: {e}", src.sub.name, img.identifier),
                e.remedy().to_string(),
            )
        })
}

/// The verified file of `img` in the cache: an indexed, unchanged file is
/// used as is (never hashed again); otherwise it is downloaded through the
/// verifier and indexed.
async fn ensure_cached(
    ctx: &Context,
    src: &Source,
    img: &ListImage,
    dir: &Path,
    index: &Arc<Mutex<Index>>,
    r: &mut ImageReport,
) -> Result<PathBuf, (String, String)> {
    let name = img.identifier.file_name();
    let cached = index.lock().expect("index").verified(&name, &img.sha512);
    if let Some(p) = cached {
        r.detail.insert("cache".into(), "hit".into());
        return Ok(p);
    }
    // Same-origin token only: never hand a list token to another host.
    let token = match &src.sub.source {
        ListSource::Url(u) if u.origin() == img.uri.origin() => src.token.as_ref(),
        _ => None,
    };
    let dl = ctx
        .fetcher
        .download(&img.uri, token, img.size, &img.sha512, dir, &name)
        .await
        .map_err(|e| {
            (
                format!("list {}, image {}: {e}", src.sub.name, img.identifier),
                e.remedy().to_string(),
            )
        })?;
    r.detail.insert("downloaded".into(), dl.transferred.into());
    if dl.resumed {
        r.detail.insert("resumed".into(), true.into());
    }
    index
        .lock()
        .expect("index")
        .record(&name, &img.sha512)
        .map_err(|e| {
            (
                format!("{}: {e}", dl.path.display()),
                "check paths.image-data".into(),
            )
        })?;
    Ok(dl.path)
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
    let dir = ctx.cache_dir(&src.sub.name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        rep.status = "failed";
        rep.failure = Some(Failure {
            stage: "download",
            error: format!("{}: {e}", dir.display()),
            remedy: "check paths.image-data".into(),
        });
        return rep;
    }
    let index = Arc::new(Mutex::new(Index::load(&dir)));
    let wanted: Vec<&ListImage> = accepted
        .list
        .images
        .iter()
        .filter(|img| policy::image_wanted(img, &src.sub.images, ctx.now).is_ok())
        .collect();
    let results: Vec<ImageReport> = stream::iter(wanted)
        .map(|img| {
            let index = index.clone();
            let dir = &dir;
            async move {
                let mut r = ImageReport {
                    appdb_id: img.identifier.as_str().to_string(),
                    action: "cache".into(),
                    glance_id: None,
                    ok: false,
                    detail: BTreeMap::new(),
                    error: None,
                    remedy: None,
                };
                match ensure_cached(ctx, src, img, dir, &index, &mut r).await {
                    Ok(p) => {
                        r.ok = true;
                        r.detail
                            .insert("path".into(), p.display().to_string().into());
                    }
                    Err((e, remedy)) => {
                        tracing::error!(list = %src.sub.name, image = %img.identifier, error = %e, remedy = %remedy, "image not cached");
                        r.error = Some(e);
                        r.remedy = Some(remedy);
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
    img: &ListImage,
    index: &Arc<Mutex<Index>>,
    r: &mut ImageReport,
) -> Result<(PathBuf, Format, String), String> {
    let key = &img.sha512[..32];
    let mut fmt = format::detect(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cur = path.to_path_buf();
    let mut sha = img.sha512.clone();
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
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let (h, _) = super::fetch::hash_file(&disk).map_err(|e| e.to_string())?;
                index
                    .lock()
                    .expect("index")
                    .record(&disk_name, &h)
                    .map_err(|e| e.to_string())?;
                h
            }
        };
        fmt = format::detect(&disk).map_err(|e| e.to_string())?;
        cur = disk;
        sha = digest;
    }
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
                format::convert(&cur, fmt, to, &out)
                    .await
                    .map_err(|e| e.to_string())?;
                let (h, _) = super::fetch::hash_file(&out).map_err(|e| e.to_string())?;
                index
                    .lock()
                    .expect("index")
                    .record(&out_name, &h)
                    .map_err(|e| e.to_string())?;
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
    /// Per source.
    pub sources: Vec<SourceReport>,
    /// Problems with the sources' definitions (legacy files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}
