//! cloud-info-provider's `openstack.rc` (spec legacy-appliance.md §2.6):
//! `export KEY=value` lines sourced by a shell (layouts A–G) or `KEY=value`
//! lines given to `docker --env-file` (H), which keeps quotes as part of
//! the value. Values may be unquoted, `"double"` or `'single'` quoted; the
//! shipped placeholders `<your project>` were unquoted in C–F, so the file
//! was not even sourceable until edited. This reads every assignment as
//! text and says how it was written; it never runs a shell. Pure.

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcEntry {
    /// Variable name.
    pub key: String,
    /// Value with one pair of surrounding quotes removed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
    /// Written with `export`.
    pub exported: bool,
    /// The value was in quotes.
    pub quoted: bool,
}

/// A line that is neither a comment nor an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcSkipped {
    /// 1-based line.
    pub line: usize,
    /// The text.
    pub text: String,
}

/// Every assignment in file order, and the lines that were not.
pub fn parse(text: &str) -> (Vec<RcEntry>, Vec<RcSkipped>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (exported, rest) = match line.strip_prefix("export") {
            Some(r) if r.starts_with([' ', '\t']) => (true, r.trim_start()),
            _ => (false, line),
        };
        let Some((key, value)) = rest.split_once('=') else {
            skipped.push(RcSkipped {
                line: i + 1,
                text: line.to_string(),
            });
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            skipped.push(RcSkipped {
                line: i + 1,
                text: line.to_string(),
            });
            continue;
        }
        let value = value.trim();
        let b = value.as_bytes();
        let quoted = b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'');
        out.push(RcEntry {
            key: key.to_string(),
            value: if quoted {
                value[1..value.len() - 1].to_string()
            } else {
                value.to_string()
            },
            line: i + 1,
            exported,
            quoted,
        });
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        let (e, s) = parse(
            "\n# c\nexport OS_AUTH_URL=https://k:5000/v2.0\nexport OS_PROJECT_NAME=<your project>\nOS_USERNAME=\"cloud-info\"\nOS_PASSWORD='p w'\nnot a line\n",
        );
        let kv: Vec<(&str, &str, bool, bool)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.exported, e.quoted))
            .collect();
        assert_eq!(
            kv,
            [
                ("OS_AUTH_URL", "https://k:5000/v2.0", true, false),
                ("OS_PROJECT_NAME", "<your project>", true, false),
                ("OS_USERNAME", "cloud-info", false, true),
                ("OS_PASSWORD", "p w", false, true),
            ]
        );
        assert_eq!(e[0].line, 3);
        assert_eq!(s[0].line, 7);
    }
}
