//! A Nova/Keystone API simulator for accounting at scale: the calls cASO's
//! extractors and `appliance accounting extract` make, served from an
//! in-memory [`Dataset`] (spec accounting.md §1.2-1.6). It stands in for a
//! site with 10 000+ servers, which the local reference site (Nova's fake
//! driver on SQLite) cannot hold in reasonable time.
//!
//! Faithfulness: a [`Dataset`] holds OpenStack objects *as the real APIs
//! return them* (captured from the reference site by the accounting tests,
//! or [`Dataset::synthetic`] in the same shapes), and the sim reproduces the
//! API behaviour accounting depends on, read from Nova/Keystone:
//!
//! | call | behaviour |
//! |---|---|
//! | `POST /v3/auth/tokens` | password / token / application credential; project (id or name), system or no scope; `X-Subject-Token`; catalog |
//! | `GET /v3/auth/projects`, `/v3/projects[/{id}]`, `/v3/users/{id}` | the dataset's projects (custom properties top-level) and users |
//! | `GET {compute}/servers/detail` | default: not deleted; `changes-since`: `updated >= t`, deleted included; sorted `created` desc, then the dataset's order (Nova's creation order); `limit` (default and max 1000) / `marker` (400 if unknown); `servers_links` next when the page is full |
//! | microversion >= 2.47 | `flavor` embedded (`vcpus, ram, disk, ephemeral, swap, original_name, extra_specs`), no `id` |
//! | `GET {compute}/servers/{id}`, `/flavors/detail`, `/flavors/{id}/os-extra_specs`, `/os-simple-tenant-usage/{project}` | as Nova 2.1 |
//! | `GET {image}/v2/images[/{id}]`, `{volume}/volumes/detail`, `{network}/v2.0/floatingips` | Glance, Cinder, Neutron listings (project scoped) |
//!
//! The compute endpoint in the catalog can carry the project id
//! (`.../v2.1/<project_id>`, as legacy Nova endpoints do) and can point
//! elsewhere (`Options::compute_base`, e.g. a fault proxy in front of the
//! sim), so a test can fail one project's Nova calls only. Faults can also
//! be injected into the sim itself (`/__test/faults`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use url::Url;

use super::faults::{self, FaultControl};
use super::http::{self, Outcome, Peer, Resp};
use super::{Error, Server};

/// Highest compute microversion the sim claims (Nova 2026.1's is higher;
/// accounting needs 2.47).
pub const MAX_MICROVERSION: (u32, u32) = (2, 96);

