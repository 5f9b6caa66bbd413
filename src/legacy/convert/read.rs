//! Reading each legacy file into the [`Ledger`]: every key it sets is
//! recorded (secrets without their value) and handed back with its
//! [`KeyId`], so the conversion can decide each key's outcome. Damaged
//! files are read leniently and say so in the file's notes.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::config::format::{self, Node, Value as YamlValue};
use crate::legacy::ini::{self, Dialect, Mode};
use crate::legacy::rc;
use crate::legacy::report::{KeyId, Ledger, Outcome};
use crate::legacy::snapshot::Snapshot;

/// A read value: text, line, handle.
#[derive(Debug, Clone)]
pub struct Val {
    /// The value as written.
    pub text: String,
    /// Its ledger entry.
    pub id: KeyId,
}

/// An INI file's keys.
#[derive(Debug, Clone)]
pub struct IniView {
    /// Ledger file index.
    pub file: usize,
    keys: BTreeMap<(String, String), Val>,
}

impl IniView {
    /// The (last) value of `[section] key`.
    pub fn get(&self, section: &str, key: &str) -> Option<&Val> {
        self.keys.get(&(section.to_string(), key.to_string()))
    }

    /// Every key (the last of each), by section and key.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Val)> {
        self.keys.iter().map(|((_, k), v)| (k.as_str(), v))
    }

    /// Every key of a section.
    pub fn section<'a>(&'a self, section: &'a str) -> impl Iterator<Item = (&'a str, &'a Val)> {
        self.keys
            .iter()
            .filter(move |((s, _), _)| s == section)
            .map(|((_, k), v)| (k.as_str(), v))
    }
}

/// Read an INI file; keys named in `secrets` (any section) keep no value.
pub fn ini_file(
    l: &mut Ledger,
    snap: &Snapshot,
    path: &str,
    role: &str,
    dialect: Dialect,
    secrets: &[&str],
) -> Option<IniView> {
    let text = snap.get(path)?;
    let f = l.file(path, role);
    let parsed = match ini::parse(text, dialect, Mode::Tolerant) {
        Ok(p) => p,
        Err(e) => {
            l.note(
                f,
                Some(e.line),
                format!("cannot be read ({}); nothing imported from it", e.message),
            );
            return None;
        }
    };
    if !parsed.tolerated.is_empty() {
        let strict = ini::parse(text, dialect, Mode::Strict);
        let who = match dialect {
            Dialect::Python => "Python's ConfigParser (ssmsend)",
            Dialect::Oslo => "oslo.config",
        };
        match strict {
            Err(e) => l.note(
                f,
                Some(e.line),
                format!(
                    "whitespace-damaged: {who} rejects this file (line {}: {}); read leniently, see the notes below",
                    e.line, e.message
                ),
            ),
            Ok(_) => l.note(
                f,
                None,
                format!("whitespace-damaged: read leniently ({who} reads it differently)"),
            ),
        }
        for t in &parsed.tolerated {
            l.note(f, Some(t.line), t.what.clone());
        }
    }
    let mut keys: BTreeMap<(String, String), Val> = BTreeMap::new();
    for e in &parsed.entries {
        let secret = secrets.contains(&e.key.as_str());
        let id = l.key(
            f,
            Some(e.line),
            format!("[{}] {}", e.section, e.key),
            &e.value,
            secret,
        );
        let v = Val {
            text: e.value.clone(),
            id,
        };
        if let Some(prev) = keys.insert((e.section.clone(), e.key.clone()), v) {
            l.set(
                prev.id,
                Outcome::Dropped {
                    note: format!("set again at line {}: the last one counts", e.line),
                },
            );
        }
    }
    Some(IniView { file: f, keys })
}

/// An `openstack.rc`'s variables.
#[derive(Debug, Clone)]
pub struct RcView {
    vars: BTreeMap<String, Val>,
}

impl RcView {
    /// Every variable.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Val)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A variable.
    pub fn get(&self, key: &str) -> Option<&Val> {
        self.vars.get(key)
    }
}

/// How a `KEY=value` file was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcUse {
    /// Sourced by a shell.
    Shell,
    /// Given to `docker --env-file` (layout H), which keeps quotes.
    EnvFile,
    /// Read by a program (`site.cfg`): no shell rules.
    Plain,
}

