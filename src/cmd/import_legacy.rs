//! `appliance import-legacy`: the legacy appliance's files into one
//! `appliance.yaml` plus the secrets file, with a report of every key.

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance import-legacy` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `appliance import-legacy`.
pub async fn run(_g: &GlobalArgs, _args: &Args) -> anyhow::Result<Outcome> {
    super::not_yet("import-legacy", 12)
}
