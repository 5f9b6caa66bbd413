//! Applying a plan to Glance (v2 REST through [`crate::openstack::image`]):
//! create (private, labelled) -> streamed upload -> check Glance's own
//! size and sha512 against the verified file -> visibility -> members ->
//! retire the previous version. Any failure after the create deletes the
//! new image, so nothing half-done or unverified stays in Glance. Retiring
//! deletes; when Glance refuses (in use), the image is made private and
//! deactivated, and retried on later runs. Members are reconciled per VO
//! project: added by the owner, accepted with a token scoped to the member
//! project, stale ones removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::openstack::{image, Error, Session};

use super::format::Format;
use super::plan::{Desired, Existing, PatchOp, Visibility};

/// A project images are shared with, and a session scoped to it (to
/// accept the membership).
#[derive(Clone)]
pub struct MemberProject {
    /// Project id.
    pub id: String,
    /// The VO it serves (for reports).
    pub vo: String,
    /// Scoped to the project.
    pub session: Session,
}

impl std::fmt::Debug for MemberProject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberProject")
            .field("id", &self.id)
            .field("vo", &self.vo)
            .finish()
    }
}

/// Images of the owner project carrying `tag`, split into this list's
/// (`image_list == list`) and the others.
pub async fn existing(
    s: &Session,
    tag: &str,
    list: &str,
) -> Result<(Vec<Existing>, Vec<Existing>), Error> {
    let all = image::images(
        s,
        &image::ImageQuery {
            tags: vec![tag.to_string()],
            ..Default::default()
        },
    )
    .await?;
    let owner = s.project_id().map(String::from);
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for i in all {
        if owner.is_some() && i.owner != owner {
            continue; // shared with us, not ours to manage
        }
        let e = Existing::from_glance(&i.raw, i.created_at);
        if e.properties.get("image_list").map(String::as_str) == Some(list) {
            ours.push(e);
        } else {
            others.push(e);
        }
    }
    Ok((ours, others))
}

/// Images of the owner project with `appdb_id` (whatever their tags), for
/// adoption.
pub async fn by_appdb_id(s: &Session, appdb_id: &str) -> Result<Vec<Existing>, Error> {
    let all = image::images(
        s,
        &image::ImageQuery {
            properties: vec![("appdb_id".into(), appdb_id.into())],
            ..Default::default()
        },
    )
    .await?;
    let owner = s.project_id().map(String::from);
    Ok(all
        .into_iter()
        .filter(|i| owner.is_none() || i.owner == owner)
        .map(|i| Existing::from_glance(&i.raw, i.created_at))
        .collect())
}

/// Why an image step failed.
#[derive(Debug, thiserror::Error)]
pub enum GlanceStepError {
    /// Glance refused or failed a call.
    #[error("Glance refused {step}: {source}")]
    Api {
        /// create, upload, patch, ...
        step: &'static str,
        /// The client error (names the request).
        source: Error,
    },
    /// Glance stored other bytes than we sent.
    #[error("Glance stored different data for image {glance_id}: {detail}; the image was deleted")]
    Mismatch {
        /// The image.
        glance_id: String,
        /// What differed.
        detail: String,
    },
    /// Glance refused the data itself (HTTP 415 on upload: its format
    /// inspector, "Image failed safety checks", or a content that does not
    /// match the disk format).
    #[error("Glance refused the image data of {glance_id}: on an upload, HTTP 415 means that Glance's format inspector refused the content (\"Image failed safety checks\" in Glance's log), whatever its message says ({message}); the new image was deleted")]
    ContentRefused {
        /// The image (deleted).
        glance_id: String,
        /// Glance's message, whole.
        message: String,
    },
    /// The verified file changed on disk before upload.
    #[error("{path} changed since it was verified; not uploaded")]
    Changed {
        /// The file.
        path: String,
    },
}

