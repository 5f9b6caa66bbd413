//! Accounting domain: usage facts -> APEL records -> messages for the spool.
//!
//! This module owns the record types cASO 5.x produces and their renderings,
//! byte-compatible with `caso/record.py` and `caso/messenger/ssm.py`
//! (spec `accounting.md` §2; golden files rendered by cASO itself in
//! `tests/fixtures/accounting/golden/`, made by `scripts/golden/accounting.py`):
//!
//! - [`CloudRecord`]: `APEL-cloud-message: v0.4`, sorted `Key: value` lines;
//! - [`IpRecord`]: JSON `APEL Public IP message` `0.2`;
//! - [`AcceleratorRecord`]: JSON `APEL-accelerator-message` `0.1`;
//! - [`StorageRecord`]: EMI StAR XML.
//!
//! [`render_messages`] / [`render_all`] frame records into messages of at most
//! 100 records and a byte cap ([`BatchLimits`]) so none can hit the AMS size
//! limit. Every free-text value is sanitised at render time
//! ([`sanitize::apel_text`]: ASCII only, no control characters, no `%%`,
//! APEL column widths).
//!
//! It also holds the pure parts of cASO's extraction rules that decide record
//! values: the Nova status map ([`CloudStatus::from_nova`]), start/end times
//! ([`ServerTimes`]), the window ([`Window`], [`CloudRecord::fit_to_window`])
//! and the monthly accelerator split ([`accelerator_records`]); and
//! [`mapping`], which turns one project's OpenStack data into records.
//!
//! Architecture invariant: no I/O and no clock here. Every time (window
//! bounds, measurement times) and every random id is passed in; all times are
//! UTC (`chrono::Utc`), never the host's zone (a cASO bug, spec §1.8).

mod accelerator;
mod cloud;
mod error;
mod ip;
pub mod mapping;
mod message;
mod pyfmt;
pub mod sanitize;
mod site;
mod storage;
mod uuid;
pub mod vo;
mod window;

pub use accelerator::{
    accelerator_records, keys as accelerator_keys, AcceleratorFlavor, AcceleratorRecord,
    MeasurementMonth,
};
pub use cloud::{Benchmark, CloudRecord, CloudStatus, ServerTimes};
pub use error::AccountingError;
pub use ip::{IpRecord, IpVersion};
pub use mapping::{
    project_records, FlavorSpec, Mapped, MappingOptions, MappingWarning, ProjectFacts,
};
pub use message::{
    render_all, render_messages, ApelRecord, BatchLimits, Message, MessageKind, Record,
};
pub use site::{Site, CLOUD_TYPE};
pub use storage::{StorageRecord, STAR_NAMESPACE};
pub use uuid::Uuid;
pub use vo::{check_vo_name, InvalidVoName};
pub use window::Window;
