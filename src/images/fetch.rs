//! Downloads: image lists (small, in memory, size-capped) and images
//! (streamed to disk through a verifier).
//!
//! An image is written to `<cache>/.partial/<name>.part` while its bytes are counted
//! and hashed (SHA-512, OpenSSL's implementation) on a separate thread fed
//! by a bounded channel, so memory stays constant whatever the size. The
//! transfer aborts as soon as the count passes the declared `hv:size`. Only
//! when size and digest match is the file fsynced and renamed to its final
//! name (then the directory fsynced). A partial file left by an interrupted
//! run is resumed with `Range: bytes=N-` when the server answers 206 (its
//! bytes are re-hashed first); otherwise the transfer starts over. The free
//! space of the cache is checked before starting. Transient failures
//! (connection errors, timeouts, 408/429/5xx, a body cut short) are retried
//! with capped exponential backoff; the next try resumes.
//!
//! Time is bounded ([`Limits`], from `images.transfer`): the wait for an
//! answer is at most one rate window; a transfer that delivers less than
//! the minimum rate over a window is cut (and retried, resuming); a list
//! fetch and an image download each have a deadline, retries included
//! (an image's grows with its size at the minimum rate). Every such end is
//! a [`FetchError::Timeout`] naming the limit and its setting.
//!
//! Schemes: only `https`, and `http` where `images.allow-http` allows it
//! for the [`Place`] (lists, images, registries), for the URL and for
//! every redirect hop ([`crate::scheme`]); `file:` and every other scheme
//! are refused.
//!
//! The expected digest is the list's sha512 or, for registry layers, the
//! layer's sha256 ([`Want`]); the sha512 is computed in both cases (Glance
//! checks it after upload).
//!
//! HTTP(S)_PROXY/NO_PROXY are honoured (reqwest's system proxy); TLS
//! verification uses the system roots plus the IGTF CA directory. List
//! tokens are sent as HTTP Basic `(token, x-oauth-basic)`, registry
//! credentials as Basic or Bearer ([`Auth`]); URLs are logged with
//! userinfo and secret query values redacted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openssl::sha::{Sha256, Sha512};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use url::Url;

use tokio::time::Instant;

use crate::config::sections::images::{self as config, AllowHttp};
use crate::redact::url as redact_url;
use crate::scheme::{self, Http};
use crate::secret::Secret;

/// Download tunables, with documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest image list accepted (default 16 MiB).
    pub max_list_bytes: usize,
    /// Tries per download (default 4).
    pub tries: u32,
    /// First backoff delay (default 1 s), doubling, capped at `retry_cap`.
    pub retry_base: Duration,
    /// Longest backoff delay (default 30 s).
    pub retry_cap: Duration,
    /// Connection timeout (default 15 s).
    pub connect_timeout: Duration,
    /// Longest wait for an answer, and the window over which the minimum
    /// rate is measured (default 60 s).
    pub rate_window: Duration,
    /// Minimum rate, bytes per second, averaged over `rate_window`
    /// (default 64 KiB/s).
    pub min_rate: u64,
    /// A list fetch, retries included (default 300 s).
    pub list_deadline: Duration,
    /// An image download, retries included, before the time its size
    /// takes at `min_rate` is added (default 900 s).
    pub image_deadline: Duration,
    /// Free space kept beyond the image itself (default 256 MiB).
    pub free_space_margin: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_transfer(&config::Transfer::default())
    }
}

impl Limits {
    /// The defaults with the deadlines and rate of `images.transfer`.
    pub fn from_transfer(t: &config::Transfer) -> Limits {
        Limits {
            max_list_bytes: 16 << 20,
            tries: 4,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            rate_window: Duration::from_secs(t.rate_window_seconds),
            min_rate: t.min_rate_kib * 1024,
            list_deadline: Duration::from_secs(t.list_deadline_seconds),
            image_deadline: Duration::from_secs(t.image_deadline_seconds),
            free_space_margin: 256 << 20,
        }
    }

    /// The deadline of an image download of `size` bytes: the base plus
    /// the time `size` takes at the minimum rate.
    pub fn image_deadline_for(&self, size: u64) -> Duration {
        self.image_deadline + Duration::from_secs(size / self.min_rate.max(1))
    }
}

/// What a URL is fetched for: each place has its own `http` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An image list.
    List,
    /// A list image (`hv:uri`).
    Image,
    /// A registry (API, token service, layer blobs).
    Registry,
}

