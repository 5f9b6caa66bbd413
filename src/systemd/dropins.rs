//! What the configuration changes in the units, as drop-in texts: a
//! timer's schedule (`50-schedule.conf`) and the paths a service may write
//! (`50-paths.conf`, when the configuration moved them from the defaults
//! the units carry), plus tmpfiles lines creating moved paths. Pure.

use std::path::{Path, PathBuf};

use super::units::JobUnit;

/// Drop-in file name of a timer's schedule.
pub const SCHEDULE_DROPIN: &str = "50-schedule.conf";
/// Drop-in file name of a service's writable paths.
pub const PATHS_DROPIN: &str = "50-paths.conf";
/// tmpfiles.d file (under the root's `etc/tmpfiles.d/`) for moved paths.
pub const PATHS_TMPFILES: &str = "etc/tmpfiles.d/fedcloud-appliance-paths.conf";

const HEADER: &str = "# Written by `appliance systemd install` or `appliance configure` from\n# appliance.yaml; edit appliance.yaml and run `appliance systemd apply`\n# rather than this file.\n";

/// The schedule drop-in of a job's timer, or `None` when the timer's own
/// schedule is the one configured.
pub fn schedule(job: &JobUnit, schedule: &str) -> Option<String> {
    (schedule.trim() != job.default_schedule).then(|| {
        format!(
            "{HEADER}# {key}\n[Timer]\nOnCalendar=\nOnCalendar={value}\n",
            key = job.schedule_key,
            value = schedule.trim()
        )
    })
}

/// The paths the appliance writes, resolved from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The directory of appliance.yaml.
    pub config_dir: PathBuf,
    /// `paths.state`.
    pub state: PathBuf,
    /// `paths.image-data`.
    pub image_data: PathBuf,
    /// `paths.ca-dir`.
    pub ca_dir: PathBuf,
    /// The spool `accounting extract` writes (`accounting.spool`, default
    /// `paths.spool`).
    pub extract_spool: PathBuf,
    /// The spool `accounting send` empties (`ams.path`, the legacy
    /// sender.cfg's, default `paths.spool`).
    pub send_spool: PathBuf,
    /// `ams.quarantine`.
    pub quarantine: PathBuf,
    /// `info.publish.file`, if any.
    pub info_file: Option<PathBuf>,
}

impl Default for Paths {
    /// The defaults, which the units carry.
    fn default() -> Self {
        let p = crate::config::model::Paths::default();
        Paths {
            config_dir: "/etc/fedcloud-appliance".into(),
            quarantine: p.state.join("accounting").join("quarantine"),
            extract_spool: p.spool.clone(),
            send_spool: p.spool,
            state: p.state,
            image_data: p.image_data,
            ca_dir: p.ca_dir,
            info_file: None,
        }
    }
}

/// Keep the outermost of nested paths, sorted.
fn outermost(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.sort();
    v.dedup();
    let all = v.clone();
    v.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    v
}

impl Paths {
    /// What the service `unit` writes (outermost paths, sorted); empty
    /// for units that take no paths from the configuration.
    pub fn writable(&self, unit: &str) -> Vec<PathBuf> {
        let s = self.state.clone();
        let v = match unit {
            "appliance-accounting-extract.service" => vec![s, self.extract_spool.clone()],
            "appliance-accounting-send.service" => {
                vec![s, self.send_spool.clone(), self.quarantine.clone()]
            }
            "appliance-info-publish.service" => {
                let mut v = vec![s];
                if let Some(dir) = self.info_file.as_deref().and_then(Path::parent) {
                    v.push(dir.to_path_buf());
                }
                v
            }
            "appliance-images-sync.service" => vec![s, self.image_data.clone()],
            "appliance-crl-refresh.service" => vec![s, self.ca_dir.clone()],
            "appliance-migrate.service" => {
                vec![self.config_dir.clone(), s, self.image_data.clone()]
            }
            _ => Vec::new(),
        };
        outermost(v)
    }

    /// The service units whose writable paths come from the configuration.
    pub const UNITS: [&'static str; 6] = [
        "appliance-accounting-extract.service",
        "appliance-accounting-send.service",
        "appliance-info-publish.service",
        "appliance-images-sync.service",
        "appliance-crl-refresh.service",
        "appliance-migrate.service",
    ];

