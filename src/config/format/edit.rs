//! Layout-preserving edits of a YAML document (for `appliance migrate`).
//!
//! A site administrator's `appliance.yaml` is annotated: comments, blank
//! lines, alignment, quoting. Re-serialising it would lose all of that, so
//! [`Document`] edits the text in place at the positions the parser gives
//! (rename a key, set a scalar, insert an entry after another) and keeps,
//! beside the text edits, the tree the document must have once they are
//! applied. [`Document::finish`] applies the edits, parses the result and
//! compares it with that tree: when they agree the edited text is returned
//! ([`Layout::Kept`]); when an edit could not be made in place (a block
//! scalar, an alias, a multi-line plain scalar, ...) or the re-parsed text
//! differs, the tree is rendered afresh ([`Layout::Rewritten`], comments
//! lost, with the reason) — never a text that means something else.
//!
//! Pure: text in, text out. Paths are lists of mapping keys from the root.

use std::ops::Range;

use super::{parse, Entry, Mark, Node, Scalar, ScalarKind, SyntaxError, Value};

/// A scalar value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewScalar {
    /// A whole number.
    Int(i64),
    /// A string (quoted when YAML would read it as something else).
    Str(String),
}

/// The value of an inserted entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    /// A new scalar.
    Scalar(NewScalar),
    /// A copy of the scalar at this path, exactly as written (quotes
    /// included).
    CopyOf(Vec<String>),
}

/// Why an edit was refused (the document is left as it was for that edit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// Nothing at that path.
    #[error("`{0}` is not in the file")]
    NotFound(String),
    /// The path crosses or names something that is not a mapping entry.
    #[error("`{0}` is not a mapping")]
    NotAMapping(String),
    /// A scalar was expected.
    #[error("`{0}` is not a single value")]
    NotAScalar(String),
    /// The key to create is already there.
    #[error("`{0}` is already in the file")]
    Exists(String),
}

/// How the result was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The original text with targeted edits: comments and layout kept.
    Kept,
    /// Rendered afresh from the tree (comments lost), and why.
    Rewritten(String),
}

/// The edited text and how it was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The new text.
    pub text: String,
    /// Whether the layout was kept.
    pub layout: Layout,
}

/// A YAML document being edited.
#[derive(Debug, Clone)]
pub struct Document {
    text: String,
    /// The tree the edited text must parse to.
    tree: Node,
    edits: Vec<(Range<usize>, String)>,
    /// Why an edit could not be made in place, if one could not.
    in_place_failed: Option<String>,
    /// Where each inserted entry's text went, and its indentation.
    inserted: Vec<usize>,
    insert_indent: Vec<String>,
}

fn dotted(path: &[&str]) -> String {
    path.join(".")
}

impl Document {
    /// Parse `text`.
    pub fn parse(text: &str) -> Result<Document, SyntaxError> {
        Ok(Document {
            text: text.to_string(),
            tree: parse(text)?,
            edits: Vec::new(),
            in_place_failed: None,
            inserted: Vec::new(),
            insert_indent: Vec::new(),
        })
    }

    /// The tree as it will be after the edits made so far.
    pub fn root(&self) -> &Node {
        &self.tree
    }

    /// The node at `path`, after the edits made so far.
    pub fn get(&self, path: &[&str]) -> Option<&Node> {
        let mut node = &self.tree;
        for key in path {
            let Value::Map(entries) = &node.value else {
                return None;
            };
            node = &entries.iter().find(|e| e.key == *key)?.value;
        }
        Some(node)
    }

    /// The scalar at `path` as the core schema reads it, with its text.
    pub fn scalar(&self, path: &[&str]) -> Option<(ScalarKind, &str)> {
        match &self.get(path)?.value {
            Value::Scalar(s) => Some((s.kind(), s.text.as_str())),
            _ => None,
        }
    }