impl GlanceStepError {
    /// What the operator can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            GlanceStepError::Api { source, .. } => match source.status() {
                Some(401) | Some(403) => {
                    "check that the site credential may manage Glance images in its project"
                }
                Some(413) => {
                    "Glance refused the size: raise its image_size_cap or the project's quota"
                }
                Some(s) if s >= 500 => {
                    "Glance failed (transient): the next run retries; nothing half-done was left"
                }
                _ => "see the error; the next run retries and nothing half-done was left",
            },
            GlanceStepError::Mismatch { .. } => {
                "check Glance's storage backend; the next run retries"
            }
            GlanceStepError::ContentRefused { .. } => {
                "Glance's format inspector refused the file (a disk image feature Glance does not accept: a backing or data file, unknown qcow2 features, an unsafe VMDK or GPT, or content that does not match its disk format); nothing was kept in Glance and this version is not tried again until the source changes it (or `appliance images sync --retry-failed`); report it to the image's publisher"
            }
            GlanceStepError::Changed { .. } => {
                "something modified paths.image-data; the next run re-verifies"
            }
        }
    }
}

fn api(step: &'static str) -> impl Fn(Error) -> GlanceStepError {
    move |source| GlanceStepError::Api { step, source }
}

/// The file to upload and what Glance must end up holding.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The verified file.
    pub path: &'a Path,
    /// Its format (what is uploaded).
    pub format: Format,
    /// Its size.
    pub size: u64,
    /// Its sha512 (hex).
    pub sha512: &'a str,
}

/// Create, upload, verify, publish and share one image; returns its id.
pub async fn create_and_upload(
    s: &Session,
    d: &Desired,
    tag: &str,
    up: &Upload<'_>,
    members: &[MemberProject],
    upload_tries: u32,
) -> Result<String, GlanceStepError> {
    let mut body = json!({
        "name": d.name,
        "disk_format": up.format.as_str(),
        "container_format": "bare",
        "visibility": "private",
        "tags": [tag],
    });
    for (k, v) in &d.properties {
        body[k] = Value::String(v.clone());
    }
    if let Some(ram) = d.min_ram {
        body["min_ram"] = Value::from(ram);
    }
    let img = image::create_image(s, &body).await.map_err(api("create"))?;
    let id = img.id.clone();
    tracing::info!(glance_id = %id, appdb_id = %d.appdb_id, bytes = up.size, "created; uploading");
    let r = upload_verify_publish(s, &id, d, up, members, upload_tries).await;
    if let Err(e) = &r {
        tracing::warn!(glance_id = %id, appdb_id = %d.appdb_id, error = %e, "upload failed; deleting the new image");
        if let Err(de) = image::delete_image(s, &id).await {
            tracing::warn!(glance_id = %id, error = %de, "could not delete the failed image; a later run cleans it up (it is private and has no verified data)");
        }
    }
    r.map(|()| id)
}

async fn upload_verify_publish(
    s: &Session,
    id: &str,
    d: &Desired,
    up: &Upload<'_>,
    members: &[MemberProject],
    tries: u32,
) -> Result<(), GlanceStepError> {
    let path = up.path.to_path_buf();
    // Generous: slow backends take a while per GiB.
    let timeout = Duration::from_secs(600 + up.size / (1 << 20));
    let mut attempt = 0;
    loop {
        let p = path.clone();
        let r = image::upload_image(
            s,
            id,
            up.size,
            move || {
                let p = p.clone();
                let stream = futures::stream::once(async move { tokio::fs::File::open(p).await })
                    .map_ok(tokio_util_reader)
                    .try_flatten();
                reqwest::Body::wrap_stream(stream)
            },
            timeout,
        )
        .await;
        match r {
            Ok(()) => break,
            Err(e) if attempt + 1 < tries && e.status().is_none_or(|c| c >= 500) => {
                // Glance puts a failed upload back to `queued`; try again then.
                let st = image::image(s, id)
                    .await
                    .map(|i| i.status)
                    .unwrap_or_default();
                if st != "queued" {
                    return Err(api("upload")(e));
                }
                tracing::warn!(glance_id = %id, attempt = attempt + 1, error = %e, "upload failed; retrying");
                tokio::time::sleep(Duration::from_secs(1 << attempt.min(4))).await;
                attempt += 1;
            }
            Err(Error::Http {
                status: 415, body, ..
            }) => {
                return Err(GlanceStepError::ContentRefused {
                    glance_id: id.to_string(),
                    message: body,
                })
            }
            Err(e) => return Err(api("upload")(e)),
        }
    }
    let img = image::image(s, id).await.map_err(api("read back"))?;
    let mismatch = |detail: String| GlanceStepError::Mismatch {
        glance_id: id.into(),
        detail,
    };
    if img.status != "active" {
        return Err(mismatch(format!(
            "status is {} after the upload",
            img.status
        )));
    }
    if img.size != Some(up.size) {
        return Err(mismatch(format!(
            "size {:?}, expected {}",
            img.size, up.size
        )));
    }
    match (img.os_hash_algo.as_deref(), img.os_hash_value.as_deref()) {
        (Some("sha512"), Some(v)) if v != up.sha512 => {
            return Err(mismatch(format!("sha512 {v}, expected {}", up.sha512)))
        }
        (Some("sha512"), Some(_)) => {}
        (algo, _) => {
            tracing::warn!(glance_id = %id, algo = ?algo, "Glance does not report a sha512 (os_hash_algo); only the size was checked")
        }
    }
    if d.visibility != Visibility::Private {
        let ops = json!([{"op": "replace", "path": "/visibility", "value": d.visibility.as_str()}]);
        image::update_image(s, id, &ops)
            .await
            .map_err(api("set visibility"))?;
    }
    if d.visibility == Visibility::Shared {
        share(s, id, members).await?;
    }
    Ok(())
}

