//! One module per subcommand; `run` is the only dispatcher.

pub mod accounting;
mod config;
pub mod configure;
pub mod crl;
mod doctor;
pub mod images;
pub mod import_legacy;
pub mod info;
pub mod migrate;
pub mod self_install;
pub mod status;
pub mod systemd;

use crate::cli::{Cli, Command};
use crate::exit::{Outcome, UsageError};

/// Run the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let g = &cli.global;
    migrate::gate(g, &cli.command)?;
    match &cli.command {
        Command::Config(c) => config::run(g, c),
        Command::Doctor(args) => doctor::run(g, args).await,
        Command::Accounting(c) => accounting::run(g, c).await,
        Command::Info(c) => info::run(g, c).await,
        Command::Images(c) => images::run(g, c).await,
        Command::Configure(args) => configure::run(g, args).await,
        Command::Status(args) => status::run(g, args).await,
        Command::Migrate(args) => migrate::run(g, args),
        Command::ImportLegacy(args) => import_legacy::run(g, args).await,
        Command::Crl(c) => crl::run(g, c).await,
        Command::Systemd(c) => systemd::run(g, c),
        Command::SelfInstall(args) => self_install::run(g, args),
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
