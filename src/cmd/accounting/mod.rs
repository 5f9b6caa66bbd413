//! `appliance accounting extract|send|status`.

pub mod extract;
pub mod send;

use clap::Subcommand;

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance accounting ...`
#[derive(Debug, Subcommand)]
pub enum AccountingCommand {
    /// Extract usage records into the APEL spool.
    Extract(extract::Args),
    /// Send spooled records to AMS, signed; refused ones go to the quarantine.
    Send(send::Args),
    /// Queue depth, oldest message, last send, quarantined messages.
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
