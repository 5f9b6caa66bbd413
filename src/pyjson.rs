//! JSON text exactly as Python's `json.dumps` writes it: the one
//! compatibility boundary for every byte Python peers parse or compare
//! (cloud-info-provider's document, atrope's `APPLIANCE_ATTRIBUTES`,
//! cASO's IP and accelerator records, ssmsend's AMS publish body).
//!
//! Rules reproduced (CPython `json.encoder`): separators `", "` and `": "`
//! (or `","` + newline + indent with `indent=N`), `ensure_ascii=True` (every
//! character outside `' '..='~'` becomes `\uXXXX`, UTF-16 surrogate pairs
//! above U+FFFF; `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` keep their short
//! forms), object keys in insertion order (the value must come from
//! `serde_json` with `preserve_order`), floats as `float.__repr__`, empty
//! containers as `[]` / `{}` even when indenting.

use std::fmt::Write as _;

use serde_json::Value;

/// `json.dumps(v)`: one line.
pub fn dumps(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, None, 0);
    out
}

/// `json.dumps(v, indent=indent)`.
pub fn dumps_indent(v: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_value(&mut out, v, Some(indent), 0);
    out
}

fn newline(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        for _ in 0..n * level {
            out.push(' ');
        }
    }
}

fn write_value(out: &mut String, v: &Value, indent: Option<usize>, level: usize) {
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                out.push_str(&float_repr(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, indent, level + 1);
                write_value(out, item, indent, level + 1);
            }
            newline(out, indent, level);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, indent, level + 1);
                string(out, k);
                out.push_str(": ");
                write_value(out, item, indent, level + 1);
            }
            newline(out, indent, level);
            out.push('}');
        }
    }
}

/// A JSON string with `ensure_ascii=True`.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A float as `json.dumps` writes it: Python's `float.__repr__` for finite
/// values ([`float_str`]); `NaN`, `Infinity`, `-Infinity` otherwise.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    float_str(x)
}

/// Python's `str(float)` / `repr(float)`: the shortest round-trip digits,
/// fixed notation for `1e-4 <= |x| < 1e16`, else `1e+16` / `1.5e-05`;
/// `nan`, `inf`, `-inf`.
pub fn float_str(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let n = digits.len() as i32;
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn separators_order_and_escaping() {
        let v: Value = serde_json::from_str(
            r#"{"b": 1, "a": [true, null, "x\"\\\n\u00e9\ud83d\ude00\u007f"], "e": {}, "l": []}"#,
        )
        .unwrap();
        assert_eq!(
            dumps(&v),
            r#"{"b": 1, "a": [true, null, "x\"\\\n\u00e9\ud83d\ude00\u007f"], "e": {}, "l": []}"#
        );
    }

    #[test]
    fn indent_like_python() {
        let v = json!({"a": [1, 2], "b": {}, "c": {"d": "e"}});
        // python3 -c 'import json; print(json.dumps({"a": [1, 2], "b": {}, "c": {"d": "e"}}, indent=2))'
        assert_eq!(
            dumps_indent(&v, 2),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": {\n    \"d\": \"e\"\n  }\n}"
        );
    }

    #[test]
    fn floats_like_python() {
        for (x, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(float_repr(x), s);
        }
        assert_eq!(
            dumps(&json!([1.5, -3, 18446744073709551615u64])),
            "[1.5, -3, 18446744073709551615]"
        );
    }
}
