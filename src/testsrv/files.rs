//! A test static file server for image lists and images: what a download
//! client meets on a real web server.
//!
//! - `GET`/`HEAD` of files under `root` (no directory listings; `..`, and
//!   paths that resolve outside `root`, are 404), streamed from disk.
//! - `Content-Length`, `Content-Type` by extension, `Accept-Ranges: bytes`,
//!   a strong `ETag` and `Last-Modified` (RFC 9110 §8.8).
//! - Conditional requests: `If-None-Match` / `If-Modified-Since` → 304;
//!   `If-Range` decides whether a `Range` is honoured (RFC 9110 §13.1.5).
//! - One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → 206 with
//!   `Content-Range`; unsatisfiable → 416 with `Content-Range: bytes */LEN`;
//!   several ranges or a malformed header → the whole file (RFC 9110 §14.2
//!   lets a server ignore `Range`).
//! - With a token: HTTP Basic auth where the token is the user name
//!   (`TOKEN:x-oauth-basic`, GitHub style), or the password; `Bearer TOKEN`
//!   also works. Otherwise 401 with `WWW-Authenticate: Basic`.
//!
//! Test API: `GET|POST|DELETE /__test/faults` (status, delay, drop,
//! `truncate_after`, `throttle`), `GET /__test/stats` (request log and
//! counters), `DELETE /__test/stats` (reset).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

use super::faults::FaultControl;
use super::http::{self, BoxError, Outcome, Peer, Resp};
use super::{Error, Server};

/// Options of the file server.
#[derive(Clone, Debug)]
pub struct FilesOptions {
    /// The directory served.
    pub root: PathBuf,
    /// When set, requests need this token (Basic user name or password, or
    /// Bearer).
    pub token: Option<String>,
}

/// One served request, as `GET /__test/stats` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogEntry {
    /// Request method.
    pub method: String,
    /// Request path (no query).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// The `Range` header, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// Body bytes the response declared (`Content-Length`).
    pub bytes: u64,
}

/// Counters of the file server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesStats {
    /// Requests, except the test API.
    pub requests: u64,
    /// Responses with status 200.
    pub ok: u64,
    /// Responses with status 206.
    pub partial: u64,
    /// Responses with status 304.
    pub not_modified: u64,
    /// Responses with status 401.
    pub unauthorized: u64,
    /// Responses with status 404.
    pub not_found: u64,
    /// Responses with status 416.
    pub range_not_satisfiable: u64,
    /// Requests a fault rule applied to.
    pub faulted: u64,
    /// Body bytes declared by all responses.
    pub bytes: u64,
    /// The last 1000 requests, oldest first.
    pub log: Vec<AccessLogEntry>,
}

/// A running file server.
#[derive(Debug)]
pub struct FilesServer {
    /// The server.
    pub server: Server,
    /// Its fault queue.
    pub faults: FaultControl,
    state: Arc<Files>,
}

impl FilesServer {
    /// The counters and access log.
    pub fn stats(&self) -> FilesStats {
        self.state.lock().clone()
    }
}

#[derive(Debug)]
struct Files {
    root: PathBuf,
    token: Option<String>,
    faults: FaultControl,
    stats: Mutex<FilesStats>,
}

/// Start the file server on `listener`.
pub fn serve(listener: TcpListener, opts: FilesOptions) -> Result<FilesServer, Error> {
    let root = opts.root.canonicalize().map_err(|e| {
        Error::io(
            format!("opening the served directory {}", opts.root.display()),
            e,
        )
    })?;
    if !root.is_dir() {
        return Err(Error::bad(
            "--root",
            root.display().to_string(),
            "not a directory",
        ));
    }
    let faults = FaultControl::default();
    let state = Arc::new(Files {
        root,
        token: opts.token,
        faults: faults.clone(),
        stats: Mutex::new(FilesStats::default()),
    });
    let handler_state = state.clone();
    let server = http::spawn("files", listener, None, move |peer, req| {
        let state = handler_state.clone();
        async move { state.handle(peer, req).await }
    })?;
    Ok(FilesServer {
        server,
        faults,
        state,
    })
}

