//! Harbor/OCI image sources (issue #3, `type: harbor`): listing a Harbor
//! v2.0 API (projects -> repositories -> artifacts, paginated with
//! `Link: <...>; rel="next"`), reading each artifact's manifest from the
//! registry (`/v2/<project>/<repo>/manifests/<digest>`), and turning the
//! first layer into the Glance image atrope's Harbor source would create.
//!
//! Pure parts: [`next_link`], [`select`] (which artifacts become images:
//! `eu.egi.cloud.tag` present and matching the tag pattern) and
//! [`desired`] (the Glance name and properties), [`as_replacements`] (a
//! new digest for a tag replaces the old image only after the new one is
//! active). I/O: [`Harbor`] (listing and manifests, optional robot
//! credentials, HTTP Basic, the registry's bearer-token challenge, and
//! [`Harbor::blob_access`] for the layer download).
//!
//! The run itself (listing guard, verified download into the cache,
//! Glance, sharing, reports) is [`super::sync::sync_registry`].

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use super::plan::{Action, Conventions, Desired, Existing, Visibility};
use crate::secret::Secret;

/// The annotation that marks an artifact as an EGI VM image (its tag).
pub const TAG_ANNOTATION: &str = "eu.egi.cloud.tag";
/// The annotation atrope adds to `APPLIANCE_ATTRIBUTES`: the image reference.
pub const IMAGE_REF_ANNOTATION: &str = "eu.egi.cloud.image_ref";

/// Errors talking to Harbor or the registry.
#[derive(Debug, thiserror::Error)]
pub enum HarborError {
    /// Transport failure.
    #[error("{url}: {}", crate::scheme::error_text(source))]
    Http {
        /// The request (credentials never appear in it).
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Non-success status.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The request.
        url: String,
        /// The status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Unexpected JSON.
    #[error("{url}: {what}")]
    Shape {
        /// The request.
        url: String,
        /// What was wrong.
        what: String,
    },
}

impl HarborError {
    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            HarborError::Http { .. } => "check the registry URL and network; the next run retries",
            HarborError::Status {
                status: 401 | 403, ..
            } => "check the robot account credentials in the secrets file",
            HarborError::Status { status: 404, .. } => {
                "check the project and repository names of the subscription"
            }
            HarborError::Status { .. } => "the registry failed; the next run retries",
            HarborError::Shape { .. } => "the registry does not speak the Harbor v2.0 API",
        }
    }
}

/// The URL in a `Link` header's `rel="next"` entry, resolved against `base`.
pub fn next_link(base: &Url, link: &str) -> Option<Url> {
    for part in link.split(',') {
        let mut it = part.split(';');
        let target = it.next()?.trim();
        if it.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            let target = target.trim_start_matches('<').trim_end_matches('>');
            return base.join(target).ok();
        }
    }
    None
}

/// One artifact as the Harbor API lists it (the fields used).
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// `<project>/<repo>`.
    pub repository: String,
    /// The manifest digest (`sha256:...`).
    pub digest: String,
    /// Its tag names.
    pub tags: Vec<String>,
    /// The manifest annotations.
    pub annotations: Map<String, Value>,
}

impl Artifact {
    /// From one element of Harbor's artifact list.
    pub fn from_api(repository: &str, v: &Value) -> Option<Artifact> {
        Some(Artifact {
            repository: repository.to_string(),
            digest: v["digest"].as_str()?.to_string(),
            tags: v["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(String::from))
                .collect(),
            annotations: v["annotations"].as_object().cloned().unwrap_or_default(),
        })
    }

    /// `eu.egi.cloud.tag`, if any.
    pub fn egi_tag(&self) -> Option<&str> {
        self.annotations
            .get(TAG_ANNOTATION)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    }
}

/// Why an artifact was left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// `<project>/<repo>@<digest>`.
    pub artifact: String,
    /// Why.
    pub reason: String,
    /// Dropped as unsafe (a malformed name or digest), rather than left
    /// out by the selection (no EGI tag, no tag matching the pattern).
    #[serde(skip)]
    pub dropped: bool,
}

