//! A Harbor front end (the subset of Harbor's v2.0 API that image sync
//! uses, as EGI-Federation/atrope's `HarborImageListSource` calls it) in
//! front of a real OCI distribution registry (Debian's `docker-registry`),
//! like `registry.egi.eu`: the Harbor API and the registry on one host.
//!
//! Everything is derived live from the registry, never stored here:
//! projects are the first path segment of its repositories
//! (`<project>/<repo>`), artifacts are its manifests (tags pointing at the
//! same digest form one artifact).
//!
//! - `GET /api/v2.0/projects[/NAME]`
//! - `GET /api/v2.0/projects/P/repositories`
//! - `GET /api/v2.0/projects/P/repositories/R/artifacts` (`R` without the
//!   project, URL-encoded once (`a%2Fb`, atrope's `quote_plus`) or twice
//!   (`a%252Fb`, Harbor's own UI)); every artifact has `digest`,
//!   `manifest_media_type`, `media_type` (its config's), `size`, `tags`
//!   (`[{name, push_time, ...}]`), `annotations` (the manifest's) and
//!   `extra_attrs` (the config blob when it is a JSON object; Harbor's
//!   processors fill it from the config the same way).
//! - lists are paginated like Harbor: `page` (from 1), `page_size`
//!   (default 10, at most 100), `X-Total-Count`, and
//!   `Link: <...>; rel="prev"`, `<...>; rel="next"`.
//! - `/v2/...`: the registry itself (pull, and push for test setup),
//!   forwarded unchanged.
//! - With credentials, every API request needs HTTP Basic `user:password`
//!   (Harbor robot accounts); otherwise 401 with Harbor's error JSON.
//!
//! Two ways to guard `/v2/`:
//! - [`serve`]: the front checks the Basic credentials itself and strips
//!   them before forwarding (a registry without auth behind it).
//! - [`serve_with_tokens`]: like real Harbor, the registry runs with
//!   `auth: token` and answers `401` + `WWW-Authenticate: Bearer
//!   realm="<front>/service/token",service="harbor-registry",scope=...`
//!   itself; requests reach it with the client's `Authorization` untouched.
//!   The front is Harbor core's token service: `GET /service/token?
//!   service=harbor-registry&scope=repository:<name>:pull[,push]` (scope
//!   repeatable) with the robot's Basic credentials (401 for missing or
//!   wrong ones) answers `{"token", "access_token", "expires_in",
//!   "issued_at"}`, granting only `pull`/`push` on the repositories named
//!   (never the catalog); without configured credentials anyone gets
//!   them. The front reads the registry with tokens it mints for itself
//!   (`registry:catalog:*`, `repository:<name>:pull`). See
//!   [`registry_token`](super::registry_token) and
//!   [`registry_config`] for the registry side.
//!
//!   Like Harbor core (its `robot2` security context and `v2auth`
//!   middleware in front of the registry), `/v2/` also takes the robot's
//!   HTTP Basic credentials directly: the front checks them and forwards
//!   the request with a token it mints for exactly that request's access
//!   (`pull`; `pull,push` for uploads and manifest puts); wrong ones, and
//!   the catalog (never granted to a robot), get Harbor's `401` with
//!   `WWW-Authenticate: Basic realm="harbor"`, not forwarded. oras-py with
//!   `auth_backend="basic"` (EGI's atrope 2.1) pulls only this way: it
//!   answers every challenge by resending Basic credentials and never asks
//!   the token service. Requests without credentials or with a bearer token
//!   reach the registry unchanged. [`HarborServer::set_registry_basic`]
//!   turns Basic on `/v2/` off (a registry that takes only tokens), to
//!   exercise clients' challenge path.
//!
//! Test API: `/__test/faults` (fault rules, default scope: every request),
//! `/__test/stats` (request counts per kind).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use url::Url;

use super::faults::FaultControl;
use super::http::{self, Outcome, Peer, Resp};
use super::proxy::Upstream;
use super::registry_token::{self, Access, TokenIssuer};
use super::{Error, Server};

pub use super::oci_push::{push_blob, push_image, Disk, PushAuth, PushError, Pushed};

/// Options of the Harbor front end.
#[derive(Clone, Debug)]
pub struct HarborOptions {
    /// The registry behind it (`http://127.0.0.1:PORT`, loopback only).
    pub registry: Url,
    /// Required HTTP Basic credentials (user, password), if any.
    pub credentials: Option<(String, String)>,
}

