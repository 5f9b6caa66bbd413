//! The image cache under `paths.image-data`: one directory per list
//! (`<image-data>/<list>/`), verified downloads named by image identifier,
//! derived files (OVA disks, conversions) named by the source digest so
//! they are made once, and a sidecar index (`index.json`: file, size, mtime,
//! inode, sha512) so an unchanged cached file is never hashed again.
//!
//! A cache entry is trusted only when the file's size, mtime and inode are
//! exactly those recorded when its digest was computed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
