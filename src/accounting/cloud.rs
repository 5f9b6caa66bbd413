//! Cloud (VM) records: `APEL-cloud-message: v0.4` (spec accounting.md §2.1,
//! cASO `caso/record.py::CloudRecord`).

use super::message::{ApelRecord, MessageKind};
use super::pyfmt::{epoch, float_repr, whole_seconds};
use super::sanitize::{apel_text, MAX_BENCHMARK_TYPE_LEN, MAX_FIELD_LEN};
use super::{Site, Uuid, Window};
use chrono::{DateTime, Utc};

/// APEL cloud `Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudStatus {
    /// `started`
    Started,
    /// `completed`
    Completed,
    /// `error`
    Error,
    /// `paused`
    Paused,
    /// `suspended`
    Suspended,
    /// `stopped`
    Stopped,
    /// `unknown`
    Unknown,
}

impl CloudStatus {
    /// The APEL value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Completed => "completed",
            Self::Error => "error",
            Self::Paused => "paused",
            Self::Suspended => "suspended",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }

    /// cASO's `vm_status` map from a Nova server status (case-insensitive).
    /// `SHUTOFF` is `completed` although the VM still exists; anything not
    /// listed (e.g. `SHELVED_OFFLOADED`) is `unknown`.
    pub fn from_nova(status: &str) -> Self {
        match status.to_ascii_lowercase().as_str() {
            "active" | "build" | "confirming_resize" | "hard_reboot" | "migrating" | "password"
            | "reboot" | "rebuild" | "rescue" | "resize" | "revert_resize" | "verify_resize"
            | "saving" => Self::Started,
            "deleted" | "shutoff" | "terminated" => Self::Completed,
            "error" => Self::Error,
            "paused" => Self::Paused,
            "suspended" => Self::Suspended,
            "stopped" => Self::Stopped,
            _ => Self::Unknown,
        }
    }
}

/// `BenchmarkType` and `Benchmark` (from the flavor's extra specs). cASO
/// renders either one alone when only one is set; here they come as a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    /// `BenchmarkType`, e.g. `HEPSPEC` (sanitised, at most 50 characters).
    pub name: String,
    /// `Benchmark`, rendered as Python's `str(float)` (`10.5`, `99.0`). A
    /// non-finite value is not rendered (APEL then stores 0).
    pub value: f64,
}

/// The Nova timestamps cASO derives start and end times from
/// (`_get_server_start`, `_get_server_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTimes {
    /// `created`: the start time (not `launched_at`, which resize and
    /// rebuild reset).
    pub created: DateTime<Utc>,
    /// `updated`.
    pub updated: DateTime<Utc>,
    /// `OS-SRV-USG:launched_at`.
    pub launched_at: Option<DateTime<Utc>>,
    /// `OS-SRV-USG:terminated_at`.
    pub terminated_at: Option<DateTime<Utc>>,
}

impl ServerTimes {
    /// The end time as cASO computes it: `terminated_at`; else `created` for
    /// a server never launched; else `updated` if the Nova status is exactly
    /// `DELETED`; else none (still running).
    pub fn end(&self, nova_status: &str) -> Option<DateTime<Utc>> {
        match (self.terminated_at, self.launched_at) {
            (Some(t), _) => Some(t),
            (None, None) => Some(self.created),
            (None, Some(_)) if nova_status == "DELETED" => Some(self.updated),
            (None, Some(_)) => None,
        }
    }
}

/// One VM's usage. Free-text fields are raw: the renderer sanitises them.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudRecord {
    /// `SiteName`, `CloudComputeService`, `CloudType`.
    pub site: Site,
    /// `VMUUID`.
    pub vm_uuid: Uuid,
    /// `MachineName`.
    pub machine_name: String,
    /// `LocalUserId` (Keystone user id).
    pub local_user_id: String,
    /// `LocalGroupId` (project id).
    pub local_group_id: String,
    /// `GlobalUserName` (Keystone user name); omitted when `None`.
    pub global_user_name: Option<String>,
    /// `FQAN`: the project's VO.
    pub fqan: String,
    /// `Status`.
    pub status: CloudStatus,
    /// `StartTime` (server `created`).
    pub start_time: DateTime<Utc>,
    /// `EndTime`; `None` renders `EndTime: 0`.
    pub end_time: Option<DateTime<Utc>>,
    /// `SuspendDuration` (cASO never sets it).
    pub suspend_duration: Option<i64>,
    /// `WallDuration` when set explicitly (see [`CloudRecord::fit_to_window`]);
    /// otherwise `end - start` if ended.
    pub wall_duration: Option<i64>,
    /// `CpuDuration` when set explicitly; otherwise wall × `cpu_count` when
    /// both are known and non-zero.
    pub cpu_duration: Option<i64>,
    /// `CpuCount` (vCPUs).
    pub cpu_count: u32,
    /// `Memory`, MiB.
    pub memory_mb: u64,
    /// `Disk`, GB (root + ephemeral).
    pub disk_gb: u64,
    /// `PublicIPCount` (floating IPs attached).
    pub public_ip_count: u32,
    /// `ImageId` (AppDB MPURI when known); `None` for boot-from-volume.
    pub image_id: Option<String>,
    /// `BenchmarkType` / `Benchmark`.
    pub benchmark: Option<Benchmark>,
}

