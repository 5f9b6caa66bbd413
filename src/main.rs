//! `appliance`: thin entry point. Parse the command line, start telemetry,
//! dispatch, and turn the outcome into an exit code. This is the only place
//! that exits.

use clap::Parser;
use fedcloud_appliance::{cli::Cli, cmd, exit, progress, telemetry};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.global.log_level.as_deref(), cli.global.json);
    progress::init(cli.global.json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::Outcome::Error.into();
        }
    };
    let outcome = runtime.block_on(cmd::run(cli));
    progress::shutdown();
    match outcome {
        Ok(o) => o.into(),
        Err(e) => {
            exit::report_error(&e);
            exit::outcome_of_error(&e).into()
        }
    }
}