/// A running Harbor front end.
#[derive(Debug)]
pub struct HarborServer {
    /// The server.
    pub server: Server,
    /// Its fault queue.
    pub faults: FaultControl,
    state: Arc<Harbor>,
}

/// Request counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HarborStats {
    /// Harbor API requests.
    pub api: u64,
    /// Registry (`/v2/`) requests forwarded.
    pub registry: u64,
    /// Requests refused for missing or wrong credentials.
    pub unauthorized: u64,
    /// Registry tokens issued by `/service/token`.
    #[serde(default)]
    pub tokens: u64,
    /// `/v2/` requests let through on the robot's Basic credentials
    /// (token mode; the front minted their token).
    #[serde(default)]
    pub registry_basic: u64,
}

impl HarborServer {
    /// The counters.
    pub fn stats(&self) -> HarborStats {
        self.state.stats()
    }

    /// Token mode: whether `/v2/` takes the robot's Basic credentials as
    /// Harbor does (the default), or leaves every request to the registry,
    /// which answers Basic with its bearer challenge.
    pub fn set_registry_basic(&self, on: bool) {
        self.state.registry_basic.store(on, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Harbor {
    registry: Url,
    upstream: Upstream,
    client: reqwest::Client,
    credentials: Option<(String, String)>,
    tokens: Option<TokenIssuer>,
    faults: FaultControl,
    registry_basic: AtomicBool,
    api: AtomicU64,
    forwarded: AtomicU64,
    unauthorized: AtomicU64,
    issued: AtomicU64,
    basic_forwarded: AtomicU64,
}

/// Start the Harbor front end on `listener`; it guards `/v2/` with the
/// Basic credentials itself (a registry without auth behind it).
pub fn serve(listener: TcpListener, opts: HarborOptions) -> Result<HarborServer, Error> {
    start(listener, opts, None)
}

/// Start the Harbor front end on `listener` as the token service of a
/// registry running in token mode (see [`registry_config`]).
pub fn serve_with_tokens(
    listener: TcpListener,
    opts: HarborOptions,
    issuer: TokenIssuer,
) -> Result<HarborServer, Error> {
    start(listener, opts, Some(issuer))
}

/// The `auth:` section of a distribution registry configuration (YAML)
/// that trusts `issuer`'s tokens, with the challenge pointing at the
/// front's `/service/token` (`front`: `http://127.0.0.1:PORT`), and the
/// certificate bundle at `cert_pem` (write [`TokenIssuer::cert_pem`] there).
pub fn registry_config(front: &Url, issuer: &TokenIssuer, cert_pem: &std::path::Path) -> String {
    let realm = front
        .join("/service/token")
        .map(String::from)
        .unwrap_or_default();
    format!(
        "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        issuer.service,
        issuer.issuer,
        cert_pem.display()
    )
}

fn start(
    listener: TcpListener,
    opts: HarborOptions,
    tokens: Option<TokenIssuer>,
) -> Result<HarborServer, Error> {
    let upstream = Upstream::new(&opts.registry)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| Error::bad("--registry", opts.registry.as_str(), e.to_string()))?;
    let faults = FaultControl::default();
    let state = Arc::new(Harbor {
        registry: opts.registry,
        upstream,
        client,
        credentials: opts.credentials,
        tokens,
        faults: faults.clone(),
        registry_basic: AtomicBool::new(true),
        api: AtomicU64::new(0),
        forwarded: AtomicU64::new(0),
        unauthorized: AtomicU64::new(0),
        issued: AtomicU64::new(0),
        basic_forwarded: AtomicU64::new(0),
    });
    let s = state.clone();
    let server = http::spawn("harbor", listener, None, move |peer, req| {
        let s = s.clone();
        async move { s.handle(peer, req).await }
    })?;
    Ok(HarborServer {
        server,
        faults,
        state,
    })
}

/// Harbor's error body.
fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    http::json(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}

/// Percent-decode once.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json";

impl Harbor {
    fn stats(&self) -> HarborStats {
        HarborStats {
            api: self.api.load(Ordering::Relaxed),
            registry: self.forwarded.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            tokens: self.issued.load(Ordering::Relaxed),
            registry_basic: self.basic_forwarded.load(Ordering::Relaxed),
        }
    }

    fn refuse(&self) -> Resp {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
        let mut r = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"harbor\""),
        );
        r
    }

