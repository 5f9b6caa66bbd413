//! OpenStack data of one project -> APEL records: cASO's extraction rules
//! (spec accounting.md §1.4-1.6) as one pure function, [`project_records`].
//!
//! The caller (`cmd::accounting::extract`) fetched everything: Nova servers
//! changed in the window plus the live ones, flavors (embedded in the
//! server from compute microversion 2.47, else looked up by id), Glance
//! image properties, Keystone user names, Cinder volumes and Neutron
//! floating IPs of the project. This module decides every record value;
//! it does no I/O and reads no clock: the window, the measurement time and
//! the random ids of IP records are passed in.
//!
//! Where it differs from cASO 5.2.2 on purpose (cASO's bugs, spec §1.4-1.6):
//! floating IPs are counted only for the project and per IP version (cASO
//! counts every project's and lets v6 overwrite v4); an `EndTime` before
//! `StartTime` is clamped to `StartTime` (never a negative duration); a
//! volume created after the window is not reported; a flavor the server no
//! longer finds leaves `CpuCount`/`Memory`/`Disk` at 0 with a warning
//! instead of failing the project; an `Accelerator:Number` that is not a
//! whole number skips that VM's accelerator records with a warning (cASO
//! fails the whole project); a VM whose flavor was deleted keeps its
//! benchmark and accelerator data and gets CpuDuration = wall x vCPUs when
//! Nova embeds the flavor (compute >= 2.47; cASO asks at 2.1, finds no
//! flavor, reports no benchmark and a CpuDuration from CpuCount 0, i.e. 1,
//! although it then takes CpuCount from the usage); a `%%` in a
//! name is reduced to `%` (it would end the record for APEL; cASO keeps it,
//! see [`super::sanitize`]). `tests/accounting/refsite_peers.rs` compares
//! with cASO live and normalises exactly these.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    accelerator_records, AcceleratorFlavor, Benchmark, CloudRecord, CloudStatus, IpRecord,
    IpVersion, Record, ServerTimes, Site, StorageRecord, Uuid, Window,
};
use crate::openstack::compute::{Flavor, Server};
use crate::openstack::network::FloatingIp;
use crate::openstack::volume::Volume;

/// The flavor facts a cloud record needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlavorSpec {
    /// vCPUs (`CpuCount`).
    pub vcpus: u32,
    /// RAM, MiB (`Memory`).
    pub ram_mb: u64,
    /// Root disk, GB.
    pub disk_gb: u64,
    /// Ephemeral disk, GB (`Disk` = root + ephemeral).
    pub ephemeral_gb: u64,
    /// Extra specs (benchmark, accelerator).
    pub extra_specs: BTreeMap<String, String>,
}

fn spec_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl FlavorSpec {
    /// From a flavor of `GET /flavors/detail`.
    pub fn from_flavor(f: &Flavor) -> Self {
        Self {
            vcpus: f.vcpus,
            ram_mb: f.ram,
            disk_gb: f.disk,
            ephemeral_gb: f.ephemeral.unwrap_or(0).max(0) as u64,
            extra_specs: f.extra_specs.clone().unwrap_or_default(),
        }
    }

    /// From the flavor a server embeds (compute microversion >= 2.47:
    /// `vcpus`, `ram`, `disk`, `ephemeral`, `extra_specs`, no `id`). `None`
    /// when `flavor` is only a reference (`{"id": ..}`).
    pub fn from_embedded(flavor: &Value) -> Option<Self> {
        let vcpus = flavor.get("vcpus")?.as_u64()?;
        let n = |k: &str| flavor.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            vcpus: u32::try_from(vcpus).unwrap_or(u32::MAX),
            ram_mb: n("ram"),
            disk_gb: n("disk"),
            ephemeral_gb: n("ephemeral"),
            extra_specs: flavor
                .get("extra_specs")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), spec_string(v))).collect())
                .unwrap_or_default(),
        })
    }
}

/// Everything fetched for one project.
#[derive(Debug, Clone, Copy)]
pub struct ProjectFacts<'a> {
    /// Project id (`LocalGroupId`, `LocalGroup`).
    pub project_id: &'a str,
    /// Its VO (`FQAN`, StAR `Group`).
    pub vo: &'a str,
    /// Servers changed in the window and live servers (duplicates allowed:
    /// the first listing of an id wins).
    pub servers: &'a [Server],
    /// Flavors by id, for servers that do not embed theirs.
    pub flavors: &'a HashMap<String, FlavorSpec>,
    /// Glance image id -> `vmcatcher_event_ad_mpuri` (None: image without
    /// it, or not readable).
    pub images: &'a HashMap<String, Option<String>>,
    /// Keystone user id -> user name (None: not readable).
    pub users: &'a HashMap<String, Option<String>>,
    /// The project's volumes.
    pub volumes: &'a [Volume],
    /// The project's floating IPs.
    pub floating_ips: &'a [FloatingIp],
}

