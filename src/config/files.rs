//! The file system side of loading: reading the configuration and the files
//! it refers to, and the permission rules for files that hold secrets.
//! Everything else in `config` works on text and values.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::ConfigError;

/// Read a text file; a problem is a whole-file [`ConfigError`] whose
/// message starts with `what`.
pub fn read_text(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read {what}: {}", e)))
}

/// Read a file that holds secrets: `Ok(None)` when it does not exist; an
/// error when it cannot be read, is not a regular file, or is accessible
/// by group or others (`mode & 0o077 != 0`).
pub fn read_secret_file(path: &Path) -> Result<Option<String>, ConfigError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                ConfigError::file(path, format!("cannot read secrets file: {}", e)).hint(
                    "check the `secrets-file` path and that the appliance's user can read it",
                ),
            );
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| ConfigError::file(path, format!("cannot read secrets file: {}", e)))?;
    if !meta.is_file() {
        return Err(
            ConfigError::file(path, "cannot read secrets file: not a regular file")
                .hint("`secrets-file` must name a YAML file"),
        );
    }
    let mode = meta.permissions().mode() & 0o7777;
    if let Some(what) = loose(mode) {
        return Err(ConfigError::file(
            path,
            format!("{what} secret file (mode {mode:04o}): only its owner may read it"),
        )
        .hint(format!("run `chmod 600 {}`", path.display())));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| ConfigError::file(path, format!("cannot read secrets file: {}", e)))?;
    Ok(Some(text))
}

/// Why a file mode is too open for secrets, if it is.
pub fn loose(mode: u32) -> Option<&'static str> {
    if mode & 0o004 != 0 {
        Some("world-readable")
    } else if mode & 0o003 != 0 {
        Some("world-writable")
    } else if mode & 0o040 != 0 {
        Some("group-readable")
    } else if mode & 0o030 != 0 {
        Some("group-writable")
    } else {
        None
    }
}

/// The permission bits of a file, if it can be stat'ed.
pub fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Whether something exists at `path`.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        assert_eq!(read_secret_file(&p).unwrap(), None);
        std::fs::write(&p, "openstack: {password: x}\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_secret_file(&p).unwrap().is_some());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret_file(&p).unwrap_err();
        assert_eq!(
            e.message,
            "world-readable secret file (mode 0644): only its owner may read it"
        );
        assert_eq!(e.hint.unwrap(), format!("run `chmod 600 {}`", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read_secret_file(&p)
            .unwrap_err()
            .message
            .starts_with("group-readable"));
        let e = read_secret_file(dir.path()).unwrap_err();
        assert_eq!(e.message, "cannot read secrets file: not a regular file");
        let e = read_secret_file(&p.join("below-a-file")).unwrap_err();
        assert_eq!(
            e.message,
            "cannot read secrets file: Not a directory (os error 20)"
        );
    }

    #[test]
    fn modes() {
        assert_eq!(loose(0o600), None);
        assert_eq!(loose(0o400), None);
        assert_eq!(loose(0o604), Some("world-readable"));
        assert_eq!(loose(0o602), Some("world-writable"));
        assert_eq!(loose(0o620), Some("group-writable"));
    }
}
