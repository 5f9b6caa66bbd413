//! The only module that knows YAML.
//!
//! Reading: [`parse`] turns YAML text into a small document tree ([`Node`])
//! in which every node and every mapping key carries its 1-based line and
//! column. It is built from yaml-rust2's event parser, because that parser
//! reports positions for every event; the rest of `config` then works on the
//! tree without knowing it came from YAML, and every error, semantic ones
//! included, can name `file:line:column`.
//!
//! Scalars keep the text as written; [`Scalar::kind`] resolves it with the
//! YAML 1.2 core schema (the one serde_yaml 0.9 uses: `yes`/`no` are strings,
//! `true`/`false` are booleans, `~`/`null`/empty are null).
//!
//! Writing: [`to_yaml`] renders any `Serialize` value (serde_yaml), for
//! `appliance config show`; [`edit`] changes a document in place, keeping
//! its comments and layout (for `appliance migrate`).

pub mod edit;

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the source text, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Mark {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Mark {
    fn from_marker(m: Marker) -> Mark {
        Mark {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

/// A node of the document tree with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub mark: Mark,
    /// What it holds.
    pub value: Value,
}

/// The three kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, as written.
    Scalar(Scalar),
    /// A sequence (list).
    Seq(Vec<Node>),
    /// A mapping, in source order (duplicate keys are kept, for the caller
    /// to report).
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's text.
    pub key: String,
    /// Where the key starts.
    pub key_mark: Mark,
    /// The value.
    pub value: Node,
}

/// A scalar as written in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The text after YAML unquoting/folding.
    pub text: String,
    /// Plain (unquoted, untagged) scalars are resolved by [`Scalar::kind`];
    /// quoted ones and `!!str` are always strings.
    pub plain: bool,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarKind {
    /// `~`, `null`, `Null`, `NULL` or nothing.
    Null,
    /// `true`/`false` (also `True`, `TRUE`, ...).
    Bool(bool),
    /// An integer (decimal, `0x`, `0o`).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Anything else.
    Str,
}

impl Scalar {
    /// Resolve the scalar's type.
    pub fn kind(&self) -> ScalarKind {
        if !self.plain {
            return ScalarKind::Str;
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
            "true" | "True" | "TRUE" => return ScalarKind::Bool(true),
            "false" | "False" | "FALSE" => return ScalarKind::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return ScalarKind::Float(f64::INFINITY)
            }
            "-.inf" | "-.Inf" | "-.INF" => return ScalarKind::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float(f64::NAN),
            _ => {}
        }
        if let Some(hex) = t.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return ScalarKind::Int(i);
            }
        }
        if let Some(oct) = t.strip_prefix("0o") {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return ScalarKind::Int(i);
            }
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(i) = t.parse::<i64>() {
                return ScalarKind::Int(i);
            }
        }
        let float_chars = digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
        if float_chars && digits.bytes().any(|b| b.is_ascii_digit()) {
            if let Ok(f) = t.parse::<f64>() {
                return ScalarKind::Float(f);
            }
        }
        ScalarKind::Str
    }
}

impl Node {
    /// A short name of the node's type for error messages, e.g.
    /// "a mapping", "a boolean (`true`)".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Scalar(s) => match s.kind() {
                ScalarKind::Null => "an empty value".into(),
                ScalarKind::Bool(_) => format!("a boolean (`{}`)", s.text),
                ScalarKind::Int(_) => format!("a number (`{}`)", s.text),
                ScalarKind::Float(_) => format!("a number (`{}`)", s.text),
                ScalarKind::Str => "a string".into(),
            },
        }
    }

    /// Whether the node is a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.kind() == ScalarKind::Null)
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser gave up.
    pub mark: Mark,
    /// What it says.
    pub message: String,
}

/// Parse YAML text into a document tree. An empty document is a null node
/// at 1:1. Only one document is allowed.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        mark: Mark::from_marker(*e.marker()),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    if let Some(mark) = builder.second_document {
        return Err(SyntaxError {
            mark,
            message: "a second YAML document (`---`) is not allowed here".into(),
        });
    }
    Ok(builder.root.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: Value::Scalar(Scalar {
            text: String::new(),
            plain: true,
        }),
    }))
}

