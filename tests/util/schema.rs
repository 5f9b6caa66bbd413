//! Check JSON output against the field table of a `docs/*-json.md` file:
//! rows `| `path` | type | meaning |`, with `a.b`, `a.list[]` (items) and
//! `a.list[].c` paths; types `string`, `integer`, `number`, `boolean`,
//! `object`, `array`, `map of T`, `json` (anything), `?` for "may be null
//! or absent". Every printed field must be documented with its type; every
//! required field must be printed with its parent; every documented field
//! must be printed by at least one of the outputs checked together.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

#[derive(Debug, Clone)]
struct Field {
    ty: String,
    optional: bool,
}

fn table(md: &str) -> BTreeMap<String, Field> {
    let mut out = BTreeMap::new();
    for line in md.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", "`path`", "type", "meaning", ""]
        if cells.len() < 4 {
            continue;
        }
        let (Some(path), ty) = (
            cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
            cells[2],
        ) else {
            continue;
        };
        let (ty, optional) = match ty.strip_suffix('?') {
            Some(t) => (t.trim().to_string(), true),
            None => (ty.to_string(), false),
        };
        let known = [
            "string", "integer", "number", "boolean", "object", "array", "json",
        ];
        if !known.contains(&ty.as_str()) && !ty.starts_with("map of ") {
            continue;
        }
        out.insert(path.to_string(), Field { ty, optional });
    }
    assert!(!out.is_empty(), "no field table found");
    out
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "json" => true,
        t => match t.strip_prefix("map of ") {
            Some(inner) => v
                .as_object()
                .is_some_and(|m| m.values().all(|x| type_ok(inner, x))),
            None => false,
        },
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn walk(
    fields: &BTreeMap<String, Field>,
    path: &str,
    v: &Value,
    seen: &mut BTreeSet<String>,
    doc: &str,
) {
    match v {
        Value::Object(m) => {
            // Required children.
            for (p, f) in fields {
                let Some(rest) = (if path.is_empty() {
                    Some(p.as_str())
                } else {
                    p.strip_prefix(&format!("{path}."))
                }) else {
                    continue;
                };
                if rest.contains('.') || rest.contains("[]") || f.optional {
                    continue;
                }
                assert!(
                    m.contains_key(rest),
                    "{doc}: required field `{p}` is missing in {v:#}"
                );
            }
            for (k, child) in m {
                let p = join(path, k);
                let f = fields
                    .get(&p)
                    .unwrap_or_else(|| panic!("{doc}: field `{p}` is printed but not documented"));
                seen.insert(p.clone());
                if child.is_null() {
                    assert!(f.optional, "{doc}: `{p}` is null but not marked `?`");
                    continue;
                }
                descend(fields, &p, &f.ty, child, seen, doc, &format!("`{p}`"));
            }
        }
        Value::Array(items) => {
            let p = format!("{path}[]");
            let f = fields
                .get(&p)
                .unwrap_or_else(|| panic!("{doc}: items `{p}` are not documented"));
            let what = format!("an item of `{p}`");
            for item in items {
                seen.insert(p.clone());
                descend(fields, &p, &f.ty, item, seen, doc, &what);
            }
        }
        _ => {}
    }
}

/// `v` (`what`, at `p`) is of the documented type `ty`; its children are
/// checked in turn.
fn descend(
    fields: &BTreeMap<String, Field>,
    p: &str,
    ty: &str,
    v: &Value,
    seen: &mut BTreeSet<String>,
    doc: &str,
    what: &str,
) {
    assert!(type_ok(ty, v), "{doc}: {what} should be {ty} but is {v}");
    if matches!(ty, "object" | "array") {
        walk(fields, p, v, seen, doc);
    }
}

/// Check `outputs` against the table in `doc` (a path under the crate root).
pub fn check(doc: &str, outputs: &[&Value]) {
    check_allowing_empty(doc, outputs, &[]);
}

/// [`check`], where the items of the arrays in `may_be_empty` (e.g.
/// `projects[].inventory.volumes[]`) need not be printed: what a freshly
/// bootstrapped reference site does not have (its projects own no volume
/// until a test makes one). Where items are printed, they are checked.
pub fn check_allowing_empty(doc: &str, outputs: &[&Value], may_be_empty: &[&str]) {
    let md = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    let fields = table(&md);
    let mut seen = BTreeSet::new();
    for v in outputs {
        walk(&fields, "", v, &mut seen, doc);
    }
    let never: Vec<&String> = fields
        .keys()
        .filter(|p| !seen.contains(*p))
        .filter(|p| !may_be_empty.iter().any(|e| p.starts_with(e)))
        .collect();
    assert!(
        never.is_empty(),
        "{doc}: documented but never printed by these outputs: {never:?}"
    );
}
