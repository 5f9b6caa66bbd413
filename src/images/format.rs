//! Disk formats: the real format from magic bytes (never the list's
//! `hv:format`), the single disk streamed out of an OVA, and `qemu-img`
//! conversion when the site does not accept the format.
//!
//! Magic: qcow2 `QFI\xfb`; VMDK `KDMV` or a `# Disk DescriptorFile`; VDI
//! `\x7f\x10\xda\xbe` at 64; VHDX `vhdxfile`; VHD `conectix` at 0 or in the
//! 512-byte footer; ISO 9660 `CD001` at 32769; tar `ustar` at 257 (an OVA);
//! anything else is raw. The OVA reader parses tar headers itself and
//! copies the disk member in 1 MiB blocks; an OVA with more than one disk
//! is rejected (cloudkeeper#46).
//!
//! Safety ([`check_safety`], before any conversion or upload): a disk image
//! that makes `qemu-img` (and a hypervisor) open other files is refused,
//! as Glance's format inspector refuses it ("Image failed safety checks"):
//! a qcow2 with a backing file, an external data file or unknown
//! incompatible features; a VMDK descriptor file, or a sparse VMDK whose
//! embedded descriptor is not a single-file `monolithicSparse` or
//! `streamOptimized` one (extents with a path, a parent); a differencing
//! VHD. Converting such a file would copy files of this machine into the
//! image.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A disk format, by Glance's `disk_format` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// VMware.
    Vmdk,
    /// VirtualBox.
    Vdi,
    /// Hyper-V (legacy).
    Vhd,
    /// Hyper-V.
    Vhdx,
    /// CD image.
    Iso,
    /// Raw disk.
    Raw,
    /// OVA (tar with an OVF descriptor and disks).
    Ova,
}

impl Format {
    /// Glance `disk_format` / `qemu-img -f` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vdi => "vdi",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Iso => "iso",
            Format::Raw => "raw",
            Format::Ova => "ova",
        }
    }
    /// From a name, any case (`QCOW2`, `qcow2`).
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "qcow2" => Format::Qcow2,
            "vmdk" => Format::Vmdk,
            "vdi" => Format::Vdi,
            "vhd" | "vpc" => Format::Vhd,
            "vhdx" => Format::Vhdx,
            "iso" => Format::Iso,
            "raw" | "img" => Format::Raw,
            "ova" => Format::Ova,
            _ => return None,
        })
    }
    /// `qemu-img` driver name.
    pub fn qemu(self) -> &'static str {
        match self {
            Format::Vhd => "vpc",
            f => f.as_str(),
        }
    }
}

/// Detect from the first 64 KiB and the last 512 bytes.
pub fn detect_bytes(head: &[u8], tail: &[u8]) -> Format {
    let at = |off: usize, m: &[u8]| head.len() >= off + m.len() && &head[off..off + m.len()] == m;
    if at(0, b"QFI\xfb") {
        Format::Qcow2
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        Format::Vmdk
    } else if at(64, b"\x7f\x10\xda\xbe") {
        Format::Vdi
    } else if at(0, b"vhdxfile") {
        Format::Vhdx
    } else if at(0, b"conectix") || tail.starts_with(b"conectix") {
        Format::Vhd
    } else if at(257, b"ustar") {
        Format::Ova
    } else if at(32769, b"CD001") {
        Format::Iso
    } else {
        Format::Raw
    }
}

/// Detect the format of a file.
pub fn detect(path: &Path) -> std::io::Result<Format> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = vec![0u8; 65536.min(len as usize)];
    f.read_exact(&mut head)?;
    let mut tail = vec![0u8; 512.min(len as usize)];
    if len >= 512 {
        f.seek(SeekFrom::Start(len - 512))?;
        f.read_exact(&mut tail)?;
    }
    Ok(detect_bytes(&head, &tail))
}

