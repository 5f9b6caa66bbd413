//! `appliance import-legacy`: the legacy EGI FedCloud appliance (the
//! Docker-based VM of 2016–2022: cASO, ssmsend, cloud-info-provider,
//! atrope or cloudkeeper + cloudkeeper-os) turned into one `appliance.yaml`
//! and its secrets file, without an accounting gap (spec
//! `legacy-appliance.md`).
//!
//! - [`snapshot`]: the legacy files, read once from a root directory;
//! - [`layout`]: which of the eight layouts (A–H) they are (§6.4);
//! - [`ini`], [`rc`], [`cron`]: the file formats (oslo.config and Python
//!   INI, tolerant of the whitespace-damaged files some releases shipped;
//!   `openstack.rc`; cron);
//! - [`convert`]: the legacy keys -> the schema-2 configuration, secrets and
//!   a [`report::Ledger`] entry for every key (pure);
//! - [`carry`]: the state: cASO's lastrun files re-keyed to the new
//!   projects, the outgoing dirq spool taken over, the host certificate.
//!
//! Everything but [`snapshot::Snapshot::read`] and [`carry`] is pure.

pub mod carry;
pub mod convert;
pub mod cron;
pub mod ini;
pub mod layout;
pub mod rc;
pub mod report;
pub mod snapshot;

pub use layout::{detect, Detected, Layout};
pub use snapshot::Snapshot;
