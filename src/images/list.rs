//! The HEPiX image list model and its parser (pure: bytes in, values out).
//!
//! Format: `{"hv:imagelist": {list keys, "hv:endorser": {"hv:x509": {...}},
//! "hv:images": [{"hv:image": {...}}, ...]}}` (spec image-sync §1). AppDB
//! writes every scalar as a string, hepixvmitrust's example writes sizes as
//! numbers: numeric fields accept both. Dates are `%Y-%m-%dT%H:%M:%SZ`, with
//! an RFC 3339 fallback.
//!
//! A list missing a required list-level key is rejected as a whole; an image
//! missing a required key, or whose identifier is not a safe name, is dropped
//! alone and reported in [`ImageList::rejected`] (hepixvmitrust semantics).
//! Every key of `hv:image`, known or not, is kept in [`ListImage::raw`]: it
//! becomes the Glance property `APPLIANCE_ATTRIBUTES`, as atrope writes it.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use url::Url;

/// Why a list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("the list is not valid JSON: {0}")]
    Json(String),
    /// Structure is not `hv:imagelist`.
    #[error("the list has no `hv:imagelist` object")]
    NoList,
    /// A required list-level key is missing or has the wrong type.
    #[error("the list's `{key}` is {problem}")]
    Key {
        /// The key (`dc:identifier`, `hv:endorser.hv:x509.hv:dn`, ...).
        key: String,
        /// "missing", "not a string", ...
        problem: String,
    },
}

/// A validated image identifier (`dc:identifier`): safe to use as a Glance
/// property value and in logs. Letters, digits, `.`, `_`, `-`, `:`; not
/// starting with `.`; 1 to 128 characters. Its cache file name is
/// [`super::cache::entry_name`] (injective), never the identifier itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(String);

impl ImageId {
    /// Validate `s`.
    pub fn parse(s: &str) -> Option<ImageId> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        ok.then(|| ImageId(s.to_string()))
    }
    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Its cache file name ([`super::cache::entry_name`]).
    pub fn file_name(&self) -> String {
        super::cache::entry_name(&self.0)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The endorser a list claims (`hv:endorser.hv:x509`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListEndorser {
    /// `hv:dn`: the signer's subject, OpenSSL compat form.
    pub dn: String,
    /// `hv:ca`: the signer's issuer.
    pub ca: String,
    /// `dc:creator`.
    pub creator: String,
    /// `hv:email`.
    pub email: String,
}

/// A parsed image list.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageList {
    /// `dc:identifier`: the list's identity across versions.
    pub identifier: String,
    /// `dc:date:created`.
    pub created: DateTime<Utc>,
    /// `dc:date:expires`: not to be trusted after this.
    pub expires: DateTime<Utc>,
    /// `dc:title`.
    pub title: String,
    /// `dc:description`.
    pub description: String,
    /// `dc:source`.
    pub source: String,
    /// `hv:version`: must not go backwards.
    pub version: String,
    /// `hv:uri`.
    pub uri: String,
    /// `hv:endorser.hv:x509`.
    pub endorser: ListEndorser,
    /// `ad:vo`, on VO-wide lists.
    pub vo: Option<String>,
    /// The images that parsed.
    pub images: Vec<ListImage>,
    /// The images that were dropped, and why.
    pub rejected: Vec<RejectedImage>,
}

/// An image entry that was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedImage {
    /// Position in `hv:images`.
    pub index: usize,
    /// Its `dc:identifier`, when readable.
    pub identifier: Option<String>,
    /// Why.
    pub reason: String,
}

/// One image of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListImage {
    /// Position in `hv:images` (from 0).
    pub index: usize,
    /// `dc:identifier`: the sync key across versions.
    pub identifier: ImageId,
    /// `dc:title`.
    pub title: String,
    /// `dc:description`.
    pub description: String,
    /// `hv:uri`: where to download it.
    pub uri: Url,
    /// `sl:checksum:sha512`, lower-case hex.
    pub sha512: String,
    /// `hv:size`, bytes.
    pub size: u64,
    /// `hv:version`.
    pub version: String,
    /// `hv:format` as written (informative only: the real format is sniffed).
    pub format: Option<String>,
    /// `sl:arch`.
    pub arch: Option<String>,
    /// `sl:osname`.
    pub osname: Option<String>,
    /// `sl:osversion`.
    pub osversion: Option<String>,
    /// `ad:mpuri`.
    pub mpuri: Option<String>,
    /// `dc:date:expires` (none: does not expire).
    pub expires: Option<DateTime<Utc>>,
    /// `hv:ram_minimum` as written.
    pub ram_minimum: Option<u64>,
    /// The whole `hv:image` object, every key kept.
    pub raw: Map<String, Value>,
}

