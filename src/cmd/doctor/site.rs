//! The site-wide checks of `doctor`: configuration warnings, proxies, DNS,
//! Keystone authentication and clock, the host certificate, AMS, GOCDB
//! and the CRLs. Each makes its calls and hands what it saw to the pure
//! judges of [`crate::doctor`].

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use url::Url;

use crate::config::{AuthType, Loaded};
use crate::doctor::proxy::{self, ProxyEnv};
use crate::doctor::{clock, gocdb, Check};
use crate::messaging::ams::{AmsClient, AmsError, Auth};
use crate::messaging::identity::{self, HostCredential};
use crate::messaging::settings::{self, TokenSource};
use crate::openstack::{self, OpenStack, Session};
use crate::trust::cadir::{self, Freshness};

/// Longest wait for a DNS answer or a TCP connection to a proxy.
const NET_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a job publishes with the host certificate: accounting (APEL
/// via AMS), or the GLUE document to AMS.
fn needs_host_cert(l: &Loaded) -> bool {
    l.config.components.accounting.enabled || l.config.info.publish.ams.is_some()
}

/// `config.warning`: every loader warning.
pub fn config_warnings(l: &Loaded) -> Vec<Check> {
    l.warnings
        .iter()
        .map(|w| {
            Check::warning(
                "config.warning",
                l.source.display().to_string(),
                w.clone(),
                "see `appliance config check`",
            )
        })
        .collect()
}

/// The remote services this configuration talks to: (what, URL).
pub fn remote_urls(l: &Loaded) -> Vec<(String, Url)> {
    let c = &l.config;
    let mut out: Vec<(String, Url)> = Vec::new();
    let mut push = |what: String, u: Url| {
        if !out.iter().any(|(_, x)| x == &u) {
            out.push((what, u));
        }
    };
    push(
        "keystone".into(),
        c.openstack.source.auth().auth_url.clone(),
    );
    for vo in &c.vos {
        if let Some(a) = &vo.auth {
            push(format!("keystone (VO {})", vo.name), a.auth_url.clone());
        }
    }
    if needs_host_cert(l) {
        if let Ok(s) = settings::from_config(l) {
            let e = &s.endpoint;
            for port in [e.port, e.authn_port] {
                if let Ok(u) = Url::parse(&format!("https://{}:{port}/", e.host)) {
                    push("ams".into(), u);
                }
            }
        }
    }
    if c.components.accounting.enabled || c.components.info.enabled {
        push("gocdb".into(), c.info.gocdb_url.clone());
    }
    if c.components.images.enabled {
        for s in c.images.subscriptions.iter().filter(|s| s.enabled) {
            if let crate::config::sections::images::ListSource::Url(u) = &s.source {
                push(format!("image list {}", s.name), u.clone());
            }
        }
        for h in c.images.harbor.iter().filter(|h| h.enabled) {
            push(format!("registry {}", h.name), h.registry.clone());
        }
        if let Some(g) = &c.images.glance_endpoint {
            push("glance".into(), g.clone());
        }
    }
    out
}

fn host_port(u: &Url) -> Option<(String, u16)> {
    Some((u.host_str()?.to_string(), u.port_or_known_default()?))
}

/// `network.proxy`: which remote URL goes through which proxy, and
/// whether each proxy answers a TCP connection.
pub async fn proxies(env: &ProxyEnv, remote: &[(String, Url)]) -> Check {
    const ID: &str = "network.proxy";
    let subject = "HTTP(S)_PROXY, ALL_PROXY, NO_PROXY";
    if !env.any() {
        return Check::ok(
            ID,
            subject,
            "no proxy in the environment: every connection is direct (under systemd, the units' environment counts)",
        );
    }
    let mut via: Vec<String> = Vec::new();
    let mut direct: Vec<String> = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (what, u) in remote {
        match env.proxy_for(u) {
            Some(p) => {
                via.push(format!("{what} via {}", proxy::shown(p)));
                used.insert(p.to_string());
            }
            None => direct.push(what.clone()),
        }
    }
    let seen = format!(
        "through a proxy: {}; direct: {}",
        if via.is_empty() {
            "none".into()
        } else {
            via.join(", ")
        },
        if direct.is_empty() {
            "none".into()
        } else {
            direct.join(", ")
        }
    );
    for p in &used {
        let Some((host, port)) = Url::parse(p).ok().as_ref().and_then(host_port) else {
            return Check::failed(
                ID,
                subject,
                format!("the proxy {} is not a URL ({seen})", proxy::shown(p)),
                "set HTTPS_PROXY/HTTP_PROXY to http://HOST:PORT (for the units: a drop-in with Environment=)",
            );
        };
        let connect = crate::dns::connect(&host, port);
        match tokio::time::timeout(NET_TIMEOUT, connect).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Check::failed(
                    ID,
                    subject,
                    format!(
                        "the proxy {}:{port} refuses connections: {e} ({seen})",
                        host
                    ),
                    "fix or unset the proxy variables, or add the site's own hosts to NO_PROXY",
                )
            }
            Err(_) => {
                return Check::failed(
                    ID,
                    subject,
                    format!("the proxy {host}:{port} did not answer within 5 s ({seen})"),
                    "fix or unset the proxy variables, or add the site's own hosts to NO_PROXY",
                )
            }
        }
    }
    Check::ok(ID, subject, seen)
}

