//! The ARGO Messaging Service publisher (spec `accounting.md` §4.4–§4.6, §5):
//! a token from the authn service with the host certificate (`authx509`
//! over mutual TLS on port 8443) or a static token, then one
//! `POST /v1/projects/{project}/topics/{topic}:publish` per message with
//! `x-api-key`, the body exactly as `ssmsend` sends it.
//!
//! Retry policy ([`classify`]): connection errors, timeouts, 408, 429 and
//! 5xx are retried with capped exponential backoff; 400 and 413 reject the
//! *message* (the caller quarantines it and goes on); 401, 403, 404 and
//! any other answer refuse the *run* (a credential or configuration
//! problem that no message can fix: everything stays in the spool). A 401
//! with an `authx509` token fetches a new token once before giving up.
//!
//! TLS: the server is verified against the system roots plus every
//! certificate of `capath` (IGTF hashed directory) and `ca-file`. The token
//! is a [`Secret`] and never appears in errors or logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;

use super::identity::{zeroizing, HostCredential};
use crate::secret::Secret;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("fedcloud-appliance/", env!("CARGO_PKG_VERSION"));

/// Largest broker answer kept (quarantine notes, errors).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Where to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// AMS host name (`msg.argo.grnet.gr`); also the `{host}` of `authx509`.
    pub host: String,
    /// HTTPS port of the API (443).
    pub port: u16,
    /// HTTPS port of the authn service (8443).
    pub authn_port: u16,
    /// AMS project (`accounting`).
    pub project: String,
    /// Topic (`eu-egi-cloud-accounting`).
    pub topic: String,
}

impl Endpoint {
    fn base(&self, port: u16) -> String {
        if port == 443 {
            format!("https://{}", self.host)
        } else {
            format!("https://{}:{port}", self.host)
        }
    }

    /// The publish URL.
    pub fn publish_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/topics/{}:publish",
            self.base(self.port),
            self.project,
            self.topic
        )
    }

    /// The `authx509` URL (argo-ams-library's form: the bare host in the path).
    pub fn authx509_url(&self) -> String {
        format!(
            "{}/v1/service-types/ams/hosts/{}:authx509",
            self.base(self.authn_port),
            self.host
        )
    }
}

/// Timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per request (argo-ams-library via SSM: 10 s).
    pub timeout: Duration,
    /// Retries after the first try on a transient failure (SSM: 3).
    pub retries: u32,
    /// First delay between tries; doubles each time.
    pub backoff: Duration,
    /// Longest delay between tries.
    pub backoff_cap: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

/// The delay before retry number `attempt` (0-based): `backoff × 2^attempt`,
/// capped.
pub fn backoff_delay(limits: &Limits, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
    limits
        .backoff
        .checked_mul(factor)
        .unwrap_or(limits.backoff_cap)
        .min(limits.backoff_cap)
}

/// How to get the token.
pub enum Auth<'a> {
    /// A static token (the secrets file's `ams.token`, or `sender.cfg`'s `token`).
    Token(Secret),
    /// `authx509` with the host certificate.
    X509(&'a HostCredential),
}

/// TLS trust for the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// IGTF hashed CA directory (`capath`).
    pub ca_dir: Option<PathBuf>,
    /// Extra PEM bundle.
    pub ca_file: Option<PathBuf>,
}

/// What one publish attempt sequence ended in, by whose fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Accepted.
    Accepted,
    /// Try again later (408, 429, 5xx).
    Transient,
    /// The message itself is refused (400, 413): quarantine it.
    RejectMessage,
    /// The run cannot go on (401, 403, 404, anything else).
    RefuseRun,
}

/// The policy of the module docs, for an HTTP status.
pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Accepted,
        408 | 429 | 500..=599 => Class::Transient,
        400 | 413 => Class::RejectMessage,
        _ => Class::RefuseRun,
    }
}

