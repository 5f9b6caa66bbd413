//! A plain-HTTP reverse proxy that misbehaves on request: put it between a
//! client and a (test) service to see how the client copes with errors,
//! slowness and cut connections.
//!
//! Control API: `POST /__fault` with a [`Fault`] as JSON appends a rule
//! (e.g. `{"status":503,"count":2,"path_prefix":"/v3"}`,
//! `{"delay_ms":5000,"count":1}`, `{"drop_connection":true,"count":1}`,
//! `{"truncate_after":1024}`, `{"stall_after":1048576,"stall_ms":5000}`,
//! `{"date_offset_seconds":600,"count":100}` for a server whose clock is 10
//! minutes ahead), `DELETE /__fault` clears the rules, `GET /__fault` lists
//! them, `GET /__fault/stats` counts requests
//! (`seen`, `faulted`, `forwarded`). Everything else is forwarded.
//!
//! In-process: [`spawn`] gives the address and a [`FaultControl`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use url::Url;

pub use super::faults::{Fault, FaultControl, FaultStats};
use super::http;
use super::proxy::Upstream;
use super::{Error, Server};

/// Start the fault proxy on `listener`, forwarding to `upstream` (plain
/// HTTP on loopback).
pub fn serve(listener: TcpListener, upstream: &Url) -> Result<(Server, FaultControl), Error> {
    let upstream = Arc::new(Upstream::new(upstream)?);
    let faults = FaultControl::default();
    let control = faults.clone();
    let forwarded = Arc::new(AtomicU64::new(0));
    let server = http::spawn("fault-proxy", listener, None, move |_peer, req| {
        let upstream = upstream.clone();
        let faults = faults.clone();
        let forwarded = forwarded.clone();
        async move {
            let path = req.uri().path().to_string();
            if path == "/__fault" {
                return Ok(faults.handle_control(req).await);
            }
            if path == "/__fault/stats" {
                return Ok(if req.method() == Method::GET {
                    let stats = faults.stats();
                    http::json(
                        StatusCode::OK,
                        &json!({
                            "seen": stats.seen,
                            "faulted": stats.faulted,
                            "forwarded": forwarded.load(Ordering::Relaxed),
                        }),
                    )
                } else {
                    http::text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n")
                });
            }
            let fault = faults.take(&path, true);
            if let Some(out) = match &fault {
                Some(f) => f.preempt(super::faults::injected_text).await,
                None => None,
            } {
                return out;
            }
            forwarded.fetch_add(1, Ordering::Relaxed);
            let resp = upstream.forward(req, |_| {}).await;
            Ok(match fault.filter(|f| f.shapes_response()) {
                Some(fault) => fault.shape_response(resp),
                None => resp,
            })
        }
    })?;
    Ok((server, control))
}

/// Start a fault proxy for `upstream` on a free loopback port, on the
/// current Tokio runtime or, outside one, on the shared background runtime
/// ([`super::runtime`]). It runs until that runtime ends.
///
/// # Panics
///
/// If no loopback port can be bound or `upstream` is not plain HTTP on
/// loopback; this is a test helper.
pub fn spawn(upstream: Url) -> (SocketAddr, FaultControl) {
    let handle = super::runtime();
    let _guard = handle.enter();
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("binding 127.0.0.1:0: {e}"));
    std_listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("setting the listener non-blocking: {e}"));
    let listener = TcpListener::from_std(std_listener)
        .unwrap_or_else(|e| panic!("registering the listener: {e}"));
    let (server, control) =
        serve(listener, &upstream).unwrap_or_else(|e| panic!("starting the fault proxy: {e}"));
    (server.addr(), control)
}
