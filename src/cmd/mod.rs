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

use chrono::Utc;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::exit::Outcome;
use crate::state::runs::{self, RunOutcome, RunRecord};

/// Run the chosen subcommand. The five scheduled jobs (not their dry runs)
/// leave a record of the run in `<state>/runs/<job>.json` for `status`.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Some(job) = job_of(&cli.command) else {
        return dispatch(&cli).await;
    };
    let started = Utc::now();
    let (result, note) = runs::noting(dispatch(&cli)).await;
    record(&cli.global, job, started, &result, note);
    result
}

/// The scheduled job a command line runs, if it is one (dry runs and
/// partial modes are not the job's run).
fn job_of(c: &Command) -> Option<&'static str> {
    use accounting::AccountingCommand as A;
    match c {
        Command::Accounting(A::Extract(a)) if !a.dry_run => Some("accounting-extract"),
        Command::Accounting(A::Send(a)) if !a.dry_run => Some("accounting-send"),
        Command::Info(info::InfoCommand::Publish(a)) if !a.dry_run => Some("info-publish"),
        Command::Images(images::ImagesCommand::Sync(a)) if !a.dry_run && !a.download_only => {
            Some("images-sync")
        }
        Command::Crl(crl::CrlCommand::Refresh(a)) if !a.dry_run => Some("crl-refresh"),
        _ => None,
    }
}

/// Write the run record; a failure to do so only warns (the job's own
/// outcome stands).
fn record(
    g: &GlobalArgs,
    job: &'static str,
    started: chrono::DateTime<Utc>,
    result: &anyhow::Result<Outcome>,
    note: runs::Note,
) {
    let finished = Utc::now();
    let outcome = match result {
        Ok(o) => *o,
        Err(e) => crate::exit::outcome_of_error(e),
    };
    let summary = match (result, note.summary) {
        (Err(e), _) => first_line(&format!("{e:#}")),
        (Ok(_), Some(s)) => s,
        (Ok(o), None) => RunOutcome::from(*o).as_str().to_string(),
    };
    let state = match crate::config::load_settings(&g.config) {
        Ok(l) => l.config.paths.state,
        Err(_) => {
            tracing::warn!(
                job,
                config = %g.config.display(),
                "this run is not recorded for `appliance status`: the configuration does not load"
            );
            return;
        }
    };
    let rec = RunRecord {
        schema: runs::RECORD_SCHEMA,
        job: job.to_string(),
        argv: std::env::args().skip(1).collect(),
        pid: std::process::id(),
        started,
        finished,
        duration_seconds: (finished - started).num_milliseconds() as f64 / 1000.0,
        outcome: outcome.into(),
        exit_code: outcome.code(),
        summary,
        detail: note.detail,
        last_success: None,
    };
    if let Err(e) = runs::write(&state, &rec) {
        tracing::warn!(job, dir = %runs::dir(&state).display(), error = %e, "could not write the run record (`appliance status` will not show this run)");
    }
}

/// The first line of a message, at most 500 characters.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(500) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<Outcome> {
    let g = &cli.global;
    if job_of(&cli.command).is_some() {
        migrate::gate(g)?;
    }
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
