//! `appliance accounting extract|send|status`.

pub mod extract;
pub mod send;

use clap::Subcommand;

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance accounting ...`
#[derive(Debug, Subcommand)]
pub enum AccountingCommand {
    /// [not implemented yet] Extract usage records into the APEL spool.
    Extract(extract::Args),
    /// [not implemented yet] Send spooled records to AMS, signed.
    Send(send::Args),
    /// [not implemented yet] Queue depth, last send, quarantined messages.
    Status(send::StatusArgs),
}

/// Run `appliance accounting ...`.
pub async fn run(g: &GlobalArgs, c: &AccountingCommand) -> anyhow::Result<Outcome> {
    match c {
        AccountingCommand::Extract(a) => extract::run(g, a).await,
        AccountingCommand::Send(a) => send::run(g, a).await,
        AccountingCommand::Status(a) => send::status(g, a).await,
    }
}
