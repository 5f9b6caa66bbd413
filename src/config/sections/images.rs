//! `images`: image-list subscriptions and how they are synchronised into
//! Glance (issue #3; spec image-sync.md §7). Subscriptions are HEPiX lists
//! by URL or local file, each with the endorser it trusts, the VOs whose
//! projects get the images, and a visibility. atrope's `sources.yaml` /
//! `hepix.yaml` (+ `vo_map.yaml`) and cloudkeeper's `image-lists.conf` can
//! be named here and are read unchanged at run time. Tokens are secrets:
//! `images.<subscription name>.token` in the secrets file.

use std::path::PathBuf;

use serde::Serialize;
use url::Url;

use crate::config::decode::{decode_enum, item, join, Decode, Diag, MapReader, Unknown};
use crate::config::format::Node;

/// Default Glance tag of managed images (atrope's).
pub const DEFAULT_TAG: &str = "atrope";
/// Default concurrent downloads.
pub const DEFAULT_PARALLEL_DOWNLOADS: u32 = 2;
/// Default age after which an unfinished upload is cleaned up.
pub const DEFAULT_STUCK_MINUTES: u64 = 120;
/// Default failed verifications of one image version before it is no
/// longer downloaded (until the list changes it).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Longest prefix (global or per subscription), in characters: Glance
/// names have at most 255 and the title needs room.
pub const MAX_PREFIX_CHARS: usize = 100;

/// Where plain `http` is allowed (everything else: `https` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AllowHttp {
    /// Image lists (`url` of a subscription, atrope and cloudkeeper lists).
    pub lists: bool,
    /// Image downloads (`hv:uri` of a list entry).
    pub images: bool,
    /// Harbor registries (API, tokens, layer downloads).
    pub registries: bool,
}

impl AllowHttp {
    /// The places, as written in `allow-http`.
    pub const PLACES: &'static [&'static str] = &["lists", "images", "registries"];
    /// Any place allowed.
    pub fn any(&self) -> bool {
        self.lists || self.images || self.registries
    }
}

/// Deadlines and the minimum rate of downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Transfer {
    /// A list fetch or a registry listing, retries included (seconds).
    pub list_deadline_seconds: u64,
    /// An image download, retries included: this many seconds plus the
    /// time its size takes at `min-rate-kib`.
    pub image_deadline_seconds: u64,
    /// A transfer slower than this (KiB/s) over `rate-window-seconds` is
    /// cut (and retried while the deadline allows); also the wait for an
    /// answer is at most one window.
    pub min_rate_kib: u64,
    /// The window of the minimum rate (seconds).
    pub rate_window_seconds: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            list_deadline_seconds: 300,
            image_deadline_seconds: 900,
            min_rate_kib: 64,
            rate_window_seconds: 60,
        }
    }
}

#[derive(Debug, Default)]
struct RawTransfer {
    list_deadline_seconds: Option<u64>,
    image_deadline_seconds: Option<u64>,
    min_rate_kib: Option<u64>,
    rate_window_seconds: Option<u64>,
}

