//! VO names as the records carry them.
//!
//! A VO name reaches APEL as the `FQAN` of cloud, public IP and accelerator
//! records and as the StAR `Group` of storage records (cASO sends the VO
//! string verbatim as `FQAN`, spec `accounting.md` §1.3). Free-text record
//! values are sanitised at render time ([`super::sanitize::apel_text`]), but a
//! VO name is an identity: a sanitised VO is another VO in the APEL database.
//! So, like the site values ([`super::Site`]), VO names are validated, not
//! fixed up: [`check_vo_name`] says why a name cannot be carried, and every
//! place a VO name comes from (the configuration, the catch-all site file,
//! the Keystone project property, a cASO `voms.json`, the legacy import)
//! checks it with this one function.
//!
//! What the record formats cannot carry unchanged (spec §4.7 and APEL's
//! `parse_fqan`):
//! * anything outside printable ASCII: `ssmsend` decodes messages as ASCII
//!   and aborts on anything else, so the renderer drops such characters;
//! * white space and control characters: APEL strips values and a line
//!   break ends the `Key: value` line;
//! * `%`: APEL splits a cloud message at `%%` anywhere, so the renderer
//!   collapses runs of `%`;
//! * `/`: APEL reads a value starting with `/` as an FQAN
//!   (`/vo/group/Role=..`) and stores only its first element as the VO;
//! * `;`: it separates FQANs, and APEL keeps what comes before the first;
//! * more than 255 bytes: APEL's `VARCHAR(255)` columns.
//!
//! Beyond those, a VO name is a VOMS VO name, DNS-style: letters, digits,
//! `.`, `-` and `_`. Anything else (`:`, `=`, `,`, quotes, `@`, ...) is
//! refused too: no registered VO has one, and the same name is also a key
//! of the secrets file, part of GLUE share IDs and a Glance property value,
//! so a VO name must mean the same thing in every one of them.

use super::sanitize::MAX_FIELD_LEN;

/// Why a VO name cannot be carried by the records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a VO name APEL records can carry: {reason}", name.escape_debug())]
pub struct InvalidVoName {
    /// The rejected name (as given; the message escapes it).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What a VO name may be made of, for hints.
pub const VO_NAME_RULE: &str =
    "use the VO's registered name (letters, digits, `.`, `-`, `_`), e.g. `vo.access.egi.eu`";

/// `Ok` when `name` reaches APEL unchanged and means the same VO there;
/// else why not (see the module docs).
pub fn check_vo_name(name: &str) -> Result<(), InvalidVoName> {
    let reason = reason(name);
    match reason {
        None => Ok(()),
        Some(reason) => Err(InvalidVoName {
            name: name.to_string(),
            reason,
        }),
    }
}

fn reason(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Some(char_reason(c));
    }
    if name.len() > MAX_FIELD_LEN {
        return Some(format!(
            "it is {} characters long; APEL stores at most {MAX_FIELD_LEN}",
            name.len()
        ));
    }
    None
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

fn char_reason(c: char) -> String {
    match c {
        c if !c.is_ascii() => format!(
            "`{c}` is not ASCII; ssmsend sends ASCII only, so the records would carry the name without it"
        ),
        c if c.is_ascii_whitespace() || c.is_ascii_control() => format!(
            "`{}` is white space or a control character; APEL strips values and a line break ends a record line",
            c.escape_debug()
        ),
        '%' => "`%` cannot be carried: APEL splits cloud messages at `%%`".into(),
        '/' => "`/` makes APEL read the value as an FQAN (`/vo/group/Role=..`) and keep only its first part as the VO".into(),
        ';' => "`;` separates FQANs and APEL keeps only what comes before it".into(),
        c => format!("`{c}` is not part of a VO name (VO names are DNS-style)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_pass() {
        for n in [
            "ops",
            "dteam",
            "vo.access.egi.eu",
            "fedcloud.egi.eu",
            "covid19.eosc-synergy.eu",
            "vo.cta.in2p3.fr",
            "mathematical-software",
            "vo_test.Example",
        ] {
            assert_eq!(check_vo_name(n), Ok(()), "{n}");
        }
        assert_eq!(check_vo_name(&"v".repeat(255)), Ok(()));
    }

    #[test]
    fn what_apel_cannot_carry_is_refused_with_the_reason() {
        let why = |n: &str| check_vo_name(n).unwrap_err().reason;
        assert!(why("vo%x").contains("%%"), "{}", why("vo%x"));
        assert!(why("vö.example").contains("not ASCII"));
        assert!(why("vo:x").starts_with("`:` is not part of a VO name"));
        assert!(why("/vo.example/Role=x").contains("FQAN"));
        assert!(why("a;b").contains("separates FQANs"));
        assert!(why("a b").contains("white space"));
        assert!(why("a\nb").contains("control character"));
        assert!(why("").contains("empty"));
        assert!(why(&"v".repeat(256)).contains("at most 255"));
        for n in ["a=b", "a,b", "a@b", "a\"b", "a'b", "a*b"] {
            assert!(check_vo_name(n).is_err(), "{n}");
        }
        let e = check_vo_name("vo:x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`vo:x` is not a VO name APEL records can carry: `:` is not part of a VO name (VO names are DNS-style)"
        );
        assert!(check_vo_name("a\u{1b}[31mb")
            .unwrap_err()
            .to_string()
            .starts_with("`a\\u{1b}[31mb` is not"));
    }

    #[test]
    fn every_accepted_name_renders_unchanged() {
        for n in ["ops", "vo.access.egi.eu", "a-b_c.D9"] {
            assert!(check_vo_name(n).is_ok());
            assert_eq!(super::super::sanitize::apel_text(n, MAX_FIELD_LEN), n);
        }
    }
}
