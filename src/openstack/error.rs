//! Typed errors of the OpenStack client layer.
//!
//! Every error that comes from a request names the request ([`Target`]: method,
//! URL with secrets redacted, service type, project) so that a log line or a
//! health message is actionable on its own. Callers branch on the variant:
//! `Unauthorized` (credential or token rejected), `Forbidden` (policy),
//! `NotFound`, `Http` (any other non-success status), `Transport` (no HTTP
//! answer), `Timeout`, `Catalog` (the token's catalog lacks the endpoint),
//! `Scope` (the credential cannot reach that project), `Decode` (the answer is
//! not what the API documents) and `Config` (bad [`CloudAccess`] input).
//!
//! Architecture invariant: no token, password or secret is ever part of an
//! error. URLs go through [`crate::redact::url`], response bodies through
//! [`excerpt`] (which also scrubs any secret the request carried).
//!
//! [`CloudAccess`]: super::access::CloudAccess

use std::fmt;
use std::time::Duration;

use url::Url;

/// The request an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// HTTP method.
    pub method: String,
    /// URL as [`crate::redact::url`] shows it.
    pub url: String,
    /// Catalog service type (`identity` for Keystone calls).
    pub service: Option<String>,
    /// Project the token is scoped to (or is being scoped to), if any.
    pub project: Option<String>,
}

impl Target {
    /// A target for `method url`, redacting the URL.
    pub fn new(method: &str, url: &Url) -> Self {
        Target {
            method: method.to_string(),
            url: crate::redact::url(url),
            service: None,
            project: None,
        }
    }
    /// With a service type.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }
    /// With a project.
    pub fn project(mut self, project: Option<impl Into<String>>) -> Self {
        self.project = project.map(Into::into);
        self
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        match (&self.service, &self.project) {
            (Some(s), Some(p)) => write!(f, " ({s}, project {p})"),
            (Some(s), None) => write!(f, " ({s})"),
            (None, Some(p)) => write!(f, " (project {p})"),
            (None, None) => Ok(()),
        }
    }
}

/// Errors of the OpenStack client layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: the credential or token was rejected.
    #[error("{target}: 401 Unauthorized: {body}")]
    Unauthorized {
        /// The request.
        target: Target,
        /// Short excerpt of the response body.
        body: String,
    },
    /// 403: the token is valid but policy forbids the call.
    #[error("{target}: 403 Forbidden: {body}")]
    Forbidden {
        /// The request.
        target: Target,
        /// Short excerpt of the response body.
        body: String,
    },
    /// 404.
    #[error("{target}: 404 Not Found: {body}")]
    NotFound {
        /// The request.
        target: Target,
        /// Short excerpt of the response body.
        body: String,
    },
    /// Any other non-success HTTP status (after retries, for retryable ones).
    #[error("{target}: HTTP {status}: {body}")]
    Http {
        /// The request.
        target: Target,
        /// HTTP status code.
        status: u16,
        /// Short excerpt of the response body.
        body: String,
    },
    /// No HTTP answer: DNS, connection refused/reset, TLS handshake, ...
    #[error("{target}: {source}")]
    Transport {
        /// The request.
        target: Target,
        /// The cause (without its URL).
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer within the configured timeout.
    #[error("{target}: no answer within {after:?}")]
    Timeout {
        /// The request.
        target: Target,
        /// The per-request timeout.
        after: Duration,
    },
    /// The token's catalog has no usable endpoint for a service.
    #[error("no {service} endpoint (interface {interface}{}) in the catalog{}; the catalog has: {available}",
        region.as_deref().map(|r| format!(", region {r}")).unwrap_or_default(),
        project.as_deref().map(|p| format!(" of the token for project {p}")).unwrap_or_default())]
    Catalog {
        /// Requested service type.
        service: String,
        /// Requested interface.
        interface: String,
        /// Requested region.
        region: Option<String>,
        /// Project of the token.
        project: Option<String>,
        /// What the catalog offers (`type interface region` entries), or why it is empty.
        available: String,
    },
    /// The credential cannot be scoped to the requested project.
    #[error("cannot scope a {credential} credential to project {project}: {reason}")]
    Scope {
        /// Credential kind (keystoneauth plugin name).
        credential: &'static str,
        /// Requested project.
        project: String,
        /// Why.
        reason: String,
    },
    /// The answer is not what the API documents (bad JSON, missing header, ...).
    #[error("{target}: unexpected response: {reason}")]
    Decode {
        /// The request.
        target: Target,
        /// What was wrong.
        reason: String,
    },
    /// Bad configuration (`CloudAccess`): unreadable CA file, bad URL, ...
    #[error("OpenStack client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The request the error is about, if it came from one.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Error::Unauthorized { target, .. }
            | Error::Forbidden { target, .. }
            | Error::NotFound { target, .. }
            | Error::Http { target, .. }
            | Error::Transport { target, .. }
            | Error::Timeout { target, .. }
            | Error::Decode { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The error for a non-success `status` with response `body`.
    pub(crate) fn from_status(target: Target, status: u16, body: String) -> Self {
        match status {
            401 => Error::Unauthorized { target, body },
            403 => Error::Forbidden { target, body },
            404 => Error::NotFound { target, body },
            _ => Error::Http {
                target,
                status,
                body,
            },
        }
    }
}