/// An AMS failure. Each variant names the URL and carries the broker's
/// answer (never a token).
#[derive(Debug, thiserror::Error)]
pub enum AmsError {
    /// The client could not be set up (trust anchors, identity).
    #[error("setting up the AMS client: {0}")]
    Setup(String),
    /// The broker refused this message (400, 413): quarantine it.
    #[error("AMS rejected the message: HTTP {status} from {url}: {answer}")]
    Rejected {
        /// The publish URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The broker's answer (excerpt).
        answer: String,
    },
    /// The broker refused the request for a reason no message can fix.
    #[error("AMS refused the request: HTTP {status} from {url}: {answer}; {hint}")]
    Refused {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The broker's answer (excerpt).
        answer: String,
        /// What to check.
        hint: String,
    },
    /// Still failing after every retry (connection, timeout, 408/429/5xx).
    #[error("AMS unavailable after {attempts} attempts at {url}: {last}")]
    Unavailable {
        /// The URL.
        url: String,
        /// Tries made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// `authx509` answered 200 without a token.
    #[error("the AMS authn service at {url} answered without a token: {answer}")]
    NoToken {
        /// The URL.
        url: String,
        /// The answer (excerpt).
        answer: String,
    },
}

/// A publish that the broker accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id AMS gave the message (`messageIds[0]`), if it said.
    pub message_id: Option<String>,
    /// Tries it took (1 = first time).
    pub attempts: u32,
}

/// A connected publisher: it holds the token.
pub struct AmsClient {
    http: reqwest::Client,
    authn: Option<reqwest::Client>,
    endpoint: Endpoint,
    limits: Limits,
    token: Secret,
}

impl std::fmt::Debug for AmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmsClient")
            .field("endpoint", &self.endpoint)
            .field("limits", &self.limits)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The body `ssmsend` (argo-ams-library, Python `json.dumps`) sends for one
