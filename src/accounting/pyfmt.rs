//! Formatting that reproduces what cASO's Python produces, byte for byte:
//! `str(float)`, `int(datetime.timestamp())`, `datetime.isoformat()`,
//! `json.dumps` strings (`ensure_ascii=True`) and ElementTree escaping with
//! the `us-ascii` encoding.

use chrono::{DateTime, Timelike, Utc};
use std::fmt::Write as _;

/// Python's `repr(float)` / `str(float)` (see [`crate::pyjson::float_str`]).
pub fn float_repr(x: f64) -> String {
    crate::pyjson::float_str(x)
}

/// `int(dt.timestamp())`: seconds since the epoch, truncated toward zero.
pub fn epoch(dt: &DateTime<Utc>) -> i64 {
    let secs = dt.timestamp();
    if secs < 0 && dt.timestamp_subsec_nanos() >= 1_000 {
        secs + 1
    } else {
        secs
    }
}

/// `int((b - a).total_seconds())`: whole seconds from `a` to `b`, truncated
/// toward zero (Python datetimes have microsecond resolution).
pub fn whole_seconds(a: &DateTime<Utc>, b: &DateTime<Utc>) -> i64 {
    let micros = micros_of(b) - micros_of(a);
    (micros / 1_000_000) as i64
}

fn micros_of(dt: &DateTime<Utc>) -> i128 {
    i128::from(dt.timestamp()) * 1_000_000 + i128::from(dt.timestamp_subsec_micros())
}

/// A naive `datetime.isoformat()` of a UTC time: `2023-05-25T21:59:06`, with
/// `.ffffff` only when the microseconds are not zero.
pub fn isoformat(dt: &DateTime<Utc>) -> String {
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = dt.nanosecond() % 1_000_000_000 / 1_000;
    if micros != 0 {
        let _ = write!(s, ".{micros:06}");
    }
    s
}

/// Appends `s` as a JSON string the way Python's `json.dumps` does with
/// `ensure_ascii=True`.
pub fn json_str(out: &mut String, s: &str) {
    crate::pyjson::string(out, s);
}

/// Appends element text escaped as ElementTree's `_escape_cdata`, encoded
/// as `us-ascii` with character references.
pub fn xml_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
        }
    }
}

/// Appends an attribute value escaped as ElementTree's `_escape_attrib`,
/// encoded as `us-ascii` with character references.
pub fn xml_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#09;"),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn float_repr_matches_python() {
        // Each right-hand side is Python 3.11's str(float(lhs)).
        let cases: &[(f64, &str)] = &[
            (10.5, "10.5"),
            (99.0, "99.0"),
            (1234.5678, "1234.5678"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.675, "2.675"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (0.0000123, "1.23e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (9999999.999, "9999999.999"),
            (-10.5, "-10.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(*x), *want, "{x:?}");
        }
    }

    #[test]
    fn epochs_truncate_toward_zero() {
        let t = Utc.with_ymd_and_hms(2023, 5, 25, 21, 59, 6).unwrap();
        assert_eq!(epoch(&t), 1685051946);
        let t = t + chrono::Duration::microseconds(999_999);
        assert_eq!(epoch(&t), 1685051946);
        let before = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap()
            + chrono::Duration::microseconds(500_000);
        assert_eq!(epoch(&before), 0); // int(-0.5) == 0
    }

    #[test]
    fn durations_truncate_toward_zero() {
        let a = Utc.with_ymd_and_hms(2023, 5, 1, 0, 0, 0).unwrap();
        let b = a + chrono::Duration::microseconds(2_999_999);
        assert_eq!(whole_seconds(&a, &b), 2);
        assert_eq!(whole_seconds(&b, &a), -2);
    }

    #[test]
    fn isoformat_like_python() {
        let t = Utc.with_ymd_and_hms(2023, 5, 25, 21, 59, 6).unwrap();
        assert_eq!(isoformat(&t), "2023-05-25T21:59:06");
        let t = t + chrono::Duration::microseconds(123_456);
        assert_eq!(isoformat(&t), "2023-05-25T21:59:06.123456");
        let t = t + chrono::Duration::nanoseconds(999); // below Python's resolution
        assert_eq!(isoformat(&t), "2023-05-25T21:59:06.123456");
        let t = Utc.with_ymd_and_hms(2023, 5, 25, 0, 0, 0).unwrap()
            + chrono::Duration::microseconds(10);
        assert_eq!(isoformat(&t), "2023-05-25T00:00:00.000010");
    }

    #[test]
    fn json_strings_like_python() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}é😀\u{7f}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001\u00e9\ud83d\ude00\u007f""#);
    }

    #[test]
    fn xml_escaping_like_elementtree() {
        let mut s = String::new();
        xml_text(&mut s, "o'brien & \"co\" <x> é");
        assert_eq!(s, "o'brien &amp; \"co\" &lt;x&gt; &#233;");
        let mut s = String::new();
        xml_attr(&mut s, "a\"b\n<&>\t");
        assert_eq!(s, "a&quot;b&#10;&lt;&amp;&gt;&#09;");
    }
}
