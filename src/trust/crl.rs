//! `appliance crl refresh`: what fetch-crl does on grid hosts, for the IGTF
//! CA directory.
//!
//! For every CA of the directory ([`super::cadir::scan`]) that has CRL URLs
//! (`<alias>.crl_url`, one per line; `<alias>.info`, `crl_url = a;b`), the
//! URLs are tried in order (fetch-crl's rule) until one gives a CRL that
//! passes [`check`]: PEM or DER, issued by this CA (issuer name and
//! signature), `lastUpdate` not in the future (5 minutes of clock
//! tolerance), `nextUpdate` still ahead, and not older than the CRL in
//! place (a mirror serving an old CRL cannot roll revocations back). It is
//! installed as `<hash>.r<N>` in PEM, atomically (temporary file, fsync,
//! rename, fsync of the directory), mode 0644. A CA whose download or
//! checks fail keeps the CRL it had; the report says why and what to do.
//!
//! Only `http` and `https` URLs are followed (CRLs are conventionally on
//! plain http: their signature is what makes them trustworthy); https uses
//! the system roots plus the CA directory; `HTTP(S)_PROXY`/`NO_PROXY` are
//! honoured.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use openssl::x509::X509Crl;
use serde::Serialize;
use url::Url;

use super::cadir::{self, Anchor, CrlInfo, Freshness, Installed, ScanError};
use crate::images::fetch::{Fetcher, Limits};
use crate::redact::url as redact_url;

/// Largest CRL accepted (some IGTF CAs publish CRLs of several MiB).
pub const MAX_CRL_BYTES: usize = 32 << 20;

/// How a refresh runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock of the run.
    pub now: DateTime<Utc>,
    /// Download and check, but install nothing.
    pub dry_run: bool,
    /// CAs refreshed at once.
    pub parallel: usize,
    /// Download limits (tries, timeouts); `max_list_bytes` caps a CRL.
    pub limits: Limits,
}

impl Options {
    /// Defaults at `now`: 4 CAs at once, two tries per URL, 32 MiB cap.
    pub fn new(now: DateTime<Utc>) -> Options {
        Options {
            now,
            dry_run: false,
            parallel: 4,
            limits: Limits {
                max_list_bytes: MAX_CRL_BYTES,
                tries: 2,
                ..Limits::default()
            },
        }
    }
}

/// Why a downloaded CRL is not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Not a CRL in PEM or DER (an error page, a truncated file).
    #[error("not a CRL (PEM or DER): {0}")]
    NotACrl(String),
    /// Issued by another CA.
    #[error("the CRL is issued by {crl_issuer}, not by this CA ({ca})")]
    WrongIssuer {
        /// The CRL's issuer.
        crl_issuer: String,
        /// The CA's subject.
        ca: String,
    },
    /// The signature does not verify with the CA's key.
    #[error("the CRL's signature does not verify with the key of {ca}")]
    BadSignature {
        /// The CA's subject.
        ca: String,
    },
    /// `lastUpdate` is in the future.
    #[error("the CRL is issued in the future ({last_update})")]
    NotYetValid {
        /// `lastUpdate`.
        last_update: DateTime<Utc>,
    },
    /// `nextUpdate` has passed.
    #[error("the CRL expired at {next_update} (nextUpdate)")]
    Expired {
        /// `nextUpdate`.
        next_update: DateTime<Utc>,
    },
    /// Older than the CRL in place.
    #[error("the CRL (issued {new}) is older than the one in place (issued {installed})")]
    Older {
        /// The download's `lastUpdate`.
        new: DateTime<Utc>,
        /// The installed one's `lastUpdate`.
        installed: DateTime<Utc>,
    },
}

impl CheckError {
    /// What the operator can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            CheckError::NotACrl(_) => "the server did not deliver a complete CRL; the CRL in place is kept and the next run retries",
            CheckError::WrongIssuer { .. } | CheckError::BadSignature { .. } => {
                "the URL serves a CRL this CA did not sign (wrong URL, or tampering); the CRL in place is kept; compare the .crl_url file with the IGTF distribution"
            }
            CheckError::NotYetValid { .. } => "check this host's clock (timedatectl; enable NTP); the CRL in place is kept",
            CheckError::Expired { .. } => "the CA publishes an expired CRL; the CRL in place is kept; if it persists, tell the CA",
            CheckError::Older { .. } => "a mirror serves an older CRL; the newer one in place is kept",
        }
    }
}