impl Files {
    async fn handle(self: Arc<Self>, _peer: Peer, req: Request<Incoming>) -> Outcome {
        let path = req.uri().path().to_string();
        if let Some(test) = path.strip_prefix("/__test/") {
            return Ok(match (test, req.method()) {
                ("faults", _) => self.faults.handle_control(req).await,
                ("stats", &Method::GET) => {
                    http::json(StatusCode::OK, &serde_json::json!(*self.lock()))
                }
                ("stats", &Method::DELETE) => {
                    *self.lock() = FilesStats::default();
                    http::json(StatusCode::OK, &serde_json::json!(*self.lock()))
                }
                _ => http::text(StatusCode::NOT_FOUND, "unknown test endpoint\n"),
            });
        }
        let method = req.method().to_string();
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let fault = self.faults.take(&path, true);
        if fault.is_some() {
            self.lock().faulted += 1;
        }
        if let Some(fault) = &fault {
            if let Some(delay) = fault.delay_duration() {
                tokio::time::sleep(delay).await;
            }
            if fault.drop_connection {
                self.record(&method, &path, 0, range, 0);
                return Err(http::DropConnection);
            }
        }
        let injected = fault
            .as_ref()
            .and_then(|f| Some(super::faults::injected_text(f.status?, f.body.as_deref())));
        let mut resp = match injected {
            Some(r) => r,
            None => self.answer(&req).await,
        };
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.record(&method, &path, resp.status().as_u16(), range, declared);
        if let Some(fault) = fault.filter(|f| f.shapes_response()) {
            resp = fault.shape_response(resp);
        }
        Ok(resp)
    }

    fn record(&self, method: &str, path: &str, status: u16, range: Option<String>, bytes: u64) {
        let mut st = self.lock();
        st.requests += 1;
        st.bytes += bytes;
        match status {
            200 => st.ok += 1,
            206 => st.partial += 1,
            304 => st.not_modified += 1,
            401 => st.unauthorized += 1,
            404 => st.not_found += 1,
            416 => st.range_not_satisfiable += 1,
            _ => {}
        }
        if st.log.len() >= 1000 {
            st.log.remove(0);
        }
        st.log.push(AccessLogEntry {
            method: method.into(),
            path: path.into(),
            status,
            range,
            bytes,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FilesStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return value.trim() == token;
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        user == token || password == token
    }

    async fn answer(&self, req: &Request<Incoming>) -> Resp {
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut resp = http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return resp;
            }
        };
        if !self.authorized(req.headers()) {
            let mut resp = http::text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"fedcloud-testsrv\""),
            );
            return resp;
        }
        let Some(file) = self.resolve(req.uri().path()) else {
            return http::text(StatusCode::NOT_FOUND, "404 Not Found\n");
        };
        let meta = match tokio::fs::metadata(&file).await {
            Ok(m) if m.is_file() => m,
            _ => return http::text(StatusCode::NOT_FOUND, "404 Not Found\n"),
        };
        let len = meta.len();
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let etag = etag(len, modified);
        let last_modified = http_date(modified);

        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, header_value(&etag));
        headers.insert(header::LAST_MODIFIED, header_value(&last_modified));
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

        if not_modified(req.headers(), &etag, modified) {
            return with_headers(
                Response::new(http::empty()),
                StatusCode::NOT_MODIFIED,
                headers,
            );
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&file)),
        );

        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .filter(|_| if_range_holds(req.headers(), &etag, modified))
            .map(|r| parse_range(r, len));
        let (status, start, count) = match range {
            None | Some(RangeSpec::Ignore) => (StatusCode::OK, 0, len),
            Some(RangeSpec::Unsatisfiable) => {
                headers.insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}")),
                );
                let resp = http::text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "416 Range Not Satisfiable\n",
                );
                let mut resp = with_headers(resp, StatusCode::RANGE_NOT_SATISFIABLE, headers);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return resp;
            }
            Some(RangeSpec::Bytes { start, end }) => {
                headers.insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes {start}-{end}/{len}")),
                );
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
        };
        headers.insert(header::CONTENT_LENGTH, header_value(&count.to_string()));
        let body = if head {
            http::empty()
        } else {
            match file_body(&file, start, count).await {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("[files] reading {}: {e}", file.display());
                    return http::text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "500 Internal Server Error\n",
                    );
                }
            }
        };
        with_headers(Response::new(body), status, headers)
    }

    /// The file for a request path, or `None` if it would leave `root`.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let decoded = percent_decode(path)?;
        let relative = Path::new(decoded.trim_start_matches('/'));
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let full = self.root.join(relative).canonicalize().ok()?;
        full.starts_with(&self.root).then_some(full)
    }
}

