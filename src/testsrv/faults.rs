//! Fault injection shared by the test servers: a queue of [`Fault`] rules,
//! each good for `count` requests. A server asks the queue for every request
//! it receives; the first rule that matches the request's path and has uses
//! left applies (and loses one use).
//!
//! Control over HTTP: `POST` a rule as JSON to the server's control path
//! (`/__test/faults`, or `/__fault` on the fault proxy) to append it,
//! `DELETE` to clear the queue, `GET` to list what is pending. In-process:
//! [`FaultControl`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};

use super::http::{Body, BoxError};

/// One fault rule. All effects are optional and combine: a delay happens
/// first, then a status replaces the real answer, or the connection is
/// dropped, or the real answer's body is throttled and/or cut short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Answer with this HTTP status instead of the real answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body for `status` (default: the server's usual error body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Wait this long before answering (for client timeouts).
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
    /// Close the connection without answering.
    #[serde(skip_serializing_if = "is_false")]
    pub drop_connection: bool,
    /// Send the real headers (full `Content-Length`) but cut the body after
    /// this many bytes and close the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncate_after: Option<u64>,
    /// Send the body at most this many bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<u64>,
    /// After this many body bytes, send nothing for `stall_ms` (the
    /// connection stays open: a stalled download), then go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_after: Option<u64>,
    /// How long the stall of `stall_after` lasts.
    #[serde(skip_serializing_if = "is_zero")]
    pub stall_ms: u64,
    /// Replace the real answer's `Date` header with the server's clock
    /// plus this many seconds (negative: behind): a peer whose clock is
    /// off, for clock-skew checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_offset_seconds: Option<i64>,
    /// Only requests whose path starts with this. Without it a rule applies
    /// to the server's default scope (AMS: publish calls; others: every
    /// request except the control API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// How many requests the rule applies to (default 1).
    pub count: u32,
}

/// An injected status as an HTTP status (503 when it is not one).
pub(crate) fn injected_status(status: u16) -> hyper::StatusCode {
    hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE)
}

/// The body of an injected answer: the rule's, else
/// `injected fault: HTTP <status>`.
pub(crate) fn injected_body(status: u16, body: Option<&str>) -> String {
    body.map(String::from).unwrap_or_else(|| {
        format!(
            "injected fault: HTTP {}\n",
            injected_status(status).as_u16()
        )
    })
}

/// The plain-text injected answer most test servers give.
pub(crate) fn injected_text(status: u16, body: Option<&str>) -> super::http::Resp {
    super::http::text(injected_status(status), injected_body(status, body))
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            status: None,
            body: None,
            delay_ms: 0,
            drop_connection: false,
            truncate_after: None,
            throttle: None,
            stall_after: None,
            stall_ms: 0,
            date_offset_seconds: None,
            path_prefix: None,
            count: 1,
        }
    }
}

impl Fault {
    /// Answer with `status`.
    pub fn status(status: u16) -> Fault {
        Fault {
            status: Some(status),
            ..Fault::default()
        }
    }
    /// Delay the answer.
    pub fn delay(delay: Duration) -> Fault {
        Fault {
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ..Fault::default()
        }
    }
    /// Close the connection without answering.
    pub fn drop_connection() -> Fault {
        Fault {
            drop_connection: true,
            ..Fault::default()
        }
    }
    /// Cut the body after `bytes` bytes.
    pub fn truncate_after(bytes: u64) -> Fault {
        Fault {
            truncate_after: Some(bytes),
            ..Fault::default()
        }
    }
    /// Send the body at `bytes_per_second`.
    pub fn throttle(bytes_per_second: u64) -> Fault {
        Fault {
            throttle: Some(bytes_per_second),
            ..Fault::default()
        }
    }
    /// Stop sending after `bytes` body bytes for `pause`, then go on.
    pub fn stall_after(bytes: u64, pause: Duration) -> Fault {
        Fault {
            stall_after: Some(bytes),
            stall_ms: u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            ..Fault::default()
        }
    }
    /// Answer with a `Date` header `seconds` off the server's clock.
    pub fn date_offset(seconds: i64) -> Fault {
        Fault {
            date_offset_seconds: Some(seconds),
            ..Fault::default()
        }
    }
    /// Apply to this many requests.
    pub fn times(mut self, count: u32) -> Fault {
        self.count = count;
        self
    }
    /// Apply only to paths starting with `prefix`.
    pub fn on_path(mut self, prefix: impl Into<String>) -> Fault {
        self.path_prefix = Some(prefix.into());
        self
    }
    /// Use this body with `status`.
    pub fn with_body(mut self, body: impl Into<String>) -> Fault {
        self.body = Some(body.into());
        self
    }

