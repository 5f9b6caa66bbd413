//! A test GOCDB public programmatic interface (`/gocdbpi/public/`): the
//! `get_service` and `get_service_endpoint` methods (GOCDB treats the two
//! names alike), answered with GOCDB's XML.
//!
//! The document follows `GOCDB/gocdb` `lib/Gocdb_Services/PI/GetService.php`
//! `getXML()` as production renders it today (compare the fixtures of
//! cloud-info-provider): `<results>` of `<SERVICE_ENDPOINT PRIMARY_KEY="..">`
//! with `PRIMARY_KEY, HOSTNAME, GOCDB_PORTAL_URL, HOSTDN, BETA, SERVICE_TYPE,
//! CORE, IN_PRODUCTION, NODE_MONITORED, NOTIFICATIONS, SITENAME, COUNTRY_NAME,
//! COUNTRY_CODE, ROC_NAME, URL, ENDPOINTS, SCOPES, EXTENSIONS` in that order;
//! empty optional elements are left out (`addIfNotEmpty`); text is
//! XML-escaped; two-space indentation (`DOMDocument::formatOutput`).
//! Unsupported query parameters get GOCDB's `<error>Unsupported parameter:
//! KEY</error>` (`Helpers::validateParams`).
//!
//! Test API: `GET|POST|DELETE /__test/faults`, `GET /__test/stats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use tokio::net::TcpListener;

use super::faults::{self, FaultControl};
use super::http::{self, Outcome, Peer, Resp};
use super::{Error, Server};

/// The service type of a cloud site's Keystone endpoint in GOCDB.
pub const NOVA: &str = "org.openstack.nova";

/// One service endpoint as GOCDB holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GocdbService {
    /// `PRIMARY_KEY`, e.g. `12249G0` (the portal id is the part before `G0`).
    pub primary_key: String,
    /// `SITENAME`.
    pub site: String,
    /// `SERVICE_TYPE`.
    pub service_type: String,
    /// `HOSTNAME`.
    pub hostname: String,
    /// `URL`.
    pub url: String,
    /// `HOSTDN` (slash form), omitted when `None`.
    pub host_dn: Option<String>,
    /// `IN_PRODUCTION`.
    pub in_production: bool,
    /// `NODE_MONITORED`.
    pub monitored: bool,
    /// `COUNTRY_NAME`, `COUNTRY_CODE`.
    pub country: (String, String),
    /// `ROC_NAME`.
    pub roc: String,
    /// `SCOPES/SCOPE`.
    pub scopes: Vec<String>,
    /// `ENDPOINTS/ENDPOINT`.
    pub endpoints: Vec<GocdbEndpoint>,
}

/// One `ENDPOINTS/ENDPOINT` of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GocdbEndpoint {
    /// `ID` (numeric).
    pub id: String,
    /// `NAME`.
    pub name: String,
    /// `URL`.
    pub url: String,
    /// `INTERFACENAME`.
    pub interface_name: String,
}

impl GocdbService {
    /// A production, monitored `org.openstack.nova` service of `site` at the
    /// Keystone URL `url`, with one endpoint of the same URL.
    pub fn nova(site: &str, url: &str, primary_key: &str) -> GocdbService {
        let hostname = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let id = primary_key.strip_suffix("G0").unwrap_or(primary_key);
        GocdbService {
            primary_key: primary_key.to_string(),
            site: site.to_string(),
            service_type: NOVA.into(),
            hostname,
            url: url.to_string(),
            host_dn: None,
            in_production: true,
            monitored: true,
            country: ("Testland".into(), "TL".into()),
            roc: "NGI_TEST".into(),
            scopes: vec!["EGI".into(), "FedCloud".into()],
            endpoints: vec![GocdbEndpoint {
                id: format!("{id}0"),
                name: format!("{site} Keystone"),
                url: url.to_string(),
                interface_name: NOVA.into(),
            }],
        }
    }

    /// Parse `NAME,ENDPOINT_URL,ENDPOINT_ID[,HOSTDN]` (the `--site` flag).
    pub fn parse_site(arg: &str) -> Result<GocdbService, Error> {
        let mut parts = arg.splitn(4, ',');
        let (Some(site), Some(url), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::bad(
                "--site",
                arg,
                "expected NAME,ENDPOINT_URL,ENDPOINT_ID[,HOSTDN]",
            ));
        };
        let (site, url, id) = (site.trim(), url.trim(), id.trim());
        if site.is_empty() || id.is_empty() {
            return Err(Error::bad(
                "--site",
                arg,
                "NAME and ENDPOINT_ID must not be empty",
            ));
        }
        url::Url::parse(url)
            .map_err(|e| Error::bad("--site", arg, format!("ENDPOINT_URL: {e}")))?;
        let mut svc = GocdbService::nova(site, url, id);
        svc.host_dn = parts
            .next()
            .map(str::trim)
            .filter(|dn| !dn.is_empty())
            .map(str::to_string);
        Ok(svc)
    }
}

