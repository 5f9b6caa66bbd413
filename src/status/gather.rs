//! Read the machine's local state into a [`Status`] (no network). Each
//! reader leaves a figure out and says why in `missing` when it cannot be
//! had; nothing here fails the whole status.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::timers::TimerState;
use super::{
    Accounting, Crl, CrlProblem, Health, HostCertificate, ImageSource, Images, Info, Job, LastGood,
    LastRun, Missing, Oldest, SourceSync, Space, Status, SCHEMA,
};
use crate::config::Loaded;
use crate::messaging::{quarantine::Quarantine, settings, status as send_status};
use crate::state::runs;
use crate::trust::cadir::{self, Freshness};

/// The timer unit of a job.
pub fn timer_unit(job: &str) -> String {
    format!("appliance-{job}.timer")
}

/// Everything local, at `now`; `timers` is what systemd said (or why it
/// could not be asked). Problems and health are left to [`super::evaluate`].
pub fn gather(
    loaded: &Loaded,
    now: DateTime<Utc>,
    timers: &Result<BTreeMap<String, TimerState>, String>,
) -> Status {
    let c = &loaded.config;
    let state = &c.paths.state;
    let image_run = runs::read(state, "images-sync").ok().flatten();
    Status {
        schema: SCHEMA,
        generated_at: now,
        config: loaded.source.clone(),
        systemd: timers.is_ok(),
        health: Health::Ok,
        exit_code: 0,
        jobs: jobs(loaded, timers),
        accounting: accounting(loaded, now),
        images: images(loaded, image_run.as_ref()),
        info: info(loaded),
        host_certificate: host_certificate(loaded, now),
        crl: crl(&c.paths.ca_dir, now),
        config_warnings: loaded.warnings.clone(),
        problems: Vec::new(),
    }
}

fn jobs(loaded: &Loaded, timers: &Result<BTreeMap<String, TimerState>, String>) -> Vec<Job> {
    let state = &loaded.config.paths.state;
    loaded
        .config
        .components
        .jobs()
        .iter()
        .map(|j| {
            let unit = timer_unit(j.name);
            let mut missing = Missing::new();
            let last_run = match runs::read(state, j.name) {
                Ok(Some(r)) => Some(LastRun {
                    started: r.started,
                    finished: r.finished,
                    duration_seconds: r.duration_seconds,
                    outcome: r.outcome.as_str(),
                    exit_code: r.exit_code,
                    summary: r.summary,
                    last_success: r.last_success,
                }),
                Ok(None) => {
                    missing.insert(
                        "last_run",
                        format!("never ran (no {})", runs::path(state, j.name).display()),
                    );
                    None
                }
                Err(e) => {
                    missing.insert("last_run", e.to_string());
                    None
                }
            };
            let next_run = match timers {
                Err(why) => {
                    missing.insert("next_run", why.clone());
                    None
                }
                Ok(m) => match m.get(&unit) {
                    None => {
                        missing.insert("next_run", format!("systemctl said nothing about {unit}"));
                        None
                    }
                    Some(t) if t.load_state == "not-found" => {
                        missing.insert(
                            "next_run",
                            format!("{unit} is not installed (appliance systemd install)"),
                        );
                        None
                    }
                    Some(t) if t.next.is_none() => {
                        missing.insert(
                            "next_run",
                            format!(
                                "{unit} is not scheduled (ActiveState={}, UnitFileState={})",
                                t.active_state, t.unit_file_state
                            ),
                        );
                        None
                    }
                    Some(t) => t.next,
                },
            };
            Job {
                name: j.name.to_string(),
                unit,
                enabled: j.enabled,
                schedule: j.schedule.clone(),
                last_run,
                next_run,
                health: "ok",
                missing,
            }
        })
        .collect()
}

