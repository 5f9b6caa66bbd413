//! The image release file, `/etc/fedcloud-appliance/release`: `KEY=VALUE`
//! lines (comments with `#`), written by `scripts/build-image` and updated by
//! `appliance self-install`. Pure: text in, text out.
//!
//! ```text
//! # fedcloud-appliance image release (written by scripts/build-image)
//! APPLIANCE_VERSION=0.1.0
//! APPLIANCE_BUILD_EPOCH=1764690000
//! DEBIAN_SUITE=trixie
//! DEBIAN_VERSION=13.2
//! ```
//!
//! After an in-place upgrade `APPLIANCE_VERSION` is the running binary's and
//! `APPLIANCE_IMAGE_VERSION` keeps the version the image was built with.

/// Where the release file lives (under the root of the system).
pub const PATH: &str = "etc/fedcloud-appliance/release";

/// The value of `key`, if present.
pub fn get<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

/// `text` with `key` set to `value` (the line replaced in place, or added
/// at the end); every other line kept as it was.
pub fn set(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.lines() {
        let is_key = !line.trim_start().starts_with('#')
            && line.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if is_key {
            if !done {
                out.push_str(&format!("{key}={value}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// The release file after installing `version` onto a system whose release
/// file is `old` (empty when there was none): `APPLIANCE_VERSION` becomes
/// `version`, and the first upgrade records the image's own version in
/// `APPLIANCE_IMAGE_VERSION`.
pub fn upgraded(old: &str, version: &str) -> String {
    let mut text = if old.trim().is_empty() {
        "# fedcloud-appliance release (written by appliance self-install)\n".to_string()
    } else {
        old.to_string()
    };
    if get(&text, "APPLIANCE_IMAGE_VERSION").is_none() {
        if let Some(image) = get(&text, "APPLIANCE_VERSION").map(str::to_string) {
            if image != version {
                text = set(&text, "APPLIANCE_IMAGE_VERSION", &image);
            }
        }
    }
    set(&text, "APPLIANCE_VERSION", version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "# fedcloud-appliance image release (written by scripts/build-image)\n\
APPLIANCE_VERSION=0.1.0\nAPPLIANCE_BUILD_EPOCH=1764690000\nDEBIAN_SUITE=trixie\nDEBIAN_VERSION=13.2\n";

    #[test]
    fn reads_keys_and_ignores_comments() {
        assert_eq!(get(IMAGE, "APPLIANCE_VERSION"), Some("0.1.0"));
        assert_eq!(get(IMAGE, "DEBIAN_VERSION"), Some("13.2"));
        assert_eq!(get("# APPLIANCE_VERSION=9\n", "APPLIANCE_VERSION"), None);
        assert_eq!(get(IMAGE, "NOPE"), None);
    }

    #[test]
    fn upgrade_keeps_the_image_version_and_every_other_line() {
        let once = upgraded(IMAGE, "0.2.0");
        assert_eq!(
            once,
            "# fedcloud-appliance image release (written by scripts/build-image)\n\
APPLIANCE_VERSION=0.2.0\nAPPLIANCE_BUILD_EPOCH=1764690000\nDEBIAN_SUITE=trixie\nDEBIAN_VERSION=13.2\n\
APPLIANCE_IMAGE_VERSION=0.1.0\n"
        );
        // A second upgrade keeps the image's version, not the intermediate one.
        let twice = upgraded(&once, "0.3.0");
        assert_eq!(get(&twice, "APPLIANCE_VERSION"), Some("0.3.0"));
        assert_eq!(get(&twice, "APPLIANCE_IMAGE_VERSION"), Some("0.1.0"));
        // Installing the same version again changes nothing.
        assert_eq!(upgraded(IMAGE, "0.1.0"), IMAGE);
    }

    #[test]
    fn a_system_without_release_file_gets_one() {
        let text = upgraded("", "0.2.0");
        assert!(text.starts_with('#'));
        assert_eq!(get(&text, "APPLIANCE_VERSION"), Some("0.2.0"));
        assert_eq!(get(&text, "APPLIANCE_IMAGE_VERSION"), None);
    }
}