/// `network.dns`: every remote host (and the catalog's) resolves.
pub async fn dns(env: &ProxyEnv, remote: &[(String, Url)], catalog: &[Url]) -> Vec<Check> {
    const ID: &str = "network.dns";
    let mut hosts: Vec<(String, u16, String, bool)> = Vec::new();
    let all = remote.iter().map(|(w, u)| (w.clone(), u.clone())).chain(
        catalog
            .iter()
            .map(|u| ("catalog endpoint".to_string(), u.clone())),
    );
    for (what, u) in all {
        let Some((host, port)) = host_port(&u) else {
            continue;
        };
        if host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
            || hosts.iter().any(|(h, ..)| *h == host)
        {
            continue;
        }
        let proxied = env.proxy_for(&u).is_some();
        hosts.push((host, port, what, proxied));
    }
    let mut out = Vec::new();
    for (host, port, what, proxied) in hosts {
        // The resolver the appliance's own connections use (hickory in the
        // static release build, the system's otherwise).
        let lookup = crate::dns::resolve(&host, port);
        let r = match tokio::time::timeout(NET_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => Ok(addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<BTreeSet<_>>()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 5 s".into()),
        };
        out.push(match r {
            Ok(ips) => Check::ok(
                ID,
                &host,
                format!(
                    "{what}: resolves to {}",
                    ips.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ),
            Err(e) if proxied => Check::warning(
                ID,
                &host,
                format!("{what}: does not resolve here ({e}); the proxy resolves it"),
                "nothing to do if the proxy reaches it; otherwise check the name",
            ),
            Err(e) => Check::failed(
                ID,
                &host,
                format!("{what}: cannot be resolved: {e}"),
                "check the name in the configuration (or the service catalog) and this host's resolver (/etc/resolv.conf, `resolvectl status`)",
            ),
        });
    }
    out
}

/// The site client (when the configuration makes one) and, when Keystone
/// accepts the credential, the session of its own scope.
pub type SiteClient = (Option<OpenStack>, Option<Session>);

/// `keystone.auth`: the site credential authenticates; the session of its
/// own scope (the images owner project).
pub async fn keystone_auth(l: &Loaded) -> (Check, SiteClient) {
    const ID: &str = "keystone.auth";
    let auth = l.config.openstack.source.auth();
    let subject = crate::redact::url(&auth.auth_url);
    let access = match l.cloud_access() {
        Ok(a) => a,
        Err(e) => {
            return (
                Check::failed(
                    ID,
                    subject,
                    format!("the credential is incomplete: {e}"),
                    format!(
                        "put the {} secret in {} (mode 0600)",
                        auth.method.kind().secret_key(),
                        l.config.secrets_file.display()
                    ),
                ),
                (None, None),
            )
        }
    };
    let os = match OpenStack::new(access) {
        Ok(os) => os,
        Err(e) => {
            return (
                Check::failed(
                    ID,
                    subject,
                    e.to_string(),
                    "fix `openstack` in the configuration",
                ),
                (None, None),
            )
        }
    };
    match os.session().await {
        Ok(s) => {
            let u = s.user();
            let who = format!(
                "{} (domain {})",
                u.name.as_deref().unwrap_or(&u.id),
                u.domain
                    .as_ref()
                    .and_then(|d| d.name.as_deref())
                    .unwrap_or("?")
            );
            let scope = s
                .project()
                .map(|p| format!(", project {}", p.name.as_deref().unwrap_or(&p.id)))
                .unwrap_or_default();
            (
                Check::ok(
                    ID,
                    subject,
                    format!(
                        "authenticated ({}) as {who}{scope}; token valid until {}",
                        auth.method.kind().name(),
                        s.expires_at().format("%Y-%m-%d %H:%M UTC")
                    ),
                ),
                (Some(os), Some(s)),
            )
        }
        Err(e) => {
            let remedy = auth_remedy(l, &e);
            (
                Check::failed(
                    ID,
                    subject,
                    format!("Keystone refused or failed: {e}"),
                    remedy,
                ),
                (Some(os), None),
            )
        }
    }
}

fn auth_remedy(l: &Loaded, e: &openstack::Error) -> String {
    let kind = l.config.openstack.source.auth().method.kind();
    let secrets = l.config.secrets_file.display();
    match e {
        openstack::Error::Unauthorized { .. } => match kind {
            AuthType::Password => format!(
                "Keystone does not accept the user and password: check `openstack.auth.username`, its domain, and `openstack.password` in {secrets}"
            ),
            AuthType::ApplicationCredential => format!(
                "the application credential is unknown, expired or its secret is wrong: create a new one (`openstack application credential create`) and put its secret in {secrets}"
            ),
            AuthType::OidcAccessToken => "the OIDC access token expired or is not accepted by Keystone's identity provider: refresh it (e.g. oidc-agent), and check `identity-provider` and `protocol`".into(),
            AuthType::Token => "the Keystone token expired: put a fresh one in the secrets file, or use a password or application credential".into(),
        },
        openstack::Error::Transport { .. } | openstack::Error::Timeout { .. } => {
            let text = e.to_string();
            if text.contains("certificate") || text.contains("TLS") || text.contains("ssl") {
                "Keystone's TLS certificate is not trusted here: set `openstack.ca-file` (or `ca-dir`) to the CA that issued it".into()
            } else {
                "Keystone cannot be reached: check the URL, DNS, the firewall and the proxy settings (see the network checks)".into()
            }
        }
        openstack::Error::Scope { .. } => "the credential cannot reach its default project: check `project-name`/`project-id` and the user's roles there".into(),
        _ => "see the message; `appliance config check` validates the configuration".into(),
    }
}

/// `keystone.clock`: skew against the `Date` of Keystone's version document.
pub async fn keystone_clock(os: &OpenStack) -> Check {
    let url = os.auth_url().clone();
    let subject = crate::redact::url(&url);
    let sent = Utc::now();
    match os.get_plain_with_headers(&url, "identity").await {
        Ok((headers, _)) => {
            let received = Utc::now();
            let date = headers
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok());
            clock::check(&subject, date, sent, received)
        }
        Err(e) => Check::skipped(
            "keystone.clock",
            subject,
            format!("Keystone's version document did not come: {e}"),
            "check the clock by hand: `timedatectl status`",
        ),
    }
}

/// `certificate.host`: readable, the key matches, not expiring; the
/// credential when it is usable.
pub fn host_certificate(l: &Loaded) -> (Check, Option<HostCredential>) {
    const ID: &str = "certificate.host";
    let p = &l.config.paths;
    let subject = p.host_cert.display().to_string();
    let needed = needs_host_cert(l);
    let renew = "renew the host certificate with your CA and install it and its key at paths.host-cert and paths.host-key (keep the DN, or update GOCDB's Host DN)";
    let cred = match HostCredential::load(&p.host_cert, &p.host_key) {
        Ok(c) => c,
        Err(e) if needed => return (
            Check::failed(
                ID,
                subject,
                e.to_string(),
                "install the host certificate and key (PEM) at paths.host-cert and paths.host-key",
            ),
            None,
        ),
        Err(e) => {
            return (
                Check::skipped(
                    ID,
                    subject,
                    format!("not usable ({e}), and no job needs it"),
                    "accounting and AMS publishing need it",
                ),
                None,
            )
        }
    };
    let dn = cred.dn();
    let not_after = crate::trust::asn1_to_utc(cred.cert.not_after());
    let days = not_after.map(|t| (t - Utc::now()).num_days());
    let check = match identity::check_validity(
        "host certificate",
        &p.host_cert,
        &cred.cert,
        SystemTime::now(),
    ) {
        Err(e) => Check::with(
            ID,
            if needed {
                crate::doctor::Verdict::Failed
            } else {
                crate::doctor::Verdict::Warning
            },
            subject,
            e.to_string(),
            renew,
        ),
        Ok(()) if days.is_some_and(|d| d < 14) => Check::warning(
            ID,
            subject,
            format!("{dn} expires in {} day(s)", days.unwrap_or(0)),
            renew,
        ),
        Ok(()) => Check::ok(
            ID,
            subject,
            format!(
                "{dn}, key matches, valid until {} ({} days)",
                not_after.map_or("?".into(), |t| t.format("%Y-%m-%d").to_string()),
                days.unwrap_or(0)
            ),
        ),
    };
    (check, Some(cred))
}

fn ams_failure(id: &str, subject: &str, e: &AmsError, host: &str, port: u16) -> Check {
    let remedy = match e {
        AmsError::Unavailable { .. } => format!(
            "AMS is down or unreachable from here: check that this host reaches {host}:{port} (firewall, HTTPS_PROXY/NO_PROXY), and AMS's status; accounting keeps the records in the spool meanwhile"
        ),
        AmsError::Refused { hint, .. } => hint.clone(),
        AmsError::Setup(_) => "check `ams.capath`/`ams.ca-file` and the host certificate and key".into(),
        AmsError::NoToken { .. } | AmsError::Rejected { .. } => "the AMS service answered unexpectedly; try again later".into(),
    };
    Check::failed(id, subject, e.to_string(), remedy)
}

/// `ams.token` and `ams.topic`: a token (authx509 with the host
/// certificate, or the static one) and the topic it publishes to.
pub async fn ams(l: &Loaded, cred: Option<&HostCredential>) -> Vec<Check> {
    if !needs_host_cert(l) {
        return vec![Check::skipped(
            "ams.token",
            "ams",
            "no job publishes to AMS (accounting is off, info has no AMS target)",
            "nothing to do",
        )];
    }
    let s = match settings::from_config(l) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::failed(
                "ams.token",
                "ams",
                e.to_string(),
                "fix `ams.sender-cfg`",
            )]
        }
    };
    let e = s.endpoint.clone();
    let mut limits = s.limits;
    limits.retries = 0;
    limits.timeout = limits.timeout.min(Duration::from_secs(10));
    let auth = match (&s.token, s.token_source, cred) {
        (Some(t), _, _) => Auth::Token(t.clone()),
        (None, TokenSource::HostCertificate, Some(c)) => Auth::X509(c),
        (None, _, _) => {
            return vec![Check::skipped(
            "ams.token",
            e.authx509_url(),
            "no usable host certificate to ask AMS for a token (see certificate.host)",
            "install the host certificate, or put a static `ams: {token: ...}` in the secrets file",
        )]
        }
    };
    let (subject, how) = match &auth {
        Auth::X509(c) => (
            e.authx509_url(),
            format!("authx509 gave a token to {}", c.dn()),
        ),
        Auth::Token(_) => (
            e.publish_url(),
            "a static token (not checked until the topic)".to_string(),
        ),
    };
    let client = match AmsClient::connect(e.clone(), auth, &s.trust, limits).await {
        Ok(c) => c,
        Err(err) => {
            return vec![ams_failure(
                "ams.token",
                &subject,
                &err,
                &e.host,
                e.authn_port,
            )]
        }
    };
    let mut out = vec![Check::ok("ams.token", &subject, how)];
    if !l.config.components.accounting.enabled {
        // Only the GLUE document goes to AMS; its topic is derived from
        // GOCDB at publish time.
        return out;
    }
    let topic_subject = format!("topic {} of project {} on {}", e.topic, e.project, e.host);
    out.push(match client.check_topic().await {
        Ok(()) => Check::ok("ams.topic", topic_subject, "the token sees the topic"),
        Err(AmsError::Refused { status: 403, answer, .. }) => Check::warning(
            "ams.topic",
            topic_subject,
            format!("the token is valid but may not read the topic's details (403: {answer})"),
            "publishers may not be allowed to read topics; if publishing fails too, ask the AMS operators to add the user to the topic's ACL",
        ),
        Err(err) => ams_failure("ams.topic", &topic_subject, &err, &e.host, e.port),
    });
    out
}