/// The artifacts to sync, each with the tag it is synced under, and the
/// skipped ones with reasons. As atrope's Harbor source: an artifact needs
/// the `eu.egi.cloud.tag` annotation and a tag name; the tag is its first
/// tag (in Harbor's order) that `tag_pattern` matches as a whole (any tag
/// without a pattern).
pub fn select(
    artifacts: Vec<Artifact>,
    tag_pattern: Option<&Regex>,
) -> (Vec<(Artifact, String)>, Vec<Skipped>) {
    let mut keep = Vec::new();
    let mut skipped = Vec::new();
    for a in artifacts {
        let name = format!("{}@{}", a.repository, a.digest);
        if let Err(why) = safe_reference(&a) {
            skipped.push(Skipped {
                artifact: super::text::shown(&name).into_owned(),
                reason: why,
                dropped: true,
            });
            continue;
        }
        if a.egi_tag().is_none() {
            skipped.push(Skipped {
                artifact: name,
                reason: format!("no {TAG_ANNOTATION} annotation"),
                dropped: false,
            });
            continue;
        }
        let tag = a
            .tags
            .iter()
            .filter(|t| oci_tag(t))
            .find(|t| tag_pattern.is_none_or(|re| full_match(re, t)))
            .cloned();
        match tag {
            Some(t) => keep.push((a, t)),
            None if a.tags.is_empty() => skipped.push(Skipped {
                artifact: name,
                reason: "no tag".into(),
                dropped: false,
            }),
            None => skipped.push(Skipped {
                artifact: name,
                reason: format!(
                    "no (valid) tag matches tag-pattern (tags: {})",
                    super::text::shown(&a.tags.join(", "))
                ),
                dropped: false,
            }),
        }
    }
    (keep, skipped)
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn oci_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// An OCI repository name: `/`-separated components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, at most 255 characters.
pub fn oci_repository(r: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
            && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
            && !c.contains("..")
            && !c.contains("___")
    }
    r.len() <= 255 && r.split('/').all(component)
}

/// The repository and manifest digest of an artifact are well formed (an
/// answer that is not can only come from a broken or hostile registry:
/// they become Glance properties, names and URL paths).
fn safe_reference(a: &Artifact) -> Result<(), String> {
    if !oci_repository(&a.repository) {
        return Err("unsafe repository name (not an OCI repository name); left out".into());
    }
    let hex = a.digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("unsafe manifest digest (not sha256:<64 hex>); left out".into());
    }
    Ok(())
}

fn full_match(re: &Regex, s: &str) -> bool {
    re.find(s)
        .is_some_and(|m| m.start() == 0 && m.end() == s.len())
}

/// The image layer of a manifest (`layers[0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// The layer's annotations (the manifest's when the layer has none).
    pub annotations: Map<String, Value>,
}

impl Layer {
    /// From a manifest.
    pub fn from_manifest(m: &Value) -> Result<Layer, String> {
        let l = &m["layers"][0];
        let digest = l["digest"]
            .as_str()
            .ok_or("manifest has no layers[0].digest")?;
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("layers[0].digest {digest:?} is not sha256:<64 hex>"))?;
        let size = l["size"].as_u64().ok_or("manifest has no layers[0].size")?;
        let annotations = l["annotations"]
            .as_object()
            .filter(|a| !a.is_empty())
            .or_else(|| m["annotations"].as_object())
            .cloned()
            .unwrap_or_default();
        Ok(Layer {
            digest: format!("sha256:{}", hex.to_ascii_lowercase()),
            size,
            annotations,
        })
    }

    /// The hex sha256 the download must match.
    pub fn sha256_hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// `<registry host[:port]>/<project>/<repo>:<tag>-<artifact digest>`, the
