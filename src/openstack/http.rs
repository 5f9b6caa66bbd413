//! The HTTP transport of the OpenStack client: one `reqwest` client per
//! [`CloudAccess`], TLS trust, the retry policy and [`Limits`].
//!
//! * TLS: the system roots ([`crate::tls`]: `/etc/ssl/certs`) plus
//!   every certificate of `ca_file` (a PEM bundle) and of `ca_dir` (an
//!   IGTF-style hashed directory: `<hash>.0`..`<hash>.9` and `*.pem`; CRLs
//!   `*.r0` and other files are skipped and counted). `insecure` turns
//!   verification off and says so with a warning on every client build.
//! * Proxies: `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` from the
//!   environment (reqwest's system proxy, read when the client is built).
//! * Redirects: followed only within the same origin, so that an
//!   `X-Auth-Token` never travels to another host.
//! * Retries (`Http::send`): on connection errors, timeouts, 408, 429
//!   (honouring `Retry-After`), 500, 502, 503 and 504, never on other 4xx;
//!   exponential backoff with jitter, capped (`backoff`). A request that
//!   reached the server is sent again only when it is replayable (GET, HEAD,
//!   PUT, DELETE, and token issue POSTs that the caller marks so).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::Url;

use super::access::{CloudAccess, Tls};
use super::error::{excerpt, Error, Target};

/// Tunables of the client layer, with documented defaults
/// ([`Limits::default`]). The number of retries and the per-request timeout
/// come from [`CloudAccess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Delay before the first retry; doubles with every further retry
    /// (default 500 ms).
    pub retry_base: Duration,
    /// Longest delay between two tries (default 8 s).
    pub retry_cap: Duration,
    /// Longest `Retry-After` honoured (default 60 s); longer ones are cut
    /// to this.
    pub retry_after_max: Duration,
    /// A cached Keystone token is renewed when less than this remains
    /// (default 5 min).
    pub token_renew_before: Duration,
    /// Page size of paginated listings when the caller gives none (default
    /// 200, as cASO).
    pub page_size: u32,
    /// Most pages one listing follows (default 10 000), a guard against a
    /// server that never stops paging.
    pub max_pages: u32,
    /// Largest response body read (default 64 MiB).
    pub max_response_bytes: usize,
    /// Connection timeout (default 10 s, never more than the request timeout).
    pub connect_timeout: Duration,
    /// After Keystone or a service refused one of our tokens (a 401, or a
    /// 404 `Failed to validate token` when rescoping), no new token is asked
    /// for before this much time has passed (default 1 s). Keystone revokes
    /// every token issued up to and including the second of a revocation
    /// event (a password change, a role removal: `issued_before` is that
    /// second), so a token issued in the same second would be refused again.
    pub revocation_settle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(60),
            token_renew_before: Duration::from_secs(300),
            page_size: 200,
            max_pages: 10_000,
            max_response_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(10),
            revocation_settle: Duration::from_secs(1),
        }
    }
}

/// What the TLS trust of a client was built from (for `doctor` and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustReport {
    /// Certificates read from `ca_file`.
    pub ca_file_certs: usize,
    /// Distinct certificates read from `ca_dir`.
    pub ca_dir_certs: usize,
    /// Files of `ca_dir` that were skipped: CRLs (`*.r0`), signing policies,
    /// `*.info`, `*.namespaces`, unparsable files, duplicates.
    pub ca_dir_skipped: usize,
    /// Verification is off.
    pub insecure: bool,
}

