//! The eight file layouts of the legacy appliance releases (spec
//! legacy-appliance.md §1, §2) and how to tell them apart from the files
//! alone (§6.4). Pure.

use serde::Serialize;

use super::cron;
use super::snapshot::{self as s, Snapshot};

/// A legacy layout: the releases that share one set of file locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Layout {
    /// 14.04-20160403 and 14.04-2016.11.14: cASO 0.3, atrope, BDII.
    A,
    /// 16.04-2017.08.09 and 16.04-2018.01.24: cASO 1.1.1, cloudkeeper,
    /// `/etc/voms.json` shared.
    B,
    /// 16.04-2018.05.07: `voms.json` split per component.
    C,
    /// 16.04-2019.03.07 and 18.04-2019.07.11: ansible, root crontab.
    D,
    /// 18.04-2019.08.07 to 18.04-2020.03.02: `/etc/apel` mounted.
    E,
    /// 18.04-2020.08.27: cloudkeeper-os `mapping.json`, per-project lastrun.
    F,
    /// 18.04-2021.03.12 and 18.04-2021.09.13: AMS sender, no BDII.
    G,
    /// 18.04-2022.04.25: `/etc/egi/defaults`.
    H,
}

impl Layout {
    /// All of them.
    pub const ALL: [Layout; 8] = [
        Layout::A,
        Layout::B,
        Layout::C,
        Layout::D,
        Layout::E,
        Layout::F,
        Layout::G,
        Layout::H,
    ];

    /// `A`..`H`.
    pub fn letter(self) -> char {
        (b'A' + self as u8) as char
    }

    /// From `A`..`H` (either case).
    pub fn parse(s: &str) -> Option<Layout> {
        let c = s.trim().to_ascii_uppercase();
        Layout::ALL
            .into_iter()
            .find(|l| c.len() == 1 && c.starts_with(l.letter()))
    }

    /// The releases built with this layout.
    pub fn releases(self) -> &'static str {
        match self {
            Layout::A => "14.04-20160403, 14.04-2016.11.14",
            Layout::B => "16.04-2017.08.09, 16.04-2018.01.24",
            Layout::C => "16.04-2018.05.07",
            Layout::D => "16.04-2019.03.07, 18.04-2019.07.11",
            Layout::E => "18.04-2019.08.07, 18.04-2019.09.09, 18.04-2020.03.02",
            Layout::F => "18.04-2020.08.27",
            Layout::G => "18.04-2021.03.12, 18.04-2021.09.13",
            Layout::H => "18.04-2022.04.25",
        }
    }

    /// Whether cASO here keeps one lastrun per project (cASO ≥ 1.4.1).
    pub fn per_project_lastrun(self) -> bool {
        self >= Layout::F
    }

    /// Where cASO's VO mapping is on the host.
    pub fn caso_voms(self) -> &'static str {
        if self <= Layout::B {
            s::VOMS_JSON
        } else {
            s::CASO_VOMS
        }
    }

    /// Where cloudkeeper-os's VO -> image project mapping is on the host
    /// (none in A: atrope uploaded into its own tenant and only shared with
    /// the VOs' tenants).
    pub fn image_mapping(self) -> Option<&'static str> {
        match self {
            Layout::A => None,
            Layout::B => Some(s::VOMS_JSON),
            Layout::C | Layout::D | Layout::E => Some(s::CKOS_VOMS),
            _ => Some(s::CKOS_MAPPING),
        }
    }

    /// Where cloudkeeper-os's configuration is (none in A).
    pub fn ckos_conf(self) -> Option<&'static str> {
        match self {
            Layout::A => None,
            Layout::B => Some(s::CKOS_CONF_B),
            _ => Some(s::CKOS_CONF),
        }
    }

    /// Whether the host's `/etc/apel/sender.cfg` reached ssmsend (the
    /// directory was mounted into the container from E on; before, the
    /// image's own copy was used and the host file was inert).
    pub fn sender_cfg_effective(self) -> bool {
        self >= Layout::E
    }
}

