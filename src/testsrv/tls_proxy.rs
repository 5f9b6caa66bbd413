//! A TLS-terminating reverse proxy (OpenSSL): the HTTPS front end of a
//! service that itself speaks plain HTTP on loopback, as Keystone sits behind
//! Apache or HAProxy at a real site. Bodies are streamed; the only headers
//! added are `X-Forwarded-Proto: https` and `X-Forwarded-For` (what such a
//! front end sets so Keystone's `enable_proxy_headers_parsing` can build
//! `https://` links).
//!
//! With a client CA directory the proxy also requests (but does not require)
//! client certificates and lists those CAs in its certificate request, which
//! is what cloud-info-provider reports as an endpoint's `TrustedCA`.

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use tokio::net::TcpListener;
use url::Url;

use super::http;
use super::proxy::Upstream;
use super::tls::{self, TlsOptions};
use super::{Error, Server};

/// Options of the TLS proxy.
#[derive(Clone, Debug)]
pub struct TlsProxyOptions {
    /// Plain-HTTP upstream on loopback.
    pub upstream: Url,
    /// Certificate, key and optional client CA directory.
    pub tls: TlsOptions,
}

/// Start the TLS proxy on `listener`.
pub fn serve(listener: TcpListener, opts: TlsProxyOptions) -> Result<Server, Error> {
    let upstream = Arc::new(Upstream::new(&opts.upstream)?);
    let acceptor = tls::acceptor(&opts.tls)?;
    http::spawn("tls-proxy", listener, Some(acceptor), move |peer, req| {
        let upstream = upstream.clone();
        async move {
            let client_ip = peer.remote.ip().to_string();
            Ok(upstream
                .forward(req, move |h| {
                    h.insert(
                        HeaderName::from_static("x-forwarded-proto"),
                        HeaderValue::from_static("https"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&client_ip) {
                        h.append(HeaderName::from_static("x-forwarded-for"), v);
                    }
                })
                .await)
        }
    })
}
