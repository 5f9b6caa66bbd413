//! The legacy appliance's configuration files, read once from a root
//! directory (`/`, or a mounted copy of the old disk) into memory, so that
//! layout detection and conversion are pure functions of a [`Snapshot`].
//! Paths are always the ones the legacy appliance used (`/etc/caso/...`);
//! [`Snapshot::read`] prefixes them with the root. The files are small
//! text files; anything over [`MAX_FILE_BYTES`] is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every configuration file of every layout (spec legacy-appliance.md
/// §2.1), as the legacy appliance named it.
pub const FILES: &[&str] = &[
    CASO_CONF,
    VOMS_JSON,
    CASO_VOMS,
    CKOS_CONF_B,
    CKOS_CONF,
    CKOS_VOMS,
    CKOS_MAPPING,
    CK_LISTS,
    CK_YML,
    ATROPE_CONF,
    HEPIX_YAML,
    SENDER_CFG,
    LOGGING_CFG,
    OPENSTACK_RC,
    OPENSTACK_YAML,
    SITE_CFG,
    SITE_DEFAULTS,
    BDII_COMPOSE,
    BDII_SERVICE,
    CKOS_SERVICE,
    CRON_CASO,
    CRON_SSM,
    CRON_ATROPE,
    CRON_CK,
    ROOT_CRONTAB,
    SCRIPT_CASO,
    SCRIPT_SSM,
    SCRIPT_CK,
    SCRIPT_ATROPE,
    SCRIPT_CLOUD_INFO,
    EGI_DEFAULTS,
    OS_RELEASE,
];

/// Directories whose existence tells layouts apart.
pub const DIRS: &[&str] = &["/etc/sitebdii", "/etc/atrope", "/etc/apel"];

/// cASO's configuration (all layouts).
pub const CASO_CONF: &str = "/etc/caso/caso.conf";
/// The Keystone-VOMS mapping of A and B (`{vo: {"tenant": name}}`).
pub const VOMS_JSON: &str = "/etc/voms.json";
/// cASO's mapping from C on (`{vo: {"projects": [...]}}`).
pub const CASO_VOMS: &str = "/etc/caso/voms.json";
/// cloudkeeper-os's configuration in B.
pub const CKOS_CONF_B: &str = "/etc/cloudkeeper/cloudkeeper-os.conf";
/// cloudkeeper-os's configuration from C on.
pub const CKOS_CONF: &str = "/etc/cloudkeeper-os/cloudkeeper-os.conf";
/// cloudkeeper-os's mapping in C–E.
pub const CKOS_VOMS: &str = "/etc/cloudkeeper-os/voms.json";
/// cloudkeeper-os's mapping from F on.
pub const CKOS_MAPPING: &str = "/etc/cloudkeeper-os/mapping.json";
/// cloudkeeper's image lists (B–H).
pub const CK_LISTS: &str = "/etc/cloudkeeper/image-lists.conf";
/// cloudkeeper's configuration (B–H).
pub const CK_YML: &str = "/etc/cloudkeeper/cloudkeeper.yml";
/// atrope's configuration (A).
pub const ATROPE_CONF: &str = "/etc/atrope/atrope.conf";
/// atrope's image lists (A).
pub const HEPIX_YAML: &str = "/etc/atrope/hepix.yaml";
/// ssmsend's configuration.
pub const SENDER_CFG: &str = "/etc/apel/sender.cfg";
/// ssmsend's logging configuration.
pub const LOGGING_CFG: &str = "/etc/apel/logging.cfg";
/// cloud-info-provider's credentials.
pub const OPENSTACK_RC: &str = "/etc/cloud-info-provider/openstack.rc";
/// cloud-info-provider's site description.
pub const OPENSTACK_YAML: &str = "/etc/cloud-info-provider/openstack.yaml";
/// The site BDII's site description (A–F).
pub const SITE_CFG: &str = "/etc/sitebdii/site.cfg";
/// The site BDII's defaults (A–F).
pub const SITE_DEFAULTS: &str = "/etc/sitebdii/glite-info-site-defaults.conf";
/// The BDII containers (A–F).
pub const BDII_COMPOSE: &str = "/etc/sitebdii/docker-compose.yml";
/// The BDII unit (B–F).
pub const BDII_SERVICE: &str = "/etc/systemd/system/bdii.service";
/// The cloudkeeper-os unit (B–H).
pub const CKOS_SERVICE: &str = "/etc/systemd/system/cloudkeeper-os.service";
/// cron.d files (A–C).
pub const CRON_CASO: &str = "/etc/cron.d/caso";
/// cron.d ssmsend (A–C).
pub const CRON_SSM: &str = "/etc/cron.d/ssmsend";
/// cron.d atrope (A).
pub const CRON_ATROPE: &str = "/etc/cron.d/atrope";
/// cron.d cloudkeeper (B, C).
pub const CRON_CK: &str = "/etc/cron.d/cloudkeeper";
/// root's crontab (D–H, written by ansible).
pub const ROOT_CRONTAB: &str = "/var/spool/cron/crontabs/root";
/// Wrapper scripts run by cron.
pub const SCRIPT_CASO: &str = "/usr/local/bin/caso-extract.sh";
/// ssmsend wrapper.
pub const SCRIPT_SSM: &str = "/usr/local/bin/ssm-send.sh";
/// cloudkeeper wrapper.
pub const SCRIPT_CK: &str = "/usr/local/bin/cloudkeeper.sh";
/// atrope wrapper (A).
pub const SCRIPT_ATROPE: &str = "/usr/local/bin/atrope-dispatch.sh";
/// cloud-info wrapper (G, H).
pub const SCRIPT_CLOUD_INFO: &str = "/usr/local/bin/cloud-info.sh";
/// Container images of H.
pub const EGI_DEFAULTS: &str = "/etc/egi/defaults";
/// The OS release (14.04, 16.04, 18.04).
pub const OS_RELEASE: &str = "/etc/os-release";

/// Largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The files found, by legacy path.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Legacy path -> content (invalid UTF-8 replaced).
    pub files: BTreeMap<String, String>,
    /// Directories of [`DIRS`] that exist.
    pub dirs: BTreeSet<String>,
    /// Files that exist but could not be read, with why.
    pub unreadable: BTreeMap<String, String>,
}

impl Snapshot {
    /// Read [`FILES`] and [`DIRS`] under `root`.
    pub fn read(root: &Path) -> Snapshot {
        let mut s = Snapshot::default();
        for f in FILES {
            let p = under(root, f);
            match std::fs::metadata(&p) {
                Err(_) => continue,
                Ok(m) if !m.is_file() => {
                    s.unreadable
                        .insert(f.to_string(), "not a regular file".into());
                }
                Ok(m) if m.len() > MAX_FILE_BYTES => {
                    s.unreadable.insert(
                        f.to_string(),
                        format!("{} bytes: too large for a configuration file", m.len()),
                    );
                }
                Ok(_) => match std::fs::read(&p) {
                    Ok(b) => {
                        s.files
                            .insert(f.to_string(), String::from_utf8_lossy(&b).into_owned());
                    }
                    Err(e) => {
                        s.unreadable.insert(f.to_string(), e.to_string());
                    }
                },
            }
        }
        for d in DIRS {
            if under(root, d).is_dir() {
                s.dirs.insert(d.to_string());
            }
        }
        s
    }

    /// A file's content.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Whether a file exists.
    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

/// `root` + the legacy absolute `path`.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}