impl Place {
    fn what(self) -> &'static str {
        match self {
            Place::List => "an image list",
            Place::Image => "an image download",
            Place::Registry => "a registry",
        }
    }
    fn http(self, allow: AllowHttp) -> Http {
        Http::allowed_if(match self {
            Place::List => allow.lists,
            Place::Image => allow.images,
            Place::Registry => allow.registries,
        })
    }
    /// The `allow-http` entry for this place.
    fn allow_key(self) -> &'static str {
        match self {
            Place::List => "lists",
            Place::Image => "images",
            Place::Registry => "registries",
        }
    }
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server or network failed (after retries).
    #[error("{url}: {reason}")]
    Transport {
        /// Redacted URL.
        url: String,
        /// What happened.
        reason: String,
        /// Whether a later run may succeed (network, 5xx) or not (404, 401).
        transient: bool,
    },
    /// More bytes than declared.
    #[error("{url}: the server sent more than the declared {limit} bytes; download aborted")]
    Oversize {
        /// Redacted URL.
        url: String,
        /// The declared size.
        limit: u64,
    },
    /// Fewer bytes than declared, and retries did not complete it.
    #[error("{url}: the download ended after {got} of {want} bytes")]
    Truncated {
        /// Redacted URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Declared size.
        want: u64,
    },
    /// A complete answer with fewer bytes than declared: the served file
    /// is smaller than the source says (not a cut connection).
    #[error(
        "{url}: the server sent a complete answer of {got} bytes, but the source declares {want}"
    )]
    Short {
        /// Redacted URL.
        url: String,
        /// Bytes in the answer (with a resumed prefix).
        got: u64,
        /// Declared size.
        want: u64,
    },
    /// The digest does not match the list.
    #[error("{url}: {algo} mismatch: the source says {want}, the downloaded file has {got}; the file was discarded")]
    ChecksumMismatch {
        /// Redacted URL.
        url: String,
        /// `sha512` or `sha256`.
        algo: &'static str,
        /// From the list.
        want: String,
        /// Computed.
        got: String,
    },
    /// Not enough disk space.
    #[error("{dir}: not enough free space for {need} bytes ({have} available)")]
    DiskFull {
        /// The cache directory.
        dir: PathBuf,
        /// Needed.
        need: u64,
        /// Available.
        have: u64,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer in time, too slow, or past the deadline.
    #[error("{url}: timeout: {what}")]
    Timeout {
        /// Redacted URL.
        url: String,
        /// Which limit, its value and its setting.
        what: String,
        /// Retried within the deadline (a stall); false once the deadline
        /// passed.
        transient: bool,
    },
    /// The URL (or a redirect) has a scheme that is not allowed here.
    #[error("{refused}{}", hint(refused))]
    Scheme {
        /// What was refused.
        refused: scheme::SchemeRefused,
    },
}

fn hint(r: &scheme::SchemeRefused) -> &'static str {
    if r.scheme == "http" {
        " (plain http is allowed only where images.allow-http says so)"
    } else {
        ""
    }
}

impl FetchError {
    /// What the operator can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            FetchError::Transport { transient: true, .. } => "a transient failure: the next run retries",
            FetchError::Transport { .. } => "check the URL and the subscription's token",
            FetchError::Timeout { .. } => "the server answered too slowly or not at all; the next run retries (a partial image is resumed); if the link is legitimately slow, raise images.transfer (deadlines, min-rate-kib)",
            FetchError::Scheme { .. } => "only https is followed (and http where images.allow-http allows it); ask the publisher for an https URL, or allow http for this place",
            FetchError::Oversize { .. } | FetchError::ChecksumMismatch { .. } | FetchError::Short { .. } => {
                "the served file is not the one the list describes; nothing was uploaded; report it to the list's publisher"
            }
            FetchError::Truncated { .. } => "the server cut the transfer: the next run resumes it",
            FetchError::DiskFull { .. } => "free space in paths.image-data (or enlarge its volume); the next run retries",
            FetchError::Io { .. } => "check permissions and space of paths.image-data",
        }
    }
    fn io(path: &Path, source: std::io::Error) -> FetchError {
        FetchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The HTTP clients of the image flow: one following only `https`, one
/// also `http`, each with the scheme policy on redirects.
#[derive(Clone)]
pub struct Fetcher {
    /// The client following only https, and the one also following http,
    /// each made on first use (a run that needs one builds one: a client
    /// costs its trust store).
    https_only: Arc<OnceLock<reqwest::Client>>,
    with_http: Arc<OnceLock<reqwest::Client>>,
    certs: Arc<Vec<reqwest::Certificate>>,
    allow_http: AllowHttp,
    limits: Limits,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("allow_http", &self.allow_http)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Every certificate in an IGTF-style directory (`*.0`..`*.9`, `*.pem`).
fn ca_dir_certs(dir: &Path) -> Vec<reqwest::Certificate> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        let is_cert = name.ends_with(".pem")
            || name
                .rsplit_once('.')
                .is_some_and(|(_, x)| x.len() == 1 && x.as_bytes()[0].is_ascii_digit());
        if !is_cert {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        if let Ok(stack) = openssl::x509::X509::stack_from_pem(&bytes) {
            for c in stack {
                if let Ok(der) = c.to_der() {
                    if seen.insert(der.clone()) {
                        if let Ok(cert) = reqwest::Certificate::from_der(&der) {
                            out.push(cert);
                        }
                    }
                }
            }
        }
    }
    out
}

fn transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, Default)]
pub enum Auth<'a> {
    /// Anonymous.
    #[default]
    None,
    /// An image-list token: HTTP Basic `(token, x-oauth-basic)`.
    ListToken(&'a Secret),
    /// HTTP Basic user and password (registry robot accounts).
    Basic(&'a str, &'a Secret),
    /// A bearer token (registry token service).
    Bearer(&'a Secret),
}

impl<'a> Auth<'a> {
    /// A list token, if any.
    pub fn list_token(t: Option<&'a Secret>) -> Auth<'a> {
        t.map(Auth::ListToken).unwrap_or_default()
    }
    fn header(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        let b64 = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let raw = match self {
            Auth::None => return None,
            Auth::ListToken(t) => b64(t.expose(), "x-oauth-basic"),
            Auth::Basic(u, p) => b64(u, p.expose()),
            Auth::Bearer(t) => format!("Bearer {}", t.expose()),
        };
        let mut v = HeaderValue::from_str(&raw).unwrap_or_else(|_| HeaderValue::from_static(""));
        v.set_sensitive(true);
        Some(v)
    }
}

/// The digest a download must have (lower-case hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<'a> {
    /// A list image's `sl:checksum:sha512`.
    Sha512(&'a str),
    /// A registry layer's `sha256:` digest (hex part).
    Sha256(&'a str),
}

impl Want<'_> {
    fn algo(&self) -> &'static str {
        match self {
            Want::Sha512(_) => "sha512",
            Want::Sha256(_) => "sha256",
        }
    }
    fn hex(&self) -> &str {
        match self {
            Want::Sha512(h) | Want::Sha256(h) => h,
        }
    }
    /// What the partial file's marker records.
    fn marker(&self) -> String {
        format!("{}:{}", self.algo(), self.hex())
    }
}

/// Digests and size of a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sums {
    sha512: String,
    sha256: Option<String>,
    size: u64,
}