/// The detected layout and what it was told by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The layout.
    pub layout: Layout,
    /// The files that decided it.
    pub evidence: Vec<String>,
    /// Other signs that disagree (for the report).
    pub doubts: Vec<String>,
}

/// Detect the layout from the files (spec §6.4); `None` when nothing of a
/// legacy appliance is there.
pub fn detect(snap: &Snapshot) -> Option<Detected> {
    let mut ev = Vec::new();
    let root_cron = snap.get(s::ROOT_CRONTAB).unwrap_or("");
    let ansible = root_cron.lines().any(|l| l.starts_with("#Ansible:"));
    let layout = if snap.has(s::EGI_DEFAULTS) {
        ev.push(format!("{} exists", s::EGI_DEFAULTS));
        Layout::H
    } else if snap.has(s::CKOS_MAPPING) {
        ev.push(format!("{} exists", s::CKOS_MAPPING));
        if snap.dirs.contains("/etc/sitebdii") {
            ev.push("/etc/sitebdii exists".into());
            Layout::F
        } else {
            ev.push("/etc/sitebdii does not exist".into());
            Layout::G
        }
    } else if snap.has(s::CKOS_VOMS) {
        ev.push(format!("{} exists", s::CKOS_VOMS));
        if ansible {
            ev.push(format!("{} has `#Ansible:` entries", s::ROOT_CRONTAB));
            if mounts_apel(snap) {
                ev.push(format!("{} mounts /etc/apel", s::SCRIPT_SSM));
                Layout::E
            } else {
                ev.push(format!("{} does not mount /etc/apel", s::SCRIPT_SSM));
                Layout::D
            }
        } else {
            ev.push(format!("{} has no `#Ansible:` entries", s::ROOT_CRONTAB));
            Layout::C
        }
    } else if snap.has(s::CKOS_CONF_B) && snap.has(s::VOMS_JSON) {
        ev.push(format!("{} and {} exist", s::CKOS_CONF_B, s::VOMS_JSON));
        Layout::B
    } else if snap.dirs.contains("/etc/atrope") {
        ev.push("/etc/atrope exists".into());
        Layout::A
    } else {
        return None;
    };
    let doubts = confirm(snap, layout);
    Some(Detected {
        layout,
        evidence: ev,
        doubts,
    })
}

fn mounts_apel(snap: &Snapshot) -> bool {
    snap.get(s::SCRIPT_SSM)
        .is_some_and(|t| t.contains("/etc/apel:/etc/apel"))
}

