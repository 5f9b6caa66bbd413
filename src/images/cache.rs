//! The image cache under `paths.image-data`: one directory per
//! subscription (`<image-data>/<subscription>/`), verified downloads of list
//! images named by [`entry_name`] of their identifier, registry layers named
//! by their sha256 (64 hex digits), derived files (OVA disks, conversions)
//! named by the source digest (`<32 hex>.disk`, `<32 hex>.<format>`) so they
//! are made once, and a sidecar index (`index.json`: file, size, mtime,
//! inode, sha512) so an unchanged cached file is never hashed again.
//! Unfinished downloads live in `.partial/` ([`partial_name`],
//! [`marker_name`]).
//!
//! Naming invariants: the identifier -> file name mapping is injective (two
//! identifiers never share a file), and every name it gives starts with
//! `img-` or `img~`, a namespace none of the cache's own files (`index.json`,
//! `.partial/`, derived files, layers) can enter.
//!
//! A cache entry is trusted only when the file's size, mtime and inode are
//! exactly those recorded when its digest was computed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes kept as they are in an entry name; every other byte is written
/// `_xx` (two lower-case hex digits), `_` included, so the mapping is
/// injective.
fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Longest escaped form used as is; longer identifiers are named by their
/// sha256 (a file name must stay under 255 bytes).
const MAX_ESCAPED: usize = 200;