fn accounting(loaded: &Loaded, now: DateTime<Utc>) -> Accounting {
    let c = &loaded.config;
    let mut missing = Missing::new();
    let s = settings::from_config(loaded).unwrap_or_else(|e| {
        missing.insert("settings", format!("{e}; the defaults are shown"));
        settings::resolve(&c.ams, &c.paths, None, None)
    });
    let mut out = Accounting {
        enabled: c.components.accounting.enabled,
        spool: s.spool.clone(),
        queued: None,
        oldest: None,
        quarantined: None,
        quarantine_dir: s.quarantine.clone(),
        last_sent_at: None,
        last_send_success: None,
        missing,
    };
    let q = Quarantine::new(&s.quarantine);
    match send_status::gather(&s.spool, &q, &s.state_file, SystemTime::from(now)) {
        Ok(st) => {
            out.queued = Some(st.queued);
            out.oldest = st.oldest.map(|o| Oldest {
                name: o.name,
                spooled_at: o.spooled_at,
                age_seconds: o.age_seconds,
            });
            out.quarantined = Some(st.quarantined.len());
            out.last_sent_at = st.send.last_sent_at.clone();
            out.last_send_success = st.send.last_success.map(|r| r.at);
            if out.last_sent_at.is_none() {
                out.missing.insert(
                    "last_sent_at",
                    format!(
                        "no message was accepted by the broker yet ({} records none)",
                        s.state_file.display()
                    ),
                );
            }
        }
        Err(e) => {
            out.missing.insert(
                "queued",
                format!("cannot read the spool {}: {e}", s.spool.display()),
            );
        }
    }
    out
}

