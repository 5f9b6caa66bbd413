//! Strict, error-collecting decoding of a document tree into typed structs.
//!
//! serde stops at the first problem; an operator fixing a file wants all of
//! them. So each raw struct decodes itself through a [`MapReader`], which
//! hands out keys one by one, records every key path with its position (the
//! index that later semantic checks use to place their errors), and at the
//! end reports every key nobody asked for, with a "did you mean" when one
//! of the known keys is close. A value of the wrong type is reported at the
//! value and decodes to `None`; the path is remembered as failed, so a later
//! "missing required key" check does not report it a second time.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use url::Url;

use super::error::ConfigError;
use super::format::{Entry, Mark, Node, ScalarKind, Value};

/// Secret key names that must never be written in `appliance.yaml`.
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "application-credential-secret",
    "access-token",
    "token",
    "secret",
];

/// Problems and positions for one file.
#[derive(Debug)]
pub struct Diag {
    /// The file, as named to the operator.
    pub file: PathBuf,
    keys: HashMap<String, Mark>,
    failed: HashSet<String>,
    /// Errors found so far.
    pub errors: Vec<ConfigError>,
    /// Warnings found so far.
    pub warnings: Vec<ConfigError>,
    /// When set, inline secret keys are errors naming this secrets file.
    pub secrets_file: Option<PathBuf>,
}

/// Join a key onto a path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Join a list index onto a path.
pub fn item(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl Diag {
    /// Start collecting for `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Diag {
            file: file.into(),
            keys: HashMap::new(),
            failed: HashSet::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            secrets_file: None,
        }
    }

    /// Remember where `path` is.
    pub fn record(&mut self, path: &str, mark: Mark) {
        self.keys.entry(path.to_string()).or_insert(mark);
    }

    /// Where `path` is, or its nearest recorded ancestor.
    pub fn mark(&self, path: &str) -> Option<Mark> {
        let mut p = path;
        loop {
            if let Some(m) = self.keys.get(p) {
                return Some(*m);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                // The document itself, when recorded.
                None if !p.is_empty() => p = "",
                None => return None,
            }
        }
    }

    /// Whether `path` was present in the file (possibly with an empty value).
    pub fn present(&self, path: &str) -> bool {
        self.keys.contains_key(path)
    }

    /// Whether `path` already has a type error.
    pub fn failed(&self, path: &str) -> bool {
        self.failed.contains(path)
    }

    /// Mark `path` as having an error already.
    pub fn fail(&mut self, path: &str) {
        self.failed.insert(path.to_string());
    }

    /// An error at `path` (positioned at the key, or its nearest ancestor).
    pub fn at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file.clone(), self.mark(path), path, message)
    }

    /// Report an error.
    pub fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    /// Report an error at `path`.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        let e = self.at(path, message);
        self.errors.push(e);
    }

    /// Report an error at `path` with a remedy.
    pub fn error_hint(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        let e = self.at(path, message).hint(hint);
        self.errors.push(e);
    }

    /// Report a warning at `path` with an optional remedy.
    pub fn warn(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let mut e = self.at(path, message);
        e.hint = hint;
        self.warnings.push(e);
    }

    /// An error at an explicit position (the value rather than its key).
    pub fn error_at(
        &mut self,
        mark: Mark,
        path: &str,
        message: impl Into<String>,
    ) -> &mut ConfigError {
        self.failed.insert(path.to_string());
        self.errors.push(ConfigError::at(
            self.file.clone(),
            Some(mark),
            path,
            message,
        ));
        self.errors.last_mut().expect("just pushed")
    }

    /// `value`, or a "missing required key" error at `path` (unless that
    /// key already had an error).
    pub fn require<T>(&mut self, value: Option<T>, path: &str) -> Option<T> {
        if value.is_none() {
            self.missing(path);
        }
        value
    }

    /// Report that `path` is required and absent (or empty).
    pub fn missing(&mut self, path: &str) {
        if self.failed(path) {
            return;
        }
        let key = path.rsplit('.').next().unwrap_or(path);
        if self.present(path) {
            self.error(path, format!("`{key}` needs a value"));
        } else {
            self.error(path, format!("missing required key `{key}`"));
        }
        self.fail(path);
    }

    /// Sort errors and warnings by position (stable), for readable output.
    pub fn sort(&mut self) {
        let key = |e: &ConfigError| (e.line.unwrap_or(0), e.column.unwrap_or(0));
        self.errors.sort_by_key(key);
        self.warnings.sort_by_key(key);
    }

    /// Move this file's problems into `into`.
    pub fn drain_into(&mut self, errors: &mut Vec<ConfigError>, warnings: &mut Vec<ConfigError>) {
        self.sort();
        errors.append(&mut self.errors);
        warnings.append(&mut self.warnings);
    }
}