/// A site's data, as the OpenStack APIs return it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// Keystone projects (custom properties such as `VO` top-level).
    pub projects: Vec<Value>,
    /// Keystone users.
    pub users: Vec<Value>,
    /// Nova flavors (2.1 shape) with their `extra_specs`.
    pub flavors: Vec<Value>,
    /// Glance images.
    pub images: Vec<Value>,
    /// Nova servers (2.1 shape: `flavor` is `{"id": ..}`) by project id.
    pub servers: BTreeMap<String, Vec<Value>>,
    /// Cinder volumes by project id.
    pub volumes: BTreeMap<String, Vec<Value>>,
    /// Neutron floating IPs (with `project_id`).
    pub floatingips: Vec<Value>,
    /// Per server id: what Nova adds to a server from microversion 2.47
    /// (the embedded `flavor`, which outlives a deleted flavor, and
    /// `locked`, `description`, `tags`), as captured from a real Nova. A
    /// server without an entry gets them derived: the flavor from
    /// `flavors`, `locked: false`, `description` = name, `tags: []`.
    #[serde(default)]
    pub server_extras: BTreeMap<String, Value>,
    /// Per private flavor (`os-flavor-access:is_public: false`): the
    /// projects that may use it; others neither list nor see it.
    #[serde(default)]
    pub flavor_access: BTreeMap<String, Vec<String>>,
    /// Per shared image: member project -> member status (`accepted`,
    /// `pending`, `rejected`). Glance lists a shared image to its members
    /// that accepted it and shows it by id to any member.
    #[serde(default)]
    pub image_members: BTreeMap<String, BTreeMap<String, String>>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn naive_us(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A deterministic UUID from two numbers.
fn uuid(kind: u32, n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        kind,
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

impl Dataset {
    /// `servers` servers spread over `projects` projects (2 VOs), with the
    /// mix an accounting run sees: ~70 % ACTIVE, 10 % SHUTOFF, 20 % DELETED
    /// within the last day; flavors with benchmark and GPU extra specs; an
    /// image with an AppDB MPURI and one without; one volume per 10 servers,
    /// one floating IP per 20 (every fourth IPv6). Server creation times
    /// spread over the 30 days before `now`.
    pub fn synthetic(servers: usize, projects: usize, now: DateTime<Utc>) -> Dataset {
        let projects = projects.max(1);
        let mut d = Dataset::default();
        for p in 0..projects {
            let vo = if p % 2 == 0 {
                "vo.alpha.example"
            } else {
                "vo.beta.example"
            };
            d.projects.push(json!({
                "id": format!("{:032x}", p + 1), "name": format!("sim-{p}"), "domain_id": "default",
                "enabled": true, "description": "", "parent_id": "default", "is_domain": false,
                "tags": [], "options": {}, "VO": vo,
                "links": {"self": format!("http://sim/v3/projects/{:032x}", p + 1)}
            }));
            d.users.push(json!({
                "id": format!("{:032x}", 0x1000_0000 + p), "name": format!("user{p}@egi.eu"),
                "domain_id": "default", "enabled": true, "password_expires_at": null, "options": {}
            }));
        }
        let flavor = |id: &str, name: &str, vcpus: u32, ram: u32, disk: u32, extra: Value| {
            json!({"id": id, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0,
                "os-flavor-access:is_public": true, "OS-FLV-DISABLED:disabled": false,
                "links": [], "extra_specs": extra})
        };
        d.flavors = vec![
            flavor("1", "m1.tiny", 1, 512, 1, json!({})),
            flavor(
                "2",
                "m1.medium",
                2,
                4096,
                20,
                json!({"accounting:benchmark_type": "HEPscore23", "accounting:benchmark_value": "10.5"}),
            ),
            flavor(
                "3",
                "g1.gpu",
                8,
                16384,
                40,
                json!({"Accelerator:Vendor": "NVIDIA", "Accelerator:Model": "Tesla V100",
                    "Accelerator:Number": "2", "Accelerator:Type": "GPU"}),
            ),
        ];
        let img = |id: &str, mpuri: Option<&str>| {
            let mut v = json!({"id": id, "name": format!("image-{id}"), "status": "active",
                "visibility": "public", "disk_format": "qcow2", "container_format": "bare",
                "size": 1048576, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                "tags": [], "protected": false, "self": format!("/v2/images/{id}"), "schema": "/v2/schemas/image"});
            if let Some(m) = mpuri {
                v["vmcatcher_event_ad_mpuri"] = json!(m);
            }
            v
        };
        let img_a = uuid(0x1a6e, 1);
        let img_b = uuid(0x1a6e, 2);
        d.images = vec![
            img(
                &img_a,
                Some("https://appdb.egi.eu/store/vo/image/4ba0d9c2-1b4b-4c6a-a1e4-d4a2c1e0f9a1:9999/"),
            ),
            img(&img_b, None),
        ];
        for i in 0..servers {
            let p = i % projects;
            let pid = format!("{:032x}", p + 1);
            let uid = format!("{:032x}", 0x1000_0000 + p);
            let created = now - Duration::seconds(((i * 7919) % (30 * 86400)) as i64 + 3600);
            let (status, terminated, updated) = match i % 10 {
                0 | 1 => {
                    let end = now - Duration::seconds(((i * 31) % 80000) as i64 + 60);
                    let end = end.max(created + Duration::seconds(30));
                    ("DELETED", Some(end), end)
                }
                2 => ("SHUTOFF", None, created + Duration::seconds(600)),
                _ => ("ACTIVE", None, created + Duration::seconds(20)),
            };
            let flavor_id = ["1", "2", "2", "1", "3"][i % 5];
            let image = match i % 7 {
                0 => json!(""),
                1 | 2 => json!({"id": img_b, "links": []}),
                _ => json!({"id": img_a, "links": []}),
            };
            let mut addresses = json!({"private": [
                {"version": 4, "addr": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                 "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]});
            if i % 20 == 3 {
                addresses["private"]
                    .as_array_mut()
                    .expect("list")
                    .push(json!(
                    {"version": 4, "addr": "203.0.113.10", "OS-EXT-IPS:type": "floating",
                     "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}));
            }
            let vm_state = match status {
                "ACTIVE" => "active",
                "SHUTOFF" => "stopped",
                _ => "deleted",
            };
            let server = json!({
                "id": uuid(0x5e7e, i as u64 + 1), "name": format!("vm-{i}"), "status": status,
                "tenant_id": pid, "user_id": uid, "metadata": {}, "hostId": "",
                "image": image, "flavor": {"id": flavor_id, "links": []},
                "created": ts(created), "updated": ts(updated), "addresses": addresses,
                "accessIPv4": "", "accessIPv6": "", "links": [],
                "OS-DCF:diskConfig": "MANUAL", "progress": 0,
                "OS-EXT-AZ:availability_zone": "nova", "config_drive": "", "key_name": null,
                "OS-SRV-USG:launched_at": naive_us(created + Duration::seconds(5)),
                "OS-SRV-USG:terminated_at": terminated.map(naive_us),
                "OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": vm_state,
                "OS-EXT-STS:power_state": if status == "ACTIVE" { 1 } else { 4 },
                "os-extended-volumes:volumes_attached": [], "security_groups": [{"name": "default"}]
            });
            d.servers.entry(pid.clone()).or_default().push(server);
            if i % 10 == 5 {
                d.volumes.entry(pid.clone()).or_default().push(json!({
                    "id": uuid(0x7017, i as u64), "name": if i % 20 == 5 { Value::Null } else { json!(format!("vol-{i}")) },
                    "status": "available", "size": 1 + i % 50, "user_id": uid,
                    "os-vol-tenant-attr:tenant_id": pid, "volume_type": "__DEFAULT__",
                    "created_at": naive_us(created), "updated_at": naive_us(created),
                    "attachments": [], "bootable": "false", "availability_zone": "nova",
                    "encrypted": false, "multiattach": false, "metadata": {}, "links": []
                }));
            }
            if i % 20 == 7 {
                let v6 = i % 80 == 7;
                d.floatingips.push(json!({
                    "id": uuid(0xf1f1, i as u64),
                    "floating_ip_address": if v6 { format!("2001:db8::{:x}", i) } else { format!("203.0.{}.{}", (i >> 8) & 255, i & 255) },
                    "project_id": pid, "tenant_id": pid, "status": "DOWN", "port_id": null,
                    "fixed_ip_address": null, "floating_network_id": uuid(0x2e7, 1), "router_id": null,
                    "description": "", "tags": [], "created_at": ts(created), "updated_at": ts(created),
                    "revision_number": 0, "port_details": null
                }));
            }
        }
        d
    }

    /// Total servers.
    pub fn server_count(&self) -> usize {
        self.servers.values().map(Vec::len).sum()
    }
}

/// How the sim presents itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Base URL of every catalog endpoint (default: the sim's own address).
    pub public_base: Option<Url>,
    /// Base URL of the compute endpoint only (e.g. a fault proxy in front
    /// of the sim); default `public_base`.
    pub compute_base: Option<Url>,
    /// Put the project id into the compute endpoint (`/v2.1/<project id>`).
    pub project_in_compute_url: bool,
}

/// A running simulator.
#[derive(Debug)]
pub struct NovaSim {
    /// The server.
    pub server: Server,
    /// Faults injected into the sim itself.
    pub faults: FaultControl,
}

struct Prepared {
    /// Per project: servers sorted as Nova lists them (created desc, id desc).
    servers: HashMap<String, Vec<Value>>,
    /// Per project, parallel to `servers`: what listings filter on, and each
    /// server's JSON rendered once (2.1 shape, >= 2.47 shape), so a listing
    /// of thousands costs the sim little next to the client it measures.
    listed: HashMap<String, Vec<Listed>>,
    server_index: HashMap<String, (String, usize)>,
    flavors: Vec<Value>,
    flavor_by_id: HashMap<String, Value>,
    projects: Vec<Value>,
    project_by_id: HashMap<String, Value>,
    users: HashMap<String, Value>,
    images: Vec<Value>,
    volumes: BTreeMap<String, Vec<Value>>,
    floatingips: Vec<Value>,
    server_extras: BTreeMap<String, Value>,
    flavor_access: BTreeMap<String, Vec<String>>,
    image_members: BTreeMap<String, BTreeMap<String, String>>,
}

/// A server as listings see it.
struct Listed {
    updated: Option<DateTime<Utc>>,
    deleted: bool,
    json_21: Box<str>,
    json_247: Box<str>,
}

struct Sim {
    data: Prepared,
    base: Url,
    compute_base: Url,
    project_in_compute_url: bool,
    faults: FaultControl,
    requests: AtomicU64,
}

fn created_of(v: &Value) -> DateTime<Utc> {
    v.get("created")
        .and_then(Value::as_str)
        .and_then(crate::openstack::parse_time)
        .unwrap_or_default()
}

impl Prepared {
    fn new(d: Dataset) -> Prepared {
        let mut servers = HashMap::new();
        let mut server_index = HashMap::new();
        for (pid, mut list) in d.servers {
            // Nova sorts by `created_at` desc, then by its internal integer
            // id desc (creation order), which the API does not show: ties
            // keep the dataset's order, which for a captured dataset is
            // Nova's own (a stable sort).
            list.sort_by_key(|s| std::cmp::Reverse(created_of(s)));
            for (i, s) in list.iter().enumerate() {
                if let Some(id) = s["id"].as_str() {
                    server_index.insert(id.to_string(), (pid.clone(), i));
                }
            }
            servers.insert(pid, list);
        }
        let by_id = |list: &[Value]| -> HashMap<String, Value> {
            list.iter()
                .filter_map(|v| Some((v["id"].as_str()?.to_string(), v.clone())))
                .collect()
        };
        let flavor_by_id = by_id(&d.flavors);
        let listed = servers
            .iter()
            .map(|(pid, list)| {
                let l: Vec<Listed> = list
                    .iter()
                    .map(|s| Listed {
                        updated: s
                            .get("updated")
                            .and_then(Value::as_str)
                            .and_then(crate::openstack::parse_time),
                        deleted: s["status"] == "DELETED",
                        json_21: s.to_string().into(),
                        json_247: embed(&flavor_by_id, &d.server_extras, s, (2, 47))
                            .to_string()
                            .into(),
                    })
                    .collect();
                (pid.clone(), l)
            })
            .collect();
        Prepared {
            servers,
            listed,
            server_index,
            flavor_by_id,
            flavors: d.flavors,
            project_by_id: by_id(&d.projects),
            projects: d.projects,
            users: by_id(&d.users),
            images: d.images,
            volumes: d.volumes,
            floatingips: d.floatingips,
            server_extras: d.server_extras,
            flavor_access: d.flavor_access,
            image_members: d.image_members,
        }
    }
}

/// Start the simulator on `listener` with `data`.
pub fn serve(listener: TcpListener, data: Dataset, options: Options) -> Result<NovaSim, Error> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    let own = Url::parse(&format!("http://{addr}/")).expect("socket address forms a URL");
    let base = options.public_base.unwrap_or(own);
    let faults = FaultControl::default();
    let sim = Arc::new(Sim {
        data: Prepared::new(data),
        compute_base: options.compute_base.unwrap_or_else(|| base.clone()),
        base,
        project_in_compute_url: options.project_in_compute_url,
        faults: faults.clone(),
        requests: AtomicU64::new(0),
    });
    let server = http::spawn("nova-sim", listener, None, move |peer, req| {
        let sim = sim.clone();
        async move { sim.handle(peer, req).await }
    })?;
    Ok(NovaSim { server, faults })
}

/// Start the simulator on a free loopback port, on the current Tokio
/// runtime or the shared background one ([`super::runtime`]); `options`
/// gets the sim's own URL first (so a fault proxy can be put in front of
/// it before the catalog is fixed).
///
/// # Panics
///
/// If no loopback port can be bound; this is a test helper.
pub fn spawn(data: Dataset, options: impl FnOnce(&Url) -> Options) -> NovaSim {
    let handle = super::runtime();
    let _guard = handle.enter();
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("binding 127.0.0.1:0: {e}"));
    std_listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("setting the listener non-blocking: {e}"));
    let addr = std_listener.local_addr().expect("listener address");
    let own = Url::parse(&format!("http://{addr}/")).expect("socket address forms a URL");
    let listener = TcpListener::from_std(std_listener)
        .unwrap_or_else(|e| panic!("registering the listener: {e}"));
    let options = options(&own);
    serve(listener, data, options).unwrap_or_else(|e| panic!("starting the nova sim: {e}"))
}

impl NovaSim {
    /// `http://<addr>/`.
    pub fn url(&self) -> Url {
        self.server.url("http")
    }
}

/// A token names its scope: `sim-p-<project id>`, `sim-s` (system) or
/// `sim-u` (unscoped), plus the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Project(String),
    System,
    Unscoped,
}

fn token_of(scope: &Scope, user: &str) -> String {
    match scope {
        Scope::Project(p) => format!("sim-p-{p}-{user}"),
        Scope::System => format!("sim-s-x-{user}"),
        Scope::Unscoped => format!("sim-u-x-{user}"),
    }
}

fn parse_token(t: &str) -> Option<(Scope, String)> {
    let mut parts = t.splitn(4, '-');
    if parts.next()? != "sim" {
        return None;
    }
    let kind = parts.next()?;
    let p = parts.next()?;
    let user = parts.next()?.to_string();
    Some((
        match kind {
            "p" => Scope::Project(p.to_string()),
            "s" => Scope::System,
            _ => Scope::Unscoped,
        },
        user,
    ))
}

fn err(status: StatusCode, message: &str) -> Resp {
    let title = status.canonical_reason().unwrap_or("Error");
    http::json(
        status,
        &json!({"error": {"code": status.as_u16(), "title": title, "message": message}}),
    )
}

fn nova_err(status: StatusCode, kind: &str, message: &str) -> Resp {
    http::json(
        status,
        &json!({kind: {"code": status.as_u16(), "message": message}}),
    )
}

fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn q<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The compute microversion a request asks for (2.1 when none).
fn microversion(req: &Request<Incoming>) -> (u32, u32) {
    let h = req.headers();
    let text = h
        .get("OpenStack-API-Version")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("compute "))
        .or_else(|| {
            h.get("X-OpenStack-Nova-API-Version")
                .and_then(|v| v.to_str().ok())
        })
        .map(str::trim);
    match text {
        Some("latest") => MAX_MICROVERSION,
        Some(t) => crate::openstack::parse_microversion(t).unwrap_or((2, 1)),
        None => (2, 1),
    }
}

#[allow(clippy::result_large_err)] // a test server's one-off error response
/// Nova's paging: `limit` (default and max 1000), `marker` (an id of the
/// list; 400 if not there).
fn page<'a>(
    list: &[&'a Value],
    pairs: &[(String, String)],
) -> Result<(Vec<&'a Value>, bool), Resp> {
    let limit = q(pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let start = match q(pairs, "marker") {
        None => 0,
        Some(m) => match list.iter().position(|v| v["id"].as_str() == Some(m)) {
            Some(i) => i + 1,
            None => {
                return Err(nova_err(
                    StatusCode::BAD_REQUEST,
                    "badRequest",
                    &format!("marker [{m}] not found"),
                ))
            }
        },
    };
    let items: Vec<&Value> = list.iter().skip(start).take(limit).copied().collect();
    let more = items.len() == limit && start + limit < list.len();
    Ok((items, more))
}

impl Sim {
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
        let mut resp = if path.starts_with("/v3") {
            self.keystone(req, &path).await
        } else {
            let token = req
                .headers()
                .get("X-Auth-Token")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_token);
            match token {
                None if path == "/" || path.ends_with("/v2.1") || path.ends_with("/v2.1/") => {
                    self.route(&req, &path, &Scope::Unscoped)
                }
                None => err(
                    StatusCode::UNAUTHORIZED,
                    "The request you have made requires authentication.",
                ),
                Some((scope, _)) => self.route(&req, &path, &scope),
            }
        };
        if let Some(fault) = fault.filter(|f| f.shapes_response()) {
            resp = fault.shape_response(resp);
        }
        Ok(resp)
    }

    fn catalog(&self, project: Option<&str>) -> Value {
        let u = |base: &Url, rest: &str| format!("{}{rest}", base.as_str());
        let compute = match (project, self.project_in_compute_url) {
            (Some(p), true) => u(&self.compute_base, &format!("v2.1/{p}")),
            _ => u(&self.compute_base, "v2.1"),
        };
        let ep = |t: &str, name: &str, url: String| {
            json!({"type": t, "name": name, "id": format!("svc-{name}"), "endpoints": [
                {"id": format!("ep-{name}"), "interface": "public", "region_id": "RegionOne",
                 "region": "RegionOne", "url": url}]})
        };
        json!([
            ep("identity", "keystone", u(&self.base, "v3")),
            ep("compute", "nova", compute),
            ep("image", "glance", u(&self.base, "image")),
            ep("block-storage", "cinder", u(&self.base, "volume/v3")),
            ep("volumev3", "cinderv3", u(&self.base, "volume/v3")),
            ep("network", "neutron", u(&self.base, "network")),
        ])
    }

    fn project_json(&self, p: &Value) -> Value {
        json!({"id": p["id"], "name": p["name"], "domain": {"id": p.get("domain_id").cloned().unwrap_or(json!("default")), "name": "Default"}})
    }

    async fn keystone(&self, req: Request<Incoming>, path: &str) -> Resp {
        let method = req.method().clone();
        let auth = req
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_token);
        match (method, path.trim_end_matches('/')) {
            (Method::GET, "/v3") => http::json(
                StatusCode::OK,
                &json!({"version": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                    "links": [{"rel": "self", "href": format!("{}v3/", self.base)}],
                    "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}}),
            ),
            (Method::POST, "/v3/auth/tokens") => {
                let body: Value = match http::read_json(req.into_body()).await {
                    Ok(b) => b,
                    Err(e) => return err(StatusCode::BAD_REQUEST, &e),
                };
                self.issue_token(&body)
            }
            (Method::GET, "/v3/auth/tokens") => {
                let subject = req
                    .headers()
                    .get("X-Subject-Token")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_token);
                match (auth, subject) {
                    (Some(_), Some((scope, user))) => self.token_body(&scope, &user, 200),
                    _ => err(StatusCode::NOT_FOUND, "token not found"),
                }
            }
            (_, _) if auth.is_none() => err(
                StatusCode::UNAUTHORIZED,
                "The request you have made requires authentication.",
            ),
            (Method::GET, "/v3/auth/projects") => {
                let list: Vec<Value> = self
                    .data
                    .projects
                    .iter()
                    .map(|p| json!({"id": p["id"], "name": p["name"], "domain_id": p["domain_id"], "enabled": true, "links": {}}))
                    .collect();
                http::json(StatusCode::OK, &json!({"projects": list, "links": {}}))
            }
            (Method::GET, "/v3/projects") => {
                let pairs = query_pairs(&req);
                let tags: Vec<&str> = q(&pairs, "tags")
                    .map(|t| t.split(',').collect())
                    .unwrap_or_default();
                let list: Vec<&Value> = self
                    .data
                    .projects
                    .iter()
                    .filter(|p| {
                        tags.iter().all(|t| {
                            p["tags"]
                                .as_array()
                                .is_some_and(|a| a.iter().any(|x| x == t))
                        })
                    })
                    .collect();
                http::json(StatusCode::OK, &json!({"projects": list, "links": {}}))
            }
            (Method::GET, p) if p.starts_with("/v3/projects/") => {
                let id = &p["/v3/projects/".len()..];
                match self.data.project_by_id.get(id) {
                    Some(v) => http::json(StatusCode::OK, &json!({"project": v})),
                    None => err(
                        StatusCode::NOT_FOUND,
                        &format!("Could not find project: {id}."),
                    ),
                }
            }
            (Method::GET, p) if p.starts_with("/v3/users/") => {
                let id = &p["/v3/users/".len()..];
                match self.data.users.get(id) {
                    Some(v) => http::json(StatusCode::OK, &json!({"user": v})),
                    None => err(
                        StatusCode::NOT_FOUND,
                        &format!("Could not find user: {id}."),
                    ),
                }
            }
            _ => err(StatusCode::NOT_FOUND, "The resource could not be found."),
        }
    }

    fn issue_token(&self, body: &Value) -> Resp {
        let auth = &body["auth"];
        let ident = &auth["identity"];
        let user = if let Some(u) = ident["password"]["user"].as_object() {
            u.get("id")
                .or_else(|| u.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("simuser")
                .to_string()
        } else if let Some(t) = ident["token"]["id"].as_str() {
            match parse_token(t) {
                Some((_, u)) => u,
                None => return err(StatusCode::UNAUTHORIZED, "invalid token"),
            }
        } else if ident["application_credential"].is_object() {
            "appcred".to_string()
        } else {
            return err(
                StatusCode::UNAUTHORIZED,
                "unsupported authentication method",
            );
        };
        let user = user.replace('-', "_");
        let scope = &auth["scope"];
        let scope = if scope["system"].is_object() {
            Scope::System
        } else if let Some(p) = scope["project"].as_object() {
            let found = match (p.get("id"), p.get("name")) {
                (Some(id), _) => self.data.project_by_id.get(id.as_str().unwrap_or("")),
                (None, Some(name)) => self.data.projects.iter().find(|x| &x["name"] == name),
                _ => None,
            };
            match found {
                Some(proj) => Scope::Project(proj["id"].as_str().unwrap_or("").to_string()),
                None => {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "The request you have made requires authentication.",
                    )
                }
            }
        } else {
            Scope::Unscoped
        };
        self.token_body(&scope, &user, 201)
    }

    fn token_body(&self, scope: &Scope, user: &str, status: u16) -> Resp {
        let now = Utc::now();
        let mut token = json!({
            "methods": ["password"],
            "user": {"id": user, "name": user, "domain": {"id": "default", "name": "Default"}, "password_expires_at": null},
            "audit_ids": ["simaudit"],
            "expires_at": now.checked_add_signed(Duration::hours(2)).unwrap_or(now).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "issued_at": now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        });
        match scope {
            Scope::Project(p) => {
                token["project"] = self
                    .data
                    .project_by_id
                    .get(p)
                    .map(|v| self.project_json(v))
                    .unwrap_or(json!({"id": p}));
                token["roles"] =
                    json!([{"id": "r1", "name": "reader"}, {"id": "r2", "name": "member"}]);
                token["catalog"] = self.catalog(Some(p));
            }
            Scope::System => {
                token["system"] = json!({"all": true});
                token["roles"] = json!([{"id": "r1", "name": "reader"}]);
                token["catalog"] = self.catalog(None);
            }
            Scope::Unscoped => {}
        }
        let mut resp = http::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &json!({ "token": token }),
        );
        if let Ok(v) = HeaderValue::from_str(&token_of(scope, user)) {
            resp.headers_mut().insert("X-Subject-Token", v);
        }
        resp
    }

    fn route(&self, req: &Request<Incoming>, path: &str, scope: &Scope) -> Resp {
        if req.method() != Method::GET {
            return nova_err(
                StatusCode::METHOD_NOT_ALLOWED,
                "badRequest",
                "the simulator is read-only",
            );
        }
        let pairs = query_pairs(req);
        if let Some(rest) = path.strip_prefix("/image") {
            return self.glance(rest, &pairs, scope);
        }
        if let Some(rest) = path.strip_prefix("/volume/v3") {
            return self.cinder(rest, &pairs, scope);
        }
        if let Some(rest) = path.strip_prefix("/network") {
            return self.neutron(rest, &pairs, scope);
        }
        if path == "/" {
            return http::json(
                StatusCode::MULTIPLE_CHOICES,
                &json!({"versions": [self.version_doc()]}),
            );
        }
        let Some(rest) = path.strip_prefix("/v2.1") else {
            return nova_err(StatusCode::NOT_FOUND, "itemNotFound", "no such resource");
        };
        // An optional project id right after /v2.1 (legacy endpoints).
        let rest = match rest.trim_start_matches('/').split_once('/') {
            Some((first, tail))
                if first.len() == 32 && first.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                format!("/{tail}")
            }
            None if rest.len() == 33 => String::new(),
            _ => rest.to_string(),
        };
        self.nova(req, rest.trim_end_matches('/'), &pairs, scope)
    }

    fn version_doc(&self) -> Value {
        json!({"id": "v2.1", "status": "CURRENT",
            "version": format!("{}.{}", MAX_MICROVERSION.0, MAX_MICROVERSION.1),
            "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": format!("{}v2.1/", self.compute_base)},
                {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]})
    }

    fn project_of<'s>(&self, scope: &'s Scope) -> Option<&'s str> {
        match scope {
            Scope::Project(p) => Some(p),
            _ => None,
        }
    }

    fn embed(&self, server: &Value, mv: (u32, u32)) -> Value {
        embed(
            &self.data.flavor_by_id,
            &self.data.server_extras,
            server,
            mv,
        )
    }

    /// Whether `project` may see flavor `f` (public, or in its access list).
    fn flavor_visible(&self, f: &Value, project: &str) -> bool {
        f.get("os-flavor-access:is_public")
            .and_then(Value::as_bool)
            .unwrap_or(true)
            || f["id"].as_str().is_some_and(|id| {
                self.data
                    .flavor_access
                    .get(id)
                    .is_some_and(|a| a.iter().any(|p| p == project))
            })
    }

    /// Whether `scope` may see image `i`: public and community images to
    /// all, others to the owner, shared ones to members too (in a listing
    /// only to members that accepted it, Glance's default
    /// `member_status=accepted`).
    fn image_visible(&self, i: &Value, scope: &Scope, listing: bool) -> bool {
        if matches!(
            i["visibility"].as_str(),
            Some("public" | "community") | None
        ) {
            return true;
        }
        let Scope::Project(p) = scope else {
            return true;
        };
        if i["owner"].as_str() == Some(p.as_str()) {
            return true;
        }
        i["visibility"] == "shared"
            && i["id"]
                .as_str()
                .and_then(|id| self.data.image_members.get(id))
                .and_then(|m| m.get(p))
                .is_some_and(|status| !listing || status == "accepted")
    }

    fn nova(
        &self,
        req: &Request<Incoming>,
        rest: &str,
        pairs: &[(String, String)],
        scope: &Scope,
    ) -> Resp {
        let mv = microversion(req);
        let with_mv = |mut r: Resp| {
            if let Ok(v) = HeaderValue::from_str(&format!("compute {}.{}", mv.0, mv.1)) {
                r.headers_mut().insert("OpenStack-API-Version", v);
            }
            r
        };
        if rest.is_empty() {
            return http::json(StatusCode::OK, &json!({"version": self.version_doc()}));
        }
        let Some(project) = self.project_of(scope) else {
            return nova_err(
                StatusCode::FORBIDDEN,
                "forbidden",
                "project-scoped token required",
            );
        };
        let empty = Vec::new();
        let servers = self.data.servers.get(project).unwrap_or(&empty);
        match rest {
            "/servers/detail" | "/servers" => {
                let since = match q(pairs, "changes-since") {
                    Some(t) => match crate::openstack::parse_time(t)
                        .or_else(|| crate::state::lastrun::parse(t))
                    {
                        Some(t) => Some(t),
                        None => {
                            return nova_err(
                                StatusCode::BAD_REQUEST,
                                "badRequest",
                                &format!(
                                    "Invalid input for query parameters changes-since. Value: {t}."
                                ),
                            )
                        }
                    },
                    None => None,
                };
                let empty_listed = Vec::new();
                let listed = self.data.listed.get(project).unwrap_or(&empty_listed);
                let list: Vec<&Value> = servers
                    .iter()
                    .zip(listed)
                    .filter(|(_, l)| match since {
                        Some(t) => l.updated.is_some_and(|u| u >= t),
                        None => !l.deleted,
                    })
                    .map(|(s, _)| s)
                    .collect();
                let (items, more) = match page(&list, pairs) {
                    Ok(x) => x,
                    Err(r) => return r,
                };
                // Pre-rendered servers, framed as serde_json's compact form
                // of {"servers": [..], "servers_links": [..]} would be.
                let mut body = String::with_capacity(items.len() * 2048 + 64);
                body.push_str("{\"servers\":[");
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        body.push(',');
                    }
                    let l = item["id"]
                        .as_str()
                        .and_then(|id| self.data.server_index.get(id))
                        .map(|(_, i)| &listed[*i]);
                    match l {
                        Some(l) if mv >= (2, 47) => body.push_str(&l.json_247),
                        Some(l) => body.push_str(&l.json_21),
                        None => body.push_str(&self.embed(item, mv).to_string()),
                    }
                }
                body.push(']');
                if more {
                    let last = items
                        .last()
                        .and_then(|s| s["id"].as_str())
                        .unwrap_or("")
                        .to_string();
                    let mut next = req_url(&self.compute_base, req);
                    {
                        let mut qp = next.query_pairs_mut();
                        qp.clear();
                        for (k, v) in pairs.iter().filter(|(k, _)| k != "marker") {
                            qp.append_pair(k, v);
                        }
                        qp.append_pair("marker", &last);
                    }
                    body.push_str(",\"servers_links\":");
                    body.push_str(&json!([{"rel": "next", "href": next.as_str()}]).to_string());
                }
                body.push('}');
                with_mv(http::response(StatusCode::OK, "application/json", body))
            }
            "/flavors/detail" | "/flavors" => {
                let list: Vec<Value> = self
                    .data
                    .flavors
                    .iter()
                    .filter(|f| self.flavor_visible(f, project))
                    .map(|f| {
                        let mut f = f.clone();
                        if mv < (2, 61) {
                            if let Some(o) = f.as_object_mut() {
                                o.remove("extra_specs");
                            }
                        }
                        f
                    })
                    .collect();
                with_mv(http::json(StatusCode::OK, &json!({ "flavors": list })))
            }
            r if r.starts_with("/flavors/") => {
                let tail = &r["/flavors/".len()..];
                let (id, sub) = tail.split_once('/').unwrap_or((tail, ""));
                let found = self
                    .data
                    .flavor_by_id
                    .get(id)
                    .filter(|f| self.flavor_visible(f, project));
                match (found, sub) {
                    (Some(f), "os-extra_specs") => http::json(
                        StatusCode::OK,
                        &json!({"extra_specs": f.get("extra_specs").cloned().unwrap_or(json!({}))}),
                    ),
                    (Some(f), "") => http::json(StatusCode::OK, &json!({ "flavor": f })),
                    _ => nova_err(
                        StatusCode::NOT_FOUND,
                        "itemNotFound",
                        &format!("Flavor {id} could not be found."),
                    ),
                }
            }
            r if r.starts_with("/servers/") => {
                let id = &r["/servers/".len()..];
                match self.data.server_index.get(id) {
                    Some((p, i)) if p == project && servers[*i]["status"] != "DELETED" => {
                        with_mv(http::json(
                            StatusCode::OK,
                            &json!({"server": self.embed(&servers[*i], mv)}),
                        ))
                    }
                    _ => nova_err(
                        StatusCode::NOT_FOUND,
                        "itemNotFound",
                        "Instance could not be found.",
                    ),
                }
            }
            r if r.starts_with("/os-simple-tenant-usage/") => {
                let parse = |k| {
                    q(pairs, k).and_then(|t| {
                        crate::openstack::parse_time(t).or_else(|| crate::state::lastrun::parse(t))
                    })
                };
                let (Some(start), Some(end)) = (parse("start"), parse("end")) else {
                    return nova_err(
                        StatusCode::BAD_REQUEST,
                        "badRequest",
                        "start and end needed",
                    );
                };
                http::json(
                    StatusCode::OK,
                    &json!({"tenant_usage": self.usage(project, servers, start, end)}),
                )
            }
            _ => nova_err(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "The resource could not be found.",
            ),
        }
    }

    /// `os-simple-tenant-usage` for one project (Nova's `_tenant_usages_for_period`).
    fn usage(
        &self,
        project: &str,
        servers: &[Value],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Value {
        // Nova cuts a period that ends in the future at now.
        let end = end.min(Utc::now());
        // Nova goes through them by instance uuid (its query pages by
        // project and uuid), summing as it goes: the same order here, so
        // the totals are the same floats (whole seconds often put a total
        // exactly on a rounding boundary, where the last bit decides).
        let mut servers: Vec<&Value> = servers.iter().collect();
        servers.sort_by(|a, b| {
            a["id"]
                .as_str()
                .unwrap_or("")
                .cmp(b["id"].as_str().unwrap_or(""))
        });
        let mut usages = Vec::new();
        let (mut hours, mut mb, mut cpu, mut gb) = (0.0, 0.0, 0.0, 0.0);
        for s in servers {
            let launched = s["OS-SRV-USG:launched_at"]
                .as_str()
                .and_then(crate::openstack::parse_time);
            let terminated = s["OS-SRV-USG:terminated_at"]
                .as_str()
                .and_then(crate::openstack::parse_time);
            // Nova's instance_get_active_by_window_joined: launched before
            // the end, not terminated before (or at) the start.
            let Some(launched) = launched else { continue };
            if launched >= end || terminated.is_some_and(|t| t <= start) {
                continue;
            }
            let from = launched.max(start);
            let to = terminated.map_or(end, |t| t.min(end));
            let h = (to - from).num_milliseconds().max(0) as f64 / 3_600_000.0;
            // The instance's own flavor (it outlives a deleted flavor).
            let f = self.embed(s, (2, 47))["flavor"].clone();
            let n = |k: &str| f[k].as_f64().unwrap_or(0.0);
            let local_gb = f["disk"].as_u64().unwrap_or(0) + f["ephemeral"].as_u64().unwrap_or(0);
            hours += h;
            mb += h * n("ram");
            cpu += h * n("vcpus");
            gb += h * local_gb as f64;
            let state = s["OS-EXT-STS:vm_state"].as_str().unwrap_or("active");
            usages.push(json!({
                "instance_id": s["id"], "name": s["name"], "hours": h, "memory_mb": f["ram"],
                "local_gb": local_gb, "vcpus": f["vcpus"], "tenant_id": project,
                "flavor": f["original_name"], "started_at": naive_us(launched),
                "ended_at": terminated.map(naive_us),
                "state": if terminated.is_some() { "terminated" } else { state },
                "uptime": (end - launched).num_seconds().max(0),
            }));
        }
        json!({"tenant_id": project, "server_usages": usages, "total_hours": hours,
            "total_memory_mb_usage": mb, "total_vcpus_usage": cpu, "total_local_gb_usage": gb,
            "start": naive_us(start), "stop": naive_us(end)})
    }

    fn glance(&self, rest: &str, pairs: &[(String, String)], scope: &Scope) -> Resp {
        let rest = rest.trim_end_matches('/');
        match rest {
            "" | "/versions" => http::json(
                StatusCode::OK,
                &json!({"versions": [{"id": "v2.16", "status": "CURRENT",
                    "links": [{"rel": "self", "href": format!("{}image/v2/", self.base)}]}]}),
            ),
            "/v2/images" => {
                let list: Vec<&Value> = self
                    .data
                    .images
                    .iter()
                    .filter(|i| self.image_visible(i, scope, true))
                    .collect();
                let limit = q(pairs, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(25usize)
                    .clamp(1, 1000);
                let start = match q(pairs, "marker") {
                    None => 0,
                    Some(m) => match list.iter().position(|v| v["id"].as_str() == Some(m)) {
                        Some(i) => i + 1,
                        None => {
                            return http::text(
                                StatusCode::BAD_REQUEST,
                                format!("marker {m} could not be found"),
                            )
                        }
                    },
                };
                let items: Vec<&Value> = list.iter().skip(start).take(limit).copied().collect();
                // Glance's `first` repeats the query without the marker.
                let first_query: Vec<String> = pairs
                    .iter()
                    .filter(|(k, _)| k != "marker")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let first = if first_query.is_empty() {
                    "/v2/images".to_string()
                } else {
                    format!("/v2/images?{}", first_query.join("&"))
                };
                let mut body =
                    json!({"images": items, "first": first, "schema": "/v2/schemas/images"});
                if start + limit < list.len() {
                    if let Some(last) = items.last().and_then(|v| v["id"].as_str()) {
                        body["next"] = json!(format!("/v2/images?limit={limit}&marker={last}"));
                    }
                }
                http::json(StatusCode::OK, &body)
            }
            // glanceclient builds its models from these (warlock).
            "/v2/schemas/image" | "/v2/schemas/images" => http::json(
                StatusCode::OK,
                &json!({"name": if rest.ends_with('s') { "images" } else { "image" },
                    "properties": {"id": {"type": "string"}, "name": {"type": ["null", "string"]},
                        "status": {"type": "string"}, "visibility": {"type": "string"}},
                    "additionalProperties": true, "links": []}),
            ),
            r if r.starts_with("/v2/images/") => {
                let id = &r["/v2/images/".len()..];
                match self
                    .data
                    .images
                    .iter()
                    .find(|i| i["id"] == id && self.image_visible(i, scope, false))
                {
                    Some(i) => http::json(StatusCode::OK, i),
                    None => http::text(
                        StatusCode::NOT_FOUND,
                        format!("No image found with ID {id}"),
                    ),
                }
            }
            _ => http::text(StatusCode::NOT_FOUND, "404 Not Found"),
        }
    }

    fn cinder(&self, rest: &str, pairs: &[(String, String)], scope: &Scope) -> Resp {
        let Some(project) = self.project_of(scope) else {
            return http::json(StatusCode::FORBIDDEN, &json!({"forbidden": {"code": 403}}));
        };
        // An optional project id after /v3.
        let rest = rest.trim_end_matches('/');
        let rest = rest
            .strip_prefix(&format!("/{project}"))
            .unwrap_or(rest)
            .to_string();
        match rest.as_str() {
            "" => http::json(
                StatusCode::OK,
                &json!({"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0"}]}),
            ),
            "/volumes/detail" | "/volumes" => {
                let empty = Vec::new();
                let all = self.data.volumes.get(project).unwrap_or(&empty);
                let list: Vec<&Value> = all.iter().collect();
                let limit = q(pairs, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(1000usize)
                    .clamp(1, 1000);
                let start = match q(pairs, "marker") {
                    None => 0,
                    Some(m) => list
                        .iter()
                        .position(|v| v["id"].as_str() == Some(m))
                        .map_or(list.len(), |i| i + 1),
                };
                let items: Vec<&Value> = list.iter().skip(start).take(limit).copied().collect();
                let mut body = json!({ "volumes": items });
                if start + limit < list.len() {
                    if let Some(last) = items.last().and_then(|v| v["id"].as_str()) {
                        body["volumes_links"] = json!([{"rel": "next",
                            "href": format!("{}volume/v3/volumes/detail?limit={limit}&marker={last}", self.base)}]);
                    }
                }
                http::json(StatusCode::OK, &body)
            }
            _ => http::json(
                StatusCode::NOT_FOUND,
                &json!({"itemNotFound": {"code": 404, "message": "not found"}}),
            ),
        }
    }

    fn neutron(&self, rest: &str, pairs: &[(String, String)], scope: &Scope) -> Resp {
        match rest.trim_end_matches('/') {
            "" => http::json(
                StatusCode::OK,
                &json!({"versions": [{"id": "v2.0", "status": "CURRENT",
                    "links": [{"rel": "self", "href": format!("{}network/v2.0/", self.base)}]}]}),
            ),
            "/v2.0/floatingips" => {
                let own = self.project_of(scope);
                let filter = q(pairs, "project_id").or_else(|| q(pairs, "tenant_id"));
                let list: Vec<&Value> = self
                    .data
                    .floatingips
                    .iter()
                    // Neutron shows a project its own floating IPs only.
                    .filter(|f| own.is_none_or(|p| f["project_id"] == p))
                    .filter(|f| filter.is_none_or(|p| f["project_id"] == p))
                    .collect();
                let limit = q(pairs, "limit").and_then(|l| l.parse::<usize>().ok());
                let start = match q(pairs, "marker") {
                    None => 0,
                    Some(m) => list
                        .iter()
                        .position(|v| v["id"].as_str() == Some(m))
                        .map_or(list.len(), |i| i + 1),
                };
                let items: Vec<&Value> = match limit {
                    Some(l) => list.iter().skip(start).take(l).copied().collect(),
                    None => list.iter().skip(start).copied().collect(),
                };
                let mut body = json!({ "floatingips": items });
                // Neutron's pagination links (`get_pagination_links`): with a
                // limit, `next` when the page is full, and always `previous`
                // (marker: the first item, `page_reverse=True`).
                if let Some(l) = limit.filter(|l| *l > 0) {
                    let href = |marker: Option<&str>, reverse: bool| {
                        let mut u = self.base.clone();
                        u.set_path(&format!("{}network/v2.0/floatingips", self.base.path()));
                        {
                            let mut qp = u.query_pairs_mut();
                            let mut has_marker = false;
                            for (k, v) in pairs.iter().filter(|(k, _)| k != "page_reverse") {
                                if k == "marker" {
                                    has_marker = true;
                                    if let Some(m) = marker {
                                        qp.append_pair(k, m);
                                    }
                                } else {
                                    qp.append_pair(k, v);
                                }
                            }
                            if let (Some(m), false) = (marker, has_marker) {
                                qp.append_pair("marker", m);
                            }
                            if reverse {
                                qp.append_pair("page_reverse", "True");
                            }
                        }
                        u.to_string()
                    };
                    fn id<'v>(v: Option<&&'v Value>) -> Option<&'v str> {
                        v.and_then(|v| v["id"].as_str())
                    }
                    let mut links = Vec::new();
                    if items.len() >= l {
                        links.push(json!({"rel": "next", "href": href(id(items.last()), false)}));
                    }
                    links.push(json!({"rel": "previous", "href": href(id(items.first()), true)}));
                    body["floatingips_links"] = json!(links);
                }
                http::json(StatusCode::OK, &body)
            }
            _ => http::json(
                StatusCode::NOT_FOUND,
                &json!({"NeutronError": {"type": "HTTPNotFound", "message": "not found", "detail": ""}}),
            ),
        }
    }
}