/// Signs that disagree with `layout`: the OS release and the container
/// image tags in the wrapper scripts (spec §6.4 "confirm with").
pub fn confirm(snap: &Snapshot, layout: Layout) -> Vec<String> {
    let mut doubts = Vec::new();
    if let Some(os) = snap.get(s::OS_RELEASE) {
        let version = os
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_ID="))
            .map(|v| v.trim_matches('"').to_string());
        if let Some(v) = version {
            let ok = match layout {
                Layout::A => v == "14.04",
                Layout::B | Layout::C => v == "16.04",
                Layout::D => v == "16.04" || v == "18.04",
                _ => v == "18.04",
            };
            if !ok {
                doubts.push(format!(
                    "{}: Ubuntu {v}, but layout {} was built on {}",
                    s::OS_RELEASE,
                    layout.letter(),
                    layout.releases()
                ));
            }
        }
    }
    if let Some(script) = snap.get(s::SCRIPT_CASO) {
        // `egifedcloud/caso:v0.N` pins a tag; the tags of each layout.
        let tag = script
            .split_whitespace()
            .find_map(|w| w.strip_prefix("egifedcloud/caso:"))
            .map(|t| t.trim_matches('"').to_string());
        let expected: &[&str] = match layout {
            Layout::C => &["v0.3"],
            Layout::D => &["v0.6", "v0.10", "{{"],
            Layout::E => &["v0.11", "v0.14"],
            Layout::F => &["v0.15"],
            Layout::G => &["v0.16"],
            _ => &[],
        };
        if let (Some(t), false) = (&tag, expected.is_empty()) {
            if !expected.iter().any(|e| t.starts_with(e)) {
                doubts.push(format!(
                    "{}: runs egifedcloud/caso:{t}, not a tag of layout {} ({})",
                    s::SCRIPT_CASO,
                    layout.letter(),
                    expected.join(", ")
                ));
            }
        }
    }
    if layout == Layout::D {
        let has_caso = cron::parse(snap.get(s::ROOT_CRONTAB).unwrap_or(""), false)
            .iter()
            .any(|j| j.job == Some(cron::Job::Caso));
        if !has_caso {
            doubts.push(format!(
                "{}: no caso entry: 16.04-2019.03.07, which never ran cASO from cron",
                s::ROOT_CRONTAB
            ));
        }
    }
    doubts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(files: &[&str], dirs: &[&str], extra: &[(&str, &str)]) -> Snapshot {
        let mut s = Snapshot::default();
        for f in files {
            s.files.insert(f.to_string(), String::new());
        }
        for (f, t) in extra {
            s.files.insert(f.to_string(), t.to_string());
        }
        for d in dirs {
            s.dirs.insert(d.to_string());
        }
        s
    }

    #[test]
    fn the_decision_tree_of_section_6_4() {
        let d = |sn: Snapshot| detect(&sn).map(|d| d.layout);
        assert_eq!(
            d(snap(&[s::EGI_DEFAULTS, s::CKOS_MAPPING], &[], &[])),
            Some(Layout::H)
        );
        assert_eq!(
            d(snap(&[s::CKOS_MAPPING], &["/etc/sitebdii"], &[])),
            Some(Layout::F)
        );
        assert_eq!(d(snap(&[s::CKOS_MAPPING], &[], &[])), Some(Layout::G));
        let cron = "#Ansible: ssm\n30 */6 * * * /usr/local/bin/ssm-send.sh\n";
        assert_eq!(
            d(snap(
                &[s::CKOS_VOMS],
                &[],
                &[
                    (s::ROOT_CRONTAB, cron),
                    (s::SCRIPT_SSM, "-v /etc/apel:/etc/apel \\\n")
                ]
            )),
            Some(Layout::E)
        );
        assert_eq!(
            d(snap(&[s::CKOS_VOMS], &[], &[(s::ROOT_CRONTAB, cron)])),
            Some(Layout::D)
        );
        assert_eq!(
            d(snap(&[s::CKOS_VOMS, s::CRON_CASO], &[], &[])),
            Some(Layout::C)
        );
        assert_eq!(
            d(snap(&[s::CKOS_CONF_B, s::VOMS_JSON], &[], &[])),
            Some(Layout::B)
        );
        assert_eq!(
            d(snap(&[s::CASO_CONF], &["/etc/atrope"], &[])),
            Some(Layout::A)
        );
        assert_eq!(d(snap(&[s::CASO_CONF], &[], &[])), None);
        assert_eq!(Layout::parse("g"), Some(Layout::G));
        assert_eq!(Layout::parse("auto"), None);
    }

    #[test]
    fn doubts_from_os_release_and_image_tags() {
        let sn = snap(
            &[s::CKOS_MAPPING],
            &[],
            &[
                (s::OS_RELEASE, "VERSION_ID=\"16.04\"\n"),
                (s::SCRIPT_CASO, "--rm egifedcloud/caso:v0.3\n"),
            ],
        );
        let d = detect(&sn).unwrap();
        assert_eq!(d.layout, Layout::G);
        assert_eq!(d.doubts.len(), 2, "{:?}", d.doubts);
    }
}
