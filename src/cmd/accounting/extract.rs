//! `appliance accounting extract` (issue #4).

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// Options of `appliance accounting extract`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run it.
pub async fn run(_g: &GlobalArgs, _a: &Args) -> anyhow::Result<Outcome> {
    super::super::not_yet("accounting extract", 4)
}
