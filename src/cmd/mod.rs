//! One module per subcommand; `run` is the only dispatcher.

mod config;
mod doctor;

use crate::cli::{AccountingCommand, Cli, Command, ImagesCommand, InfoCommand};
use crate::exit::{Outcome, UsageError};

/// Run the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let g = &cli.global;
    match &cli.command {
        Command::Config(c) => config::run(g, c),
        Command::Doctor(args) => doctor::run(g, args).await,
        Command::Configure => not_yet("configure", 0),
        Command::Accounting(AccountingCommand::Extract) => not_yet("accounting extract", 4),
        Command::Accounting(AccountingCommand::Send | AccountingCommand::Status) => {
            not_yet("accounting send/status", 5)
        }
        Command::Info(InfoCommand::Show | InfoCommand::Publish) => not_yet("info", 6),
        Command::Images(ImagesCommand::Sync | ImagesCommand::List | ImagesCommand::Verify) => {
            not_yet("images", 3)
        }
        Command::Status => not_yet("status", 0),
        Command::Migrate => not_yet("migrate", 0),
        Command::ImportLegacy => not_yet("import-legacy", 0),
    }
}

/// The honest answer for a subcommand that a later issue fills in.
fn not_yet(what: &str, issue: u32) -> anyhow::Result<Outcome> {
    let tracked = if issue > 0 {
        format!(" (tracked in issue #{issue})")
    } else {
        String::new()
    };
    Err(UsageError(format!(
        "`appliance {what}` is not implemented yet{tracked}"
    ))
    .into())
}
