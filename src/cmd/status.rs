//! `appliance status`: the state of every flow on one screen, `--json` or
//! `--nagios`.

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance status` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `appliance status`.
pub async fn run(_g: &GlobalArgs, _args: &Args) -> anyhow::Result<Outcome> {
    super::not_yet("status", 11)
}