impl CloudRecord {
    /// Applies the window end the way cASO does (`_process_servers_for_period`):
    /// a VM that has not ended by `window.to()` is reported as running until
    /// then: no `EndTime`, `WallDuration = to - start` (cumulative since
    /// creation), `CpuDuration = wall × CpuCount`, and `completed` becomes
    /// `started` (re-publishing a past window). A VM that ended inside the
    /// window is left as is.
    pub fn fit_to_window(&mut self, window: &Window) {
        if self.end_time.is_none_or(|end| end > window.to()) {
            let wall = whole_seconds(&self.start_time, &window.to());
            self.wall_duration = Some(wall);
            self.end_time = None;
            if self.status == CloudStatus::Completed {
                self.status = CloudStatus::Started;
            }
            self.cpu_duration = Some(wall.saturating_mul(i64::from(self.cpu_count)));
        }
    }

    /// `WallDuration` before the zero-to-one rewrite: explicit, or
    /// `end - start` if ended, else unknown.
    pub fn effective_wall_duration(&self) -> Option<i64> {
        self.wall_duration.or_else(|| {
            self.end_time
                .map(|end| whole_seconds(&self.start_time, &end))
        })
    }

    /// `CpuDuration` before the zero-to-one rewrite: explicit, or wall ×
    /// `CpuCount` when both are known and `CpuCount` is not zero.
    pub fn effective_cpu_duration(&self) -> Option<i64> {
        self.cpu_duration
            .or_else(|| match self.effective_wall_duration() {
                Some(wall) if self.cpu_count != 0 => {
                    Some(wall.saturating_mul(i64::from(self.cpu_count)))
                }
                _ => None,
            })
    }
}

fn text(raw: &str) -> std::borrow::Cow<'_, str> {
    apel_text(raw, MAX_FIELD_LEN)
}

impl ApelRecord for CloudRecord {
    const KIND: MessageKind = MessageKind::Cloud;

    /// `Key: value` lines sorted as whole lines, `None` omitted, a zero
    /// `WallDuration`/`CpuDuration` written as 1 (cASO `ssm_message`).
    fn render(&self) -> String {
        let mut lines: Vec<String> = Vec::with_capacity(24);
        let mut put =
            |key: &str, value: &dyn std::fmt::Display| lines.push(format!("{key}: {value}"));
        if let Some(b) = &self.benchmark {
            if b.value.is_finite() {
                put("Benchmark", &float_repr(b.value));
            }
            put("BenchmarkType", &apel_text(&b.name, MAX_BENCHMARK_TYPE_LEN));
        }
        put("CloudComputeService", &self.site.service());
        put("CloudType", &self.site.cloud_type());
        put("CpuCount", &self.cpu_count);
        if let Some(cpu) = self.effective_cpu_duration() {
            put("CpuDuration", &if cpu == 0 { 1 } else { cpu });
        }
        put("Disk", &self.disk_gb);
        put("EndTime", &self.end_time.as_ref().map_or(0, epoch));
        put("FQAN", &text(&self.fqan));
        if let Some(name) = &self.global_user_name {
            put("GlobalUserName", &text(name));
        }
        if let Some(image) = &self.image_id {
            put("ImageId", &text(image));
        }
        put("LocalGroupId", &text(&self.local_group_id));
        put("LocalUserId", &text(&self.local_user_id));
        put("MachineName", &text(&self.machine_name));
        put("Memory", &self.memory_mb);
        put("PublicIPCount", &self.public_ip_count);
        put("SiteName", &self.site.name());
        put("StartTime", &epoch(&self.start_time));
        put("Status", &self.status.as_str());
        if let Some(suspend) = self.suspend_duration {
            put("SuspendDuration", &suspend);
        }
        put("VMUUID", &self.vm_uuid);
        if let Some(wall) = self.effective_wall_duration() {
            put("WallDuration", &if wall == 0 { 1 } else { wall });
        }
        lines.sort();
        lines.join("\n")
    }