/// `gocdb.endpoint` and `gocdb.host-dn`.
pub async fn gocdb(
    l: &Loaded,
    os: Option<&OpenStack>,
    cred: Option<&HostCredential>,
) -> Vec<Check> {
    let c = &l.config;
    if !(c.components.accounting.enabled || c.components.info.enabled) {
        return vec![Check::skipped(
            "gocdb.endpoint",
            c.site.gocdb.clone(),
            "accounting and info publishing are off",
            "nothing to do",
        )];
    }
    let mut url = c.info.gocdb_url.clone();
    url.query_pairs_mut()
        .append_pair("method", "get_service")
        .append_pair("sitename", &c.site.gocdb);
    let shown = crate::redact::url(&url);
    let fail = |msg: String, remedy: &str| {
        vec![Check::failed(
            "gocdb.endpoint",
            format!("site {}", c.site.gocdb),
            msg,
            remedy,
        )]
    };
    let Some(os) = os else {
        return fail(
            format!("GOCDB was not asked ({shown}): the configuration makes no HTTP client"),
            "see keystone.auth",
        );
    };
    let xml = match os.get_plain(&url, "gocdb").await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            return fail(
                format!("GOCDB did not answer: {e}"),
                "check the path to GOCDB (proxy, firewall) or `info.gocdb-url`",
            )
        }
    };
    let services = match gocdb::parse(&xml) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format!("{shown}: {e}"),
                "check `info.gocdb-url` (GOCDB's public PI) and `site.gocdb`",
            )
        }
    };
    let mut out = vec![gocdb::endpoint_check(
        &services,
        &c.site.gocdb,
        c.site.endpoint.as_str(),
        c.site.endpoint_id.as_deref(),
    )];
    let mut needs = Vec::new();
    if c.components.accounting.enabled {
        needs.push(gocdb::Need {
            service_type: gocdb::ACCOUNTING,
            why: "accounting (APEL accepts records only from this DN)",
        });
    }
    if c.info.publish.ams.is_some() {
        needs.push(gocdb::Need {
            service_type: gocdb::NOVA,
            why: "publishing the GLUE document to AMS",
        });
    }
    match (needs.is_empty(), cred) {
        (true, _) => {}
        (false, Some(cred)) => out.extend(gocdb::host_dn_checks(
            &services,
            &c.site.gocdb,
            &cred.dn(),
            &needs,
        )),
        (false, None) => out.push(Check::skipped(
            "gocdb.host-dn",
            format!("site {}", c.site.gocdb),
            "no usable host certificate, so no DN to look for (see certificate.host)",
            "install the host certificate",
        )),
    }
    out
}