/// What a completed image download gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The final file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Bytes transferred by this run (0 when resumed to completion).
    pub transferred: u64,
    /// Whether a partial file was resumed.
    pub resumed: bool,
    /// Its sha512 (hex), whatever digest was checked.
    pub sha512: String,
}

impl Fetcher {
    /// Clients trusting the system roots plus `ca_dir`, following `https`
    /// and `http` for every place (lists, images, registries), never any
    /// other scheme, also on redirects. For callers whose URLs may use
    /// plain http by convention (CRLs, verified by their signature) or
    /// that apply `images.allow-http` themselves; the image flow uses
    /// [`Fetcher::with_allow_http`].
    pub fn new(ca_dir: Option<&Path>, limits: Limits) -> Result<Fetcher, String> {
        let all = AllowHttp {
            lists: true,
            images: true,
            registries: true,
        };
        Fetcher::with_allow_http(ca_dir, limits, all)
    }

    /// Clients trusting the system roots plus `ca_dir`, following `http`
    /// only where `allow_http` says (`https` everywhere; no other scheme,
    /// also on redirects).
    pub fn with_allow_http(
        ca_dir: Option<&Path>,
        limits: Limits,
        allow_http: AllowHttp,
    ) -> Result<Fetcher, String> {
        let f = Fetcher {
            https_only: Arc::default(),
            with_http: Arc::default(),
            certs: Arc::new(ca_dir.map(ca_dir_certs).unwrap_or_default()),
            allow_http,
            limits,
        };
        // The lists' client now, so that a client that cannot be built is
        // an error here; another one later is built the same way.
        let first = f.build(Place::List.http(allow_http))?;
        f.cell(Place::List.http(allow_http)).get_or_init(|| first);
        Ok(f)
    }

    fn cell(&self, http: Http) -> &OnceLock<reqwest::Client> {
        match http {
            Http::Allowed => &self.with_http,
            Http::Refused => &self.https_only,
        }
    }

    fn build(&self, http: Http) -> Result<reqwest::Client, String> {
        let mut b = crate::tls::reqwest_builder()
            .user_agent(crate::openstack::http::USER_AGENT)
            .connect_timeout(self.limits.connect_timeout)
            // A backstop for the requests outside the minimum-rate watch
            // (registry API): the watch itself cuts at one window.
            .read_timeout(self.limits.rate_window * 2)
            .redirect(scheme::redirect_policy(http));
        for c in self.certs.iter() {
            b = b.add_root_certificate(c.clone());
        }
        b.build().map_err(|e| e.to_string())
    }

    fn client_with(&self, http: Http) -> reqwest::Client {
        self.cell(http)
            .get_or_init(|| {
                self.build(http)
                    .expect("an HTTP client with the settings of one already built")
            })
            .clone()
    }

    /// The HTTP client for `place` (same trust; `http`, also on
    /// redirects, only where allowed).
    pub fn client_for(&self, place: Place) -> reqwest::Client {
        self.client_with(place.http(self.allow_http))
    }

    /// The HTTP client that follows `https` and `http` (and no other
    /// scheme, also on redirects), whatever `images.allow-http` says.
    pub fn client(&self) -> reqwest::Client {
        self.client_with(Http::Allowed)
    }

