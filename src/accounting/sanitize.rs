//! Making free-text values safe for every APEL message type.
//!
//! Every string that goes into a record (VM names, user and group ids, user
//! names, VOs, image ids, benchmark names, accelerator types and models) is
//! passed through [`apel_text`] by the renderers, so no caller can forget it.
//! The rules, in order:
//!
//! 1. **Non-ASCII characters are dropped.** `ssmsend` decodes each message as
//!    ASCII and aborts the whole run on anything else (spec accounting.md
//!    §4.3), so nothing outside ASCII may reach the spool. Dropping is exactly
//!    what cASO does for `MachineName`, `LocalUserId` and `GlobalUserName`
//!    (`nova.py`: `.encode("ascii", errors="ignore")`), so a site moving from
//!    cASO keeps identical values in the APEL database, and the same user name
//!    is spelled the same way in cloud, IP, accelerator and storage records
//!    (cASO's Cinder path would instead emit XML character references, and its
//!    other fields would crash `ssmsend`). Transliteration was rejected: it
//!    would change every existing accented name relative to cASO.
//! 2. **ASCII control characters become a space** (CR/LF would end the
//!    `Key: value` line and start a bogus field; the rest are invalid in XML).
//! 3. **Runs of `%` collapse to one `%`.** APEL's loader splits a cloud
//!    message on the substring `%%` anywhere (§4.7); a VM called `a%%b` would
//!    otherwise split its record in two and reject the whole message.
//! 4. **Truncation** to the APEL column width (§4.7, `schemas/cloud.sql`):
//!    [`MAX_FIELD_LEN`] (255) for strings, [`MAX_BENCHMARK_TYPE_LEN`] (50) for
//!    `BenchmarkType`. MySQL would otherwise reject (strict mode) or truncate.
//!
//! A value may become empty (a name in Japanese script): cASO renders that as
//! `MachineName: ` too, which APEL stores as NULL.
//! `scripts/golden/accounting.py` mirrors these rules in Python.

use std::borrow::Cow;

/// APEL's `VARCHAR(255)` columns: every string field but `BenchmarkType`.
pub const MAX_FIELD_LEN: usize = 255;
/// APEL's `BenchmarkType VARCHAR(50)` (cloud and accelerator tables).
pub const MAX_BENCHMARK_TYPE_LEN: usize = 50;

/// `raw` made safe for any APEL message, at most `max_len` bytes (see the
/// module docs for the rules). Borrows when nothing had to change.
pub fn apel_text(raw: &str, max_len: usize) -> Cow<'_, str> {
    if is_apel_safe(raw) && raw.len() <= max_len {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len().min(max_len));
    for c in raw.chars() {
        if !c.is_ascii() {
            continue;
        }
        let c = if c.is_ascii_control() { ' ' } else { c };
        if c == '%' && out.ends_with('%') {
            continue;
        }
        out.push(c);
    }
    out.truncate(max_len); // ASCII only: every index is a char boundary
    Cow::Owned(out)
}

/// Whether `s` passes [`apel_text`] unchanged apart from truncation:
/// printable ASCII only and no `%%`.
pub fn is_apel_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b)) && !s.contains("%%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_values_are_borrowed() {
        assert!(matches!(
            apel_text("VM Name 1", 255),
            Cow::Borrowed("VM Name 1")
        ));
    }

    #[test]
    fn non_ascii_is_dropped_like_caso() {
        assert_eq!(apel_text("Café ☕ übung", 255), "Caf  bung");
        assert_eq!(apel_text("日本語", 255), "");
        assert_eq!(apel_text("jörg.müller@egi.eu", 255), "jrg.mller@egi.eu");
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(apel_text("a\r\nb\tc\u{7f}d\0e", 255), "a  b c d e");
    }

    #[test]
    fn percent_runs_collapse() {
        assert_eq!(apel_text("load %% test %%% x", 255), "load % test % x");
        assert_eq!(apel_text("50% done", 255), "50% done");
        // a run that only forms once a non-ASCII char between is dropped
        assert_eq!(apel_text("%é%", 255), "%");
        assert_eq!(apel_text("%%%%", 255), "%");
    }

    #[test]
    fn truncation_to_the_column_width() {
        let long = "x".repeat(300);
        assert_eq!(apel_text(&long, MAX_FIELD_LEN).len(), 255);
        assert_eq!(apel_text(&long, MAX_BENCHMARK_TYPE_LEN).len(), 50);
        // width counts the sanitised value, not the raw one
        let accented = "é".repeat(300) + "ok";
        assert_eq!(apel_text(&accented, 255), "ok");
    }

    #[test]
    fn never_produces_unsafe_output() {
        for raw in ["%\u{e9}%\n%", "%%\u{0}%%", "\u{1F600}%%%\r\n", "%"] {
            let s = apel_text(raw, 255);
            assert!(is_apel_safe(&s), "{raw:?} -> {s:?}");
        }
    }
}