fn tokio_util_reader(
    f: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(f, |mut f| async move {
        let mut buf = bytes::BytesMut::with_capacity(1 << 20);
        crate::progress::alive();
        match f.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), f)),
            Err(e) => Some((Err(e), f)),
        }
    })
}

use futures::TryStreamExt as _;

/// Apply a metadata patch.
pub async fn patch(s: &Session, id: &str, ops: &[PatchOp]) -> Result<(), GlanceStepError> {
    if ops.is_empty() {
        return Ok(());
    }
    let v = serde_json::to_value(ops).expect("patch JSON");
    image::update_image(s, id, &v)
        .await
        .map(|_| ())
        .map_err(api("metadata update"))
}

/// What retiring did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retired {
    /// Deleted.
    Deleted,
    /// Glance refused the delete; now private and deactivated.
    Deactivated,
}

/// Delete `id`; if Glance refuses, make it private and deactivate it.
pub async fn retire(
    s: &Session,
    id: &str,
    status: Option<&str>,
) -> Result<Retired, GlanceStepError> {
    match image::delete_image(s, id).await {
        Ok(()) => Ok(Retired::Deleted),
        Err(Error::NotFound { .. }) => Ok(Retired::Deleted),
        Err(e) => {
            tracing::warn!(glance_id = %id, error = %e, "delete refused (in use?); making it private and deactivating it");
            let ops = json!([{"op": "replace", "path": "/visibility", "value": "private"}]);
            image::update_image(s, id, &ops)
                .await
                .map_err(api("make private"))?;
            if status != Some("deactivated") {
                image::deactivate_image(s, id)
                    .await
                    .map_err(api("deactivate"))?;
            }
            Ok(Retired::Deactivated)
        }
    }
}

/// What member reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sharing {
    /// Projects added.
    pub added: Vec<String>,
    /// Memberships accepted.
    pub accepted: Vec<String>,
    /// Stale members removed.
    pub removed: Vec<String>,
}

/// Members of `id` = `members` exactly, each accepted.
pub async fn share(
    s: &Session,
    id: &str,
    members: &[MemberProject],
) -> Result<Sharing, GlanceStepError> {
    let owner = s.project_id().unwrap_or("").to_string();
    let now: BTreeMap<String, String> = image::members(s, id)
        .await
        .map_err(api("list members"))?
        .into_iter()
        .map(|m| (m.member_id, m.status))
        .collect();
    let want: BTreeSet<&str> = members
        .iter()
        .map(|m| m.id.as_str())
        .filter(|p| *p != owner)
        .collect();
    let mut out = Sharing::default();
    for m in members.iter().filter(|m| m.id != owner) {
        match now.get(&m.id) {
            None => {
                match image::add_member(s, id, &m.id).await {
                    Ok(()) | Err(Error::Http { status: 409, .. }) => {}
                    Err(e) => return Err(api("add member")(e)),
                }
                out.added.push(m.id.clone());
            }
            Some(st) if st == "accepted" => continue,
            Some(_) => {}
        }
        image::set_member_status(&m.session, id, &m.id, "accepted")
            .await
            .map_err(api("accept membership (scoped to the member project)"))?;
        out.accepted.push(m.id.clone());
    }
    for p in now.keys() {
        if !want.contains(p.as_str()) {
            image::remove_member(s, id, p)
                .await
                .map_err(api("remove member"))?;
            out.removed.push(p.clone());
        }
    }
    Ok(out)
}
