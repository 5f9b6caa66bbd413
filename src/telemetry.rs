//! Logging: journald (structured fields, syslog identifier `appliance`) when
//! running under systemd, JSON lines on stderr with `--json`, human lines on
//! stderr otherwise (printed above the progress bars on a terminal,
//! [`crate::progress`]). Level from `--log-level` / `APPLIANCE_LOG` (default `info`).

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Install the global subscriber. Safe to call once per process.
pub fn init(level: Option<&str>, json: bool) {
    let filter = EnvFilter::try_new(level.unwrap_or("info"))
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // Our own crates' noise stays out of the operator's view.
        .add_directive("hyper=warn".parse().expect("static directive"))
        .add_directive("reqwest=warn".parse().expect("static directive"));
    let registry = tracing_subscriber::registry().with(filter);
    if under_journald() {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = registry
                .with(layer.with_syslog_identifier("appliance".into()))
                .try_init();
            return;
        }
    }
    if json {
        let _ = registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init();
    } else {
        let _ = registry
            .with(
                fmt::layer()
                    .with_target(false)
                    // Colours only for a person at a terminal: a pipe or a
                    // file gets plain lines (no escape sequences).
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(crate::progress::StderrWriter),
            )
            .try_init();
    }
}

/// systemd sets `JOURNAL_STREAM` when stderr is connected to the journal.
fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}
