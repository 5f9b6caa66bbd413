//! Judge a gathered [`Status`] at a given time: the problems, each job's
//! health and the verdict. Pure (no I/O, the clock is the status's
//! `generated_at`); the thresholds are [`Thresholds`], documented in
//! `docs/status-json.md`.

use chrono::Duration;

use super::{Health, Problem, Severity, Status};

/// When a figure becomes a warning or an error.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// An enabled job without a successful run for this long: warning
    /// (default 24 h, four times the longest default interval).
    pub job_success_age: Duration,
    /// Oldest spooled accounting message: warning (default 1 day).
    pub queue_age_warning: Duration,
    /// Oldest spooled accounting message: error (default 7 days).
    pub queue_age_error: Duration,
    /// Host certificate days left: warning below (default 14).
    pub cert_warning_days: i64,
    /// Host certificate days left: error below (default 1: `ssmsend`
    /// refuses a certificate that expires within 24 hours).
    pub cert_error_days: i64,
    /// Free space of `paths.image-data`: warning below (default 10 %).
    pub free_warning_percent: f64,
    /// Free space: error below this percentage (default 2 %) ...
    pub free_error_percent: f64,
    /// ... or below this many bytes (default 1 GiB).
    pub free_error_bytes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            job_success_age: Duration::hours(24),
            queue_age_warning: Duration::days(1),
            queue_age_error: Duration::days(7),
            cert_warning_days: 14,
            cert_error_days: 1,
            free_warning_percent: 10.0,
            free_error_percent: 2.0,
            free_error_bytes: 1 << 30,
        }
    }
}

/// A job's command line, for remedies.
fn job_command(job: &str) -> &'static str {
    match job {
        "accounting-extract" => "appliance accounting extract",
        "accounting-send" => "appliance accounting send",
        "info-publish" => "appliance info publish",
        "images-sync" => "appliance images sync",
        "crl-refresh" => "appliance crl refresh",
        _ => "appliance status",
    }
}

fn problem(
    severity: Severity,
    subject: impl Into<String>,
    message: impl Into<String>,
    remedy: impl Into<String>,
) -> Problem {
    Problem {
        severity,
        subject: subject.into(),
        message: message.into(),
        remedy: remedy.into(),
    }
}

fn ago(d: Duration) -> String {
    let h = d.num_hours();
    if h >= 48 {
        format!("{} days ago", h / 24)
    } else if h >= 1 {
        format!("{h} h ago")
    } else {
        format!("{} min ago", d.num_minutes().max(0))
    }
}