/// A JSON field as text.
fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).map(|x| match x {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn state_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

fn images(loaded: &Loaded, last: Option<&runs::RunRecord>) -> Images {
    let c = &loaded.config;
    let sec = &c.images;
    let images_state = c.paths.state.join("images");
    // name -> (kind, enabled)
    let mut known: BTreeMap<String, (&'static str, Option<bool>)> = BTreeMap::new();
    for s in &sec.subscriptions {
        known.insert(s.name.clone(), ("list", Some(s.enabled)));
    }
    for h in &sec.harbor {
        known.insert(h.name.clone(), ("registry", Some(h.enabled)));
    }
    for (kind, sub) in [
        ("list", "lists"),
        ("registry", "registries"),
        ("list", "backoff"),
    ] {
        for n in state_names(&images_state.join(sub)) {
            known.entry(n).or_insert((kind, None));
        }
    }
    let synced: BTreeMap<String, SourceSync> = last
        .and_then(|r| r.detail.as_ref())
        .and_then(|d| d.get("sources"))
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    for n in synced.keys() {
        known.entry(n.clone()).or_insert(("list", None));
    }
    let sources = known
        .into_iter()
        .map(|(name, (kind, enabled))| {
            let mut missing = Missing::new();
            let sub = if kind == "list" {
                "lists"
            } else {
                "registries"
            };
            let file = images_state.join(sub).join(format!("{name}.json"));
            let last_good = match std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                Some(v) => Some(LastGood {
                    identifier: text(&v, "identifier"),
                    version: text(&v, "version"),
                    fetched_at: text(&v, "fetched_at"),
                    expires: text(&v, "expires"),
                }),
                None => {
                    missing.insert(
                        "last_good",
                        format!("no {kind} accepted yet (no {})", file.display()),
                    );
                    None
                }
            };
            let backoff = held_back(&images_state.join("backoff").join(format!("{name}.json")));
            let last_sync = synced.get(&name).cloned();
            if last_sync.is_none() {
                missing.insert(
                    "last_sync",
                    match last {
                        None => "images-sync has not run yet".to_string(),
                        Some(_) => "not in the last images-sync run".to_string(),
                    },
                );
            }
            ImageSource {
                name,
                kind,
                enabled,
                last_good,
                last_sync,
                backoff,
                missing,
            }
        })
        .collect();
    let mut missing = Missing::new();
    let image_data = match free_space(&c.paths.image_data) {
        Ok(s) => Some(s),
        Err(e) => {
            missing.insert("image_data", e);
            None
        }
    };
    Images {
        enabled: c.components.images.enabled,
        sources,
        image_data,
        image_data_path: c.paths.image_data.clone(),
        missing,
    }
}

/// The per-image back-off state of a source (the image flow's
/// `{"images": {ID: {attempts, max_attempts, last_failed, error, ...}}}`);
/// absent or unreadable: none.
fn held_back(file: &Path) -> Vec<super::HeldBack> {
    let Some(v) = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    let Some(images) = v.get("images").and_then(|i| i.as_object()) else {
        return Vec::new();
    };
    images
        .iter()
        .map(|(id, r)| {
            let n = |k: &str| r.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            let (attempts, max_attempts) = (n("attempts"), n("max_attempts"));
            super::HeldBack {
                image: id.clone(),
                attempts,
                max_attempts,
                given_up: max_attempts > 0 && attempts >= max_attempts,
                last_failed: text(r, "last_failed"),
                error: text(r, "error"),
            }
        })
        .collect()
}

/// Free and total bytes of the filesystem holding `path` (`statvfs`).
pub fn free_space(path: &Path) -> Result<Space, String> {
    use std::os::unix::ffi::OsStrExt;
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: path with a NUL byte", path.display()))?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let frsize = st.f_frsize as u64;
    let free = st.f_bavail as u64 * frsize;
    let total = st.f_blocks as u64 * frsize;
    Ok(Space {
        free_bytes: free,
        total_bytes: total,
        free_percent: if total == 0 {
            0.0
        } else {
            (free as f64 * 10_000.0 / total as f64).round() / 100.0
        },
    })
}

fn info(loaded: &Loaded) -> Info {
    let c = &loaded.config;
    let mut missing = Missing::new();
    let last_publish = match runs::read(&c.paths.state, "info-publish") {
        Ok(Some(r)) => {
            if r.last_success.is_none() {
                missing.insert("last_publish", "no info publish has succeeded yet".into());
            }
            r.last_success
        }
        Ok(None) => {
            missing.insert("last_publish", "info-publish has not run yet".into());
            None
        }
        Err(e) => {
            missing.insert("last_publish", e.to_string());
            None
        }
    };
    let file = c.info.publish.file.clone();
    let file_modified = match &file {
        None => None,
        Some(f) => match std::fs::metadata(f).and_then(|m| m.modified()) {
            Ok(t) => Some(DateTime::<Utc>::from(t)),
            Err(e) => {
                missing.insert("file_modified", format!("{}: {e}", f.display()));
                None
            }
        },
    };
    Info {
        enabled: c.components.info.enabled,
        last_publish,
        file,
        file_modified,
        missing,
    }
}

fn host_certificate(loaded: &Loaded, now: DateTime<Utc>) -> HostCertificate {
    let c = &loaded.config;
    let path = c.paths.host_cert.clone();
    let needed = c.components.accounting.enabled || c.info.publish.ams.is_some();
    let mut out = HostCertificate {
        path: path.clone(),
        subject: None,
        not_after: None,
        days_left: None,
        needed,
        missing: Missing::new(),
    };
    let cert = std::fs::read(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|b| {
            openssl::x509::X509::from_pem(&b)
                .map_err(|_| format!("{} is not a PEM certificate", path.display()))
        });
    match cert {
        Ok(cert) => {
            out.subject = Some(crate::messaging::identity::slash_dn(cert.subject_name()));
            out.not_after = crate::trust::asn1_to_utc(cert.not_after());
            out.days_left = out
                .not_after
                .map(|t| (t - now).num_seconds().div_euclid(86_400));
        }
        Err(e) => {
            out.missing.insert("subject", e);
        }
    }
    out
}

fn crl(ca_dir: &Path, now: DateTime<Utc>) -> Crl {
    let mut out = Crl {
        ca_dir: ca_dir.to_path_buf(),
        cas: 0,
        fresh: 0,
        not_fresh: Vec::new(),
        missing: Missing::new(),
    };
    match cadir::scan(ca_dir) {
        Ok(scan) => {
            out.cas = scan.anchors.len();
            for a in &scan.anchors {
                match a.freshness(now) {
                    Freshness::Fresh => out.fresh += 1,
                    f => out.not_fresh.push(CrlProblem {
                        ca: a.subject.clone(),
                        hash: a.hash.clone(),
                        state: f.as_str(),
                        next_update: match &a.installed {
                            cadir::Installed::Present { info, .. } => info.next_update,
                            _ => None,
                        },
                        has_url: !a.urls.is_empty(),
                    }),
                }
            }
        }
        Err(e) => {
            out.missing.insert("cas", e.to_string());
        }
    }
    out
}
