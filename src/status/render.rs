//! The status screen and the Nagios line (pure: text from a [`Status`]).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::evaluate::Thresholds;
use super::{Health, Severity, Status};

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
}

/// The one-screen view.
pub fn screen(s: &Status) -> String {
    let mut o = String::new();
    let counts = |sev| s.problems.iter().filter(|p| p.severity == sev).count();
    let _ = writeln!(
        o,
        "appliance status: {} ({} error(s), {} warning(s)) at {}",
        s.health.as_str().to_uppercase(),
        counts(Severity::Error),
        counts(Severity::Warning),
        when(Some(s.generated_at))
    );
    let _ = writeln!(o, "configuration: {}", s.config.display());
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<19} {:<8} {:<21} {:<8} {:>9}  NEXT RUN",
        "JOB", "HEALTH", "LAST RUN", "RESULT", "DURATION"
    );
    for j in &s.jobs {
        let (last, result, dur) = match &j.last_run {
            Some(r) => (
                when(Some(r.finished)),
                r.outcome.to_string(),
                format!("{:.1} s", r.duration_seconds),
            ),
            None => ("never".into(), "-".into(), "-".into()),
        };
        let next = match (j.next_run, j.missing.get("next_run")) {
            (Some(t), _) => when(Some(t)),
            (None, Some(why)) if s.systemd => format!("- ({why})"),
            _ => "-".into(),
        };
        let _ = writeln!(
            o,
            "{:<19} {:<8} {:<21} {:<8} {:>9}  {next}",
            j.name, j.health, last, result, dur
        );
        if let Some(r) = &j.last_run {
            let _ = writeln!(o, "{:<19} {}", "", r.summary);
        }
    }
    if !s.systemd {
        if let Some(why) = s.jobs.iter().find_map(|j| j.missing.get("next_run")) {
            let _ = writeln!(o, "next runs: unknown ({why})");
        }
    }
    let _ = writeln!(o);

    let a = &s.accounting;
    let queue = match (a.queued, &a.oldest) {
        (Some(n), Some(old)) => format!(
            "{n} message(s) queued, oldest spooled {} ({} s ago)",
            old.spooled_at, old.age_seconds
        ),
        (Some(n), None) => format!("{n} message(s) queued"),
        (None, _) => format!(
            "queue unknown ({})",
            a.missing.get("queued").map_or("", String::as_str)
        ),
    };
    let _ = writeln!(
        o,
        "accounting{}: {queue}; {} quarantined; last message accepted {}",
        if a.enabled { "" } else { " (disabled)" },
        a.quarantined.map_or("?".into(), |q| q.to_string()),
        a.last_sent_at.as_deref().unwrap_or("never")
    );

    let im = &s.images;
    let space = match &im.image_data {
        Some(sp) => format!(
            "{} free of {} ({:.1} %)",
            gib(sp.free_bytes),
            gib(sp.total_bytes),
            sp.free_percent
        ),
        None => im
            .missing
            .get("image_data")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
    };
    let _ = writeln!(
        o,
        "images{}: {}: {space}",
        if im.enabled { "" } else { " (disabled)" },
        im.image_data_path.display()
    );
    for src in &im.sources {
        let good = match &src.last_good {
            Some(g) => format!(
                "last good {}{} fetched {}",
                src.kind,
                g.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                g.fetched_at.as_deref().unwrap_or("?")
            ),
            None => format!("no {} accepted yet", src.kind),
        };
        let sync = match &src.last_sync {
            Some(x) => format!(
                "last sync {}: {} in Glance, {} failed",
                x.status, x.in_glance, x.failed
            ),
            None => "not synced yet".into(),
        };
        let _ = writeln!(o, "  {:<24} {good}; {sync}", src.name);
        for b in &src.backoff {
            let _ = writeln!(
                o,
                "  {:<24} {} failed {} of {} time(s){}: {}",
                "",
                b.image,
                b.attempts,
                b.max_attempts,
                if b.given_up { ", no longer tried" } else { "" },
                b.error.as_deref().unwrap_or("")
            );
        }
    }

    let i = &s.info;
    let _ = writeln!(
        o,
        "info{}: last publish {}{}",
        if i.enabled { "" } else { " (disabled)" },
        when(i.last_publish),
        match (&i.file, i.file_modified) {
            (Some(f), Some(t)) => format!("; {} written {}", f.display(), when(Some(t))),
            (Some(f), None) => format!("; {} not written yet", f.display()),
            _ => String::new(),
        }
    );

    let hc = &s.host_certificate;
    match (&hc.subject, hc.days_left) {
        (Some(dn), Some(d)) => {
            let _ = writeln!(
                o,
                "host certificate: {dn}, expires {} ({d} day(s))",
                when(hc.not_after)
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "host certificate: {}",
                hc.missing.get("subject").map_or("unknown", String::as_str)
            );
        }
    }

    let c = &s.crl;
    let _ = writeln!(
        o,
        "CRLs: {}: {} CA(s), {} with a current CRL{}",
        c.ca_dir.display(),
        c.cas,
        c.fresh,
        c.missing
            .get("cas")
            .map(|w| format!(" ({w})"))
            .unwrap_or_default()
    );
    for p in &c.not_fresh {
        let _ = writeln!(
            o,
            "  {:<13} {}.r0 {} (next update {})",
            p.state,
            p.hash,
            p.ca,
            when(p.next_update)
        );
    }

    if !s.problems.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "problems:");
        for p in &s.problems {
            let sev = match p.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "WARNING",
            };
            let _ = writeln!(o, "  {sev:<8} {}: {}", p.subject, p.message);
            let _ = writeln!(o, "  {:<8} remedy: {}", "", p.remedy);
        }
    }
    o
}

