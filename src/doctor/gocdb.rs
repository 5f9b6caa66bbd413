//! GOCDB registration, judged from the public programmatic interface's
//! `get_service&sitename=SITE` answer (every service endpoint of the site,
//! `GetService.php` XML): the site's `org.openstack.nova` service has the
//! Keystone URL of the configuration (cloud-info-provider finds the
//! endpoint this way), and the host certificate's DN is the *Host DN* of
//! each service that needs it: `eu.egi.cloud.accounting` for accounting
//! (APEL accepts messages only from that DN, spec accounting §4.1) and
//! `org.openstack.nova` for AMS publishing of the GLUE document (AMS users
//! are provisioned from it, spec cloud-info).

use super::Check;
use crate::info::gocdb::similar;

/// The service type of a cloud site's Keystone endpoint.
pub const NOVA: &str = "org.openstack.nova";
/// The service type that carries the accounting publisher's DN.
pub const ACCOUNTING: &str = "eu.egi.cloud.accounting";

/// One `SERVICE_ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `PRIMARY_KEY`.
    pub primary_key: String,
    /// `SERVICE_TYPE`.
    pub service_type: String,
    /// `SITENAME`.
    pub site: String,
    /// `HOSTDN` (left out by GOCDB when empty).
    pub host_dn: Option<String>,
    /// `URL` and every `ENDPOINTS/ENDPOINT/URL`.
    pub urls: Vec<String>,
}

/// The services of a `get_service` answer; `Err` with GOCDB's `<error>`
/// text, or why it is not the XML GOCDB writes.
pub fn parse(xml: &str) -> Result<Vec<Service>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.has_tag_name("error") {
        return Err(format!(
            "GOCDB answered an error: {}",
            root.text().unwrap_or("").trim()
        ));
    }
    if !root.has_tag_name("results") {
        return Err(format!(
            "not a GOCDB answer (root element <{}>)",
            root.tag_name().name()
        ));
    }
    let text = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    Ok(root
        .children()
        .filter(|n| n.has_tag_name("SERVICE_ENDPOINT"))
        .map(|svc| {
            let mut urls: Vec<String> = text(svc, "URL").into_iter().collect();
            if let Some(eps) = svc.children().find(|c| c.has_tag_name("ENDPOINTS")) {
                for ep in eps.children().filter(|c| c.is_element()) {
                    urls.extend(text(ep, "URL"));
                }
            }
            Service {
                primary_key: svc
                    .attribute("PRIMARY_KEY")
                    .map(str::to_string)
                    .or_else(|| text(svc, "PRIMARY_KEY"))
                    .unwrap_or_default(),
                service_type: text(svc, "SERVICE_TYPE").unwrap_or_default(),
                site: text(svc, "SITENAME").unwrap_or_default(),
                host_dn: text(svc, "HOSTDN"),
                urls,
            }
        })
        .collect())
}

/// The site's Keystone endpoint is registered (`gocdb.endpoint`).
pub fn endpoint_check(
    services: &[Service],
    site: &str,
    endpoint: &str,
    endpoint_id: Option<&str>,
) -> Check {
    const ID: &str = "gocdb.endpoint";
    let subject = format!("site {site}");
    if services.is_empty() {
        return Check::failed(
            ID,
            subject,
            format!("GOCDB lists no service of site `{site}`"),
            "check `site.gocdb` (the site's name in GOCDB, case-sensitive), or register the site and its services in GOCDB",
        );
    }
    let novas: Vec<&Service> = services.iter().filter(|s| s.service_type == NOVA).collect();
    match novas
        .iter()
        .find(|s| s.urls.iter().any(|u| similar(endpoint, u)))
    {
        Some(s) => match endpoint_id {
            Some(id) if id != s.primary_key => Check::warning(
                ID,
                subject,
                format!(
                    "{endpoint} is registered as {} but `site.endpoint-id` says {id}",
                    s.primary_key
                ),
                format!("set `site.endpoint-id: {}` (or remove it)", s.primary_key),
            ),
            _ => Check::ok(
                ID,
                subject,
                format!(
                    "{endpoint} is registered as {NOVA} service {}",
                    s.primary_key
                ),
            ),
        },
        None => {
            let known: Vec<String> = novas.iter().flat_map(|s| s.urls.clone()).collect();
            Check::failed(
                ID,
                subject,
                format!(
                    "no {NOVA} service of `{site}` in GOCDB has the URL {endpoint}{}",
                    if known.is_empty() {
                        " (the site has no such service)".to_string()
                    } else {
                        format!(" (GOCDB has: {})", known.join(", "))
                    }
                ),
                format!(
                    "register an {NOVA} service with URL {endpoint} in GOCDB, or set `site.endpoint` to the URL registered there (exactly, trailing `/` included)"
                ),
            )
        }
    }
}

/// A service type that must carry the host DN, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The GOCDB service type.
    pub service_type: &'static str,
    /// The job that needs it.
    pub why: &'static str,
}