/// `appdb_id` and `vmcatcher_event_ad_mpuri` of a registry image.
pub fn image_ref(registry: &Url, a: &Artifact, tag: &str) -> String {
    let host = match (registry.host_str(), registry.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    format!("{host}/{}:{tag}-{}", a.repository, a.digest)
}

/// The Glance image an artifact, synced under `tag`, should become.
pub fn desired(
    source_name: &str,
    registry: &Url,
    a: &Artifact,
    tag: &str,
    layer: &Layer,
    visibility: Visibility,
    c: &Conventions,
) -> Desired {
    let r = image_ref(registry, a, tag);
    let mut attrs = layer.annotations.clone();
    attrs.insert(IMAGE_REF_ANNOTATION.into(), Value::String(r.clone()));
    let mut p = BTreeMap::new();
    let hash = layer.digest.clone();
    p.insert("appdb_id".to_string(), r.clone());
    p.insert("image_hash".to_string(), hash.clone());
    p.insert("image_list".to_string(), source_name.to_string());
    p.insert("vmcatcher_event_ad_mpuri".to_string(), r.clone());
    for (k, g) in [
        ("vmcatcher_event_dc_description", "eu.egi.cloud.description"),
        ("os_distro", "org.openstack.glance.os_distro"),
        ("os_version", "org.openstack.glance.os_version"),
        ("architecture", "org.openstack.glance.architecture"),
    ] {
        if let Some(v) = layer
            .annotations
            .get(g)
            .or_else(|| a.annotations.get(g))
            .and_then(Value::as_str)
            .map(super::plan::glance_value)
            .filter(|v| !v.is_empty())
        {
            p.insert(k.to_string(), v);
        }
    }
    p.insert(
        "APPLIANCE_ATTRIBUTES".to_string(),
        super::plan::attributes(&attrs),
    );
    Desired {
        appdb_id: r,
        name: super::plan::glance_name(&c.prefix, "", &format!("{}:{tag}", a.repository)),
        image_hash: hash,
        properties: p,
        min_ram: None,
        visibility,
    }
}

/// A Harbor v2.0 API client (one registry).
#[derive(Clone)]
pub struct Harbor {
    http: reqwest::Client,
    base: Url,
    credentials: Option<(String, Secret)>,
    page_size: u32,
}

impl std::fmt::Debug for Harbor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harbor")
            .field("base", &self.base.as_str())
            .field("robot", &self.credentials.as_ref().map(|c| c.0.as_str()))
            .finish()
    }
}

/// Page size of the listings.
const PAGE_SIZE: u32 = 100;

impl Harbor {
    /// A client for `base` (`https://registry.example`), with optional robot
    /// credentials (user, password).
    pub fn new(http: reqwest::Client, base: Url, credentials: Option<(String, Secret)>) -> Harbor {
        Harbor {
            http,
            base,
            credentials,
            page_size: PAGE_SIZE,
        }
    }

    /// The same client listing `n` elements per page (1..=100).
    pub fn with_page_size(mut self, n: u32) -> Harbor {
        self.page_size = n.clamp(1, 100);
        self
    }