/// Parse a HEPiX date: `%Y-%m-%dT%H:%M:%SZ`, or RFC 3339.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(n) = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%SZ") {
        return Some(n.and_utc());
    }
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A string value, or a number written as its decimal text.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-negative whole number, from a string or a number.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn req_str(m: &Map<String, Value>, key: &str, prefix: &str) -> Result<String, ParseError> {
    match m.get(key) {
        None | Some(Value::Null) => Err(ParseError::Key {
            key: format!("{prefix}{key}"),
            problem: "missing".into(),
        }),
        Some(v) => text(v).ok_or_else(|| ParseError::Key {
            key: format!("{prefix}{key}"),
            problem: "not a string".into(),
        }),
    }
}

fn req_date(m: &Map<String, Value>, key: &str) -> Result<DateTime<Utc>, ParseError> {
    let s = req_str(m, key, "")?;
    parse_date(&s).ok_or_else(|| ParseError::Key {
        key: key.into(),
        problem: format!("not a date (`{s}`; expected YYYY-MM-DDTHH:MM:SSZ)"),
    })
}

/// Parse the (verified) content of a list.
pub fn parse(content: &[u8]) -> Result<ImageList, ParseError> {
    let v: Value = serde_json::from_slice(content).map_err(|e| ParseError::Json(e.to_string()))?;
    let list = match v.get("hv:imagelist") {
        Some(Value::Object(m)) => m.clone(),
        // The legacy un-wrapped form hepixvmitrust still reads.
        _ => match &v {
            Value::Object(m) if m.contains_key("hv:images") => m.clone(),
            _ => return Err(ParseError::NoList),
        },
    };
    let x509 = list
        .get("hv:endorser")
        .and_then(|e| e.get("hv:x509"))
        .and_then(Value::as_object)
        .ok_or_else(|| ParseError::Key {
            key: "hv:endorser.hv:x509".into(),
            problem: "missing".into(),
        })?;
    let p = "hv:endorser.hv:x509.";
    let endorser = ListEndorser {
        dn: req_str(x509, "hv:dn", p)?,
        ca: req_str(x509, "hv:ca", p)?,
        creator: req_str(x509, "dc:creator", p)?,
        email: req_str(x509, "hv:email", p)?,
    };
    let items = match list.get("hv:images") {
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ParseError::Key {
                key: "hv:images".into(),
                problem: "not a list".into(),
            })
        }
        None => {
            return Err(ParseError::Key {
                key: "hv:images".into(),
                problem: "missing".into(),
            })
        }
    };
    let mut images = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let obj = item.get("hv:image").and_then(Value::as_object);
        let identifier = obj.and_then(|o| o.get("dc:identifier")).and_then(text);
        match obj
            .ok_or_else(|| "not an `hv:image` object".to_string())
            .and_then(parse_image)
        {
            Ok(img) if !seen.insert(img.identifier.clone()) => rejected.push(RejectedImage {
                index,
                identifier,
                reason: "duplicate dc:identifier in the list".into(),
            }),
            Ok(mut img) => {
                img.index = index;
                images.push(img)
            }
            Err(reason) => rejected.push(RejectedImage {
                index,
                identifier,
                reason,
            }),
        }
    }
    Ok(ImageList {
        identifier: req_str(&list, "dc:identifier", "")?,
        created: req_date(&list, "dc:date:created")?,
        expires: req_date(&list, "dc:date:expires")?,
        title: req_str(&list, "dc:title", "")?,
        description: req_str(&list, "dc:description", "")?,
        source: req_str(&list, "dc:source", "")?,
        version: req_str(&list, "hv:version", "")?,
        uri: req_str(&list, "hv:uri", "")?,
        endorser,
        vo: list.get("ad:vo").and_then(text),
        images,
        rejected,
    })
}