fn with_headers(mut resp: Resp, status: StatusCode, headers: HeaderMap) -> Resp {
    *resp.status_mut() = status;
    resp.headers_mut().extend(headers);
    resp
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Strong validator from size and modification time.
fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{len:x}-{nanos:x}\"")
}

/// IMF-fixdate (RFC 9110 §5.6.7).
fn http_date(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(SystemTime::from)
}

/// Whole seconds, as HTTP dates carry them.
fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 9110 §13.1.2 and §13.1.3 (`If-None-Match` wins over `If-Modified-Since`).
fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    {
        return seconds(modified) <= seconds(since);
    }
    false
}

/// RFC 9110 §13.1.5: a `Range` counts only if `If-Range` (when present)
/// still matches the current representation.
fn if_range_holds(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == etag;
    }
    parse_http_date(value).is_some_and(|date| seconds(date) == seconds(modified))
}

/// A parsed `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Serve the whole file (malformed, several ranges, or not bytes).
    Ignore,
    /// 416.
    Unsatisfiable,
    /// Inclusive byte positions.
    Bytes { start: u64, end: u64 },
}

fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Bytes {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeSpec::Ignore,
        },
        // bytes=a- or bytes=a-b.
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeSpec::Ignore;
            };
            let end = if last.is_empty() {
                len.saturating_sub(1)
            } else {
                match number(last) {
                    Some(end) if end >= start => end.min(len.saturating_sub(1)),
                    _ => return RangeSpec::Ignore,
                }
            };
            if start >= len {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Bytes { start, end }
            }
        }
        (true, true) => RangeSpec::Ignore,
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("txt") | Some("list") => "text/plain; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("smime") | Some("p7m") | Some("p7s") => "application/pkcs7-mime",
        Some("pem") | Some("crt") => "application/x-pem-file",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Decode `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `count` bytes of `path` from `start`, streamed in chunks of up to 1 MiB
/// read without zero-filling (a real web server would `sendfile`; this
/// keeps the test server's CPU share small on a 2-core benchmark machine).
async fn file_body(path: &Path, start: u64, count: u64) -> std::io::Result<http::Body> {
    const CHUNK: u64 = 1 << 20;
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let stream = futures::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left.min(CHUNK)).unwrap_or(CHUNK as usize);
        let mut buf = bytes::BytesMut::with_capacity(want);
        while buf.len() < want {
            match file.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Some((Err(Box::new(e) as BoxError), (file, 0))),
            }
        }
        if buf.is_empty() {
            let err: BoxError = "file shrank while being served".into();
            return Some((Err(err), (file, 0)));
        }
        let n = buf.len() as u64;
        Some((Ok(buf.freeze()), (file, left - n)))
    });
    Ok(BodyExt::boxed(StreamBody::new(
        stream.map(|r| r.map(Frame::data)),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeSpec::*;
        assert_eq!(parse_range("bytes=0-9", 100), Bytes { start: 0, end: 9 });
        assert_eq!(parse_range("bytes=90-", 100), Bytes { start: 90, end: 99 });
        assert_eq!(
            parse_range("bytes=90-200", 100),
            Bytes { start: 90, end: 99 }
        );
        assert_eq!(parse_range("bytes=-10", 100), Bytes { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-1000", 100), Bytes { start: 0, end: 99 });
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 100), Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ignore);
        assert_eq!(parse_range("items=0-1", 100), Ignore);
        assert_eq!(parse_range("bytes=x-", 100), Ignore);
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%2"), None);
    }

    #[test]
    fn dates_round_trip() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let s = http_date(t);
        assert_eq!(s, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(parse_http_date(&s), Some(t));
    }
}
