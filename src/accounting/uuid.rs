//! UUIDs as cASO's records hold them (`uuid.UUID`, rendered lower-case and
//! hyphenated whatever form OpenStack returned).

use super::AccountingError;
use std::fmt;

/// A 128-bit UUID; `Display` is the canonical `8-4-4-4-12` lower-case form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// Parses the forms pydantic accepts for a `uuid.UUID` field: hyphenated
    /// (`8-4-4-4-12`), 32 hex digits, `{...}`-braced or `urn:uuid:`-prefixed;
    /// hex digits in either case. `field` names the record field in errors.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, AccountingError> {
        let bad = || AccountingError::InvalidUuid {
            field,
            value: s.to_string(),
        };
        let inner = if let Some(rest) = s.strip_prefix("urn:uuid:") {
            rest
        } else if let Some(rest) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            rest
        } else {
            s
        };
        let hex: String = match inner.len() {
            32 => inner.to_string(),
            36 => {
                let b = inner.as_bytes();
                if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                    return Err(bad());
                }
                inner.chars().filter(|c| *c != '-').collect()
            }
            _ => return Err(bad()),
        };
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }

    /// The UUID with these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A version-4 (random) UUID from 16 random bytes supplied by the caller
    /// (the domain draws no randomness itself), like cASO's `uuid.uuid4()`
    /// for IP records.
    pub fn new_v4(mut random: [u8; 16]) -> Self {
        random[6] = (random[6] & 0x0f) | 0x40;
        random[8] = (random[8] & 0x3f) | 0x80;
        Self(random)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_accepted_forms_render_canonically() {
        let want = "6e5b7a2d-ac8f-4d30-b1b6-7f2c9d0e1f06";
        for s in [
            want,
            "6E5B7A2D-AC8F-4D30-B1B6-7F2C9D0E1F06",
            "6e5b7a2dac8f4d30b1b67f2c9d0e1f06",
            "{6e5b7a2d-ac8f-4d30-b1b6-7f2c9d0e1f06}",
            "urn:uuid:6e5b7a2d-ac8f-4d30-b1b6-7f2c9d0e1f06",
        ] {
            assert_eq!(Uuid::parse("VMUUID", s).unwrap().to_string(), want, "{s}");
        }
    }

    #[test]
    fn rejects_non_uuids() {
        for s in [
            "",
            "vm-1",
            "6e5b7a2d-ac8f-4d30-b1b6-7f2c9d0e1f0",
            "6e5b7a2dac8f-4d30-b1b6-7f2c9d0e1f06-",
            "6e5b7a2d-ac8f-4d30-b1b6-7f2c9d0e1fg6",
            "+e5b7a2dac8f4d30b1b67f2c9d0e1f06",
        ] {
            let err = Uuid::parse("VMUUID", s).unwrap_err();
            assert_eq!(
                err,
                AccountingError::InvalidUuid {
                    field: "VMUUID",
                    value: s.into()
                }
            );
        }
    }

    #[test]
    fn v4_sets_version_and_variant() {
        let u = Uuid::new_v4([0xff; 16]).to_string();
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let u = Uuid::new_v4([0; 16]).to_string();
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
    }
}
