//! Which proxy each remote URL goes through, with the rules the HTTP
//! clients apply (reqwest's system proxy, as hyper-util's matcher and curl):
//! `HTTPS_PROXY`/`https_proxy` for https, `HTTP_PROXY`/`http_proxy` for
//! http, `ALL_PROXY`/`all_proxy` for either when the specific one is unset;
//! none at all under CGI (`REQUEST_METHOD`); `NO_PROXY`/`no_proxy` is a
//! comma list of IP addresses, CIDR networks, `*`, and domains that match
//! themselves and every subdomain (a leading `.` changes nothing).

use std::net::IpAddr;

use url::Url;

/// The proxy variables of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTP_PROXY` / `http_proxy`.
    pub http: Option<String>,
    /// `HTTPS_PROXY` / `https_proxy`.
    pub https: Option<String>,
    /// `ALL_PROXY` / `all_proxy`.
    pub all: Option<String>,
    /// `NO_PROXY` / `no_proxy`.
    pub no_proxy: Option<String>,
    /// `REQUEST_METHOD` is set (CGI: proxies are ignored).
    pub cgi: bool,
}

impl ProxyEnv {
    /// Read them with `get` (e.g. `std::env::var`).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| get(n))
                .filter(|v| !v.trim().is_empty())
        };
        ProxyEnv {
            http: first(["HTTP_PROXY", "http_proxy"]),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            all: first(["ALL_PROXY", "all_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]),
            cgi: get("REQUEST_METHOD").is_some(),
        }
    }

    /// This process's.
    pub fn from_process() -> ProxyEnv {
        Self::read(|n| std::env::var(n).ok())
    }

    /// Whether any proxy is set.
    pub fn any(&self) -> bool {
        !self.cgi && (self.http.is_some() || self.https.is_some() || self.all.is_some())
    }

    /// The proxy `url` goes through (its variable's value), or `None`.
    pub fn proxy_for(&self, url: &Url) -> Option<&str> {
        if self.cgi {
            return None;
        }
        let p = match url.scheme() {
            "https" => self.https.as_deref().or(self.all.as_deref()),
            "http" => self.http.as_deref().or(self.all.as_deref()),
            _ => None,
        }?;
        let host = url.host_str()?;
        if self
            .no_proxy
            .as_deref()
            .is_some_and(|n| no_proxy_matches(n, host))
        {
            return None;
        }
        Some(p)
    }
}

/// `addr` in `net/len`.
fn in_network(addr: IpAddr, net: IpAddr, len: u32) -> bool {
    let (a, n, bits) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if len > bits {
        return false;
    }
    let shift = bits - len;
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (n >> shift)
}

/// Whether `host` matches a `NO_PROXY` list.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            if e == "*" {
                return true;
            }
            if let Some((net, len)) = e.split_once('/') {
                if let (Ok(net), Ok(len), Some(ip)) =
                    (net.parse::<IpAddr>(), len.parse::<u32>(), ip)
                {
                    return in_network(ip, net, len);
                }
            }
            if let Ok(addr) = e.parse::<IpAddr>() {
                return ip == Some(addr);
            }
            if ip.is_some() {
                return false;
            }
            let d = e.trim_start_matches('.');
            host.eq_ignore_ascii_case(d)
                || (host.len() > d.len()
                    && host[host.len() - d.len()..].eq_ignore_ascii_case(d)
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.')
        })
}

/// A proxy URL with its credentials hidden.
pub fn shown(proxy: &str) -> String {
    match Url::parse(proxy) {
        Ok(u) => crate::redact::url(&u),
        Err(_) => "<unparsable proxy URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::read(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn which_proxy() {
        let e = env(&[
            ("HTTPS_PROXY", "http://user:pw@proxy:3128"),
            ("all_proxy", "http://all:3128"),
            ("NO_PROXY", "example.org, .local, 10.0.0.0/8, ::1"),
        ]);
        let p = |u: &str| e.proxy_for(&Url::parse(u).unwrap()).map(str::to_string);
        assert_eq!(
            p("https://keystone.site.eu:5000/v3").as_deref(),
            Some("http://user:pw@proxy:3128")
        );
        assert_eq!(
            p("http://crl.ca.org/x.crl").as_deref(),
            Some("http://all:3128")
        );
        assert_eq!(p("https://example.org/"), None);
        assert_eq!(p("https://www.example.org/"), None);
        assert!(p("https://notexample.org/").is_some());
        assert_eq!(p("https://a.local/"), None);
        assert_eq!(p("https://10.1.2.3/"), None);
        assert!(p("https://11.1.2.3/").is_some());
        assert_eq!(p("https://[::1]:5000/"), None);
        assert_eq!(
            shown("http://user:pw@proxy:3128"),
            "http://<redacted>@proxy:3128/"
        );
        assert!(!env(&[]).any());
        assert!(!env(&[("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")]).any());
        assert!(no_proxy_matches("*", "anything"));
    }
}
