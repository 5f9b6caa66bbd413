//! Which URL schemes may be followed when a URL comes from outside (a
//! configuration file, a signed list, a registry's answer, a redirect):
//! `https`, and plain `http` only where the caller allows it. Every other
//! scheme (`file`, `ftp`, `data`, ...) is refused with an error naming the
//! URL (redacted), the place and the scheme, so that no list, registry or
//! redirect can make the appliance read its own disk or talk another
//! protocol.
//!
//! [`check`] is the test for one URL; [`redirect_policy`] applies it to
//! every hop of a `reqwest` client's redirects (an `https` answer that
//! redirects to `http` is refused unless `http` is allowed). Used by the
//! image flow (lists, images, registries) and for CRL downloads.

use url::Url;

/// Whether plain `http` is accepted besides `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// Only `https`.
    Refused,
    /// `https` and `http`.
    Allowed,
}

impl Http {
    /// [`Http::Allowed`] when `allowed`.
    pub fn allowed_if(allowed: bool) -> Http {
        if allowed {
            Http::Allowed
        } else {
            Http::Refused
        }
    }
}

/// A URL whose scheme is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {what} must be {}; the `{scheme}` scheme is refused", if *.http_allowed { "an https or http URL" } else { "an https URL" })]
pub struct SchemeRefused {
    /// The URL, userinfo and secret query values redacted.
    pub url: String,
    /// What the URL is for (`the image list`, `a redirect of ...`).
    pub what: String,
    /// Its scheme.
    pub scheme: String,
    /// Whether `http` was allowed.
    pub http_allowed: bool,
}

/// Accept `url` for `what` when its scheme is `https`, or `http` and
/// `http` is [`Http::Allowed`].
pub fn check(url: &Url, what: &str, http: Http) -> Result<(), SchemeRefused> {
    match (url.scheme(), http) {
        ("https", _) | ("http", Http::Allowed) => Ok(()),
        (scheme, _) => Err(SchemeRefused {
            url: crate::redact::url(url),
            what: what.to_string(),
            scheme: scheme.to_string(),
            http_allowed: http == Http::Allowed,
        }),
    }
}

/// Most redirect hops followed.
pub const MAX_REDIRECTS: usize = 10;

/// A redirect policy following at most [`MAX_REDIRECTS`] hops, each to a
/// URL [`check`] accepts; a refused hop fails the request with
/// [`SchemeRefused`] as the error's source. (`reqwest` drops the
/// `Authorization` header when a redirect leaves the host.)
pub fn redirect_policy(http: Http) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check(attempt.url(), "a redirect target", http) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// The text of a `reqwest` error and its causes, without its URL (the
/// caller names the redacted URL): `error following redirect: <why>`.
pub fn error_text(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    if let Some(u) = e.url() {
        out = out.replace(&format!(" for url ({u})"), "");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_and_allowed_http() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(check(&u("https://h/x"), "the list", Http::Refused).is_ok());
        assert!(check(&u("http://h/x"), "the list", Http::Allowed).is_ok());
        let e = check(&u("http://h/x"), "the list", Http::Refused).unwrap_err();
        assert_eq!(
            e.to_string(),
            "http://h/x: the list must be an https URL; the `http` scheme is refused"
        );
        for bad in ["file:///etc/shadow", "ftp://h/x", "data:,x", "gopher://h/"] {
            let e = check(&u(bad), "an image", Http::Allowed).unwrap_err();
            assert!(
                e.to_string().contains("must be an https or http URL"),
                "{e}"
            );
        }
        let e = check(&u("ftp://bob:pw@h/x"), "x", Http::Allowed).unwrap_err();
        assert!(!e.url.contains("pw") && !e.url.contains("bob"), "{e}");
    }
}
