//! `appliance status`: the state of every flow on one screen, `--json`
//! (`docs/status-json.md`) or `--nagios`, from local state only
//! ([`crate::status`]). Exit 0 healthy, 1 warnings, 3 errors; with
//! `--nagios` the plugin codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the
//! configuration cannot be read). Without `--nagios` a configuration that
//! does not load is exit 2, as for every command.

use chrono::Utc;

use crate::cli::GlobalArgs;
use crate::config;
use crate::exit::Outcome;
use crate::status::{evaluate, gather, render, timers};

/// `appliance status` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One line for a Nagios/Icinga check (ARGO is Nagios-based): state,
    /// the first problem, and performance data; plugin exit codes 0-3.
    #[arg(long, conflicts_with = "json")]
    pub nagios: bool,
}

/// Run `appliance status`.
pub async fn run(g: &GlobalArgs, args: &Args) -> anyhow::Result<Outcome> {
    let loaded = match config::load(&g.config) {
        Ok(l) => l,
        Err(e) if args.nagios => {
            println!(
                "APPLIANCE UNKNOWN - the configuration {} does not load: {}",
                g.config.display(),
                e.errors
                    .first()
                    .map(|x| x.to_string().replace('|', "/"))
                    .unwrap_or_default()
            );
            return Ok(Outcome::Error);
        }
        Err(e) => return Err(e.into()),
    };
    let jobs = loaded.config.components.jobs();
    let units: Vec<String> = jobs.iter().map(|j| gather::timer_unit(j.name)).collect();
    let timers = timers::query(&units);
    let mut status = gather::gather(&loaded, Utc::now(), &timers);
    evaluate::evaluate(&mut status, &evaluate::Thresholds::default());
    if args.nagios {
        println!("{}", render::nagios(&status));
        // The plugin's codes coincide with the outcomes' exit codes: 2
        // (CRITICAL) goes out as `Usage`'s code, 3 (UNKNOWN) as `Error`'s.
        return Ok(match status.health.nagios_code() {
            0 => Outcome::Success,
            1 => Outcome::Partial,
            _ => Outcome::Usage,
        });
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render::screen(&status));
    }
    Ok(match status.health {
        crate::status::Health::Ok => Outcome::Success,
        crate::status::Health::Warning => Outcome::Partial,
        crate::status::Health::Error => Outcome::Error,
    })
}
