//! Forwarding shared by the proxies: requests and responses are streamed
//! through unchanged except for the hop-by-hop headers (RFC 9110 §7.6.1).
//! The `Host` header is kept (like Apache's `ProxyPreserveHost On`), so an
//! upstream builds its links for the front end's address.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

use super::http::{self, Body, Resp};
use super::Error;

/// An HTTP upstream on loopback.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    /// `http://host:port`
    authority: String,
    /// Path prefix without the trailing slash ("" for none).
    prefix: String,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    /// Check `url` (plain HTTP, loopback host) and build a client for it.
    pub(crate) fn new(url: &Url) -> Result<Upstream, Error> {
        if url.scheme() != "http" {
            return Err(Error::bad(
                "--upstream",
                url.as_str(),
                "only http:// upstreams are supported",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| Error::bad("--upstream", url.as_str(), "no host"))?;
        let loopback = match host {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(d) => d == "localhost",
        };
        if !loopback {
            return Err(Error::NotLoopback {
                what: "upstream",
                addr: url.to_string(),
            });
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = match host {
            url::Host::Ipv6(ip) => format!("[{ip}]"),
            other => other.to_string(),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Upstream {
            authority: format!("http://{host}:{port}"),
            prefix: url.path().trim_end_matches('/').to_string(),
            client,
        })
    }

    /// Forward `req` (after `edit` had its say on the headers) and stream the
    /// answer back. An unreachable upstream is a 502.
    pub(crate) async fn forward(
        &self,
        req: Request<Incoming>,
        edit: impl FnOnce(&mut HeaderMap),
    ) -> Resp {
        let (mut parts, body) = req.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let uri: Uri = match format!("{}{}{}", self.authority, self.prefix, target).parse() {
            Ok(u) => u,
            Err(e) => {
                return http::text(
                    StatusCode::BAD_REQUEST,
                    format!("bad request target: {e}\n"),
                )
            }
        };
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        edit(&mut parts.headers);
        let req = Request::from_parts(parts, body.map_err(Into::into).boxed());
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                hyper::Response::from_parts(parts, body.map_err(Into::into).boxed())
            }
            Err(e) => http::text(
                StatusCode::BAD_GATEWAY,
                format!("upstream {}{}: {e}\n", self.authority, self.prefix),
            ),
        }
    }
}

/// Remove the headers that describe one connection, not the message.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}
