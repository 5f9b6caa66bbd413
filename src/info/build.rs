//! [`SiteFacts`] -> GLUE [`Document`]: cloud-info-provider 1.2's
//! `OpenStackProvider.fetch` (`providers/base.py`, `providers/openstack.py`
//! at v1.2.0) as a pure function, entity for entity and in the same order,
//! so that the compat rendering is byte-identical.
//!
//! Where cloud-info-provider crashes, this publishes and warns instead
//! (never one bad item takes the site offline):
//! - a share whose project cannot be read for another reason than a refused
//!   login is skipped like a refused one (endpoint `warning`, real error);
//! - a fractional `Accelerator:Number` publishes the flavor with the number
//!   rounded up, and warns; a non-numeric one skips the flavor, and warns;
//! - `APPLIANCE_ATTRIBUTES` that is not a JSON object is ignored, and warns.
//!
//! Outside compat mode ([`Options::compat`] false) the document also: has
//! every class key (empty lists included), carries the real error text of
//! every failed share, publishes accelerator `Type`, `Memory` (MiB),
//! `Version` and `VirtualizationType`, keeps the Glance path prefix in the
//! fallback `MarketplaceURL`, and fixes the manager's aggregates (max and min
//! over every share instead of the last share's max and 0).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::facts::{FlavorFacts, ProjectFacts, SiteFacts};
use super::glue::{Class, Document, Entity};

/// cloud-info-provider's message for a refused login: its
/// `OpenStackProviderException(e.details)` of a Keystone JSON 401 has no
/// details, so it prints the exception's default text.
pub const CIP_AUTH_FAILURE: &str = "An unknown exception occurred.";

/// Which flavors are published (`--select-flavors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlavorSelection {
    /// Public and private ones the project can use.
    #[default]
    All,
    /// Public only.
    Public,
    /// Private only.
    Private,
}

/// Flavor property (extra spec) names (`--property-flavor-gpu-*`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FlavorProperties {
    /// Number of accelerators; its presence makes the accelerator.
    pub gpu_number: String,
    /// Vendor.
    pub gpu_vendor: String,
    /// Model.
    pub gpu_model: String,
    /// Memory, GB (published outside compat mode, in MiB).
    pub gpu_memory: String,
    /// Virtualization type (published outside compat mode).
    pub gpu_virt_type: String,
    /// Accelerator type, `GPU` when absent (published outside compat mode).
    pub gpu_type: String,
    /// Version (published outside compat mode).
    pub gpu_version: String,
}

impl Default for FlavorProperties {
    fn default() -> Self {
        FlavorProperties {
            gpu_number: "Accelerator:Number".into(),
            gpu_vendor: "Accelerator:Vendor".into(),
            gpu_model: "Accelerator:Model".into(),
            gpu_memory: "Accelerator:Memory".into(),
            gpu_virt_type: "Accelerator:VirtualizationType".into(),
            gpu_type: "Accelerator:Type".into(),
            gpu_version: "Accelerator:Version".into(),
        }
    }
}

/// How the document is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Byte-compatible with cloud-info-provider 1.2.
    pub compat: bool,
    /// `--select-flavors`.
    pub select_flavors: FlavorSelection,
    /// `--only-appdb-images`: skip images without marketplace metadata.
    pub only_appdb_images: bool,
    /// Flavor property names.
    pub flavor_properties: FlavorProperties,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compat: true,
            select_flavors: FlavorSelection::All,
            only_appdb_images: false,
            flavor_properties: FlavorProperties::default(),
        }
    }
}

/// Something published differently from what the site holds, or left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    /// What it is about, e.g. `flavor g1.half (id 7) of vo.example.eu`.
    pub subject: String,
    /// What happened.
    pub message: String,
}

/// The document and what was noticed while building it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The document.
    pub document: Document,
    /// Warnings: bad metadata, failed shares.
    pub notices: Vec<Notice>,
    /// Shares published.
    pub shares_ok: usize,
    /// Shares that failed.
    pub shares_failed: usize,
}

