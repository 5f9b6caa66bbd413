//! The Keystone v3 service catalog and endpoint selection (pure).
//!
//! Selection is by service type (with the usual aliases: `volumev3`,
//! `block-storage` and `volume` are one service), interface and region, as
//! keystoneauth does: the first alias present in the catalog wins; with no
//! region configured the catalog must offer exactly one URL for the
//! interface, else the choice is ambiguous and an error says which regions
//! exist.

use serde::Deserialize;
use url::Url;

use super::access::Interface;
use super::error::Error;

/// One service of the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Service type (`compute`, `image`, `volumev3`, ...).
    #[serde(rename = "type")]
    pub service_type: String,
    /// Service name (`nova`, ...).
    #[serde(default)]
    pub name: Option<String>,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog service.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CatalogEndpoint {
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// Region id (`region_id`, or the older `region`).
    #[serde(default)]
    pub region_id: Option<String>,
    /// Region name as older Keystones give it.
    #[serde(default)]
    pub region: Option<String>,
    /// The URL.
    pub url: String,
}

impl CatalogEndpoint {
    fn region_name(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
    fn in_region(&self, region: &str) -> bool {
        self.region_id.as_deref() == Some(region) || self.region.as_deref() == Some(region)
    }
}

/// Service types that name the same service, in order of preference,
/// for a requested type.
pub fn aliases(service_type: &str) -> Vec<&str> {
    const GROUPS: &[&[&str]] = &[
        &["block-storage", "volumev3", "volume", "block-store"],
        &["compute"],
        &["image"],
        &["network"],
        &["identity"],
        &["placement"],
        &["object-store"],
    ];
    match GROUPS.iter().find(|g| g.contains(&service_type)) {
        Some(group) => {
            let mut v = vec![service_type];
            v.extend(group.iter().copied().filter(|t| *t != service_type));
            v
        }
        None => vec![service_type],
    }
}

/// The URL of `service_type` (or an alias) for `interface` and `region`.
/// `project` only names the token in the error.
pub fn select(
    catalog: &[CatalogEntry],
    service_type: &str,
    interface: Interface,
    region: Option<&str>,
    project: Option<&str>,
) -> Result<Url, Error> {
    let miss = |available: String| Error::Catalog {
        service: service_type.to_string(),
        interface: interface.as_str().to_string(),
        region: region.map(str::to_string),
        project: project.map(str::to_string),
        available,
    };
    for t in aliases(service_type) {
        let mut urls: Vec<(&str, Option<&str>)> = catalog
            .iter()
            .filter(|e| e.service_type == t)
            .flat_map(|e| e.endpoints.iter())
            .filter(|ep| ep.interface == interface.as_str())
            .filter(|ep| region.is_none_or(|r| ep.in_region(r)))
            .map(|ep| (ep.url.as_str(), ep.region_name()))
            .collect();
        urls.sort();
        urls.dedup_by(|a, b| a.0 == b.0);
        match urls.as_slice() {
            [] => continue,
            [(url, _)] => {
                return Url::parse(url)
                    .map_err(|e| miss(format!("an unparsable {t} URL {url:?} ({e})")));
            }
            many => {
                let regions: Vec<String> = many
                    .iter()
                    .map(|(u, r)| format!("{} -> {u}", r.unwrap_or("(no region)")))
                    .collect();
                return Err(miss(format!(
                    "several {t} endpoints, set a region: {}",
                    regions.join(", ")
                )));
            }
        }
    }
    Err(miss(describe(catalog)))
}

/// `type interface region` of every endpoint, for error messages.
pub fn describe(catalog: &[CatalogEntry]) -> String {
    if catalog.is_empty() {
        return "nothing (an unscoped token has no catalog)".to_string();
    }
    let mut items: Vec<String> = catalog
        .iter()
        .flat_map(|e| {
            e.endpoints.iter().map(move |ep| {
                format!(
                    "{} {} {}",
                    e.service_type,
                    ep.interface,
                    ep.region_name().unwrap_or("(no region)")
                )
            })
        })
        .collect();
    items.sort();
    items.dedup();
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<CatalogEntry> {
        serde_json::from_value(serde_json::json!([
            {"type": "compute", "name": "nova", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "https://nova.one/v2.1"},
                {"interface": "internal", "region_id": "RegionOne", "url": "http://nova.one.internal/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "https://nova.two/v2.1"}
            ]},
            {"type": "volumev3", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "https://cinder.one/v3"}
            ]},
            {"type": "image", "endpoints": [
                {"interface": "public", "region": "RegionOne", "url": "https://glance.one"},
                {"interface": "admin", "region": "RegionOne", "url": "https://glance.one"}
            ]},
            {"type": "network", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "https://neutron"},
                {"interface": "public", "region_id": "RegionTwo", "url": "https://neutron"}
            ]}
        ]))
        .unwrap()
    }

    #[test]
    fn selects_by_interface_and_region() {
        let c = catalog();
        let one = Some("RegionOne");
        assert_eq!(
            select(&c, "compute", Interface::Public, one, None)
                .unwrap()
                .as_str(),
            "https://nova.one/v2.1"
        );
        assert_eq!(
            select(&c, "compute", Interface::Internal, one, None)
                .unwrap()
                .as_str(),
            "http://nova.one.internal/v2.1"
        );
        assert_eq!(
            select(&c, "compute", Interface::Public, Some("RegionTwo"), None)
                .unwrap()
                .as_str(),
            "https://nova.two/v2.1"
        );
        // the older `region` field counts too
        assert_eq!(
            select(&c, "image", Interface::Admin, one, None)
                .unwrap()
                .as_str(),
            "https://glance.one/"
        );
        // no region: fine when only one URL remains, even over several regions
        assert_eq!(
            select(&c, "network", Interface::Public, None, None)
                .unwrap()
                .as_str(),
            "https://neutron/"
        );
        assert_eq!(
            select(&c, "image", Interface::Public, None, None)
                .unwrap()
                .as_str(),
            "https://glance.one/"
        );
    }

    #[test]
    fn volume_aliases() {
        let c = catalog();
        for t in ["volumev3", "block-storage", "volume"] {
            assert_eq!(
                select(&c, t, Interface::Public, None, None)
                    .unwrap()
                    .as_str(),
                "https://cinder.one/v3",
                "{t}"
            );
        }
        assert_eq!(aliases("volume")[0], "volume");
        assert_eq!(aliases("compute"), vec!["compute"]);
        assert_eq!(aliases("foo"), vec!["foo"]);
    }

    #[test]
    fn errors_say_what_the_catalog_has() {
        let c = catalog();
        let e = select(
            &c,
            "compute",
            Interface::Public,
            Some("Nowhere"),
            Some("p1"),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Catalog { .. }));
        assert!(m.contains("no compute endpoint (interface public, region Nowhere) in the catalog of the token for project p1"), "{m}");
        assert!(
            m.contains("compute public RegionOne") && m.contains("compute public RegionTwo"),
            "{m}"
        );
        let e = select(&c, "compute", Interface::Public, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("several compute endpoints, set a region: RegionOne -> https://nova.one/v2.1, RegionTwo -> https://nova.two/v2.1"), "{e}");
        let e = select(&c, "placement", Interface::Admin, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("image admin RegionOne"), "{e}");
        let e = select(&[], "compute", Interface::Public, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unscoped token has no catalog"), "{e}");
    }
}
