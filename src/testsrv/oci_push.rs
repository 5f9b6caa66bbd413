//! Pushing a VM disk image to an OCI distribution registry the way EGI
//! publishes its VM images to `registry.egi.eu` (oras-style artifact: an
//! empty config, one layer holding the disk, annotations on the manifest
//! and the layer), for test setup and the reference site
//! (`fedcloud-testsrv oci-push`). Re-exported as
//! `testsrv::harbor::{push_image, ...}`.
//!
//! Blobs go up monolithically (`POST .../blobs/uploads/`, then one `PUT`
//! with `?digest=`); a disk file is hashed, then streamed from disk
//! (constant memory). A blob the registry already has (`HEAD` 200) is not
//! sent again. In token mode a token with `pull,push` on the repository is
//! fetched from the token service first.

use std::path::Path;

use serde_json::{json, Value};
use sha2::Digest as _;
use url::Url;

/// The manifest's `artifactType` (EGI VM image).
pub const ARTIFACT_TYPE: &str = "application/vnd.egi.cloud.image.v1";
/// The disk layer's media type.
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The disk image to push.
#[derive(Debug, Clone, Copy)]
pub enum Disk<'a> {
    /// In memory (tests).
    Bytes(&'a [u8]),
    /// A file, streamed.
    File(&'a Path),
}

/// How to get a push token (registry in token mode).
#[derive(Clone)]
pub struct PushAuth {
    /// The token service, e.g. `http://127.0.0.1:8446/service/token`.
    pub token_service: Url,
    /// The registry's service name (`harbor-registry`).
    pub service: String,
    /// Robot credentials (user, password); anonymous without.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for PushAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushAuth")
            .field("token_service", &self.token_service.as_str())
            .field("service", &self.service)
            .field("user", &self.credentials.as_ref().map(|c| c.0.as_str()))
            .finish()
    }
}

/// What was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest digest (`sha256:...`).
    pub manifest: String,
    /// The disk layer's digest.
    pub layer: String,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Transport failure.
    #[error("{what}: {source}")]
    Http {
        /// The request.
        what: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Unexpected status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// The status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Reading the disk file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An answer without what the protocol requires.
    #[error("{what}: {problem}")]
    Protocol {
        /// The request.
        what: String,
        /// What was missing.
        problem: String,
    },
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

fn v2(base: &Url, rest: &str) -> String {
    format!("{}/v2/{rest}", base.as_str().trim_end_matches('/'))
}

async fn expect(
    r: Result<reqwest::Response, reqwest::Error>,
    what: &str,
    ok: &[u16],
) -> Result<reqwest::Response, PushError> {
    let r = r.map_err(|e| PushError::Http {
        what: what.to_string(),
        source: e.without_url(),
    })?;
    if ok.contains(&r.status().as_u16()) {
        return Ok(r);
    }
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    Err(PushError::Status {
        what: what.to_string(),
        status,
        body: body.chars().take(300).collect(),
    })
}

/// A registry token for `scope` (`repository:<name>:pull,push`).
pub async fn fetch_token(
    c: &reqwest::Client,
    auth: &PushAuth,
    scope: &str,
) -> Result<String, PushError> {
    let mut u = auth.token_service.clone();
    u.query_pairs_mut()
        .append_pair("service", &auth.service)
        .append_pair("scope", scope);
    let what = format!("GET {} (scope {scope})", auth.token_service);
    let mut rq = c.get(u);
    if let Some((user, pw)) = &auth.credentials {
        rq = rq.basic_auth(user, Some(pw));
    }
    let r = expect(rq.send().await, &what, &[200]).await?;
    let v: Value = r.json().await.map_err(|e| PushError::Http {
        what: what.clone(),
        source: e.without_url(),
    })?;
    v["token"]
        .as_str()
        .or_else(|| v["access_token"].as_str())
        .map(String::from)
        .ok_or(PushError::Protocol {
            what,
            problem: "no `token` in the answer".into(),
        })
}

/// A blob to push: bytes, or a file with its size and digest.
enum Blob<'a> {
    Bytes(&'a [u8]),
    File(&'a Path, u64),
}

/// Size and sha256 of a file, read in 1 MiB chunks.
async fn hash_file(path: &Path) -> Result<(u64, String), PushError> {
    use tokio::io::AsyncReadExt as _;
    let io = |source| PushError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).await.map_err(io)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, format!("sha256:{}", hex::encode(h.finalize()))))
}

