//! `appliance info show|publish` (issue #6).

use clap::Subcommand;

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance info ...`
#[derive(Debug, Subcommand)]
pub enum InfoCommand {
    /// [not implemented yet] Print the GLUE 2.1 JSON document.
    Show(ShowArgs),
    /// [not implemented yet] Publish the document (file, Swift or AMS).
    Publish(PublishArgs),
}

/// Options of `appliance info show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {}

/// Options of `appliance info publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {}

/// Run `appliance info ...`.
pub async fn run(_g: &GlobalArgs, _c: &InfoCommand) -> anyhow::Result<Outcome> {
    super::not_yet("info", 6)
}
