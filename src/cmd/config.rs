//! `appliance config check|show|example`.
//!
//! `check` prints its report on stdout — `OK: FILE` and any warnings, or
//! every error (`FILE:LINE:COL: KEY.PATH: message; hint`), the warnings and
//! a `FAILED:` summary — and exits 2 on errors. With `--json` the report is
//! `{"ok", "file", "errors": [{file, line, column, path, message, hint}],
//! "warnings": [...]}`. `show` prints the effective configuration with
//! secrets redacted; `example` the commented example file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::config::{self, ConfigErrors, Loaded};
use crate::exit::Outcome;

/// Run `appliance config <c>`.
pub fn run(g: &GlobalArgs, c: &ConfigCommand) -> anyhow::Result<Outcome> {
    match c {
        ConfigCommand::Example => {
            emit(config::example())?;
            Ok(Outcome::Success)
        }
        ConfigCommand::Check => {
            let result = config::load(&g.config);
            let (text, outcome) = check_report(&g.config, &result, g.json);
            emit(&text)?;
            Ok(outcome)
        }
        ConfigCommand::Show => {
            // Warnings are part of the output (as comments), not logged.
            let loaded = config::load(&g.config)?;
            let text = if g.json {
                let mut s = serde_json::to_string_pretty(&config::show_json(&loaded))?;
                s.push('\n');
                s
            } else {
                config::show(&loaded)
            };
            emit(&text)?;
            Ok(Outcome::Success)
        }
    }
}

fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The `config check` report and its outcome.
pub fn check_report(
    file: &Path,
    result: &Result<Loaded, ConfigErrors>,
    json: bool,
) -> (String, Outcome) {
    let (errors, warnings) = match result {
        Ok(l) => (&[][..], l.warnings.as_slice()),
        Err(e) => (e.errors.as_slice(), e.warnings.as_slice()),
    };
    let outcome = if errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::Usage
    };
    if json {
        let report = serde_json::json!({
            "ok": errors.is_empty(),
            "file": file.display().to_string(),
            "errors": errors.iter().map(config::ConfigError::to_json).collect::<Vec<_>>(),
            "warnings": warnings,
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
        return (text, outcome);
    }
    let mut text = String::new();
    if errors.is_empty() {
        text.push_str(&format!("OK: {}\n", file.display()));
    }
    for e in errors {
        text.push_str(&format!("{e}\n"));
    }
    for w in warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    if !errors.is_empty() {
        let mut summary = plural(errors.len(), "error");
        if !warnings.is_empty() {
            summary.push_str(&format!(", {}", plural(warnings.len(), "warning")));
        }
        text.push_str(&format!("FAILED: {}: {summary}\n", file.display()));
    }
    (text, outcome)
}