    /// The bytes of a list source: a local file is read (`file:`), a URL
    /// fetched with [`Fetcher::get_list`].
    pub async fn get_source(
        &self,
        source: &crate::config::sections::images::ListSource,
        token: Option<&Secret>,
    ) -> Result<Vec<u8>, FetchError> {
        match source {
            crate::config::sections::images::ListSource::Url(u) => self.get_list(u, token).await,
            crate::config::sections::images::ListSource::File(f) => {
                std::fs::read(f).map_err(|e| FetchError::io(f, e))
            }
        }
    }

    /// Refuse `url` for `place` unless its scheme is allowed there.
    pub fn check_scheme(&self, url: &Url, place: Place) -> Result<(), FetchError> {
        scheme::check(url, place.what(), place.http(self.allow_http))
            .map_err(|refused| FetchError::Scheme { refused })
    }

    /// The `allow-http` entry `place` needs for `http`.
    pub fn allow_key(place: Place) -> &'static str {
        place.allow_key()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let d = self
            .limits
            .retry_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.limits.retry_cap);
        d / 2 + d.mul_f64(rand::random::<f64>() / 2.0)
    }

    fn request(&self, url: &Url, auth: Auth<'_>, place: Place) -> reqwest::RequestBuilder {
        let mut rb = self.client_for(place).get(url.clone());
        if let Some(h) = auth.header() {
            rb = rb.header(AUTHORIZATION, h);
        }
        rb
    }

    /// Send `rb`, waiting at most one rate window (and never past
    /// `deadline`) for the answer's headers.
    async fn answer(
        &self,
        rb: reqwest::RequestBuilder,
        shown: &str,
        deadline: &Deadline,
    ) -> Result<reqwest::Response, FetchError> {
        let wake = (Instant::now() + self.limits.rate_window).min(deadline.at);
        match tokio::time::timeout_at(wake, rb.send()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(send_error(e, shown, self.limits.rate_window)),
            Err(_) if wake >= deadline.at => Err(deadline.passed(shown, None)),
            Err(_) => Err(stalled(shown, self.limits.rate_window)),
        }
    }

    /// Wait `delay` before the next try, unless that would pass the
    /// deadline: then the deadline error, naming the last failure.
    async fn pause(
        &self,
        delay: Duration,
        shown: &str,
        deadline: &Deadline,
        last: &FetchError,
    ) -> Result<(), FetchError> {
        if Instant::now() + delay >= deadline.at {
            return Err(deadline.passed(shown, Some(last)));
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// GET a list (memory, size-capped), with retries, within the list
    /// deadline.
    pub async fn get_list(&self, url: &Url, token: Option<&Secret>) -> Result<Vec<u8>, FetchError> {
        self.check_scheme(url, Place::List)?;
        let shown = redact_url(url);
        let deadline = Deadline::new(
            self.limits.list_deadline,
            "the list deadline",
            "images.transfer.list-deadline-seconds",
        );
        let mut attempt = 0;
        let mut last: Option<FetchError> = None;
        loop {
            let r = self.get_list_once(url, token, &shown, &deadline).await;
            match r {
                Err(e) if e.is_transient() && attempt + 1 < self.limits.tries => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(url = %shown, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %e, "retrying the list download");
                    self.pause(delay, &shown, &deadline, &e).await?;
                    last = Some(e);
                    attempt += 1;
                }
                other => return other.map_err(|e| deadline.with_last(e, last.as_ref(), &shown)),
            }
        }
    }

    async fn get_list_once(
        &self,
        url: &Url,
        token: Option<&Secret>,
        shown: &str,
        deadline: &Deadline,
    ) -> Result<Vec<u8>, FetchError> {
        let t = |reason: String, transient| FetchError::Transport {
            url: shown.to_string(),
            reason,
            transient,
        };
        let mut resp = self
            .answer(
                self.request(url, Auth::list_token(token), Place::List),
                shown,
                deadline,
            )
            .await?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(unfollowed_redirect(
                &resp,
                url,
                shown,
                Place::List.http(self.allow_http),
            ));
        }
        if !status.is_success() {
            return Err(t(format!("HTTP {status}"), transient_status(status)));
        }
        let mut body = Vec::new();
        let mut pace = Pace::new(&self.limits, deadline);
        let wake = tokio::time::sleep_until(pace.wake_at());
        tokio::pin!(wake);
        loop {
            tokio::select! {
                c = resp.chunk() => match c.map_err(|e| if e.is_timeout() {
                    body_stalled(shown, self.limits.rate_window)
                } else {
                    t(scheme::error_text(&e.without_url()), true)
                })? {
                    Some(chunk) => {
                        if body.len() + chunk.len() > self.limits.max_list_bytes {
                            return Err(t(
                                format!(
                                    "the list is larger than {} bytes",
                                    self.limits.max_list_bytes
                                ),
                                false,
                            ));
                        }
                        body.extend_from_slice(&chunk);
                        pace.check(Instant::now(), body.len() as u64, shown, &mut wake)?;
                    }
                    None => return Ok(body),
                },
                () = &mut wake => pace.check(Instant::now(), body.len() as u64, shown, &mut wake)?,
            }
        }
    }

    /// Download `url` (for `place`) into `dir/<name>`, verified against
    /// `size` and the wanted digest, resuming `dir/.partial/<name>.part`
    /// when present (its digest recorded in `dir/.partial/<name>.digest`),
    /// within the image deadline for `size`. A failure leaves no marker
    /// without its partial file.
    #[allow(clippy::too_many_arguments)]
    pub async fn download(
        &self,
        url: &Url,
        place: Place,
        auth: Auth<'_>,
        size: u64,
        want: Want<'_>,
        dir: &Path,
        name: &str,
    ) -> Result<Downloaded, FetchError> {
        self.check_scheme(url, place)?;
        let partial_dir = dir.join(".partial");
        let partial = partial_dir.join(super::cache::partial_name(name));
        let marker = partial_dir.join(super::cache::marker_name(name));
        let r: Result<Downloaded, FetchError> = async {
            let shown = redact_url(url);
            std::fs::create_dir_all(&partial_dir).map_err(|e| FetchError::io(&partial_dir, e))?;
            let mark = want.marker();
            // A partial for other bytes is useless.
            if std::fs::read_to_string(&marker).ok().as_deref() != Some(mark.as_str()) {
                let _ = std::fs::remove_file(&partial);
                std::fs::write(&marker, &mark).map_err(|e| FetchError::io(&marker, e))?;
            }
            let sha256 = matches!(want, Want::Sha256(_));
            let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if have > size {
                let _ = std::fs::remove_file(&partial);
            }
            let have = have.min(size);
            check_free_space(dir, size - have + self.limits.free_space_margin)?;
            let deadline = Deadline::new(
                self.limits.image_deadline_for(size),
                "the image deadline",
                "images.transfer.image-deadline-seconds plus the size at min-rate-kib",
            );

            let mut attempt = 0;
            let mut transferred = 0;
            let mut resumed = false;
            let mut last: Option<FetchError> = None;
            let digest;
            loop {
                let r = self
                    .download_once(
                        url, place, auth, size, sha256, &partial, &shown, &deadline, name,
                    )
                    .await;
                match r {
                    Ok(Transfer {
                        bytes,
                        resumed: r,
                        digest: d,
                    }) => {
                        transferred += bytes;
                        resumed |= r;
                        digest = d;
                        break;
                    }
                    Err(Step::Retry(err, bytes)) if attempt + 1 < self.limits.tries => {
                        transferred += bytes;
                        let delay = self.backoff(attempt);
                        tracing::warn!(url = %shown, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %err, "download interrupted; retrying (resuming when the server allows it)");
                        self.pause(delay, &shown, &deadline, &err).await?;
                        last = Some(err);
                        attempt += 1;
                    }
                    Err(Step::Retry(err, _)) | Err(Step::Fail(err)) => {
                        if matches!(err, FetchError::Oversize { .. }) {
                            let _ = std::fs::remove_file(&partial);
                        }
                        return Err(deadline.with_last(err, last.as_ref(), &shown));
                    }
                }
            }
            // Size and digest of the complete file (hashed while written; a
            // resumed prefix was hashed from disk first).
            let got = match digest {
                Some(d) => d,
                None => sums_of(&partial, sha256).map_err(|e| FetchError::io(&partial, e))?,
            };
            if got.size != size {
                return Err(FetchError::Truncated {
                    url: shown,
                    got: got.size,
                    want: size,
                });
            }
            let have = match want {
                Want::Sha512(_) => Some(got.sha512.as_str()),
                Want::Sha256(_) => got.sha256.as_deref(),
            };
            if have != Some(want.hex()) {
                let _ = std::fs::remove_file(&partial);
                return Err(FetchError::ChecksumMismatch {
                    url: shown,
                    algo: want.algo(),
                    want: want.hex().into(),
                    got: have.unwrap_or_default().into(),
                });
            }
            let dest = dir.join(name);
            std::fs::rename(&partial, &dest).map_err(|e| FetchError::io(&dest, e))?;
            let _ = std::fs::remove_file(&marker);
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| FetchError::io(dir, e))?;
            Ok(Downloaded {
                path: dest,
                size,
                transferred,
                resumed,
                sha512: got.sha512,
            })
        }
        .await;
        if r.is_err() && std::fs::metadata(&partial).map_or(true, |m| m.len() == 0) {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&marker);
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_once(
        &self,
        url: &Url,
        place: Place,
        auth: Auth<'_>,
        size: u64,
        sha256: bool,
        partial: &Path,
        shown: &str,
        deadline: &Deadline,
        progress_key: &str,
    ) -> Result<Transfer, Step> {
        let t = |reason: String, transient| FetchError::Transport {
            url: shown.to_string(),
            reason,
            transient,
        };
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if have == size && size > 0 {
            return Ok(Transfer {
                bytes: 0,
                resumed: true,
                digest: None,
            });
        }
        let mut rb = self.request(url, auth, place);
        if have > 0 {
            rb = rb.header(RANGE, format!("bytes={have}-"));
        }
        let mut resp = match self.answer(rb, shown, deadline).await {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(Step::Retry(e, 0)),
            Err(e) => return Err(Step::Fail(e)),
        };
        let status = resp.status();
        let append = match status {
            StatusCode::PARTIAL_CONTENT if have > 0 => {
                let ok = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
                if !ok {
                    return Err(Step::Fail(t("unexpected Content-Range".into(), false)));
                }
                true
            }
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = std::fs::remove_file(partial);
                return Err(Step::Retry(
                    t("HTTP 416 for the resume range".into(), true),
                    0,
                ));
            }
            s if s.is_redirection() => {
                return Err(Step::Fail(unfollowed_redirect(
                    &resp,
                    url,
                    shown,
                    place.http(self.allow_http),
                )))
            }
            s if transient_status(s) => return Err(Step::Retry(t(format!("HTTP {s}"), true), 0)),
            s => return Err(Step::Fail(t(format!("HTTP {s}"), false))),
        };
        if append {
            tracing::info!(url = %shown, offset = have, "resuming a partial download");
        }
        let start = if append { have } else { 0 };
        if resp.content_length().is_some_and(|n| start + n > size) {
            return Err(Step::Fail(FetchError::Oversize {
                url: shown.into(),
                limit: size,
            }));
        }
        // Two threads, each fed by a bounded channel of 1 MiB blocks
        // (shared, not copied): one hashes, one appends to the partial file
        // and starts the write-back early, so hashing, disk writes and the
        // network overlap.
        let (mut tx, sink) = spawn_sink(partial.to_path_buf(), append, sha256);
        let mut count = start;
        let mut result = Ok(());
        let mut pace = Pace::new(&self.limits, deadline);
        let wake = tokio::time::sleep_until(pace.wake_at());
        tokio::pin!(wake);
        loop {
            let next = tokio::select! {
                c = resp.chunk() => c,
                () = &mut wake => match pace.check(Instant::now(), count - start, shown, &mut wake) {
                    Ok(()) => continue,
                    Err(e) => {
                        result = Err(if e.is_transient() { Step::Retry(e, 0) } else { Step::Fail(e) });
                        break;
                    }
                },
            };
            match next {
                Ok(Some(chunk)) => {
                    count += chunk.len() as u64;
                    crate::progress::bytes(progress_key, count);
                    if count > size {
                        result = Err(Step::Fail(FetchError::Oversize {
                            url: shown.into(),
                            limit: size,
                        }));
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed: its error is below
                    }
                    if let Err(e) = pace.check(Instant::now(), count - start, shown, &mut wake) {
                        result = Err(if e.is_transient() {
                            Step::Retry(e, 0)
                        } else {
                            Step::Fail(e)
                        });
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    result = Err(Step::Retry(body_stalled(shown, self.limits.rate_window), 0));
                    break;
                }
                Err(e) => {
                    tracing::debug!(url = %shown, error = %e.without_url(), bytes = count, "the body was cut short");
                    result = Err(Step::Retry(
                        FetchError::Truncated {
                            url: shown.into(),
                            got: count,
                            want: size,
                        },
                        0,
                    ));
                    break;
                }
            }
        }
        let _ = tx.finish().await; // a stopped thread reports below
        let digest = sink
            .await
            .map_err(|e| Step::Fail(FetchError::io(partial, e)))?;
        let bytes = count - start;
        result.map_err(|s| match s {
            Step::Retry(e, _) => Step::Retry(e, bytes),
            f => f,
        })?;
        if count < size {
            // A clean end: the served file is smaller than declared.
            // Resuming cannot help; the partial is useless.
            let _ = std::fs::remove_file(partial);
            return Err(Step::Fail(FetchError::Short {
                url: shown.into(),
                got: count,
                want: size,
            }));
        }
        Ok(Transfer {
            bytes,
            resumed: append,
            digest: Some(digest),
        })
    }
}