    /// The registry base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let p = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        u.set_path(&p);
        u
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
        accept: &str,
        bearer: Option<&Secret>,
    ) -> reqwest::RequestBuilder {
        let rq = self
            .http
            .request(method, url.clone())
            .header("accept", accept);
        match (bearer, &self.credentials) {
            (Some(t), _) => rq.bearer_auth(t.expose()),
            (None, Some((u, p))) => rq.basic_auth(u, Some(p.expose())),
            (None, None) => rq,
        }
    }

    /// Send with the robot's Basic credentials (or none); Harbor's registry
    /// may answer `/v2/` with a bearer challenge: then fetch a token
    /// (anonymously or with the robot account) and send once more with it.
    /// A non-success answer is an error. Gives the answer and the token
    /// used, if any.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        accept: &str,
    ) -> Result<(reqwest::Response, Option<Secret>), HarborError> {
        let shown = crate::redact::url(url);
        let send = |rq: reqwest::RequestBuilder| {
            let shown = shown.clone();
            async move {
                rq.send().await.map_err(|e| HarborError::Http {
                    url: shown,
                    source: e.without_url(),
                })
            }
        };
        let mut r = send(self.request(method.clone(), url, accept, None)).await?;
        let mut token = None;
        let challenge = (r.status() == reqwest::StatusCode::UNAUTHORIZED)
            .then(|| {
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer_challenge)
            })
            .flatten();
        if let Some(c) = challenge {
            let t = self.token(&c).await?;
            r = send(self.request(method, url, accept, Some(&t))).await?;
            token = Some(t);
        }
        if !r.status().is_success() {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            return Err(HarborError::Status {
                url: shown,
                status,
                body: crate::openstack::error::excerpt(body.as_bytes(), &[]),
            });
        }
        Ok((r, token))
    }

    async fn get(&self, url: &Url, accept: &str) -> Result<reqwest::Response, HarborError> {
        Ok(self.send(reqwest::Method::GET, url, accept).await?.0)
    }

    /// A registry token for a bearer challenge.
    async fn token(&self, c: &BearerChallenge) -> Result<Secret, HarborError> {
        let mut u = Url::parse(&c.realm).map_err(|e| HarborError::Shape {
            url: c.realm.clone(),
            what: format!("bearer realm is not a URL: {e}"),
        })?;
        // https, or http when the registry itself is reached over http
        // (which `images.allow-http: [registries]` allowed).
        let http = crate::scheme::Http::allowed_if(self.base.scheme() == "http");
        if let Err(e) = crate::scheme::check(&u, "the bearer realm (token service)", http) {
            return Err(HarborError::Shape {
                url: e.url.clone(),
                what: format!("{e}; credentials are not sent there"),
            });
        }
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = &c.service {
                q.append_pair("service", s);
            }
            if let Some(s) = &c.scope {
                q.append_pair("scope", s);
            }
        }
        let shown = crate::redact::url(&u);
        let r = self
            .request(reqwest::Method::GET, &u, "application/json", None)
            .send()
            .await
            .map_err(|e| HarborError::Http {
                url: shown.clone(),
                source: e.without_url(),
            })?;
        if !r.status().is_success() {
            return Err(HarborError::Status {
                url: shown,
                status: r.status().as_u16(),
                body: String::new(),
            });
        }
        let v: Value = r.json().await.map_err(|e| HarborError::Shape {
            url: shown.clone(),
            what: format!("token answer not JSON: {e}"),
        })?;
        v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .map(|t| Secret::new(t.to_string()))
            .ok_or(HarborError::Shape {
                url: shown,
                what: "token answer has no `token`".into(),
            })
    }

    /// How to download a layer blob: the registry is probed (`HEAD`) with
    /// the robot's Basic credentials (or none); a bearer challenge is
    /// answered with a token from the registry's token service, and the
    /// probe repeated with it.
    pub async fn blob_access(
        &self,
        a: &Artifact,
        layer: &Layer,
    ) -> Result<(Url, BlobAuth), HarborError> {
        let url = self.blob_url(a, layer);
        let (_, token) = self
            .send(reqwest::Method::HEAD, &url, "application/octet-stream")
            .await?;
        let auth = match (token, &self.credentials) {
            (Some(t), _) => BlobAuth::Bearer(t),
            (None, Some((u, p))) => BlobAuth::Basic(u.clone(), p.clone()),
            (None, None) => BlobAuth::None,
        };
        Ok((url, auth))
    }

    /// Every element of a paginated Harbor list.
    pub async fn list_all(&self, path: &str) -> Result<Vec<Value>, HarborError> {
        let mut url = self.url(path);
        url.query_pairs_mut()
            .append_pair("page", "1")
            .append_pair("page_size", &self.page_size.to_string());
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let r = self.get(&url, "application/json").await?;
            let next = r
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| next_link(&url, l));
            let shown = crate::redact::url(&url);
            let v: Value = r.json().await.map_err(|e| HarborError::Shape {
                url: shown.clone(),
                what: format!("not JSON: {e}"),
            })?;
            match v {
                Value::Array(a) => out.extend(a),
                _ => {
                    return Err(HarborError::Shape {
                        url: shown,
                        what: "expected a JSON array".into(),
                    })
                }
            }
            match next {
                Some(n) if n.origin() != self.base.origin() => {
                    return Err(HarborError::Shape {
                        url: shown,
                        what: format!(
                            "the next-page link leads to another site ({}); not followed",
                            crate::redact::url(&n)
                        ),
                    })
                }
                Some(n) if pages < 10_000 => url = n,
                _ => return Ok(out),
            }
        }
    }

    /// The repositories of `project` (`<project>/<repo>` names).
    pub async fn repositories(&self, project: &str) -> Result<Vec<String>, HarborError> {
        let p = enc(project);
        Ok(self
            .list_all(&format!("/api/v2.0/projects/{p}/repositories"))
            .await?
            .iter()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect())
    }

    /// The artifacts of `<project>/<repo>`.
    pub async fn artifacts(&self, repository: &str) -> Result<Vec<Artifact>, HarborError> {
        let (project, repo) = repository.split_once('/').unwrap_or((repository, ""));
        let path = format!(
            "/api/v2.0/projects/{}/repositories/{}/artifacts",
            enc(project),
            enc(repo)
        );
        let all = self.list_all(&path).await?;
        Ok(all
            .iter()
            .filter_map(|v| Artifact::from_api(repository, v))
            .collect())
    }

    /// Every artifact of `project`, optionally only repositories whose
    /// name (without the project) fully matches `repo_filter`.
    pub async fn project_artifacts(
        &self,
        project: &str,
        repo_filter: Option<&Regex>,
    ) -> Result<Vec<Artifact>, HarborError> {
        let mut out = Vec::new();
        for r in self.repositories(project).await? {
            let short = r.split_once('/').map(|x| x.1).unwrap_or(&r);
            if repo_filter.is_some_and(|re| !full_match(re, short)) {
                continue;
            }
            out.extend(self.artifacts(&r).await?);
        }
        Ok(out)
    }

    /// The manifest of an artifact, from the registry.
    pub async fn manifest(&self, a: &Artifact) -> Result<Value, HarborError> {
        let url = self.url(&format!("/v2/{}/manifests/{}", a.repository, a.digest));
        let r = self
            .get(
                &url,
                "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            )
            .await?;
        let shown = crate::redact::url(&url);
        r.json().await.map_err(|e| HarborError::Shape {
            url: shown,
            what: format!("manifest not JSON: {e}"),
        })
    }

    /// The manifest's image layer.
    pub async fn layer(&self, a: &Artifact) -> Result<Layer, HarborError> {
        let m = self.manifest(a).await?;
        Layer::from_manifest(&m).map_err(|what| HarborError::Shape {
            url: format!("{}@{}", a.repository, a.digest),
            what,
        })
    }

    /// Where the layer blob is downloaded from.
    pub fn blob_url(&self, a: &Artifact, layer: &Layer) -> Url {
        self.url(&format!("/v2/{}/blobs/{}", a.repository, layer.digest))
    }
}

