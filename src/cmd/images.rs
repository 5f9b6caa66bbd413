//! `appliance images sync|list|verify` (issue #3).

use clap::Subcommand;

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance images ...`
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// [not implemented yet] Synchronise subscribed image lists into Glance.
    Sync(SyncArgs),
    /// [not implemented yet] What is subscribed, cached and in Glance.
    List(ListArgs),
    /// [not implemented yet] Fetch and check a list without touching Glance.
    Verify(VerifyArgs),
}

/// Options of `appliance images sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {}

/// Options of `appliance images list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

/// Options of `appliance images verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}

/// Run `appliance images ...`.
pub async fn run(_g: &GlobalArgs, _c: &ImagesCommand) -> anyhow::Result<Outcome> {
    super::not_yet("images", 3)
}
