//! `appliance migrate`: numbered configuration and state migrations across
//! appliance releases.

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance migrate` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `appliance migrate`.
pub fn run(_g: &GlobalArgs, _args: &Args) -> anyhow::Result<Outcome> {
    super::not_yet("migrate", 12)
}
