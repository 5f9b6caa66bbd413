//! What an IGTF-style CA directory holds.
//!
//! The layout (the IGTF distribution, `ca-policy-egi-core`, spec
//! image-sync §2.3): `<alias>.pem` with the CA certificate and a
//! `<hash>.0` symlink to it (OpenSSL's subject-name hash; `.1`, `.2` when
//! two CAs share a hash; older bundles also carry pre-1.0 hash links),
//! `<alias>.crl_url` with one CRL URL per line, `<alias>.info` whose
//! `crl_url` attribute is a `;`-separated list, and the CRL installed by
//! fetch-crl as `<hash>.r0` (`.rN` for the CA in `<hash>.N`). The same
//! meta-data may also sit under the hash name (`<hash>.crl_url`).
//!
//! [`scan`] reads the directory once (each CA once, whatever number of
//! names carry it); [`Anchor::freshness`] judges its CRL at a given time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use openssl::x509::{X509Crl, X509};
use serde::Serialize;

use super::asn1_to_utc;
use crate::messaging::identity::slash_dn;

/// A CRL, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlInfo {
    /// Issuer, slash form.
    pub issuer: String,
    /// `thisUpdate` (`lastUpdate`).
    pub last_update: Option<DateTime<Utc>>,
    /// `nextUpdate`, when the CRL has one.
    pub next_update: Option<DateTime<Utc>>,
    /// Revoked certificates listed.
    pub revoked: usize,
}

impl CrlInfo {
    /// The facts of a parsed CRL.
    pub fn of(crl: &X509Crl) -> CrlInfo {
        CrlInfo {
            issuer: slash_dn(crl.issuer_name()),
            last_update: asn1_to_utc(crl.last_update()),
            next_update: crl.next_update().and_then(asn1_to_utc),
            revoked: crl.get_revoked().map_or(0, |s| s.len()),
        }
    }
}

/// The CRL file in a CA's slot.
#[derive(Debug, Clone)]
pub enum Installed {
    /// No `<hash>.rN`.
    Missing,
    /// A CRL (DER kept to compare with a download).
    Present {
        /// Its facts.
        info: CrlInfo,
        /// Its DER encoding.
        der: Vec<u8>,
        /// Whether its signature verifies with the CA's key.
        signed_by_ca: bool,
    },
    /// A file that is not a CRL.
    Unreadable(String),
}

/// One CA of the directory.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The certificate.
    pub cert: X509,
    /// Subject, slash form.
    pub subject: String,
    /// OpenSSL subject-name hash (8 hex digits).
    pub hash: String,
    /// Its `N` in `<hash>.N` (0 when only a `.pem` carries it).
    pub index: u32,
    /// The file names that carry it, sorted.
    pub files: Vec<String>,
    /// Where its CRL URLs come from (`.crl_url` and `.info` files).
    pub url_files: Vec<String>,
    /// CRL URLs, in the order to try them (`.crl_url` lines first).
    pub urls: Vec<String>,
    /// `notAfter` of the CA certificate.
    pub not_after: Option<DateTime<Utc>>,
    /// The CRL in its slot.
    pub installed: Installed,
}

/// How current a CA's installed CRL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Issued, and `nextUpdate` is still ahead.
    Fresh,
    /// Past its `nextUpdate`: verification fails unless relaxed.
    Stale,
    /// No CRL installed.
    Missing,
    /// Issued in the future (the clock, or the CRL, is wrong).
    NotYetValid,
    /// The file is not a CRL, or not signed by this CA.
    Invalid,
}

impl Freshness {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Missing => "missing",
            Freshness::NotYetValid => "not-yet-valid",
            Freshness::Invalid => "invalid",
        }
    }
}

/// Tolerated clock difference for a CRL's `lastUpdate` in the future.
pub const CLOCK_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

impl Anchor {
    /// `<hash>.r<index>`: where its CRL goes.
    pub fn crl_file(&self) -> String {
        format!("{}.r{}", self.hash, self.index)
    }