    fn id(&self) -> String {
        self.vm_uuid.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    fn vm() -> CloudRecord {
        CloudRecord {
            site: Site::with_cloud_type("TEST-Site", "TEST-Site", "caso/5.2.2 (OpenStack)")
                .unwrap(),
            vm_uuid: Uuid::parse("VMUUID", "a53738e1-13eb-4047-800c-067d14ce3d22").unwrap(),
            machine_name: "VM2".into(),
            local_user_id: "u2".into(),
            local_group_id: "g2".into(),
            global_user_name: None,
            fqan: "vo2".into(),
            status: CloudStatus::Completed,
            start_time: at(1684533546),
            end_time: Some(at(1684533546)),
            suspend_duration: None,
            wall_duration: None,
            cpu_duration: None,
            cpu_count: 0,
            memory_mb: 0,
            disk_gb: 0,
            public_ip_count: 0,
            image_id: None,
            benchmark: None,
        }
    }

    /// The second record of the spec's §2.1 example (observed from cASO).
    #[test]
    fn spec_example_second_record() {
        assert_eq!(
            vm().render(),
            "CloudComputeService: TEST-Site\nCloudType: caso/5.2.2 (OpenStack)\nCpuCount: 0\nDisk: 0\n\
             EndTime: 1684533546\nFQAN: vo2\nLocalGroupId: g2\nLocalUserId: u2\nMachineName: VM2\nMemory: 0\n\
             PublicIPCount: 0\nSiteName: TEST-Site\nStartTime: 1684533546\nStatus: completed\n\
             VMUUID: a53738e1-13eb-4047-800c-067d14ce3d22\nWallDuration: 1"
        );
    }

    #[test]
    fn running_vm_is_fitted_to_the_window() {
        let mut r = vm();
        r.end_time = None;
        r.cpu_count = 2;
        let w = Window::new(at(0), at(1684533546 + 100)).unwrap();
        r.fit_to_window(&w);
        assert_eq!((r.end_time, r.status), (None, CloudStatus::Started));
        assert_eq!((r.wall_duration, r.cpu_duration), (Some(100), Some(200)));
        assert!(r.render().contains("\nEndTime: 0\n"));
    }

    #[test]
    fn vm_ended_after_the_window_is_reported_running() {
        let mut r = vm();
        r.end_time = Some(at(1684533546 + 1000));
        let w = Window::new(at(0), at(1684533546 + 10)).unwrap();
        r.fit_to_window(&w);
        assert_eq!(
            (r.end_time, r.status, r.wall_duration),
            (None, CloudStatus::Started, Some(10))
        );
        // CpuCount 0: CpuDuration 0, rendered as 1 (cASO sets it explicitly)
        assert!(r.render().contains("CpuDuration: 1\n"));
    }

    #[test]
    fn vm_ended_inside_the_window_is_untouched() {
        let mut r = vm();
        r.end_time = Some(at(1684533546 + 50));
        r.cpu_count = 4;
        let before = r.clone();
        r.fit_to_window(&Window::new(at(0), at(1684533546 + 100)).unwrap());
        assert_eq!(r, before);
        assert_eq!(
            (r.effective_wall_duration(), r.effective_cpu_duration()),
            (Some(50), Some(200))
        );
    }

    #[test]
    fn benchmark_rendering() {
        let mut r = vm();
        r.benchmark = Some(Benchmark {
            name: "HEPSPEC".into(),
            value: 99.0,
        });
        let s = r.render();
        assert!(
            s.starts_with("Benchmark: 99.0\nBenchmarkType: HEPSPEC\n"),
            "{s}"
        );
        r.benchmark = Some(Benchmark {
            name: "x".repeat(60),
            value: f64::NAN,
        });
        let s = r.render();
        assert!(
            s.starts_with(&format!("BenchmarkType: {}\n", "x".repeat(50))),
            "{s}"
        );
    }

    #[test]
    fn nova_status_map() {
        for (nova, apel) in [
            ("ACTIVE", "started"),
            ("verify_resize", "started"),
            ("SHUTOFF", "completed"),
            ("DELETED", "completed"),
            ("ERROR", "error"),
            ("PAUSED", "paused"),
            ("SUSPENDED", "suspended"),
            ("STOPPED", "stopped"),
            ("SHELVED_OFFLOADED", "unknown"),
            ("", "unknown"),
        ] {
            assert_eq!(CloudStatus::from_nova(nova).as_str(), apel, "{nova}");
        }
    }

    #[test]
    fn server_end_time_rules() {
        let t = ServerTimes {
            created: at(10),
            updated: at(90),
            launched_at: Some(at(11)),
            terminated_at: Some(at(80)),
        };
        assert_eq!(t.end("DELETED"), Some(at(80)));
        let t = ServerTimes {
            terminated_at: None,
            ..t
        };
        assert_eq!(t.end("DELETED"), Some(at(90)));
        assert_eq!(t.end("deleted"), None); // cASO compares exactly
        assert_eq!(t.end("ACTIVE"), None);
        let t = ServerTimes {
            launched_at: None,
            ..t
        };
        assert_eq!(t.end("ERROR"), Some(at(10)));
    }
}