/// Render a value as YAML (for `config show`).
pub fn to_yaml<T: serde::Serialize>(value: &T) -> String {
    match serde_yaml::to_string(value) {
        Ok(s) => s,
        // Our own DTOs are plain structs of strings, numbers and lists; this
        // is not expected to happen, and is still shown rather than hidden.
        Err(e) => format!("# cannot render the configuration as YAML: {e}\n"),
    }
}

/// A YAML document to write (`import-legacy`'s `appliance.yaml` and
/// secrets file): mappings in the given key order, scalars quoted only
/// where YAML needs it (serde_yaml decides), and comments a person reads
/// next to the key they explain.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A list.
    List(Vec<Out>),
    /// A mapping, in order.
    Map(Vec<OutEntry>),
}

/// One `key: value` of an [`Out::Map`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Out,
    /// A comment: after a scalar on its line, above anything else.
    pub comment: Option<String>,
}

impl Out {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Out {
        Out::Str(s.into())
    }

    /// An empty mapping.
    pub fn map() -> Out {
        Out::Map(Vec::new())
    }

    /// Append `key: value` (with an optional comment) to a mapping; a no-op
    /// on anything else.
    pub fn push(&mut self, key: &str, value: Out, comment: Option<String>) {
        if let Out::Map(entries) = self {
            entries.push(OutEntry {
                key: key.to_string(),
                value,
                comment,
            });
        }
    }

    /// The value at `key` of a mapping.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Out> {
        match self {
            Out::Map(entries) => entries
                .iter_mut()
                .find(|e| e.key == key)
                .map(|e| &mut e.value),
            _ => None,
        }
    }

    /// Whether it is an empty mapping or list.
    pub fn is_empty(&self) -> bool {
        matches!(self, Out::Map(m) if m.is_empty()) || matches!(self, Out::List(l) if l.is_empty())
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Out::Str(_) | Out::Bool(_) | Out::Int(_)) || self.is_empty()
    }
}

/// A scalar as YAML text: plain when YAML reads it back as the same
/// string, else quoted.
fn scalar_text(v: &Out) -> String {
    match v {
        Out::Bool(b) => b.to_string(),
        Out::Int(i) => i.to_string(),
        Out::Str(s) if s.is_empty() => "\"\"".into(),
        Out::Str(s) => scalar(s),
        Out::List(_) => "[]".into(),
        Out::Map(_) => "{}".into(),
    }
}

fn comment_lines(out: &mut String, indent: usize, c: &str) {
    for l in c.lines() {
        out.push_str(&format!("{:indent$}# {l}\n", ""));
    }
}

fn write_map(out: &mut String, entries: &[OutEntry], indent: usize, first_inline: bool) {
    for (i, e) in entries.iter().enumerate() {
        let pad = if i == 0 && first_inline { 0 } else { indent };
        let key = scalar_text(&Out::Str(e.key.clone()));
        if e.value.is_scalar() {
            out.push_str(&format!("{:pad$}{key}: {}", "", scalar_text(&e.value)));
            if let Some(c) = &e.comment {
                out.push_str(&format!("   # {}", c.replace('\n', " ")));
            }
            out.push('\n');
            continue;
        }
        if let Some(c) = &e.comment {
            if i == 0 && first_inline {
                // a comment cannot go between `- ` and the key
                out.push_str(&format!("{key}:   # {}\n", c.replace('\n', " ")));
            } else {
                comment_lines(out, indent, c);
                out.push_str(&format!("{:indent$}{key}:\n", ""));
            }
        } else {
            out.push_str(&format!("{:pad$}{key}:\n", ""));
        }
        write_value(out, &e.value, indent + 2);
    }
}

fn write_value(out: &mut String, v: &Out, indent: usize) {
    match v {
        Out::Map(entries) => write_map(out, entries, indent, false),
        Out::List(items) => {
            for item in items {
                match item {
                    Out::Map(entries) if !entries.is_empty() => {
                        out.push_str(&format!("{:indent$}- ", ""));
                        write_map(out, entries, indent + 2, true);
                    }
                    Out::List(_) if !item.is_empty() => {
                        out.push_str(&format!("{:indent$}-\n", ""));
                        write_value(out, item, indent + 2);
                    }
                    scalar => out.push_str(&format!("{:indent$}- {}\n", "", scalar_text(scalar))),
                }
            }
        }
        scalar => out.push_str(&format!("{:indent$}{}\n", "", scalar_text(scalar))),
    }
}