    /// The entry at `path` in the current tree, mutably, with its mapping.
    fn entry_mut(&mut self, path: &[&str]) -> Result<(&mut Vec<Entry>, usize), EditError> {
        let (last, parents) = path
            .split_last()
            .ok_or_else(|| EditError::NotAMapping(String::new()))?;
        let mut node = &mut self.tree;
        for (i, key) in parents.iter().enumerate() {
            let Value::Map(entries) = &mut node.value else {
                return Err(EditError::NotAMapping(dotted(&path[..i])));
            };
            node = &mut entries
                .iter_mut()
                .find(|e| e.key == *key)
                .ok_or_else(|| EditError::NotFound(dotted(&path[..=i])))?
                .value;
        }
        let Value::Map(entries) = &mut node.value else {
            return Err(EditError::NotAMapping(dotted(parents)));
        };
        let i = entries
            .iter()
            .position(|e| e.key == *last)
            .ok_or_else(|| EditError::NotFound(dotted(path)))?;
        Ok((entries, i))
    }

    /// Whether the mapping holding `path`'s entry is a flow mapping (`{...}`).
    fn in_flow(&self, path: &[&str]) -> bool {
        let parent = &path[..path.len().saturating_sub(1)];
        self.get(parent)
            .and_then(|n| self.offset(n.mark))
            .is_some_and(|o| self.text[o..].starts_with('{'))
    }

    /// Byte offset of a mark in the original text.
    fn offset(&self, mark: Mark) -> Option<usize> {
        if mark.line == 0 {
            return None; // inserted: not in the original text
        }
        let line_start = if mark.line <= 1 {
            0
        } else {
            self.text
                .match_indices('\n')
                .nth(mark.line - 2)
                .map(|(i, _)| i + 1)?
        };
        let line = &self.text[line_start..];
        let mut chars = line.char_indices();
        for _ in 1..mark.column {
            chars.next()?;
        }
        Some(line_start + chars.next().map_or(line.len(), |(i, _)| i))
    }

    fn cannot(&mut self, why: String) {
        self.in_place_failed.get_or_insert(why);
    }

    /// The source range of the scalar `node` (which came from the original
    /// text), when it can be edited in place.
    fn span(&self, node: &Node, flow: bool) -> Option<Range<usize>> {
        if matches!(&node.value, Value::Scalar(s) if s.plain && s.text.is_empty()) {
            return None; // an empty value has no text to point at
        }
        let start = self.offset(node.mark)?;
        scalar_span(&self.text, start, flow)
    }

    /// The scalar at `path` exactly as written (quotes included).
    pub fn source(&self, path: &[&str]) -> Option<&str> {
        let node = self.get(path)?;
        if !matches!(node.value, Value::Scalar(_)) {
            return None;
        }
        let span = self.span(node, self.in_flow(path))?;
        Some(&self.text[span])
    }

    /// Set the scalar at `path` to `value`.
    pub fn set_scalar(&mut self, path: &[&str], value: NewScalar) -> Result<(), EditError> {
        let flow = self.in_flow(path);
        let (entries, i) = self.entry_mut(path)?;
        let node = entries[i].value.clone();
        if !matches!(node.value, Value::Scalar(_)) {
            return Err(EditError::NotAScalar(dotted(path)));
        }
        let (text, scalar) = render_scalar(&value);
        entries[i].value.value = Value::Scalar(scalar);
        match self.span(&node, flow) {
            Some(span) => self.edits.push((span, text)),
            None => self.cannot(format!("`{}` is not a simple value", dotted(path))),
        }
        Ok(())
    }

