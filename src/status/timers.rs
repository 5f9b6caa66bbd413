//! When the job timers fire next: `systemctl show` of the appliance's
//! timer units (`NextElapseUSecRealtime`), only when systemd runs this host
//! (`/run/systemd/system` exists, as `sd_booted()` checks).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

/// What systemd says about one timer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerState {
    /// `NextElapseUSecRealtime`, when the timer is active.
    pub next: Option<DateTime<Utc>>,
    /// `UnitFileState` (`enabled`, `disabled`, ...; empty when not found).
    pub unit_file_state: String,
    /// `ActiveState` (`active`, `inactive`, ...).
    pub active_state: String,
    /// `LoadState` (`loaded`, `not-found`, ...).
    pub load_state: String,
}

/// A systemd timestamp as `systemctl show` prints it: `@<seconds>` with
/// `--timestamp=unix`, or `Thu 2026-01-01 00:15:00 UTC` (the process runs
/// it with `TZ=UTC`); empty or `n/a` when there is none.
pub fn parse_timestamp(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Some(secs) = v.strip_prefix('@') {
        let secs: f64 = secs.parse().ok()?;
        return DateTime::from_timestamp(secs.floor() as i64, 0);
    }
    let mut parts = v.split_whitespace();
    let (_day, date, time, tz) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if tz != "UTC" {
        return None;
    }
    NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

/// Parse `systemctl show -p Id,... UNIT...`: blocks of `Key=Value` lines
/// separated by blank lines, one per unit.
pub fn parse_show(text: &str) -> BTreeMap<String, TimerState> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut st = TimerState::default();
        for line in block.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "Id" => id = Some(v.to_string()),
                "NextElapseUSecRealtime" => st.next = parse_timestamp(v),
                "UnitFileState" => st.unit_file_state = v.to_string(),
                "ActiveState" => st.active_state = v.to_string(),
                "LoadState" => st.load_state = v.to_string(),
                _ => {}
            }
        }
        if let Some(id) = id {
            out.insert(id, st);
        }
    }
    out
}

/// Whether systemd runs this host.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Ask systemd about `units`; `Err` says why it cannot be asked.
pub fn query(units: &[String]) -> Result<BTreeMap<String, TimerState>, String> {
    if !systemd_running() {
        return Err("systemd is not running this host (no /run/systemd/system)".into());
    }
    let out = std::process::Command::new("systemctl")
        .env("TZ", "UTC")
        .args([
            "show",
            "--timestamp=unix",
            "--property=Id,NextElapseUSecRealtime,UnitFileState,ActiveState,LoadState",
        ])
        .args(units)
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "systemctl show failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `systemctl show --timestamp=unix` printed for two timers
    /// (systemd 252, one active, one never started).
    const SHOW: &str = "Id=appliance-images-sync.timer\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\nNextElapseUSecRealtime=@1767240000\n\nId=appliance-crl-refresh.timer\nLoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\nNextElapseUSecRealtime=\n";

    #[test]
    fn show_output() {
        let m = parse_show(SHOW);
        let img = &m["appliance-images-sync.timer"];
        assert_eq!(img.next.unwrap().to_rfc3339(), "2026-01-01T04:00:00+00:00");
        assert_eq!(img.unit_file_state, "enabled");
        let crl = &m["appliance-crl-refresh.timer"];
        assert_eq!(crl.next, None);
        assert_eq!(crl.active_state, "inactive");
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("Thu 2026-01-01 04:00:00 UTC")
                .unwrap()
                .to_rfc3339(),
            "2026-01-01T04:00:00+00:00"
        );
        assert_eq!(parse_timestamp("n/a"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("Thu 2026-01-01 05:00:00 CET"), None);
    }
}
