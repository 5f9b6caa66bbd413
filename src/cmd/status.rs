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
    /// Free space of paths.image-data below which it is a warning, in
    /// percent.
    #[arg(long, value_name = "PERCENT", default_value_t = evaluate::Thresholds::default().free_warning_percent, value_parser = percent)]
    pub image_data_warning: f64,
    /// Free space of paths.image-data below which it is an error (Nagios
    /// CRITICAL), in percent (see also --image-data-critical-gib).
    #[arg(long, value_name = "PERCENT", default_value_t = evaluate::Thresholds::default().free_error_percent, value_parser = percent)]
    pub image_data_critical: f64,
    /// Free space of paths.image-data below which it is an error too, in
    /// GiB.
    #[arg(long, value_name = "GIB", default_value_t = evaluate::Thresholds::default().free_error_bytes as f64 / GIB, value_parser = gib)]
    pub image_data_critical_gib: f64,
}

const GIB: f64 = (1u64 << 30) as f64;

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage from 0 to 100")),
    }
}

fn gib(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(g) if g.is_finite() && g >= 0.0 => Ok(g),
        _ => Err(format!("`{s}` is not a number of GiB (0 or more)")),
    }
}

impl Args {
    /// The thresholds of this run: the defaults, with the free space ones
    /// given on the command line (a site's own volume, or its monitoring's
    /// levels).
    fn thresholds(&self) -> evaluate::Thresholds {
        evaluate::Thresholds {
            free_warning_percent: self.image_data_warning,
            free_error_percent: self.image_data_critical,
            free_error_bytes: (self.image_data_critical_gib * GIB) as u64,
            ..evaluate::Thresholds::default()
        }
    }
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
    let thresholds = args.thresholds();
    evaluate::evaluate(&mut status, &thresholds);
    if args.nagios {
        println!("{}", render::nagios(&status, &thresholds));
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
