//! A tiny in-test HTTP(S) server in front of a real service (Keystone): it
//! forwards every request, after serving any queued faults (canned
//! statuses), optionally hangs, optionally plays an OIDC federation endpoint,
//! and counts what it saw. Plain TCP or TLS (openssl).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openssl::ssl::SslAcceptor;
use tokio::net::TcpListener;

/// A canned answer served instead of forwarding.
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Hang this long before answering.
    pub delay: Duration,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_string()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// Plays `POST .../OS-FEDERATION/identity_providers/{idp}/protocols/{p}/auth`:
/// accepts the bearer tokens in `accepted`, records each bearer seen, and
/// answers with a real unscoped Keystone token of `user`/`password` (domain
/// `default`), fetched from the upstream.
#[derive(Clone)]
pub struct Federation {
    pub accepted: Vec<String>,
    pub user: String,
    pub password: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct State {
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicUsize,
    paths: Mutex<Vec<String>>,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Start in front of `upstream` (e.g. `http://127.0.0.1:5000`), over TLS
    /// when `tls` is given.
    pub async fn start(
        upstream: &str,
        tls: Option<SslAcceptor>,
        federation: Option<Federation>,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let upstream = upstream.trim_end_matches('/').to_string();
        let tls = tls.map(Arc::new);
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (st, client, upstream, federation, tls) = (
                    st.clone(),
                    client.clone(),
                    upstream.clone(),
                    federation.clone(),
                    tls.clone(),
                );
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(
                            st.clone(),
                            client.clone(),
                            upstream.clone(),
                            federation.clone(),
                            req,
                        )
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(acceptor) => {
                            let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                            let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                            if std::pin::Pin::new(&mut stream).accept().await.is_ok() {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Proxy { addr, state, task }
    }

    /// Plain-HTTP proxy in front of `upstream`.
    pub async fn http(upstream: &str) -> Proxy {
        Self::start(upstream, None, None).await
    }

    /// Serve these faults, in order, before forwarding again.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.lock().unwrap().extend(faults);
    }

    /// Requests seen so far (faulted or forwarded).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// `METHOD path` of every request seen.
    pub fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }

    /// `scheme://127.0.0.1:port` + `path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }
}

type Body = Full<Bytes>;

fn respond(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(body.into())).unwrap()
}

async fn handle(
    st: Arc<State>,
    client: reqwest::Client,
    upstream: String,
    federation: Option<Federation>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    st.paths
        .lock()
        .unwrap()
        .push(format!("{} {}", req.method(), path_q));
    let fault = st.faults.lock().unwrap().pop_front();
    if let Some(f) = fault {
        tokio::time::sleep(f.delay).await;
        let body = format!(
            "{{\"error\": {{\"code\": {0}, \"message\": \"injected {0}\"}}}}",
            f.status
        );
        return Ok(respond(f.status, &f.headers, body));
    }
    if let Some(fed) = federation.filter(|_| req.uri().path().contains("/OS-FEDERATION/")) {
        return Ok(federate(&client, &upstream, &fed, &req).await);
    }
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut fwd = client
        .request(method, format!("{upstream}{path_q}"))
        .body(body);
    for (k, v) in headers.iter() {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            fwd = fwd.header(k, v);
        }
    }
    let resp = match fwd.send().await {
        Ok(r) => r,
        Err(e) => return Ok(respond(502, &[], format!("proxy: {e}"))),
    };
    let status = resp.status().as_u16();
    let headers: Vec<(&str, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            )
        })
        .filter_map(|(k, v)| Some((leak(k.as_str()), v.to_str().ok()?.to_string())))
        .collect();
    let body = resp.bytes().await.unwrap_or_default();
    Ok(respond(status, &headers, body))
}

fn leak(s: &str) -> &'static str {
    // Header names of a handful of test responses: leaking is fine.
    Box::leak(s.to_string().into_boxed_str())
}

async fn federate(
    client: &reqwest::Client,
    upstream: &str,
    fed: &Federation,
    req: &Request<Incoming>,
) -> Response<Body> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    fed.seen.lock().unwrap().push(bearer.clone());
    if req.method() != hyper::Method::POST || !fed.accepted.contains(&bearer) {
        return respond(
            401,
            &[],
            r#"{"error": {"code": 401, "message": "bad bearer"}}"#,
        );
    }
    let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": fed.user, "domain": {"id": "default"}, "password": fed.password}}}}});
    let resp = client
        .post(format!("{upstream}/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.bytes().await.unwrap();
    respond(
        status,
        &[
            ("X-Subject-Token", token),
            ("Content-Type", "application/json".into()),
        ],
        body,
    )
}