/// message, byte for byte: `{"messages": [{"attributes": {"empaid": NAME}, "data": BASE64}]}`.
pub fn publish_body(empaid: &str, payload: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(payload);
    let name = py_json_string(empaid);
    format!(r#"{{"messages": [{{"attributes": {{"empaid": {name}}}, "data": "{data}"}}]}}"#)
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`).
fn py_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::pyjson::string(&mut out, s);
    out
}

/// Trust anchors from `trust`, as reqwest certificates, and how many.
fn trust_anchors(trust: &Trust) -> Result<Vec<reqwest::Certificate>, AmsError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |bytes: &[u8], out: &mut Vec<reqwest::Certificate>| {
        let certs = openssl::x509::X509::stack_from_pem(bytes).unwrap_or_default();
        for c in certs {
            let Ok(der) = c.to_der() else { continue };
            if seen.insert(der.clone()) {
                if let Ok(cert) = reqwest::Certificate::from_der(&der) {
                    out.push(cert);
                }
            }
        }
    };
    if let Some(file) = &trust.ca_file {
        let pem = std::fs::read(file).map_err(|e| {
            AmsError::Setup(format!("cannot read the CA file {}: {e}", file.display()))
        })?;
        add(&pem, &mut out);
    }
    if let Some(dir) = &trust.ca_dir {
        let rd = std::fs::read_dir(dir).map_err(|e| {
            AmsError::Setup(format!(
                "cannot read the CA directory (capath) {}: {e}",
                dir.display()
            ))
        })?;
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_cert_name(p))
            .collect();
        files.sort();
        for f in files {
            if let Ok(pem) = std::fs::read(&f) {
                add(&pem, &mut out);
            }
        }
    }
    Ok(out)
}

/// `<hash>.0`..`<hash>.9` or `*.pem`.
fn is_cert_name(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => {
            ext.eq_ignore_ascii_case("pem")
                || (ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit())
        }
        None => false,
    }
}

fn builder(limits: &Limits, roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut b = crate::tls::reqwest_builder()
        .user_agent(USER_AGENT)
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .redirect(reqwest::redirect::Policy::none());
    for r in roots {
        b = b.add_root_certificate(r.clone());
    }
    b
}

/// Read at most [`MAX_ANSWER_BYTES`] of a response body, lossily as text.
async fn answer_text(resp: reqwest::Response) -> String {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ANSWER_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// `reqwest` errors, without the chain's noise (and without the URL, which
/// the error that carries this names, redacted).
fn transport(e: &reqwest::Error) -> String {
    let mut s = crate::redact::text(&e.to_string());
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

impl AmsClient {
    /// Build the clients and get the token (for [`Auth::X509`], `authx509`
    /// with retries).
    pub async fn connect(
        endpoint: Endpoint,
        auth: Auth<'_>,
        trust: &Trust,
        limits: Limits,
    ) -> Result<AmsClient, AmsError> {
        let roots = trust_anchors(trust)?;
        let http = builder(&limits, &roots).build().map_err(|e| {
            AmsError::Setup(format!("cannot build the HTTP client: {}", transport(&e)))
        })?;
        let (authn, token) = match auth {
            Auth::Token(t) => (None, t),
            Auth::X509(cred) => {
                let cert_pem = cred
                    .cert
                    .to_pem()
                    .map_err(|e| AmsError::Setup(format!("host certificate to PEM: {e}")))?;
                let key_pem = zeroizing(
                    cred.key_pkcs8_pem()
                        .map_err(|e| AmsError::Setup(e.to_string()))?,
                );
                let identity =
                    reqwest::Identity::from_pkcs8_pem(&cert_pem, &key_pem.0).map_err(|e| {
                        AmsError::Setup(format!(
                            "host certificate {} and key {} as a TLS client identity: {}",
                            cred.cert_path.display(),
                            cred.key_path.display(),
                            transport(&e)
                        ))
                    })?;
                drop(key_pem);
                let client = builder(&limits, &roots)
                    .identity(identity)
                    .build()
                    .map_err(|e| {
                        AmsError::Setup(format!("cannot build the HTTP client: {}", transport(&e)))
                    })?;
                let token = fetch_token(&client, &endpoint, &limits).await?;
                (Some(client), token)
            }
        };
        Ok(AmsClient {
            http,
            authn,
            endpoint,
            limits,
            token,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET /v1/projects/{project}/topics/{topic}` with the token, once:
    /// the token is valid and the topic exists (nothing is published; for
    /// `doctor`). The broker's status decides: [`AmsError::Refused`] for
    /// 401/403/404, [`AmsError::Unavailable`] for no answer or 5xx.
    pub async fn check_topic(&self) -> Result<(), AmsError> {
        let e = &self.endpoint;
        let url = format!(
            "{}/v1/projects/{}/topics/{}",
            e.base(e.port),
            e.project,
            e.topic
        );
        let resp = self
            .http
            .get(&url)
            .header("x-api-key", self.token.expose())
            .header("Accept", "*/*")
            .send()
            .await
            .map_err(|err| AmsError::Unavailable {
                url: url.clone(),
                attempts: 1,
                last: transport(&err),
            })?;
        let status = resp.status().as_u16();
        match classify(status) {
            Class::Accepted => Ok(()),
            Class::Transient => Err(AmsError::Unavailable {
                url,
                attempts: 1,
                last: format!("HTTP {status}: {}", answer_text(resp).await),
            }),
            _ => Err(AmsError::Refused {
                hint: refusal_hint(status, e),
                answer: answer_text(resp).await,
                status,
                url,
            }),
        }
    }

    /// Publish one (signed) payload under `empaid`, retrying transient
    /// failures. [`AmsError::Rejected`] is about this message only.
    pub async fn publish(&mut self, empaid: &str, payload: &[u8]) -> Result<Accepted, AmsError> {
        let url = self.endpoint.publish_url();
        let body = publish_body(empaid, payload);
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(&url)
                .header("x-api-key", self.token.expose())
                .header("Accept", "*/*")
                .body(body.clone())
                .send()
                .await;
            let last = match sent {
                Err(e) => transport(&e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match classify(status) {
                        Class::Accepted => {
                            let text = answer_text(resp).await;
                            let message_id = serde_json::from_str::<serde_json::Value>(&text)
                                .ok()
                                .and_then(|v| v["messageIds"][0].as_str().map(str::to_string));
                            if message_id.is_none() {
                                tracing::warn!(empaid, answer = %text, "AMS accepted the message without a message id");
                            }
                            return Ok(Accepted {
                                message_id,
                                attempts: attempt,
                            });
                        }
                        Class::Transient => format!("HTTP {status}: {}", answer_text(resp).await),
                        Class::RejectMessage => {
                            return Err(AmsError::Rejected {
                                url,
                                status,
                                answer: answer_text(resp).await,
                            })
                        }
                        Class::RefuseRun => {
                            let answer = answer_text(resp).await;
                            if let (401, false, Some(client)) =
                                (status, refreshed, self.authn.as_ref())
                            {
                                refreshed = true;
                                tracing::warn!(status, "AMS refused the token; fetching a new one");
                                self.token =
                                    fetch_token(client, &self.endpoint, &self.limits).await?;
                                attempt -= 1;
                                continue;
                            }
                            return Err(AmsError::Refused {
                                url,
                                status,
                                answer,
                                hint: refusal_hint(status, &self.endpoint),
                            });
                        }
                    }
                }
            };
            if attempt > self.limits.retries {
                return Err(AmsError::Unavailable {
                    url,
                    attempts: attempt,
                    last,
                });
            }
            let delay = backoff_delay(&self.limits, attempt - 1);
            tracing::warn!(
                empaid,
                attempt,
                of = self.limits.retries + 1,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %last,
                "AMS publish failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

fn refusal_hint(status: u16, e: &Endpoint) -> String {
    match status {
        401 => "the token is not valid for this AMS: check `ams.token` in the secrets file, or that the host certificate DN is bound to an AMS user".into(),
        403 => format!("the AMS user may not publish to topic `{}` of project `{}`: ask the AMS operators to add it to the topic ACL", e.topic, e.project),
        404 => format!("project `{}` or topic `{}` does not exist on {}: check `ams.project` and `ams.topic`", e.project, e.topic, e.host),
        _ => "the messages stay in the spool; check the AMS settings".into(),
    }
}

/// `GET https://{host}:{authn_port}/v1/service-types/ams/hosts/{host}:authx509`
/// with the client certificate; `{"token": ...}`.
async fn fetch_token(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    limits: &Limits,
) -> Result<Secret, AmsError> {
    let url = endpoint.authx509_url();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let last = match client.get(&url).header("Accept", "*/*").send().await {
            Err(e) => transport(&e),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match classify(status) {
                    Class::Accepted => {
                        let text = answer_text(resp).await;
                        let token = serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v["token"].as_str().map(str::to_string))
                            .filter(|t| !t.is_empty());
                        return match token {
                            Some(t) => Ok(Secret::new(t)),
                            None => Err(AmsError::NoToken {
                                url,
                                answer: if text.contains("token") {
                                    "<answer withheld: it mentions a token>".into()
                                } else {
                                    text
                                },
                            }),
                        };
                    }
                    Class::Transient => format!("HTTP {status}: {}", answer_text(resp).await),
                    Class::RejectMessage | Class::RefuseRun => {
                        return Err(AmsError::Refused {
                            url,
                            status,
                            answer: answer_text(resp).await,
                            hint: "the AMS authn service did not accept the host certificate: its DN must be registered in GOCDB (service eu.egi.cloud.accounting) and known to AMS, or set a static `ams.token` in the secrets file".into(),
                        })
                    }
                }
            }
        };
        if attempt > limits.retries {
            return Err(AmsError::Unavailable {
                url,
                attempts: attempt,
                last,
            });
        }
        let delay = backoff_delay(limits, attempt - 1);
        tracing::warn!(attempt, error = %last, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "AMS authx509 failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(classify(200), Class::Accepted);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), Class::Transient, "{s}");
        }
        for s in [400, 413] {
            assert_eq!(classify(s), Class::RejectMessage, "{s}");
        }
        for s in [401, 403, 404, 405, 409, 302] {
            assert_eq!(classify(s), Class::RefuseRun, "{s}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let l = Limits {
            backoff: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60),
            ..Limits::default()
        };
        let d: Vec<u64> = (0..6).map(|a| backoff_delay(&l, a).as_secs()).collect();
        assert_eq!(d, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff_delay(&l, 1000), Duration::from_secs(60));
    }

    #[test]
    fn body_like_python() {
        assert_eq!(
            publish_body("6b02e264/6b02e26470f5e0", b"hi\n"),
            r#"{"messages": [{"attributes": {"empaid": "6b02e264/6b02e26470f5e0"}, "data": "aGkK"}]}"#
        );
        assert_eq!(
            py_json_string("a\"\\é\u{1F600}"),
            r#""a\"\\\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn urls() {
        let e = Endpoint {
            host: "msg.argo.grnet.gr".into(),
            port: 443,
            authn_port: 8443,
            project: "accounting".into(),
            topic: "eu-egi-cloud-accounting".into(),
        };
        assert_eq!(
            e.publish_url(),
            "https://msg.argo.grnet.gr/v1/projects/accounting/topics/eu-egi-cloud-accounting:publish"
        );
        assert_eq!(
            e.authx509_url(),
            "https://msg.argo.grnet.gr:8443/v1/service-types/ams/hosts/msg.argo.grnet.gr:authx509"
        );
    }
}
