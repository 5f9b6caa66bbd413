//! A test ARGO Messaging Service: the two calls a publisher makes, over
//! HTTPS, with AMS's own status codes and error bodies.
//!
//! | call | real service | here |
//! | --- | --- | --- |
//! | `GET /v1/service-types/ams/hosts/{host}:authx509` | `argo-api-authn` (port 8443) maps the client certificate's DN to a user and returns `{"token": ..}` | any client certificate that verifies against the CA directory (and, if `allowed_dns` is set, has one of those DNs) gets the token |
//! | `GET /v1/projects/{p}/topics`, `GET /v1/projects/{p}/topics/{t}` | topic list / details | the configured topics, or any topic when none are configured |
//! | `POST /v1/projects/{p}/topics/{t}:publish` | publish; `{"messageIds": [..]}` | same; every accepted message is stored as a JSON file under `<state_dir>/messages/` |
//!
//! The order of checks follows `argo-messaging` `handlers/handlers.go`
//! (`WrapValidate`, `WrapAuthenticate`) and `handlers/topics.go`
//! (`TopicPublish`): invalid name 400, missing key 401, unknown project 404,
//! wrong key 401, unknown topic 404, unparsable body 400, oversize message
//! 413. Error bodies are `handlers/errors.go`'s, indented as
//! `json.MarshalIndent(.., "", "   ")` does. The token is read from the
//! `x-api-key` header, then from `?key=` (AMS `auth_option: both`).
//!
//! Deliberately stricter than AMS: `data` must be standard base64 (AMS's docs
//! require it; the server itself does not check). The size limit applies to
//! each message's `data` as sent (base64 text), like Kafka's
//! `message.max.bytes` applies to the stored message.
//!
//! Test API (no authentication): `GET /__test/messages[?topic=T]`,
//! `DELETE /__test/messages`, `GET|POST|DELETE /__test/faults` (rules apply to
//! publish calls unless they name a `path_prefix`), `GET /__test/stats`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::faults::FaultControl;
use super::http::{self, Outcome, Peer, Resp};
use super::tls::{self, TlsOptions};
use super::{Error, Server};

/// Default `max_message_bytes`: 1 MiB, AMS's documented per-message budget.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Options of the AMS test server.
#[derive(Clone, Debug)]
pub struct AmsOptions {
    /// Server certificate and key; `client_ca_dir` enables `authx509`.
    /// `None` serves plain HTTP (for tests that do not need TLS; `authx509`
    /// then always answers 400 "No certificate provided").
    pub tls: Option<TlsOptions>,
    /// Where accepted messages are stored (`messages/<id>.json`).
    pub state_dir: PathBuf,
    /// The one AMS project (EGI accounting uses `accounting`).
    pub project: String,
    /// The token publishers must present and `authx509` hands out.
    pub token: String,
    /// Known topics; empty = every valid topic name exists.
    pub topics: Vec<String>,
    /// Client certificate DNs (slash form) `authx509` accepts; empty = any
    /// certificate that verifies.
    pub allowed_dns: Vec<String>,
    /// Largest accepted message `data`, in bytes of base64 text.
    pub max_message_bytes: usize,
}

impl AmsOptions {
    /// Options with the defaults: project `accounting`, any topic, 1 MiB.
    pub fn new(
        tls: Option<TlsOptions>,
        state_dir: impl Into<PathBuf>,
        token: impl Into<String>,
    ) -> AmsOptions {
        AmsOptions {
            tls,
            state_dir: state_dir.into(),
            project: "accounting".into(),
            token: token.into(),
            topics: Vec::new(),
            allowed_dns: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A message as stored under `<state_dir>/messages/` and listed by
/// `GET /__test/messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// The id returned to the publisher.
    pub message_id: String,
    /// Project of the publish call.
    pub project: String,
    /// Topic of the publish call.
    pub topic: String,
    /// Server time of the publish call (RFC 3339, UTC).
    pub publish_time: String,
    /// The message's attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The message's `data`, base64 as sent.
    #[serde(default)]
    pub data: String,
}

impl StoredMessage {
    /// `data`, base64-decoded.
    pub fn decoded_data(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.data)
    }
}

/// Counters of the AMS test server (`GET /__test/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmsStats {
    /// All requests except the test API.
    pub requests: u64,
    /// `authx509` calls.
    pub authx509: u64,
    /// `authx509` calls that got a token.
    pub tokens_issued: u64,
    /// DNs of the certificates presented to `authx509`, in order.
    pub authx509_dns: Vec<String>,
    /// Publish calls, including failed and faulted ones.
    pub publish_calls: u64,
    /// Messages accepted.
    pub published: u64,
}