/// Render `doc` as a YAML document, `header` as comment lines above it.
pub fn write_yaml(header: &str, doc: &Out) -> String {
    let mut out = String::new();
    comment_lines(&mut out, 0, header);
    write_value(&mut out, doc, 0);
    out
}

/// One YAML scalar for a hand-written document: plain when that reads
/// back as the same string, quoted otherwise (serde_yaml's choice, so `yes`,
/// `1234`, `*:0/30` or a leading `#` are quoted).
pub fn scalar(s: &str) -> String {
    match serde_yaml::to_string(s) {
        Ok(out) => {
            let out = out.strip_suffix('\n').unwrap_or(&out);
            if out.contains('\n') {
                // A multi-line block scalar does not fit on a `key: value`
                // line; JSON escaping is valid YAML.
                serde_json::to_string(s).unwrap_or_default()
            } else if out == s && yaml11_keyword(s) {
                // Plain `yes`, `on`, `n`... are strings in YAML 1.2 but
                // booleans to YAML 1.1 readers (PyYAML, the peers' tools).
                format!("'{s}'")
            } else {
                out.to_string()
            }
        }
        Err(_) => serde_json::to_string(s).unwrap_or_default(),
    }
}

/// Words YAML 1.1 reads as booleans or null when plain.
fn yaml11_keyword(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
    )
}

/// One entry of a block-style mapping as written: the key and the source
/// lines that belong to it (comment lines directly above it included,
/// trailing blank and comment lines left to the next entry).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The key.
    pub key: String,
    /// Its lines, each ending in `\n`.
    pub text: String,
    /// The lines up to and including the key's own line (comments above
    /// it included): the header of a block value.
    pub head: String,
    /// The value node (for [`chunks`] of a block mapping).
    pub value: Node,
    /// Whether the value is written in block style (entries on lines of
    /// their own below the key), so [`chunks`] can split it further.
    pub block: bool,
}

