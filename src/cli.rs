//! The command line: global options and the whole subcommand tree of the
//! product. Each subcommand's own arguments live in its module under
//! `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default path of the site configuration.
pub const DEFAULT_CONFIG: &str = "/etc/fedcloud-appliance/appliance.yaml";

/// EGI FedCloud integration for an OpenStack site: accounting, information
/// publishing and image synchronisation in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "appliance",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success, 1 partial (some items failed), 2 configuration or usage error, 3 error."
)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Site configuration file.
    #[arg(long, global = true, env = "APPLIANCE_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Machine-readable JSON on stdout (and JSON log lines on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, global = true, env = "APPLIANCE_LOG")]
    pub log_level: Option<String>,
}

/// The subcommand tree.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// First-boot wizard: site, Keystone credentials, VO to project mapping,
    /// host certificate, trust anchors, /image_data, image sources; each
    /// answer tested before it is saved.
    Configure(crate::cmd::configure::Args),
    /// Accounting: extract usage into APEL records and send them to the ARGO
    /// Messaging Service.
    #[command(subcommand)]
    Accounting(crate::cmd::accounting::AccountingCommand),
    /// Information publishing: the site's GLUE 2.1 JSON.
    #[command(subcommand)]
    Info(crate::cmd::info::InfoCommand),
    /// Image synchronisation: signed image lists into Glance.
    #[command(subcommand)]
    Images(crate::cmd::images::ImagesCommand),
    /// State of every flow: last runs, queues, certificates, CRLs, alerts.
    Status(crate::cmd::status::Args),
    /// Check everything the jobs depend on, each failure with its remedy;
    /// `--inventory` lists what each VO project holds instead.
    Doctor(DoctorArgs),
    /// Migrate configuration and state across appliance releases.
    Migrate(crate::cmd::migrate::Args),
    /// Import the legacy appliance's files (caso.conf, voms.json,
    /// openstack.rc, image-lists.conf, atrope, cloudkeeper-os).
    ImportLegacy(crate::cmd::import_legacy::Args),
    /// Certificate revocation lists of the IGTF CA directory.
    #[command(subcommand)]
    Crl(crate::cmd::crl::CrlCommand),
    /// The appliance's systemd units and timers.
    #[command(subcommand)]
    Systemd(crate::cmd::systemd::SystemdCommand),
    /// Install this binary and its units onto this (running) appliance; the
    /// next boot or job runs `migrate` first.
    SelfInstall(crate::cmd::self_install::Args),
    /// Site configuration: check, show (secrets redacted), example.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `appliance config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and its secrets; report every problem at once.
    Check,
    /// Print the effective configuration, secrets redacted.
    Show,
    /// Print a commented example configuration.
    Example,
}

/// `appliance doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only this project (id or name).
    #[arg(long)]
    pub project: Option<String>,
    /// List servers (deleted ones included), images, flavors, volumes and
    /// floating IPs of each project, instead of the checks.
    #[arg(long)]
    pub inventory: bool,
}