/// A running AMS test server.
#[derive(Debug)]
pub struct AmsServer {
    /// The server.
    pub server: Server,
    /// Its fault queue.
    pub faults: FaultControl,
    state: Arc<Ams>,
}

impl AmsServer {
    /// The messages accepted so far, in id order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.state.messages(None)
    }
    /// The counters.
    pub fn stats(&self) -> AmsStats {
        self.state.stats()
    }
}

#[derive(Debug)]
struct Ams {
    opts: AmsOptions,
    dir: PathBuf,
    faults: FaultControl,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    stats: AmsStats,
}

/// Start the AMS test server on `listener`.
pub fn serve(listener: TcpListener, opts: AmsOptions) -> Result<AmsServer, Error> {
    if opts.project.is_empty() || !valid_name(&opts.project) {
        return Err(Error::bad(
            "project",
            &opts.project,
            "must be a non-empty AMS name ([A-Za-z0-9_.-])",
        ));
    }
    if opts.token.is_empty() {
        return Err(Error::bad("token", "", "must not be empty"));
    }
    if let Some(bad) = opts.topics.iter().find(|t| !valid_name(t)) {
        return Err(Error::bad(
            "topic",
            bad.as_str(),
            "not a valid AMS name ([A-Za-z0-9_.-])",
        ));
    }
    let dir = opts.state_dir.join("messages");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let next_id = last_stored_id(&dir)? + 1;
    let acceptor = opts.tls.as_ref().map(tls::acceptor).transpose()?;
    let faults = FaultControl::default();
    let state = Arc::new(Ams {
        opts,
        dir,
        faults: faults.clone(),
        inner: Mutex::new(Inner {
            next_id,
            stats: AmsStats::default(),
        }),
    });
    let handler_state = state.clone();
    let server = http::spawn("ams", listener, acceptor, move |peer, req| {
        let state = handler_state.clone();
        async move { state.handle(peer, req).await }
    })?;
    Ok(AmsServer {
        server,
        faults,
        state,
    })
}

/// The highest message id already stored (0 if none), so ids keep growing
/// across restarts on the same state directory.
fn last_stored_id(dir: &Path) -> Result<u64, Error> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0))
}

/// AMS resource names (`validation.ValidName`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// An AMS error response (`handlers/errors.go` `APIErrorRoot`).
fn ams_error(code: u16, message: &str, status: &str) -> Resp {
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    ams_json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// An `argo-api-authn` error response (`utils/api_errors.go`): same shape,
/// its own field order and status words.
fn authn_error(code: u16, message: &str, status: &str) -> Resp {
    let body = json!({"error": {"message": message, "code": code, "status": status}});
    ams_json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// JSON the way the Go services write it: `MarshalIndent` with three spaces.
fn ams_json(status: StatusCode, value: &Value) -> Resp {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"   "),
    );
    value
        .serialize(&mut ser)
        .expect("serializing a JSON value cannot fail");
    http::response(status, "application/json; charset=utf-8", out)
}

fn unauthorized() -> Resp {
    ams_error(401, "Unauthorized", "UNAUTHORIZED")
}

/// The routes of the service.
enum Route<'a> {
    AuthX509 {
        service_type: &'a str,
        host: &'a str,
    },
    Topics {
        project: &'a str,
    },
    Topic {
        project: &'a str,
        topic: &'a str,
    },
    Publish {
        project: &'a str,
        topic: &'a str,
    },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v1/")?;
    if let Some(rest) = rest.strip_prefix("service-types/") {
        let (service_type, rest) = rest.split_once("/hosts/")?;
        let host = rest.strip_suffix(":authx509")?;
        return (!service_type.contains('/') && !host.contains('/'))
            .then_some(Route::AuthX509 { service_type, host });
    }
    let rest = rest.strip_prefix("projects/")?;
    let (project, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("topics")?;
    if rest.is_empty() {
        return Some(Route::Topics { project });
    }
    let topic = rest.strip_prefix('/')?;
    if topic.contains('/') {
        return None;
    }
    match topic.strip_suffix(":publish") {
        Some(topic) => Some(Route::Publish { project, topic }),
        None if !topic.contains(':') => Some(Route::Topic { project, topic }),
        None => None,
    }
}

