//! Host name resolution for connections the appliance opens itself (outside
//! reqwest, which resolves on its own with the same choice).
//!
//! The static release binary is built with the `hickory-dns` feature: names
//! are resolved by hickory, which reads `/etc/hosts` and `/etc/resolv.conf`
//! itself, because a statically linked glibc cannot load the NSS modules
//! that `/etc/nsswitch.conf` may name. Other builds use the system resolver
//! (tokio's `lookup_host`, i.e. glibc `getaddrinfo`).

use std::io;
use std::net::SocketAddr;

/// Open a TCP connection to `host:port` (a name or an IP literal), trying
/// each address in turn.
pub async fn connect(host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in resolve(host, port).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"))))
}

/// The addresses of `host` (a name or an IP literal) with `port`.
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    lookup(host, port).await
}

#[cfg(feature = "hickory-dns")]
async fn lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    use hickory_resolver::config::LookupIpStrategy;
    use std::sync::OnceLock;
    static RESOLVER: OnceLock<Result<hickory_resolver::TokioResolver, String>> = OnceLock::new();
    let resolver = RESOLVER
        .get_or_init(|| {
            let mut b = hickory_resolver::TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the DNS configuration: {e}"))?;
            b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            Ok(b.build())
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))?;
    let found = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("{host}: {e}")))?;
    Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

#[cfg(not(feature = "hickory-dns"))]
async fn lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_localhost_resolve() {
        assert_eq!(
            resolve("127.0.0.1", 5).await.unwrap(),
            vec!["127.0.0.1:5".parse().unwrap()]
        );
        assert_eq!(
            resolve("::1", 5).await.unwrap(),
            vec!["[::1]:5".parse().unwrap()]
        );
        let local = resolve("localhost", 7).await.unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 7));
        assert!(!local.is_empty());
    }
}
