//! `info`: how `appliance info show|publish` builds and publishes the site's
//! GLUE 2.1 document (issue #6; spec cloud-info.md §1.2, §3, §8): compat
//! mode, the GOCDB base URL, cloud-info-provider's flavor and image options,
//! and the publishing targets (a file, a Swift object, an AMS topic). Every
//! key is optional; an absent section means the defaults below (and no
//! target: `info publish` then says what to add). Also
//! [`Loaded::endpoint_text`]: the site endpoint as written, for IDs.

use std::path::PathBuf;

use serde::Serialize;
use url::Url;

use crate::config::decode::{decode_enum, Decode, Diag, MapReader, Unknown};
use crate::config::format::{self, Node, Value};
use crate::config::sections::ams::valid_ams_name;
use crate::config::Loaded;
use crate::info::build::{FlavorProperties, FlavorSelection};

/// Default Swift container (the one catch-all uploads to).
pub const DEFAULT_SWIFT_CONTAINER: &str = "cloud-info";

/// Default AMS project of cloud information (cloud-info-provider 0.x
/// `--ams-project`).
pub const DEFAULT_AMS_PROJECT: &str = "egi_cloud_info";

/// Default largest AMS message: the base64 text of the gzipped document
/// (AMS's documented 1 MiB per-message budget; its Kafka limit is 1.5 MB).
pub const DEFAULT_AMS_MAX_MESSAGE_BYTES: usize = 1 << 20;

impl Decode for FlavorSelection {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        decode_enum(
            node,
            path,
            d,
            &[
                ("all", FlavorSelection::All),
                ("public", FlavorSelection::Public),
                ("private", FlavorSelection::Private),
            ],
        )
    }
}

/// The section as written.
#[derive(Debug, Default)]
pub struct Raw {
    compat: Option<bool>,
    gocdb_url: Option<Url>,
    select_flavors: Option<FlavorSelection>,
    only_appdb_images: Option<bool>,
    image_page_size: Option<u32>,
    flavor_properties: Option<RawProps>,
    publish: Option<RawPublish>,
}

#[derive(Debug, Default)]
struct RawProps {
    gpu_number: Option<String>,
    gpu_vendor: Option<String>,
    gpu_model: Option<String>,
    gpu_memory: Option<String>,
    gpu_virt_type: Option<String>,
    gpu_type: Option<String>,
    gpu_version: Option<String>,
}

#[derive(Debug, Default)]
struct RawPublish {
    file: Option<PathBuf>,
    swift: Option<RawSwift>,
    ams: Option<RawAms>,
}

#[derive(Debug, Default)]
struct RawAms {
    project: Option<String>,
    topic: Option<String>,
    max_message_bytes: Option<u64>,
}

#[derive(Debug, Default)]
struct RawSwift {
    container: Option<String>,
    object: Option<String>,
    project_id: Option<String>,
}