/// One Nagios plugin line: `APPLIANCE <STATE> - text | perfdata`
/// (Nagios plugin guidelines: `label=value[UOM];warn;crit;min;max`, a
/// threshold `N` alerts above N, `N:` below N), with the thresholds `t`
/// the status was judged by.
pub fn nagios(s: &Status, t: &Thresholds) -> String {
    let state = match s.health {
        Health::Ok => "OK",
        Health::Warning => "WARNING",
        Health::Error => "CRITICAL",
    };
    let errors = s
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = s.problems.len() - errors;
    let text = match s.problems.first() {
        None => format!(
            "{} job(s) ok",
            s.jobs.iter().filter(|j| j.health == "ok").count()
        ),
        Some(p) => format!(
            "{errors} error(s), {warnings} warning(s); {}: {}",
            p.subject, p.message
        ),
    };
    let text = text.replace('|', "/").replace('\n', " ");
    let mut perf = Vec::new();
    let failed = s.jobs.iter().filter(|j| j.health == "error").count();
    perf.push(format!("jobs_failed={failed};;0;0"));
    if let Some(q) = s.accounting.queued {
        perf.push(format!("queued={q};;;0"));
    }
    if let Some(o) = &s.accounting.oldest {
        perf.push(format!(
            "oldest_age={}s;{};{};0",
            o.age_seconds,
            t.queue_age_warning.num_seconds(),
            t.queue_age_error.num_seconds()
        ));
    }
    if let Some(q) = s.accounting.quarantined {
        perf.push(format!("quarantined={q};0;;0"));
    }
    if let Some(d) = s.host_certificate.days_left {
        perf.push(format!(
            "cert_days={d};{}:;{}:",
            t.cert_warning_days, t.cert_error_days
        ));
    }
    if let Some(sp) = &s.images.image_data {
        perf.push(format!(
            "image_data_free={:.1}%;{}:;{}:;0;100",
            sp.free_percent, t.free_warning_percent, t.free_error_percent
        ));
    }
    perf.push(format!("crl_not_fresh={};0;;0", s.crl.not_fresh.len()));
    format!("APPLIANCE {state} - {text} | {}", perf.join(" "))
}