/// Which records to produce and with which flavor keys.
#[derive(Debug, Clone)]
pub struct MappingOptions {
    /// `SiteName`, `CloudComputeService`, `CloudType`.
    pub site: Site,
    /// Flavor extra spec with `BenchmarkType`.
    pub benchmark_type_key: String,
    /// Flavor extra spec with `Benchmark`.
    pub benchmark_value_key: String,
    /// Produce cloud records.
    pub cloud: bool,
    /// Produce IP records.
    pub ip: bool,
    /// Produce accelerator records.
    pub accelerator: bool,
    /// Produce storage records.
    pub storage: bool,
}

/// Something odd in the input that did not stop the project; the records
/// are still valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingWarning {
    /// A server without a usable id or creation time (no record).
    #[error("server {id:?} skipped: {reason}")]
    ServerSkipped {
        /// The server id as Nova gave it.
        id: String,
        /// Why.
        reason: String,
    },
    /// The server's flavor is gone (deleted since) and not embedded.
    #[error("server {server}: flavor {flavor:?} not found (deleted since?); CpuCount, Memory and Disk are 0")]
    FlavorUnknown {
        /// Server id.
        server: String,
        /// Flavor id.
        flavor: String,
    },
    /// A benchmark value that is not a number (no benchmark in the record).
    #[error(
        "server {server}: benchmark value {value:?} is not a number; no Benchmark in its record"
    )]
    BenchmarkValue {
        /// Server id.
        server: String,
        /// The extra spec's value.
        value: String,
    },
    /// Accelerator extra specs that do not describe a whole number of devices.
    #[error("server {server}: {reason}; no accelerator records for it")]
    Accelerator {
        /// Server id.
        server: String,
        /// The problem.
        reason: String,
    },
    /// A volume without a usable id.
    #[error("volume {id:?} skipped: not a UUID")]
    VolumeSkipped {
        /// The id as Cinder gave it.
        id: String,
    },
}

/// Records of one project, in cASO's order (cloud by `created`, then
/// accelerator, storage, IP), and the warnings.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// The records.
    pub records: Vec<Record>,
    /// What was odd.
    pub warnings: Vec<MappingWarning>,
}

/// Maps one project's facts to records for `window`. `measure_time` is the
/// run's clock reading (storage and IP snapshots); `random` gives 16 random
/// bytes per IP record id.
pub fn project_records(
    facts: &ProjectFacts<'_>,
    opts: &MappingOptions,
    window: &Window,
    measure_time: DateTime<Utc>,
    random: &mut dyn FnMut() -> [u8; 16],
) -> Mapped {
    let mut out = Mapped::default();
    let mut cloud = Vec::new();
    let mut acc = Vec::new();
    if opts.cloud || opts.accelerator {
        let mut seen = HashSet::new();
        let mut servers: Vec<&Server> = facts
            .servers
            .iter()
            .filter(|s| seen.insert(s.id.as_str()))
            .collect();
        // cASO lists servers sorted by `created`; ties by id for stability.
        servers.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        for server in servers {
            let Some((mut record, accelerator)) =
                cloud_record(facts, opts, window, server, &mut out.warnings)
            else {
                continue;
            };
            if opts.accelerator {
                if let Some(flavor) = accelerator {
                    acc.extend(accelerator_records(&record, &flavor, window));
                }
            }
            record.fit_to_window(window);
            cloud.push(record);
        }
    }
    if opts.cloud {
        out.records.extend(cloud.into_iter().map(Record::Cloud));
    }
    out.records.extend(acc.into_iter().map(Record::Accelerator));
    if opts.storage {
        for v in facts.volumes {
            match storage_record(facts, opts, window, measure_time, v) {
                Ok(Some(r)) => out.records.push(Record::Storage(r)),
                Ok(None) => {}
                Err(w) => out.warnings.push(w),
            }
        }
    }
    if opts.ip {
        out.records.extend(
            ip_records(facts, opts, window, measure_time, random)
                .into_iter()
                .map(Record::Ip),
        );
    }
    out
}