/// Check a downloaded CRL against its CA, the clock and the CRL in place.
pub fn check(bytes: &[u8], ca: &Anchor, now: DateTime<Utc>) -> Result<X509Crl, CheckError> {
    let crl = cadir::parse_crl(bytes).map_err(|e| {
        CheckError::NotACrl(
            e.errors()
                .first()
                .and_then(|x| x.reason())
                .unwrap_or("unparsable")
                .to_string(),
        )
    })?;
    let same_name = match (crl.issuer_name().to_der(), ca.cert.subject_name().to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_name {
        return Err(CheckError::WrongIssuer {
            crl_issuer: crate::messaging::identity::slash_dn(crl.issuer_name()),
            ca: ca.subject.clone(),
        });
    }
    let signed = ca
        .cert
        .public_key()
        .ok()
        .and_then(|k| crl.verify(&k).ok())
        .unwrap_or(false);
    if !signed {
        return Err(CheckError::BadSignature {
            ca: ca.subject.clone(),
        });
    }
    let info = CrlInfo::of(&crl);
    match cadir::judge(&info, now) {
        Freshness::NotYetValid => {
            return Err(CheckError::NotYetValid {
                last_update: info.last_update.unwrap_or(now),
            })
        }
        Freshness::Stale => {
            return Err(CheckError::Expired {
                next_update: info.next_update.unwrap_or(now),
            })
        }
        _ => {}
    }
    if let Installed::Present {
        info: old,
        signed_by_ca: true,
        ..
    } = &ca.installed
    {
        if let (Some(new), Some(installed)) = (info.last_update, old.last_update) {
            if new < installed {
                return Err(CheckError::Older { new, installed });
            }
        }
    }
    Ok(crl)
}

/// What happened to one CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaStatus {
    /// A new CRL was installed (or, in a dry run, would be).
    Updated,
    /// The CRL served is the one in place.
    Unchanged,
    /// No URL gave an acceptable CRL; the one in place is kept.
    Failed,
    /// The CA has no CRL URL.
    Skipped,
}

/// One URL that did not give an acceptable CRL.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The URL (credentials redacted).
    pub url: String,
    /// What went wrong.
    pub error: String,
}

/// The report of one CA.
#[derive(Debug, Clone, Serialize)]
pub struct CaReport {
    /// Subject, slash form.
    pub ca: String,
    /// Subject hash.
    pub hash: String,
    /// The CRL file of its slot (`<hash>.r<N>`).
    pub crl_file: String,
    /// File names carrying the CA.
    pub files: Vec<String>,
    /// What happened.
    pub status: CaStatus,
    /// The URL the CRL now in place came from (this run).
    pub url: Option<String>,
    /// The CRL in place after the run.
    pub crl: Option<CrlInfo>,
    /// The CRL that was in place before, when it was replaced.
    pub previous: Option<CrlInfo>,
    /// The state of the CRL in place after the run.
    pub freshness: Freshness,
    /// URLs that failed, in the order tried.
    pub failures: Vec<Attempt>,
    /// Why the CA failed (the last URL's error).
    pub error: Option<String>,
    /// What to do.
    pub remedy: Option<String>,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// CAs in the directory.
    pub cas: usize,
    /// New CRL installed.
    pub updated: usize,
    /// Same CRL as in place.
    pub unchanged: usize,
    /// Kept the old CRL after a failure.
    pub failed: usize,
    /// No CRL URL.
    pub skipped: usize,
}

/// The report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The CA directory.
    pub ca_dir: PathBuf,
    /// Nothing was installed.
    pub dry_run: bool,
    /// The run's clock.
    pub checked_at: DateTime<Utc>,
    /// Counts.
    pub summary: Counts,
    /// Per CA, sorted by subject.
    pub cas: Vec<CaReport>,
    /// Files of the directory that could not be read as certificates.
    pub problems: Vec<String>,
}

impl Report {
    /// The exit class, as fetch-crl's: success, partial when some CA
    /// failed (its CRL in place is kept; `status` shows how fresh it still
    /// is), error when the directory holds no CA at all.
    pub fn outcome(&self) -> crate::exit::Outcome {
        use crate::exit::Outcome;
        let s = &self.summary;
        if s.cas == 0 {
            Outcome::Error
        } else if s.failed == 0 {
            Outcome::Success
        } else {
            Outcome::Partial
        }
    }

    /// One line for logs and the run record.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} CA(s): {} updated, {} unchanged, {} failed, {} without CRL URL",
            s.cas, s.updated, s.unchanged, s.failed, s.skipped
        )
    }
}

