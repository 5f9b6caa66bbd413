//! The one way a URL is shown: in `config show`, logs, errors and `--json`
//! reports. A configured URL may carry a credential anywhere a server
//! reads one: in its userinfo (`https://user:pass@host/`) or in a query
//! value (`?access_code=..`, `?sig=..`, `?X-Amz-Signature=..`), under any
//! name. So the userinfo is always replaced, the fragment too, and every
//! query value is replaced unless its name is known to be harmless
//! ([`HARMLESS_QUERY_NAMES`]: the paging, filtering and lookup parameters of
//! the APIs the appliance calls). Redaction by the name of a secret missed
//! `access_code` (issue #14 item 8); an allow-list cannot miss a new name.
//!
//! [`url`] takes a parsed URL, [`url_text`] a URL as written (also one that
//! does not parse), [`text`] any message that may contain URLs (a
//! third-party error, the top-level error chain).

use std::sync::OnceLock;

use url::Url;

/// What replaces a secret part.
pub const REDACTED: &str = "<redacted>";

/// Query parameter names whose values are shown (case-insensitive): the
/// paging and filtering parameters of Keystone, Nova, Glance, Cinder,
/// Neutron and Harbor, GOCDB's lookup, a registry token request's
/// `service` and `scope`. None of them carries a credential.
pub const HARMLESS_QUERY_NAMES: &[&str] = &[
    "limit",
    "marker",
    "page",
    "page_size",
    "sort",
    "sort_key",
    "sort_dir",
    "status",
    "visibility",
    "member_status",
    "owner",
    "is_public",
    "all_tenants",
    "project_id",
    "tenant_id",
    "changes-since",
    "changes-before",
    "deleted",
    "detail",
    "name",
    "tag",
    "tags",
    "device_id",
    "fields",
    "q",
    "with_tag",
    "with_label",
    "method",
    "service_type",
    "sitename",
    "hostname",
    "scope",
    "service",
];

fn harmless(name: &str) -> bool {
    let name: String = url::form_urlencoded::parse(format!("{name}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    HARMLESS_QUERY_NAMES
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&name))
}

/// `query` (without `?`) with every value redacted but those of harmless
/// names; a part without `=` counts as a value.
fn query(query: &str) -> String {
    query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if harmless(k) => part.to_string(),
            Some((k, _)) => format!("{k}={REDACTED}"),
            None if part.is_empty() || harmless(part) => part.to_string(),
            None => REDACTED.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `u` for display: no userinfo, no fragment, query values redacted unless
/// harmless (see the module docs). Scheme, host, port and path are kept.
pub fn url(u: &Url) -> String {
    let mut out = format!("{}:", u.scheme());
    if let Some(host) = u.host_str() {
        out.push_str("//");
        if !u.username().is_empty() || u.password().is_some() {
            out.push_str(REDACTED);
            out.push('@');
        }
        out.push_str(host);
        if let Some(port) = u.port() {
            out.push_str(&format!(":{port}"));
        }
    } else if u.has_authority() {
        out.push_str("//");
    }
    out.push_str(u.path());
    if let Some(q) = u.query() {
        out.push('?');
        out.push_str(&query(q));
    }
    if u.fragment().is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// A URL as written (a configuration value, a list entry), redacted like
/// [`url`]; text that does not parse is redacted the same way as far as it
/// can be split (userinfo before the first `/` of the authority, query after
/// `?`, fragment after `#`).
pub fn url_text(s: &str) -> String {
    // (`user:pass@host/x` parses too, as scheme `user` and a path: only
    // text with an authority is taken as a URL)
    if let Some(u) = Url::parse(s).ok().filter(Url::has_authority) {
        return url(&u);
    }
    let (rest, fragment) = match s.split_once('#') {
        Some((r, _)) => (r, Some(REDACTED)),
        None => (s, None),
    };
    let (base, q) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(query(q))),
        None => (rest, None),
    };
    let (scheme, after) = match base.split_once("://") {
        Some((sch, a)) => (Some(sch), a),
        None => (None, base),
    };
    let (authority, path) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_string(),
    };
    let mut out = String::new();
    if let Some(sch) = scheme {
        out.push_str(sch);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(path);
    if let Some(q) = q {
        out.push('?');
        out.push_str(&q);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `s` with every `scheme://...` URL in it redacted like [`url_text`].
pub fn text(s: &str) -> String {
    static URLS: OnceLock<regex::Regex> = OnceLock::new();
    let re = URLS.get_or_init(|| {
        regex::Regex::new(r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>()\[\]{}`]+"#)
            .expect("static regex")
    });
    re.replace_all(s, |c: &regex::Captures<'_>| url_text(&c[0]))
        .into_owned()
}

/// `serialize_with` for a [`Url`] field: its redacted form.
pub fn serialize_url<S: serde::Serializer>(u: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&url(u))
}

/// `serialize_with` for an `Option<Url>` field.
pub fn serialize_opt_url<S: serde::Serializer>(u: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_some(&url(u)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> String {
        url(&Url::parse(s).unwrap())
    }

    #[test]
    fn userinfo_fragment_and_unknown_query_values_are_redacted() {
        assert_eq!(
            u("https://bob:hunter2@h.example:8443/list?access_code=abc&limit=2#tok"),
            "https://<redacted>@h.example:8443/list?access_code=<redacted>&limit=2#<redacted>"
        );
        assert_eq!(u("https://bob@h/x"), "https://<redacted>@h/x");
        assert_eq!(
            u("https://h/x?X-Auth-Token=abc&marker=1&Signature=s&SECRETBARE&detail"),
            "https://h/x?X-Auth-Token=<redacted>&marker=1&Signature=<redacted>&<redacted>&detail"
        );
        // keys compare decoded and without case
        assert_eq!(u("https://h/?Page%5Fsize=9"), "https://h/?Page%5Fsize=9");
        // nothing to hide: unchanged
        for s in [
            "http://127.0.0.1:5000/v3/auth/tokens",
            "https://[::1]:9292/v2/images?limit=200&marker=abc",
            "https://gocdb.example/gocdbpi/public/?method=get_service&service_type=org.openstack.nova",
            "file:///etc/passwd",
        ] {
            assert_eq!(u(s), s);
        }
    }

    #[test]
    fn urls_as_written_and_inside_text() {
        assert_eq!(
            url_text("https://user:pass@host/list?access_code=xyz"),
            "https://<redacted>@host/list?access_code=<redacted>"
        );
        // does not parse (a bad port), still redacted
        assert_eq!(
            url_text("https://user:pass@host:99999/l?access_code=xyz#f"),
            "https://<redacted>@host:99999/l?access_code=<redacted>#<redacted>"
        );
        assert_eq!(
            url_text("user:pass@host/l?k=v"),
            "<redacted>@host/l?k=<redacted>"
        );
        let msg = "error sending request for url (https://u:p@h/l?access_code=x&limit=1): timed out; see https://docs.example/x";
        assert_eq!(
            text(msg),
            "error sending request for url (https://<redacted>@h/l?access_code=<redacted>&limit=1): timed out; see https://docs.example/x"
        );
        assert_eq!(text("no url here"), "no url here");
    }
}