impl Ams {
    async fn handle(self: Arc<Self>, peer: Peer, req: Request<Incoming>) -> Outcome {
        let path = req.uri().path().to_string();
        if let Some(test) = path.strip_prefix("/__test/") {
            return Ok(self.handle_test(test, req).await);
        }
        self.with_stats(|s| s.requests += 1);
        let publish = matches!(route(&path), Some(Route::Publish { .. }));
        if publish {
            self.with_stats(|s| s.publish_calls += 1);
        }
        let fault = self.faults.take(&path, publish);
        if let Some(fault) = &fault {
            if let Some(out) = fault.preempt(injected).await {
                return out;
            }
        }
        let mut resp = match route(&path) {
            Some(Route::AuthX509 { service_type, host }) => {
                self.authx509(&peer, req.method(), service_type, host)
            }
            Some(Route::Topics { project }) => {
                let project = project.to_string();
                self.topics(&req, &project)
            }
            Some(Route::Topic { project, topic }) => {
                let (project, topic) = (project.to_string(), topic.to_string());
                self.topic(&req, &project, &topic)
            }
            Some(Route::Publish { project, topic }) => {
                let (project, topic) = (project.to_string(), topic.to_string());
                self.publish(req, &project, &topic).await
            }
            None => ams_error(404, "Not Found", "NOT_FOUND"),
        };
        if let Some(fault) = fault.filter(|f| f.shapes_response()) {
            resp = fault.shape_response(resp);
        }
        Ok(resp)
    }

    /// `argo-api-authn` `handlers/certificate_handlers.go` `AuthViaCert`.
    fn authx509(&self, peer: &Peer, method: &Method, service_type: &str, host: &str) -> Resp {
        self.with_stats(|s| s.authx509 += 1);
        if method != Method::GET {
            return authn_error(405, "Method Not Allowed", "METHOD NOT ALLOWED");
        }
        let Some(tls) = peer.tls.as_ref() else {
            return authn_error(400, "No certificate provided", "BAD REQUEST");
        };
        let Some(subject) = tls.subject.clone() else {
            return authn_error(400, "No certificate provided", "BAD REQUEST");
        };
        self.with_stats(|s| s.authx509_dns.push(subject.clone()));
        if let Err(why) = &tls.verified {
            return authn_error(
                401,
                &format!("x509: certificate verification failed: {why}"),
                "UNAUTHORIZED",
            );
        }
        if service_type != "ams" {
            return authn_error(404, "Service-type was not found", "NOT FOUND");
        }
        if host.is_empty() {
            return authn_error(404, "Host was not found", "NOT FOUND");
        }
        if !self.opts.allowed_dns.is_empty() && !self.opts.allowed_dns.contains(&subject) {
            return authn_error(404, "Binding was not found", "NOT FOUND");
        }
        self.with_stats(|s| s.tokens_issued += 1);
        ams_json(StatusCode::OK, &json!({"token": self.opts.token}))
    }