/// Build the document of `facts`, created at `now`.
pub fn build(facts: &SiteFacts, opts: &Options, now: DateTime<Utc>) -> Built {
    let ep = &facts.endpoint;
    let site = &facts.site;
    let svc_id = format!("{ep}_cloud.compute");
    let mgr_id = format!("{ep}_cloud.compute_manager");
    let ept_id = format!("{ep}_OpenStack_v3");
    let mut doc = Document::new(now);
    let mut notices = Vec::new();

    // Service
    let mut svc = Entity::new(&svc_id).named(format!("Cloud Compute service at {site}"));
    if let Some(g) = &facts.gocdb {
        svc.other_info
            .insert("gocdb_id".into(), Value::String(g.gocdb_id.clone()));
        svc.other_info
            .insert("site_name".into(), Value::String(g.site_name.clone()));
    }
    svc.associate("AdminDomain", site);
    svc.set("Type", "org.cloud.iaas");
    svc.set("QualityLevel", "production");
    svc.set(
        "StatusInfo",
        format!("https://argo.egi.eu/egi/report-status/Critical/SITES/{site}"),
    );
    svc.set("ServiceAUP", "http://go.egi.eu/aup");
    svc.set("Complexity", Value::Null);
    svc.set(
        "Capability",
        vec!["executionmanagement.dynamicvmdeploy", "security.accounting"],
    );
    doc.push(Class::Service, svc);

    // Manager
    let mut mgr = Entity::new(&mgr_id);
    mgr.associate(Class::Service.key(), &svc_id);
    doc.push(Class::Manager, mgr);

    // Endpoint
    let mut ept = Entity::new(&ept_id).named(format!("Cloud computing endpoint for {ept_id}"));
    ept.associate(Class::Service.key(), &svc_id);
    ept.set("Capability", Value::Array(vec![]));
    ept.set("QualityLevel", "production");
    ept.set("InterfaceName", "org.openstack.nova");
    ept.set("HealthState", "ok");
    ept.set("HealthStateInfo", "Endpoint functioning properly");
    ept.set("ServingState", "production");
    ept.set("Technology", "webservice");
    ept.set("Implementor", "OpenStack Foundation");
    ept.set("ImplementationName", "OpenStack Nova");
    ept.set(
        "DowntimeInfo",
        format!("https://goc.egi.eu/portal/index.php?Page_Type=Downtimes_Calendar&site={site}"),
    );
    ept.set(
        "Semantics",
        "https://developer.openstack.org/api-ref/compute",
    );
    ept.set("Authentication", facts.authentication.clone());
    ept.set("IssuerCA", facts.ca.issuer.clone());
    ept.set("TrustedCA", facts.ca.trusted.clone());
    ept.set("URL", ep.clone());
    doc.push(Class::Endpoint, ept);

    let mut rules: Vec<String> = Vec::new();
    let (mut total, mut running, mut halted, mut suspended) = (0i64, 0i64, 0i64, 0i64);
    // (max_cpu, min_cpu, max_ram, min_ram) as cloud-info-provider computes
    // them (last share's max; min(0, x)), and correctly over all shares.
    let mut compat_aggr = (0i64, 0i64, 0i64, 0i64);
    let mut full_aggr: Option<(i64, i64, i64, i64)> = None;
    let mut failures: Vec<String> = Vec::new();
    let mut last_failure: Option<String> = None;
    let mut shares_ok = 0;

    for share in &facts.shares {
        let p = match &share.result {
            Err(f) => {
                notices.push(Notice {
                    subject: format!("VO {} project {}", share.vo, share.project),
                    message: f.message.clone(),
                });
                let text = if opts.compat && f.auth {
                    CIP_AUTH_FAILURE.to_string()
                } else {
                    format!("VO {}: {}", share.vo, f.message)
                };
                failures.push(format!("VO {}: {}", share.vo, f.message));
                last_failure = Some(text);
                continue;
            }
            Ok(p) => p,
        };
        shares_ok += 1;
        let vo = &share.vo;
        let share_id = format!("{ept_id}_share_{vo}_{}", p.project_id);
        let mut sh = Entity::new(&share_id).named(format!("{vo} - {} share", p.project_id));
        sh.other_info.insert(
            "project_name".into(),
            p.project_name.clone().map_or(Value::Null, Value::String),
        );
        sh.other_info.insert(
            "project_domain_name".into(),
            p.project_domain_name
                .clone()
                .map_or(Value::Null, Value::String),
        );
        sh.associate(Class::Service.key(), &svc_id);
        sh.associate(Class::Endpoint.key(), &ept_id);
        let ids = Ids {
            share: &share_id,
            endpoint: &ept_id,
            manager: &mgr_id,
        };

        // Images
        for img in &p.images {
            let subject = || {
                format!(
                    "image {} of VO {vo}",
                    img.get("id").and_then(Value::as_str).unwrap_or("?")
                )
            };
            match image(img, p, &ids, opts) {
                Ok((Some(e), problem)) => {
                    doc.push(Class::Image, e);
                    if let Some(message) = problem {
                        notices.push(Notice {
                            subject: subject(),
                            message,
                        });
                    }
                }
                Ok((None, _)) => {}
                Err(message) => notices.push(Notice {
                    subject: subject(),
                    message,
                }),
            }
        }

        // Instance types (+ accelerators)
        let (mut cpus, mut rams) = (Vec::new(), Vec::new());
        for f in &p.flavors {
            let keep = match opts.select_flavors {
                FlavorSelection::All => true,
                FlavorSelection::Public => f.is_public,
                FlavorSelection::Private => !f.is_public,
            };
            if !keep {
                continue;
            }
            let subject = format!("flavor {} (id {}) of VO {vo}", f.name, f.id);
            let acc = match accelerator(f, opts) {
                Ok(a) => a,
                Err(message) => {
                    notices.push(Notice { subject, message });
                    continue;
                }
            };
            let mut it = Entity::new(&f.id).named(&f.name);
            ids.associate_all(&mut it);
            it.set("Platform", "amd64");
            it.set("CPU", f.vcpus);
            it.set("RAM", f.ram);
            it.set("Disk", f.disk);
            it.set("NetworkIn", "UNKNOWN");
            it.set("NetworkOut", true);
            cpus.push(f.vcpus as i64);
            rams.push(f.ram as i64);
            match acc {
                None => {
                    doc.push(Class::InstanceType, it);
                }
                Some((mut acc, warning)) => {
                    if let Some(message) = warning {
                        notices.push(Notice { subject, message });
                    }
                    acc.associate(Class::InstanceType.key(), &f.id);
                    it.associate(Class::Accelerator.key(), &acc.id);
                    doc.push(Class::InstanceType, it);
                    doc.push(Class::Accelerator, acc);
                }
            }
        }
        let max_cpu = cpus.iter().copied().max().unwrap_or(0);
        let min_cpu = cpus.iter().copied().min().unwrap_or(0);
        let max_ram = rams.iter().copied().max().unwrap_or(0);
        let min_ram = rams.iter().copied().min().unwrap_or(0);

        // Quotas and servers
        let mut quotas = Map::new();
        if let Some(q) = &p.quotas {
            for k in QUOTA_RESOURCES {
                if let Some(v) = q.get(*k) {
                    quotas.insert((*k).to_string(), v.clone());
                }
            }
        }
        let max_vm = quotas.get("instances").cloned().unwrap_or(Value::from(0));
        sh.other_info.insert("quotas".into(), Value::Object(quotas));
        let (mut r, mut h, mut s) = (0i64, 0i64, 0i64);
        for st in &p.server_statuses {
            match st.as_str() {
                "SHUTOFF" => h += 1,
                "SUSPENDED" => s += 1,
                _ => r += 1,
            }
        }
        sh.set("InstanceMaxCPU", max_cpu);
        sh.set("InstanceMaxRAM", max_ram);
        sh.set("TotalVM", r + h + s);
        sh.set("RunningVM", r);
        sh.set("SuspendedVM", s);
        sh.set("HaltedVM", h);
        sh.set("MaxVM", max_vm);
        sh.set("ProjectID", p.project_id.clone());
        doc.push(Class::Share, sh);
        compat_aggr = (
            max_cpu.max(0),
            min_cpu.min(0),
            max_ram.max(0),
            min_ram.min(0),
        );
        full_aggr = Some(match full_aggr {
            None => (max_cpu, min_cpu, max_ram, min_ram),
            Some((a, b, c, d)) => (
                a.max(max_cpu),
                b.min(min_cpu),
                c.max(max_ram),
                d.min(min_ram),
            ),
        });

        let rule = format!("VO:{vo}");
        rules.push(rule.clone());
        let mut mp = Entity::new(format!("{share_id}_Policy"));
        mp.associate(Class::Share.key(), &share_id);
        mp.associate("PolicyUserDomain", vo);
        mp.set("Rule", vec![rule]);
        mp.set("Scheme", "org.glite.standard");
        doc.push(Class::MappingPolicy, mp);

        running += r;
        halted += h;
        suspended += s;
        total += r + h + s;
    }

    let mut ap = Entity::new(format!("{ept_id}_policy"));
    ap.associate(Class::Endpoint.key(), &ept_id);
    ap.set("Rule", rules);
    ap.set("Scheme", "org.glite.standard");
    doc.push(Class::AccessPolicy, ap);

    if let Some(svc) = doc.first_mut(Class::Service) {
        svc.set("Complexity", format!("endpointType=1,share={shares_ok}"));
        svc.set("TotalVM", total);
        svc.set("RunningVM", running);
        svc.set("SuspendedVM", suspended);
        svc.set("HaltedVM", halted);
    }
    let (max_cpu, min_cpu, max_ram, min_ram) = if opts.compat {
        compat_aggr
    } else {
        full_aggr.unwrap_or_default()
    };
    if let Some(mgr) = doc.first_mut(Class::Manager) {
        mgr.set("InstanceMaxCPU", max_cpu);
        mgr.set("InstanceMinCPU", min_cpu);
        mgr.set("InstanceMaxRAM", max_ram);
        mgr.set("InstanceMinRAM", min_ram);
    }
    if let Some(ept) = doc.first_mut(Class::Endpoint) {
        if let Some(text) = &last_failure {
            ept.set("HealthState", "warning");
            if opts.compat {
                ept.set("HealthStateInfo", text.clone());
            } else {
                ept.set("HealthStateInfo", failures.join("; "));
            }
        }
        if shares_ok > 0 {
            ept.set("InterfaceVersion", "2.0");
            ept.set(
                "ImplementationVersion",
                facts
                    .nova_version
                    .clone()
                    .map_or(Value::Null, Value::String),
            );
        } else {
            ept.set("HealthState", "unknown");
            if opts.compat || failures.is_empty() {
                ept.set("HealthStateInfo", "No working authentication configured");
            } else {
                ept.set(
                    "HealthStateInfo",
                    format!(
                        "No working authentication configured: {}",
                        failures.join("; ")
                    ),
                );
            }
        }
    }
    if !opts.compat {
        doc.all_classes();
    }
    Built {
        document: doc,
        notices,
        shares_ok,
        shares_failed: failures.len(),
    }
}

