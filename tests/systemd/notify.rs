//! `accounting extract` under a service manager: STATUS= lines per
//! project (the unit is Type=oneshot with NotifyAccess=main).

use std::process::Command;
use std::time::Duration;

use crate::util::{refsite, NotifySocket};

#[test]
fn accounting_extract_reports_projects_in_status_lines() {
    let site = refsite();
    let mut notify = NotifySocket::bind();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("appliance"))
        .arg("--config")
        .arg(site.path("REFSITE_CONFIG"))
        .args(["--json", "accounting", "extract", "--dry-run"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env_remove("JOURNAL_STREAM")
        .env_remove("APPLIANCE_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let code = notify.collect(&mut child, Duration::from_secs(120));
    assert_eq!(code, 0, "{:#?}", notify.lines);
    let statuses: Vec<&str> = notify.statuses().into_iter().map(|(_, s)| s).collect();
    let last = statuses.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("done: 3 of 3 projects extracted"),
        "{statuses:#?}"
    );
    // No READY (a oneshot) and no watchdog (none asked for).
    assert!(notify.times("READY=1").is_empty());
    assert!(notify.times("WATCHDOG=1").is_empty());
}
