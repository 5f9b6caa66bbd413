//! One module per subcommand; `run` is the only dispatcher.

pub mod accounting;
mod config;
mod doctor;
pub mod images;
pub mod info;

use crate::cli::{Cli, Command};
use crate::exit::{Outcome, UsageError};

/// Run the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let g = &cli.global;
    match &cli.command {
        Command::Config(c) => config::run(g, c),
        Command::Doctor(args) => doctor::run(g, args).await,
        Command::Accounting(c) => accounting::run(g, c).await,
        Command::Info(c) => info::run(g, c).await,
        Command::Images(c) => images::run(g, c).await,
        Command::Configure => not_yet("configure", 0),
        Command::Status => not_yet("status", 0),
        Command::Migrate => not_yet("migrate", 0),
        Command::ImportLegacy => not_yet("import-legacy", 0),
    }
}

/// The honest answer for a subcommand that a later issue fills in.
pub(crate) fn not_yet(what: &str, issue: u32) -> anyhow::Result<Outcome> {
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