/// Extra trust anchors from [`Tls`], as DER.
fn load_trust(tls: &Tls) -> Result<(Vec<Vec<u8>>, TrustReport), Error> {
    let mut report = TrustReport {
        insecure: tls.insecure,
        ..TrustReport::default()
    };
    let mut seen = HashSet::new();
    let mut ders = Vec::new();
    if let Some(file) = &tls.ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| Error::Config(format!("cannot read ca_file {}: {e}", file.display())))?;
        let certs = parse_certs(&pem);
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "ca_file {} contains no PEM certificate",
                file.display()
            )));
        }
        for der in certs {
            report.ca_file_certs += 1;
            if seen.insert(der.clone()) {
                ders.push(der);
            }
        }
    }
    if let Some(dir) = &tls.ca_dir {
        let mut cert_files = 0;
        for path in ca_dir_files(dir)? {
            let certs = if is_cert_name(&path) {
                std::fs::read(&path)
                    .map(|b| parse_certs(&b))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if certs.is_empty() {
                tracing::debug!(file = %path.display(), "ca_dir: not a certificate, skipped");
                report.ca_dir_skipped += 1;
                continue;
            }
            cert_files += 1;
            let mut new = 0;
            for der in certs {
                if seen.insert(der.clone()) {
                    ders.push(der);
                    new += 1;
                }
            }
            if new == 0 {
                report.ca_dir_skipped += 1; // a hash link to a file already read
            }
            report.ca_dir_certs += new;
        }
        if cert_files == 0 {
            return Err(Error::Config(format!(
                "ca_dir {} contains no certificate (expected <hash>.0 or *.pem files)",
                dir.display()
            )));
        }
    }
    Ok((ders, report))
}

/// The regular files (following symlinks) of a CA directory, sorted by name.
fn ca_dir_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("cannot read ca_dir {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `<anything>.0`..`<anything>.9` (OpenSSL hash names) or `*.pem`.
fn is_cert_name(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => {
            ext.eq_ignore_ascii_case("pem")
                || (ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit())
        }
        None => false,
    }
}

/// Every X.509 certificate in `bytes` (PEM, possibly several; or one DER), as DER.
fn parse_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    use openssl::x509::X509;
    if let Ok(stack) = X509::stack_from_pem(bytes) {
        if !stack.is_empty() {
            return stack.iter().filter_map(|c| c.to_der().ok()).collect();
        }
    }
    match X509::from_der(bytes) {
        Ok(c) => c.to_der().map(|d| vec![d]).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("fedcloud-appliance/", env!("CARGO_PKG_VERSION"));

/// The retrying transport shared by every session of one [`CloudAccess`].
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retries: u32,
    timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) trust: TrustReport,
}

/// One request for [`Http::send`].
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// May be sent again after it reached the server.
    pub replayable: bool,
    /// Names the request in errors (service, project).
    pub target: Target,
    /// Secrets the request carries, scrubbed from error excerpts.
    pub scrub: &'a [&'a str],
}

impl Request<'_> {
    /// Replayable unless the method is POST or PATCH.
    pub fn default_replayable(method: &Method) -> bool {
        !matches!(*method, Method::POST | Method::PATCH)
    }
}

