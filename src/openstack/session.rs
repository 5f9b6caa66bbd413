//! [`Session`]: a scoped token plus its catalog, and the generic calls the
//! resource modules are built on (`get_json`, `paginate`, `send_json`).
//!
//! Pagination follows both styles OpenStack uses:
//! * marker/limit (Nova, Cinder, Neutron, Keystone): the next page's marker
//!   comes from the `{collection}_links` `rel=next` link (the link's host is
//!   not trusted: only its `marker` is used, against our endpoint), or, when
//!   the server sends no links but filled the page, from the last item's id;
//! * Glance's top-level `next` (a path relative to the endpoint).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::auth::{join, Scope, Token, TokenInfo, TokenProject, TokenUser};
use super::catalog::{self, CatalogEntry};
use super::error::{Error, Target};
use super::http::{secret_header, Request, Response};
use super::{wire, OpenStack};

/// An API microversion: `OpenStack-API-Version: <service> <version>` (plus
/// `X-OpenStack-Nova-API-Version` for compute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Microversion {
    service: String,
    version: String,
}

impl Microversion {
    /// Any service (`compute`, `volume`, `image`, `placement`, ...).
    pub fn new(service: impl Into<String>, version: impl Into<String>) -> Self {
        Microversion {
            service: service.into(),
            version: version.into(),
        }
    }
    /// Nova: `compute 2.xx`.
    pub fn compute(version: &str) -> Self {
        Self::new("compute", version)
    }
    /// Cinder: `volume 3.xx`.
    pub fn volume(version: &str) -> Self {
        Self::new("volume", version)
    }
    /// The version, e.g. `2.61`.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn apply(&self, headers: &mut HeaderMap) -> Result<(), Error> {
        let bad = || {
            Error::Config(format!(
                "bad microversion {:?} {:?}",
                self.service, self.version
            ))
        };
        let v = HeaderValue::from_str(&format!("{} {}", self.service, self.version))
            .map_err(|_| bad())?;
        headers.insert("OpenStack-API-Version", v);
        if self.service == "compute" {
            let v = HeaderValue::from_str(&self.version).map_err(|_| bad())?;
            headers.insert("X-OpenStack-Nova-API-Version", v);
        }
        Ok(())
    }
}

/// `"2.61"` as `(2, 61)`.
pub fn parse_microversion(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A scoped token and its catalog. Cheap to clone. Requests renew the token
/// (through the client's cache) when it is about to expire, and re-authenticate
/// once when a service answers 401.
#[derive(Clone)]
pub struct Session {
    os: OpenStack,
    scope: Scope,
    token: Arc<Token>,
    /// Endpoints used instead of the catalog's (see [`Session::with_endpoint`]).
    overrides: Vec<(String, Url)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.token.info.user.id)
            .field("project", &self.project_id())
            .field("expires_at", &self.token.info.expires_at)
            .finish()
    }
}

/// Where to go next after a page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NextPage {
    /// Same request with this marker.
    Marker(String),
    /// This URL (Glance's `next`, resolved against the endpoint).
    Url(Url),
    /// No more pages.
    Done,
}

/// The next page of a listing response `body` whose items are under
/// `collection`; `page_len` items were returned for a `page_size` request.
pub(crate) fn next_page(
    endpoint: &Url,
    body: &Value,
    collection: &str,
    page_len: usize,
    page_size: u32,
    last_id: Option<&str>,
) -> NextPage {
    if let Some(next) = body.get("next").and_then(Value::as_str) {
        return match resolve_next(endpoint, next) {
            Some(u) => NextPage::Url(u),
            None => NextPage::Done,
        };
    }
    if let Some(links) = body
        .get(format!("{collection}_links"))
        .and_then(Value::as_array)
    {
        let next = links
            .iter()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"));
        if let Some(href) = next.and_then(|l| l.get("href")).and_then(Value::as_str) {
            let marker = Url::parse(href)
                .or_else(|_| endpoint.join(href))
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "marker")
                        .map(|(_, v)| v.into_owned())
                });
            if let Some(m) = marker {
                return NextPage::Marker(m);
            }
        }
        return NextPage::Done;
    }
    match last_id {
        Some(id) if page_size > 0 && page_len == page_size as usize => {
            NextPage::Marker(id.to_string())
        }
        _ => NextPage::Done,
    }
}