impl Decode for Raw {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = Raw {
            compat: m.opt("compat"),
            gocdb_url: m.opt("gocdb-url"),
            select_flavors: m.opt("select-flavors"),
            only_appdb_images: m.opt("only-appdb-images"),
            image_page_size: m.opt("image-page-size"),
            flavor_properties: m.opt("flavor-properties"),
            publish: m.opt("publish"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawProps {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawProps {
            gpu_number: m.opt("gpu-number"),
            gpu_vendor: m.opt("gpu-vendor"),
            gpu_model: m.opt("gpu-model"),
            gpu_memory: m.opt("gpu-memory"),
            gpu_virt_type: m.opt("gpu-virt-type"),
            gpu_type: m.opt("gpu-type"),
            gpu_version: m.opt("gpu-version"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawPublish {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawPublish {
            file: m.opt("file"),
            swift: m.opt("swift"),
            ams: m.opt("ams"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawAms {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawAms {
            project: m.opt("project"),
            topic: m.opt("topic"),
            max_message_bytes: m.opt("max-message-bytes"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

impl Decode for RawSwift {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawSwift {
            container: m.opt("container"),
            object: m.opt("object"),
            project_id: m.opt("project-id"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

/// The validated section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {
    /// Byte-compatible with cloud-info-provider 1.2 (default true).
    pub compat: bool,
    /// GOCDB's public programmatic interface.
    #[serde(serialize_with = "crate::redact::serialize_url")]
    pub gocdb_url: Url,
    /// `--select-flavors`.
    pub select_flavors: FlavorSelection,
    /// `--only-appdb-images`.
    pub only_appdb_images: bool,
    /// Glance page size (`limit`).
    pub image_page_size: u32,
    /// `--property-flavor-gpu-*`.
    pub flavor_properties: FlavorProperties,
    /// Publishing targets.
    pub publish: Publish,
}

/// Where `info publish` puts the document.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Publish {
    /// A local file, written atomically (mode 0644).
    pub file: Option<PathBuf>,
    /// A Swift object.
    pub swift: Option<Swift>,
    /// An AMS topic.
    pub ams: Option<Ams>,
}

impl Publish {
    /// Whether any target is configured.
    pub fn any(&self) -> bool {
        self.file.is_some() || self.swift.is_some() || self.ams.is_some()
    }
}

/// An AMS topic, reached with the `ams` section's host, ports, TLS trust,
/// timeouts and credential (static token or host certificate).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ams {
    /// AMS project.
    pub project: String,
    /// Topic; default catch-all's `SITE_<gocdb '.'->'-'>_ENDPOINT_<gocdb id>`.
    pub topic: Option<String>,
    /// Largest message (base64 text of the gzipped document).
    pub max_message_bytes: usize,
}

/// A Swift object in the site's object store, reached with the site-wide
/// credential.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Swift {
    /// Container (created when missing).
    pub container: String,
    /// Object name; default catch-all's `{gocdb '.'->'-'}-{md5(endpoint)}.json`.
    pub object: Option<String>,
    /// Project whose object store is used; default the credential's own
    /// scope.
    pub project_id: Option<String>,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            compat: true,
            gocdb_url: Url::parse(crate::info::gocdb::DEFAULT_URL).expect("URL"),
            select_flavors: FlavorSelection::All,
            only_appdb_images: false,
            image_page_size: 200,
            flavor_properties: FlavorProperties::default(),
            publish: Publish::default(),
        }
    }
}

/// Check the section; problems go to `d` under the `info` key path.
pub fn validate(raw: Option<Raw>, d: &mut Diag) -> Section {
    let mut s = Section::default();
    let Some(raw) = raw else {
        return s;
    };
    if let Some(c) = raw.compat {
        s.compat = c;
    }
    if let Some(u) = raw.gocdb_url {
        s.gocdb_url = u;
    }
    if let Some(f) = raw.select_flavors {
        s.select_flavors = f;
    }
    if let Some(o) = raw.only_appdb_images {
        s.only_appdb_images = o;
    }
    if let Some(n) = raw.image_page_size {
        if n == 0 || n > 1000 {
            d.error_hint(
                "info.image-page-size",
                format!("{n} is out of range"),
                "use 1 to 1000 (Glance's default maximum)",
            );
        } else {
            s.image_page_size = n;
        }
    }
    if let Some(p) = raw.flavor_properties {
        let fp = &mut s.flavor_properties;
        let set = |slot: &mut String, v: Option<String>, key: &str, d: &mut Diag| {
            if let Some(v) = v {
                if v.trim().is_empty() {
                    d.error(
                        &format!("info.flavor-properties.{key}"),
                        "empty property name",
                    );
                } else {
                    *slot = v;
                }
            }
        };
        set(&mut fp.gpu_number, p.gpu_number, "gpu-number", d);
        set(&mut fp.gpu_vendor, p.gpu_vendor, "gpu-vendor", d);
        set(&mut fp.gpu_model, p.gpu_model, "gpu-model", d);
        set(&mut fp.gpu_memory, p.gpu_memory, "gpu-memory", d);
        set(&mut fp.gpu_virt_type, p.gpu_virt_type, "gpu-virt-type", d);
        set(&mut fp.gpu_type, p.gpu_type, "gpu-type", d);
        set(&mut fp.gpu_version, p.gpu_version, "gpu-version", d);
    }
    if let Some(p) = raw.publish {
        if let Some(f) = p.file {
            if f.is_absolute() {
                s.publish.file = Some(f);
            } else {
                d.error_hint(
                    "info.publish.file",
                    format!("`{}` is not an absolute path", f.display()),
                    "write it from the root, e.g. /var/lib/fedcloud-appliance/info/cloud-info.json",
                );
            }
        }
        if let Some(sw) = p.swift {
            let container = sw
                .container
                .unwrap_or_else(|| DEFAULT_SWIFT_CONTAINER.to_string());
            let bad = |n: &str| n.is_empty() || n.contains('/') || n.len() > 256;
            if bad(&container) {
                d.error_hint(
                    "info.publish.swift.container",
                    format!("`{container}` is not a Swift container name"),
                    "1 to 256 characters, no `/`",
                );
            }
            if let Some(o) = &sw.object {
                if o.is_empty() || o.len() > 1024 || o.starts_with('/') {
                    d.error_hint(
                        "info.publish.swift.object",
                        format!("`{o}` is not a Swift object name"),
                        "1 to 1024 characters, not starting with `/`",
                    );
                }
            }
            s.publish.swift = Some(Swift {
                container,
                object: sw.object,
                project_id: sw.project_id,
            });
        }
        if let Some(a) = p.ams {
            let project = a.project.unwrap_or_else(|| DEFAULT_AMS_PROJECT.to_string());
            for (key, v) in [("project", Some(&project)), ("topic", a.topic.as_ref())] {
                if let Some(v) = v.filter(|v| !valid_ams_name(v)) {
                    d.error_hint(
                        &format!("info.publish.ams.{key}"),
                        format!("`{v}` is not an AMS name"),
                        "AMS names use letters, digits, `_`, `-` and `.`",
                    );
                }
            }
            let max = a
                .max_message_bytes
                .unwrap_or(DEFAULT_AMS_MAX_MESSAGE_BYTES as u64);
            if !(1024..=16 << 20).contains(&max) {
                d.error_hint(
                    "info.publish.ams.max-message-bytes",
                    format!("{max} is out of range"),
                    "use 1024 to 16777216 (AMS accepts at most 1.5 MB)",
                );
            }
            s.publish.ams = Some(Ams {
                project,
                topic: a.topic,
                max_message_bytes: usize::try_from(max).unwrap_or(usize::MAX),
            });
        }
    }
    s
}

/// The scalar at `keys` of `root`, as written (after YAML unquoting).
fn scalar_at(root: &Node, keys: &[&str]) -> Option<String> {
    let mut node = root;
    for k in keys {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        node = &entries.iter().rev().find(|e| e.key == *k)?.value;
    }
    match &node.value {
        Value::Scalar(s) => Some(s.text.clone()),
        _ => None,
    }
}

/// `text` when it names the same URL as `parsed`, else `parsed` as text.
fn pick(text: Option<&str>, parsed: &Url) -> String {
    match text {
        Some(t) if Url::parse(t).ok().as_ref() == Some(parsed) => t.to_string(),
        _ => parsed.as_str().to_string(),
    }
}

impl Loaded {
    /// The site endpoint exactly as the operator wrote it.
    ///
    /// cloud-info-provider builds every ID (`{endpoint}_cloud.compute`, ...)
    /// and its GOCDB match, and catch-all its object name (`md5(endpoint)`),
    /// from the site YAML's `endpoint` string verbatim; `site.endpoint` is a
    /// parsed URL, which normalises (`https://h:443/v3` -> `https://h/v3`,
    /// `https://h:5000` -> `https://h:5000/`, host to lower case). This
    /// reads the scalar back from the file it came from (the catch-all
    /// file's `endpoint`, else `site.endpoint`) and uses it when it still
    /// parses to the configured URL; otherwise the normalised form.
    pub fn endpoint_text(&self) -> String {
        let site = &self.config.site;
        let (file, keys): (&std::path::Path, &[&str]) = match &site.catch_all {
            Some(ca) => (&ca.file, &["endpoint"]),
            None => (&self.source, &["site", "endpoint"]),
        };
        let text = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| format::parse(&t).ok())
            .and_then(|root| scalar_at(&root, keys));
        pick(text.as_deref(), &site.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::format::parse;

    fn run(text: &str) -> (Section, Vec<String>) {
        let mut d = Diag::new("a.yaml");
        let raw = Raw::decode(&parse(text).unwrap(), "info", &mut d);
        let s = validate(raw, &mut d);
        (s, d.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_and_values() {
        let (s, e) = run("{}");
        assert!(e.is_empty());
        assert!(s.compat && !s.publish.any());
        assert_eq!(s.gocdb_url.as_str(), "https://goc.egi.eu/gocdbpi/public/");
        let (s, e) = run("compat: false\nselect-flavors: public\nflavor-properties: {gpu-number: GPU:N}\npublish: {file: /tmp/x.json, swift: {}, ams: {}}\n");
        assert!(e.is_empty(), "{e:?}");
        assert!(!s.compat);
        assert_eq!(s.select_flavors, FlavorSelection::Public);
        assert_eq!(s.flavor_properties.gpu_number, "GPU:N");
        assert_eq!(s.publish.swift.unwrap().container, "cloud-info");
        let ams = s.publish.ams.unwrap();
        assert_eq!(ams.project, "egi_cloud_info");
        assert_eq!((ams.topic, ams.max_message_bytes), (None, 1 << 20));
    }

    #[test]
    fn endpoint_as_written_when_it_is_the_same_url() {
        let root = parse(
            "site:\n  endpoint: \"https://Keystone.example.org:443/v3\"\nendpoint: https://h:5000\n",
        )
        .unwrap();
        let t = scalar_at(&root, &["site", "endpoint"]).unwrap();
        assert_eq!(t, "https://Keystone.example.org:443/v3");
        let parsed = Url::parse(&t).unwrap();
        assert_eq!(parsed.as_str(), "https://keystone.example.org/v3");
        assert_eq!(pick(Some(&t), &parsed), t);
        let t = scalar_at(&root, &["endpoint"]).unwrap();
        let parsed = Url::parse(&t).unwrap();
        assert_eq!(parsed.as_str(), "https://h:5000/");
        assert_eq!(pick(Some(&t), &parsed), "https://h:5000");
        // the file changed since it was loaded: the configured URL
        let other = Url::parse("https://other.example.org/v3").unwrap();
        assert_eq!(pick(Some(&t), &other), "https://other.example.org/v3");
        assert_eq!(pick(None, &other), "https://other.example.org/v3");
        assert_eq!(scalar_at(&root, &["site", "nope"]), None);
    }

    #[test]
    fn errors_are_placed() {
        let (_, e) = run("selct-flavors: all\nselect-flavors: some\npublish: {file: rel.json, ams: {topic: SITE X, max-message-bytes: 10}}\n");
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(
            e.iter()
                .any(|x| x.contains("info.publish.ams.topic: `SITE X` is not an AMS name")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.contains("info.publish.ams.max-message-bytes: 10 is out of range")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x
                    .contains("info.selct-flavors: unknown key; did you mean `select-flavors`?")),
            "{e:?}"
        );
        assert!(e
            .iter()
            .any(|x| x.contains("info.select-flavors: unknown value `some`")));
        assert!(e.iter().any(|x| x.contains("info.publish.file")));
    }
}
