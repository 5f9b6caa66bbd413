//! OpenStack user data: is it ours?
//!
//! Our user data is an answers file (the same YAML as `appliance configure
//! --answers`) whose **first line is `#appliance-config`**, the way
//! cloud-init recognises `#cloud-config`. Anything else (a `#cloud-config`
//! document, a `#!` script, MIME multipart, gzip, ...) belongs to another
//! tool and is left alone: the first-boot unit then configures nothing and
//! says so.

/// The first line that marks our user data.
pub const MARKER: &str = "#appliance-config";

/// What the user data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserData {
    /// None, or empty.
    Empty,
    /// Ours: the answers text (the marker line is a YAML comment).
    Ours(String),
    /// Someone else's: a short description of what it looks like.
    Foreign(String),
}

/// Classify user data.
pub fn classify(bytes: &[u8]) -> UserData {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return UserData::Foreign("gzip-compressed data".into());
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return UserData::Empty;
    }
    let first = text.lines().next().unwrap_or("").trim_end();
    let is_ours = first == MARKER
        || first
            .strip_prefix(MARKER)
            .is_some_and(|rest| rest.starts_with([' ', '\t']));
    if is_ours {
        return UserData::Ours(text.to_string());
    }
    let kind = if first.starts_with("#cloud-config") {
        "a cloud-init `#cloud-config` document".to_string()
    } else if first.starts_with("#!") {
        "a script".to_string()
    } else if first.to_ascii_lowercase().starts_with("content-type:")
        || first.to_ascii_lowercase().starts_with("mime-version:")
    {
        "a MIME multipart document".to_string()
    } else {
        let shown: String = first.chars().take(40).collect();
        format!("data starting with `{shown}`")
    };
    UserData::Foreign(kind)
}

/// The firmware's (DMI) description of the machine, as
/// `/sys/class/dmi/id/{sys_vendor,product_name,chassis_asset_tag}` give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    /// `sys_vendor`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `chassis_asset_tag`.
    pub chassis_asset_tag: String,
}

/// Is this machine an OpenStack instance, whose metadata service is worth
/// waiting for? The same test as cloud-init's `ds-identify` on x86: Nova
/// names itself in the product name or the chassis asset tag (some clouds
/// only there). Elsewhere (VirtualBox, VMware, plain QEMU) there is no
/// metadata service and asking it would only delay the first boot.
pub fn is_openstack(dmi: &Dmi) -> bool {
    const PRODUCTS: [&str; 2] = ["OpenStack Nova", "OpenStack Compute"];
    const ASSET_TAGS: [&str; 6] = [
        "OpenStack Nova",
        "OpenStack Compute",
        "OpenTelekomCloud",
        "SAP CCloud VM",
        "HUAWEICLOUD",
        "Samsung Cloud Platform",
    ];
    let product = dmi.product_name.trim();
    let tag = dmi.chassis_asset_tag.trim();
    PRODUCTS.iter().any(|p| product.starts_with(p))
        || ASSET_TAGS.contains(&tag)
        || dmi.sys_vendor.trim() == "OpenStack Foundation"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_our_marker() {
        let ours = "#appliance-config\nsite:\n  name: X\n";
        assert_eq!(classify(ours.as_bytes()), UserData::Ours(ours.into()));
        assert!(matches!(
            classify(b"#appliance-config  v1\nsite: {}\n"),
            UserData::Ours(_)
        ));
        assert!(matches!(
            classify(b"#appliance-configure\n"),
            UserData::Foreign(_)
        ));
        assert_eq!(
            classify(b"#cloud-config\npackages: [vim]\n"),
            UserData::Foreign("a cloud-init `#cloud-config` document".into())
        );
        assert_eq!(
            classify(b"#!/bin/sh\n"),
            UserData::Foreign("a script".into())
        );
        assert_eq!(classify(b"  \n"), UserData::Empty);
        assert_eq!(
            classify(&[0x1f, 0x8b, 0]),
            UserData::Foreign("gzip-compressed data".into())
        );
        assert!(matches!(
            classify("\u{feff}#appliance-config\n".as_bytes()),
            UserData::Ours(_)
        ));
    }

    #[test]
    fn openstack_is_told_by_dmi_as_cloud_init_does() {
        let dmi = |v: &str, p: &str, t: &str| Dmi {
            sys_vendor: v.into(),
            product_name: p.into(),
            chassis_asset_tag: t.into(),
        };
        assert!(is_openstack(&dmi(
            "OpenStack Foundation",
            "OpenStack Nova",
            ""
        )));
        assert!(is_openstack(&dmi("RDO", "OpenStack Compute\n", "")));
        assert!(is_openstack(&dmi("QEMU", "Standard PC", "HUAWEICLOUD\n")));
        assert!(is_openstack(&dmi("OpenStack Foundation", "", "")));
        assert!(!is_openstack(&dmi(
            "QEMU",
            "Standard PC (i440FX + PIIX, 1996)",
            ""
        )));
        assert!(!is_openstack(&dmi("innotek GmbH", "VirtualBox", "")));
        assert!(!is_openstack(&dmi(
            "VMware, Inc.",
            "VMware Virtual Platform",
            "No Asset Tag"
        )));
        assert!(!is_openstack(&Dmi::default()));
    }
}