    /// Its CRL's state at `now`.
    pub fn freshness(&self, now: DateTime<Utc>) -> Freshness {
        match &self.installed {
            Installed::Missing => Freshness::Missing,
            Installed::Unreadable(_) => Freshness::Invalid,
            Installed::Present {
                signed_by_ca: false,
                ..
            } => Freshness::Invalid,
            Installed::Present { info, .. } => judge(info, now),
        }
    }

    /// A short name for reports: the CN (or the whole subject).
    pub fn short_name(&self) -> &str {
        self.subject
            .rsplit_once("/CN=")
            .map_or(self.subject.as_str(), |(_, cn)| cn)
    }
}

/// A CRL's state at `now` (dates only).
pub fn judge(info: &CrlInfo, now: DateTime<Utc>) -> Freshness {
    if info.last_update.is_some_and(|t| t > now + CLOCK_TOLERANCE) {
        return Freshness::NotYetValid;
    }
    match info.next_update {
        Some(t) if t <= now => Freshness::Stale,
        _ => Freshness::Fresh,
    }
}

/// The directory, read.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The directory.
    pub dir: PathBuf,
    /// Every CA, sorted by subject.
    pub anchors: Vec<Anchor>,
    /// Files that look like certificates but could not be read.
    pub problems: Vec<String>,
}

/// Why the directory could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the CA directory {dir}: {source}")]
pub struct ScanError {
    /// The directory.
    pub dir: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

/// `<hash>.0`..`<hash>.9`.
fn digit_ext(name: &str) -> Option<(&str, u32)> {
    let (stem, ext) = name.rsplit_once('.')?;
    (ext.len() == 1)
        .then(|| ext.chars().next()?.to_digit(10))
        .flatten()
        .map(|d| (stem, d))
}

fn is_cert_name(name: &str) -> bool {
    name.ends_with(".pem") || digit_ext(name).is_some()
}

/// The URLs of a `.crl_url` file: one per line (`#` comments, blanks skipped).
pub fn parse_crl_url(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The URLs of an IGTF `.info` file: its `crl_url = a;b` attribute.
pub fn parse_info(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "crl_url")
        .flat_map(|(_, v)| v.split(';').map(str::trim).map(str::to_string))
        .filter(|u| !u.is_empty())
        .collect()
}

/// The CRL in `path`, PEM or DER.
pub fn parse_crl(bytes: &[u8]) -> Result<X509Crl, openssl::error::ErrorStack> {
    if bytes
        .windows(b"-----BEGIN X509 CRL-----".len())
        .any(|w| w == b"-----BEGIN X509 CRL-----")
    {
        X509Crl::from_pem(bytes)
    } else {
        X509Crl::from_der(bytes)
    }
}

/// Read the installed CRL of a slot, checked against `ca`.
pub fn read_installed(path: &Path, ca: &X509) -> Installed {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Installed::Missing,
        Err(e) => return Installed::Unreadable(format!("{}: {e}", path.display())),
    };
    let crl = match parse_crl(&bytes) {
        Ok(c) => c,
        Err(_) => {
            return Installed::Unreadable(format!("{} is not a CRL (PEM or DER)", path.display()))
        }
    };
    let signed_by_ca = ca
        .public_key()
        .ok()
        .and_then(|k| crl.verify(&k).ok())
        .unwrap_or(false);
    Installed::Present {
        info: CrlInfo::of(&crl),
        der: crl.to_der().unwrap_or_default(),
        signed_by_ca,
    }
}

