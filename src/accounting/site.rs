//! The fields every record carries about who publishes it (cASO's
//! `_BaseRecord`: `SiteName`, `CloudComputeService`, `CloudType`).

use super::sanitize::{is_apel_safe, MAX_FIELD_LEN};
use super::AccountingError;

/// `CloudType` of records the appliance produces.
pub const CLOUD_TYPE: &str = concat!(
    "fedcloud-appliance/",
    env!("CARGO_PKG_VERSION"),
    " (OpenStack)"
);

/// The publishing site and service. Unlike free-text record values these are
/// validated, not sanitised: a site name APEL would store altered (or a GOCDB
/// name that is not ASCII) is a configuration error, not something to fix up
/// silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    name: String,
    service: String,
    cloud_type: String,
}

impl Site {
    /// `name` is the GOCDB site name (`SiteName`, StAR `Site`); `service`
    /// the `CloudComputeService` (StAR `StorageSystem`; cASO's `service_name`,
    /// which defaults to the site name). `CloudType` is [`CLOUD_TYPE`].
    pub fn new(name: &str, service: &str) -> Result<Self, AccountingError> {
        Self::with_cloud_type(name, service, CLOUD_TYPE)
    }

    /// Like [`Site::new`] with an explicit `CloudType` (tests reproducing
    /// cASO use `caso/5.2.2 (OpenStack)`).
    pub fn with_cloud_type(
        name: &str,
        service: &str,
        cloud_type: &str,
    ) -> Result<Self, AccountingError> {
        Ok(Self {
            name: checked("SiteName", name)?,
            service: checked("CloudComputeService", service)?,
            cloud_type: checked("CloudType", cloud_type)?,
        })
    }

    /// `SiteName`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `CloudComputeService`.
    pub fn service(&self) -> &str {
        &self.service
    }
    /// `CloudType`.
    pub fn cloud_type(&self) -> &str {
        &self.cloud_type
    }
}

fn checked(field: &'static str, value: &str) -> Result<String, AccountingError> {
    let reason = if value.trim().is_empty() {
        Some("is empty")
    } else if !is_apel_safe(value) {
        Some("must be printable ASCII without \"%%\"")
    } else if value.len() > MAX_FIELD_LEN {
        Some("is longer than 255 characters")
    } else if value.trim() != value {
        Some("has leading or trailing white space")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(AccountingError::InvalidSiteValue {
            field,
            value: value.to_string(),
            reason,
        }),
        None => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_site() {
        let s = Site::new("TEST-Site", "TEST-Site").unwrap();
        assert_eq!(s.name(), "TEST-Site");
        assert!(s.cloud_type().starts_with("fedcloud-appliance/"));
    }

    #[test]
    fn invalid_values_are_errors_naming_the_field() {
        for (name, reason) in [
            ("", "is empty"),
            ("Müller-Cloud", "must be printable ASCII without \"%%\""),
            ("a%%b", "must be printable ASCII without \"%%\""),
            ("a\nb", "must be printable ASCII without \"%%\""),
            (" SITE", "has leading or trailing white space"),
        ] {
            let err = Site::new(name, "svc").unwrap_err();
            assert_eq!(
                err,
                AccountingError::InvalidSiteValue {
                    field: "SiteName",
                    value: name.into(),
                    reason
                }
            );
        }
        let long = "s".repeat(256);
        assert!(matches!(
            Site::new("ok", &long),
            Err(AccountingError::InvalidSiteValue {
                field: "CloudComputeService",
                ..
            })
        ));
    }
}