/// The cache file name of list image `id` (its `dc:identifier`), in this
/// release's naming: `img-` followed by the identifier with every byte
/// outside `[A-Za-z0-9.-]` escaped as `_xx` (so `k:1` -> `img-k_3a1`,
/// `k_1` -> `img-k_5f1`), or, when that would exceed 200 bytes,
/// `img~<sha256 hex of id>`. Injective (escaping is reversible; `~` never
/// appears in the escaped form, and sha256 is collision-resistant); never
/// equal to one of the cache's own files. Pure.
pub fn entry_name(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 8);
    out.push_str("img-");
    for &b in id.as_bytes() {
        if kept(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.len() > MAX_ESCAPED {
        return format!("img~{}", hex::encode(openssl::sha::sha256(id.as_bytes())));
    }
    out
}

/// The identifier of an entry named by [`entry_name`], when the name is in
/// its escaped form (`None` for `img~<sha256>` names and names that are
/// not image entries). Pure.
pub fn entry_id(name: &str) -> Option<String> {
    let rest = name.strip_prefix("img-")?;
    let b = rest.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let h = rest.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else if kept(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The cache file name schema-1 state (releases before this one) used for
/// list image `id`: `:` replaced by `_`. NOT injective (`k:1` and `k_1`
/// both map to `k_1`) and it shares the namespace of the cache's own files
/// (an identifier `index.json` was the index itself). Kept only so that
/// an upgrade can take over existing downloads: the state migration renames
/// `legacy_entry_name(id)` to [`entry_name`]`(id)` (the file and its
/// `index.json` key), and a sync adopts such a file itself, but only when
/// its recorded sha512 is the one the list gives for `id`
/// ([`Index::adopt`]), so a file that was written for the other identifier
/// of a colliding pair is never used. Pure.
pub fn legacy_entry_name(id: &str) -> String {
    id.replace(':', "_")
}

/// The unfinished download of entry `name`, in `<dir>/.partial/`.
pub fn partial_name(name: &str) -> String {
    format!("{name}.part")
}

/// The marker recording which digest the partial download of entry `name`
/// is for, in `<dir>/.partial/`.
pub fn marker_name(name: &str) -> String {
    format!("{name}.digest")
}

/// Remove what interrupted or abandoned work left in cache directory
/// `dir`: files in `.partial/` other than the partial download and marker
/// of an entry in `keep` (the entries the source still wants; names of
/// an older naming included), and unfinished conversions (`*.converting`).
/// Call it only under the run lock. Best effort.
pub fn sweep(dir: &Path, keep: &std::collections::BTreeSet<String>) {
    let wanted: std::collections::BTreeSet<String> = keep
        .iter()
        .flat_map(|k| [partial_name(k), marker_name(k)])
        .collect();
    let remove = |p: PathBuf| {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::debug!(file = %p.display(), error = %e, "could not remove");
        } else {
            tracing::debug!(file = %p.display(), "removed a leftover of an earlier run");
        }
    };
    if let Ok(rd) = std::fs::read_dir(dir.join(".partial")) {
        for e in rd.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            if !wanted.contains(&n) {
                remove(e.path());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().ends_with(".converting") {
                remove(e.path());
            }
        }
    }
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode.
    pub inode: u64,
    /// sha512, hex.
    pub sha512: String,
}

fn stamp(m: &std::fs::Metadata) -> (u64, i128, u64) {
    (
        m.len(),
        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        m.ino(),
    )
}

/// The index of one cache directory.
#[derive(Debug, Clone)]
pub struct Index {
    dir: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Index {
    /// Load `dir/index.json` (an unreadable index is an empty one: files
    /// are then hashed again, never trusted blindly).
    pub fn load(dir: &Path) -> Index {
        let entries = std::fs::read(dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Index {
            dir: dir.to_path_buf(),
            entries,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `dir/name` when it is indexed with digest `sha512` and unchanged
    /// since (size, mtime, inode), without reading it.
    pub fn verified(&self, name: &str, sha512: &str) -> Option<PathBuf> {
        let e = self.entries.get(name)?;
        let path = self.dir.join(name);
        let m = std::fs::metadata(&path).ok()?;
        let (size, mtime, ino) = stamp(&m);
        (e.sha512 == sha512 && e.size == size && e.mtime_ns == mtime && e.inode == ino)
            .then_some(path)
    }

    /// The recorded digest of `name`, when the file is unchanged.
    pub fn digest(&self, name: &str) -> Option<&str> {
        let e = self.entries.get(name)?;
        let m = std::fs::metadata(self.dir.join(name)).ok()?;
        let (size, mtime, ino) = stamp(&m);
        (e.size == size && e.mtime_ns == mtime && e.inode == ino).then_some(e.sha512.as_str())
    }

    /// Record that `name` (now on disk) has digest `sha512`.
    pub fn record(&mut self, name: &str, sha512: &str) -> std::io::Result<()> {
        let m = std::fs::metadata(self.dir.join(name))?;
        let (size, mtime_ns, inode) = stamp(&m);
        self.entries.insert(
            name.to_string(),
            Entry {
                size,
                mtime_ns,
                inode,
                sha512: sha512.to_string(),
            },
        );
        Ok(())
    }

    /// Take over the file of an older naming: when `old` is indexed with
    /// digest `sha512` and unchanged, rename it (file and index key) to
    /// `new` and give its path. The rename keeps size, mtime and inode, so
    /// the record stays valid. Nothing happens otherwise (a file whose
    /// digest is not `sha512` may belong to another identifier).
    pub fn adopt(&mut self, old: &str, new: &str, sha512: &str) -> Option<PathBuf> {
        if old == new || self.entries.contains_key(new) {
            return None;
        }
        self.verified(old, sha512)?;
        let (from, to) = (self.dir.join(old), self.dir.join(new));
        std::fs::rename(&from, &to).ok()?;
        let e = self.entries.remove(old)?;
        self.entries.insert(new.to_string(), e);
        Some(to)
    }

    /// Forget `name`.
    pub fn forget(&mut self, name: &str) {
        self.entries.remove(name);
    }

    /// Names indexed.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Write the index atomically.
    pub fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.entries).expect("index JSON");
        crate::state::write_atomic(&self.dir.join("index.json"), &bytes, 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_injective_and_outside_the_cache_files() {
        let ids = [
            "k:1",
            "k_1",
            "k_3a1",
            "index.json",
            "a-b.c",
            "c0482bc2-bf41-5d49-aaaa-a750174a186b",
            ".partial",
            "A",
            "a",
        ];
        let names: std::collections::BTreeSet<String> = ids.iter().map(|i| entry_name(i)).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
        assert_eq!(entry_name("k:1"), "img-k_3a1");
        assert_eq!(entry_name("k_1"), "img-k_5f1");
        assert_eq!(entry_name("index.json"), "img-index.json");
        for id in ids {
            let n = entry_name(id);
            assert!(n.starts_with("img-") && !n.contains('/'), "{n}");
            assert_eq!(entry_id(&n).as_deref(), Some(id));
        }
        // Long identifiers: a hashed name, short enough for any file system.
        let long = ":".repeat(128);
        let n = entry_name(&long);
        assert!(n.starts_with("img~") && n.len() == 68, "{n}");
        assert_ne!(n, entry_name(&":".repeat(127)));
        assert_eq!(entry_id(&n), None);
        // The cache's own names are not entries.
        for own in [
            "index.json",
            ".partial",
            "0123456789abcdef0123456789abcdef.disk",
        ] {
            assert_eq!(entry_id(own), None, "{own}");
        }
        assert_eq!(legacy_entry_name("k:1"), "k_1");
        assert_eq!(legacy_entry_name("k_1"), "k_1");
        // Partials and their markers never collide, whatever the names.
        assert_ne!(
            partial_name(&entry_name("x.digest")),
            marker_name(&entry_name("x"))
        );
    }

    #[test]
    fn sweep_keeps_only_wanted_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".partial");
        std::fs::create_dir_all(&p).unwrap();
        for f in [
            "img-a.part",
            "img-a.digest",
            "img-b.digest",
            "k_1",
            "k_1.digest",
        ] {
            std::fs::write(p.join(f), b"x").unwrap();
        }
        std::fs::write(dir.path().join("0123.qcow2.converting"), b"x").unwrap();
        std::fs::write(dir.path().join("img-b"), b"x").unwrap();
        sweep(dir.path(), &["img-a".to_string()].into());
        let mut left: Vec<String> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["img-a.digest", "img-a.part"]);
        assert!(dir.path().join("img-b").exists());
        assert!(!dir.path().join("0123.qcow2.converting").exists());
    }

    #[test]
    fn legacy_files_are_adopted_only_with_the_right_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k_1"), b"bytes of k:1").unwrap();
        let mut ix = Index::load(dir.path());
        ix.record("k_1", "sum-k-colon-1").unwrap();
        // k_1 (another identifier with the same old name): refused.
        assert!(ix
            .adopt("k_1", &entry_name("k_1"), "sum-k-underscore-1")
            .is_none());
        assert!(dir.path().join("k_1").exists());
        // k:1: taken over, still verified under its new name.
        let p = ix
            .adopt("k_1", &entry_name("k:1"), "sum-k-colon-1")
            .unwrap();
        assert_eq!(p, dir.path().join("img-k_3a1"));
        assert!(!dir.path().join("k_1").exists());
        assert!(ix.verified("img-k_3a1", "sum-k-colon-1").is_some());
        assert!(ix.verified("k_1", "sum-k-colon-1").is_none());
    }

    #[test]
    fn trusted_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let mut ix = Index::load(dir.path());
        assert!(ix.verified("a", "x").is_none());
        ix.record("a", "x").unwrap();
        ix.save().unwrap();
        let ix = Index::load(dir.path());
        assert!(ix.verified("a", "x").is_some());
        assert!(ix.verified("a", "y").is_none());
        // rewritten (new inode via rename): no longer trusted
        std::fs::write(dir.path().join("b"), b"hellO").unwrap();
        std::fs::rename(dir.path().join("b"), dir.path().join("a")).unwrap();
        assert!(ix.verified("a", "x").is_none());
    }
}