impl Decode for RawTransfer {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawTransfer {
            list_deadline_seconds: m.opt("list-deadline-seconds"),
            image_deadline_seconds: m.opt("image-deadline-seconds"),
            min_rate_kib: m.opt("min-rate-kib"),
            rate_window_seconds: m.opt("rate-window-seconds"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

fn transfer(raw: Option<RawTransfer>, path: &str, d: &mut Diag) -> Transfer {
    let def = Transfer::default();
    let raw = raw.unwrap_or_default();
    let mut get = |k: &str, v: Option<u64>, dflt: u64, lo: u64, hi: u64| {
        let v = v.unwrap_or(dflt);
        if v < lo || v > hi {
            d.error(
                &join(path, k),
                format!("{v} is out of range ({lo} to {hi})"),
            );
        }
        v
    };
    let t = Transfer {
        list_deadline_seconds: get(
            "list-deadline-seconds",
            raw.list_deadline_seconds,
            def.list_deadline_seconds,
            1,
            3600,
        ),
        image_deadline_seconds: get(
            "image-deadline-seconds",
            raw.image_deadline_seconds,
            def.image_deadline_seconds,
            1,
            86_400,
        ),
        min_rate_kib: get(
            "min-rate-kib",
            raw.min_rate_kib,
            def.min_rate_kib,
            1,
            1 << 20,
        ),
        rate_window_seconds: get(
            "rate-window-seconds",
            raw.rate_window_seconds,
            def.rate_window_seconds,
            1,
            3600,
        ),
    };
    if t.rate_window_seconds > t.list_deadline_seconds {
        d.error_hint(
            &join(path, "rate-window-seconds"),
            format!(
                "{} s is longer than list-deadline-seconds ({} s)",
                t.rate_window_seconds, t.list_deadline_seconds
            ),
            "the window must fit in the deadline",
        );
    }
    t
}

/// Glance visibility of a subscription's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Owner project only.
    Private,
    /// Shared with the VOs' projects (members, accepted).
    Shared,
    /// Community.
    Community,
    /// Public.
    Public,
}

impl Visibility {
    /// The names accepted.
    pub const CHOICES: &'static [(&'static str, Visibility)] = &[
        ("private", Visibility::Private),
        ("shared", Visibility::Shared),
        ("community", Visibility::Community),
        ("public", Visibility::Public),
    ];
}

/// What to do with the images of an expired list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiredList {
    /// Keep them, stop updating, alert (default).
    #[default]
    Keep,
    /// Retire them (cloudkeeper semantics).
    Remove,
}

/// An endorser: the signer DN and its CA DN, OpenSSL compat form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endorser {
    /// Signer subject, e.g. `/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu`.
    pub dn: String,
    /// Signer issuer, e.g. `/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013`.
    pub ca: String,
}

#[derive(Debug, Default)]
struct RawEndorser {
    dn: Option<String>,
    ca: Option<String>,
}

