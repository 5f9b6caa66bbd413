//! The endpoint's GOCDB entry (`Service.OtherInfo` `gocdb_id`/`site_name`):
//! the lookup cloud-info-provider does (`providers/utils.py`
//! `find_in_gocdb`), made tolerant.
//!
//! [`find`] is pure: it matches the Keystone URL against the
//! `get_service&service_type=org.openstack.nova` XML (same scheme and
//! `host:port`, paths equal up to leading/trailing `/`, against each
//! service's `URL` and every `ENDPOINTS/ENDPOINT/URL`). [`lookup`] is the
//! adapter: it asks GOCDB (configurable base URL), remembers the answer in
//! the state directory, and when GOCDB is down or has no match falls back
//! to the last known answer, then to `site.endpoint-id` from the
//! configuration. Where cloud-info-provider crashes (GOCDB unreachable)
//! this only warns.

use std::path::{Path, PathBuf};

use url::Url;

use super::facts::GocdbEntry;
use crate::openstack::OpenStack;

/// GOCDB's public programmatic interface.
pub const DEFAULT_URL: &str = "https://goc.egi.eu/gocdbpi/public/";

/// The service type of a cloud site's Keystone endpoint.
pub const SERVICE_TYPE: &str = "org.openstack.nova";

/// Why the XML gave no entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FindError {
    /// Not XML.
    #[error("GOCDB's answer is not XML: {0}")]
    Xml(String),
    /// XML without a matching service.
    #[error("no {SERVICE_TYPE} service in GOCDB has the URL {0}")]
    NoMatch(String),
}

fn split(u: &str) -> (String, String, String) {
    // urlparse()[0:3]: scheme, netloc, path, compared as text.
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let netloc = &rest[..end];
    let path = rest[end..].split(['?', '#']).next().unwrap_or("");
    (
        scheme.to_ascii_lowercase(),
        netloc.to_string(),
        path.trim_matches('/').to_string(),
    )
}

/// Whether two URLs name the same endpoint (`_are_url_similar`).
pub fn similar(a: &str, b: &str) -> bool {
    split(a.trim()) == split(b.trim())
}

/// The entry of `endpoint` in a `get_service` answer.
pub fn find(xml: &str, endpoint: &str) -> Result<GocdbEntry, FindError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| FindError::Xml(e.to_string()))?;
    let text = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    for svc in doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("SERVICE_ENDPOINT"))
    {
        let mut urls: Vec<String> = text(svc, "URL").into_iter().collect();
        if let Some(eps) = svc.children().find(|c| c.has_tag_name("ENDPOINTS")) {
            for ep in eps.children().filter(|c| c.is_element()) {
                urls.extend(text(ep, "URL"));
            }
        }
        if urls.iter().any(|u| similar(endpoint, u)) {
            let (Some(pk), Some(site)) = (svc.attribute("PRIMARY_KEY"), text(svc, "SITENAME"))
            else {
                continue;
            };
            return Ok(GocdbEntry {
                gocdb_id: pk.to_string(),
                site_name: site,
            });
        }
    }
    Err(FindError::NoMatch(endpoint.to_string()))
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// GOCDB answered now.
    Gocdb,
    /// The last answer GOCDB gave (it is down or lost the entry now).
    Cache,
    /// `site.endpoint-id` from the configuration.
    Config,
    /// Nothing: `Service.OtherInfo` is left out.
    None,
}

/// The outcome of [`lookup`].
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The entry, if any.
    pub entry: Option<GocdbEntry>,
    /// Where it came from.
    pub source: Source,
    /// Why GOCDB itself did not give it, when it did not.
    pub problem: Option<String>,
}

/// The cache file under the state directory.
pub fn cache_file(state: &Path) -> PathBuf {
    state.join("info").join("gocdb.json")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    endpoint: String,
    entry: GocdbEntry,
}

/// Ask GOCDB at `base` for `endpoint`; fall back to the cache in `state`,
/// then to `configured` (`site.endpoint-id` with the site name).
pub async fn lookup(
    os: &OpenStack,
    base: &Url,
    endpoint: &str,
    state: &Path,
    configured: Option<GocdbEntry>,
) -> Lookup {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("method", "get_service")
        .append_pair("service_type", SERVICE_TYPE);
    let asked = match os.get_plain(&url, "gocdb").await {
        Ok(body) => find(&String::from_utf8_lossy(&body), endpoint).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let file = cache_file(state);
    let problem = match asked {
        Ok(entry) => {
            let c = Cached {
                endpoint: endpoint.to_string(),
                entry: entry.clone(),
            };
            let bytes = serde_json::to_vec(&c).expect("JSON");
            if let Err(e) = crate::state::write_atomic(&file, &bytes, 0o644) {
                tracing::warn!(file = %file.display(), error = %e, "cannot cache the GOCDB entry");
            }
            return Lookup {
                entry: Some(entry),
                source: Source::Gocdb,
                problem: None,
            };
        }
        Err(p) => p,
    };
    let cached = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .filter(|c| c.endpoint == endpoint);
    if let Some(c) = cached {
        return Lookup {
            entry: Some(c.entry),
            source: Source::Cache,
            problem: Some(problem),
        };
    }
    match configured {
        Some(entry) => Lookup {
            entry: Some(entry),
            source: Source::Config,
            problem: Some(problem),
        },
        None => Lookup {
            entry: None,
            source: Source::None,
            problem: Some(problem),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<results>
  <SERVICE_ENDPOINT PRIMARY_KEY="1G0">
    <PRIMARY_KEY>1G0</PRIMARY_KEY>
    <HOSTNAME>other.example.org</HOSTNAME>
    <SITENAME>OTHER</SITENAME>
    <URL>https://other.example.org:5000/v3</URL>
    <ENDPOINTS/>
  </SERVICE_ENDPOINT>
  <SERVICE_ENDPOINT PRIMARY_KEY="12249G0">
    <PRIMARY_KEY>12249G0</PRIMARY_KEY>
    <HOSTNAME>cloud.example.org</HOSTNAME>
    <SITENAME>EX &amp; AMPLE</SITENAME>
    <URL>https://cloud.example.org:5000/</URL>
    <ENDPOINTS>
      <ENDPOINT><ID>7</ID><NAME>ks</NAME><URL>https://cloud.example.org:5000/v3/</URL></ENDPOINT>
    </ENDPOINTS>
  </SERVICE_ENDPOINT>
</results>"#;

    #[test]
    fn matches_service_and_endpoint_urls() {
        let e = find(XML, "https://cloud.example.org:5000/v3").unwrap();
        assert_eq!(e.gocdb_id, "12249G0");
        assert_eq!(e.site_name, "EX & AMPLE");
        assert_eq!(
            find(XML, "https://other.example.org:5000/v3/")
                .unwrap()
                .gocdb_id,
            "1G0"
        );
        // port and scheme must match
        assert!(matches!(
            find(XML, "https://cloud.example.org/v3"),
            Err(FindError::NoMatch(_))
        ));
        assert!(matches!(find("<html", "x"), Err(FindError::Xml(_))));
    }
}