/// A successful (2xx) response, read in full.
#[derive(Debug)]
pub(crate) struct Response {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What one try gave.
enum Try {
    Done(Response),
    /// Retryable failure; `Retry-After` when the server sent one.
    Again(Error, Option<Duration>),
}

impl Http {
    /// Build the client for `access`.
    pub fn new(access: &CloudAccess, limits: Limits) -> Result<Self, Error> {
        let (ders, trust) = load_trust(&access.tls)?;
        let connect_timeout = limits.connect_timeout.min(access.timeout);
        // System roots explicitly (crate::tls), never OpenSSL's compiled-in path.
        let mut b = crate::tls::reqwest_builder()
            .user_agent(USER_AGENT)
            .timeout(access.timeout)
            .connect_timeout(connect_timeout)
            .redirect(same_origin_redirects());
        for der in &ders {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| Error::Config(format!("CA certificate not usable: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        if access.tls.insecure {
            tracing::warn!(
                auth_url = %crate::redact::url(&access.auth_url),
                "TLS certificate verification is OFF (insecure: true): any server can pose as this cloud"
            );
            b = b
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        let client = b
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        tracing::debug!(
            ca_file_certs = trust.ca_file_certs,
            ca_dir_certs = trust.ca_dir_certs,
            ca_dir_skipped = trust.ca_dir_skipped,
            "HTTP client built"
        );
        Ok(Http {
            client,
            retries: access.retries,
            timeout: access.timeout,
            limits,
            trust,
        })
    }

    /// The underlying client (for streamed bodies, which bypass the retry
    /// policy of [`Http::send`]).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send `req`, retrying per the module's policy; a non-2xx final answer
    /// is an error.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, Error> {
        let mut attempt: u32 = 0;
        loop {
            let (err, retry_after) = match self.try_once(req).await? {
                Try::Done(resp) => return Ok(resp),
                Try::Again(err, retry_after) => (err, retry_after),
            };
            if attempt >= self.retries {
                return Err(err);
            }
            let delay = backoff(attempt, &self.limits, retry_after, rand::random::<f64>());
            tracing::warn!(
                request = %req.target,
                attempt = attempt + 1,
                of = self.retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying OpenStack request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One try: `Ok(Done)` on 2xx, `Ok(Again)` for a retryable failure,
    /// `Err` for a final one.
    async fn try_once(&self, req: &Request<'_>) -> Result<Try, Error> {
        let mut rb = self
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        let started = std::time::Instant::now();
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(req, e),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match self.read_body(resp).await {
            Ok(b) => b,
            Err(Some(e)) => return self.transport_error(req, e),
            Err(None) => {
                return Err(Error::Decode {
                    target: req.target.clone(),
                    reason: format!(
                        "response body larger than {} bytes",
                        self.limits.max_response_bytes
                    ),
                })
            }
        };
        tracing::debug!(
            request = %req.target,
            status = status.as_u16(),
            bytes = body.len(),
            ms = started.elapsed().as_millis() as u64,
            "OpenStack request"
        );
        if status.is_success() {
            return Ok(Try::Done(Response { headers, body }));
        }
        let err = Error::from_status(
            req.target.clone(),
            status.as_u16(),
            excerpt(&body, req.scrub),
        );
        if retryable_status(status) && req.replayable {
            Ok(Try::Again(err, retry_after(&headers, chrono::Utc::now())))
        } else {
            Err(err)
        }
    }

    /// `Err(None)` when the body exceeds the limit.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
    ) -> Result<Bytes, Option<reqwest::Error>> {
        let max = self.limits.max_response_bytes;
        if resp.content_length().is_some_and(|n| n as usize > max) {
            return Err(None);
        }
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(Some)? {
            if buf.len() + chunk.len() > max {
                return Err(None);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    fn transport_error(&self, req: &Request<'_>, e: reqwest::Error) -> Result<Try, Error> {
        // A connection that was never made carried nothing: any method may
        // be retried. Anything later only when the request is replayable.
        let retry = e.is_connect() || (req.replayable && !e.is_builder() && !e.is_redirect());
        let err = if e.is_timeout() {
            Error::Timeout {
                target: req.target.clone(),
                after: self.timeout,
            }
        } else {
            Error::Transport {
                target: req.target.clone(),
                source: e.without_url(),
            }
        };
        if retry {
            Ok(Try::Again(err, None))
        } else {
            Err(err)
        }
    }
}

/// Redirects only to the same scheme, host and port (at most 5).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.stop();
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// 408, 429, 500, 502, 503, 504.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as a delay: delta-seconds or an HTTP-date (relative to `now`).
pub(crate) fn retry_after(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Delay before retry number `attempt + 1`: `base * 2^attempt` capped at
/// `retry_cap`, of which the upper half is jittered (`jitter` in `[0, 1)`),
/// and never less than the server's `Retry-After` (itself capped at
/// `retry_after_max`).
pub(crate) fn backoff(
    attempt: u32,
    limits: &Limits,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = limits
        .retry_base
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(limits.retry_cap);
    let half = exp / 2;
    let delay = half + half.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(ra) => delay.max(ra.min(limits.retry_after_max)),
        None => delay,
    }
}

/// A header value that never shows in `Debug` output.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| Error::Config("a token contains characters not allowed in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_millis(1000),
            ..Limits::default()
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let l = limits();
        let ms = |a, j| backoff(a, &l, None, j).as_millis();
        assert_eq!(ms(0, 0.0), 50);
        assert_eq!(ms(0, 0.999_999), 99);
        assert_eq!(ms(1, 0.0), 100);
        assert_eq!(ms(2, 0.0), 200);
        assert_eq!(ms(3, 0.5), 600);
        assert_eq!(ms(4, 0.0), 500); // capped at 1000, lower half
        assert_eq!(ms(40, 1.0), 1000);
        let d = Limits::default();
        assert!(backoff(100, &d, None, 1.0) <= Duration::from_secs(8));
    }

    #[test]
    fn backoff_honours_retry_after_within_its_cap() {
        let l = limits();
        assert_eq!(
            backoff(0, &l, Some(Duration::from_secs(3)), 0.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff(0, &l, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            backoff(2, &l, Some(Duration::ZERO), 0.0),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 501, 505] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn cert_names() {
        for n in ["a1b2c3d4.0", "a1b2c3d4.9", "x.pem", "X.PEM"] {
            assert!(is_cert_name(Path::new(n)), "{n}");
        }
        for n in [
            "a1b2c3d4.r0",
            "x.signing_policy",
            "x.info",
            "x.namespaces",
            "x.crl_url",
            "noext",
            "a.10",
        ] {
            assert!(!is_cert_name(Path::new(n)), "{n}");
        }
    }

    /// A self-signed CA certificate, PEM.
    fn ca_pem(cn: &str) -> Vec<u8> {
        use openssl::{
            asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509,
        };
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(
            x509::extension::BasicConstraints::new()
                .critical()
                .ca()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_pem().unwrap()
    }

    #[test]
    fn loads_hashed_ca_dir_and_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let a = ca_pem("Test CA A");
        let b = ca_pem("Test CA B");
        std::fs::write(dir.path().join("aaaa0000.0"), &a).unwrap();
        std::fs::write(dir.path().join("CA-B.pem"), &b).unwrap();
        std::os::unix::fs::symlink("CA-B.pem", dir.path().join("bbbb0000.0")).unwrap(); // duplicate via link
        std::fs::write(
            dir.path().join("aaaa0000.r0"),
            b"-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("aaaa0000.signing_policy"),
            b"access_id_CA X509 '/CN=x'",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.1"), b"not a certificate").unwrap();
        std::fs::create_dir(dir.path().join("sub.0")).unwrap(); // directories are ignored
        let bundle = dir.path().join("bundle.crt");
        std::fs::write(
            &bundle,
            [a.clone(), b"\n# comment\n".to_vec(), b.clone()].concat(),
        )
        .unwrap();

        let tls = Tls {
            ca_file: Some(bundle),
            ca_dir: Some(dir.path().to_path_buf()),
            insecure: false,
        };
        let (ders, report) = load_trust(&tls).unwrap();
        assert_eq!(ders.len(), 2, "bundle and dir hold the same two CAs");
        assert_eq!(report.ca_file_certs, 2);
        assert_eq!(report.ca_dir_certs, 0, "all already known from the bundle");

        let only_dir = Tls {
            ca_file: None,
            ..tls.clone()
        };
        let (ders, report) = load_trust(&only_dir).unwrap();
        assert_eq!(ders.len(), 2);
        assert_eq!(report.ca_dir_certs, 2);
        // .r0, .signing_policy, broken.1, the duplicate link, bundle.crt
        assert_eq!(report.ca_dir_skipped, 5, "{report:?}");
    }

    #[test]
    fn empty_or_missing_trust_sources_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.r0"), b"crl").unwrap();
        let e = load_trust(&Tls {
            ca_dir: Some(dir.path().into()),
            ..Tls::default()
        })
        .unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("no certificate")),
            "{e}"
        );
        let e = load_trust(&Tls {
            ca_file: Some(dir.path().join("nope.pem")),
            ..Tls::default()
        })
        .unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("nope.pem")),
            "{e}"
        );
        let e = load_trust(&Tls {
            ca_file: Some(dir.path().join("x.r0")),
            ..Tls::default()
        })
        .unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("no PEM certificate")),
            "{e}"
        );
    }
}