/// `crl.freshness`: every CA of the directory has a current CRL.
pub fn crl(l: &Loaded) -> Check {
    const ID: &str = "crl.freshness";
    let dir = &l.config.paths.ca_dir;
    let subject = dir.display().to_string();
    let scan = match cadir::scan(dir) {
        Ok(s) => s,
        Err(e) if l.config.components.images.enabled => {
            return Check::failed(
                ID,
                subject,
                e.to_string(),
                "install the IGTF CA bundle (ca-policy-egi-core) into paths.ca-dir",
            )
        }
        Err(e) => {
            return Check::warning(
                ID,
                subject,
                e.to_string(),
                "install the IGTF CA bundle (ca-policy-egi-core) into paths.ca-dir",
            )
        }
    };
    let now = Utc::now();
    let bad: Vec<String> = scan
        .anchors
        .iter()
        .filter_map(|a| match a.freshness(now) {
            Freshness::Fresh => None,
            Freshness::Missing if a.urls.is_empty() => None,
            f => Some(format!(
                "{} ({}: {})",
                a.short_name(),
                a.crl_file(),
                f.as_str()
            )),
        })
        .collect();
    if bad.is_empty() {
        Check::ok(
            ID,
            subject,
            format!(
                "{} CA(s); every CRL with a source is current",
                scan.anchors.len()
            ),
        )
    } else {
        Check::warning(
            ID,
            subject,
            format!("{} of {} CA(s) without a current CRL: {}", bad.len(), scan.anchors.len(), bad.join(", ")),
            "run `appliance crl refresh` (its timer runs it every 6 h); lists signed under these CAs fail verification meanwhile",
        )
    }
}
