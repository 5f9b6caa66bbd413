//! Text from outside (list titles and descriptions, registry annotations,
//! server messages) made safe (pure): [`clean`] before it is stored (Glance
//! names and properties) and [`shown`] before it is printed, so that no
//! newline, escape sequence or bidirectional override from a list reaches
//! Glance or the operator's terminal.
//!
//! Unsafe characters: the C0 and C1 controls and DEL (Unicode `Cc`), and
//! the invisible formatting characters that reorder or hide text (bidi
//! marks, embeddings, overrides and isolates, zero-width joiners and
//! spaces, the BOM).

use std::borrow::Cow;

/// Whether `c` must not be stored or printed as is.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// `s` for storing: whitespace controls (tab, newline, ...) become a space,
/// the other unsafe characters are removed, and the ends are trimmed.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) && s.trim() == s {
        return Cow::Borrowed(s);
    }
    let out: String = s
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() && c.is_control() => Some(' '),
            c if unsafe_char(c) => None,
            c => Some(c),
        })
        .collect();
    Cow::Owned(out.trim().to_string())
}

/// `s` for printing: every unsafe character escaped as `\u{..}` (a
/// backslash itself stays as is), so one value is one line and changes
/// nothing on the terminal.
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` cut to at most `max` characters: when longer, the head, `…` and
/// the first 8 hex digits of the sha256 of the whole text, so two long
/// texts that differ only in their tails stay different. Deterministic.
pub fn fit(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let tag = hex::encode(&openssl::sha::sha256(s.as_bytes())[..4]);
    let keep = max.saturating_sub(tag.len() + 1);
    let head: String = s.chars().take(keep).collect();
    Cow::Owned(format!("{}…{tag}", head.trim_end()))
}

/// `s` cut to at most `max` bytes at a character boundary, like [`fit`].
pub fn fit_bytes(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let tag = hex::encode(&openssl::sha::sha256(s.as_bytes())[..4]);
    let mut end = max.saturating_sub(tag.len() + '…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…{tag}", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_shown() {
        let hostile = "Ubuntu\n22.04\x1b[2J\t\u{202e}evil\u{7f}\u{9b}31m ";
        assert_eq!(clean(hostile), "Ubuntu 22.04[2J evil31m");
        assert_eq!(clean("plain title"), "plain title");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        let s = shown(hostile);
        assert_eq!(
            s,
            "Ubuntu\\u{a}22.04\\u{1b}[2J\\u{9}\\u{202e}evil\\u{7f}\\u{9b}31m "
        );
        assert!(!s.chars().any(unsafe_char));
        assert_eq!(shown("é ok"), "é ok");
    }

    #[test]
    fn fits_keep_long_texts_apart() {
        assert_eq!(fit("short", 255), "short");
        let a = format!("{}A", "x".repeat(300));
        let b = format!("{}B", "x".repeat(300));
        let (fa, fb) = (fit(&a, 255), fit(&b, 255));
        assert_eq!(fa.chars().count(), 255);
        assert_ne!(fa, fb);
        assert_eq!(fit(&a, 255), fa, "deterministic");
        let u = "é".repeat(40_000);
        let f = fit_bytes(&u, 65_535);
        assert!(
            f.len() <= 65_535
                && f.ends_with(&*hex::encode(&openssl::sha::sha256(u.as_bytes())[..4]))
        );
    }
}
