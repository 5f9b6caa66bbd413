//! What every test server shares: the accept loop (plain or TLS), per-request
//! logging, body types and small response builders.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::tls::TlsPeer;
use super::{loopback_addr, Error, Server};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: a boxed stream of bytes.
pub(crate) type Body = BoxBody<Bytes, BoxError>;
pub(crate) type Resp = Response<Body>;

/// A handler's refusal to answer: the connection is closed without a response
/// (the `drop_connection` fault).
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DropConnection {}

pub(crate) type Outcome = Result<Resp, DropConnection>;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// The client's socket address.
    pub remote: SocketAddr,
    /// Set on TLS connections.
    pub tls: Option<TlsPeer>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type Handler = Arc<dyn Fn(Peer, Request<Incoming>) -> BoxFuture + Send + Sync>;

/// Start the accept loop of a server called `name` (used in log lines).
pub(crate) fn spawn<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<SslAcceptor>,
    handler: F,
) -> Result<Server, Error>
where
    F: Fn(Peer, Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let addr = loopback_addr(&listener)?;
    let handler: Handler = Arc::new(move |peer, req| Box::pin(handler(peer, req)));
    let tls = tls.map(Arc::new);
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        // Connections live in this set: when the loop ends, they are aborted.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = stopped.notified() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        conns.spawn(serve_conn(name, stream, remote, tls.clone(), handler.clone()));
                    }
                    Err(e) => {
                        eprintln!("[{name}] accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.shutdown().await;
    });
    Ok(Server { addr, stop, task })
}

async fn serve_conn(
    name: &'static str,
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<Arc<SslAcceptor>>,
    handler: Handler,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_http(name, stream, Peer { remote, tls: None }, handler).await,
        Some(acceptor) => {
            let stream = match Ssl::new(acceptor.context())
                .and_then(|ssl| tokio_openssl::SslStream::new(ssl, stream))
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("[{name}] TLS setup failed for {remote}: {e}");
                    return;
                }
            };
            let mut stream = stream;
            if let Err(e) = Pin::new(&mut stream).accept().await {
                eprintln!("[{name}] TLS handshake with {remote} failed: {e}");
                return;
            }
            let peer = Peer {
                remote,
                tls: Some(TlsPeer::of(stream.ssl())),
            };
            serve_http(name, stream, peer, handler).await
        }
    }
}

async fn serve_http<S>(name: &'static str, stream: S, peer: Peer, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        let peer = peer.clone();
        async move {
            let line = format!("[{name}] {} {}", req.method(), loggable_target(req.uri()));
            // The handler runs to completion even if the client goes away
            // meanwhile, as a Go or WSGI server's would (a publish that the
            // client timed out on is still stored).
            let outcome = match tokio::spawn(handler(peer, req)).await {
                Ok(outcome) => outcome,
                Err(e) => Ok(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("handler failed: {e}\n"),
                )),
            };
            match &outcome {
                Ok(resp) => eprintln!("{line} -> {}", resp.status().as_u16()),
                Err(_) => eprintln!("{line} -> connection dropped (fault)"),
            }
            outcome
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    // Errors here are the peer going away or an injected fault; both are
    // routine for a test server.
    let _ = conn.await;
}

/// The request target for a log line: the path, and the query with the
/// values of secret-bearing parameters masked.
pub(crate) fn loggable_target(uri: &hyper::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", masked.join("&"))
}

fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "token", "access_token", "password", "secret"]
        .iter()
        .any(|s| key.contains(s))
}

/// A complete body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// An empty body.
pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

/// A response with a body and a content type.
pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response, compact.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    response(status, "application/json", value.to_string())
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    response(status, "text/plain; charset=utf-8", body.into())
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The connection failed while reading.
    Read,
}

/// Read a whole request body, up to `limit` bytes.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Read),
    }
}

/// The value of query parameter `name` (form-decoded), if present.
pub(crate) fn query_param(uri: &hyper::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Parse a JSON control request (`POST /__test/faults` and the like); the
/// error is the message for a 400.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming) -> Result<T, String> {
    let bytes = read_body(body, 1 << 20)
        .await
        .map_err(|_| "control request too large or unreadable".to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_mask_secrets() {
        let uri: hyper::Uri = "/v1/projects/p/topics/t:publish?key=s3cret&x=1&access_token=abc"
            .parse()
            .expect("uri");
        assert_eq!(
            loggable_target(&uri),
            "/v1/projects/p/topics/t:publish?key=***&x=1&access_token=***"
        );
        let uri: hyper::Uri = "/gocdbpi/public/?method=get_service".parse().expect("uri");
        assert_eq!(loggable_target(&uri), "/gocdbpi/public/?method=get_service");
    }
}