/// Bytes between early write-back requests (`sync_file_range`).
const WRITEBACK_STEP: u64 = 32 << 20;

/// Bytes handed to the threads at a time: network chunks (often a few
/// KiB) are gathered into blocks of this size, so each thread wakes once
/// per block, not once per chunk.
const SINK_BLOCK: usize = 1 << 20;
/// Blocks in flight per thread (bounds memory: at most this many blocks
/// are buffered, shared by both threads).
const SINK_DEPTH: usize = 8;

/// The sender side of a download sink: every block goes to the hashing
/// thread and to the writing thread (shared, not copied).
struct SinkTx {
    hash: tokio::sync::mpsc::Sender<bytes::Bytes>,
    write: tokio::sync::mpsc::Sender<bytes::Bytes>,
    buf: bytes::BytesMut,
}

impl SinkTx {
    /// Add `chunk`; hands a block to both threads when one is full
    /// (waiting while a channel is full). Err when a thread has stopped.
    async fn send(&mut self, chunk: bytes::Bytes) -> Result<(), ()> {
        if self.buf.is_empty() && chunk.len() >= SINK_BLOCK / 4 {
            return self.hand(chunk).await;
        }
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= SINK_BLOCK {
            let block = self.buf.split().freeze();
            self.buf.reserve(SINK_BLOCK);
            return self.hand(block).await;
        }
        Ok(())
    }
    /// Hand over what is gathered, then close the channels.
    async fn finish(mut self) -> Result<(), ()> {
        if !self.buf.is_empty() {
            let block = self.buf.split().freeze();
            self.hand(block).await?;
        }
        Ok(())
    }
    async fn hand(&self, block: bytes::Bytes) -> Result<(), ()> {
        self.hash.send(block.clone()).await.map_err(|_| ())?;
        self.write.send(block).await.map_err(|_| ())
    }
}

