//! The project's own test services: stand-ins for the remote services the
//! appliance talks to, which cannot run on a test machine. They back the
//! integration tests (in-process, on `127.0.0.1:0`) and the local reference
//! site (through the `fedcloud-testsrv` binary).
//!
//! | module | stands in for |
//! | --- | --- |
//! | [`ams`] | ARGO Messaging Service: X.509 → token (`authx509`) and topic publish, over HTTPS |
//! | [`gocdb`] | GOCDB public PI: `get_service` / `get_service_endpoint` XML |
//! | [`files`] | an image-list / image web server: ranges, validators, Basic auth |
//! | [`harbor`] | Harbor's v2.0 API (projects, repositories, artifacts) in front of a real OCI registry |
//! | [`registry_token`] | Harbor core's registry token issuer (JWT RS256 with `x5c`, distribution token auth) |
//! | [`oci_push`] | a publisher pushing VM images to an OCI registry (EGI's artifact layout) |
//! | [`oidc`] | Apache + mod_auth_openidc in front of Keystone's federation endpoint |
//! | [`tls_proxy`] | a TLS-terminating front end (Apache, HAProxy) |
//! | [`fault_proxy`] | a misbehaving network: errors, delays, cut connections |
//! | [`nova_sim`] | Keystone + Nova (+ Glance, Cinder, Neutron listings) with 10 000s of servers, for accounting |
//!
//! Every server takes an already bound [`tokio::net::TcpListener`] and its
//! options, starts serving on the current Tokio runtime and returns a
//! [`Server`] handle. The servers share one fault-injection model
//! ([`faults::Fault`]) and log one line per request to stderr.
//!
//! Architecture Invariant: these servers only ever listen on loopback
//! addresses and only forward to loopback upstreams; `serve` functions refuse
//! anything else ([`Error::NotLoopback`]).

use std::net::SocketAddr;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub mod ams;
pub mod fault_proxy;
pub mod faults;
pub mod files;
pub mod gocdb;
pub mod harbor;
mod http;
pub mod nova_sim;
pub mod oci_push;
pub mod oidc;
mod proxy;
pub mod registry_token;
pub mod tls;
pub mod tls_proxy;

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen or upstream address is not a loopback address.
    #[error("{what} {addr} is not a loopback address (test servers stay on this machine)")]
    NotLoopback {
        /// Which address: "listen address" or "upstream".
        what: &'static str,
        /// The offending address.
        addr: String,
    },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the object.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup ({context}): {source}")]
    Tls {
        /// What was being loaded, naming the file.
        context: String,
        /// The OpenSSL error stack.
        source: openssl::error::ErrorStack,
    },
    /// An option value is invalid.
    #[error("invalid {option} {value:?}: {reason}")]
    BadOption {
        /// The option (CLI flag name or field).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    pub(crate) fn bad(
        option: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::BadOption {
            option,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// A running test server. Dropping the handle leaves the server running
/// until its runtime shuts down (the end of a `#[tokio::test]`); call
/// [`Server::shutdown`] to stop it earlier.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (or `https://` for TLS servers, by the caller's choice).
    pub fn url(&self, scheme: &str) -> url::Url {
        url::Url::parse(&format!("{scheme}://{}/", self.addr)).expect("socket address forms a URL")
    }

    /// Stop accepting, drop every open connection and wait until the accept
    /// loop has ended.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }

    /// Wait until the server stops (it only stops through [`Server::shutdown`]
    /// or the end of its runtime).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The runtime to start servers on from code that may not run inside one:
/// the current Tokio runtime if there is one, else a shared background
/// runtime (one worker thread) that lives as long as the process. Enter it
/// (`let _g = testsrv::runtime().enter();`) before calling a `serve`
/// function from synchronous code, e.g. a test that runs the `appliance`
/// binary.
pub fn runtime() -> tokio::runtime::Handle {
    static BACKGROUND: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return handle;
    }
    BACKGROUND
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("fedcloud-testsrv")
                .enable_all()
                .build()
                .expect("starting the background runtime of the test servers")
        })
        .handle()
        .clone()
}

/// Bind a listener on a loopback address (`127.0.0.1:0` picks a free port).
pub async fn bind_loopback(addr: SocketAddr) -> Result<TcpListener, Error> {
    check_loopback("listen address", addr)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("binding {addr}"), e))
}

/// Refuse a non-loopback address.
pub fn check_loopback(what: &'static str, addr: SocketAddr) -> Result<(), Error> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::NotLoopback {
            what,
            addr: addr.to_string(),
        })
    }
}

/// The listener's address, refusing a listener that is not on loopback.
fn loopback_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    check_loopback("listen address", addr)?;
    Ok(addr)
}