    /// Rename the key of the entry at `path` to `new_key` (a plain key).
    pub fn rename_key(&mut self, path: &[&str], new_key: &str) -> Result<(), EditError> {
        let mut sibling = path.to_vec();
        *sibling.last_mut().expect("a path") = new_key;
        if self.get(&sibling).is_some() {
            return Err(EditError::Exists(dotted(&sibling)));
        }
        let flow = self.in_flow(path);
        let (entries, i) = self.entry_mut(path)?;
        let key_node = Node {
            mark: entries[i].key_mark,
            value: Value::Scalar(Scalar {
                text: entries[i].key.clone(),
                plain: true,
            }),
        };
        let value = entries[i].value.clone();
        entries[i].key = new_key.to_string();
        let Some(span) = self.span(&key_node, flow) else {
            self.cannot(format!("the key of `{}` is not simple", dotted(path)));
            return Ok(());
        };
        let grow =
            new_key.chars().count() as isize - self.text[span.clone()].chars().count() as isize;
        self.edits.push((span, new_key.to_string()));
        // Keep a trailing comment in its column when the value is a scalar
        // on the key's line and the padding allows it.
        if let (false, Value::Scalar(_)) = (flow, &value.value) {
            if let Some(pad) = self
                .span(&value, false)
                .and_then(|v| self.comment_pad(v.end))
            {
                let room = pad.len() as isize - 1;
                if grow > 0 && room > 0 {
                    let cut = grow.min(room) as usize;
                    self.edits.push((pad.start..pad.start + cut, String::new()));
                } else if grow < 0 {
                    self.edits
                        .push((pad.start..pad.start, " ".repeat((-grow) as usize)));
                }
            }
        }
        Ok(())
    }

    /// The run of blanks between `end` and a `#` comment on the same line.
    fn comment_pad(&self, end: usize) -> Option<Range<usize>> {
        let rest = &self.text[end..];
        let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        (blanks > 0 && rest[blanks..].starts_with('#')).then_some(end..end + blanks)
    }

    /// Insert `key: value` right after the entry at `after` (same mapping,
    /// same indentation), with an optional trailing `# comment`.
    pub fn insert_after(
        &mut self,
        after: &[&str],
        key: &str,
        value: NewValue,
        comment: Option<&str>,
    ) -> Result<(), EditError> {
        let mut sibling = after.to_vec();
        *sibling.last_mut().expect("a path") = key;
        if self.get(&sibling).is_some() {
            return Err(EditError::Exists(dotted(&sibling)));
        }
        let flow = self.in_flow(after);
        let (text, scalar) = match &value {
            NewValue::Scalar(s) => {
                let (text, scalar) = render_scalar(s);
                (Some(text), scalar)
            }
            NewValue::CopyOf(p) => {
                let p: Vec<&str> = p.iter().map(String::as_str).collect();
                let Some(Node {
                    value: Value::Scalar(s),
                    ..
                }) = self.get(&p)
                else {
                    return Err(EditError::NotAScalar(dotted(&p)));
                };
                let s = s.clone();
                let text = if s.plain && s.text.is_empty() {
                    Some(String::new()) // an empty value stays empty
                } else {
                    self.source(&p).map(str::to_string)
                };
                (text, s)
            }
        };
        // Inserted entries are marked on line 0, their column indexing
        // `inserted` (where their text went), so that a later insert after
        // them lands right behind them and nothing else edits them in place.
        let mark = Mark {
            line: 0,
            column: self.inserted.len() + 1,
        };
        let (entries, i) = self.entry_mut(after)?;
        let prev = entries[i].clone();
        entries.insert(
            i + 1,
            Entry {
                key: key.to_string(),
                key_mark: mark,
                value: Node {
                    mark,
                    value: Value::Scalar(scalar),
                },
            },
        );
        let Some(text) = text else {
            self.inserted.push(0);
            self.insert_indent.push(String::new());
            self.cannot(format!("`{}` is not a simple value", dotted(after)));
            return Ok(());
        };
        let indent_of = |m: Mark| " ".repeat(m.column.saturating_sub(1));
        let (at, indent) = if prev.key_mark.line == 0 {
            let at = self.inserted[prev.key_mark.column - 1];
            let indent = self.insert_indent[prev.key_mark.column - 1].clone();
            (Some(at), indent)
        } else if flow {
            (self.end_of(&prev.value, true), String::new())
        } else {
            // The start of the line after the previous entry's last line.
            // (An empty value ends where its key does.)
            let empty =
                matches!(&prev.value.value, Value::Scalar(s) if s.plain && s.text.is_empty());
            let end = if empty {
                let key = Node {
                    mark: prev.key_mark,
                    value: Value::Scalar(Scalar {
                        text: prev.key.clone(),
                        plain: true,
                    }),
                };
                self.span(&key, false).map(|s| s.end)
            } else {
                self.end_of(&prev.value, false)
            };
            let at = end.map(|end| {
                self.text[end..]
                    .find('\n')
                    .map_or(self.text.len(), |nl| end + nl + 1)
            });
            (at, indent_of(prev.key_mark))
        };
        let Some(at) = at else {
            self.inserted.push(0);
            self.insert_indent.push(String::new());
            self.cannot(format!("the end of `{}` cannot be located", dotted(after)));
            return Ok(());
        };
        self.inserted.push(at);
        self.insert_indent.push(indent.clone());
        let sep = if text.is_empty() { "" } else { " " };
        if flow {
            self.edits.push((at..at, format!(", {key}:{sep}{text}")));
            return Ok(());
        }
        let comment = comment.map(|c| format!("  # {c}")).unwrap_or_default();
        let anchored = prev.key_mark.line == 0;
        let newline = if !anchored && at == self.text.len() && !self.text.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        self.edits.push((
            at..at,
            format!("{newline}{indent}{key}:{sep}{text}{comment}\n"),
        ));
        Ok(())
    }

