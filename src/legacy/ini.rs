//! INI files of the legacy appliance, in the two dialects it used:
//!
//! - [`Dialect::Python`]: Python `ConfigParser` as ssmsend reads
//!   `sender.cfg` and `logging.cfg` (`key: value` or `key = value`, keys
//!   case-insensitive, full-line `#`/`;` comments, indented continuation
//!   lines, no inline comments, values kept as written);
//! - [`Dialect::Oslo`]: oslo.config's parser as cASO, cloudkeeper-os and
//!   atrope read their `.conf` files (the same, but keys keep their case
//!   and a value in matching quotes loses them).
//!
//! [`Mode::Strict`] fails where Python fails. [`Mode::Tolerant`] reads the
//! whitespace-damaged files some releases shipped (section headers and
//! comments indented by a space, trailing tabs: spec legacy-appliance.md
//! §2.4, §8.5), which Python's parser rejects (`MissingSectionHeaderError`)
//! or mis-reads, and records every line it had to be lenient about in
//! [`Ini::tolerated`], so the caller can say so. Pure: no I/O.

/// How much the parser forgives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fail where Python's parser fails.
    Strict,
    /// Read damaged files, noting each leniency.
    Tolerant,
}

/// Which parser's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Python `ConfigParser` (ssmsend).
    Python,
    /// oslo.config (cASO, cloudkeeper-os, atrope).
    Oslo,
}

/// One `key = value` with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// Section name (`DEFAULT` for oslo keys before any header).
    pub section: String,
    /// Key (lower-cased in the Python dialect).
    pub key: String,
    /// Value, trimmed; continuation lines joined with `\n`.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// A line the tolerant parser read although Python would not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tolerated {
    /// 1-based line.
    pub line: usize,
    /// What was wrong with it and how it was read.
    pub what: String,
}

/// A parsed file: every entry in file order (a key set twice appears
/// twice; [`Ini::get`] answers the last, as both parsers do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// Entries in file order.
    pub entries: Vec<IniEntry>,
    /// Lines read leniently ([`Mode::Tolerant`] only).
    pub tolerated: Vec<Tolerated>,
}

/// Why a file could not be read, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Ini {
    /// The last value of `key` in `section` (keys compared as the dialect
    /// stored them), empty values included.
    pub fn get(&self, section: &str, key: &str) -> Option<&IniEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.section == section && e.key == key)
    }
}

fn is_comment(s: &str) -> bool {
    s.starts_with('#') || s.starts_with(';')
}

/// Parse `text` under `dialect` and `mode`.
pub fn parse(text: &str, dialect: Dialect, mode: Mode) -> Result<Ini, IniError> {
    let err = |line: usize, message: String| IniError { line, message };
    let tolerant = mode == Mode::Tolerant;
    let mut ini = Ini::default();
    // oslo.config puts keys before any header into DEFAULT; Python refuses.
    let mut section: Option<String> = (dialect == Dialect::Oslo).then(|| "DEFAULT".to_string());
    let mut last: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            last = None;
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if is_comment(trimmed) {
            if indented && tolerant {
                ini.tolerated.push(Tolerated {
                    line: n,
                    what: "indented comment: read as a comment".into(),
                });
            }
            continue;
        }
        if indented {
            if tolerant && trimmed.starts_with('[') {
                // An indented section header: MissingSectionHeaderError (or a
                // continuation line) for Python.
                ini.tolerated.push(Tolerated {
                    line: n,
                    what: format!(
                        "section header `{}` is indented: Python's parser rejects it; read as a header",
                        trimmed.trim_end_matches([' ', '\t'])
                    ),
                });
            } else if let Some(k) = last {
                // continuation of the previous value
                let v = &mut ini.entries[k].value;
                v.push('\n');
                v.push_str(trimmed);
                continue;
            } else if tolerant {
                ini.tolerated.push(Tolerated {
                    line: n,
                    what: "indented line without a key before it: read as a `key: value` line"
                        .into(),
                });
            } else {
                return Err(err(n, "indented line without a key before it".into()));
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| {
                err(
                    n,
                    format!("section header `{trimmed}` lacks its closing `]`"),
                )
            })?;
            section = Some(name.trim().to_string());
            last = None;
            continue;
        }
        let cut = trimmed
            .find([':', '='])
            .ok_or_else(|| err(n, "expected `key: value`".into()))?;
        let key = trimmed[..cut].trim();
        let key = match dialect {
            Dialect::Python => key.to_ascii_lowercase(),
            Dialect::Oslo => key.to_string(),
        };
        let mut value = trimmed[cut + 1..].trim().to_string();
        if dialect == Dialect::Oslo && value.len() >= 2 {
            let b = value.as_bytes();
            if b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
                value = value[1..value.len() - 1].to_string();
            }
        }
        let sec = section
            .clone()
            .ok_or_else(|| err(n, "a key before the first `[section]`".into()))?;
        ini.entries.push(IniEntry {
            section: sec,
            key,
            value,
            line: n,
        });
        last = Some(ini.entries.len() - 1);
    }
    Ok(ini)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first lines of `VMI@4efdb14:…/files/sender.cfg` (S2), tabs and
    /// leading blanks as shipped.
    const S2_HEAD: &str = "################################################################################\t\n# Required: broker configuration options\t\n#\t\n\n [broker]\t\n # The SSM will query a BDII to find brokers available.  These details are for the\t\n# EGI production broker network\t\nbdii: ldap://lcg-bdii.cern.ch:2170\t\nnetwork: PROD\t\n";

    #[test]
    fn strict_rejects_the_damaged_sender_cfg_where_python_does() {
        let e = parse(S2_HEAD, Dialect::Python, Mode::Strict).unwrap_err();
        assert_eq!(e.line, 5, "{e:?}");
    }

    #[test]
    fn tolerant_reads_it_and_says_where() {
        let ini = parse(S2_HEAD, Dialect::Python, Mode::Tolerant).unwrap();
        let bdii = ini.get("broker", "bdii").unwrap();
        assert_eq!(
            (bdii.value.as_str(), bdii.line),
            ("ldap://lcg-bdii.cern.ch:2170", 8)
        );
        assert_eq!(ini.get("broker", "network").unwrap().value, "PROD");
        let lines: Vec<usize> = ini.tolerated.iter().map(|t| t.line).collect();
        assert_eq!(lines, [5, 6], "{:?}", ini.tolerated);
        assert!(ini.tolerated[0].what.contains("[broker]"));
    }

    #[test]
    fn oslo_dialect_defaults_keeps_case_and_strips_quotes() {
        let ini = parse(
            "site_name = X\n[keystone_auth]\nPassword = \"p w\"\nauth_url=https://k/v3\n  continued\n# c\n",
            Dialect::Oslo,
            Mode::Strict,
        )
        .unwrap();
        assert_eq!(ini.get("DEFAULT", "site_name").unwrap().value, "X");
        assert_eq!(ini.get("keystone_auth", "Password").unwrap().value, "p w");
        assert_eq!(
            ini.get("keystone_auth", "auth_url").unwrap().value,
            "https://k/v3\ncontinued"
        );
    }

    #[test]
    fn last_value_wins() {
        let ini = parse("[a]\nk: 1\nk: 2\n", Dialect::Python, Mode::Strict).unwrap();
        assert_eq!(ini.entries.len(), 2);
        assert_eq!(ini.get("a", "k").unwrap().value, "2");
    }
}