/// cloud-info-provider's quota attributes, in its order.
const QUOTA_RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "floating_ips",
    "fixed_ips",
    "metadata_items",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "key_pairs",
    "security_groups",
    "security_group_rules",
    "server_groups",
    "server_group_members",
];

struct Ids<'a> {
    share: &'a str,
    endpoint: &'a str,
    manager: &'a str,
}

impl Ids<'_> {
    fn associate_all(&self, e: &mut Entity) {
        e.associate(Class::Share.key(), self.share);
        e.associate(Class::Endpoint.key(), self.endpoint);
        e.associate(Class::Manager.key(), self.manager);
    }
}

/// Python's `dict.get(key, default)` on an image: a present key wins, even
/// with an empty or null value.
fn get_or<'a>(img: &'a Map<String, Value>, key: &str, default: &'a Value) -> &'a Value {
    img.get(key).unwrap_or(default)
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `build_image`: `None` for an image left out by `only_appdb_images`,
/// plus a problem that did not stop it from being published; `Err` skips it.
fn image(
    img: &Map<String, Value>,
    p: &ProjectFacts,
    ids: &Ids<'_>,
    opts: &Options,
) -> Result<(Option<Entity>, Option<String>), String> {
    let Some(id) = img.get("id").and_then(Value::as_str) else {
        return Err("no id".into());
    };
    let unknown = Value::String("UNKNOWN".into());
    let null = Value::Null;
    let title = get_or(img, "vmcatcher_event_dc_title", &unknown);
    let description = get_or(img, "vmcatcher_event_dc_description", title).clone();
    let marketplace = get_or(img, "marketplace", &null);
    let mut marketplace = get_or(img, "vmcatcher_event_ad_mpuri", marketplace).clone();

    let mut other_info = Map::new();
    let mut problem = None;
    if let Some(attrs) = img.get("APPLIANCE_ATTRIBUTES") {
        let parsed = match attrs {
            Value::String(s) => serde_json::from_str::<Value>(s).map_err(|e| e.to_string()),
            other => Err(format!("not a string but {other}")),
        };
        match parsed {
            Ok(Value::Object(attrs)) => {
                if let Some(b) = attrs.get("ad:base_mpuri") {
                    other_info.insert("base_mpuri".into(), b.clone());
                }
                for (k, v) in attrs {
                    other_info.insert(k, v);
                }
            }
            Ok(other) => {
                problem = Some(format!(
                    "APPLIANCE_ATTRIBUTES is not a JSON object ({other}); ignored"
                ))
            }
            Err(e) => problem = Some(format!("APPLIANCE_ATTRIBUTES is not JSON ({e}); ignored")),
        }
    }

    if !truthy(&marketplace) {
        if opts.only_appdb_images {
            return Ok((None, problem));
        }
        let file = img.get("file").and_then(Value::as_str);
        marketplace = Value::String(match file {
            Some(f) if opts.compat => py_urljoin(&p.glance_endpoint, f),
            Some(f) => join_keeping_prefix(&p.glance_endpoint, f),
            None => p.glance_endpoint.clone(),
        });
    }

    let mut e = Entity::new(id);
    e.name = img.get("name").and_then(Value::as_str).map(str::to_string);
    e.other_info = other_info;
    ids.associate_all(&mut e);
    e.set("MarketplaceURL", marketplace);
    e.set("OSPlatform", get_or(img, "architecture", &unknown).clone());
    e.set("OSName", get_or(img, "os_distro", &unknown).clone());
    e.set("OSVersion", get_or(img, "os_version", &unknown).clone());
    e.set("Description", description);
    e.set("AccessInfo", "none");
    Ok((Some(e), problem))
}

/// Python's `urllib.parse.urljoin(base, url)` for the URLs Glance gives
/// (`/v2/images/<id>/file`: an absolute path replaces the base's path).
pub fn py_urljoin(base: &str, url: &str) -> String {
    if url.is_empty() {
        return base.to_string();
    }
    if url.contains("://") {
        return url.to_string();
    }
    let (scheme, rest) = match base.split_once("://") {
        Some(x) => x,
        None => return url.to_string(),
    };
    if let Some(net) = url.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let netloc = &rest[..netloc_end];
    if url.starts_with('/') {
        return format!("{scheme}://{netloc}{url}");
    }
    // A relative path: replace the last segment of the base path.
    let path = &rest[netloc_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{netloc}{dir}{url}")
}

/// The fallback marketplace URL that keeps the endpoint's path prefix
/// (`https://h/image` + `/v2/images/x/file`), not repeating a version the
/// endpoint already ends with.
fn join_keeping_prefix(endpoint: &str, file: &str) -> String {
    if !file.starts_with('/') {
        return py_urljoin(endpoint, file);
    }
    let mut base = endpoint.trim_end_matches('/').to_string();
    if let Some(ver) = file.split('/').nth(1) {
        let suffix = format!("/{ver}");
        if !ver.is_empty() && base.ends_with(&suffix) {
            base.truncate(base.len() - suffix.len());
        }
    }
    format!("{base}{file}")
}

/// A parsed `Accelerator:Number`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GpuNumber {
    /// A whole number (`"2"`, `"1.0"`).
    Whole(i64),
    /// A fraction of a GPU (`"0.5"`): shared GPUs.
    Fraction(f64),
}

/// Parse an accelerator count the way pydantic's lax `int` accepts it
/// (`"2"`, `" 2 "`, `"1.0"`), and tell fractions apart.
pub fn parse_gpu_number(s: &str) -> Option<GpuNumber> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(GpuNumber::Whole(i));
    }
    let x: f64 = t.parse().ok().filter(|x: &f64| x.is_finite())?;
    if !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(GpuNumber::Whole(x as i64))
    } else {
        Some(GpuNumber::Fraction(x))
    }
}