/// A running GOCDB test server.
#[derive(Debug)]
pub struct GocdbServer {
    /// The server.
    pub server: Server,
    /// Its fault queue.
    pub faults: FaultControl,
}

struct Gocdb {
    services: Vec<GocdbService>,
    faults: FaultControl,
    requests: AtomicU64,
}

/// Start the GOCDB test server on `listener` with these services.
pub fn serve(listener: TcpListener, services: Vec<GocdbService>) -> Result<GocdbServer, Error> {
    let faults = FaultControl::default();
    let state = Arc::new(Gocdb {
        services,
        faults: faults.clone(),
        requests: AtomicU64::new(0),
    });
    let server = http::spawn("gocdb", listener, None, move |peer, req| {
        let state = state.clone();
        async move { state.handle(peer, req).await }
    })?;
    Ok(GocdbServer { server, faults })
}

/// Parameters `get_service` accepts (`GetService::validateParameters`).
const SUPPORTED: &[&str] = &[
    "hostname",
    "sitename",
    "roc",
    "country",
    "service_type",
    "monitored",
    "scope",
    "scope_match",
    "extensions",
];

impl Gocdb {
    async fn handle(self: Arc<Self>, _peer: Peer, req: Request<Incoming>) -> Outcome {
        let path = req.uri().path().to_string();
        if let Some(test) = path.strip_prefix("/__test/") {
            let requests = self.requests.load(Ordering::Relaxed);
            return Ok(self.faults.test_api(test, req, requests).await);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let fault = self.faults.take(&path, true);
        if let Some(fault) = &fault {
            if let Some(out) = fault.preempt(injected).await {
                return out;
            }
        }
        let mut resp = self.answer(&req);
        if let Some(fault) = fault.filter(|f| f.shapes_response()) {
            resp = fault.shape_response(resp);
        }
        Ok(resp)
    }

    fn answer(&self, req: &Request<Incoming>) -> Resp {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return http::text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let path = req.uri().path();
        if path != "/gocdbpi/public/" && path != "/gocdbpi/public" {
            return http::text(StatusCode::NOT_FOUND, "Not Found\n");
        }
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let method = params
            .iter()
            .find(|(k, _)| k == "method")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if method != "get_service" && method != "get_service_endpoint" {
            return xml(
                StatusCode::BAD_REQUEST,
                format!("<error>Unsupported method: {}</error>", escape(method)),
            );
        }
        let filters: Vec<&(String, String)> =
            params.iter().filter(|(k, _)| k != "method").collect();
        if let Some((k, _)) = filters
            .iter()
            .find(|(k, _)| !SUPPORTED.contains(&k.as_str()))
        {
            return xml(
                StatusCode::OK,
                format!("<error>Unsupported parameter: {}</error>", escape(k)),
            );
        }
        if let Some((_, v)) = filters.iter().find(|(_, v)| v.contains(['"', '\'', '`'])) {
            return xml(
                StatusCode::OK,
                format!("<error>Unsuported chracter in value: {}</error>", escape(v)),
            );
        }
        let selected = self
            .services
            .iter()
            .filter(|svc| filters.iter().all(|(k, v)| matches(svc, k, v)));
        xml(StatusCode::OK, render(selected))
    }
}

fn matches(svc: &GocdbService, key: &str, value: &str) -> bool {
    match key {
        "hostname" => svc.hostname == value,
        "sitename" => svc.site == value,
        "roc" => svc.roc == value,
        "country" => svc.country.0 == value,
        "service_type" => svc.service_type == value,
        "monitored" => (value == "Y") == svc.monitored,
        "scope" => value
            .split(',')
            .any(|s| s.is_empty() || svc.scopes.iter().any(|x| x == s)),
        _ => true,
    }
}

fn xml(status: StatusCode, body: String) -> Resp {
    http::response(status, "text/xml; charset=UTF-8", body)
}

/// Escape text for XML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The `get_service` document for these services.
pub fn render<'a>(services: impl IntoIterator<Item = &'a GocdbService>) -> String {
    use std::fmt::Write as _;
    let yn = |b: bool| if b { "Y" } else { "N" };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut any = false;
    for svc in services {
        if !any {
            x.push_str("<results>\n");
            any = true;
        }
        let id = svc
            .primary_key
            .strip_suffix("G0")
            .unwrap_or(&svc.primary_key);
        let _ = writeln!(
            x,
            "  <SERVICE_ENDPOINT PRIMARY_KEY=\"{}\">",
            escape(&svc.primary_key)
        );
        let portal = format!("https://goc.egi.eu/portal/index.php?Page_Type=Service&id={id}");
        push_el(&mut x, 4, "PRIMARY_KEY", &svc.primary_key);
        push_el(&mut x, 4, "HOSTNAME", &svc.hostname);
        push_el(&mut x, 4, "GOCDB_PORTAL_URL", &portal);
        push_el(&mut x, 4, "HOSTDN", svc.host_dn.as_deref().unwrap_or(""));
        push_el(&mut x, 4, "BETA", "N");
        push_el(&mut x, 4, "SERVICE_TYPE", &svc.service_type);
        x.push_str("    <CORE/>\n");
        push_el(&mut x, 4, "IN_PRODUCTION", yn(svc.in_production));
        push_el(&mut x, 4, "NODE_MONITORED", yn(svc.monitored));
        push_el(&mut x, 4, "NOTIFICATIONS", "Y");
        push_el(&mut x, 4, "SITENAME", &svc.site);
        push_el(&mut x, 4, "COUNTRY_NAME", &svc.country.0);
        push_el(&mut x, 4, "COUNTRY_CODE", &svc.country.1);
        push_el(&mut x, 4, "ROC_NAME", &svc.roc);
        push_el(&mut x, 4, "URL", &svc.url);
        if svc.endpoints.is_empty() {
            x.push_str("    <ENDPOINTS/>\n");
        } else {
            x.push_str("    <ENDPOINTS>\n");
            for ep in &svc.endpoints {
                x.push_str("      <ENDPOINT>\n");
                push_el(&mut x, 8, "ID", &ep.id);
                push_el(&mut x, 8, "NAME", &ep.name);
                x.push_str("        <EXTENSIONS/>\n");
                push_el(&mut x, 8, "URL", &ep.url);
                push_el(&mut x, 8, "INTERFACENAME", &ep.interface_name);
                push_el(&mut x, 8, "ENDPOINT_MONITORED", yn(svc.monitored));
                x.push_str("      </ENDPOINT>\n");
            }
            x.push_str("    </ENDPOINTS>\n");
        }
        if svc.scopes.is_empty() {
            x.push_str("    <SCOPES/>\n");
        } else {
            x.push_str("    <SCOPES>\n");
            for scope in &svc.scopes {
                push_el(&mut x, 6, "SCOPE", scope);
            }
            x.push_str("    </SCOPES>\n");
        }
        x.push_str("    <EXTENSIONS/>\n");
        x.push_str("  </SERVICE_ENDPOINT>\n");
    }
    if any {
        x.push_str("</results>\n");
    } else {
        x.push_str("<results/>\n");
    }
    x
}