/// The host DN is the Host DN of each service that needs it
/// (`gocdb.host-dn`, one check per need).
pub fn host_dn_checks(services: &[Service], site: &str, dn: &str, needs: &[Need]) -> Vec<Check> {
    const ID: &str = "gocdb.host-dn";
    needs
        .iter()
        .map(|need| {
            let subject = format!("{} of site {site}", need.service_type);
            let of_type: Vec<&Service> = services
                .iter()
                .filter(|s| s.service_type == need.service_type)
                .collect();
            if of_type.iter().any(|s| s.host_dn.as_deref() == Some(dn)) {
                return Check::ok(
                    ID,
                    subject,
                    format!("{dn} is the Host DN of the site's {} service ({})", need.service_type, need.why),
                );
            }
            let elsewhere: Vec<&str> = services
                .iter()
                .filter(|s| s.host_dn.as_deref() == Some(dn))
                .map(|s| s.service_type.as_str())
                .collect();
            let seen = if of_type.is_empty() {
                format!("the site has no {} service", need.service_type)
            } else {
                let dns: Vec<&str> = of_type
                    .iter()
                    .map(|s| s.host_dn.as_deref().unwrap_or("no Host DN"))
                    .collect();
                format!("its {} service(s) have: {}", need.service_type, dns.join(", "))
            };
            let also = if elsewhere.is_empty() {
                String::new()
            } else {
                format!("; the DN is registered on {} instead", elsewhere.join(", "))
            };
            Check::failed(
                ID,
                subject,
                format!("the host DN {dn} is unknown to GOCDB for {} ({seen}{also})", need.why),
                format!(
                    "in GOCDB, set the Host DN of the site's {} service to exactly `{dn}` (create the service if it is missing); AMS and APEL learn it from GOCDB within hours",
                    need.service_type
                ),
            )
        })
        .collect()
}

#[cfg(all(test, feature = "testsrv"))]
mod tests {
    use super::*;
    use crate::doctor::Verdict;
    use crate::testsrv::gocdb::{render, GocdbService};

    const DN: &str = "/DC=org/DC=example/CN=host.example.org";
    const URL: &str = "https://keystone.example.org:5000/v3";

    fn services(host_dn: Option<&str>, accounting_dn: Option<&str>) -> Vec<Service> {
        let mut nova = GocdbService::nova("SITE", URL, "12G0");
        nova.host_dn = host_dn.map(str::to_string);
        let mut acc = GocdbService::nova("SITE", "", "13G0");
        acc.service_type = ACCOUNTING.into();
        acc.endpoints.clear();
        acc.host_dn = accounting_dn.map(str::to_string);
        parse(&render([&nova, &acc])).unwrap()
    }

    #[test]
    fn parses_what_gocdb_writes() {
        let s = services(Some(DN), None);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].primary_key, "12G0");
        assert_eq!(s[0].host_dn.as_deref(), Some(DN));
        assert_eq!(s[1].host_dn, None);
        assert_eq!(s[1].service_type, ACCOUNTING);
        assert!(parse("<error>Unsupported parameter: x</error>")
            .unwrap_err()
            .contains("Unsupported parameter"));
        assert!(parse(&render([])).unwrap().is_empty());
    }

    #[test]
    fn endpoint() {
        let s = services(None, None);
        assert_eq!(endpoint_check(&s, "SITE", URL, None).status, Verdict::Ok);
        assert_eq!(
            endpoint_check(&s, "SITE", &format!("{URL}/"), Some("12G0")).status,
            Verdict::Ok
        );
        assert_eq!(
            endpoint_check(&s, "SITE", URL, Some("99G0")).status,
            Verdict::Warning
        );
        let c = endpoint_check(&s, "SITE", "https://other:5000/v3", None);
        assert_eq!(c.status, Verdict::Failed);
        assert!(c.message.contains(URL), "{}", c.message);
        assert_eq!(
            endpoint_check(&[], "SITE", URL, None).status,
            Verdict::Failed
        );
    }

    #[test]
    fn host_dn() {
        let needs = [
            Need {
                service_type: ACCOUNTING,
                why: "accounting",
            },
            Need {
                service_type: NOVA,
                why: "AMS",
            },
        ];
        let all_ok = host_dn_checks(&services(Some(DN), Some(DN)), "SITE", DN, &needs);
        assert!(all_ok.iter().all(|c| c.status == Verdict::Ok));
        let c = host_dn_checks(&services(Some(DN), None), "SITE", DN, &needs);
        assert_eq!(c[0].status, Verdict::Failed);
        assert!(
            c[0].message
                .contains("registered on org.openstack.nova instead"),
            "{}",
            c[0].message
        );
        assert!(c[0].remedy.as_deref().unwrap().contains(DN));
        assert_eq!(c[1].status, Verdict::Ok);
    }
}