/// The accelerator of a flavor, if it has one, and a warning when its
/// number was not a whole one. `Err` skips the flavor.
fn accelerator(
    f: &FlavorFacts,
    opts: &Options,
) -> Result<Option<(Entity, Option<String>)>, String> {
    let props = &opts.flavor_properties;
    let spec = |k: &str| f.extra_specs.get(k).filter(|v| !v.is_empty());
    let Some(raw) = spec(&props.gpu_number) else {
        return Ok(None);
    };
    let (number, warning) = match parse_gpu_number(raw) {
        Some(GpuNumber::Whole(n)) => (n, None),
        Some(GpuNumber::Fraction(x)) => (
            x.ceil() as i64,
            Some(format!(
                "{} is {raw:?}, not a whole number: published as {} (cloud-info-provider 1.2 fails the whole site on this)",
                props.gpu_number,
                x.ceil() as i64
            )),
        ),
        None => {
            return Err(format!(
                "{} is {raw:?}, not a number: flavor left out",
                props.gpu_number
            ))
        }
    };
    let mut acc = Entity::new(format!("{}_gpu", f.id)).named(format!("{}_gpu", f.name));
    let ty = if opts.compat {
        "GPU".to_string()
    } else {
        spec(&props.gpu_type)
            .cloned()
            .unwrap_or_else(|| "GPU".into())
    };
    acc.set("Type", ty);
    acc.set("Number", number);
    acc.set(
        "Vendor",
        spec(&props.gpu_vendor)
            .cloned()
            .unwrap_or_else(|| "UNKNOWN".into()),
    );
    acc.set(
        "Model",
        spec(&props.gpu_model)
            .cloned()
            .unwrap_or_else(|| "UNKNOWN".into()),
    );
    if !opts.compat {
        if let Some(v) = spec(&props.gpu_version) {
            acc.set("Version", v.clone());
        }
        if let Some(m) = spec(&props.gpu_memory) {
            match m.trim().parse::<f64>() {
                Ok(gb) if gb.is_finite() && gb >= 0.0 => {
                    acc.set("Memory", (gb * 1024.0).round() as u64);
                }
                _ => {
                    tracing::warn!(flavor = %f.id, value = %m, "{} is not a number; Memory not published", props.gpu_memory);
                }
            }
        }
    }
    acc.set("ComputeCapability", Value::Array(vec![]));
    if !opts.compat {
        if let Some(v) = spec(&props.gpu_virt_type) {
            acc.set("VirtualizationType", v.clone());
        }
        if let Some(GpuNumber::Fraction(_)) = parse_gpu_number(raw) {
            acc.other_info
                .insert(props.gpu_number.clone(), Value::String(raw.clone()));
        }
    }
    Ok(Some((acc, warning)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_numbers() {
        assert_eq!(parse_gpu_number("2"), Some(GpuNumber::Whole(2)));
        assert_eq!(parse_gpu_number("1.0"), Some(GpuNumber::Whole(1)));
        assert_eq!(parse_gpu_number(" 3 "), Some(GpuNumber::Whole(3)));
        assert_eq!(parse_gpu_number("0"), Some(GpuNumber::Whole(0)));
        assert_eq!(parse_gpu_number("0.5"), Some(GpuNumber::Fraction(0.5)));
        assert_eq!(parse_gpu_number("two"), None);
        assert_eq!(parse_gpu_number("nan"), None);
        assert_eq!(parse_gpu_number("inf"), None);
    }

    #[test]
    fn urljoin_like_python() {
        assert_eq!(
            py_urljoin("http://127.0.0.1:18080/image", "/v2/images/x/file"),
            "http://127.0.0.1:18080/v2/images/x/file"
        );
        assert_eq!(
            py_urljoin("http://127.0.0.1:9292", "/v2/images/x/file"),
            "http://127.0.0.1:9292/v2/images/x/file"
        );
        assert_eq!(py_urljoin("https://h:443/a/b", "c"), "https://h:443/a/c");
        assert_eq!(
            join_keeping_prefix("http://h/image", "/v2/images/x/file"),
            "http://h/image/v2/images/x/file"
        );
        assert_eq!(
            join_keeping_prefix("http://h/image/v2/", "/v2/images/x/file"),
            "http://h/image/v2/images/x/file"
        );
    }
}
