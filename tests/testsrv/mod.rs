//! Integration tests: the project's own test services (`testsrv`), run
//! in-process on 127.0.0.1:0 and driven with reqwest, plus the
//! `fedcloud-testsrv` binary's contract (READY line, SIGTERM, loopback only).
//!
//! See: issue 2, item 4.

pub mod pki;

mod ams;
mod binary;
mod fault_proxy;
mod files;
mod gocdb;
mod proxies;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A listener on a free loopback port.
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// A plain reqwest client (no proxies from the environment).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// A reqwest client trusting the test CA, optionally with a client identity.
pub fn https_client(identity: Option<&pki::Issued>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(pki::Pki::shared().root());
    if let Some(id) = identity {
        b = b.identity(id.identity());
    }
    b.build().expect("https client")
}

/// What the echo upstream saw of a request.
#[derive(Debug, serde::Deserialize)]
pub struct Echo {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names (lower case) to all their values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Body length.
    pub body_len: usize,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// A tiny upstream that answers every request with a JSON [`Echo`] of it,
/// plus the response header `x-upstream: echo`.
pub async fn echo_upstream() -> SocketAddr {
    let listener = listener().await;
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for (k, v) in &parts.headers {
                        headers
                            .entry(k.as_str().to_string())
                            .or_default()
                            .push(v.to_str().unwrap_or("?").to_string());
                    }
                    use sha2::Digest as _;
                    let echo = serde_json::json!({
                        "method": parts.method.as_str(),
                        "target": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                        "headers": headers,
                        "body_len": body.len(),
                        "body_sha256": hex::encode(sha2::Sha256::digest(&body)),
                    });
                    let resp = Response::builder()
                        .header("content-type", "application/json")
                        .header("x-upstream", "echo")
                        .body(Full::new(Bytes::from(echo.to_string())))
                        .expect("response");
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