type SinkResult =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Sums>> + Send>>;

/// Start the hashing and writing threads for `path` (appending when
/// `append`: the existing prefix is hashed from disk first). The future
/// gives the sha512 (and the sha256 when `sha256`) and byte count of the
/// whole file once the sender is dropped, after the data is on disk
/// (fsync).
fn spawn_sink(path: PathBuf, append: bool, sha256: bool) -> (SinkTx, SinkResult) {
    let (htx, mut hrx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SINK_DEPTH);
    let (wtx, mut wrx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SINK_DEPTH);
    let hpath = path.clone();
    let hasher = tokio::task::spawn_blocking(move || -> std::io::Result<Sums> {
        let mut h = Hashers::new(sha256);
        if append {
            h.read_all(std::fs::File::open(&hpath)?)?;
        }
        while let Some(chunk) = hrx.blocking_recv() {
            h.update(&chunk);
        }
        Ok(h.finish())
    });
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)?;
        let mut pos = f.metadata()?.len();
        let mut flushed = pos;
        while let Some(block) = wrx.blocking_recv() {
            f.write_all(&block)?;
            pos += block.len() as u64;
            if pos - flushed >= WRITEBACK_STEP {
                start_writeback(&f, flushed, pos - flushed);
                flushed = pos;
            }
        }
        f.sync_all()
    });
    // If the hasher stops early (it cannot, short of a panic) the writer
    // still ends when the sender is dropped.
    let fut = async move {
        let wr = writer.await.map_err(std::io::Error::other);
        let hr = hasher.await.map_err(std::io::Error::other);
        wr??;
        hr?
    };
    (
        SinkTx {
            hash: htx,
            write: wtx,
            buf: bytes::BytesMut::with_capacity(SINK_BLOCK),
        },
        Box::pin(fut),
    )
}

