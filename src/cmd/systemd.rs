//! `appliance systemd install`: the appliance's units and timers, installed
//! and enabled (the image builder and `configure` use it).

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance systemd ...`
#[derive(Debug, clap::Subcommand)]
pub enum SystemdCommand {
    /// Install and enable the units.
    Install,
}

/// Run `appliance systemd ...`.
pub fn run(_g: &GlobalArgs, _c: &SystemdCommand) -> anyhow::Result<Outcome> {
    super::not_yet("systemd install", 11)
}