/// The entries of the mapping `map` (a node parsed from `text`), each with
/// its source text, in order. `None` when the mapping is not in block style
/// (a `{...}` flow mapping spans lines that cannot be split by key).
pub fn chunks(text: &str, map: &Node) -> Option<Vec<Chunk>> {
    let Value::Map(entries) = &map.value else {
        return None;
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first_line = |e: &Entry| e.key_mark.line.saturating_sub(1);
    // Distinct lines per key, or it is a flow mapping.
    for w in entries.windows(2) {
        if w[0].key_mark.line >= w[1].key_mark.line {
            return None;
        }
    }
    if let Some(e) = entries.first() {
        let l = lines.get(first_line(e)).copied().unwrap_or("");
        if l[..e.key_mark.column.saturating_sub(1).min(l.len())].contains('{') {
            return None;
        }
    }
    let is_trivia = |l: &str| {
        let t = l.trim_start();
        t.is_empty() || t.starts_with('#')
    };
    // Start of each entry, pulled up over the comment lines right above it.
    let mut starts: Vec<usize> = Vec::with_capacity(entries.len());
    let mut floor = 0usize;
    for e in entries {
        let mut s = first_line(e);
        while s > floor && {
            let t = lines[s - 1].trim_start();
            t.starts_with('#')
        } {
            s -= 1;
        }
        starts.push(s);
        floor = first_line(e) + 1;
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let mut end = if i + 1 < entries.len() {
            starts[i + 1]
        } else {
            // The last entry runs while lines are deeper than its key (or
            // are items of its block sequence), not to the end of a parent.
            let key_indent = e.key_mark.column.saturating_sub(1);
            let seq = matches!(e.value.value, Value::Seq(_));
            let mut j = first_line(e) + 1;
            while j < lines.len() {
                let l = lines[j];
                let indent = l.len() - l.trim_start().len();
                let belongs = is_trivia(l)
                    || indent > key_indent
                    || (seq && indent == key_indent && l.trim_start().starts_with('-'));
                if !belongs {
                    break;
                }
                j += 1;
            }
            j
        };
        while end > first_line(e) + 1 && is_trivia(lines[end - 1]) {
            end -= 1;
        }
        let mut text: String = lines[starts[i]..end].concat();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let block = matches!(&e.value.value, Value::Map(_) | Value::Seq(_))
            && e.value.mark.line > e.key_mark.line;
        let head: String = lines[starts[i]..=first_line(e).min(lines.len() - 1)].concat();
        out.push(Chunk {
            key: e.key.clone(),
            text,
            head,
            block,
            value: e.value.clone(),
        });
    }
    Some(out)
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Mark)>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    second_document: Option<Mark>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn finish_node(&mut self, anchor: usize, node: Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => match node.value {
                    Value::Scalar(s) => *key = Some((s.text, node.mark)),
                    _ => {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                mark: node.mark,
                                message:
                                    "a mapping key must be a plain string, not a list or mapping"
                                        .into(),
                            });
                        }
                        *key = Some((String::new(), node.mark));
                    }
                },
                Some((k, key_mark)) => entries.push(Entry {
                    key: k,
                    key_mark,
                    value: node,
                }),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let mark = Mark::from_marker(marker);
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    self.second_document = Some(mark);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == TScalarStyle::Plain && !is_str_tag;
                let node = Node {
                    mark,
                    value: Value::Scalar(Scalar { text, plain }),
                };
                self.finish_node(anchor, node);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                mark,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                mark,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        mark,
                        anchor,
                        items,
                    }) => (
                        Node {
                            mark,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        mark,
                        anchor,
                        entries,
                        ..
                    }) => {
                        // A block mapping's start event is marked after its
                        // first key; the mapping starts where that key does.
                        let mark = entries.first().map_or(mark, |e| mark.min(e.key_mark));
                        let value = Value::Map(entries);
                        (Node { mark, value }, anchor)
                    }
                    None => return,
                };
                self.finish_node(anchor, node);
            }
            Event::Alias(id) => {
                let node = match self.anchors.get(&id) {
                    Some(n) => Node {
                        mark,
                        value: n.value.clone(),
                    },
                    None => Node {
                        mark,
                        value: Value::Scalar(Scalar {
                            text: String::new(),
                            plain: true,
                        }),
                    },
                };
                self.finish_node(0, node);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &[Entry] {
        match &n.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_of_keys_and_values() {
        let doc = parse("a: 1\nb:\n  c: [x, 'y']\n  d: |\n    text\n").unwrap();
        let top = map(&doc);
        assert_eq!(top[0].key, "a");
        assert_eq!(top[0].key_mark, Mark { line: 1, column: 1 });
        assert_eq!(top[0].value.mark, Mark { line: 1, column: 4 });
        let b = map(&top[1].value);
        assert_eq!(b[0].key_mark, Mark { line: 3, column: 3 });
        let Value::Seq(items) = &b[0].value.value else {
            panic!()
        };
        assert_eq!(
            items[1].mark,
            Mark {
                line: 3,
                column: 10
            }
        );
        assert_eq!(
            items[1].value,
            Value::Scalar(Scalar {
                text: "y".into(),
                plain: false
            })
        );
        assert_eq!(b[1].key, "d");
    }

    #[test]
    fn mappings_start_at_their_first_key_or_brace() {
        let doc = parse("l:\n  - name: e\n    x: 1\n  - {a: 1}\n").unwrap();
        let Value::Seq(items) = &map(&doc)[0].value.value else {
            panic!()
        };
        assert_eq!(items[0].mark, Mark { line: 2, column: 5 });
        assert_eq!(items[1].mark, Mark { line: 4, column: 5 });
    }

    #[test]
    fn core_schema_resolution() {
        let k = |t: &str, plain| {
            Scalar {
                text: t.into(),
                plain,
            }
            .kind()
        };
        assert_eq!(k("", true), ScalarKind::Null);
        assert_eq!(k("~", true), ScalarKind::Null);
        assert_eq!(k("true", true), ScalarKind::Bool(true));
        assert_eq!(k("yes", true), ScalarKind::Str);
        assert_eq!(k("true", false), ScalarKind::Str);
        assert_eq!(k("60", true), ScalarKind::Int(60));
        assert_eq!(k("-3", true), ScalarKind::Int(-3));
        assert_eq!(k("0x1f", true), ScalarKind::Int(31));
        assert_eq!(k("1.5", true), ScalarKind::Float(1.5));
        assert_eq!(k("1e3", true), ScalarKind::Float(1000.0));
        assert_eq!(k("*:0/30", true), ScalarKind::Str);
        assert_eq!(k("0123456789abcdef", true), ScalarKind::Str);
        assert_eq!(k("12345G0", true), ScalarKind::Str);
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.mark.line >= 2, "{e:?}");
        let e = parse("a: 1\n b: 2\n").unwrap_err();
        assert_eq!(e.mark.line, 2, "{e:?}");
    }

    #[test]
    fn empty_document_is_null_and_second_document_is_an_error() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# only a comment\n").unwrap().is_null());
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.mark.line, 2);
    }

    #[test]
    fn aliases_and_duplicate_keys_are_kept() {
        let doc = parse("a: &x {k: v}\nb: *x\na: 2\n").unwrap();
        let top = map(&doc);
        assert_eq!(top.len(), 3);
        assert_eq!(map(&top[1].value)[0].key, "k");
        assert_eq!(top[1].value.mark.line, 2);
    }

    #[test]
    fn writes_commented_yaml_that_reads_back() {
        let mut vo = Out::map();
        vo.push("name", Out::str("fedcloud.egi.eu"), None);
        let mut p = Out::map();
        p.push("id", Out::str("0123456789"), Some("fedcloud".into()));
        vo.push("projects", Out::List(vec![p]), None);
        let mut doc = Out::map();
        doc.push("schema-version", Out::Int(2), None);
        doc.push("vos", Out::List(vec![vo]), Some("VOs\nand projects".into()));
        doc.push("schedule", Out::str("*-*-* 00/6:30:00"), None);
        doc.push("yes", Out::str("yes"), None);
        doc.push("on", Out::Bool(true), None);
        doc.push("empty", Out::List(vec![]), None);
        doc.push("odd", Out::str("a: b # c"), None);
        let text = write_yaml("Written by a test.", &doc);
        assert_eq!(
            text,
            "# Written by a test.\nschema-version: 2\n# VOs\n# and projects\nvos:\n  - name: fedcloud.egi.eu\n    projects:\n      - id: '0123456789'   # fedcloud\nschedule: '*-*-* 00/6:30:00'\n'yes': 'yes'\n'on': true\nempty: []\nodd: 'a: b # c'\n"
        );
        let back = parse(&text).unwrap();
        let top = map(&back);
        assert_eq!(top.len(), 7);
        let Value::Scalar(s) = &top[6].value.value else {
            panic!()
        };
        assert_eq!(s.text, "a: b # c");
    }

    #[test]
    fn scalars_round_trip() {
        for s in [
            "plain",
            "yes",
            "1234",
            "*:0/30",
            "# x",
            "a: b",
            "",
            "robot$sync",
            "x\ny",
        ] {
            let doc = parse(&format!("k: {}\n", scalar(s))).unwrap();
            let Value::Map(e) = &doc.value else { panic!() };
            let Value::Scalar(v) = &e[0].value.value else {
                panic!()
            };
            assert_eq!(v.text, s, "{s:?} -> {}", scalar(s));
            assert!(
                s.is_empty() || v.kind() == ScalarKind::Str || !v.plain,
                "{s:?}"
            );
        }
        assert_eq!(scalar("plain"), "plain");
    }

    #[test]
    fn chunks_keep_comments_with_the_next_key() {
        let text = "# head\na: 1\n\n# about b\nb:\n  x: 1   # c\n  # about y\n  y:\n    - 1\n\n# tail\nc: {z: 1}\n";
        let doc = parse(text).unwrap();
        let c = chunks(text, &doc).unwrap();
        assert_eq!(c[0].text, "# head\na: 1\n");
        assert_eq!(
            c[1].text,
            "# about b\nb:\n  x: 1   # c\n  # about y\n  y:\n    - 1\n"
        );
        assert!(c[1].block);
        assert_eq!(c[2].text, "# tail\nc: {z: 1}\n");
        assert!(!c[2].block);
        let Value::Map(e) = &doc.value else { panic!() };
        let inner = chunks(text, &e[1].value).unwrap();
        assert_eq!(inner[1].text, "  # about y\n  y:\n    - 1\n");
        assert!(chunks(text, &e[2].value).is_none());
    }

    #[test]
    fn renders_yaml() {
        #[derive(serde::Serialize)]
        struct S {
            a: u32,
            b: Vec<&'static str>,
        }
        assert_eq!(to_yaml(&S { a: 1, b: vec!["x"] }), "a: 1\nb:\n- x\n");
    }
}