/// A value that can be decoded from a document node.
pub trait Decode: Sized {
    /// Decode `node` found at `path`; report problems to `d`. `None` means
    /// a problem was reported.
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self>;
}

fn wrong_type(node: &Node, path: &str, d: &mut Diag, expected: &str) {
    let e = d.error_at(
        node.mark,
        path,
        format!("expected {expected}, found {}", node.describe()),
    );
    if matches!(&node.value, Value::Scalar(s) if matches!(s.kind(), ScalarKind::Bool(_))) {
        e.hint = Some("put the value in quotes to make it a string".into());
    }
}

/// A string, from any non-null scalar except a boolean (numbers keep their
/// text as written, so `gocdb: 0012` stays `0012`).
impl Decode for String {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        match &node.value {
            Value::Scalar(s) => match s.kind() {
                ScalarKind::Str | ScalarKind::Int(_) | ScalarKind::Float(_) => Some(s.text.clone()),
                ScalarKind::Null | ScalarKind::Bool(_) => {
                    wrong_type(node, path, d, "a string");
                    None
                }
            },
            _ => {
                wrong_type(node, path, d, "a string");
                None
            }
        }
    }
}

impl Decode for bool {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        match &node.value {
            Value::Scalar(s) => match s.kind() {
                ScalarKind::Bool(b) => Some(b),
                _ => {
                    wrong_type(node, path, d, "`true` or `false`");
                    None
                }
            },
            _ => {
                wrong_type(node, path, d, "`true` or `false`");
                None
            }
        }
    }
}

fn decode_uint(node: &Node, path: &str, d: &mut Diag, max: u64) -> Option<u64> {
    if let Value::Scalar(s) = &node.value {
        if let ScalarKind::Int(i) = s.kind() {
            if let Ok(u) = u64::try_from(i) {
                if u <= max {
                    return Some(u);
                }
            }
            d.error_at(node.mark, path, format!("{i} is out of range (0 to {max})"));
            return None;
        }
    }
    wrong_type(node, path, d, "a whole number");
    None
}

impl Decode for u32 {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_uint(node, path, d, u64::from(u32::MAX)).and_then(|u| u32::try_from(u).ok())
    }
}

impl Decode for u64 {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_uint(node, path, d, i64::MAX as u64)
    }
}

impl Decode for PathBuf {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        String::decode(node, path, d).map(PathBuf::from)
    }
}

/// An `http(s)://` URL.
impl Decode for Url {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let text = String::decode(node, path, d)?;
        // Shown redacted: a credential in a rejected URL stays out of the report.
        let shown = crate::redact::url_text(&text);
        let problem = if !text.contains("://") {
            format!("`{shown}` is not a full URL (no `https://`)")
        } else {
            match Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
                    return Some(u)
                }
                Ok(u) => format!("`{shown}` is not an http(s) URL (scheme `{}`)", u.scheme()),
                Err(err) => format!("`{shown}` is not a valid URL: {err}"),
            }
        };
        let e = d.error_at(node.mark, path, problem);
        e.hint = Some("write the full URL, e.g. `https://keystone.example.org:5000/v3`".into());
        None
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let Value::Seq(items) = &node.value else {
            wrong_type(node, path, d, "a list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, n) in items.iter().enumerate() {
            let p = item(path, i);
            d.record(&p, n.mark);
            if n.is_null() {
                d.error_at(n.mark, &p, "empty list item");
                continue;
            }
            if let Some(v) = T::decode(n, &p, d) {
                out.push(v);
            }
        }
        Some(out)
    }
}

/// Decode a scalar that must be one of `choices` (name, value).
pub fn decode_enum<T: Copy>(
    node: &Node,
    path: &str,
    d: &mut Diag,
    choices: &[(&str, T)],
) -> Option<T> {
    let text = String::decode(node, path, d)?;
    if let Some((_, v)) = choices.iter().find(|(n, _)| *n == text) {
        return Some(*v);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let hint = match suggest(&text, &names) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("use one of: {}", names.join(", ")),
    };
    let e = d.error_at(node.mark, path, format!("unknown value `{text}`"));
    e.hint = Some(hint);
    None
}

