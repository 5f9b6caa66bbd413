//! Trust and freshness policy for a verified list (pure; the clock is passed
//! in): signer == the list's `hv:endorser` == the configured endorser,
//! `dc:identifier` unchanged since the last good list, `hv:version` not going
//! backwards, the list not expired (`dc:date:expires`) nor from the future,
//! and which images are wanted (subscription filter, per-image expiry).
//! Spec image-sync §2.2 (vmcatcher's checks 12, 17, 31, 33, 34) and §7.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::list::{ImageList, ListImage};
use super::smime::Signer;

/// The endorser a subscription trusts (DN and CA, OpenSSL compat form,
/// compared exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorser {
    /// Signer subject.
    pub dn: String,
    /// Signer issuer.
    pub ca: String,
}

/// What is remembered of the last list that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastGood {
    /// `dc:identifier`.
    pub identifier: String,
    /// `hv:version`.
    pub version: String,
    /// sha512 of the whole signed message.
    pub message_sha512: String,
    /// `dc:date:expires`.
    pub expires: DateTime<Utc>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// Why a list is rejected (nothing in Glance changes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The signer is not the endorser the list names.
    #[error("the list says it is endorsed by {list_dn} (CA {list_ca}) but is signed by {signer_dn} (CA {signer_ca})")]
    SignerMismatch {
        /// `hv:endorser.hv:x509.hv:dn`.
        list_dn: String,
        /// `hv:endorser.hv:x509.hv:ca`.
        list_ca: String,
        /// Signer subject.
        signer_dn: String,
        /// Signer issuer.
        signer_ca: String,
    },
    /// The list's endorser is not the configured one.
    #[error("the list is endorsed by {list_dn} (CA {list_ca}), but the subscription trusts {want_dn} (CA {want_ca})")]
    EndorserMismatch {
        /// The list's endorser DN.
        list_dn: String,
        /// The list's endorser CA.
        list_ca: String,
        /// Configured DN.
        want_dn: String,
        /// Configured CA.
        want_ca: String,
    },
    /// `dc:identifier` changed since the last good list.
    #[error("the list's dc:identifier changed from {was} to {now}")]
    IdentifierChanged {
        /// Last good.
        was: String,
        /// This one.
        now: String,
    },
    /// `hv:version` went backwards (a replayed old list).
    #[error("the list's hv:version went backwards, from {was} to {now} (an old list replayed?)")]
    VersionBackwards {
        /// Last good.
        was: String,
        /// This one.
        now: String,
    },
    /// Created in the future.
    #[error("the list was created in the future ({created})")]
    FromTheFuture {
        /// `dc:date:created`.
        created: DateTime<Utc>,
    },
}

impl PolicyError {
    /// What the operator can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            PolicyError::SignerMismatch { .. } => "the list was not signed by its endorser: nothing was changed; report it to the list's publisher",
            PolicyError::EndorserMismatch { .. } => "if the new endorser is legitimate, update the subscription's endorser dn/ca",
            PolicyError::IdentifierChanged { .. } => "the URL now serves another list; if intended, delete the list's state file to accept it",
            PolicyError::VersionBackwards { .. } => "an older list was served (replay or a stale mirror); it is ignored until a newer one appears",
            PolicyError::FromTheFuture { .. } => "check this machine's clock (NTP)",
        }
    }
}

/// Freshness of an accepted list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Current.
    Current,
    /// Past `dc:date:expires`.
    Expired,
}

/// Check an authentic list against the subscription and the last good list.
pub fn check_list(
    list: &ImageList,
    signer: &Signer,
    trusted: &Endorser,
    last: Option<&LastGood>,
    now: DateTime<Utc>,
) -> Result<Freshness, PolicyError> {
    if signer.dn != list.endorser.dn || signer.ca != list.endorser.ca {
        return Err(PolicyError::SignerMismatch {
            list_dn: list.endorser.dn.clone(),
            list_ca: list.endorser.ca.clone(),
            signer_dn: signer.dn.clone(),
            signer_ca: signer.ca.clone(),
        });
    }
    if list.endorser.dn != trusted.dn || list.endorser.ca != trusted.ca {
        return Err(PolicyError::EndorserMismatch {
            list_dn: list.endorser.dn.clone(),
            list_ca: list.endorser.ca.clone(),
            want_dn: trusted.dn.clone(),
            want_ca: trusted.ca.clone(),
        });
    }
    if let Some(last) = last {
        if last.identifier != list.identifier {
            return Err(PolicyError::IdentifierChanged {
                was: last.identifier.clone(),
                now: list.identifier.clone(),
            });
        }
        if compare_versions(&list.version, &last.version) == Ordering::Less {
            return Err(PolicyError::VersionBackwards {
                was: last.version.clone(),
                now: list.version.clone(),
            });
        }
    }
    // A few minutes of clock skew are tolerated.
    if list.created > now + chrono::Duration::minutes(10) {
        return Err(PolicyError::FromTheFuture {
            created: list.created,
        });
    }
    Ok(if list.expires <= now {
        Freshness::Expired
    } else {
        Freshness::Current
    })
}

