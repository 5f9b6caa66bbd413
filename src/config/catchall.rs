//! fedcloud-catchall-operations `sites/*.yaml` files as the site and VO
//! part of the configuration (`site.catch-all`).
//!
//! The format is the catch-all repository's `schema.json` (JSON Schema
//! draft-07, cloud-info spec §4.1 and Appendix C): top-level
//! `additionalProperties: false` with required `gocdb` and `endpoint`,
//! optional `auth` (keystoneauth plugin name), `region`, `protocol`
//! (default `openid`), `vos`, `images` {sync, formats} and `accounting`
//! {enabled, site_name} (both closed). A VO entry needs `name` and `auth`
//! and may carry other keys (`defaultNetwork`, `publicNetwork`, ...), which
//! are ignored. Inside `vos[].auth` only `project_id` is used; anything else
//! (CREODIAS has `region: WAW4-1`, which crashes cloud-info-provider 1.x)
//! is ignored with a warning.

use url::Url;

use super::decode::{Decode, Diag, MapReader, Unknown};
use super::format::Node;

/// A catch-all site file as written.
#[derive(Debug, Default)]
pub struct RawCatchAll {
    pub gocdb: Option<String>,
    pub endpoint: Option<Url>,
    pub auth: Option<String>,
    pub region: Option<String>,
    pub protocol: Option<String>,
    pub vos: Option<Vec<RawCatchAllVo>>,
    pub images: Option<RawImages>,
    pub accounting: Option<RawAccounting>,
}

/// `vos[]`.
#[derive(Debug, Default)]
pub struct RawCatchAllVo {
    pub name: Option<String>,
    /// `Some(project_id)` when `auth` was given.
    pub auth: Option<Option<String>>,
}

/// `images`.
#[derive(Debug, Default)]
pub struct RawImages {
    pub sync: Option<bool>,
    pub formats: Option<Vec<String>>,
}

/// `accounting`.
#[derive(Debug, Default)]
pub struct RawAccounting {
    pub enabled: Option<bool>,
    pub site_name: Option<String>,
}

impl Decode for RawCatchAll {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawCatchAll {
            gocdb: m.opt("gocdb"),
            endpoint: m.opt("endpoint"),
            auth: m.opt("auth"),
            region: m.opt("region"),
            protocol: m.opt("protocol"),
            vos: m.opt("vos"),
            images: m.opt("images"),
            accounting: m.opt("accounting"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawCatchAllVo {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawCatchAllVo {
            name: m.opt("name"),
            auth: m.opt_with("auth", |n, p, d| {
                let mut a = MapReader::new(n, p, d)?;
                let project_id: Option<String> = a.opt("project_id");
                a.finish(Unknown::Warn);
                Some(project_id)
            }),
        };
        // The schema allows any other key on a VO entry.
        m.finish(Unknown::Ignore);
        Some(v)
    }
}

impl Decode for RawImages {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawImages {
            sync: m.opt("sync"),
            formats: m.opt("formats"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawAccounting {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawAccounting {
            enabled: m.opt("enabled"),
            site_name: m.opt("site_name"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::parse;
    use super::*;

    fn decode(text: &str) -> (RawCatchAll, Diag) {
        let mut d = Diag::new("site.yaml");
        let v = RawCatchAll::decode(&parse(text).unwrap(), "", &mut d).unwrap();
        (v, d)
    }

    #[test]
    fn real_site_files_decode() {
        let root = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/catch-all"
        );
        let srce = std::fs::read_to_string(format!("{root}/fedcloud.srce.hr.yaml")).unwrap();
        let (v, d) = decode(&srce);
        assert!(
            d.errors.is_empty() && d.warnings.is_empty(),
            "{:?}",
            d.errors
        );
        assert_eq!(v.gocdb.as_deref(), Some("fedcloud.srce.hr"));
        assert_eq!(
            v.endpoint.unwrap().as_str(),
            "https://cloud.cro-ngi.hr:5000/v3/"
        );
        let vos = v.vos.unwrap();
        assert_eq!(vos.len(), 3);
        assert_eq!(
            vos[0].auth.clone().flatten().as_deref(),
            Some("c99c8b38569546008104fbaa12fe3aa9")
        );

        let creodias = std::fs::read_to_string(format!("{root}/CREODIAS.yaml")).unwrap();
        let (v, d) = decode(&creodias);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(v.auth.as_deref(), Some("v3applicationcredential"));
        let warnings: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "site.yaml:13:7: vos[0].auth.region: unknown key, ignored; known keys here: project_id",
                "site.yaml:16:7: vos[1].auth.region: unknown key, ignored; known keys here: project_id",
            ]
        );
    }

    #[test]
    fn schema_is_closed_at_the_top_and_in_images() {
        let (_, mut d) = decode("gocdb: X\nendpoint: https://k.example.org/v3\nimage: {}\nimages: {sync: yes, format: [raw]}\nvos:\n  - name: a\n    auth: {project_id: p}\n    defaultNetwork: private\n");
        d.sort();
        let errs: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "site.yaml:3:1: image: unknown key; did you mean `images`?",
                "site.yaml:4:16: images.sync: expected `true` or `false`, found a string",
                "site.yaml:4:21: images.format: unknown key; did you mean `formats`?",
            ]
        );
    }
}
