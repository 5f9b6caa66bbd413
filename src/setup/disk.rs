//! `/image_data` on a disk of its own: which block devices qualify (from
//! `lsblk --json`), and the systemd `.mount` unit that mounts the ext4 file
//! system by its label.
//!
//! A candidate is a whole disk (`disk`, or `loop` for file-backed disks)
//! with a size, not read-only, without partitions, file system, label or
//! mount point. The caller probes the device itself (`blkid -p`) before
//! formatting it, because `lsblk` reads file system types from udev, which
//! may not know them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A block device from `lsblk --json -b -o NAME,PATH,TYPE,SIZE,FSTYPE,LABEL,MOUNTPOINTS,RO`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name.
    pub name: String,
    /// Device node.
    #[serde(default)]
    pub path: Option<String>,
    /// `disk`, `part`, `loop`, `rom`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Bytes.
    #[serde(default, deserialize_with = "size")]
    pub size: u64,
    /// File system type, when udev knows one.
    #[serde(default)]
    pub fstype: Option<String>,
    /// File system label.
    #[serde(default)]
    pub label: Option<String>,
    /// Mount points (util-linux 2.37+).
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    /// Mount point (older util-linux).
    #[serde(default)]
    pub mountpoint: Option<String>,
    /// Read-only.
    #[serde(default, deserialize_with = "flag")]
    pub ro: bool,
    /// Partitions and holders.
    #[serde(default)]
    pub children: Vec<BlockDevice>,
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    // A number with `-b`, a string in some versions.
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    })
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s == "1",
        serde_json::Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    })
}

#[derive(Deserialize)]
struct Lsblk {
    blockdevices: Vec<BlockDevice>,
}

impl BlockDevice {
    /// Its device node.
    pub fn node(&self) -> PathBuf {
        self.path
            .clone()
            .map_or_else(|| Path::new("/dev").join(&self.name), PathBuf::from)
    }

    /// Why it cannot hold `/image_data`, if it cannot.
    pub fn unsuitable(&self) -> Option<String> {
        let kind = self.kind.as_deref().unwrap_or("");
        if kind != "disk" && kind != "loop" {
            return Some(format!("it is a {kind}, not a whole disk"));
        }
        if self.size == 0 {
            return Some("it has no size (no medium)".into());
        }
        if self.ro {
            return Some("it is read-only".into());
        }
        if !self.children.is_empty() {
            return Some("it has partitions".into());
        }
        if let Some(fs) = &self.fstype {
            return Some(format!("it holds a {fs} file system"));
        }
        if let Some(l) = &self.label {
            return Some(format!("it is labelled {l}"));
        }
        if self.mountpoints.iter().any(Option::is_some) || self.mountpoint.is_some() {
            return Some("it is mounted".into());
        }
        None
    }
}

/// Parse `lsblk --json` output.
pub fn parse_lsblk(json: &[u8]) -> Result<Vec<BlockDevice>, String> {
    serde_json::from_slice::<Lsblk>(json)
        .map(|l| l.blockdevices)
        .map_err(|e| format!("cannot read lsblk's JSON: {e}"))
}

/// The disks that could hold `/image_data`.
pub fn candidates(devices: &[BlockDevice]) -> Vec<&BlockDevice> {
    devices
        .iter()
        .filter(|d| d.unsuitable().is_none())
        .collect()
}

/// `systemd-escape --path`: the unit name stem of a mount point.
pub fn escape_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return "-".into();
    }
    let joined = parts.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The mount unit's file name for `mount_point`.
pub fn mount_unit_name(mount_point: &Path) -> String {
    format!("{}.mount", escape_path(mount_point))
}

/// The mount unit: the file system labelled `label` at `mount_point`.
/// `nofail`: a missing disk does not stop the boot (image sync then finds
/// no cache and says so).
pub fn mount_unit(label: &str, mount_point: &Path) -> String {
    format!(
        "# Written by `appliance configure`: the image cache of the fedcloud appliance.\n\
         [Unit]\n\
         Description=fedcloud appliance image cache ({label})\n\
         Before=appliance-images-sync.service\n\
         \n\
         [Mount]\n\
         What=/dev/disk/by-label/{label}\n\
         Where={}\n\
         Type=ext4\n\
         Options=defaults,noatime,nofail\n\
         \n\
         [Install]\n\
         WantedBy=local-fs.target\n",
        mount_point.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LSBLK: &str = r#"{"blockdevices": [
      {"name":"vda","path":"/dev/vda","type":"disk","size":10737418240,"fstype":null,"label":null,"mountpoints":[null],"ro":false,
       "children":[{"name":"vda1","path":"/dev/vda1","type":"part","size":10736369664,"fstype":"ext4","label":"root","mountpoints":["/"],"ro":false}]},
      {"name":"vdb","path":"/dev/vdb","type":"disk","size":107374182400,"fstype":null,"label":null,"mountpoints":[null],"ro":false},
      {"name":"vdc","path":"/dev/vdc","type":"disk","size":1048576,"fstype":"iso9660","label":"config-2","mountpoints":[null],"ro":true},
      {"name":"sr0","path":"/dev/sr0","type":"rom","size":1073741824,"fstype":null,"label":null,"mountpoints":[null],"ro":false},
      {"name":"zram0","path":"/dev/zram0","type":"disk","size":0,"fstype":null,"label":null,"mountpoints":[null],"ro":false},
      {"name":"loop0","type":"loop","size":"67108864","fstype":null,"label":null,"mountpoint":null,"ro":"0"}
    ]}"#;

    #[test]
    fn only_bare_disks_are_candidates() {
        let devs = parse_lsblk(LSBLK.as_bytes()).unwrap();
        let c: Vec<PathBuf> = candidates(&devs).iter().map(|d| d.node()).collect();
        assert_eq!(c, [PathBuf::from("/dev/vdb"), PathBuf::from("/dev/loop0")]);
        assert_eq!(devs[0].unsuitable().unwrap(), "it has partitions");
        assert_eq!(devs[2].unsuitable().unwrap(), "it is read-only");
        assert_eq!(
            devs[3].unsuitable().unwrap(),
            "it is a rom, not a whole disk"
        );
        assert_eq!(devs[4].unsuitable().unwrap(), "it has no size (no medium)");
    }

    #[test]
    fn unit_names_follow_systemd_escape() {
        assert_eq!(
            mount_unit_name(Path::new("/image_data")),
            "image_data.mount"
        );
        assert_eq!(
            mount_unit_name(Path::new("/srv/image-data/")),
            "srv-image\\x2ddata.mount"
        );
        assert_eq!(
            mount_unit_name(Path::new("/var/.cache")),
            "var-.cache.mount"
        );
        assert!(mount_unit("image_data", Path::new("/image_data"))
            .contains("What=/dev/disk/by-label/image_data\nWhere=/image_data\nType=ext4\n"));
    }
}
