//! Accelerator (GPU) records: JSON `APEL-accelerator-message` version `0.1`
//! (spec accounting.md §1.4, §2.3; cASO `caso/record.py::AcceleratorRecord`
//! and `nova.py::_build_acc_records`).

use super::cloud::CloudRecord;
use super::ip::JsonObject;
use super::message::{ApelRecord, MessageKind};
use super::pyfmt::whole_seconds;
use super::{AccountingError, Site, Uuid, Window};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::collections::BTreeMap;

/// `MeasurementYear` / `MeasurementMonth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeasurementMonth {
    year: i32,
    month: u32,
}

impl MeasurementMonth {
    /// `month` is 1..=12.
    pub fn new(year: i32, month: u32) -> Result<Self, AccountingError> {
        if !(1..=12).contains(&month) {
            return Err(AccountingError::InvalidMonth { month });
        }
        Ok(Self { year, month })
    }

    /// The month `t` falls in (UTC).
    pub fn of(t: &DateTime<Utc>) -> Self {
        Self {
            year: t.year(),
            month: t.month(),
        }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1..=12.
    pub fn month(&self) -> u32 {
        self.month
    }

    fn start(&self) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .expect("valid month")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    }

    fn next(&self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

/// Flavor extra-spec keys (cASO `[accelerator]` defaults).
pub mod keys {
    /// `Accelerator:Type` (GPU, FPGA, Other).
    pub const TYPE: &str = "Accelerator:Type";
    /// `Accelerator:Vendor`.
    pub const VENDOR: &str = "Accelerator:Vendor";
    /// `Accelerator:Model`.
    pub const MODEL: &str = "Accelerator:Model";
    /// `Accelerator:Number` (devices per VM).
    pub const NUMBER: &str = "Accelerator:Number";
}

/// The accelerator a flavor provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceleratorFlavor {
    /// `Type`: GPU, FPGA or Other.
    pub kind: String,
    /// Vendor (`Model` is rendered as `"<vendor> <model>"`).
    pub vendor: String,
    /// Model.
    pub model: String,
    /// `Count`: devices per VM.
    pub count: u32,
}

impl AcceleratorFlavor {
    /// From a flavor's extra specs, as cASO reads them: `None` unless all
    /// four keys ([`keys`]) are present and non-empty. A `Number` that is
    /// not a whole number is an error (cASO fails the whole project on it).
    pub fn from_extra_specs(
        extra: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, AccountingError> {
        let get = |k: &str| extra.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let (Some(kind), Some(vendor), Some(model), Some(number)) = (
            get(keys::TYPE),
            get(keys::VENDOR),
            get(keys::MODEL),
            get(keys::NUMBER),
        ) else {
            return Ok(None);
        };
        let count =
            number
                .trim()
                .parse()
                .map_err(|_| AccountingError::InvalidAcceleratorCount {
                    value: number.to_string(),
                })?;
        Ok(Some(Self {
            kind: kind.into(),
            vendor: vendor.into(),
            model: model.into(),
            count,
        }))
    }
}

/// One VM's accelerator usage in one calendar month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceleratorRecord {
    /// `SiteName`, `CloudType`, `CloudComputeService`.
    pub site: Site,
    /// `AssociatedRecord`: the VM's `VMUUID` (`AssociatedRecordType` is
    /// always `cloud`).
    pub vm_uuid: Uuid,
    /// `GlobalUserName` (omitted when `None`).
    pub global_user_name: Option<String>,
    /// `FQAN`.
    pub fqan: String,
    /// `Count`.
    pub count: u32,
    /// `AvailableDuration`, seconds, cumulative within the month.
    pub available_duration: i64,
    /// `ActiveDuration`; `None` renders `AvailableDuration` (cASO never
    /// measures activity).
    pub active_duration: Option<i64>,
    /// `MeasurementMonth` / `MeasurementYear`.
    pub month: MeasurementMonth,
    /// `Type`.
    pub accelerator_type: String,
    /// `Cores` (omitted when `None`; cASO never sets it).
    pub cores: Option<u32>,
    /// `Model`.
    pub model: String,
}

impl ApelRecord for AcceleratorRecord {
    const KIND: MessageKind = MessageKind::Accelerator;

    /// One JSON object, keys in cASO's (pydantic field) order.
    fn render(&self) -> String {
        let mut o = JsonObject::new();
        o.str("SiteName", self.site.name());
        o.str("CloudType", self.site.cloud_type());
        o.str("CloudComputeService", self.site.service());
        o.str("AssociatedRecord", &self.vm_uuid.to_string());
        if let Some(name) = &self.global_user_name {
            o.text("GlobalUserName", name);
        }
        o.text("FQAN", &self.fqan);
        o.int("Count", self.count);
        o.int("AvailableDuration", self.available_duration);
        o.int("MeasurementMonth", self.month.month);
        o.int("MeasurementYear", self.month.year);
        o.str("AssociatedRecordType", "cloud");
        o.text("Type", &self.accelerator_type);
        if let Some(cores) = self.cores {
            o.int("Cores", cores);
        }
        o.text("Model", &self.model);
        o.int(
            "ActiveDuration",
            self.active_duration.unwrap_or(self.available_duration),
        );
        o.finish()
    }