    /// The delay, if any.
    pub(crate) fn delay_duration(&self) -> Option<Duration> {
        (self.delay_ms > 0).then(|| Duration::from_millis(self.delay_ms))
    }

    /// What a fault does before the server's own answer: wait `delay_ms`,
    /// then drop the connection, or answer with the injected status:
    /// `answer(status, the rule's body)`. `None`: serve the real answer
    /// (and shape it with [`Fault::shape_response`]).
    pub(crate) async fn preempt(
        &self,
        answer: impl FnOnce(u16, Option<&str>) -> super::http::Resp,
    ) -> Option<super::http::Outcome> {
        if let Some(delay) = self.delay_duration() {
            tokio::time::sleep(delay).await;
        }
        if self.drop_connection {
            return Some(Err(super::http::DropConnection));
        }
        let status = self.status?;
        Some(Ok(answer(status, self.body.as_deref())))
    }

    /// Whether the body needs rewriting.
    fn shapes_body(&self) -> bool {
        self.truncate_after.is_some() || self.throttle.is_some() || self.stall_after.is_some()
    }

    /// Whether the real answer needs rewriting ([`Fault::shape_response`]).
    pub(crate) fn shapes_response(&self) -> bool {
        self.shapes_body() || self.date_offset_seconds.is_some()
    }

    /// Rewrite the real answer: its `Date` header, and a throttled and/or
    /// truncated body, keeping (or adding) its `Content-Length` so a cut
    /// body is a short read, not a clean end.
    pub(crate) fn shape_response(&self, resp: super::http::Resp) -> super::http::Resp {
        let (mut parts, body) = resp.into_parts();
        if let Some(offset) = self.date_offset_seconds {
            let at = chrono::Utc::now() + chrono::Duration::seconds(offset);
            if let Ok(v) = hyper::header::HeaderValue::from_str(
                &at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ) {
                parts.headers.insert(hyper::header::DATE, v);
            }
        }
        if !self.shapes_body() {
            return hyper::Response::from_parts(parts, body);
        }
        if let Some(len) = hyper::body::Body::size_hint(&body).exact() {
            parts
                .headers
                .entry(hyper::header::CONTENT_LENGTH)
                .or_insert_with(|| len.into());
        }
        hyper::Response::from_parts(parts, self.shape_body(body))
    }

    /// Throttle and/or truncate a response body.
    fn shape_body(&self, body: Body) -> Body {
        if !self.shapes_body() {
            return body;
        }
        let limit = self.truncate_after;
        let rate = self.throttle.filter(|r| *r > 0);
        let stall = self
            .stall_after
            .map(|at| (at, Duration::from_millis(self.stall_ms)));
        // Throttled bodies go out in pieces of about 1/20 s worth of data.
        let piece = rate
            .map(|r| usize::try_from((r / 20).max(1)).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX);
        struct State {
            inner: http_body_util::BodyDataStream<Body>,
            pending: Bytes,
            sent: u64,
            /// Bytes were thrown away: after `pending`, fail.
            cut: bool,
            /// The `stall_after` pause happened.
            stalled: bool,
            done: bool,
        }
        let state = State {
            inner: body.into_data_stream(),
            pending: Bytes::new(),
            sent: 0,
            cut: false,
            stalled: false,
            done: false,
        };
        let stream = futures::stream::unfold(state, move |mut st| async move {
            if st.done {
                return None;
            }
            if st.pending.is_empty() && !st.cut {
                match st.inner.next().await {
                    Some(Ok(chunk)) => st.pending = chunk,
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    None => return None,
                }
            }
            if let Some(limit) = limit {
                let room = usize::try_from(limit.saturating_sub(st.sent)).unwrap_or(usize::MAX);
                if st.pending.len() > room {
                    st.pending.truncate(room);
                    st.cut = true;
                }
            }
            if st.pending.is_empty() {
                // Only reached when cut: let the server flush what was sent
                // before the abort, so the client sees a short body rather
                // than nothing, then fail the body (hyper closes the
                // connection).
                st.done = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let err: BoxError = "response body cut short by fault injection".into();
                return Some((Err(err), st));
            }
            let mut n = st.pending.len().min(piece);
            if let Some((at, pause)) = stall.filter(|_| !st.stalled) {
                if st.sent >= at {
                    st.stalled = true;
                    tokio::time::sleep(pause).await;
                } else {
                    n = n.min(usize::try_from(at - st.sent).unwrap_or(usize::MAX));
                }
            }
            let out = st.pending.split_to(n);
            if let Some(rate) = rate {
                tokio::time::sleep(Duration::from_secs_f64(out.len() as f64 / rate as f64)).await;
            }
            st.sent += out.len() as u64;
            Some((Ok(out), st))
        });
        BodyExt::boxed(StreamBody::new(stream.map(|r| r.map(Frame::data))))
    }
}