    /// The end of a node of the original text: the end of its last scalar.
    fn end_of(&self, node: &Node, flow: bool) -> Option<usize> {
        match &node.value {
            Value::Scalar(_) => self.span(node, flow).map(|s| s.end),
            Value::Seq(items) if items.is_empty() => None,
            Value::Map(entries) if entries.is_empty() => None,
            Value::Seq(items) => {
                let inner = self.offset(node.mark)?;
                let f = flow || self.text[inner..].starts_with('[');
                self.end_of(items.last()?, f)
                    .map(|e| if f { self.close(e, ']') } else { Some(e) })?
            }
            Value::Map(entries) => {
                let inner = self.offset(node.mark)?;
                let f = flow || self.text[inner..].starts_with('{');
                self.end_of(&entries.last()?.value, f).map(|e| {
                    if f {
                        self.close(e, '}')
                    } else {
                        Some(e)
                    }
                })?
            }
        }
    }

    /// The position after the closing bracket of a flow collection whose
    /// last item ends at `from` (blanks, a trailing comma and comments
    /// allowed in between).
    fn close(&self, from: usize, bracket: char) -> Option<usize> {
        let rest = &self.text[from..];
        let mut in_comment = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\n' => in_comment = false,
                _ if in_comment => {}
                '#' => in_comment = true,
                ' ' | '\t' | '\r' | ',' => {}
                c if c == bracket => return Some(from + i + 1),
                _ => return None,
            }
        }
        None
    }

    /// Apply the edits. The result parses to the edited tree, or is
    /// rendered from it when the in-place edit could not be made or checked.
    pub fn finish(mut self) -> Finished {
        if let Some(why) = self.in_place_failed.take() {
            return self.rewrite(why);
        }
        self.edits.sort_by_key(|(r, _)| (r.start, r.end));
        let overlap = self.edits.windows(2).any(|w| w[0].0.end > w[1].0.start);
        if overlap {
            return self.rewrite("two edits touch the same text".into());
        }
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut at = 0;
        for (range, with) in &self.edits {
            out.push_str(&self.text[at..range.start]);
            out.push_str(with);
            at = range.end;
        }
        out.push_str(&self.text[at..]);
        match parse(&out) {
            Ok(n) if same(&n, &self.tree) => Finished {
                text: out,
                layout: Layout::Kept,
            },
            Ok(_) if has_aliases(&self.text) => self.rewrite(
                "it uses YAML aliases (`*name`), one text standing for several keys".into(),
            ),
            Ok(_) => self.rewrite("the edited text would not read back as intended".into()),
            Err(e) => self.rewrite(format!("the edited text would not parse ({})", e.message)),
        }
    }

    fn rewrite(self, why: String) -> Finished {
        Finished {
            text: render(&self.tree),
            layout: Layout::Rewritten(why),
        }
    }
}