/// `<NAME>value</NAME>` at `indent`, left out when `value` is empty.
fn push_el(x: &mut String, indent: usize, name: &str, value: &str) {
    use std::fmt::Write as _;
    if !value.is_empty() {
        let _ = writeln!(x, "{:indent$}<{name}>{}</{name}>", "", escape(value));
    }
}

/// An injected answer, as GOCDB's web server gives errors (HTML type).
fn injected(status: u16, body: Option<&str>) -> Resp {
    http::response(
        faults::injected_status(status),
        "text/html; charset=UTF-8",
        faults::injected_body(status, body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_flag() {
        let svc =
            GocdbService::parse_site("TEST-SITE,https://keystone.example.org:5000/v3/,12249G0")
                .expect("valid");
        assert_eq!(svc.site, "TEST-SITE");
        assert_eq!(svc.hostname, "keystone.example.org");
        assert_eq!(svc.host_dn, None);
        let svc =
            GocdbService::parse_site("S,http://127.0.0.1:5000/v3,1G0,/DC=org/DC=example/CN=h")
                .expect("valid");
        assert_eq!(svc.host_dn.as_deref(), Some("/DC=org/DC=example/CN=h"));
        assert!(GocdbService::parse_site("S,not a url,1G0").is_err());
        assert!(GocdbService::parse_site("S,http://x/").is_err());
    }

    #[test]
    fn empty_result_and_escaping() {
        assert_eq!(
            render(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results/>\n"
        );
        let svc = GocdbService::nova("A&B", "https://h/v3?x=1&y=<2>", "7G0");
        let doc = render([&svc]);
        assert!(doc.contains("<SITENAME>A&amp;B</SITENAME>"), "{doc}");
        assert!(
            doc.contains("<URL>https://h/v3?x=1&amp;y=&lt;2&gt;</URL>"),
            "{doc}"
        );
        assert!(
            doc.contains("Page_Type=Service&amp;id=7</GOCDB_PORTAL_URL>"),
            "{doc}"
        );
    }
}