    /// `WrapValidate` + `WrapAuthenticate`: names, key, project. `Some` is
    /// the refusal.
    fn refusal(&self, req: &Request<Incoming>, project: &str, topic: Option<&str>) -> Option<Resp> {
        if !valid_name(project) {
            return Some(ams_error(400, "Invalid project name", "INVALID_ARGUMENT"));
        }
        if topic.is_some_and(|t| !valid_name(t)) {
            return Some(ams_error(400, "Invalid topic name", "INVALID_ARGUMENT"));
        }
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| http::query_param(req.uri(), "key"))
            .unwrap_or_default();
        if key.is_empty() {
            return Some(unauthorized());
        }
        if project != self.opts.project {
            return Some(ams_error(404, "project doesn't exist", "NOT_FOUND"));
        }
        if key != self.opts.token {
            return Some(unauthorized());
        }
        None
    }

    fn topic_exists(&self, topic: &str) -> bool {
        self.opts.topics.is_empty() || self.opts.topics.iter().any(|t| t == topic)
    }

    fn topic_json(&self, topic: &str) -> Value {
        json!({"name": format!("/projects/{}/topics/{topic}", self.opts.project)})
    }

    fn topics(&self, req: &Request<Incoming>, project: &str) -> Resp {
        if req.method() != Method::GET {
            return ams_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED");
        }
        if let Some(resp) = self.refusal(req, project, None) {
            return resp;
        }
        let topics: Vec<Value> = if self.opts.topics.is_empty() {
            // "Any topic" mode: list those that have messages.
            let mut seen: Vec<String> = self.messages(None).into_iter().map(|m| m.topic).collect();
            seen.sort();
            seen.dedup();
            seen.iter().map(|t| self.topic_json(t)).collect()
        } else {
            self.opts
                .topics
                .iter()
                .map(|t| self.topic_json(t))
                .collect()
        };
        let total = topics.len();
        ams_json(
            StatusCode::OK,
            &json!({"topics": topics, "nextPageToken": "", "totalSize": total}),
        )
    }

    fn topic(&self, req: &Request<Incoming>, project: &str, topic: &str) -> Resp {
        if req.method() != Method::GET {
            return ams_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED");
        }
        if let Some(resp) = self.refusal(req, project, Some(topic)) {
            return resp;
        }
        if !self.topic_exists(topic) {
            return ams_error(404, "Topic doesn't exist", "NOT_FOUND");
        }
        ams_json(StatusCode::OK, &self.topic_json(topic))
    }

    async fn publish(&self, req: Request<Incoming>, project: &str, topic: &str) -> Resp {
        if req.method() != Method::POST {
            return ams_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED");
        }
        if let Some(resp) = self.refusal(&req, project, Some(topic)) {
            return resp;
        }
        if !self.topic_exists(topic) {
            return ams_error(404, "Topic doesn't exist", "NOT_FOUND");
        }
        // Whole bodies far beyond the per-message limit are refused early.
        let read_limit = self
            .opts
            .max_message_bytes
            .saturating_mul(8)
            .saturating_add(1 << 20);
        let body = match http::read_body(req.into_body(), read_limit).await {
            Ok(b) => b,
            Err(http::BodyError::TooLarge) => {
                return ams_error(413, "Message size is too large", "INVALID_ARGUMENT")
            }
            Err(http::BodyError::Read) => {
                return ams_error(400, "Invalid Request Body", "BAD_REQUEST")
            }
        };
        let Some(messages) = parse_messages(&body) else {
            return ams_error(400, "Invalid Message Arguments", "INVALID_ARGUMENT");
        };
        if messages
            .iter()
            .any(|m| m.data.len() > self.opts.max_message_bytes)
        {
            return ams_error(413, "Message size is too large", "INVALID_ARGUMENT");
        }
        let publish_time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut ids = Vec::with_capacity(messages.len());
        for msg in messages {
            let id = {
                let mut inner = self.lock();
                let id = inner.next_id;
                inner.next_id += 1;
                id
            };
            let stored = StoredMessage {
                message_id: id.to_string(),
                project: project.to_string(),
                topic: topic.to_string(),
                publish_time: publish_time.clone(),
                attributes: msg.attributes,
                data: msg.data,
            };
            if let Err(e) = self.store(id, &stored) {
                eprintln!("[ams] storing message {id}: {e}");
                return ams_error(500, "Backend Error", "INTERNAL_SERVER_ERROR");
            }
            self.with_stats(|s| s.published += 1);
            ids.push(stored.message_id);
        }
        ams_json(StatusCode::OK, &json!({"messageIds": ids}))
    }

    fn store(&self, id: u64, msg: &StoredMessage) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(msg).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &json)?;
        tmp.persist(self.dir.join(format!("{id:010}.json")))
            .map_err(|e| e.error)?;
        Ok(())
    }

    fn messages(&self, topic: Option<&str>) -> Vec<StoredMessage> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice::<StoredMessage>(&b).ok())
            .filter(|m| topic.is_none_or(|t| m.topic == t))
            .collect()
    }

    async fn handle_test(&self, path: &str, req: Request<Incoming>) -> Resp {
        match (path, req.method()) {
            ("messages", &Method::GET) => {
                let topic = http::query_param(req.uri(), "topic");
                http::json(
                    StatusCode::OK,
                    &json!({"messages": self.messages(topic.as_deref())}),
                )
            }
            ("messages", &Method::DELETE) => {
                for m in self.messages(None) {
                    let id: u64 = m.message_id.parse().unwrap_or(0);
                    let _ = std::fs::remove_file(self.dir.join(format!("{id:010}.json")));
                }
                http::json(StatusCode::OK, &json!({"messages": []}))
            }
            ("faults", _) => self.faults.handle_control(req).await,
            ("stats", &Method::GET) => http::json(StatusCode::OK, &json!(self.stats())),
            _ => http::text(StatusCode::NOT_FOUND, "unknown test endpoint\n"),
        }
    }

    fn stats(&self) -> AmsStats {
        self.lock().stats.clone()
    }

    fn with_stats(&self, f: impl FnOnce(&mut AmsStats)) {
        f(&mut self.lock().stats);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An injected status with the body AMS (or its HAProxy front) would send.
fn fault_error(status: u16) -> Resp {
    let word = match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        408 => "TIMEOUT",
        409 => "CONFLICT",
        413 => "INVALID_ARGUMENT",
        500 => "INTERNAL_SERVER_ERROR",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        _ => "ERROR",
    };
    let message = match status {
        413 => "Message size is too large".to_string(),
        _ => format!("injected fault: HTTP {status}"),
    };
    ams_error(status, &message, word)
}