/// Whether the document uses an alias (`*name`).
fn has_aliases(text: &str) -> bool {
    struct Aliases(bool);
    impl yaml_rust2::parser::MarkedEventReceiver for Aliases {
        fn on_event(&mut self, ev: yaml_rust2::Event, _: yaml_rust2::scanner::Marker) {
            self.0 |= matches!(ev, yaml_rust2::Event::Alias(_));
        }
    }
    let mut found = Aliases(false);
    let _ = yaml_rust2::parser::Parser::new_from_str(text).load(&mut found, true);
    found.0
}

/// Whether two trees mean the same (positions and scalar style ignored;
/// scalars compared as the core schema reads them).
pub fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Scalar(x), Value::Scalar(y)) => scalar_eq(x, y),
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(a, b)| a.key == b.key && same(&a.value, &b.value))
        }
        _ => false,
    }
}

fn scalar_eq(x: &Scalar, y: &Scalar) -> bool {
    match (x.kind(), y.kind()) {
        (ScalarKind::Str, ScalarKind::Str) => x.text == y.text,
        (ScalarKind::Float(a), ScalarKind::Float(b)) => a.to_bits() == b.to_bits(),
        (a, b) => a == b,
    }
}

/// YAML text and tree scalar of a new value.
fn render_scalar(v: &NewScalar) -> (String, Scalar) {
    match v {
        NewScalar::Int(i) => (
            i.to_string(),
            Scalar {
                text: i.to_string(),
                plain: true,
            },
        ),
        NewScalar::Str(s) => {
            let plain = Scalar {
                text: s.clone(),
                plain: true,
            };
            let safe_plain = plain.kind() == ScalarKind::Str
                && !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./@+=~".contains(c))
                && !s.starts_with(['-', '~', '.', '@']);
            if safe_plain {
                (s.clone(), plain)
            } else {
                // serde_yaml quotes exactly when YAML needs it.
                let text = serde_yaml::to_string(s).unwrap_or_else(|_| format!("{s:?}\n"));
                (
                    text.trim_end_matches('\n').to_string(),
                    Scalar {
                        text: s.clone(),
                        plain: false,
                    },
                )
            }
        }
    }
}

/// The source range of a scalar starting at `start`, when it is a quoted
/// scalar or a one-line plain scalar (block scalars, anchors, tags and
/// aliases are not edited in place).
fn scalar_span(text: &str, start: usize, flow: bool) -> Option<Range<usize>> {
    let rest = &text[start..];
    let first = rest.chars().next()?;
    match first {
        '"' => {
            let mut escaped = false;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Some(start..start + i + 1),
                    _ => {}
                }
            }
            None
        }
        '\'' => {
            let b = rest.as_bytes();
            let mut i = 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(start..start + i + 1);
                }
                i += 1;
            }
            None
        }
        '|' | '>' | '&' | '!' | '*' | '\n' | '\r' => None,
        _ => {
            let b = rest.as_bytes();
            let mut end = 0;
            let mut i = 0;
            while i < b.len() {
                let c = b[i];
                let next = b.get(i + 1).copied();
                let blank_after = matches!(next, None | Some(b' ' | b'\t' | b'\n' | b'\r'));
                let stop = c == b'\n'
                    || c == b'\r'
                    || (c == b'#' && i > 0 && matches!(b[i - 1], b' ' | b'\t'))
                    || (c == b':'
                        && (blank_after || (flow && matches!(next, Some(b',' | b']' | b'}')))))
                    || (flow && matches!(c, b',' | b'[' | b']' | b'{' | b'}'));
                if stop {
                    break;
                }
                if !matches!(c, b' ' | b'\t') {
                    end = i + 1;
                }
                i += 1;
            }
            (end > 0).then_some(start..start + end)
        }
    }
}