/// Counters of the fault queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Requests checked against the queue.
    pub seen: u64,
    /// Requests a rule applied to.
    pub faulted: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Fault>,
    stats: FaultStats,
}

/// Handle on a server's fault queue; clones share the queue.
#[derive(Clone, Debug, Default)]
pub struct FaultControl {
    state: Arc<Mutex<State>>,
}

impl FaultControl {
    /// Append a rule.
    pub fn push(&self, fault: Fault) {
        if fault.count > 0 {
            self.lock().queue.push_back(fault);
        }
    }
    /// Replace all rules with this one.
    pub fn set(&self, fault: Fault) {
        self.clear();
        self.push(fault);
    }
    /// Remove all rules.
    pub fn clear(&self) {
        self.lock().queue.clear();
    }
    /// The rules still pending, with their remaining counts.
    pub fn pending(&self) -> Vec<Fault> {
        self.lock().queue.iter().cloned().collect()
    }
    /// The counters.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    /// Check a request: count it, and return the rule that applies to it (if
    /// any), using up one of its uses. `in_default_scope` says whether a rule
    /// without `path_prefix` applies to this request.
    pub(crate) fn take(&self, path: &str, in_default_scope: bool) -> Option<Fault> {
        let mut st = self.lock();
        st.stats.seen += 1;
        let idx = st.queue.iter().position(|f| match &f.path_prefix {
            Some(prefix) => path.starts_with(prefix.as_str()),
            None => in_default_scope,
        })?;
        st.stats.faulted += 1;
        let rule = &mut st.queue[idx];
        let taken = rule.clone();
        rule.count -= 1;
        if rule.count == 0 {
            st.queue.remove(idx);
        }
        Some(taken)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serve the control API (`GET`/`POST`/`DELETE` on the control path).
    /// The test API of a server that only counts its requests:
    /// `/__test/faults` (this queue) and `/__test/stats`
    /// (`{"requests": .., "faults": ..}`); `endpoint` is the path after
    /// `/__test/`.
    pub(crate) async fn test_api(
        &self,
        endpoint: &str,
        req: hyper::Request<hyper::body::Incoming>,
        requests: u64,
    ) -> super::http::Resp {
        use hyper::StatusCode;
        match endpoint {
            "faults" => self.handle_control(req).await,
            "stats" => super::http::json(
                StatusCode::OK,
                &serde_json::json!({"requests": requests, "faults": self.stats()}),
            ),
            _ => super::http::text(StatusCode::NOT_FOUND, "unknown test endpoint\n"),
        }
    }

    pub(crate) async fn handle_control(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> super::http::Resp {
        use hyper::{Method, StatusCode};
        match *req.method() {
            Method::GET => super::http::json(
                StatusCode::OK,
                &serde_json::json!({"pending": self.pending(), "stats": self.stats()}),
            ),
            Method::POST => match super::http::read_json::<Fault>(req.into_body()).await {
                Ok(fault) => {
                    self.push(fault);
                    super::http::json(
                        StatusCode::OK,
                        &serde_json::json!({"pending": self.pending()}),
                    )
                }
                Err(why) => super::http::text(StatusCode::BAD_REQUEST, format!("{why}\n")),
            },
            Method::DELETE => {
                self.clear();
                super::http::json(StatusCode::OK, &serde_json::json!({"pending": []}))
            }
            _ => super::http::text(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE\n"),
        }
    }
}