    fn id(&self) -> String {
        format!("{}-{}-{}", self.vm_uuid, self.month.month, self.month.year)
    }
}

/// The accelerator records of one VM for a window, as cASO's
/// `_build_acc_records`: one per calendar month from the month of
/// `max(start, window.from)` to the month of `min(end, window.to)`, each with
/// `AvailableDuration = min(month end, window.to, end) - max(month start,
/// start)` (note: from the month start, not from `window.from`); months with
/// a negative duration are skipped. Works the same before or after
/// [`CloudRecord::fit_to_window`].
pub fn accelerator_records(
    vm: &CloudRecord,
    flavor: &AcceleratorFlavor,
    window: &Window,
) -> Vec<AcceleratorRecord> {
    let start = vm.start_time;
    let end = vm.end_time;
    let first = MeasurementMonth::of(&start.max(window.from()));
    let last = MeasurementMonth::of(&end.map_or(window.to(), |e| e.min(window.to())));
    let mut out = Vec::new();
    let mut month = first;
    while month <= last {
        let record_start = month.start().max(start);
        let mut record_end = month.next().start().min(window.to());
        if let Some(e) = end {
            record_end = record_end.min(e);
        }
        if record_end >= record_start {
            out.push(AcceleratorRecord {
                site: vm.site.clone(),
                vm_uuid: vm.vm_uuid,
                global_user_name: vm.global_user_name.clone(),
                fqan: vm.fqan.clone(),
                count: flavor.count,
                available_duration: whole_seconds(&record_start, &record_end),
                active_duration: None,
                month,
                accelerator_type: flavor.kind.clone(),
                cores: None,
                model: format!("{} {}", flavor.vendor, flavor.model),
            });
        }
        month = month.next();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::CloudStatus;
    use chrono::TimeZone;

    fn t(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, m, d, h, 0, 0).unwrap()
    }

    fn vm(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> CloudRecord {
        CloudRecord {
            site: Site::new("S", "S").unwrap(),
            vm_uuid: Uuid::from_bytes([1; 16]),
            machine_name: "gpu".into(),
            local_user_id: "u".into(),
            local_group_id: "g".into(),
            global_user_name: Some("user@egi.eu".into()),
            fqan: "vo".into(),
            status: CloudStatus::Started,
            start_time: start,
            end_time: end,
            suspend_duration: None,
            wall_duration: None,
            cpu_duration: None,
            cpu_count: 8,
            memory_mb: 1,
            disk_gb: 1,
            public_ip_count: 0,
            image_id: None,
            benchmark: None,
        }
    }

    fn gpu() -> AcceleratorFlavor {
        AcceleratorFlavor {
            kind: "GPU".into(),
            vendor: "NVIDIA".into(),
            model: "A100".into(),
            count: 2,
        }
    }

    fn months(rs: &[AcceleratorRecord]) -> Vec<(u32, i64)> {
        rs.iter()
            .map(|r| (r.month.month(), r.available_duration))
            .collect()
    }

    #[test]
    fn running_vm_spanning_months() {
        let w = Window::new(t(4, 10, 0), t(6, 2, 12)).unwrap();
        let rs = accelerator_records(&vm(t(3, 15, 0), None), &gpu(), &w);
        // April counts from April 1 (month start), not from the window start
        assert_eq!(
            months(&rs),
            vec![(4, 30 * 86400), (5, 31 * 86400), (6, 36 * 3600)]
        );
        assert_eq!(rs[0].model, "NVIDIA A100");
        assert_eq!(rs[0].id(), "01010101-0101-0101-0101-010101010101-4-2023");
    }

    #[test]
    fn fitting_to_the_window_does_not_change_them() {
        let w = Window::new(t(4, 10, 0), t(5, 2, 0)).unwrap();
        let mut r = vm(t(4, 20, 0), Some(t(5, 20, 0)));
        let before = accelerator_records(&r, &gpu(), &w);
        r.fit_to_window(&w);
        assert_eq!(accelerator_records(&r, &gpu(), &w), before);
        assert_eq!(months(&before), vec![(4, 11 * 86400), (5, 86400)]);
    }

    #[test]
    fn year_boundary() {
        let w = Window::new(
            Utc.with_ymd_and_hms(2022, 12, 1, 0, 0, 0).unwrap(),
            t(1, 1, 5),
        )
        .unwrap();
        let rs = accelerator_records(
            &vm(Utc.with_ymd_and_hms(2022, 12, 31, 23, 0, 0).unwrap(), None),
            &gpu(),
            &w,
        );
        let got: Vec<_> = rs
            .iter()
            .map(|r| (r.month.year(), r.month.month(), r.available_duration))
            .collect();
        assert_eq!(got, vec![(2022, 12, 3600), (2023, 1, 5 * 3600)]);
    }

    #[test]
    fn extra_specs() {
        let mut extra: BTreeMap<String, String> = [
            (keys::TYPE, "GPU"),
            (keys::VENDOR, "NVIDIA"),
            (keys::MODEL, "A100"),
            (keys::NUMBER, "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            AcceleratorFlavor::from_extra_specs(&extra).unwrap(),
            Some(gpu())
        );
        extra.insert(keys::NUMBER.into(), "0.5".into());
        assert_eq!(
            AcceleratorFlavor::from_extra_specs(&extra).unwrap_err(),
            AccountingError::InvalidAcceleratorCount {
                value: "0.5".into()
            }
        );
        extra.insert(keys::MODEL.into(), String::new());
        assert_eq!(AcceleratorFlavor::from_extra_specs(&extra).unwrap(), None);
    }

    #[test]
    fn month_validation() {
        assert!(MeasurementMonth::new(2023, 12).is_ok());
        assert_eq!(
            MeasurementMonth::new(2023, 13).unwrap_err(),
            AccountingError::InvalidMonth { month: 13 }
        );
        assert_eq!(
            MeasurementMonth::new(2023, 0).unwrap_err(),
            AccountingError::InvalidMonth { month: 0 }
        );
    }
}
