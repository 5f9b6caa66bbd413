//! `appliance migrate`: bring `appliance.yaml` and the local state to this
//! release's schemas (numbered steps in `crate::migrate`), atomically, with
//! a backup; `--dry-run` shows the diff. Run by appliance-migrate.service
//! at every boot, before any job: when there is nothing to do it reads two
//! small files, prints one line and exits 0.
//!
//! Also the check the jobs make first ([`gate`]): no unfinished migration,
//! and a state stamp of this release.

use std::io::Write;

use anyhow::Context;

use crate::cli::GlobalArgs;
use crate::exit::{Outcome, UsageError};
use crate::migrate::runner::{self, Options, Places};

/// `appliance migrate` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would change (a unified diff of every file, the renames)
    /// and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run `appliance migrate`.
pub fn run(g: &GlobalArgs, args: &Args) -> anyhow::Result<Outcome> {
    let opts = Options {
        config: g.config.clone(),
        dry_run: args.dry_run,
    };
    let report = runner::run(&opts, chrono::Utc::now())?;
    let text = if g.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.human()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(report.exit())
}

/// Before a scheduled job: refuse (exit 2, saying to run `appliance
/// migrate`) while a migration is unfinished or the state is of another
/// release. An old configuration is refused by the configuration loader
/// itself, with the same advice.
pub fn gate(g: &GlobalArgs) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(&g.config) else {
        return Ok(()); // the job reports an unreadable configuration itself
    };
    let doc = crate::config::yaml::Document::parse(&text).ok();
    let places = Places::of(doc.as_ref());
    crate::state::schema::gate(&places.state).map_err(|e| UsageError(e.to_string()).into())
}