/// The credentials a blob download needs (see [`Harbor::blob_access`]).
#[derive(Debug, Clone)]
pub enum BlobAuth {
    /// Anonymous.
    None,
    /// The robot account.
    Basic(String, Secret),
    /// A registry token.
    Bearer(Secret),
}

impl BlobAuth {
    /// As the fetcher's authentication.
    pub fn as_auth(&self) -> super::fetch::Auth<'_> {
        use super::fetch::Auth;
        match self {
            BlobAuth::None => Auth::None,
            BlobAuth::Basic(u, p) => Auth::Basic(u, p),
            BlobAuth::Bearer(t) => Auth::Bearer(t),
        }
    }
}

/// Turn the retirement of an image that a new artifact of the same
/// `<project>/<repo>:<tag>` (same Glance name) supersedes into a
/// replacement: it is retired only after the new image was uploaded and
/// activated (the `replaces` of the `Create`), never before. A failed
/// download or upload keeps the old image.
pub fn as_replacements(
    actions: Vec<Action>,
    desired: &[Desired],
    ours: &[Existing],
) -> Vec<Action> {
    let name_of = |appdb_id: &str| {
        desired
            .iter()
            .find(|d| d.appdb_id == appdb_id)
            .map(|d| d.name.clone())
    };
    let create_names: BTreeMap<String, usize> = actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            Action::Create { appdb_id, .. } => name_of(appdb_id).map(|n| (n, i)),
            _ => None,
        })
        .collect();
    let mut moved: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for a in actions.iter() {
        if let Action::Retire { glance_id, .. } = a {
            let name = ours.iter().find(|e| &e.id == glance_id).map(|e| &e.name);
            if let Some(i) = name.and_then(|n| create_names.get(n)) {
                moved.entry(*i).or_default().push(glance_id.clone());
                continue;
            }
        }
        out.push(a.clone());
    }
    for a in out.iter_mut() {
        if let Action::Create { appdb_id, replaces } = a {
            let i = name_of(appdb_id).and_then(|n| create_names.get(&n).copied());
            if let Some(extra) = i.and_then(|i| moved.remove(&i)) {
                for g in extra {
                    if !replaces.contains(&g) {
                        replaces.push(g);
                    }
                }
            }
        }
    }
    out
}