/// Fill in `problems`, each job's `health`, `health` and `exit_code`.
pub fn evaluate(s: &mut Status, t: &Thresholds) {
    let now = s.generated_at;
    let mut problems = Vec::new();

    // Jobs.
    for j in &mut s.jobs {
        if !j.enabled {
            j.health = "disabled";
            continue;
        }
        let subject = format!("job {}", j.name);
        let journal = format!(
            "see `journalctl -u appliance-{}.service`, or run `{}` by hand",
            j.name,
            job_command(&j.name)
        );
        let mut mine = Vec::new();
        match &j.last_run {
            None => mine.push(problem(
                Severity::Warning,
                &subject,
                format!(
                    "no run recorded: {}",
                    j.missing.get("last_run").map_or("", String::as_str)
                ),
                format!(
                    "enable its timer (`systemctl enable --now {}`) or run `{}` once",
                    j.unit,
                    job_command(&j.name)
                ),
            )),
            Some(r) => {
                let when = ago(now - r.finished);
                match r.outcome {
                    "error" | "usage" => mine.push(problem(
                        Severity::Error,
                        &subject,
                        format!(
                            "the last run ({when}) failed (exit {}): {}",
                            r.exit_code, r.summary
                        ),
                        journal.clone(),
                    )),
                    "partial" => mine.push(problem(
                        Severity::Warning,
                        &subject,
                        format!("the last run ({when}) was partial (exit 1): {}", r.summary),
                        journal.clone(),
                    )),
                    _ => {}
                }
                let stale = match r.last_success {
                    Some(ok) => (now - ok > t.job_success_age).then(|| {
                        format!(
                            "no successful run since {} ({})",
                            ok.format("%Y-%m-%d %H:%M UTC"),
                            ago(now - ok)
                        )
                    }),
                    None => Some("no successful run recorded".to_string()),
                };
                if let Some(msg) = stale {
                    mine.push(problem(Severity::Warning, &subject, msg, journal.clone()));
                }
            }
        }
        if s.systemd && j.next_run.is_none() {
            mine.push(problem(
                Severity::Warning,
                &subject,
                format!(
                    "its timer is not scheduled: {}",
                    j.missing.get("next_run").map_or("", String::as_str)
                ),
                format!(
                    "`appliance systemd install`, then `systemctl enable --now {}`",
                    j.unit
                ),
            ));
        }
        j.health = match mine.iter().map(|p| p.severity).max() {
            None => "ok",
            Some(Severity::Warning) => "warning",
            Some(Severity::Error) => "error",
        };
        problems.extend(mine);
    }

    // Accounting.
    let a = &s.accounting;
    if a.enabled {
        if let Some(o) = &a.oldest {
            let age = Duration::seconds(i64::try_from(o.age_seconds).unwrap_or(i64::MAX));
            let sev = if age >= t.queue_age_error {
                Some(Severity::Error)
            } else if age >= t.queue_age_warning {
                Some(Severity::Warning)
            } else {
                None
            };
            if let Some(sev) = sev {
                problems.push(problem(
                    sev,
                    "accounting",
                    format!(
                        "{} message(s) waiting; the oldest was spooled {} ({})",
                        a.queued.unwrap_or(0),
                        o.spooled_at,
                        ago(age)
                    ),
                    "records are not reaching APEL: check `appliance accounting send` and `journalctl -u appliance-accounting-send.service`",
                ));
            }
        }
        if let Some(q) = a.quarantined.filter(|q| *q > 0) {
            problems.push(problem(
                Severity::Warning,
                "accounting",
                format!(
                    "{q} message(s) in the quarantine {} (refused by the broker)",
                    a.quarantine_dir.display()
                ),
                "see `appliance accounting status` for why each was refused",
            ));
        }
        if let Some(why) = a.missing.get("queued") {
            problems.push(problem(
                Severity::Warning,
                "accounting",
                why.clone(),
                "check paths.spool and its permissions",
            ));
        }
    }

    // Host certificate.
    let hc = &s.host_certificate;
    if hc.needed {
        match (hc.days_left, hc.missing.get("subject")) {
            (_, Some(why)) => problems.push(problem(
                Severity::Error,
                "host certificate",
                why.clone(),
                "install the host certificate at paths.host-cert (accounting and AMS publishing need it)",
            )),
            (Some(d), _) if d < t.cert_error_days => problems.push(problem(
                Severity::Error,
                "host certificate",
                format!(
                    "{} {}",
                    hc.path.display(),
                    if d < 0 { "has expired".to_string() } else { "expires within a day".to_string() }
                ),
                "renew the host certificate with your CA and install it (same DN, or update GOCDB's Host DN)",
            )),
            (Some(d), _) if d < t.cert_warning_days => problems.push(problem(
                Severity::Warning,
                "host certificate",
                format!("{} expires in {d} day(s)", hc.path.display()),
                "renew the host certificate with your CA before it expires",
            )),
            _ => {}
        }
    }

    // CRLs.
    let c = &s.crl;
    if let Some(why) = c.missing.get("cas") {
        problems.push(problem(
            if s.images.enabled {
                Severity::Error
            } else {
                Severity::Warning
            },
            "CRLs",
            why.clone(),
            "install the IGTF CA bundle (ca-policy-egi-core) into paths.ca-dir",
        ));
    } else {
        let names = |state: &str, with_url: Option<bool>| -> Vec<String> {
            c.not_fresh
                .iter()
                .filter(|p| {
                    (if state == "bad" {
                        matches!(p.state, "stale" | "invalid" | "not-yet-valid")
                    } else {
                        p.state == state
                    }) && with_url.is_none_or(|w| w == p.has_url)
                })
                .map(|p| {
                    format!(
                        "{} ({}.r0: {})",
                        p.ca.rsplit_once("/CN=").map_or(p.ca.as_str(), |x| x.1),
                        p.hash,
                        p.state
                    )
                })
                .collect()
        };
        let bad = names("bad", None);
        if !bad.is_empty() {
            let sev = if c.fresh == 0 && s.images.enabled {
                Severity::Error
            } else {
                Severity::Warning
            };
            problems.push(problem(
                sev,
                "CRLs",
                format!("{} CA(s) without a current CRL: {}", bad.len(), bad.join(", ")),
                "run `appliance crl refresh` (and check that its timer runs); image lists signed under these CAs fail verification",
            ));
        }
        let missing = names("missing", Some(true));
        if !missing.is_empty() {
            problems.push(problem(
                Severity::Warning,
                "CRLs",
                format!(
                    "{} CA(s) have a CRL URL but no CRL: {}",
                    missing.len(),
                    missing.join(", ")
                ),
                "run `appliance crl refresh`",
            ));
        }
    }

    // Images.
    let im = &s.images;
    if im.enabled {
        if let Some(sp) = &im.image_data {
            let path = im.image_data_path.display();
            let msg = format!(
                "{path}: {:.1} GiB free ({:.1} %)",
                sp.free_bytes as f64 / f64::from(1u32 << 30),
                sp.free_percent
            );
            let remedy = "free space in paths.image-data (old cache entries of retired lists) or enlarge its volume";
            if sp.free_percent < t.free_error_percent || sp.free_bytes < t.free_error_bytes {
                problems.push(problem(Severity::Error, "image data", msg, remedy));
            } else if sp.free_percent < t.free_warning_percent {
                problems.push(problem(Severity::Warning, "image data", msg, remedy));
            }
        } else if let Some(why) = im.missing.get("image_data") {
            problems.push(problem(
                Severity::Warning,
                "image data",
                why.clone(),
                "create paths.image-data (owned by the appliance user)",
            ));
        }
        for src in im.sources.iter().filter(|x| x.enabled != Some(false)) {
            let subject = format!("image source {}", src.name);
            if let Some(sync) = &src.last_sync {
                if !matches!(sync.status.as_str(), "ok" | "disabled") {
                    let what = sync
                        .failure
                        .clone()
                        .unwrap_or_else(|| format!("{} image(s) failed", sync.failed));
                    problems.push(problem(
                        Severity::Warning,
                        &subject,
                        format!("{} in the last sync: {what}", sync.status),
                        "run `appliance images verify` for the source, or see the sync's report",
                    ));
                }
            }
            let given_up: Vec<&str> = src
                .backoff
                .iter()
                .filter(|b| b.given_up)
                .map(|b| b.image.as_str())
                .collect();
            if !given_up.is_empty() {
                problems.push(problem(
                    Severity::Warning,
                    &subject,
                    format!(
                        "{} image(s) no longer tried after repeated failures: {}",
                        given_up.len(),
                        given_up.join(", ")
                    ),
                    "the source serves a file that fails verification or is refused; once it is fixed there, run `appliance images sync --retry-failed`",
                ));
            }
            if let Some(exp) = src
                .last_good
                .as_ref()
                .and_then(|g| g.expires.as_deref())
                .and_then(|e| e.parse::<chrono::DateTime<chrono::Utc>>().ok())
            {
                if exp <= now {
                    problems.push(problem(
                        Severity::Warning,
                        &subject,
                        format!(
                            "its last good list expired at {}",
                            exp.format("%Y-%m-%d %H:%M UTC")
                        ),
                        "the endorser must re-sign the list; check the subscription URL",
                    ));
                }
            }
        }
    }

    // Configuration.
    for w in &s.config_warnings {
        problems.push(problem(
            Severity::Warning,
            "configuration",
            w.clone(),
            "see `appliance config check`",
        ));
    }

    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    s.health = match problems.iter().map(|p| p.severity).max() {
        None => Health::Ok,
        Some(Severity::Warning) => Health::Warning,
        Some(Severity::Error) => Health::Error,
    };
    s.exit_code = s.health.exit_code();
    s.problems = problems;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::*;
    use chrono::{DateTime, Utc};

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    fn base() -> Status {
        Status {
            schema: SCHEMA,
            generated_at: now(),
            config: "/c".into(),
            systemd: false,
            health: Health::Ok,
            exit_code: 0,
            jobs: Vec::new(),
            accounting: Accounting {
                enabled: true,
                spool: "/s".into(),
                queued: Some(0),
                oldest: None,
                quarantined: Some(0),
                quarantine_dir: "/q".into(),
                last_sent_at: None,
                last_send_success: None,
                missing: Missing::new(),
            },
            images: Images {
                enabled: true,
                sources: Vec::new(),
                image_data: Some(Space {
                    free_bytes: 100 << 30,
                    total_bytes: 200 << 30,
                    free_percent: 50.0,
                }),
                image_data_path: "/image_data".into(),
                missing: Missing::new(),
            },
            info: Info {
                enabled: true,
                last_publish: None,
                file: None,
                file_modified: None,
                missing: Missing::new(),
            },
            host_certificate: HostCertificate {
                path: "/h".into(),
                subject: Some("/CN=h".into()),
                not_after: None,
                days_left: Some(100),
                needed: true,
                missing: Missing::new(),
            },
            crl: Crl {
                ca_dir: "/ca".into(),
                cas: 1,
                fresh: 1,
                not_fresh: Vec::new(),
                missing: Missing::new(),
            },
            config_warnings: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn judged(mut s: Status) -> Status {
        evaluate(&mut s, &Thresholds::default());
        s
    }

    #[test]
    fn healthy() {
        let s = judged(base());
        assert_eq!(s.health, Health::Ok, "{:?}", s.problems);
        assert_eq!(s.exit_code, 0);
    }

    #[test]
    fn queue_age_thresholds() {
        for (age, health) in [
            (3_600, Health::Ok),
            (2 * 86_400, Health::Warning),
            (8 * 86_400, Health::Error),
        ] {
            let mut s = base();
            s.accounting.queued = Some(1);
            s.accounting.oldest = Some(Oldest {
                name: "a/b".into(),
                spooled_at: "x".into(),
                age_seconds: age,
            });
            assert_eq!(judged(s).health, health, "age {age}");
        }
        // Accounting off: an old spool is nobody's concern.
        let mut s = base();
        s.accounting.enabled = false;
        s.accounting.oldest = Some(Oldest {
            name: "a/b".into(),
            spooled_at: "x".into(),
            age_seconds: 30 * 86_400,
        });
        assert_eq!(judged(s).health, Health::Ok);
    }

    #[test]
    fn free_space_thresholds() {
        for (free, total, health) in [
            (50u64 << 30, 100u64 << 30, Health::Ok),
            (5 << 30, 100 << 30, Health::Warning),
            (1 << 30, 100 << 30, Health::Error),
            (500 << 20, 600 << 20, Health::Error),
        ] {
            let mut s = base();
            s.images.image_data = Some(Space {
                free_bytes: free,
                total_bytes: total,
                free_percent: free as f64 * 100.0 / total as f64,
            });
            assert_eq!(judged(s).health, health, "{free} of {total}");
        }
    }

    #[test]
    fn certificate_thresholds() {
        for (days, health) in [
            (30, Health::Ok),
            (13, Health::Warning),
            (0, Health::Error),
            (-3, Health::Error),
        ] {
            let mut s = base();
            s.host_certificate.days_left = Some(days);
            assert_eq!(judged(s).health, health, "{days} days");
        }
    }

    #[test]
    fn job_success_age() {
        let job = |finished: &str, outcome: &'static str, last_success: Option<&str>| Job {
            name: "images-sync".into(),
            unit: "appliance-images-sync.timer".into(),
            enabled: true,
            schedule: "x".into(),
            last_run: Some(LastRun {
                started: finished.parse().unwrap(),
                finished: finished.parse().unwrap(),
                duration_seconds: 1.0,
                outcome,
                exit_code: 0,
                summary: "s".into(),
                last_success: last_success.map(|t| t.parse().unwrap()),
            }),
            next_run: None,
            health: "ok",
            missing: Missing::new(),
        };
        let mut s = base();
        s.jobs = vec![job(
            "2026-06-01T11:00:00Z",
            "success",
            Some("2026-06-01T11:00:00Z"),
        )];
        let s = judged(s);
        assert_eq!(s.jobs[0].health, "ok");
        let mut s = base();
        s.jobs = vec![job(
            "2026-06-01T11:00:00Z",
            "partial",
            Some("2026-05-30T11:00:00Z"),
        )];
        let s = judged(s);
        assert_eq!(s.jobs[0].health, "warning");
        assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
        // Under systemd, an unscheduled timer of an enabled job is a warning.
        let mut s = base();
        s.systemd = true;
        s.jobs = vec![job(
            "2026-06-01T11:00:00Z",
            "success",
            Some("2026-06-01T11:00:00Z"),
        )];
        assert_eq!(judged(s).jobs[0].health, "warning");
    }
}