/// Ask the kernel to start writing `[off, off+len)` of `f` back to disk
/// now (not waiting), so the final fsync has little left to do and dirty
/// pages do not pile up. Best effort.
fn start_writeback(f: &std::fs::File, off: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor; no memory is shared.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            off as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

struct Transfer {
    bytes: u64,
    resumed: bool,
    digest: Option<Sums>,
}

enum Step {
    Retry(FetchError, u64),
    Fail(FetchError),
}

impl FetchError {
    /// The message without its leading `<url>: `.
    fn without_url(&self, shown: &str) -> String {
        let s = self.to_string();
        match s.strip_prefix(&format!("{shown}: ")) {
            Some(rest) => rest.to_string(),
            None => s,
        }
    }
    /// Whether another try may succeed (within the deadline).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Transport {
                transient: true,
                ..
            } | FetchError::Timeout {
                transient: true,
                ..
            } | FetchError::Truncated { .. }
        )
    }
}

/// The error of a request that got no answer: a refused redirect is
/// final, everything else (connection, TLS, reset) transient.
fn send_error(e: reqwest::Error, shown: &str, window: Duration) -> FetchError {
    let refused = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<scheme::SchemeRefused>())
        .cloned();
    match refused {
        Some(refused) => FetchError::Scheme { refused },
        None if e.is_timeout() => stalled(shown, window),
        None => FetchError::Transport {
            url: shown.to_string(),
            transient: !e.is_redirect(),
            reason: scheme::error_text(&e.without_url()),
        },
    }
}

/// No answer within a rate window.
fn stalled(shown: &str, window: Duration) -> FetchError {
    FetchError::Timeout {
        url: shown.to_string(),
        what: format!(
            "no answer within {} s (images.transfer.rate-window-seconds)",
            window.as_secs()
        ),
        transient: true,
    }
}

/// Nothing arrived for two rate windows during a body (the client's read
/// timeout; the minimum-rate watch normally cuts before).
fn body_stalled(shown: &str, window: Duration) -> FetchError {
    FetchError::Timeout {
        url: shown.to_string(),
        what: format!(
            "no data for {} s (images.transfer.rate-window-seconds)",
            (window * 2).as_secs()
        ),
        transient: true,
    }
}

/// A redirect the client did not follow: its target has a scheme the
/// HTTP client does not speak (`file:`, `ftp:`, ...). Refused by name.
fn unfollowed_redirect(resp: &reqwest::Response, url: &Url, shown: &str, http: Http) -> FetchError {
    let target = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok());
    match target.map(|t| scheme::check(&t, "a redirect target", http)) {
        Some(Err(refused)) => FetchError::Scheme { refused },
        _ => FetchError::Transport {
            url: shown.to_string(),
            reason: format!("HTTP {} (a redirect that was not followed)", resp.status()),
            transient: false,
        },
    }
}