fn with_token(rq: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => rq.bearer_auth(t),
        None => rq,
    }
}

async fn put_blob(
    c: &reqwest::Client,
    base: &Url,
    repo: &str,
    blob: Blob<'_>,
    digest: &str,
    token: Option<&str>,
) -> Result<(), PushError> {
    let head = format!("HEAD {}", v2(base, &format!("{repo}/blobs/{digest}")));
    let r = expect(
        with_token(c.head(v2(base, &format!("{repo}/blobs/{digest}"))), token)
            .send()
            .await,
        &head,
        &[200, 404],
    )
    .await?;
    if r.status() == 200 {
        return Ok(());
    }
    let start = v2(base, &format!("{repo}/blobs/uploads/"));
    let what = format!("POST {start}");
    let r = expect(
        with_token(c.post(&start), token).send().await,
        &what,
        &[202],
    )
    .await?;
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or(PushError::Protocol {
            what: what.clone(),
            problem: "no Location header".into(),
        })?;
    let mut loc = base.join(loc).map_err(|e| PushError::Protocol {
        what: what.clone(),
        problem: format!("bad Location {loc:?}: {e}"),
    })?;
    loc.query_pairs_mut().append_pair("digest", digest);
    let what = format!("PUT blob {digest} to {repo}");
    let rq = with_token(c.put(loc), token).header("content-type", "application/octet-stream");
    let rq = match blob {
        Blob::Bytes(b) => rq.body(b.to_vec()),
        Blob::File(p, size) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|source| PushError::Io {
                    path: p.display().to_string(),
                    source,
                })?;
            rq.header("content-length", size)
                .body(reqwest::Body::from(f))
        }
    };
    expect(rq.send().await, &what, &[201]).await?;
    Ok(())
}

/// Push one in-memory blob to `repo` (monolithic upload); its digest.
pub async fn push_blob(
    c: &reqwest::Client,
    base: &Url,
    repo: &str,
    data: &[u8],
    token: Option<&str>,
) -> Result<String, PushError> {
    let digest = sha256(data);
    put_blob(c, base, repo, Blob::Bytes(data), &digest, token).await?;
    Ok(digest)
}

/// Push a disk image as an EGI VM image artifact to `registry` (the
/// registry, or a Harbor front that forwards `/v2/`): the disk as the one
/// layer (title `disk.img`, or the file's name), `annotations` on the
/// manifest and the layer, one manifest `PUT` per tag.
pub async fn push_image(
    c: &reqwest::Client,
    registry: &Url,
    repo: &str,
    tags: &[&str],
    disk: Disk<'_>,
    annotations: &Value,
    auth: Option<&PushAuth>,
) -> Result<Pushed, PushError> {
    let token = match auth {
        Some(a) => Some(fetch_token(c, a, &format!("repository:{repo}:pull,push")).await?),
        None => None,
    };
    let token = token.as_deref();
    let (layer, size, title) = match disk {
        Disk::Bytes(b) => (
            push_blob(c, registry, repo, b, token).await?,
            b.len() as u64,
            "disk.img".to_string(),
        ),
        Disk::File(p) => {
            let (size, digest) = hash_file(p).await?;
            put_blob(c, registry, repo, Blob::File(p, size), &digest, token).await?;
            let title = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "disk.img".into());
            (digest, size, title)
        }
    };
    let config = b"{}";
    let config_digest = push_blob(c, registry, repo, config, token).await?;
    let mut layer_ann = match annotations {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    layer_ann["org.opencontainers.image.title"] = json!(title);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer, "size": size,
                    "annotations": layer_ann}],
        "annotations": annotations,
    });
    let body = serde_json::to_vec(&manifest).unwrap_or_default();
    for t in tags {
        let what = format!("PUT manifest {repo}:{t}");
        expect(
            with_token(c.put(v2(registry, &format!("{repo}/manifests/{t}"))), token)
                .header("content-type", MANIFEST_TYPE)
                .body(body.clone())
                .send()
                .await,
            &what,
            &[201],
        )
        .await?;
    }
    Ok(Pushed {
        manifest: sha256(&body),
        layer,
    })
}
