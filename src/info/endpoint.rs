//! The site endpoint exactly as the operator wrote it.
//!
//! cloud-info-provider builds every ID (`{endpoint}_cloud.compute`, ...),
//! its GOCDB match and catch-all's object name (`md5(endpoint)`) from the
//! site YAML's `endpoint` string verbatim; the validated configuration keeps
//! a parsed [`Url`], which normalises (`https://h:443/v3` -> `https://h/v3`,
//! `https://h:5000` -> `https://h:5000/`, upper-case host -> lower case).
//! This reads the scalar back from the file it came from (the catch-all
//! file's `endpoint`, else `site.endpoint` of `appliance.yaml`) through
//! [`crate::config::format`], and uses it only when it still parses to the
//! configured URL; otherwise the normalised form.

use std::path::Path;

use url::Url;

use crate::config::format::{self, Node, Value};
use crate::config::Loaded;

/// The scalar at `keys` of `root`, as written (after YAML unquoting).
pub fn scalar_at(root: &Node, keys: &[&str]) -> Option<String> {
    let mut node = root;
    for k in keys {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        node = &entries.iter().rev().find(|e| e.key == *k)?.value;
    }
    match &node.value {
        Value::Scalar(s) => Some(s.text.clone()),
        _ => None,
    }
}

/// `text` when it names the same URL as `parsed`, else `parsed` as text.
pub fn pick(text: Option<&str>, parsed: &Url) -> String {
    match text {
        Some(t) if Url::parse(t).ok().as_ref() == Some(parsed) => t.to_string(),
        _ => parsed.as_str().to_string(),
    }
}

fn read(file: &Path, keys: &[&str]) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let root = format::parse(&text).ok()?;
    scalar_at(&root, keys)
}

/// The endpoint of `loaded` as written in its file.
pub fn verbatim(loaded: &Loaded) -> String {
    let site = &loaded.config.site;
    let text = match &site.catch_all {
        Some(ca) => read(&ca.file, &["endpoint"]),
        None => read(&loaded.source, &["site", "endpoint"]),
    };
    let out = pick(text.as_deref(), &site.endpoint);
    if out != site.endpoint.as_str() {
        tracing::debug!(written = %out, normalised = %site.endpoint, "endpoint kept as written");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_text_wins_when_it_is_the_same_url() {
        let root = format::parse(
            "site:\n  endpoint: \"https://Keystone.example.org:443/v3\"\nendpoint: https://h:5000\n",
        )
        .unwrap();
        let t = scalar_at(&root, &["site", "endpoint"]).unwrap();
        assert_eq!(t, "https://Keystone.example.org:443/v3");
        let parsed = Url::parse(&t).unwrap();
        assert_eq!(parsed.as_str(), "https://keystone.example.org/v3");
        assert_eq!(pick(Some(&t), &parsed), t);
        let t = scalar_at(&root, &["endpoint"]).unwrap();
        let parsed = Url::parse(&t).unwrap();
        assert_eq!(parsed.as_str(), "https://h:5000/");
        assert_eq!(pick(Some(&t), &parsed), "https://h:5000");
        // a file changed since: the configured URL
        let other = Url::parse("https://other.example.org/v3").unwrap();
        assert_eq!(pick(Some(&t), &other), "https://other.example.org/v3");
        assert_eq!(pick(None, &other), "https://other.example.org/v3");
        assert_eq!(scalar_at(&root, &["site", "nope"]), None);
    }
}