/// One server's cloud record (before [`CloudRecord::fit_to_window`]) and
/// its flavor's accelerator; `None` when the window does not cover it or it
/// cannot be identified.
fn cloud_record(
    facts: &ProjectFacts<'_>,
    opts: &MappingOptions,
    window: &Window,
    server: &Server,
    warnings: &mut Vec<MappingWarning>,
) -> Option<(CloudRecord, Option<AcceleratorFlavor>)> {
    let skip = |reason: &str| MappingWarning::ServerSkipped {
        id: server.id.clone(),
        reason: reason.to_string(),
    };
    let vm_uuid = match Uuid::parse("VMUUID", &server.id) {
        Ok(u) => u,
        Err(_) => {
            warnings.push(skip("its id is not a UUID"));
            return None;
        }
    };
    let Some(created) = server.created else {
        warnings.push(skip("no `created` time"));
        return None;
    };
    let times = ServerTimes {
        created,
        updated: server.updated.unwrap_or(created),
        launched_at: server.launched_at,
        terminated_at: server.terminated_at,
    };
    // Never an end before the start (clock skew, bad data): no negative
    // durations.
    let end = times.end(&server.status).map(|e| e.max(created));
    if !window.overlaps(created, end) {
        return None;
    }
    let flavor = match FlavorSpec::from_embedded(&server.flavor) {
        Some(f) => Some(f),
        None => match server.flavor_id() {
            Some(id) => match facts.flavors.get(id) {
                Some(f) => Some(f.clone()),
                None => {
                    warnings.push(MappingWarning::FlavorUnknown {
                        server: server.id.clone(),
                        flavor: id.to_string(),
                    });
                    None
                }
            },
            None => None,
        },
    };
    let spec = flavor.clone().unwrap_or_default();
    let benchmark = match (
        spec.extra_specs.get(&opts.benchmark_type_key),
        spec.extra_specs.get(&opts.benchmark_value_key),
    ) {
        (Some(name), Some(value)) => match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(Benchmark {
                name: name.clone(),
                value: v,
            }),
            _ => {
                warnings.push(MappingWarning::BenchmarkValue {
                    server: server.id.clone(),
                    value: value.clone(),
                });
                None
            }
        },
        _ => None,
    };
    let accelerator = match AcceleratorFlavor::from_extra_specs(&spec.extra_specs) {
        Ok(a) => a,
        Err(e) => {
            warnings.push(MappingWarning::Accelerator {
                server: server.id.clone(),
                reason: e.to_string(),
            });
            None
        }
    };
    let image_id = server.image_id().map(|id| {
        facts
            .images
            .get(id)
            .cloned()
            .flatten()
            .unwrap_or_else(|| id.to_string())
    });
    let record = CloudRecord {
        site: opts.site.clone(),
        vm_uuid,
        machine_name: server.name.clone(),
        local_user_id: server.user_id.clone(),
        local_group_id: if server.tenant_id.is_empty() {
            facts.project_id.to_string()
        } else {
            server.tenant_id.clone()
        },
        global_user_name: facts.users.get(&server.user_id).cloned().flatten(),
        fqan: facts.vo.to_string(),
        status: CloudStatus::from_nova(&server.status),
        start_time: created,
        end_time: end,
        suspend_duration: None,
        wall_duration: None,
        cpu_duration: None,
        cpu_count: spec.vcpus,
        memory_mb: spec.ram_mb,
        disk_gb: spec.disk_gb.saturating_add(spec.ephemeral_gb),
        public_ip_count: u32::try_from(server.floating_ip_count()).unwrap_or(u32::MAX),
        image_id,
        benchmark,
    };
    Some((record, accelerator))
}

fn storage_record(
    facts: &ProjectFacts<'_>,
    opts: &MappingOptions,
    window: &Window,
    measure_time: DateTime<Utc>,
    v: &Volume,
) -> Result<Option<StorageRecord>, MappingWarning> {
    let volume_uuid = Uuid::parse("recordId", &v.id)
        .map_err(|_| MappingWarning::VolumeSkipped { id: v.id.clone() })?;
    let created = v.created_at.unwrap_or(window.from());
    if created > window.to() {
        return Ok(None);
    }
    let user = v.user_id.clone().unwrap_or_default();
    Ok(Some(StorageRecord {
        site: opts.site.clone(),
        volume_uuid,
        measure_time,
        start_time: created.max(window.from()),
        user_identity: facts.users.get(&user).cloned().flatten(),
        local_user: user,
        local_group: facts.project_id.to_string(),
        group: facts.vo.to_string(),
        capacity_gib: v.size,
    }))
}

