//! fedcloud-appliance: the EGI FedCloud integration of an OpenStack site in
//! one binary. Start at `ARCHITECTURE.md` for the map of modules, the
//! invariants and the boot order.

#![warn(missing_docs)]

pub mod accounting;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod dns;
pub mod doctor;
pub mod exit;
pub mod images;
pub mod info;
pub mod legacy;
pub mod messaging;
pub mod migrate;
pub mod openstack;
pub mod progress;
pub mod pyjson;
pub mod redact;
pub mod release;
pub mod scheme;
pub mod secret;
pub mod setup;
pub mod spool;
pub mod state;
pub mod status;
pub mod systemd;
pub mod telemetry;
#[cfg(feature = "testsrv")]
pub mod testsrv;
pub mod tls;
pub mod trust;