/// What a Harbor subscription needs at run time besides its settings: the
/// client (with the robot's credentials) and the compiled filters.
#[derive(Debug, Clone)]
pub struct HarborSource {
    /// The Harbor client.
    pub harbor: Harbor,
    /// Repository filter (full match of the name without the project).
    pub repo_filter: Option<Regex>,
    /// Tag filter (full match of a tag name).
    pub tag_pattern: Option<Regex>,
}

impl HarborSource {
    /// From a `type: harbor` subscription; the robot password is
    /// `images.<name>.password` of the secrets file.
    pub fn from_config(
        sub: &crate::config::sections::images::HarborSubscription,
        http: reqwest::Client,
        password: Option<Secret>,
    ) -> Result<HarborSource, String> {
        let re = |k: &str, p: &Option<String>| {
            p.as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| format!("images subscription {}: {k}: {e}", sub.name))
        };
        let credentials = match (&sub.robot, password) {
            (Some(r), Some(p)) => Some((r.clone(), p)),
            (Some(_), None) => {
                return Err(format!(
                    "images subscription {}: robot is set but the secrets file has no images.{}.password",
                    sub.name, sub.name
                ))
            }
            (None, _) => None,
        };
        Ok(HarborSource {
            harbor: Harbor::new(http, sub.registry.clone(), credentials),
            repo_filter: re("repository", &sub.repository)?,
            tag_pattern: re("tag-pattern", &sub.tag_pattern)?,
        })
    }
}

/// A `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// The token endpoint.
    pub realm: String,
    /// `service`.
    pub service: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
}

