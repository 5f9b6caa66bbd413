//! `appliance accounting send|status` (issue #5).

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// Options of `appliance accounting send`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Options of `appliance accounting status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Run `send`.
pub async fn run(_g: &GlobalArgs, _a: &Args) -> anyhow::Result<Outcome> {
    super::super::not_yet("accounting send", 5)
}

/// Run `status`.
pub async fn status(_g: &GlobalArgs, _a: &StatusArgs) -> anyhow::Result<Outcome> {
    super::super::not_yet("accounting status", 5)
}