/// A server as Nova shows it at microversion `mv`: from 2.47 the flavor is
/// embedded (`vcpus, ram, disk, ephemeral, swap, original_name,
/// extra_specs`, no `id`) and `locked`, `description` and `tags` (2.9,
/// 2.19, 2.26) come before `security_groups`, as Nova orders them; captured
/// `extras` win over derived ones.
fn embed(
    flavors: &HashMap<String, Value>,
    extras: &BTreeMap<String, Value>,
    server: &Value,
    mv: (u32, u32),
) -> Value {
    if mv < (2, 47) {
        return server.clone();
    }
    let Some(obj) = server.as_object() else {
        return server.clone();
    };
    let captured = server["id"]
        .as_str()
        .and_then(|id| extras.get(id))
        .and_then(Value::as_object);
    let flavor = match captured.and_then(|c| c.get("flavor")) {
        Some(f) => f.clone(),
        None => {
            let fid = server["flavor"]["id"].as_str().unwrap_or("");
            match flavors.get(fid) {
                Some(f) => json!({
                    "vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"],
                    "ephemeral": f.get("OS-FLV-EXT-DATA:ephemeral").cloned().unwrap_or(json!(0)),
                    "swap": if f["swap"] == "" { json!(0) } else { f["swap"].clone() },
                    "original_name": f["name"],
                    "extra_specs": f.get("extra_specs").cloned().unwrap_or(json!({})),
                }),
                None => json!({"vcpus": 0, "ram": 0, "disk": 0, "ephemeral": 0, "swap": 0,
                    "original_name": "deleted", "extra_specs": {}}),
            }
        }
    };
    let added: Vec<(String, Value)> = match captured {
        Some(c) => c
            .iter()
            .filter(|(k, _)| *k != "flavor")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => vec![
            ("locked".into(), json!(false)),
            ("description".into(), server["name"].clone()),
            ("tags".into(), json!([])),
        ],
    };
    let mut out = serde_json::Map::new();
    let mut pending = Some(added);
    for (k, v) in obj {
        if k == "security_groups" {
            for (ak, av) in pending.take().unwrap_or_default() {
                out.insert(ak, av);
            }
        }
        out.insert(
            k.clone(),
            if k == "flavor" {
                flavor.clone()
            } else {
                v.clone()
            },
        );
    }
    for (ak, av) in pending.take().unwrap_or_default() {
        out.insert(ak, av);
    }
    Value::Object(out)
}

/// The request's URL as the client sees it (path kept, on `base`).
fn req_url(base: &Url, req: &Request<Incoming>) -> Url {
    let mut u = base.clone();
    u.set_path(req.uri().path());
    u
}

/// An injected answer in the OpenStack error shape (the rule's body is not
/// used).
fn injected(status: u16, _body: Option<&str>) -> Resp {
    err(faults::injected_status(status), "injected fault")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_mix() {
        let now = DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = Dataset::synthetic(1000, 10, now);
        assert_eq!(d.server_count(), 1000);
        assert_eq!(d.projects.len(), 10);
        let deleted = d
            .servers
            .values()
            .flatten()
            .filter(|s| s["status"] == "DELETED")
            .count();
        assert_eq!(deleted, 200);
        assert!(d
            .floatingips
            .iter()
            .any(|f| f["floating_ip_address"].as_str().unwrap().contains(':')));
        let t = token_of(&Scope::Project("ab".into()), "u_1");
        assert_eq!(
            parse_token(&t),
            Some((Scope::Project("ab".into()), "u_1".into()))
        );
    }
}