/// The crate's URL redaction ([`crate::redact::url`]), under the name the
/// client layer has always used.
pub use crate::redact::url as redact_url;

/// Longest excerpt of a response body kept in an error: a server's message
/// is kept whole up to this many characters (the reason often comes after
/// a long quoted value, as in Glance's schema errors); a longer body (an
/// HTML page) keeps its first and last halves of this.
const EXCERPT_CHARS: usize = 4096;

/// A single-line excerpt of an error response body: the `message` of
/// an OpenStack JSON error (`{"error": {"message": ..}}`,
/// `{"itemNotFound": {"message": ..}}`, `{"NeutronError": {"message": ..}}`)
/// when there is one, else the text itself, whole up to [`EXCERPT_CHARS`];
/// control characters removed, and every string in `scrub` replaced by
/// `<redacted>`.
pub fn excerpt(body: &[u8], scrub: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_message(&v))
        .unwrap_or_else(|| text.into_owned());
    for secret in scrub.iter().filter(|s| s.len() >= 4) {
        s = s.replace(secret, "<redacted>");
    }
    let s: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let n = s.chars().count();
    if n > EXCERPT_CHARS {
        let head: String = s.chars().take(EXCERPT_CHARS / 2).collect();
        let tail: String = s.chars().skip(n - EXCERPT_CHARS / 2).collect();
        format!("{head} … {tail}")
    } else if s.is_empty() {
        "(empty body)".to_string()
    } else {
        s
    }
}

fn json_message(v: &serde_json::Value) -> Option<String> {
    let obj = v.as_object()?;
    if let Some(m) = obj.get("message").and_then(|m| m.as_str()) {
        return Some(m.to_string());
    }
    obj.values().find_map(|inner| {
        let m = inner.get("message")?.as_str()?;
        Some(m.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_prefers_openstack_messages_and_scrubs() {
        let ks = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert_eq!(
            excerpt(ks, &[]),
            "The request you have made requires authentication."
        );
        let nova = br#"{"itemNotFound": {"code": 404, "message": "Flavor x could not be found."}}"#;
        assert_eq!(excerpt(nova, &[]), "Flavor x could not be found.");
        let leaky = b"Invalid input for field 'password': 'hunter22' is bad";
        assert!(!excerpt(leaky, &["hunter22"]).contains("hunter22"));
        // A message is kept whole, its reason included after a long value.
        let glance = format!(
            "400 Bad Request\n\nProvided object does not match schema 'image': '{}' is too long\n\nFailed validating 'maxLength' in schema['properties']['name']",
            "T".repeat(300)
        );
        let e = excerpt(glance.as_bytes(), &[]);
        assert!(
            e.ends_with("Failed validating 'maxLength' in schema['properties']['name']"),
            "{e}"
        );
        let long = format!("{}END", "x".repeat(10_000));
        let e = excerpt(long.as_bytes(), &[]);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 3);
        assert!(e.ends_with("END"));
        assert_eq!(excerpt(b"", &[]), "(empty body)");
        assert_eq!(
            excerpt(b"<html>\n <b>Bad\tGateway</b>\n</html>", &[]),
            "<html> <b>Bad Gateway</b> </html>"
        );
    }

    #[test]
    fn display_names_the_request() {
        let t = Target::new(
            "GET",
            &Url::parse("http://n:8774/v2.1/servers/detail").unwrap(),
        )
        .service("compute")
        .project(Some("p1"));
        let e = Error::from_status(t, 503, "down".into());
        assert_eq!(
            e.to_string(),
            "GET http://n:8774/v2.1/servers/detail (compute, project p1): HTTP 503: down"
        );
        assert_eq!(e.status(), Some(503));
    }
}
