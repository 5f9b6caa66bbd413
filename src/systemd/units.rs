//! The unit files of `systemd/`, compiled into the binary so the static
//! binary alone can install them, and what is known about each job.

use crate::config::model::{
    DEFAULT_CRL_SCHEDULE, DEFAULT_EXTRACT_SCHEDULE, DEFAULT_IMAGES_SCHEDULE, DEFAULT_INFO_SCHEDULE,
    DEFAULT_SEND_SCHEDULE,
};

/// Where vendor units go (relative to the root).
pub const UNIT_DIR: &str = "usr/lib/systemd/system";
/// Where enablement symlinks and drop-ins go (relative to the root).
pub const ETC_UNIT_DIR: &str = "etc/systemd/system";

/// A file the appliance installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File {
    /// Its path under the root.
    pub path: &'static str,
    /// Its text.
    pub text: &'static str,
}

impl File {
    /// The unit name (file name) of a unit file.
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
    /// Whether it is a unit (not a sysusers/tmpfiles file).
    pub fn is_unit(&self) -> bool {
        self.path.starts_with(UNIT_DIR)
    }
}

macro_rules! unit {
    ($name:literal) => {
        File {
            path: concat!("usr/lib/systemd/system/", $name),
            text: include_str!(concat!("../../systemd/", $name)),
        }
    };
}

/// Every file `appliance systemd install` writes, in `systemd/`.
pub const FILES: &[File] = &[
    unit!("appliance-migrate.service"),
    unit!("appliance-firstboot.service"),
    unit!("appliance-configured.target"),
    unit!("appliance-accounting-extract.service"),
    unit!("appliance-accounting-extract.timer"),
    unit!("appliance-accounting-send.service"),
    unit!("appliance-accounting-send.timer"),
    unit!("appliance-info-publish.service"),
    unit!("appliance-info-publish.timer"),
    unit!("appliance-images-sync.service"),
    unit!("appliance-images-sync.timer"),
    unit!("appliance-crl-refresh.service"),
    unit!("appliance-crl-refresh.timer"),
    File {
        path: "usr/lib/sysusers.d/fedcloud-appliance.conf",
        text: include_str!("../../systemd/sysusers.d/fedcloud-appliance.conf"),
    },
    File {
        path: "usr/lib/tmpfiles.d/fedcloud-appliance.conf",
        text: include_str!("../../systemd/tmpfiles.d/fedcloud-appliance.conf"),
    },
];

/// Units of earlier releases (extract and send in one service, no CRL
/// refresh): removed and disabled on install.
pub const OBSOLETE: &[&str] = &[
    "appliance-accounting.service",
    "appliance-accounting.timer",
    "appliance-info.service",
    "appliance-info.timer",
    "appliance-images.service",
    "appliance-images.timer",
];

/// systemd's own first-boot prompt, masked: it would wait for a root
/// password on the console at the appliance's first boot.
pub const MASKED: &[&str] = &["systemd-firstboot.service"];

/// A scheduled job: `appliance-<name>.service` run by its `.timer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobUnit {
    /// As in [`crate::config::model::Job::name`].
    pub name: &'static str,
    /// The configuration key of its schedule.
    pub schedule_key: &'static str,
    /// The schedule in its timer unit.
    pub default_schedule: &'static str,
}

impl JobUnit {
    /// `appliance-<name>.service`.
    pub fn service(&self) -> String {
        format!("appliance-{}.service", self.name)
    }
    /// `appliance-<name>.timer`.
    pub fn timer(&self) -> String {
        format!("appliance-{}.timer", self.name)
    }
}

/// The five jobs, in [`crate::config::model::Components::jobs`] order.
pub const JOBS: [JobUnit; 5] = [
    JobUnit {
        name: "accounting-extract",
        schedule_key: "components.accounting.extract-schedule",
        default_schedule: DEFAULT_EXTRACT_SCHEDULE,
    },
    JobUnit {
        name: "accounting-send",
        schedule_key: "components.accounting.send-schedule",
        default_schedule: DEFAULT_SEND_SCHEDULE,
    },
    JobUnit {
        name: "info-publish",
        schedule_key: "components.info.schedule",
        default_schedule: DEFAULT_INFO_SCHEDULE,
    },
    JobUnit {
        name: "images-sync",
        schedule_key: "components.images.schedule",
        default_schedule: DEFAULT_IMAGES_SCHEDULE,
    },
    JobUnit {
        name: "crl-refresh",
        schedule_key: "components.crl-refresh.schedule",
        default_schedule: DEFAULT_CRL_SCHEDULE,
    },
];

/// The job unit named `name`.
pub fn job(name: &str) -> Option<&'static JobUnit> {
    JOBS.iter().find(|j| j.name == name)
}

/// The embedded file of unit `name`.
pub fn unit(name: &str) -> Option<&'static File> {
    FILES.iter().find(|f| f.is_unit() && f.name() == name)
}

/// `key=value` settings of `section` in a unit file (comments skipped;
/// repeated keys kept in order; values split on whitespace).
pub fn settings(text: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s;
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == key {
                out.extend(v.split_whitespace().map(String::from));
            }
        }
    }
    out
}

/// The targets a unit's `[Install]` section wants it in (`WantedBy=`),
/// as `systemctl enable` reads them.
pub fn wanted_by(text: &str) -> Vec<String> {
    settings(text, "Install", "WantedBy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_has_its_units_and_the_config_agrees() {
        let jobs = crate::config::model::Components::default().jobs();
        for (j, cfg) in JOBS.iter().zip(jobs.iter()) {
            assert_eq!(j.name, cfg.name);
            assert_eq!(j.default_schedule, cfg.schedule);
            let timer = unit(&j.timer()).expect("timer");
            assert!(unit(&j.service()).is_some(), "{}", j.service());
            assert_eq!(
                settings(timer.text, "Timer", "OnCalendar").join(" "),
                j.default_schedule,
                "{}",
                j.timer()
            );
            assert_eq!(wanted_by(timer.text), ["timers.target"]);
        }
    }

    #[test]
    fn settings_reads_sections_and_skips_comments() {
        let t = "[Unit]\n# WantedBy=no\nWantedBy=not-here\n[Install]\nWantedBy=a.target b.target\n; x\nWantedBy=c.target\n";
        assert_eq!(wanted_by(t), ["a.target", "b.target", "c.target"]);
        assert!(job("images-sync").is_some());
        assert!(job("images").is_none());
    }
}