/// Read the CA directory.
pub fn scan(dir: &Path) -> Result<Scan, ScanError> {
    let err = |source| ScanError {
        dir: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut problems = Vec::new();
    // DER -> (cert, names carrying it).
    let mut by_der: BTreeMap<Vec<u8>, (X509, Vec<String>)> = BTreeMap::new();
    for name in names.iter().filter(|n| is_cert_name(n)) {
        let path = dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            problems.push(format!("{name}: unreadable"));
            continue;
        };
        match X509::stack_from_pem(&bytes) {
            Ok(certs) if !certs.is_empty() => {
                for c in certs {
                    let der = c.to_der().unwrap_or_default();
                    by_der
                        .entry(der)
                        .or_insert_with(|| (c, Vec::new()))
                        .1
                        .push(name.clone());
                }
            }
            _ => problems.push(format!("{name}: no PEM certificate")),
        }
    }
    let mut anchors: Vec<Anchor> = by_der
        .into_values()
        .map(|(cert, mut files)| {
            files.sort();
            files.dedup();
            let hash = format!("{:08x}", cert.subject_name_hash());
            let index = files
                .iter()
                .filter_map(|f| digit_ext(f))
                .find(|(stem, _)| *stem == hash)
                .map_or(0, |(_, n)| n);
            // Meta-data under any name of the CA (and symlink targets).
            let mut stems: Vec<String> = Vec::new();
            for f in &files {
                let mut push = |n: &str| {
                    if let Some((stem, _)) = n.rsplit_once('.') {
                        if !stems.iter().any(|s| s == stem) {
                            stems.push(stem.to_string());
                        }
                    }
                };
                push(f);
                if let Ok(target) = std::fs::read_link(dir.join(f)) {
                    if let Some(t) = target.file_name().and_then(|t| t.to_str()) {
                        push(t);
                    }
                }
            }
            let mut url_files = Vec::new();
            let mut urls: Vec<String> = Vec::new();
            for (ext, parse) in [
                ("crl_url", parse_crl_url as fn(&str) -> Vec<String>),
                ("info", parse_info),
            ] {
                for stem in &stems {
                    let f = format!("{stem}.{ext}");
                    if let Ok(text) = std::fs::read_to_string(dir.join(&f)) {
                        url_files.push(f);
                        for u in parse(&text) {
                            if !urls.contains(&u) {
                                urls.push(u);
                            }
                        }
                    }
                }
            }
            let subject = slash_dn(cert.subject_name());
            let not_after = asn1_to_utc(cert.not_after());
            let slot = dir.join(format!("{hash}.r{index}"));
            let installed = read_installed(&slot, &cert);
            Anchor {
                cert,
                subject,
                hash,
                index,
                files,
                url_files,
                urls,
                not_after,
                installed,
            }
        })
        .collect();
    anchors.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.hash.cmp(&b.hash)));
    Ok(Scan {
        dir: dir.to_path_buf(),
        anchors,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_files() {
        assert_eq!(
            parse_crl_url("# comment\nhttp://a/crl.pem\n\n  https://b/crl.der  \n"),
            vec!["http://a/crl.pem", "https://b/crl.der"]
        );
        assert_eq!(
            parse_info("alias = X\ncrl_url = https://a/x.crl;http://b/x.crl\nemail = x@y\n"),
            vec!["https://a/x.crl", "http://b/x.crl"]
        );
        assert!(is_cert_name("abcd1234.0") && is_cert_name("Ca.pem"));
        assert!(!is_cert_name("abcd1234.r0") && !is_cert_name("x.crl_url"));
    }

    #[test]
    fn judged_at_a_time() {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let info = CrlInfo {
            issuer: "/CN=x".into(),
            last_update: t("2026-01-01T00:00:00Z"),
            next_update: t("2026-01-31T00:00:00Z"),
            revoked: 0,
        };
        let now = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(judge(&info, now("2026-01-10T00:00:00Z")), Freshness::Fresh);
        assert_eq!(judge(&info, now("2026-02-01T00:00:00Z")), Freshness::Stale);
        assert_eq!(
            judge(&info, now("2025-12-31T00:00:00Z")),
            Freshness::NotYetValid
        );
        // Within the clock tolerance.
        assert_eq!(judge(&info, now("2025-12-31T23:58:00Z")), Freshness::Fresh);
    }
}