/// Glance's `next` (`/v2/images?marker=..`) against `endpoint`, keeping the
/// endpoint's path prefix (`https://h/image` + `/v2/..`) and not repeating a
/// version the endpoint already ends with.
pub(crate) fn resolve_next(endpoint: &Url, next: &str) -> Option<Url> {
    if let Ok(abs) = Url::parse(next) {
        // Same origin: take it; else keep only path and query, on our endpoint.
        if abs.origin() == endpoint.origin() {
            return Some(abs);
        }
        let pq = match abs.query() {
            Some(q) => format!("{}?{q}", abs.path()),
            None => abs.path().to_string(),
        };
        return resolve_next(endpoint, &pq);
    }
    let (path, query) = match next.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (next, None),
    };
    let mut base = endpoint.path().trim_end_matches('/').to_string();
    if path.starts_with('/') {
        if let Some(ver) = path.split('/').nth(1) {
            let suffix = format!("/{ver}");
            if !ver.is_empty() && base.ends_with(&suffix) {
                base.truncate(base.len() - suffix.len());
            }
        }
    } else {
        base.push('/');
    }
    let mut u = endpoint.clone();
    u.set_path(&format!("{base}{path}"));
    u.set_query(query);
    Some(u)
}

impl Session {
    pub(crate) fn new(os: OpenStack, scope: Scope, token: Arc<Token>) -> Self {
        Session {
            os,
            scope,
            token,
            overrides: Vec::new(),
        }
    }

    /// This session with `url` as the endpoint of `service_type` instead of
    /// the catalog's (a site whose catalog names an unreachable address, or
    /// a proxy in front of the service).
    pub fn with_endpoint(mut self, service_type: &str, url: Url) -> Self {
        self.overrides.retain(|(s, _)| s != service_type);
        self.overrides.push((service_type.to_string(), url));
        self
    }

    /// The client this session belongs to.
    pub fn openstack(&self) -> &OpenStack {
        &self.os
    }

    /// What Keystone said about the token (user, project, roles, catalog).
    pub fn token_info(&self) -> &TokenInfo {
        &self.token.info
    }

    /// The project the token is scoped to (none for unscoped or system tokens).
    pub fn project(&self) -> Option<&TokenProject> {
        self.token.info.project.as_ref()
    }

    /// The project id.
    pub fn project_id(&self) -> Option<&str> {
        self.project().map(|p| p.id.as_str())
    }

    /// The user.
    pub fn user(&self) -> &TokenUser {
        &self.token.info.user
    }