/// One record per IP version the project holds floating IPs of (created by
/// the window end).
fn ip_records(
    facts: &ProjectFacts<'_>,
    opts: &MappingOptions,
    window: &Window,
    measure_time: DateTime<Utc>,
    random: &mut dyn FnMut() -> [u8; 16],
) -> Vec<IpRecord> {
    let mut counts: BTreeMap<u8, u64> = BTreeMap::new();
    for ip in facts.floating_ips {
        if ip
            .project_id
            .as_deref()
            .is_some_and(|p| p != facts.project_id)
        {
            continue;
        }
        if ip.created_at.is_some_and(|c| c > window.to()) {
            continue;
        }
        if let Some(v) = ip.ip_version() {
            *counts.entry(v).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(version, count)| IpRecord {
            site: opts.site.clone(),
            uuid: Uuid::new_v4(random()),
            measurement_time: measure_time,
            local_user: None,
            global_user_name: None,
            local_group: facts.project_id.to_string(),
            fqan: facts.vo.to_string(),
            ip_version: if version == 4 {
                IpVersion::V4
            } else {
                IpVersion::V6
            },
            ip_count: count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::ApelRecord;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, 0, 0).unwrap()
    }

    fn server(v: Value) -> Server {
        let mut s: Server = serde_json::from_value(v.clone()).unwrap();
        s.raw = v;
        s
    }

    fn opts() -> MappingOptions {
        MappingOptions {
            site: Site::new("S", "S").unwrap(),
            benchmark_type_key: "accounting:benchmark_type".into(),
            benchmark_value_key: "accounting:benchmark_value".into(),
            cloud: true,
            ip: true,
            accelerator: true,
            storage: true,
        }
    }

    struct Owned {
        servers: Vec<Server>,
        flavors: HashMap<String, FlavorSpec>,
        images: HashMap<String, Option<String>>,
        users: HashMap<String, Option<String>>,
        volumes: Vec<Volume>,
        fips: Vec<FloatingIp>,
    }

    impl Owned {
        fn facts(&self) -> ProjectFacts<'_> {
            ProjectFacts {
                project_id: "p1",
                vo: "vo.example",
                servers: &self.servers,
                flavors: &self.flavors,
                images: &self.images,
                users: &self.users,
                volumes: &self.volumes,
                floating_ips: &self.fips,
            }
        }
    }

    fn owned(servers: Vec<Server>) -> Owned {
        Owned {
            servers,
            flavors: HashMap::new(),
            images: HashMap::new(),
            users: HashMap::new(),
            volumes: Vec::new(),
            fips: Vec::new(),
        }
    }

    fn run(o: &Owned, w: &Window) -> Mapped {
        let mut n = 0u8;
        project_records(&o.facts(), &opts(), w, t(12), &mut || {
            n += 1;
            [n; 16]
        })
    }

    const U1: &str = "11111111-1111-4111-8111-111111111111";
    const U2: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn embedded_flavor_gpu_benchmark_and_window() {
        let s = server(json!({
            "id": U1, "name": "gpu vm", "status": "ACTIVE", "tenant_id": "p1", "user_id": "u1",
            "created": "2024-05-01T01:00:00Z", "updated": "2024-05-01T01:00:05Z",
            "OS-SRV-USG:launched_at": "2024-05-01T01:00:04.000000", "OS-SRV-USG:terminated_at": null,
            "flavor": {"vcpus": 8, "ram": 16384, "disk": 40, "ephemeral": 10, "original_name": "g1",
                "extra_specs": {"Accelerator:Type": "GPU", "Accelerator:Vendor": "NVIDIA",
                    "Accelerator:Model": "V100", "Accelerator:Number": "2",
                    "accounting:benchmark_type": "HEPscore23", "accounting:benchmark_value": "12.5"}},
            "image": {"id": "img1"}, "addresses": {}
        }));
        let mut o = owned(vec![s.clone(), s]);
        o.images
            .insert("img1".into(), Some("https://appdb/mpuri".into()));
        o.users.insert("u1".into(), Some("alice@egi.eu".into()));
        let w = Window::new(t(0), t(3)).unwrap();
        let m = run(&o, &w);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(
            m.records.len(),
            2,
            "one cloud (deduplicated), one accelerator"
        );
        let Record::Cloud(c) = &m.records[0] else {
            panic!()
        };
        assert_eq!((c.cpu_count, c.memory_mb, c.disk_gb), (8, 16384, 50));
        assert_eq!(c.wall_duration, Some(2 * 3600));
        assert_eq!(c.cpu_duration, Some(16 * 3600));
        assert_eq!(c.image_id.as_deref(), Some("https://appdb/mpuri"));
        assert_eq!(c.global_user_name.as_deref(), Some("alice@egi.eu"));
        assert_eq!(c.benchmark.as_ref().unwrap().value, 12.5);
        let Record::Accelerator(a) = &m.records[1] else {
            panic!()
        };
        assert_eq!((a.count, a.available_duration), (2, 2 * 3600));
        assert_eq!(a.model, "NVIDIA V100");
    }

    #[test]
    fn deleted_flavor_no_image_and_end_before_start() {
        let s = server(json!({
            "id": U2, "name": "x", "status": "DELETED", "tenant_id": "p1", "user_id": "u9",
            "created": "2024-05-01T02:00:00Z", "updated": "2024-05-01T02:30:00Z",
            "OS-SRV-USG:launched_at": "2024-05-01T02:00:01Z",
            "OS-SRV-USG:terminated_at": "2024-05-01T01:00:00Z",
            "flavor": {"id": "gone"}, "image": "", "addresses": {}
        }));
        let o = owned(vec![s]);
        let m = run(&o, &Window::new(t(0), t(3)).unwrap());
        assert_eq!(
            m.warnings,
            vec![MappingWarning::FlavorUnknown {
                server: U2.into(),
                flavor: "gone".into()
            }]
        );
        let Record::Cloud(c) = &m.records[0] else {
            panic!()
        };
        assert_eq!(c.end_time, Some(t(2)));
        assert_eq!(c.effective_wall_duration(), Some(0));
        assert_eq!(c.image_id, None);
        assert_eq!(c.global_user_name, None);
        assert!(c.render().contains("WallDuration: 1"));
    }

    #[test]
    fn floating_ips_per_project_and_version() {
        let fip = |addr: &str, project: &str, created: &str| FloatingIp {
            floating_ip_address: addr.into(),
            project_id: Some(project.into()),
            created_at: Some(DateTime::parse_from_rfc3339(created).unwrap().into()),
            ..FloatingIp::default()
        };
        let mut o = owned(vec![]);
        o.fips = vec![
            fip("203.0.113.5", "p1", "2024-05-01T00:00:00Z"),
            fip("203.0.113.6", "p1", "2024-05-01T00:00:00Z"),
            fip("2001:db8::5", "p1", "2024-05-01T00:00:00Z"),
            fip("203.0.113.7", "other", "2024-05-01T00:00:00Z"),
            fip("203.0.113.8", "p1", "2024-05-02T00:00:00Z"),
        ];
        let m = run(&o, &Window::new(t(0), t(3)).unwrap());
        let got: Vec<_> = m
            .records
            .iter()
            .map(|r| match r {
                Record::Ip(ip) => (ip.ip_version.number(), ip.ip_count),
                _ => panic!(),
            })
            .collect();
        assert_eq!(got, vec![(4, 2), (6, 1)]);
    }

    #[test]
    fn volumes() {
        let mut o = owned(vec![]);
        o.users.insert("u1".into(), Some("alice".into()));
        o.volumes = vec![
            serde_json::from_value(json!({"id": U1, "name": null, "size": 2, "user_id": "u1",
                "created_at": "2024-04-01T00:00:00.000000", "status": "in-use"}))
            .unwrap(),
            serde_json::from_value(json!({"id": U2, "size": 1, "user_id": "u1",
                "created_at": "2024-05-01T05:00:00.000000", "status": "available"}))
            .unwrap(),
            serde_json::from_value(json!({"id": "bad", "size": 1})).unwrap(),
        ];
        let m = run(&o, &Window::new(t(0), t(3)).unwrap());
        assert_eq!(m.records.len(), 1);
        let Record::Storage(s) = &m.records[0] else {
            panic!()
        };
        assert_eq!(s.start_time, t(0));
        assert_eq!(s.user_identity.as_deref(), Some("alice"));
        assert_eq!(
            m.warnings,
            vec![MappingWarning::VolumeSkipped { id: "bad".into() }]
        );
    }
}
