//! Trust anchors of the appliance: the IGTF CA directory (`paths.ca-dir`,
//! `/etc/grid-security/certificates`) and its certificate revocation lists.
//!
//! - [`cadir`]: what the directory holds: each CA once (however many file
//!   names carry it), its OpenSSL subject hash and `<hash>.N` slot, the CRL
//!   URLs of its `.crl_url`/`.info` files, and the CRL installed for it
//!   (`<hash>.rN`), with [`cadir::Freshness`] (pure, clock passed in).
//! - [`crl`]: `appliance crl refresh`, what fetch-crl does: download each
//!   CA's CRL, check it against that CA and the clock, install it
//!   atomically; a CRL that fails any check never replaces the one in place.

pub mod cadir;
pub mod crl;

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};

/// An ASN.1 time as UTC (`None` only if OpenSSL cannot compare it).
pub fn asn1_to_utc(t: &Asn1TimeRef) -> Option<DateTime<Utc>> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    DateTime::from_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs), 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn asn1_times_convert() {
        let t = openssl::asn1::Asn1Time::from_unix(1_767_225_600).unwrap();
        assert_eq!(
            super::asn1_to_utc(&t).unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
    }
}