    /// Expiry of the token this session was created with (requests renew it).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.token.info.expires_at
    }

    /// Role names on the scope.
    pub fn roles(&self) -> Vec<&str> {
        self.token
            .info
            .roles
            .iter()
            .filter_map(|r| r.name.as_deref())
            .collect()
    }

    /// The catalog.
    pub fn catalog(&self) -> &[CatalogEntry] {
        &self.token.info.catalog
    }

    /// The URL of a service (`compute`, `image`, `network`, `volumev3` /
    /// `block-storage` / `volume`, `identity`, `placement`, ...) for the
    /// interface and region of the [`CloudAccess`](super::CloudAccess).
    pub fn endpoint(&self, service_type: &str) -> Result<Url, Error> {
        if let Some((_, u)) = self.overrides.iter().find(|(s, _)| s == service_type) {
            return Ok(u.clone());
        }
        let access = &self.os.inner.access;
        catalog::select(
            self.catalog(),
            service_type,
            access.interface,
            access.region.as_deref(),
            self.project_label().as_deref(),
        )
    }

    fn project_label(&self) -> Option<String> {
        match self.project() {
            Some(p) => Some(match &p.name {
                Some(n) => format!("{n} ({})", p.id),
                None => p.id.clone(),
            }),
            None => self.scope.project_label(),
        }
    }

    /// `GET {endpoint(service)}/{path}?{query}` as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        query: &[(&str, &str)],
        microversion: Option<&Microversion>,
    ) -> Result<T, Error> {
        let url = self.url(service, path, query)?;
        let (target, resp) = self
            .call(Method::GET, service, url, None, microversion)
            .await?;
        wire::json(&target, &resp.body)
    }

    /// `GET {url}` of an absolute URL (e.g. a version document), as JSON.
    pub(crate) async fn get_json_url<T: DeserializeOwned>(
        &self,
        service: &str,
        url: Url,
        microversion: Option<&Microversion>,
    ) -> Result<T, Error> {
        let (target, resp) = self
            .call(Method::GET, service, url, None, microversion)
            .await?;
        wire::json(&target, &resp.body)
    }

    /// Send a JSON body (or none) with any method; the JSON answer, or
    /// `None` for an empty one (204). POST and PATCH are not repeated once
    /// they reached the server.
    pub async fn send_json(
        &self,
        method: Method,
        service: &str,
        path: &str,
        body: Option<&Value>,
        microversion: Option<&Microversion>,
    ) -> Result<Option<Value>, Error> {
        let url = self.url(service, path, &[])?;
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON value"));
        let (target, resp) = self.call(method, service, url, body, microversion).await?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        wire::json(&target, &resp.body).map(Some)
    }

    /// Any request with a raw body and extra headers (Swift objects, image
    /// data); the answer's headers and body. PUT is repeated on a transient
    /// failure (it is idempotent), POST and PATCH are not.
    pub async fn send_raw(
        &self,
        method: Method,
        service: &str,
        path: &str,
        headers: HeaderMap,
        body: Option<bytes::Bytes>,
    ) -> Result<(HeaderMap, bytes::Bytes), Error> {
        let url = self.url(service, path, &[])?;
        let target = Target::new(method.as_str(), &url)
            .service(service)
            .project(self.project_label());
        let mut reauthenticated = false;
        loop {
            let token = self.os.inner.token(&self.scope).await?;
            let mut h = headers.clone();
            h.insert("X-Auth-Token", secret_header(token.id.expose())?);
            let req = Request {
                replayable: Request::default_replayable(&method),
                method: method.clone(),
                url: url.clone(),
                headers: h,
                body: body.clone(),
                target: target.clone(),
                scrub: &[token.id.expose()],
            };
            match self.os.inner.http.send(&req).await {
                Err(Error::Unauthorized { .. }) if !reauthenticated => {
                    self.os.inner.invalidate(&self.scope).await;
                    reauthenticated = true;
                }
                Err(e) => return Err(e),
                Ok(resp) => return Ok((resp.headers, resp.body)),
            }
        }
    }

    /// Stream a request body (image data) that cannot be held in memory:
    /// `body` makes a fresh body for each try. Never repeated once the body
    /// started (a stream cannot be replayed), except once after a 401 with a
    /// renewed token. `timeout` replaces the client's per-request timeout.
    pub async fn send_stream(
        &self,
        method: Method,
        service: &str,
        path: &str,
        headers: HeaderMap,
        body: impl Fn() -> reqwest::Body,
        timeout: std::time::Duration,
    ) -> Result<HeaderMap, Error> {
        let url = self.url(service, path, &[])?;
        let target = Target::new(method.as_str(), &url)
            .service(service)
            .project(self.project_label());
        let mut reauthenticated = false;
        loop {
            let token = self.os.inner.token(&self.scope).await?;
            let mut h = headers.clone();
            h.insert("X-Auth-Token", secret_header(token.id.expose())?);
            let sent = self
                .os
                .inner
                .http
                .client()
                .request(method.clone(), url.clone())
                .headers(h)
                .timeout(timeout)
                .body(body())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_timeout() => {
                    return Err(Error::Timeout {
                        target,
                        after: timeout,
                    })
                }
                Err(e) => {
                    return Err(Error::Transport {
                        target,
                        source: e.without_url(),
                    })
                }
            };
            let status = resp.status();
            let rh = resp.headers().clone();
            let text = resp.bytes().await.unwrap_or_default();
            if status.is_success() {
                return Ok(rh);
            }
            let err = Error::from_status(
                target.clone(),
                status.as_u16(),
                super::error::excerpt(&text, &[token.id.expose()]),
            );
            match err {
                Error::Unauthorized { .. } if !reauthenticated => {
                    self.os.inner.invalidate(&self.scope).await;
                    reauthenticated = true;
                }
                e => return Err(e),
            }
        }
    }

    /// Every item of a paginated listing `GET {endpoint(service)}/{path}`,
    /// whose items are the array `collection` of each page. `page_size`
    /// (`limit`) defaults to [`Limits::page_size`](super::Limits::page_size).
    pub async fn paginate<T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        collection: &str,
        query: &[(&str, &str)],
        page_size: Option<u32>,
        microversion: Option<&Microversion>,
    ) -> Result<Vec<T>, Error> {
        let limits = self.os.limits();
        let page_size = page_size.unwrap_or(limits.page_size).max(1);
        let limit = page_size.to_string();
        let endpoint = self.endpoint(service)?;
        let base = join(&endpoint, path);
        let first = self.url(
            service,
            path,
            &[query, &[("limit", limit.as_str())]].concat(),
        )?;
        let mut next = NextPage::Url(first);
        let mut items = Vec::new();
        let mut markers = std::collections::HashSet::new();
        for _ in 0..limits.max_pages {
            let url = match next {
                NextPage::Done => return Ok(items),
                NextPage::Url(u) => u,
                NextPage::Marker(m) => {
                    let target = Target::new("GET", &base)
                        .service(service)
                        .project(self.project_label());
                    if !markers.insert(m.clone()) {
                        return Err(Error::Decode {
                            target,
                            reason: format!("pagination does not advance (marker {m} again)"),
                        });
                    }
                    let mut u = base.clone();
                    u.query_pairs_mut()
                        .extend_pairs(query)
                        .append_pair("limit", &limit)
                        .append_pair("marker", &m);
                    u
                }
            };
            let (target, resp) = self
                .call(Method::GET, service, url, None, microversion)
                .await?;
            let body: Value = wire::json(&target, &resp.body)?;
            let (page_len, last_id) = match body.get(collection).and_then(Value::as_array) {
                Some(a) => (
                    a.len(),
                    a.last().and_then(|v| v.get("id")).and_then(Value::as_str),
                ),
                None => (0, None),
            };
            next = next_page(&endpoint, &body, collection, page_len, page_size, last_id);
            let page = wire::collection(&target, body, collection)?;
            if page.is_empty() {
                next = NextPage::Done;
            }
            for v in page {
                items.push(serde_json::from_value(v).map_err(|e| Error::Decode {
                    target: target.clone(),
                    reason: format!("unexpected item in {collection:?}: {e}"),
                })?);
            }
        }
        Err(Error::Decode {
            target: Target::new("GET", &base)
                .service(service)
                .project(self.project_label()),
            reason: format!("more than {} pages", limits.max_pages),
        })
    }

    /// `{endpoint(service)}/{path}?{query}`.
    pub(crate) fn url(
        &self,
        service: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Url, Error> {
        let mut url = join(&self.endpoint(service)?, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// One authenticated request, re-authenticating once on 401.
    async fn call(
        &self,
        method: Method,
        service: &str,
        url: Url,
        body: Option<Vec<u8>>,
        microversion: Option<&Microversion>,
    ) -> Result<(Target, Response), Error> {
        let target = Target::new(method.as_str(), &url)
            .service(service)
            .project(self.project_label());
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(mv) = microversion {
            mv.apply(&mut headers)?;
        }
        let body = body.map(bytes::Bytes::from);
        let mut reauthenticated = false;
        loop {
            let token = self.os.inner.token(&self.scope).await?;
            headers.insert("X-Auth-Token", secret_header(token.id.expose())?);
            let req = Request {
                replayable: Request::default_replayable(&method),
                method: method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                body: body.clone(),
                target: target.clone(),
                scrub: &[token.id.expose()],
            };
            match self.os.inner.http.send(&req).await {
                Err(Error::Unauthorized { .. }) if !reauthenticated => {
                    tracing::info!(request = %target, "401 from the service: renewing the token once");
                    self.os.inner.invalidate(&self.scope).await;
                    reauthenticated = true;
                }
                Err(e) => return Err(e),
                Ok(resp) => return Ok((target, resp)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn glance_next_is_relative_to_the_endpoint() {
        let next = "/v2/images?limit=2&marker=abc";
        assert_eq!(
            resolve_next(&u("http://g:9292"), next).unwrap().as_str(),
            "http://g:9292/v2/images?limit=2&marker=abc"
        );
        assert_eq!(
            resolve_next(&u("https://h/image"), next).unwrap().as_str(),
            "https://h/image/v2/images?limit=2&marker=abc"
        );
        assert_eq!(
            resolve_next(&u("https://h/image/v2/"), next)
                .unwrap()
                .as_str(),
            "https://h/image/v2/images?limit=2&marker=abc"
        );
        assert_eq!(
            resolve_next(
                &u("https://h/image"),
                "http://internal:9292/v2/images?marker=x"
            )
            .unwrap()
            .as_str(),
            "https://h/image/v2/images?marker=x"
        );
        let body = json!({"images": [{"id": "a"}], "next": next, "first": "/v2/images"});
        assert_eq!(
            next_page(&u("http://g:9292"), &body, "images", 1, 2, Some("a")),
            NextPage::Url(u("http://g:9292/v2/images?limit=2&marker=abc"))
        );
    }

    #[test]
    fn marker_from_links_or_last_id() {
        let ep = u("http://n:8774/v2.1");
        let body = json!({
            "flavors": [{"id": "1"}, {"id": "2"}],
            "flavors_links": [{"rel": "next", "href": "http://elsewhere:8774/v2.1/flavors/detail?limit=2&marker=2"}]
        });
        assert_eq!(
            next_page(&ep, &body, "flavors", 2, 2, Some("2")),
            NextPage::Marker("2".into())
        );
        // links present without next: done, even with a full page
        let body =
            json!({"volumes": [{"id": "1"}], "volumes_links": [{"rel": "self", "href": "x"}]});
        assert_eq!(
            next_page(&ep, &body, "volumes", 1, 1, Some("1")),
            NextPage::Done
        );
        // no links (Neutron without pagination links): full page -> last id; short page -> done
        let body = json!({"floatingips": [{"id": "f1"}, {"id": "f2"}]});
        assert_eq!(
            next_page(&ep, &body, "floatingips", 2, 2, Some("f2")),
            NextPage::Marker("f2".into())
        );
        assert_eq!(
            next_page(&ep, &body, "floatingips", 2, 3, Some("f2")),
            NextPage::Done
        );
        assert_eq!(
            next_page(&ep, &body, "floatingips", 2, 2, None),
            NextPage::Done
        );
        // a relative next link
        let body = json!({"servers": [], "servers_links": [{"rel": "next", "href": "/v2.1/servers/detail?marker=m9"}]});
        assert_eq!(
            next_page(&ep, &body, "servers", 0, 2, None),
            NextPage::Marker("m9".into())
        );
    }

    #[test]
    fn microversions() {
        let mut h = HeaderMap::new();
        Microversion::compute("2.61").apply(&mut h).unwrap();
        assert_eq!(h["OpenStack-API-Version"], "compute 2.61");
        assert_eq!(h["X-OpenStack-Nova-API-Version"], "2.61");
        let mut h = HeaderMap::new();
        Microversion::volume("3.60").apply(&mut h).unwrap();
        assert_eq!(h["OpenStack-API-Version"], "volume 3.60");
        assert!(h.get("X-OpenStack-Nova-API-Version").is_none());
        assert_eq!(parse_microversion("2.103"), Some((2, 103)));
        assert!(parse_microversion("2.103") > parse_microversion("2.61"));
        assert_eq!(parse_microversion("v2.1"), None);
        assert_eq!(parse_microversion(""), None);
    }
}