/// One message of a publish body.
#[derive(Debug)]
struct Message {
    attributes: BTreeMap<String, String>,
    data: String,
}

/// `{"messages": [{"attributes": {string: string}, "data": base64}, ..]}`;
/// `None` when the body does not have that shape.
fn parse_messages(body: &[u8]) -> Option<Vec<Message>> {
    #[derive(Deserialize)]
    struct Body {
        messages: Vec<Msg>,
    }
    #[derive(Deserialize)]
    struct Msg {
        #[serde(default)]
        attributes: Option<BTreeMap<String, String>>,
        #[serde(default)]
        data: Option<String>,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    body.messages
        .into_iter()
        .map(|m| {
            let data = m.data.unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(&data)
                .ok()?;
            Some(Message {
                attributes: m.attributes.unwrap_or_default(),
                data,
            })
        })
        .collect()
}

/// An injected answer: the rule's body as text, else AMS's error JSON.
fn injected(status: u16, body: Option<&str>) -> Resp {
    match body {
        Some(b) => http::text(super::faults::injected_status(status), b),
        None => fault_error(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/v1/service-types/ams/hosts/localhost:authx509"),
            Some(Route::AuthX509 {
                service_type: "ams",
                host: "localhost"
            })
        ));
        assert!(matches!(
            route("/v1/projects/accounting/topics/eu-egi-cloud-accounting:publish"),
            Some(Route::Publish {
                project: "accounting",
                topic: "eu-egi-cloud-accounting"
            })
        ));
        assert!(matches!(
            route("/v1/projects/accounting/topics/t"),
            Some(Route::Topic { .. })
        ));
        assert!(matches!(
            route("/v1/projects/accounting/topics"),
            Some(Route::Topics { .. })
        ));
        assert!(route("/v1/projects/accounting/topics/t:acl").is_none());
        assert!(route("/v1/projects/accounting/topics/a/b:publish").is_none());
        assert!(route("/v2/projects/a/topics/b").is_none());
    }

    #[test]
    fn message_bodies() {
        let ok = parse_messages(
            br#"{"messages":[{"attributes":{"empaid":"a/b"},"data":"aGVsbG8="},{"data":""}]}"#,
        )
        .expect("valid body");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].attributes["empaid"], "a/b");
        assert!(parse_messages(br#"{"messages":[{"data":"not base64!"}]}"#).is_none());
        assert!(parse_messages(br#"{"messages":[{"attributes":{"n":1},"data":""}]}"#).is_none());
        assert!(parse_messages(b"{").is_none());
        assert!(parse_messages(br#"{"msgs":[]}"#).is_none());
    }

    #[test]
    fn error_bodies_are_indented_like_go() {
        let resp = ams_error(401, "Unauthorized", "UNAUTHORIZED");
        assert_eq!(resp.status(), 401);
        let body = futures::executor::block_on(http_body_util::BodyExt::collect(resp.into_body()))
            .expect("body")
            .to_bytes();
        assert_eq!(
            std::str::from_utf8(&body).expect("utf-8"),
            "{\n   \"error\": {\n      \"code\": 401,\n      \"message\": \"Unauthorized\",\n      \"status\": \"UNAUTHORIZED\"\n   }\n}"
        );
    }
}
