//! `appliance crl refresh`: what fetch-crl does on grid hosts, for the IGTF
//! CA directory (the work is [`crate::trust::crl::refresh`]). Exit 0 when
//! every CA with a CRL URL got its CRL from this run, 1 when some failed
//! (their CRL in place stays), 3 when the directory cannot be read or
//! holds no CA.

use std::path::PathBuf;

use chrono::Utc;

use crate::cli::GlobalArgs;
use crate::config;
use crate::exit::{Outcome, UsageError};
use crate::trust::crl::{self, CaStatus, Options, Report};

/// `appliance crl ...`
#[derive(Debug, clap::Subcommand)]
pub enum CrlCommand {
    /// Download, verify and install the CRL of every CA in the CA directory.
    Refresh(RefreshArgs),
}

/// Options of `appliance crl refresh`.
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// The CA directory (default: `paths.ca-dir` of the configuration; with
    /// this option no configuration is needed).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Download and check every CRL, install nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run `appliance crl ...`.
pub async fn run(g: &GlobalArgs, c: &CrlCommand) -> anyhow::Result<Outcome> {
    match c {
        CrlCommand::Refresh(a) => refresh(g, a).await,
    }
}

async fn refresh(g: &GlobalArgs, a: &RefreshArgs) -> anyhow::Result<Outcome> {
    let ca_dir = match &a.ca_dir {
        Some(d) => d.clone(),
        None => {
            // Only the paths: this job runs as root without the right to
            // read the appliance user's secrets (its unit drops every
            // capability).
            let loaded = config::load_settings(&g.config)?;
            loaded.log_warnings();
            loaded.config.paths.ca_dir.clone()
        }
    };
    if !ca_dir.is_absolute() {
        return Err(UsageError(format!(
            "--ca-dir {}: give an absolute path",
            ca_dir.display()
        ))
        .into());
    }
    let mut opts = Options::new(Utc::now());
    opts.dry_run = a.dry_run;
    let report = crl::refresh(&ca_dir, &opts).await?;
    crate::state::runs::note_summary(report.summary_line());
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(report.outcome())
}

fn print_human(r: &Report) {
    println!(
        "CRLs of {}{}: {}",
        r.ca_dir.display(),
        if r.dry_run {
            " (dry run: nothing installed)"
        } else {
            ""
        },
        r.summary_line()
    );
    let when = |t: Option<chrono::DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    for c in &r.cas {
        let name = c.ca.rsplit_once("/CN=").map_or(c.ca.as_str(), |(_, cn)| cn);
        let word = match c.status {
            CaStatus::Updated => "updated",
            CaStatus::Unchanged => "unchanged",
            CaStatus::Failed => "FAILED",
            CaStatus::Skipped => "skipped",
        };
        let next = c.crl.as_ref().and_then(|i| i.next_update);
        match c.status {
            CaStatus::Skipped => {
                println!(
                    "  {word:<9}  {:<12} {name}: no .crl_url or .info file; CRL {}",
                    c.crl_file,
                    c.freshness.as_str()
                )
            }
            CaStatus::Failed => {
                println!(
                    "  {word:<9}  {:<12} {name}: kept the CRL in place ({}, next update {})",
                    c.crl_file,
                    c.freshness.as_str(),
                    when(next)
                );
                for f in &c.failures {
                    println!("             {}: {}", f.url, f.error);
                }
                if let Some(rem) = &c.remedy {
                    println!("             remedy: {rem}");
                }
            }
            _ => println!(
                "  {word:<9}  {:<12} {name}: next update {} (from {})",
                c.crl_file,
                when(next),
                c.url.as_deref().unwrap_or("?")
            ),
        }
    }
    for p in &r.problems {
        println!("  warning: {p}");
    }
}