/// Read a `KEY=value` file (`openstack.rc`, `site.cfg`, `/etc/egi/defaults`).
pub fn rc_file(
    l: &mut Ledger,
    snap: &Snapshot,
    path: &str,
    role: &str,
    usage: RcUse,
) -> Option<RcView> {
    let env_file = usage == RcUse::EnvFile;
    let text = snap.get(path)?;
    let f = l.file(path, role);
    let (entries, skipped) = rc::parse(text);
    for s in skipped {
        l.note(
            f,
            Some(s.line),
            format!("not an assignment, ignored: {}", s.text),
        );
    }
    let mut vars = BTreeMap::new();
    for e in entries {
        let secret = e.key.contains("PASSWORD") || e.key.contains("SECRET");
        if e.quoted && env_file {
            l.note(
                f,
                Some(e.line),
                format!(
                    "{}: quoted, and `docker --env-file` keeps quotes as part of the value; read without them",
                    e.key
                ),
            );
        }
        if !e.quoted && usage == RcUse::Shell && e.value.contains(['<', '>', ' ']) {
            l.note(
                f,
                Some(e.line),
                format!(
                    "{}: unquoted `{}` is not valid shell: the file could not be sourced until edited",
                    e.key,
                    if secret { "<value>" } else { e.value.as_str() }
                ),
            );
        }
        let id = l.key(f, Some(e.line), e.key.clone(), &e.value, secret);
        vars.insert(e.key.clone(), Val { text: e.value, id });
    }
    Some(RcView { vars })
}

/// A YAML file's leaves by dotted path (`compute.shares.ops.auth.project_id`;
/// list items `vos[0].name`; a list of scalars is one leaf, `[a, b]`).
#[derive(Debug, Clone)]
pub struct YamlView {
    leaves: Vec<(String, Val, Vec<String>)>,
}

impl YamlView {
    /// A leaf.
    pub fn get(&self, path: &str) -> Option<&Val> {
        self.leaves
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, v, _)| v)
    }

    /// A leaf that is a list of scalars.
    pub fn list(&self, path: &str) -> Option<(&Val, &[String])> {
        self.leaves
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, v, items)| (v, items.as_slice()))
    }

    /// Leaves under `prefix.` (path relative to it).
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Val)> + 'a {
        self.leaves.iter().filter_map(move |(p, v, _)| {
            p.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
                .map(|r| (r, v))
        })
    }

    /// All leaves.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Val)> {
        self.leaves.iter().map(|(p, v, _)| (p.as_str(), v))
    }
}

fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        YamlValue::Scalar(s) => Some(s.text.clone()),
        _ => None,
    }
}

fn walk(n: &Node, path: &str, out: &mut Vec<(String, Node, Vec<String>)>) {
    match &n.value {
        YamlValue::Map(entries) => {
            for e in entries {
                let p = if path.is_empty() {
                    e.key.clone()
                } else {
                    format!("{path}.{}", e.key)
                };
                let mut v = e.value.clone();
                // a leaf's line is its key's
                if !matches!(v.value, YamlValue::Map(_)) {
                    v.mark = e.key_mark;
                }
                walk(&v, &p, out);
            }
        }
        YamlValue::Seq(items) if items.iter().all(|i| scalar_text(i).is_some()) => {
            let texts: Vec<String> = items.iter().filter_map(scalar_text).collect();
            out.push((path.to_string(), n.clone(), texts));
        }
        YamlValue::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out);
            }
        }
        YamlValue::Scalar(_) => out.push((path.to_string(), n.clone(), Vec::new())),
    }
}

/// Read a YAML file; leaves whose last path element is in `secrets` keep
/// no value.
pub fn yaml_file(
    l: &mut Ledger,
    snap: &Snapshot,
    path: &str,
    role: &str,
    secrets: &[&str],
) -> Option<YamlView> {
    let text = snap.get(path)?;
    yaml_text(l, path, text, role, secrets)
}