/// A transfer's deadline, retries included.
struct Deadline {
    at: Instant,
    after: Duration,
    name: &'static str,
    setting: &'static str,
}

impl Deadline {
    fn new(after: Duration, name: &'static str, setting: &'static str) -> Deadline {
        Deadline {
            at: Instant::now() + after,
            after,
            name,
            setting,
        }
    }
    /// `e`, with the last try's failure added when `e` is this deadline
    /// passing without one.
    fn with_last(&self, e: FetchError, last: Option<&FetchError>, shown: &str) -> FetchError {
        match (&e, last) {
            (
                FetchError::Timeout {
                    what,
                    transient: false,
                    ..
                },
                Some(_),
            ) if !what.contains("; last try: ") => self.passed(shown, last),
            _ => e,
        }
    }
    fn passed(&self, shown: &str, last: Option<&FetchError>) -> FetchError {
        FetchError::Timeout {
            url: shown.to_string(),
            what: format!(
                "not complete within {} of {} s ({}){}",
                self.name,
                self.after.as_secs(),
                self.setting,
                last.map(|e| format!("; last try: {}", e.without_url(shown)))
                    .unwrap_or_default()
            ),
            transient: false,
        }
    }
}

/// The minimum-rate watch of one transfer: every window must bring at
/// least `min_rate * window` bytes; no wait passes the deadline.
struct Pace<'a> {
    window: Duration,
    min_rate: u64,
    start: Instant,
    at_start: u64,
    deadline: &'a Deadline,
}

impl<'a> Pace<'a> {
    fn new(limits: &Limits, deadline: &'a Deadline) -> Pace<'a> {
        Pace {
            window: limits.rate_window,
            min_rate: limits.min_rate,
            start: Instant::now(),
            at_start: 0,
            deadline,
        }
    }
    /// When the current window ends (or the deadline, if sooner).
    fn wake_at(&self) -> Instant {
        (self.start + self.window).min(self.deadline.at)
    }
    /// At `now`, with `total` bytes received: past the deadline, or a
    /// window that ended with too few bytes, is a timeout; a window that
    /// ended with enough starts the next (and moves `wake`).
    fn check(
        &mut self,
        now: Instant,
        total: u64,
        shown: &str,
        wake: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<(), FetchError> {
        if now >= self.deadline.at {
            return Err(self.deadline.passed(shown, None));
        }
        if now < self.start + self.window {
            return Ok(());
        }
        let got = total - self.at_start;
        let need = self.min_rate.saturating_mul(self.window.as_secs().max(1));
        if got < need {
            return Err(FetchError::Timeout {
                url: shown.to_string(),
                what: format!(
                    "{got} bytes in {} s, below the minimum rate of {} KiB/s (images.transfer.min-rate-kib, rate-window-seconds)",
                    self.window.as_secs(),
                    self.min_rate / 1024
                ),
                transient: true,
            });
        }
        self.start = now;
        self.at_start = total;
        wake.as_mut().reset(self.wake_at());
        Ok(())
    }
}

/// The running digests of a stream.
struct Hashers {
    sha512: Sha512,
    sha256: Option<Sha256>,
    n: u64,
}

impl Hashers {
    fn new(sha256: bool) -> Hashers {
        Hashers {
            sha512: Sha512::new(),
            sha256: sha256.then(Sha256::new),
            n: 0,
        }
    }
    fn update(&mut self, b: &[u8]) {
        self.sha512.update(b);
        if let Some(h) = &mut self.sha256 {
            h.update(b);
        }
        self.n += b.len() as u64;
    }
    /// Feed a whole reader in 1 MiB blocks.
    fn read_all(&mut self, mut r: impl Read) -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                return Ok(());
            }
            self.update(&buf[..k]);
        }
    }
    fn finish(self) -> Sums {
        Sums {
            sha512: hex::encode(self.sha512.finish()),
            sha256: self.sha256.map(|h| hex::encode(h.finish())),
            size: self.n,
        }
    }
}

fn sums_of(path: &Path, sha256: bool) -> std::io::Result<Sums> {
    let mut h = Hashers::new(sha256);
    h.read_all(std::fs::File::open(path)?)?;
    Ok(h.finish())
}

/// sha512 (hex) and size of a file, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let s = sums_of(path, false)?;
    Ok((s.sha512, s.size))
}

/// Available bytes on the file system of `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains NUL"))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into the struct we own; the path is NUL-terminated.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

fn check_free_space(dir: &Path, need: u64) -> Result<(), FetchError> {
    let have = free_space(dir).map_err(|e| FetchError::io(dir, e))?;
    if have < need {
        return Err(FetchError::DiskFull {
            dir: dir.to_path_buf(),
            need,
            have,
        });
    }
    Ok(())
}
