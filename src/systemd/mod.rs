//! The appliance under systemd: its units (compiled in from `systemd/`),
//! installing and enabling them into a root ([`install`]), applying the
//! configuration to them ([`apply_jobs`]: which job timers run and when;
//! [`apply_paths`]: what each sandboxed service may write), and the
//! first-boot banner ([`banner`]).
//!
//! Boot and run order (ARCHITECTURE.md): `appliance-migrate.service` on
//! every boot, then `appliance-firstboot.service` (first boot only: user
//! data, else the banner), then the job timers; each job service requires
//! the migration and is skipped until `/var/lib/fedcloud-appliance/.configured`
//! exists.

pub mod banner;
pub mod dropins;
pub mod install;
pub mod units;

pub use dropins::Paths;
pub use install::{apply, apply_jobs, apply_paths, install, paths_of, Configured, Report};