/// Compare versions as vmcatcher's `split_numeric_sort`: runs of digits
/// numerically, other runs as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<Result<u128, &str>> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let digit = bytes[i].is_ascii_digit();
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() == digit {
                i += 1;
            }
            let run = &s[start..i];
            out.push(if digit {
                run.parse::<u128>().map_err(|_| run)
            } else {
                Err(run)
            });
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(x), Err(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Why an image of an accepted list is not wanted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unwanted {
    /// Not in the subscription's `images` filter.
    NotSubscribed,
    /// Past its own `dc:date:expires`.
    Expired,
}

/// Whether `image` is wanted: in the filter (empty = all) and not expired.
pub fn image_wanted(
    image: &ListImage,
    filter: &[String],
    now: DateTime<Utc>,
) -> Result<(), Unwanted> {
    if !filter.is_empty() && !filter.iter().any(|f| f == image.identifier.as_str()) {
        return Err(Unwanted::NotSubscribed);
    }
    match image.expires {
        Some(e) if e <= now => Err(Unwanted::Expired),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ImageList {
        let text = serde_json::json!({"hv:imagelist": {
            "dc:date:created": "2026-01-01T00:00:00Z", "dc:date:expires": "2026-06-01T00:00:00Z",
            "dc:description": "d", "dc:identifier": "L1", "dc:source": "s", "dc:title": "t",
            "hv:endorser": {"hv:x509": {"dc:creator": "c", "hv:ca": "/CN=CA", "hv:dn": "/CN=E", "hv:email": "e"}},
            "hv:images": [], "hv:uri": "u", "hv:version": "20260101000000"}});
        super::super::list::parse(text.to_string().as_bytes()).unwrap()
    }
    fn signer(dn: &str, ca: &str) -> Signer {
        Signer {
            dn: dn.into(),
            ca: ca.into(),
            serial: "1".into(),
            not_after: String::new(),
        }
    }
    fn t(s: &str) -> DateTime<Utc> {
        super::super::list::parse_date(s).unwrap()
    }
    fn endorser() -> Endorser {
        Endorser {
            dn: "/CN=E".into(),
            ca: "/CN=CA".into(),
        }
    }

    #[test]
    fn endorser_chain_of_equalities() {
        let now = t("2026-02-01T00:00:00Z");
        let l = list();
        assert_eq!(
            check_list(&l, &signer("/CN=E", "/CN=CA"), &endorser(), None, now),
            Ok(Freshness::Current)
        );
        assert!(matches!(
            check_list(&l, &signer("/CN=X", "/CN=CA"), &endorser(), None, now),
            Err(PolicyError::SignerMismatch { .. })
        ));
        let other = Endorser {
            dn: "/CN=Other".into(),
            ca: "/CN=CA".into(),
        };
        assert!(matches!(
            check_list(&l, &signer("/CN=E", "/CN=CA"), &other, None, now),
            Err(PolicyError::EndorserMismatch { .. })
        ));
        assert_eq!(
            check_list(
                &l,
                &signer("/CN=E", "/CN=CA"),
                &endorser(),
                None,
                t("2026-07-01T00:00:00Z")
            ),
            Ok(Freshness::Expired)
        );
        assert!(matches!(
            check_list(
                &l,
                &signer("/CN=E", "/CN=CA"),
                &endorser(),
                None,
                t("2025-07-01T00:00:00Z")
            ),
            Err(PolicyError::FromTheFuture { .. })
        ));
    }

    #[test]
    fn identity_and_version_against_last_good() {
        let now = t("2026-02-01T00:00:00Z");
        let l = list();
        let mut last = LastGood {
            identifier: "L1".into(),
            version: "20250101000000".into(),
            message_sha512: String::new(),
            expires: now,
            fetched_at: now,
        };
        let s = signer("/CN=E", "/CN=CA");
        assert!(check_list(&l, &s, &endorser(), Some(&last), now).is_ok());
        last.version = "20270101000000".into();
        assert!(matches!(
            check_list(&l, &s, &endorser(), Some(&last), now),
            Err(PolicyError::VersionBackwards { .. })
        ));
        last.version = l.version.clone();
        last.identifier = "L0".into();
        assert!(matches!(
            check_list(&l, &s, &endorser(), Some(&last), now),
            Err(PolicyError::IdentifierChanged { .. })
        ));
    }

    #[test]
    fn version_order() {
        use Ordering::*;
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("3.3.0-1", "3.3.0-1"), Equal);
        assert_eq!(compare_versions("3.3.0-2", "3.3.0-10"), Less);
        assert_eq!(compare_versions("20150618211400", "20150618211401"), Less);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
    }
}