impl Decode for RawEndorser {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawEndorser {
            dn: m.opt("dn"),
            ca: m.opt("ca"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

fn endorser(raw: Option<RawEndorser>, path: &str, d: &mut Diag) -> Option<Endorser> {
    let Some(raw) = raw else {
        d.missing(path);
        return None;
    };
    let mut ok = true;
    for (k, v) in [("dn", &raw.dn), ("ca", &raw.ca)] {
        match v {
            None => {
                d.missing(&join(path, k));
                ok = false;
            }
            Some(s) if !s.starts_with('/') => {
                d.error_hint(
                    &join(path, k),
                    format!("`{s}` is not a DN in OpenSSL compat form"),
                    "write it as `openssl x509 -noout -subject -nameopt compat` prints it, e.g. /DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu",
                );
                ok = false;
            }
            _ => {}
        }
    }
    ok.then(|| Endorser {
        dn: raw.dn.unwrap_or_default(),
        ca: raw.ca.unwrap_or_default(),
    })
}

/// Where a list comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListSource {
    /// An `http(s)://` URL (userinfo in it is sent as Basic auth).
    Url(#[serde(serialize_with = "crate::redact::serialize_url")] Url),
    /// A local file.
    File(PathBuf),
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Subscription {
    /// Name: Glance property `image_list`, cache directory, state file,
    /// secrets key.
    pub name: String,
    /// The list.
    pub source: ListSource,
    /// The endorser the list must be signed by.
    pub endorser: Endorser,
    /// VOs whose projects receive the images (members).
    pub vos: Vec<String>,
    /// Glance visibility.
    pub visibility: Visibility,
    /// Only these `dc:identifier`s (empty: all).
    pub images: Vec<String>,
    /// Name prefix of this list's images.
    pub prefix: String,
    /// Whether it is synchronised.
    pub enabled: bool,
}

#[derive(Debug, Default)]
struct RawSubscription {
    name: Option<String>,
    url: Option<Url>,
    file: Option<PathBuf>,
    endorser: Option<RawEndorser>,
    vos: Option<Vec<String>>,
    visibility: Option<Visibility>,
    images: Option<Vec<String>>,
    prefix: Option<String>,
    enabled: Option<bool>,
    kind: Option<String>,
    registry: Option<Url>,
    projects: Option<Vec<String>>,
    repository: Option<String>,
    tag_pattern: Option<String>,
    robot: Option<String>,
}

/// A `type: harbor` subscription: VM images published as OCI artifacts in
/// a Harbor registry (like `registry.egi.eu`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HarborSubscription {
    /// Name: Glance property `image_list`, cache directory.
    pub name: String,
    /// The Harbor base URL (API at `/api/v2.0`, registry at `/v2`).
    #[serde(serialize_with = "crate::redact::serialize_url")]
    pub registry: Url,
    /// Harbor projects to list.
    pub projects: Vec<String>,
    /// Repository filter: a regex fully matching the name without the
    /// project (none: every repository).
    pub repository: Option<String>,
    /// Regex fully matching a tag name: an artifact is synced under its
    /// first matching tag (none: its first tag). Artifacts need the
    /// `eu.egi.cloud.tag` annotation either way.
    pub tag_pattern: Option<String>,
    /// VOs whose projects receive the images.
    pub vos: Vec<String>,
    /// Glance visibility.
    pub visibility: Visibility,
    /// Name prefix of this source's images.
    pub prefix: String,
    /// Robot account name (its password: the secrets file).
    pub robot: Option<String>,
    /// Whether it is synchronised.
    pub enabled: bool,
}

impl Decode for RawSubscription {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let name: Option<String> = m.opt("name");
        m.secrets_section(format!(
            "images.{}",
            name.as_deref().unwrap_or("<subscription name>")
        ));
        let v = RawSubscription {
            name,
            url: m.opt("url"),
            file: m.opt("file"),
            endorser: m.opt("endorser"),
            vos: m.opt("vos"),
            visibility: m.opt_with("visibility", |n, p, d| {
                decode_enum(n, p, d, Visibility::CHOICES)
            }),
            images: m.opt("images"),
            prefix: m.opt("prefix"),
            enabled: m.opt("enabled"),
            kind: m.opt("type"),
            registry: m.opt("registry"),
            projects: m.opt("projects"),
            repository: m.opt("repository"),
            tag_pattern: m.opt("tag-pattern"),
            robot: m.opt("robot"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

/// Explicit relaxations of list trust (each warns on every run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Relax {
    /// Accept a signer certificate without S/MIME purpose (IGTF host cert).
    pub host_cert_purpose: bool,
    /// Accept CRLs past their nextUpdate (revocation still checked).
    pub stale_crl: bool,
    /// Accept a CA without any CRL (no revocation check for it).
    pub missing_crl: bool,
}

#[derive(Debug, Default)]
struct RawRelax {
    host_cert_purpose: Option<bool>,
    stale_crl: Option<bool>,
    missing_crl: Option<bool>,
}

impl Decode for RawRelax {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = RawRelax {
            host_cert_purpose: m.opt("host-cert-purpose"),
            stale_crl: m.opt("stale-crl"),
            missing_crl: m.opt("missing-crl"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

/// Legacy configuration files read at run time, unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Legacy {
    /// atrope `sources.yaml` (EGI) or `hepix.yaml` (PyPI 2.0).
    pub atrope_sources: Option<PathBuf>,
    /// atrope `vo_map.yaml`.
    pub atrope_vo_map: Option<PathBuf>,
    /// cloudkeeper `image-lists.conf` (one URL per line).
    pub cloudkeeper_image_lists: Option<PathBuf>,
    /// The endorser cloudkeeper's lists must be signed by (cloudkeeper
    /// never checked it; we do).
    pub cloudkeeper_endorser: Option<Endorser>,
}

/// The section as written.
#[derive(Debug, Default)]
pub struct Raw {
    allow_http: Option<Vec<String>>,
    max_attempts: Option<u32>,
    transfer: Option<RawTransfer>,
    tag: Option<String>,
    prefix: Option<String>,
    formats: Option<Vec<String>>,
    parallel_downloads: Option<u32>,
    stuck_minutes: Option<u64>,
    expired_list: Option<ExpiredList>,
    cloudkeeper_properties: Option<bool>,
    min_ram_from_list: Option<bool>,
    glance_endpoint: Option<Url>,
    relax: Option<RawRelax>,
    atrope_sources: Option<PathBuf>,
    atrope_vo_map: Option<PathBuf>,
    cloudkeeper_image_lists: Option<PathBuf>,
    cloudkeeper_endorser: Option<RawEndorser>,
    subscriptions: Option<Vec<RawSubscription>>,
}

impl Decode for Raw {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let mut m = MapReader::new(node, path, d)?;
        let v = Raw {
            allow_http: m.opt("allow-http"),
            max_attempts: m.opt("max-attempts"),
            transfer: m.opt("transfer"),
            tag: m.opt("tag"),
            prefix: m.opt("prefix"),
            formats: m.opt("formats"),
            parallel_downloads: m.opt("parallel-downloads"),
            stuck_minutes: m.opt("stuck-minutes"),
            expired_list: m.opt_with("expired-list", |n, p, d| {
                decode_enum(
                    n,
                    p,
                    d,
                    &[("keep", ExpiredList::Keep), ("remove", ExpiredList::Remove)],
                )
            }),
            cloudkeeper_properties: m.opt("cloudkeeper-properties"),
            min_ram_from_list: m.opt("min-ram-from-list"),
            glance_endpoint: m.opt("glance-endpoint"),
            relax: m.opt("relax"),
            atrope_sources: m.opt("atrope-sources"),
            atrope_vo_map: m.opt("atrope-vo-map"),
            cloudkeeper_image_lists: m.opt("cloudkeeper-image-lists"),
            cloudkeeper_endorser: m.opt("cloudkeeper-endorser"),
            subscriptions: m.opt("subscriptions"),
        };
        m.finish(Unknown::Error);
        Some(v)
    }
}

/// The validated section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {
    /// Where plain http is allowed.
    pub allow_http: AllowHttp,
    /// Failed verifications of one image version before it is left alone
    /// until the list changes it.
    pub max_attempts: u32,
    /// Download deadlines and minimum rate.
    pub transfer: Transfer,
    /// Glance tag of managed images.
    pub tag: String,
    /// Global name prefix.
    pub prefix: String,
    /// Disk formats the site accepts (empty: the catch-all file's, else
    /// any format, no conversion).
    pub formats: Vec<String>,
    /// Concurrent downloads.
    pub parallel_downloads: u32,
    /// Unfinished uploads older than this are cleaned up.
    pub stuck_minutes: u64,
    /// Images of expired lists.
    pub expired_list: ExpiredList,
    /// Also write cloudkeeper-os's `APPLIANCE_*` properties.
    pub cloudkeeper_properties: bool,
    /// Set `min_ram` from `hv:ram_minimum`.
    pub min_ram_from_list: bool,
    /// Glance endpoint instead of the catalog's.
    #[serde(serialize_with = "crate::redact::serialize_opt_url")]
    pub glance_endpoint: Option<Url>,
    /// Trust relaxations.
    pub relax: Relax,
    /// Legacy files.
    pub legacy: Legacy,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// `type: harbor` subscriptions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub harbor: Vec<HarborSubscription>,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            allow_http: AllowHttp::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            transfer: Transfer::default(),
            tag: DEFAULT_TAG.into(),
            prefix: String::new(),
            formats: Vec::new(),
            parallel_downloads: DEFAULT_PARALLEL_DOWNLOADS,
            stuck_minutes: DEFAULT_STUCK_MINUTES,
            expired_list: ExpiredList::Keep,
            cloudkeeper_properties: false,
            min_ram_from_list: false,
            glance_endpoint: None,
            relax: Relax::default(),
            legacy: Legacy::default(),
            subscriptions: Vec::new(),
            harbor: Vec::new(),
        }
    }
}

const FORMATS: &[&str] = &["qcow2", "raw", "vmdk", "vdi", "vhd", "vhdx", "iso", "ova"];

/// A name usable as a directory, file and property value (subscription
/// names, also those of legacy files).
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Check the section; problems go to `d` under the `images` key path.
pub fn validate(raw: Option<Raw>, d: &mut Diag) -> Section {
    let def = Section::default();
    let Some(raw) = raw else {
        return def;
    };
    let p = "images";
    let mut allow_http = AllowHttp::default();
    for (i, place) in raw.allow_http.unwrap_or_default().into_iter().enumerate() {
        match place.as_str() {
            "lists" => allow_http.lists = true,
            "images" => allow_http.images = true,
            "registries" => allow_http.registries = true,
            other => d.error_hint(
                &item(&join(p, "allow-http"), i),
                format!("unknown place `{other}`"),
                format!("use any of: {}", AllowHttp::PLACES.join(", ")),
            ),
        }
    }
    if allow_http.any() {
        d.warn(
            &join(p, "allow-http"),
            "plain http is allowed for some image downloads: list tokens and registry credentials sent there cross the network in clear",
            Some("use https where the server offers it (lists and images are verified by signature and sha512 either way)".into()),
        );
    }
    let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if max_attempts == 0 || max_attempts > 100 {
        d.error(
            &join(p, "max-attempts"),
            format!("{max_attempts} is out of range (1 to 100)"),
        );
    }
    let transfer = transfer(raw.transfer, &join(p, "transfer"), d);
    let tag = raw.tag.unwrap_or(def.tag);
    if tag.is_empty() || tag.chars().count() > 255 || tag.chars().any(char::is_control) {
        d.error_hint(
            &join(p, "tag"),
            "a Glance tag has 1 to 255 characters and no control characters",
            "use a short word such as atrope",
        );
    }
    let prefix = raw.prefix.unwrap_or_default();
    check_prefix(&prefix, &join(p, "prefix"), d);
    let mut formats = Vec::new();
    for (i, f) in raw.formats.unwrap_or_default().into_iter().enumerate() {
        let lower = f.to_ascii_lowercase();
        if FORMATS.contains(&lower.as_str()) {
            formats.push(lower);
        } else {
            d.error_hint(
                &item(&join(p, "formats"), i),
                format!("unknown disk format `{f}`"),
                format!("use any of: {}", FORMATS.join(", ")),
            );
        }
    }
    let parallel = raw.parallel_downloads.unwrap_or(def.parallel_downloads);
    if parallel == 0 || parallel > 16 {
        d.error(
            &join(p, "parallel-downloads"),
            format!("{parallel} is out of range (1 to 16)"),
        );
    }
    for (k, path) in [
        ("atrope-sources", &raw.atrope_sources),
        ("atrope-vo-map", &raw.atrope_vo_map),
        ("cloudkeeper-image-lists", &raw.cloudkeeper_image_lists),
    ] {
        if path.as_ref().is_some_and(|f| !f.is_absolute()) {
            d.error(&join(p, k), "must be an absolute path");
        }
    }
    let cloudkeeper_endorser = if raw.cloudkeeper_image_lists.is_some() {
        endorser(
            raw.cloudkeeper_endorser,
            &join(p, "cloudkeeper-endorser"),
            d,
        )
    } else {
        None
    };
    let mut subscriptions = Vec::new();
    let mut harbor = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, mut s) in raw
        .subscriptions
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let sp = item(&join(p, "subscriptions"), i);
        let name = d.require(s.name.take(), &join(&sp, "name"));
        if let Some(n) = &name {
            if !safe_name(n) {
                d.error_hint(
                    &join(&sp, "name"),
                    format!("`{n}` cannot be used as a subscription name"),
                    "use letters, digits, `.`, `_` and `-` (it names a directory and a Glance property)",
                );
            } else if !names.insert(n.clone()) {
                d.error(
                    &join(&sp, "name"),
                    format!("subscription `{n}` is defined twice"),
                );
            }
        }
        match s.kind.as_deref() {
            None | Some("hepix") => {}
            Some("harbor") => {
                if let Some(h) = harbor_subscription(s, name, &sp, allow_http, d) {
                    harbor.push(h);
                }
                continue;
            }
            Some(other) => {
                d.error_hint(
                    &join(&sp, "type"),
                    format!("unknown subscription type `{other}`"),
                    "use `hepix` (signed image list, the default) or `harbor`",
                );
                continue;
            }
        }
        for (k, set) in [
            ("registry", s.registry.is_some()),
            ("projects", s.projects.is_some()),
            ("repository", s.repository.is_some()),
            ("tag-pattern", s.tag_pattern.is_some()),
            ("robot", s.robot.is_some()),
        ] {
            if set {
                d.error_hint(
                    &join(&sp, k),
                    format!("`{k}` is for `type: harbor` subscriptions"),
                    "add `type: harbor` or remove it",
                );
            }
        }
        let source = match (s.url, s.file) {
            (Some(u), None) => {
                let http = crate::scheme::Http::allowed_if(allow_http.lists);
                match crate::scheme::check(&u, "an image list", http) {
                    Ok(()) => Some(ListSource::Url(u)),
                    Err(e) => {
                        d.error_hint(
                            &join(&sp, "url"),
                            format!("the `{}` scheme is refused", e.scheme),
                            if e.scheme == "http" {
                                "use https, or allow http for lists: `allow-http: [lists]` in `images`"
                            } else {
                                "use an https URL, or `file:` for a local list"
                            },
                        );
                        None
                    }
                }
            }
            (None, Some(f)) if f.is_absolute() => Some(ListSource::File(f)),
            (None, Some(_)) => {
                d.error(&join(&sp, "file"), "must be an absolute path");
                None
            }
            (Some(_), Some(_)) => {
                d.error_hint(&sp, "both `url` and `file` are given", "keep one of them");
                None
            }
            (None, None) => {
                d.error_hint(&sp, "the subscription has no list", "add `url` or `file`");
                None
            }
        };
        let end = endorser(s.endorser, &join(&sp, "endorser"), d);
        let vos = s.vos.unwrap_or_default();
        let visibility = s.visibility.unwrap_or(if vos.is_empty() {
            Visibility::Private
        } else {
            Visibility::Shared
        });
        if visibility == Visibility::Shared && vos.is_empty() {
            d.error_hint(
                &join(&sp, "visibility"),
                "`shared` needs the VOs to share with",
                "add `vos: [<vo name>, ...]`",
            );
        }
        let sub_prefix = s.prefix.unwrap_or_default();
        check_prefix(&sub_prefix, &join(&sp, "prefix"), d);
        if let (Some(name), Some(source), Some(endorser)) = (name, source, end) {
            subscriptions.push(Subscription {
                name,
                source,
                endorser,
                vos,
                visibility,
                images: s.images.unwrap_or_default(),
                prefix: sub_prefix,
                enabled: s.enabled.unwrap_or(true),
            });
        }
    }
    let relax = raw.relax.unwrap_or_default();
    let relax = Relax {
        host_cert_purpose: relax.host_cert_purpose.unwrap_or(false),
        stale_crl: relax.stale_crl.unwrap_or(false),
        missing_crl: relax.missing_crl.unwrap_or(false),
    };
    for (on, k) in [
        (relax.host_cert_purpose, "host-cert-purpose"),
        (relax.stale_crl, "stale-crl"),
        (relax.missing_crl, "missing-crl"),
    ] {
        if on {
            d.warn(
                &join(&join(p, "relax"), k),
                format!("image-list trust is relaxed ({k})"),
                Some("remove it once the endorser or fetch-crl is fixed".into()),
            );
        }
    }
    Section {
        allow_http,
        max_attempts,
        transfer,
        tag,
        prefix,
        formats,
        parallel_downloads: parallel,
        stuck_minutes: raw.stuck_minutes.unwrap_or(def.stuck_minutes),
        expired_list: raw.expired_list.unwrap_or_default(),
        cloudkeeper_properties: raw.cloudkeeper_properties.unwrap_or(false),
        min_ram_from_list: raw.min_ram_from_list.unwrap_or(false),
        glance_endpoint: raw.glance_endpoint,
        relax,
        legacy: Legacy {
            atrope_sources: raw.atrope_sources,
            atrope_vo_map: raw.atrope_vo_map,
            cloudkeeper_image_lists: raw.cloudkeeper_image_lists,
            cloudkeeper_endorser,
        },
        subscriptions,
        harbor,
    }
}

/// A name prefix: at most [`MAX_PREFIX_CHARS`] characters, no control
/// characters.
fn check_prefix(prefix: &str, path: &str, d: &mut Diag) {
    if prefix.chars().count() > MAX_PREFIX_CHARS || prefix.chars().any(char::is_control) {
        d.error_hint(
            path,
            format!(
                "a name prefix has at most {MAX_PREFIX_CHARS} characters and no control characters"
            ),
            "Glance names have at most 255 characters, and the image's title needs room",
        );
    }
}

fn harbor_subscription(
    s: RawSubscription,
    name: Option<String>,
    sp: &str,
    allow_http: AllowHttp,
    d: &mut Diag,
) -> Option<HarborSubscription> {
    let registry = d.require(s.registry, &join(sp, "registry"));
    let mut ok = true;
    if let Some(r) = &registry {
        let http = crate::scheme::Http::allowed_if(allow_http.registries);
        if let Err(e) = crate::scheme::check(r, "a registry", http) {
            d.error_hint(
                &join(sp, "registry"),
                format!("the `{}` scheme is refused (the Harbor base URL)", e.scheme),
                if e.scheme == "http" {
                    "use https, or allow http for registries: `allow-http: [registries]` in `images`"
                } else {
                    "use the registry's https:// URL"
                },
            );
            ok = false;
        }
    }
    let projects = s.projects.unwrap_or_default();
    if projects.is_empty() {
        d.error_hint(
            &join(sp, "projects"),
            "a harbor subscription needs projects",
            "add `projects: [<harbor project>, ...]`",
        );
    }
    for (k, v) in [
        ("repository", &s.repository),
        ("tag-pattern", &s.tag_pattern),
    ] {
        if let Some(Err(e)) = v.as_deref().map(regex::Regex::new) {
            d.error_hint(
                &join(sp, k),
                format!("not a regular expression: {e}"),
                "use Rust `regex` syntax; it must match the whole name",
            );
            ok = false;
        }
    }
    for (k, set) in [
        ("url", s.url.is_some()),
        ("file", s.file.is_some()),
        ("endorser", s.endorser.is_some()),
        ("images", s.images.is_some()),
    ] {
        if set {
            d.error_hint(
                &join(sp, k),
                format!("`{k}` is not used by `type: harbor`"),
                "remove it",
            );
            ok = false;
        }
    }
    let vos = s.vos.unwrap_or_default();
    let visibility = s.visibility.unwrap_or(if vos.is_empty() {
        Visibility::Private
    } else {
        Visibility::Shared
    });
    if visibility == Visibility::Shared && vos.is_empty() {
        d.error_hint(
            &join(sp, "visibility"),
            "`shared` needs the VOs to share with",
            "add `vos: [<vo name>, ...]`",
        );
        ok = false;
    }
    let prefix = s.prefix.unwrap_or_default();
    check_prefix(&prefix, &join(sp, "prefix"), d);
    let (name, registry) = (name?, registry?);
    (ok && !projects.is_empty()).then_some(HarborSubscription {
        name,
        registry,
        projects,
        repository: s.repository,
        tag_pattern: s.tag_pattern,
        vos,
        visibility,
        prefix,
        robot: s.robot,
        enabled: s.enabled.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::format::parse;

    fn run(text: &str) -> (Section, Vec<String>) {
        let mut d = Diag::new("a.yaml");
        d.secrets_file = Some("/etc/s.yaml".into());
        let node = parse(text).unwrap();
        let raw = Raw::decode(&node, "images", &mut d);
        let s = validate(raw, &mut d);
        d.sort();
        (s, d.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn subscriptions_and_defaults() {
        let (s, errs) = run(
            "subscriptions:\n  - name: alpha\n    url: https://lists.example.org/alpha.list\n    endorser: {dn: /CN=E, ca: /CN=CA}\n    vos: [vo.alpha]\n  - name: beta\n    file: /srv/beta.list\n    endorser: {dn: /CN=E, ca: /CN=CA}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.tag, "atrope");
        assert_eq!(s.subscriptions[0].visibility, Visibility::Shared);
        assert_eq!(s.subscriptions[1].visibility, Visibility::Private);
    }

    #[test]
    fn every_problem_with_position_and_no_inline_token() {
        let (_, errs) = run(
            "formats: [qcow3]\nsubscriptions:\n  - name: a/b\n    token: hunter2\n    endorser: {dn: CN=E}\n    visibility: shared\n",
        );
        let all = errs.join("\n");
        assert!(all.contains("unknown disk format `qcow3`"), "{all}");
        assert!(
            all.contains("cannot be used as a subscription name"),
            "{all}"
        );
        assert!(
            all.contains("secrets are not allowed in this file"),
            "{all}"
        );
        assert!(all.contains("images.a/b.token"), "{all}");
        assert!(all.contains("has no list"), "{all}");
        assert!(all.contains("not a DN"), "{all}");
        assert!(all.contains("`shared` needs the VOs"), "{all}");
        assert!(!all.contains("hunter2"));
    }

    #[test]
    fn harbor_subscriptions() {
        let (s, errs) = run(
            "subscriptions:\n  - name: egi\n    type: harbor\n    registry: https://registry.egi.eu\n    projects: [egi_vm_images]\n    tag-pattern: '24\\.04'\n    robot: robot$sync\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert!(s.subscriptions.is_empty());
        assert_eq!(s.harbor.len(), 1);
        let h = &s.harbor[0];
        assert_eq!(h.projects, vec!["egi_vm_images"]);
        assert_eq!(h.tag_pattern.as_deref(), Some("24\\.04"));
        assert_eq!(h.visibility, Visibility::Private);
        let (_, errs) = run(
            "subscriptions:\n  - name: egi\n    type: harbor\n    registry: https://r\n    tag-pattern: '('\n    url: https://x\n",
        );
        let all = errs.join("\n");
        assert!(all.contains("images.subscriptions[0].projects"), "{all}");
        assert!(all.contains("images.subscriptions[0].tag-pattern"), "{all}");
        assert!(all.contains("images.subscriptions[0].url"), "{all}");
        let (_, errs) = run("subscriptions:\n  - name: x\n    type: oci\n");
        assert!(
            errs.join("").contains("unknown subscription type"),
            "{errs:?}"
        );
    }
}
