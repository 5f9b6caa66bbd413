//! `appliance configure`: the first-boot wizard (interactive, `--answers FILE`,
//! or OpenStack user data).

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance configure` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `appliance configure`.
pub async fn run(_g: &GlobalArgs, _args: &Args) -> anyhow::Result<Outcome> {
    super::not_yet("configure", 10)
}