/// Parse a bearer challenge (`None` for other schemes).
pub fn bearer_challenge(h: &str) -> Option<BearerChallenge> {
    let rest = h.trim();
    let (scheme, params) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = BTreeMap::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (k, r) = s.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (v, r) = if let Some(r) = r.strip_prefix('"') {
            let end = r.find('"')?;
            (&r[..end], &r[end + 1..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            (r[..end].trim(), &r[end..])
        };
        out.insert(k, v.to_string());
        s = r.trim_start().trim_start_matches(',').trim_start();
    }
    Some(BearerChallenge {
        realm: out.remove("realm")?,
        service: out.remove("service"),
        scope: out.remove("scope"),
    })
}

/// One path segment, percent-encoded (atrope's `quote_plus` of a
/// repository name: `a/b` -> `a%2Fb`).
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Conventions {
        Conventions {
            tag: "atrope".into(),
            prefix: "EGI ".into(),
            cloudkeeper_properties: false,
            min_ram_from_list: false,
        }
    }

    #[test]
    fn next_link_is_found_and_resolved() {
        let base = Url::parse("http://h:1/api/v2.0/projects?page=1").unwrap();
        let l = "</api/v2.0/projects?page=1&page_size=1>; rel=\"prev\" , </api/v2.0/projects?page=3&page_size=1>; rel=\"next\"";
        assert_eq!(
            next_link(&base, l).unwrap().as_str(),
            "http://h:1/api/v2.0/projects?page=3&page_size=1"
        );
        assert_eq!(next_link(&base, "</x>; rel=\"prev\""), None);
    }

    #[test]
    fn selection_needs_the_egi_tag_and_a_full_pattern_match() {
        let a = |tag: Option<&str>| Artifact {
            repository: "egi/ubuntu".into(),
            digest: format!(
                "sha256:{}",
                hex::encode(openssl::sha::sha256(tag.unwrap_or("none").as_bytes()))
            ),
            tags: tag
                .map(|t| vec!["latest".to_string(), t.to_string()])
                .unwrap_or_default(),
            annotations: tag
                .map(|t| json!({ TAG_ANNOTATION: t }).as_object().unwrap().clone())
                .unwrap_or_default(),
        };
        let re = Regex::new(r"24\.04").unwrap();
        let (keep, skip) = select(
            vec![a(Some("24.04")), a(None), a(Some("24.04.1"))],
            Some(&re),
        );
        assert_eq!(keep.len(), 1);
        assert_eq!(keep[0].1, "24.04");
        assert_eq!(skip.len(), 2);
        assert!(skip[0].reason.contains("no eu.egi.cloud.tag"));
        assert!(
            skip[1].reason.contains("no (valid) tag matches"),
            "{skip:?}"
        );
        // No pattern: the first tag.
        let (keep, _) = select(vec![a(Some("x")), a(None)], None);
        assert_eq!(keep.len(), 1);
        assert_eq!(keep[0].1, "latest");
        // Unsafe names and digests from a hostile registry are dropped, and
        // tags that are not OCI tags never chosen.
        let mut bad_repo = a(Some("x"));
        bad_repo.repository = "egi/Ubuntu\n\u{1b}[2J".into();
        let mut bad_digest = a(Some("x"));
        bad_digest.digest = "sha256:../../x".into();
        let mut bad_tag = a(Some("x"));
        bad_tag.tags = vec!["x\u{1b}[0m".into()];
        let (keep, skip) = select(vec![bad_repo, bad_digest, bad_tag], None);
        assert!(keep.is_empty(), "{keep:?}");
        assert!(skip[0].dropped && skip[0].reason.contains("repository"));
        assert!(!skip[0].artifact.contains('\u{1b}'), "{skip:?}");
        assert!(skip[1].dropped && skip[1].reason.contains("digest"));
        assert!(
            !skip[2].dropped && !skip[2].reason.contains('\u{1b}'),
            "{skip:?}"
        );
        assert!(oci_repository("egi_vm_images/ubuntu-24.04"));
        assert!(!oci_repository("a//b") && !oci_repository("../x") && !oci_repository("A"));
        assert!(oci_tag("24.04-1_x") && !oci_tag(".x") && !oci_tag(&"x".repeat(129)));
    }

    #[test]
    fn layer_digest_must_be_sha256() {
        let m = json!({"layers": [{"digest": "sha512:ab", "size": 3}]});
        assert!(Layer::from_manifest(&m).is_err());
        let h = "a".repeat(64);
        let m = json!({"annotations": {"k": "v"}, "layers": [{"digest": format!("sha256:{h}"), "size": 3}]});
        let l = Layer::from_manifest(&m).unwrap();
        assert_eq!(l.size, 3);
        assert_eq!(l.sha256_hex(), h);
        assert_eq!(l.annotations["k"], "v");
    }

    #[test]
    fn desired_properties_follow_atrope() {
        let reg = Url::parse("https://registry.egi.eu").unwrap();
        let ann = json!({
            "eu.egi.cloud.tag": "24.04",
            "eu.egi.cloud.description": "Ubuntu 24.04 for EGI",
            "org.openstack.glance.os_distro": "ubuntu",
            "org.openstack.glance.os_version": "24.04",
            "org.openstack.glance.architecture": "x86_64"
        });
        let a = Artifact {
            repository: "egi_vm_images/ubuntu".into(),
            digest: "sha256:m".into(),
            tags: vec!["24.04".into()],
            annotations: ann.as_object().unwrap().clone(),
        };
        let l = Layer {
            digest: format!("sha256:{}", "b".repeat(64)),
            size: 10,
            annotations: ann.as_object().unwrap().clone(),
        };
        let d = desired(
            "harbor-egi",
            &reg,
            &a,
            "24.04",
            &l,
            Visibility::Shared,
            &conv(),
        );
        let r = "registry.egi.eu/egi_vm_images/ubuntu:24.04-sha256:m";
        assert_eq!(d.appdb_id, r);
        assert_eq!(d.name, "EGI egi_vm_images/ubuntu:24.04");
        assert_eq!(d.image_hash, l.digest);
        assert_eq!(d.properties["vmcatcher_event_ad_mpuri"], r);
        assert_eq!(d.properties["os_distro"], "ubuntu");
        assert_eq!(d.properties["architecture"], "x86_64");
        assert_eq!(
            d.properties["vmcatcher_event_dc_description"],
            "Ubuntu 24.04 for EGI"
        );
        assert_eq!(
            d.properties["APPLIANCE_ATTRIBUTES"],
            format!(
                "{{\"eu.egi.cloud.tag\": \"24.04\", \"eu.egi.cloud.description\": \"Ubuntu 24.04 for EGI\", \"org.openstack.glance.os_distro\": \"ubuntu\", \"org.openstack.glance.os_version\": \"24.04\", \"org.openstack.glance.architecture\": \"x86_64\", \"eu.egi.cloud.image_ref\": \"{r}\"}}"
            )
        );
    }

    #[test]
    fn a_new_digest_for_a_tag_replaces_the_old_image_only_after_upload() {
        let d = Desired {
            appdb_id: "r/p/u:1-sha256:new".into(),
            name: "EGI p/u:1".into(),
            image_hash: "sha256:n".into(),
            properties: BTreeMap::new(),
            min_ram: None,
            visibility: Visibility::Private,
        };
        let old = Existing {
            id: "old".into(),
            name: "EGI p/u:1".into(),
            status: "active".into(),
            visibility: "private".into(),
            tags: vec!["atrope".into()],
            created_at: None,
            min_ram: None,
            properties: [("appdb_id".to_string(), "r/p/u:1-sha256:old".to_string())].into(),
        };
        let gone = Existing {
            id: "gone".into(),
            name: "EGI p/other:1".into(),
            ..old.clone()
        };
        let actions = crate::images::plan::plan(
            crate::images::plan::ListMode::Current,
            std::slice::from_ref(&d),
            &[old.clone(), gone.clone()],
            &[],
            "atrope",
            chrono::Utc::now(),
            chrono::Duration::minutes(120),
        );
        // The generic plan retires both at once.
        assert_eq!(
            actions
                .iter()
                .filter(|a| matches!(a, Action::Retire { .. }))
                .count(),
            2
        );
        let a = as_replacements(actions, &[d], &[old, gone]);
        assert!(a.contains(&Action::Create {
            appdb_id: "r/p/u:1-sha256:new".into(),
            replaces: vec!["old".into()],
        }));
        let retired: Vec<_> = a
            .iter()
            .filter_map(|a| match a {
                Action::Retire { glance_id, .. } => Some(glance_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(retired, vec!["gone"]);
    }

    #[test]
    fn bearer_challenges_parse() {
        let c = bearer_challenge(
            "Bearer realm=\"https://registry.egi.eu/service/token\",service=\"harbor-registry\",scope=\"repository:egi_vm_images/ubuntu:pull\"",
        )
        .unwrap();
        assert_eq!(c.realm, "https://registry.egi.eu/service/token");
        assert_eq!(c.service.as_deref(), Some("harbor-registry"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:egi_vm_images/ubuntu:pull")
        );
        assert_eq!(bearer_challenge("Basic realm=\"harbor\""), None);
        assert_eq!(bearer_challenge("Bearer service=x"), None);
    }
}