/// Why a refresh could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The directory cannot be read.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Whether a CRL URL may be followed (`http` or `https`).
fn scheme_allowed(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// Refresh the CRL of every CA in `ca_dir` (the library form of `appliance
/// crl refresh`).
pub async fn refresh(ca_dir: &Path, opts: &Options) -> Result<Report, RefreshError> {
    let scan = cadir::scan(ca_dir)?;
    let fetcher = Fetcher::new(Some(ca_dir), opts.limits.clone()).map_err(RefreshError::Client)?;
    let mut cas: Vec<CaReport> = stream::iter(scan.anchors.iter())
        .map(|a| refresh_one(&scan.dir, a, &fetcher, opts))
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    cas.sort_by(|a, b| a.ca.cmp(&b.ca).then(a.hash.cmp(&b.hash)));
    let mut summary = Counts {
        cas: cas.len(),
        ..Counts::default()
    };
    for c in &cas {
        match c.status {
            CaStatus::Updated => summary.updated += 1,
            CaStatus::Unchanged => summary.unchanged += 1,
            CaStatus::Failed => summary.failed += 1,
            CaStatus::Skipped => summary.skipped += 1,
        }
    }
    Ok(Report {
        ca_dir: scan.dir.clone(),
        dry_run: opts.dry_run,
        checked_at: opts.now,
        summary,
        cas,
        problems: scan.problems.clone(),
    })
}

async fn refresh_one(dir: &Path, a: &Anchor, fetcher: &Fetcher, opts: &Options) -> CaReport {
    let installed = match &a.installed {
        Installed::Present { info, .. } => Some(info.clone()),
        _ => None,
    };
    let mut r = CaReport {
        ca: a.subject.clone(),
        hash: a.hash.clone(),
        crl_file: a.crl_file(),
        files: a.files.clone(),
        status: CaStatus::Skipped,
        url: None,
        crl: installed.clone(),
        previous: None,
        freshness: a.freshness(opts.now),
        failures: Vec::new(),
        error: None,
        remedy: None,
    };
    if a.urls.is_empty() {
        return r;
    }
    let mut remedy = "the CRL in place is kept; the next run retries (if every CA fails, check DNS and the proxy settings)";
    for raw in &a.urls {
        let url = match Url::parse(raw) {
            Ok(u) if scheme_allowed(&u) => u,
            Ok(u) => {
                r.failures.push(Attempt {
                    url: redact_url(&u),
                    error: format!(
                        "the `{}` scheme is not followed (only http and https)",
                        u.scheme()
                    ),
                });
                remedy = "fix the CA's .crl_url file: only http and https URLs are followed";
                continue;
            }
            Err(e) => {
                r.failures.push(Attempt {
                    url: raw.clone(),
                    error: format!("not a URL: {e}"),
                });
                remedy = "fix the CA's .crl_url file: it holds something that is not a URL";
                continue;
            }
        };
        let shown = redact_url(&url);
        let body = match fetcher.get_list(&url, None).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(ca = %a.subject, url = %shown, error = %e, "CRL download failed");
                r.failures.push(Attempt {
                    url: shown,
                    error: e.to_string(),
                });
                remedy = "the CRL server did not deliver; the CRL in place is kept and the next run retries (if every CA fails, check DNS and the proxy settings)";
                continue;
            }
        };
        let crl = match check(&body, a, opts.now) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(ca = %a.subject, url = %shown, error = %e, "CRL refused");
                r.failures.push(Attempt {
                    url: shown,
                    error: e.to_string(),
                });
                remedy = e.remedy();
                continue;
            }
        };
        let info = CrlInfo::of(&crl);
        let same = matches!(&a.installed, Installed::Present { der, .. } if crl.to_der().ok().as_ref() == Some(der));
        r.url = Some(shown.clone());
        if same {
            r.status = CaStatus::Unchanged;
        } else if opts.dry_run {
            r.status = CaStatus::Updated;
            r.previous = installed.clone();
            r.crl = Some(info.clone());
        } else {
            let path = dir.join(a.crl_file());
            let pem = match crl.to_pem() {
                Ok(p) => p,
                Err(e) => {
                    r.failures.push(Attempt {
                        url: shown,
                        error: format!("cannot encode the CRL as PEM: {e}"),
                    });
                    continue;
                }
            };
            if let Err(e) = crate::state::write_atomic(&path, &pem, 0o644) {
                r.status = CaStatus::Failed;
                r.error = Some(format!("cannot write {}: {e}", path.display()));
                r.remedy = Some(
                    "run `appliance crl refresh` as root (the CA directory is root's); the CRL in place is kept"
                        .into(),
                );
                return r;
            }
            tracing::info!(ca = %a.subject, file = %path.display(), url = %shown, "CRL installed");
            r.status = CaStatus::Updated;
            r.previous = installed.clone();
            r.crl = Some(info.clone());
        }
        r.freshness = cadir::judge(&info, opts.now);
        return r;
    }
    r.status = CaStatus::Failed;
    r.error = r.failures.last().map(|f| format!("{}: {}", f.url, f.error));
    r.remedy = Some(remedy.to_string());
    r
}