/// [`yaml_file`] on text given directly (a file outside the legacy root).
pub fn yaml_text(
    l: &mut Ledger,
    path: &str,
    text: &str,
    role: &str,
    secrets: &[&str],
) -> Option<YamlView> {
    let f = l.file(path, role);
    let root = match format::parse(text) {
        Ok(r) => r,
        Err(e) => {
            l.note(
                f,
                Some(e.mark.line),
                format!("not valid YAML ({}); nothing imported from it", e.message),
            );
            return None;
        }
    };
    let mut raw = Vec::new();
    walk(&root, "", &mut raw);
    let mut leaves = Vec::new();
    for (p, node, items) in raw {
        let last = p.rsplit('.').next().unwrap_or("");
        let secret = secrets.contains(&last);
        let text = if node.is_null() {
            String::new()
        } else if let YamlValue::Seq(_) = node.value {
            format!("[{}]", items.join(", "))
        } else {
            scalar_text(&node).unwrap_or_default()
        };
        let id = l.key(f, Some(node.mark.line), p.clone(), &text, secret);
        leaves.push((p, Val { text, id }, items));
    }
    Some(YamlView { leaves })
}

/// One VO entry of a `voms.json` / `mapping.json`.
#[derive(Debug, Clone)]
pub struct MapEntry {
    /// VO name.
    pub vo: String,
    /// `tenant`, `tenants`, `projects` or `project`, as written.
    pub shape: String,
    /// The project names or ids.
    pub projects: Vec<String>,
    /// `domain` (mapping.json).
    pub domain: Option<String>,
    /// Ledger entry of the VO.
    pub val: Val,
}

/// A VO mapping file's entries, in file order.
#[derive(Debug, Clone)]
pub struct MapView {
    /// Ledger file index.
    pub file: usize,
    /// The entries.
    pub entries: Vec<MapEntry>,
}

/// Read a `voms.json` / `mapping.json` in any of its shapes
/// (`{vo: {"tenant": t}}`, `{"tenants": [..]}`, `{"projects": [..]}`,
/// `{"project": p, "domain": d}`).
pub fn map_file(l: &mut Ledger, snap: &Snapshot, path: &str, role: &str) -> Option<MapView> {
    let text = snap.get(path)?;
    let f = l.file(path, role);
    let v: Json = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            l.note(
                f,
                Some(e.line()),
                format!("not valid JSON ({e}); nothing imported from it"),
            );
            return None;
        }
    };
    let Json::Object(m) = v else {
        l.note(
            f,
            None,
            "not a JSON object of VOs; nothing imported from it",
        );
        return None;
    };
    let line_of = |vo: &str| {
        let needle = format!("\"{vo}\"");
        text.lines()
            .position(|line| line.contains(&needle))
            .map(|i| i + 1)
    };
    let mut entries = Vec::new();
    for (vo, e) in m {
        let line = line_of(&vo);
        let mut projects = Vec::new();
        let mut shape = String::new();
        let mut domain = None;
        if let Json::Object(o) = &e {
            for key in ["projects", "tenants", "project", "tenant"] {
                match o.get(key) {
                    Some(Json::String(s)) => {
                        projects.push(s.clone());
                        shape = key.into();
                        break;
                    }
                    Some(Json::Array(a)) => {
                        projects.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
                        shape = key.into();
                        break;
                    }
                    _ => {}
                }
            }
            domain = o.get("domain").and_then(Json::as_str).map(String::from);
        }
        let id = l.key(f, line, format!("\"{vo}\""), &e.to_string(), false);
        if shape.is_empty() {
            l.set(
                id,
                Outcome::Dropped {
                    note: "no `tenant`, `tenants`, `projects` or `project` key: the VO maps to nothing".into(),
                },
            );
        }
        entries.push(MapEntry {
            vo,
            shape,
            projects,
            domain,
            val: Val {
                text: e.to_string(),
                id,
            },
        });
    }
    Some(MapView { file: f, entries })
}

/// A whole file recorded as one key (units, scripts, compose files).
pub fn whole_file(l: &mut Ledger, snap: &Snapshot, path: &str, role: &str) -> Option<(usize, Val)> {
    let text = snap.get(path)?;
    let f = l.file(path, role);
    let summary = format!("{} lines", text.lines().count());
    let id = l.key(f, None, "(whole file)", &summary, false);
    Some((
        f,
        Val {
            text: text.to_string(),
            id,
        },
    ))
}