fn parse_image(m: &Map<String, Value>) -> Result<ListImage, String> {
    let s = |key: &str| -> Result<String, String> {
        match m.get(key) {
            None | Some(Value::Null) => Err(format!("missing `{key}`")),
            Some(v) => text(v).ok_or_else(|| format!("`{key}` is not a string")),
        }
    };
    let o = |key: &str| m.get(key).and_then(text).filter(|v| !v.is_empty());
    let id_text = s("dc:identifier")?;
    let identifier = ImageId::parse(&id_text).ok_or_else(|| {
        format!("`dc:identifier` {id_text:?} is not a safe identifier (letters, digits, . _ - :)")
    })?;
    let uri_text = s("hv:uri")?;
    let uri = Url::parse(&uri_text).map_err(|e| {
        format!(
            "`hv:uri` {:?} is not a URL ({e})",
            crate::redact::url_text(&uri_text)
        )
    })?;
    if !matches!(uri.scheme(), "http" | "https") {
        return Err(format!(
            "`hv:uri` {:?}: the `{}` scheme is refused (only https, and http where images.allow-http allows it)",
            crate::redact::url_text(&uri_text),
            uri.scheme()
        ));
    }
    let sha512 = s("sl:checksum:sha512")?.trim().to_ascii_lowercase();
    if sha512.len() != 128 || !sha512.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("`sl:checksum:sha512` is not 128 hex digits".into());
    }
    let size = m
        .get("hv:size")
        .ok_or("missing `hv:size`")?
        .pipe(number)
        .ok_or("`hv:size` is not a whole number")?;
    let expires = match o("dc:date:expires") {
        Some(d) => {
            Some(parse_date(&d).ok_or_else(|| format!("`dc:date:expires` {d:?} is not a date"))?)
        }
        None => None,
    };
    Ok(ListImage {
        index: 0,
        identifier,
        title: s("dc:title")?,
        description: o("dc:description").unwrap_or_default(),
        uri,
        sha512,
        size,
        version: s("hv:version")?,
        format: o("hv:format"),
        arch: o("sl:arch"),
        osname: o("sl:osname"),
        osversion: o("sl:osversion"),
        mpuri: o("ad:mpuri"),
        expires,
        ram_minimum: m.get("hv:ram_minimum").and_then(number),
        raw: m.clone(),
    })
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> String {
        serde_json::json!({"hv:imagelist": {
            "dc:date:created": "2015-06-18T21:14:00Z",
            "dc:date:expires": "2499-12-31T22:00:00Z",
            "dc:description": "d", "dc:identifier": "76fdee70-8119-5d33-aaaa-3c57e1c60df1",
            "dc:source": "https://s/", "dc:title": "t", "ad:vo": "some1.vo.net",
            "hv:endorser": {"hv:x509": {"dc:creator": "c", "hv:ca": "/DC=X/CN=CA", "hv:dn": "/DC=X/CN=e", "hv:email": "e@x"}},
            "hv:images": [
                {"hv:image": {"dc:identifier": "c0482bc2-bf41-5d49-aaaa-a750174a186b", "dc:title": "Img", "dc:description": "x",
                  "hv:uri": "https://h/a.ova", "sl:checksum:sha512": "5C".repeat(64), "hv:size": "121243136",
                  "hv:version": "3.3.0-1", "hv:format": "OVA", "ad:mpuri": "https://m/", "dc:date:expires": "2499-12-31T22:00:00Z",
                  "hv:ram_minimum": "512", "x:unknown": {"k": 1}}},
                {"hv:image": {"dc:identifier": "num", "dc:title": "N", "hv:uri": "http://h/n.img",
                  "sl:checksum:sha512": "ab".repeat(64), "hv:size": 2147483648u64, "hv:version": "1"}},
                {"hv:image": {"dc:identifier": "../etc", "dc:title": "bad", "hv:uri": "http://h/x",
                  "sl:checksum:sha512": "ab".repeat(64), "hv:size": 1, "hv:version": "1"}},
                {"hv:image": {"dc:identifier": "nosum", "dc:title": "bad", "hv:uri": "http://h/x", "hv:size": 1, "hv:version": "1"}},
                {"hv:image": {"dc:identifier": "num", "dc:title": "dup", "hv:uri": "http://h/n.img",
                  "sl:checksum:sha512": "ab".repeat(64), "hv:size": 1, "hv:version": "1"}}
            ],
            "hv:uri": "https://h/image.list", "hv:version": "20150618211400"
        }})
        .to_string()
    }

    #[test]
    fn parses_strings_numbers_and_keeps_unknown_keys() {
        let l = parse(sample().as_bytes()).unwrap();
        assert_eq!(l.identifier, "76fdee70-8119-5d33-aaaa-3c57e1c60df1");
        assert_eq!(l.endorser.dn, "/DC=X/CN=e");
        assert_eq!(l.vo.as_deref(), Some("some1.vo.net"));
        assert_eq!(l.images.len(), 2);
        let a = &l.images[0];
        assert_eq!(a.size, 121_243_136);
        assert_eq!(a.sha512, "5c".repeat(64));
        assert_eq!(a.ram_minimum, Some(512));
        assert!(a.raw.contains_key("x:unknown"));
        assert_eq!(l.images[1].size, 2_147_483_648);
        assert_eq!(l.images[1].expires, None);
        let reasons: Vec<_> = l
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].1.contains("safe identifier"));
        assert!(reasons[1].1.contains("sl:checksum:sha512"));
        assert!(reasons[2].1.contains("duplicate"));
    }

    #[test]
    fn missing_list_keys_reject_the_list() {
        let mut v: Value = serde_json::from_str(&sample()).unwrap();
        v["hv:imagelist"]
            .as_object_mut()
            .unwrap()
            .remove("dc:date:expires");
        let e = parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "the list's `dc:date:expires` is missing");
        assert_eq!(parse(b"{}").unwrap_err(), ParseError::NoList);
        assert!(matches!(parse(b"nope"), Err(ParseError::Json(_))));
    }

    #[test]
    fn dates_and_ids() {
        assert_eq!(
            parse_date("2499-12-31T22:00:00Z").unwrap().to_rfc3339(),
            "2499-12-31T22:00:00+00:00"
        );
        assert!(parse_date("2024-01-01T00:00:00+02:00").is_some());
        assert!(parse_date("yesterday").is_none());
        assert!(ImageId::parse("a-b_c.d:1").is_some());
        for bad in ["", ".hidden", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(ImageId::parse(bad).is_none(), "{bad}");
        }
    }
}
