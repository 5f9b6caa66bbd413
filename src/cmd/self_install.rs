//! `appliance self-install`: this binary and its units onto a running
//! appliance (in-place upgrade); `migrate` runs before the next job.

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance self-install` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `appliance self-install`.
pub fn run(_g: &GlobalArgs, _args: &Args) -> anyhow::Result<Outcome> {
    super::not_yet("self-install", 13)
}
