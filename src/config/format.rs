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
    fn renders_yaml() {
        #[derive(serde::Serialize)]
        struct S {
            a: u32,
            b: Vec<&'static str>,
        }
        assert_eq!(to_yaml(&S { a: 1, b: vec!["x"] }), "a: 1\nb:\n- x\n");
    }
}