/// Why a disk could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not a usable OVA.
    #[error("{path}: {problem}")]
    Ova {
        /// The OVA.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `qemu-img` failed.
    #[error("qemu-img convert -f {from} -O {to} {path}: {problem}")]
    Convert {
        /// Input.
        path: PathBuf,
        /// Input format.
        from: &'static str,
        /// Output format.
        to: &'static str,
        /// Its stderr, or why it could not run.
        problem: String,
        /// It ran (and refused the file), rather than could not be run.
        ran: bool,
    },
    /// The disk image would make its reader open other files.
    #[error("{path}: refused by the format safety checks: {problem}")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is unsafe.
        problem: String,
    },
    /// A file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why a disk image's header is unsafe, from its first bytes (`head`,
/// 64 KiB is enough except for a VMDK's embedded descriptor, passed as
/// `descriptor`) and last 512 bytes (`tail`). Pure.
pub fn unsafe_header(
    fmt: Format,
    head: &[u8],
    tail: &[u8],
    descriptor: Option<&[u8]>,
) -> Option<String> {
    let be32 = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    let be64 = |o: usize| {
        head.get(o..o + 8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
    };
    match fmt {
        Format::Qcow2 => {
            let version = be32(4)?;
            if version != 2 && version != 3 {
                return Some(format!("unsupported qcow2 version {version}"));
            }
            let bf_offset = be64(8).unwrap_or(0);
            if bf_offset != 0 {
                let len = be32(16).unwrap_or(0).min(1023) as usize;
                let name = usize::try_from(bf_offset)
                    .ok()
                    .and_then(|o| head.get(o..o + len))
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Some(format!(
                    "the qcow2 image has a backing file ({})",
                    super::text::shown(&format!("{name:?}"))
                ));
            }
            if version == 3 {
                let features = be64(72).unwrap_or(0);
                if features & 0x4 != 0 {
                    return Some("the qcow2 image has an external data file".into());
                }
                if features & !0xf != 0 {
                    return Some(format!(
                        "the qcow2 image has unknown incompatible features ({features:#x})"
                    ));
                }
            }
            None
        }
        Format::Vmdk => {
            if head.starts_with(b"# Disk DescriptorFile") {
                return Some("a VMDK descriptor file: its extents are other files".into());
            }
            let Some(desc) = descriptor.filter(|d| !d.iter().all(|b| *b == 0)) else {
                return Some("the sparse VMDK has no embedded descriptor".into());
            };
            vmdk_descriptor_problem(&String::from_utf8_lossy(desc))
        }
        Format::Vhd => {
            let footer = if tail.starts_with(b"conectix") {
                tail
            } else {
                head
            };
            match footer
                .get(60..64)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            {
                Some(4) => Some("a differencing VHD: it reads a parent file".into()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The problem of a sparse VMDK's embedded descriptor, as Glance's
/// inspector judges it (plus a parent, which makes qemu open another file).
fn vmdk_descriptor_problem(text: &str) -> Option<String> {
    let text = text.trim_end_matches('\0');
    let mut create_type = None;
    let mut extents = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb") {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(
            first.to_ascii_lowercase().as_str(),
            "rw" | "rdonly" | "noaccess"
        ) {
            if line.contains('/') {
                return Some("the VMDK's extent names a path".into());
            }
            extents += 1;
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().contains(' ') => {
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("createType") {
                    create_type = Some(v.to_ascii_lowercase());
                }
                if k.eq_ignore_ascii_case("parentFileNameHint") && !v.is_empty() {
                    return Some("the VMDK names a parent file".into());
                }
            }
            _ => {
                return Some(format!(
                    "the VMDK descriptor has a line it may not have ({})",
                    super::text::shown(&format!("{line:?}"))
                ))
            }
        }
    }
    match create_type.as_deref() {
        Some("monolithicsparse" | "streamoptimized") if extents > 0 => None,
        Some("monolithicsparse" | "streamoptimized") => {
            Some("the VMDK descriptor names no extent".into())
        }
        other => Some(format!(
            "VMDK create type {} is not a single-file one",
            super::text::shown(other.unwrap_or("(none)"))
        )),
    }
}

/// Refuse a disk image that would make `qemu-img` or a hypervisor open
/// other files ([`unsafe_header`]).
pub fn check_safety(path: &Path, fmt: Format) -> Result<(), FormatError> {
    let io = |e| FormatError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut head = vec![0u8; 65536.min(len as usize)];
    f.read_exact(&mut head).map_err(io)?;
    let mut tail = vec![0u8; 512.min(len as usize)];
    if len >= 512 {
        f.seek(SeekFrom::Start(len - 512)).map_err(io)?;
        f.read_exact(&mut tail).map_err(io)?;
    }
    let descriptor = if fmt == Format::Vmdk && head.starts_with(b"KDMV") && head.len() >= 44 {
        let le64 = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap());
        let (off, size) = (le64(28).saturating_mul(512), le64(36).saturating_mul(512));
        let size = size.min(1 << 20);
        let mut d = vec![0u8; size.min(len.saturating_sub(off)) as usize];
        if off > 0 && !d.is_empty() {
            f.seek(SeekFrom::Start(off)).map_err(io)?;
            f.read_exact(&mut d).map_err(io)?;
        }
        Some(d)
    } else {
        None
    };
    match unsafe_header(fmt, &head, &tail, descriptor.as_deref()) {
        None => Ok(()),
        Some(problem) => Err(FormatError::Unsafe {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

/// One tar member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Name.
    pub name: String,
    /// Offset of its data.
    pub offset: u64,
    /// Size.
    pub size: u64,
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large sizes.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for b in &field[1..] {
            v = v.checked_mul(256)? + *b as u64;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The regular-file members of a tar (ustar, with GNU long names and pax
/// `path` records).
pub fn tar_members(f: &mut (impl Read + Seek)) -> std::io::Result<Vec<TarMember>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    let mut hdr = [0u8; 512];
    loop {
        f.seek(SeekFrom::Start(pos))?;
        if f.read(&mut hdr)? < 512 || hdr.iter().all(|b| *b == 0) {
            break;
        }
        let size =
            octal(&hdr[124..136]).ok_or_else(|| std::io::Error::other("bad tar header size"))?;
        let kind = hdr[156];
        let data = pos + 512;
        let mut name = String::from_utf8_lossy(&hdr[..100])
            .trim_end_matches('\0')
            .to_string();
        if &hdr[257..262] == b"ustar" {
            let prefix = String::from_utf8_lossy(&hdr[345..500])
                .trim_end_matches('\0')
                .to_string();
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        match kind {
            b'L' | b'x' => {
                let mut buf = vec![0u8; size.min(1 << 20) as usize];
                f.seek(SeekFrom::Start(data))?;
                f.read_exact(&mut buf)?;
                let text = String::from_utf8_lossy(&buf).to_string();
                long_name = if kind == b'L' {
                    Some(text.trim_end_matches('\0').to_string())
                } else {
                    text.lines()
                        .filter_map(|l| l.split_once(' ').map(|(_, r)| r))
                        .find_map(|r| r.strip_prefix("path=").map(String::from))
                };
            }
            b'0' | 0 => {
                out.push(TarMember {
                    name: long_name.take().unwrap_or(name),
                    offset: data,
                    size,
                });
            }
            _ => {
                long_name = None;
            }
        }
        pos = data + size.div_ceil(512) * 512;
    }
    Ok(out)
}

/// Copy the one disk of an OVA to `dest` (fsynced). Disks are the members
/// the OVF's `References` name (or, without one, every member that is not
/// the `.ovf`, `.mf` or `.cert`).
pub fn extract_ova_disk(ova: &Path, dest: &Path) -> Result<u64, FormatError> {
    let bad = |problem: String| FormatError::Ova {
        path: ova.to_path_buf(),
        problem,
    };
    let io = |path: &Path, source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(ova).map_err(|e| io(ova, e))?;
    let members = tar_members(&mut f).map_err(|e| bad(format!("not a tar archive: {e}")))?;
    let ovf = members
        .iter()
        .find(|m| m.name.to_ascii_lowercase().ends_with(".ovf"))
        .ok_or_else(|| bad("no .ovf descriptor in the OVA".into()))?;
    let mut text = vec![0u8; ovf.size.min(4 << 20) as usize];
    f.seek(SeekFrom::Start(ovf.offset))
        .map_err(|e| io(ova, e))?;
    f.read_exact(&mut text).map_err(|e| io(ova, e))?;
    let text = String::from_utf8_lossy(&text);
    let referenced: Vec<String> = text
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(String::from)
        .collect();
    let disks: Vec<&TarMember> = members
        .iter()
        .filter(|m| {
            let n = m.name.to_ascii_lowercase();
            if referenced.is_empty() {
                !(n.ends_with(".ovf") || n.ends_with(".mf") || n.ends_with(".cert"))
            } else {
                referenced.iter().any(|r| r == &m.name)
            }
        })
        .collect();
    let disk = match disks.as_slice() {
        [one] => *one,
        [] => return Err(bad("the OVA holds no disk".into())),
        many => {
            return Err(bad(format!(
                "the OVA holds {} disks ({}); only single-disk OVAs are supported",
                many.len(),
                many.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    f.seek(SeekFrom::Start(disk.offset))
        .map_err(|e| io(ova, e))?;
    let mut out = std::fs::File::create(dest).map_err(|e| io(dest, e))?;
    let mut take = (&mut f).take(disk.size);
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = take.read(&mut buf).map_err(|e| io(ova, e))?;
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k]).map_err(|e| io(dest, e))?;
        n += k as u64;
    }
    if n != disk.size {
        return Err(bad(format!("the disk member {} is truncated", disk.name)));
    }
    out.sync_all().map_err(|e| io(dest, e))?;
    Ok(n)
}

/// `qemu-img convert -f <from> -O <to> src dest` (into a temporary name
/// next to `dest`, renamed when complete).
pub async fn convert(src: &Path, from: Format, to: Format, dest: &Path) -> Result<(), FormatError> {
    let tmp = dest.with_extension("converting");
    let out = tokio::process::Command::new("qemu-img")
        .arg("convert")
        .arg("-f")
        .arg(from.qemu())
        .arg("-O")
        .arg(to.qemu())
        .arg(src)
        .arg(&tmp)
        .output()
        .await
        .map_err(|e| FormatError::Convert {
            path: src.to_path_buf(),
            from: from.qemu(),
            to: to.qemu(),
            problem: format!("cannot run qemu-img ({e}); install qemu-utils"),
            ran: false,
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(FormatError::Convert {
            path: src.to_path_buf(),
            from: from.qemu(),
            to: to.qemu(),
            problem: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ran: true,
        });
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, dest))
        .map_err(|e| FormatError::Io {
            path: dest.to_path_buf(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        let mut h = vec![0u8; 40000];
        assert_eq!(detect_bytes(&h, &[]), Format::Raw);
        h[..4].copy_from_slice(b"QFI\xfb");
        assert_eq!(detect_bytes(&h, &[]), Format::Qcow2);
        h[..4].copy_from_slice(b"KDMV");
        assert_eq!(detect_bytes(&h, &[]), Format::Vmdk);
        h[..4].fill(0);
        h[64..68].copy_from_slice(b"\x7f\x10\xda\xbe");
        assert_eq!(detect_bytes(&h, &[]), Format::Vdi);
        h[64..68].fill(0);
        assert_eq!(detect_bytes(&h, b"conectix...."), Format::Vhd);
        h[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect_bytes(&h, &[]), Format::Ova);
        h[257..262].fill(0);
        h[32769..32774].copy_from_slice(b"CD001");
        assert_eq!(detect_bytes(&h, &[]), Format::Iso);
        assert_eq!(Format::parse("QCOW2"), Some(Format::Qcow2));
        assert_eq!(Format::Vhd.qemu(), "vpc");
    }

    #[test]
    fn unsafe_headers_are_refused() {
        let mut q = vec![0u8; 4096];
        q[..4].copy_from_slice(b"QFI\xfb");
        q[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(unsafe_header(Format::Qcow2, &q, &[], None), None);
        q[8..16].copy_from_slice(&1024u64.to_be_bytes());
        q[16..20].copy_from_slice(&11u32.to_be_bytes());
        q[1024..1035].copy_from_slice(b"/etc/shadow");
        let p = unsafe_header(Format::Qcow2, &q, &[], None).unwrap();
        assert!(
            p.contains("backing file") && p.contains("/etc/shadow"),
            "{p}"
        );
        q[8..16].fill(0);
        q[79] = 0x4;
        assert!(unsafe_header(Format::Qcow2, &q, &[], None)
            .unwrap()
            .contains("data file"));
        q[79] = 0x10;
        assert!(unsafe_header(Format::Qcow2, &q, &[], None)
            .unwrap()
            .contains("unknown"));
        assert!(unsafe_header(
            Format::Vmdk,
            b"# Disk DescriptorFile\nRW 1 FLAT \"/etc/shadow\" 0\n",
            &[],
            None
        )
        .is_some());
        let ok = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\nRW 8 SPARSE \"disk.vmdk\"\nddb.adapterType = \"ide\"\n";
        assert_eq!(
            unsafe_header(Format::Vmdk, b"KDMV", &[], Some(ok.as_bytes())),
            None
        );
        for bad in [
            ok.replace("streamOptimized", "twoGbMaxExtentFlat"),
            ok.replace("\"disk.vmdk\"", "\"/etc/shadow\""),
            ok.replace("version=1", "parentFileNameHint=\"/etc/shadow\""),
            ok.replace("version=1", "rm -rf /"),
        ] {
            assert!(
                unsafe_header(Format::Vmdk, b"KDMV", &[], Some(bad.as_bytes())).is_some(),
                "{bad}"
            );
        }
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        footer[60..64].copy_from_slice(&4u32.to_be_bytes());
        assert!(unsafe_header(Format::Vhd, &[], &footer, None).is_some());
        footer[60..64].copy_from_slice(&2u32.to_be_bytes());
        assert!(unsafe_header(Format::Vhd, &[], &footer, None).is_none());
    }

    fn tar_entry(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut out = h.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn ova_single_disk_and_rejects_many() {
        let dir = tempfile::tempdir().unwrap();
        let ovf = br#"<Envelope><References><File ovf:href="disk1.vmdk" ovf:id="f1"/></References></Envelope>"#;
        let mut tar = tar_entry("a.ovf", ovf);
        tar.extend(tar_entry("disk1.vmdk", b"KDMV-disk-bytes"));
        tar.extend(vec![0u8; 1024]);
        let p = dir.path().join("a.ova");
        std::fs::write(&p, &tar).unwrap();
        assert_eq!(detect(&p).unwrap(), Format::Ova);
        let d = dir.path().join("disk");
        assert_eq!(extract_ova_disk(&p, &d).unwrap(), 15);
        assert_eq!(std::fs::read(&d).unwrap(), b"KDMV-disk-bytes");

        let ovf2 =
            br#"<References><File ovf:href="d1.vmdk"/><File ovf:href="d2.vmdk"/></References>"#;
        let mut tar = tar_entry("b.ovf", ovf2);
        tar.extend(tar_entry("d1.vmdk", b"1"));
        tar.extend(tar_entry("d2.vmdk", b"2"));
        tar.extend(vec![0u8; 1024]);
        std::fs::write(&p, &tar).unwrap();
        let e = extract_ova_disk(&p, &d).unwrap_err().to_string();
        assert!(e.contains("2 disks"), "{e}");
    }
}