    /// The paths drop-in of `unit`, or `None` when it writes exactly what
    /// its unit file allows (the defaults).
    pub fn dropin(&self, unit: &str) -> Option<String> {
        let want = self.writable(unit);
        if want == Paths::default().writable(unit) {
            return None;
        }
        let list: Vec<String> = want.iter().map(|p| format!("-{}", p.display())).collect();
        Some(format!(
            "{HEADER}[Service]\nReadWritePaths=\nReadWritePaths={}\n",
            list.join(" ")
        ))
    }

    /// tmpfiles lines creating the directories moved from the defaults
    /// (owned by the appliance user; the CA directory is root's), or
    /// `None` when nothing moved.
    pub fn tmpfiles(&self) -> Option<String> {
        let d = Paths::default();
        let mut lines = Vec::new();
        let mut add = |p: &Path, default: &Path, owner: &str| {
            if p != default {
                lines.push(format!("d {} 0750 {owner} appliance -", p.display()));
            }
        };
        add(&self.state, &d.state, "appliance");
        add(&self.image_data, &d.image_data, "appliance");
        add(&self.extract_spool, &d.extract_spool, "appliance");
        add(&self.send_spool, &d.send_spool, "appliance");
        let quarantine_default = self.state.join("accounting").join("quarantine");
        add(&self.quarantine, &quarantine_default, "appliance");
        if let Some(dir) = self.info_file.as_deref().and_then(Path::parent) {
            if !dir.starts_with(&self.state) {
                lines.push(format!("d {} 0755 appliance appliance -", dir.display()));
            }
        }
        if self.state != d.state {
            for sub in ["run", "runs", "crl"] {
                lines.push(format!(
                    "d {} 2770 appliance appliance -",
                    self.state.join(sub).display()
                ));
            }
        }
        lines.sort();
        lines.dedup();
        (!lines.is_empty()).then(|| format!("{HEADER}{}\n", lines.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::units::{self, JOBS};
    use super::*;

    #[test]
    fn default_schedules_need_no_dropin() {
        for j in &JOBS {
            assert_eq!(schedule(j, j.default_schedule), None);
        }
        let d = schedule(&JOBS[2], "*:0/5").unwrap();
        assert!(
            d.ends_with("[Timer]\nOnCalendar=\nOnCalendar=*:0/5\n"),
            "{d}"
        );
        assert!(d.contains("# components.info.schedule\n"));
    }

    /// The unit files allow exactly what the default paths need: their
    /// `ReadWritePaths=` plus the `StateDirectory=`.
    #[test]
    fn the_units_carry_the_default_paths() {
        let d = Paths::default();
        for unit in Paths::UNITS {
            let text = units::unit(unit).unwrap().text;
            let mut have: Vec<PathBuf> = units::settings(text, "Service", "ReadWritePaths")
                .iter()
                .map(|p| PathBuf::from(p.trim_start_matches('-')))
                .collect();
            for s in units::settings(text, "Service", "StateDirectory") {
                have.push(Path::new("/var/lib").join(s));
            }
            assert_eq!(outermost(have), d.writable(unit), "{unit}");
            assert_eq!(d.dropin(unit), None);
        }
        assert_eq!(d.tmpfiles(), None);
    }

    #[test]
    fn moved_paths_get_dropins_and_tmpfiles() {
        let p = Paths {
            image_data: "/srv/images".into(),
            info_file: Some("/srv/www/cloud-info.json".into()),
            ..Paths::default()
        };
        let images = p.dropin("appliance-images-sync.service").unwrap();
        assert!(
            images.ends_with(
                "ReadWritePaths=\nReadWritePaths=-/srv/images -/var/lib/fedcloud-appliance\n"
            ),
            "{images}"
        );
        let info = p.dropin("appliance-info-publish.service").unwrap();
        assert!(info.contains("ReadWritePaths=-/srv/www -/var/lib/fedcloud-appliance\n"));
        assert!(p.dropin("appliance-migrate.service").is_some());
        assert_eq!(p.dropin("appliance-accounting-extract.service"), None);
        let t = p.tmpfiles().unwrap();
        assert!(
            t.contains("d /srv/images 0750 appliance appliance -\n"),
            "{t}"
        );
        assert!(t.contains("d /srv/www 0755 appliance appliance -"), "{t}");
        // An info file under the state needs nothing.
        let under = Paths {
            info_file: Some("/var/lib/fedcloud-appliance/info/x.json".into()),
            ..Paths::default()
        };
        assert_eq!(under.dropin("appliance-info-publish.service"), None);
        assert_eq!(under.tmpfiles(), None);
    }
}