    /// Token mode, `/v2/` with `Authorization: Basic`: Harbor core checks
    /// the robot's credentials itself (`robot2` security context) and the
    /// request's access (`v2auth`); here the request goes on with a token
    /// for exactly that access. `Ok(None)`: not Basic, forward unchanged.
    fn registry_basic(
        &self,
        issuer: &TokenIssuer,
        req: &Request<Incoming>,
    ) -> Result<Option<String>, Box<Resp>> {
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.get(..6))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "));
        if !basic || !self.registry_basic.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let refused = || {
            let mut r = self.refuse();
            r.headers_mut().insert(
                "docker-distribution-api-version",
                HeaderValue::from_static("registry/2.0"),
            );
            r
        };
        if !self.authorized(req) {
            return Err(Box::new(refused()));
        }
        let access: Vec<Access> =
            registry_token::request_access(req.method().as_str(), req.uri().path())
                .into_iter()
                .collect();
        // Robot accounts never read the catalog.
        if access.iter().any(|a| a.kind != "repository") {
            return Err(Box::new(refused()));
        }
        let subject = self
            .credentials
            .as_ref()
            .map(|c| c.0.as_str())
            .unwrap_or("");
        match issuer.mint(subject, &access, chrono::Utc::now().timestamp()) {
            Ok(t) => {
                self.basic_forwarded.fetch_add(1, Ordering::Relaxed);
                Ok(Some(t))
            }
            Err(e) => Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                &e.to_string(),
            ))),
        }
    }

    /// Harbor core's `/service/token`: a registry token for the robot.
    fn token(&self, issuer: &TokenIssuer, req: &Request<Incoming>) -> Resp {
        if req.method() != Method::GET {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "GET only",
            );
        }
        if !self.authorized(req) {
            return self.refuse();
        }
        let uri = req.uri();
        let q: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let service = q
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.as_str());
        if service.is_some_and(|s| s != issuer.service) {
            return error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("unknown service {:?}", service.unwrap_or("")),
            );
        }
        let mut granted: Vec<Access> = Vec::new();
        for (_, scope) in q.iter().filter(|(k, _)| k == "scope") {
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                let Some(a) = registry_token::parse_scope(s) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BAD_REQUEST",
                        &format!("invalid scope {s:?}"),
                    );
                };
                if a.kind != "repository" {
                    continue;
                }
                let actions: Vec<String> = a
                    .actions
                    .iter()
                    .filter(|x| *x == "pull" || *x == "push")
                    .cloned()
                    .collect();
                if !actions.is_empty() {
                    granted.push(Access { actions, ..a });
                }
            }
        }
        let subject = self
            .credentials
            .as_ref()
            .map(|c| c.0.as_str())
            .unwrap_or("");
        let now = chrono::Utc::now();
        match issuer.mint(subject, &granted, now.timestamp()) {
            Ok(t) => {
                self.issued.fetch_add(1, Ordering::Relaxed);
                http::json(
                    StatusCode::OK,
                    &json!({"token": t, "access_token": t,
                            "expires_in": registry_token::LIFETIME_SECS,
                            "issued_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
                )
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                &e.to_string(),
            ),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some((user, password)) = &self.credentials else {
            return true;
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(want.as_str())
    }

    async fn handle(self: Arc<Self>, _peer: Peer, req: Request<Incoming>) -> Outcome {
        let path = req.uri().path().to_string();
        if let Some(test) = path.strip_prefix("/__test/") {
            return Ok(match test {
                "faults" => self.faults.handle_control(req).await,
                "stats" => http::json(
                    StatusCode::OK,
                    &serde_json::to_value(self.stats()).unwrap_or_default(),
                ),
                _ => http::text(StatusCode::NOT_FOUND, "unknown test endpoint\n"),
            });
        }
        let fault = self.faults.take(&path, true);
        if let Some(out) = match &fault {
            Some(f) => f.preempt(super::faults::injected_text).await,
            None => None,
        } {
            return out;
        }
        let registry = path == "/v2" || path.starts_with("/v2/");
        if let Some(issuer) = &self.tokens {
            if path == "/service/token" {
                return Ok(self.token(issuer, &req));
            }
        }
        // In token mode the registry itself guards `/v2/`.
        let guarded_by_registry = registry && self.tokens.is_some();
        if !guarded_by_registry && !self.authorized(&req) {
            return Ok(self.refuse());
        }
        let resp = if registry {
            let bearer = match &self.tokens {
                Some(issuer) => match self.registry_basic(issuer, &req) {
                    Ok(b) => b,
                    Err(refused) => return Ok(*refused),
                },
                None => None,
            };
            self.forwarded.fetch_add(1, Ordering::Relaxed);
            let token_mode = self.tokens.is_some();
            self.upstream
                .forward(req, |h| {
                    if let Some(t) = bearer {
                        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                            h.insert(header::AUTHORIZATION, v);
                        }
                    } else if !token_mode {
                        h.remove(header::AUTHORIZATION);
                    }
                })
                .await
        } else if let Some(rest) = path.strip_prefix("/api/v2.0/") {
            self.api.fetch_add(1, Ordering::Relaxed);
            if req.method() != Method::GET {
                error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    "this test server only reads",
                )
            } else {
                match self.api(rest, req.uri()).await {
                    Ok(r) => r,
                    Err(e) => error(
                        StatusCode::BAD_GATEWAY,
                        "INTERNAL_SERVER_ERROR",
                        &format!("registry {}: {e}", self.registry),
                    ),
                }
            }
        } else {
            error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found")
        };
        Ok(match fault {
            Some(f) if f.shapes_response() => f.shape_response(resp),
            _ => resp,
        })
    }

    async fn get_json(&self, path: &str, accept: Option<&str>) -> Result<(Value, String), String> {
        let url = self.registry.join(path).map_err(|e| e.to_string())?;
        let mut rb = self.client.get(url);
        if let Some(a) = accept {
            rb = rb.header(header::ACCEPT, a);
        }
        if let Some(issuer) = &self.tokens {
            let access: Vec<Access> = registry_token::registry_scope(path).into_iter().collect();
            let t = issuer
                .mint("harbor-core", &access, chrono::Utc::now().timestamp())
                .map_err(|e| e.to_string())?;
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let digest = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GET {path}: HTTP {status}"));
        }
        let digest = if digest.is_empty() {
            format!("sha256:{}", hex::encode(openssl::sha::sha256(&body)))
        } else {
            digest
        };
        let v = serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))?;
        Ok((v, digest))
    }

    /// Every repository of the registry, by project.
    async fn catalog(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut last = String::new();
        loop {
            // The registry serves at most 1000 names per page (`n`, `last`).
            let (v, _) = self
                .get_json(&format!("/v2/_catalog?n=1000&last={last}"), None)
                .await?;
            let names: Vec<String> = v["repositories"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(String::from))
                .collect();
            for r in &names {
                if let Some((p, _)) = r.split_once('/') {
                    out.entry(p.to_string()).or_default().push(r.clone());
                }
            }
            match names.last() {
                Some(l) if names.len() == 1000 => last = l.clone(),
                _ => return Ok(out),
            }
        }
    }

    async fn api(&self, rest: &str, uri: &hyper::Uri) -> Result<Resp, String> {
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let catalog = self.catalog().await?;
        let project_id = |p: &str| catalog.keys().position(|k| k == p).map(|i| i + 1);
        let project = |p: &str, repos: &[String]| {
            json!({"project_id": project_id(p), "name": p, "metadata": {"public": "true"},
                   "repo_count": repos.len(), "owner_name": "admin", "deleted": false})
        };
        match parts.as_slice() {
            ["projects"] => {
                let all: Vec<Value> = catalog.iter().map(|(p, r)| project(p, r)).collect();
                Ok(page(uri, all))
            }
            ["projects", p] => Ok(match catalog.get(*p) {
                Some(r) => http::json(StatusCode::OK, &project(p, r)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("project {p} not found"),
                ),
            }),
            ["projects", p, "repositories"] => {
                let Some(repos) = catalog.get(*p) else {
                    return Ok(error(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND",
                        &format!("project {p} not found"),
                    ));
                };
                let mut all = Vec::new();
                for (i, r) in repos.iter().enumerate() {
                    let (tags, _) = self.get_json(&format!("/v2/{r}/tags/list"), None).await?;
                    let n = tags["tags"].as_array().map(Vec::len).unwrap_or(0);
                    all.push(json!({"id": i + 1, "name": r, "project_id": project_id(p),
                                    "artifact_count": n, "pull_count": 0}));
                }
                Ok(page(uri, all))
            }
            ["projects", p, "repositories", r, "artifacts"] => {
                let mut name = decode(r);
                if name.contains('%') {
                    name = decode(&name);
                }
                let full = format!("{p}/{name}");
                if !catalog.get(*p).is_some_and(|rs| rs.contains(&full)) {
                    return Ok(error(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND",
                        &format!("repository {full} not found"),
                    ));
                }
                Ok(page(uri, self.artifacts(&full, project_id(p)).await?))
            }
            _ => Ok(error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found")),
        }
    }

    /// The artifacts of a repository: one per manifest digest, with its tags.
    async fn artifacts(&self, repo: &str, project_id: Option<usize>) -> Result<Vec<Value>, String> {
        let (tags, _) = self
            .get_json(&format!("/v2/{repo}/tags/list"), None)
            .await?;
        let mut by_digest: BTreeMap<String, (Value, Vec<String>)> = BTreeMap::new();
        let mut order = Vec::new();
        let mut names: Vec<String> = tags["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        names.sort();
        for t in names {
            let (m, digest) = self
                .get_json(&format!("/v2/{repo}/manifests/{t}"), Some(MANIFEST_TYPES))
                .await?;
            let e = by_digest.entry(digest.clone()).or_insert_with(|| {
                order.push(digest.clone());
                (m, Vec::new())
            });
            e.1.push(t);
        }
        let mut out = Vec::new();
        for (i, digest) in order.iter().enumerate() {
            let (m, tags) = &by_digest[digest];
            let config_type = m["config"]["mediaType"].as_str().unwrap_or("").to_string();
            let mut size = serde_json::to_vec(m).map(|b| b.len() as u64).unwrap_or(0);
            size += m["config"]["size"].as_u64().unwrap_or(0);
            for l in m["layers"].as_array().into_iter().flatten() {
                size += l["size"].as_u64().unwrap_or(0);
            }
            let mut extra = Map::new();
            if let Some(cd) = m["config"]["digest"].as_str() {
                if m["config"]["size"].as_u64().unwrap_or(u64::MAX) <= 65536 {
                    if let Ok((Value::Object(c), _)) =
                        self.get_json(&format!("/v2/{repo}/blobs/{cd}"), None).await
                    {
                        extra = c;
                    }
                }
            }
            let kind = if config_type == "application/vnd.oci.image.config.v1+json"
                || config_type == "application/vnd.docker.container.image.v1+json"
            {
                "IMAGE"
            } else {
                "UNKNOWN"
            };
            let now = "2026-01-01T00:00:00.000Z";
            out.push(json!({
                "id": i + 1,
                "type": kind,
                "media_type": config_type,
                "manifest_media_type": m["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json"),
                "artifact_type": m["artifactType"].as_str().unwrap_or(&config_type),
                "project_id": project_id,
                "repository_name": repo,
                "digest": digest,
                "size": size,
                "push_time": now,
                "pull_time": now,
                "extra_attrs": extra,
                "annotations": m.get("annotations").cloned().unwrap_or(Value::Null),
                "references": Value::Null,
                "labels": Value::Null,
                "accessories": Value::Null,
                "tags": tags.iter().enumerate().map(|(j, t)| json!({
                    "id": j + 1, "artifact_id": i + 1, "name": t,
                    "push_time": now, "pull_time": now, "immutable": false
                })).collect::<Vec<_>>(),
            }));
        }
        Ok(out)
    }
}

/// One page of `all`, with Harbor's `X-Total-Count` and `Link` headers.
fn page(uri: &hyper::Uri, all: Vec<Value>) -> Resp {
    let num = |k: &str, d: usize| {
        http::query_param(uri, k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(d)
    };
    let p = num("page", 1);
    let size = num("page_size", 10).min(100);
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip((p - 1) * size).take(size).collect();
    let mut resp = http::json(StatusCode::OK, &Value::Array(items));
    let link = |n: usize| {
        let mut q: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .filter(|(k, _)| k != "page" && k != "page_size")
                .collect();
        q.push(("page".into(), n.to_string()));
        q.push(("page_size".into(), size.to_string()));
        let qs = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        format!("<{}?{qs}>", uri.path())
    };
    let mut links = Vec::new();
    if p > 1 {
        links.push(format!("{}; rel=\"prev\"", link(p - 1)));
    }
    if p * size < total {
        links.push(format!("{}; rel=\"next\"", link(p + 1)));
    }
    let h = resp.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total as u64));
    if !links.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&links.join(" , ")) {
            h.insert(header::LINK, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_or_twice() {
        assert_eq!(decode("a%2Fb"), "a/b");
        assert_eq!(decode(&decode("a%252Fb")), "a/b");
        assert_eq!(decode("ubuntu"), "ubuntu");
    }
}