/// The known name closest to `word`, when close enough to be a likely typo
/// (`_` and `-` are treated alike, case is ignored).
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let w = norm(word);
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&w, &norm(k)), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// What to do with keys nobody asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Error (the default for our own files).
    Error,
    /// Warning: "ignored".
    Warn,
    /// Say nothing (files whose other keys belong to other tools).
    Ignore,
}

/// Hands out the keys of one mapping and reports the rest.
pub struct MapReader<'n, 'd> {
    d: &'d mut Diag,
    path: String,
    entries: &'n [Entry],
    used: Vec<bool>,
    known: Vec<&'static str>,
    secret_section: Option<String>,
}

impl<'n, 'd> MapReader<'n, 'd> {
    /// Start reading `node` (a mapping; a null node reads as empty) at
    /// `path`. Reports a wrong type and duplicate keys.
    pub fn new(node: &'n Node, path: &str, d: &'d mut Diag) -> Option<Self> {
        let entries: &'n [Entry] = match &node.value {
            Value::Map(e) => e,
            _ if node.is_null() => &[],
            _ => {
                wrong_type(node, path, d, "a mapping");
                return None;
            }
        };
        for (i, e) in entries.iter().enumerate() {
            if let Some(first) = entries[..i].iter().find(|f| f.key == e.key) {
                let p = join(path, &e.key);
                let line = first.key_mark.line;
                d.error_at(
                    e.key_mark,
                    &p,
                    format!("duplicate key (first given on line {line})"),
                );
            }
        }
        Some(MapReader {
            d,
            path: path.to_string(),
            used: vec![false; entries.len()],
            entries,
            known: Vec::new(),
            secret_section: None,
        })
    }

    /// Inline secret keys in this mapping belong in the secrets file under
    /// `section` (e.g. `openstack`, `vos.ops`).
    pub fn secrets_section(&mut self, section: impl Into<String>) {
        self.secret_section = Some(section.into());
    }

    fn take(&mut self, key: &'static str) -> Option<&'n Entry> {
        self.known.push(key);
        let i = self.entries.iter().position(|e| e.key == key)?;
        // Later duplicates are reported by `new`, not as unknown keys.
        for (used, e) in self.used.iter_mut().zip(self.entries) {
            *used |= e.key == key;
        }
        let e = &self.entries[i];
        self.d.record(&join(&self.path, key), e.key_mark);
        Some(e)
    }

    /// An optional key; an empty value counts as absent.
    pub fn opt<T: Decode>(&mut self, key: &'static str) -> Option<T> {
        let e = self.take(key)?;
        if e.value.is_null() {
            return None;
        }
        let p = join(&self.path, key);
        let v = T::decode(&e.value, &p, self.d);
        if v.is_none() {
            self.d.fail(&p);
        }
        v
    }

    /// An optional key decoded with a custom function.
    pub fn opt_with<T>(
        &mut self,
        key: &'static str,
        f: impl FnOnce(&Node, &str, &mut Diag) -> Option<T>,
    ) -> Option<T> {
        let e = self.take(key)?;
        if e.value.is_null() {
            return None;
        }
        let p = join(&self.path, key);
        let v = f(&e.value, &p, self.d);
        if v.is_none() {
            self.d.fail(&p);
        }
        v
    }

    /// Keys not asked for so far.
    pub fn rest(&self) -> impl Iterator<Item = &'n Entry> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|(e, _)| e)
    }

    /// Report every key not asked for.
    pub fn finish(self, unknown: Unknown) {
        let MapReader {
            d,
            path,
            entries,
            used,
            known,
            secret_section,
        } = self;
        for (e, _) in entries.iter().zip(used).filter(|(_, u)| !*u) {
            let p = join(&path, &e.key);
            d.record(&p, e.key_mark);
            if let (Some(file), true) = (&d.secrets_file, SECRET_KEYS.contains(&e.key.as_str())) {
                let section = secret_section.as_deref().unwrap_or("openstack");
                let target = if e.key == "secret" {
                    format!("`{section}` as one of password, application-credential-secret, access-token, token")
                } else {
                    format!("`{section}.{}`", e.key)
                };
                let hint = format!(
                    "move it to the secrets file {} (mode 0600) under {target}",
                    file.display()
                );
                let msg = "secrets are not allowed in this file";
                let err = ConfigError::at(d.file.clone(), Some(e.key_mark), &p, msg).hint(hint);
                d.push(err);
                continue;
            }
            let hint = match suggest(&e.key, &known) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => "this mapping takes no keys".to_string(),
                None => format!("known keys here: {}", known.join(", ")),
            };
            match unknown {
                Unknown::Error => {
                    d.push(
                        ConfigError::at(d.file.clone(), Some(e.key_mark), &p, "unknown key")
                            .hint(hint),
                    );
                }
                Unknown::Warn => {
                    let w = ConfigError::at(
                        d.file.clone(),
                        Some(e.key_mark),
                        &p,
                        "unknown key, ignored",
                    );
                    d.warnings.push(w.hint(hint));
                }
                Unknown::Ignore => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::parse;
    use super::*;

    #[derive(Debug)]
    struct Inner {
        port: Option<u32>,
        on: Option<bool>,
    }

    impl Decode for Inner {
        fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
            let mut m = MapReader::new(node, path, d)?;
            let v = Inner {
                port: m.opt("port"),
                on: m.opt("on"),
            };
            m.finish(Unknown::Error);
            Some(v)
        }
    }

    #[derive(Debug)]
    struct Outer {
        name: Option<String>,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    impl Decode for Outer {
        fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
            let mut m = MapReader::new(node, path, d)?;
            let v = Outer {
                name: m.opt("name"),
                inner: m.opt("inner"),
                list: m.opt("list"),
            };
            m.finish(Unknown::Error);
            Some(v)
        }
    }

    fn run(text: &str) -> (Option<Outer>, Vec<String>) {
        let mut d = Diag::new("t.yaml");
        let node = parse(text).unwrap();
        let v = Outer::decode(&node, "", &mut d);
        d.sort();
        (v, d.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn collects_every_problem() {
        let (v, errs) = run(
            "name: x\ninnr: {}\ninner: {port: -1, on: yes}\nlist:\n  - {prot: 1}\n  - port: ten\n",
        );
        assert_eq!(
            errs,
            [
                "t.yaml:2:1: innr: unknown key; did you mean `inner`?",
                "t.yaml:3:15: inner.port: -1 is out of range (0 to 4294967295)",
                "t.yaml:3:23: inner.on: expected `true` or `false`, found a string",
                "t.yaml:5:6: list[0].prot: unknown key; did you mean `port`?",
                "t.yaml:6:11: list[1].port: expected a whole number, found a string",
            ]
        );
        let v = v.unwrap();
        assert_eq!(v.name.as_deref(), Some("x"));
        let inner = v.inner.unwrap();
        assert!(inner.port.is_none() && inner.on.is_none());
        assert_eq!(v.list.unwrap().len(), 2);
    }

    #[test]
    fn duplicate_keys_and_wrong_container() {
        let (_, errs) = run("name: a\nname: b\ninner: [1]\n");
        assert_eq!(
            errs,
            [
                "t.yaml:2:1: name: duplicate key (first given on line 1)",
                "t.yaml:3:8: inner: expected a mapping, found a list",
            ]
        );
    }

    #[test]
    fn numbers_stay_as_written_for_strings_and_booleans_are_refused() {
        let (v, _) = run("name: 0012\n");
        assert_eq!(v.unwrap().name.as_deref(), Some("0012"));
        let (_, errs) = run("name: true\n");
        assert_eq!(
            errs,
            ["t.yaml:1:7: name: expected a string, found a boolean (`true`); put the value in quotes to make it a string"]
        );
    }

    #[test]
    fn marks_fall_back_to_ancestors() {
        let mut d = Diag::new("t.yaml");
        d.record("a", Mark { line: 4, column: 1 });
        d.record("a.b[2]", Mark { line: 7, column: 5 });
        assert_eq!(d.mark("a.b[2].c.d"), Some(Mark { line: 7, column: 5 }));
        assert_eq!(d.mark("a.x"), Some(Mark { line: 4, column: 1 }));
        assert_eq!(d.mark("z"), None);
        d.record("", Mark { line: 1, column: 1 });
        assert_eq!(d.mark("z"), Some(Mark { line: 1, column: 1 }));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("auth_url", &["auth-url", "username"]),
            Some("auth-url")
        );
        assert_eq!(
            suggest("opnstack", &["site", "openstack", "vos"]),
            Some("openstack")
        );
        assert_eq!(suggest("zzz", &["site", "openstack", "vos"]), None);
    }
}
