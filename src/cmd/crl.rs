//! `appliance crl refresh`: what fetch-crl does on grid hosts, for the IGTF
//! CA directory.

use crate::cli::GlobalArgs;
use crate::exit::Outcome;

/// `appliance crl ...`
#[derive(Debug, clap::Subcommand)]
pub enum CrlCommand {
    /// Download, verify and install the CRL of every CA in the CA directory.
    Refresh,
}

/// Run `appliance crl ...`.
pub async fn run(_g: &GlobalArgs, _c: &CrlCommand) -> anyhow::Result<Outcome> {
    super::not_yet("crl refresh", 11)
}