/// Render a tree afresh (comments and layout lost).
pub fn render(node: &Node) -> String {
    let text = super::to_yaml(&to_serde(node));
    if text.trim() == "null" {
        String::new()
    } else {
        text
    }
}

fn to_serde(node: &Node) -> serde_yaml::Value {
    use serde_yaml::Value as Y;
    match &node.value {
        Value::Scalar(s) if !s.plain => Y::String(s.text.clone()),
        Value::Scalar(s) => match s.kind() {
            ScalarKind::Null => Y::Null,
            ScalarKind::Bool(b) => Y::Bool(b),
            ScalarKind::Int(i) => Y::Number(i.into()),
            ScalarKind::Float(f) => Y::Number(f.into()),
            ScalarKind::Str => Y::String(s.text.clone()),
        },
        Value::Seq(items) => Y::Sequence(items.iter().map(to_serde).collect()),
        Value::Map(entries) => Y::Mapping(
            entries
                .iter()
                .map(|e| (Y::String(e.key.clone()), to_serde(&e.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<&str> {
        s.split('.').collect()
    }

    /// The text rendered afresh (the layout could not be kept).
    fn rewritten(d: Document) -> String {
        let f = d.finish();
        assert!(matches!(f.layout, Layout::Rewritten(_)), "{f:?}");
        f.text
    }

    /// The edited text, which must have kept the layout.
    fn kept(d: Document) -> String {
        let f = d.finish();
        assert_eq!(f.layout, Layout::Kept, "{f:?}");
        f.text
    }

    #[test]
    fn rename_and_insert_keep_comments_and_alignment() {
        let src = "# top\ncomponents:\n  accounting:\n    enabled: true\n    schedule: hourly       # every hour\n  info:\n    schedule: \"*:0/30\"\n";
        let mut d = Document::parse(src).unwrap();
        let path = p("components.accounting.schedule");
        d.rename_key(&path, "extract-schedule").unwrap();
        let copy = NewValue::CopyOf(vec![
            "components".into(),
            "accounting".into(),
            "extract-schedule".into(),
        ]);
        d.insert_after(
            &p("components.accounting.extract-schedule"),
            "send-schedule",
            copy,
            Some("note"),
        )
        .unwrap();
        assert_eq!(
            kept(d),
            "# top\ncomponents:\n  accounting:\n    enabled: true\n    extract-schedule: hourly # every hour\n    send-schedule: hourly  # note\n  info:\n    schedule: \"*:0/30\"\n"
        );
    }

    #[test]
    fn comment_column_kept_when_there_is_room() {
        let src = "a:\n  schedule: hourly              # c\n";
        let mut d = Document::parse(src).unwrap();
        d.rename_key(&p("a.schedule"), "extract-schedule").unwrap();
        assert_eq!(d.finish().text, "a:\n  extract-schedule: hourly      # c\n");
    }

    #[test]
    fn flow_mappings_are_edited_in_place() {
        let src = "c:\n  accounting: {enabled: true, schedule: '*:0/15'}   # x\n";
        let mut d = Document::parse(src).unwrap();
        d.rename_key(&p("c.accounting.schedule"), "extract-schedule")
            .unwrap();
        d.insert_after(
            &p("c.accounting.extract-schedule"),
            "send-schedule",
            NewValue::CopyOf(vec![
                "c".into(),
                "accounting".into(),
                "extract-schedule".into(),
            ]),
            Some("ignored in flow"),
        )
        .unwrap();
        assert_eq!(
            kept(d),
            "c:\n  accounting: {enabled: true, extract-schedule: '*:0/15', send-schedule: '*:0/15'}   # x\n"
        );
    }

    #[test]
    fn set_scalar_and_insert_at_end_without_newline() {
        let mut d = Document::parse("schema-version: 1 # v\nx: {a: [1, 2]}").unwrap();
        d.set_scalar(&["schema-version"], NewScalar::Int(2))
            .unwrap();
        d.insert_after(
            &["x"],
            "y",
            NewValue::Scalar(NewScalar::Str("*-*-* 00:00".into())),
            None,
        )
        .unwrap();
        assert_eq!(
            kept(d),
            "schema-version: 2 # v\nx: {a: [1, 2]}\ny: '*-*-* 00:00'\n"
        );
    }

    #[test]
    fn insert_after_a_nested_block() {
        let src = "a:\n  b:\n    - 1\n    - [2, 3]  # c\n  # about d\n  d: 4\n";
        let mut d = Document::parse(src).unwrap();
        d.insert_after(&p("a.b"), "e", NewValue::Scalar(NewScalar::Int(5)), None)
            .unwrap();
        assert_eq!(
            kept(d),
            "a:\n  b:\n    - 1\n    - [2, 3]  # c\n  e: 5\n  # about d\n  d: 4\n"
        );
    }

    #[test]
    fn quoted_keys_and_values_and_unicode() {
        let src = "# Zürich — site\n\"a\": {'k''s': \"x # y\"}  # é\n";
        let mut d = Document::parse(src).unwrap();
        d.rename_key(&["a"], "b").unwrap();
        d.set_scalar(&["b", "k's"], NewScalar::Str("z".into()))
            .unwrap();
        assert_eq!(kept(d), "# Zürich — site\nb: {'k''s': z}  # é\n");
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_rewritten_with_the_same_meaning() {
        // A multi-line plain scalar: the span is only its first line, so the
        // check after editing catches the difference.
        let src = "# c\na:\n  s: one\n    two\n  t: 1\n";
        let mut d = Document::parse(src).unwrap();
        d.insert_after(
            &p("a.s"),
            "u",
            NewValue::CopyOf(vec!["a".into(), "s".into()]),
            None,
        )
        .unwrap();
        assert_eq!(rewritten(d), "a:\n  s: one two\n  u: one two\n  t: 1\n");

        // An alias: editing the anchor would change both.
        let src = "x: &a {schedule: hourly}\ny: *a\n";
        let mut d = Document::parse(src).unwrap();
        d.rename_key(&p("y.schedule"), "s2").unwrap();
        assert_eq!(rewritten(d), "x:\n  schedule: hourly\ny:\n  s2: hourly\n");

        // A block scalar.
        let mut d = Document::parse("a: |\n  text\n").unwrap();
        d.set_scalar(&["a"], NewScalar::Str("x: y".into())).unwrap();
        assert_eq!(rewritten(d), "a: 'x: y'\n");
    }

    #[test]
    fn refusals() {
        let mut d = Document::parse("a: {b: 1, c: 2}\nl: [1]\n").unwrap();
        assert_eq!(
            d.rename_key(&p("a.b"), "c"),
            Err(EditError::Exists("a.c".into()))
        );
        assert_eq!(
            d.rename_key(&p("a.z"), "q"),
            Err(EditError::NotFound("a.z".into()))
        );
        assert_eq!(
            d.set_scalar(&p("l.x"), NewScalar::Int(1)),
            Err(EditError::NotAMapping("l".into()))
        );
        assert_eq!(
            d.set_scalar(&["a"], NewScalar::Int(1)),
            Err(EditError::NotAScalar("a".into()))
        );
        assert_eq!(d.finish().text, "a: {b: 1, c: 2}\nl: [1]\n");
    }

    #[test]
    fn new_strings_are_quoted_only_when_needed() {
        for (s, want) in [
            ("hourly", "hourly"),
            ("*:0/30", "'*:0/30'"),
            ("true", "'true'"),
            ("12", "'12'"),
            ("a b", "a b"),
        ] {
            let (text, scalar) = render_scalar(&NewScalar::Str(s.into()));
            assert_eq!(text, want);
            let back = parse(&format!("k: {text}\n")).unwrap();
            let Value::Map(e) = back.value else { panic!() };
            let Value::Scalar(got) = &e[0].value.value else {
                panic!()
            };
            assert!(scalar_eq(got, &scalar), "{s}");
        }
    }
}
