//! `appliance accounting send|status` (issue #5): glue between the
//! configuration, the spool, the host credential and the AMS client
//! (`crate::messaging`). Pre-flight problems (configuration, sender.cfg,
//! certificate, key, expiry) exit 2 before anything is touched.

use std::time::SystemTime;

use anyhow::Context as _;
use openssl::x509::X509;

use crate::cli::GlobalArgs;
use crate::config::{self, Loaded};
use crate::exit::{Outcome, UsageError};
use crate::messaging::ams::Auth;
use crate::messaging::identity::{self, HostCredential};
use crate::messaging::quarantine::Quarantine;
use crate::messaging::send::{self, Connect, Run, SendReport};
use crate::messaging::settings::{self, Settings, TokenSource};
use crate::messaging::status::{self, SendState};
use crate::spool::{Options, PurgeAges, QueueSimple, SystemClock};
use crate::state::RunLock;

/// Options of `appliance accounting send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check the certificate, read and sign every message, but contact no
    /// broker and change nothing in the spool.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `appliance accounting status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// The effective settings: the `ams` section, the legacy sender.cfg, defaults.
fn settings_of(loaded: &Loaded) -> anyhow::Result<Settings> {
    let section = &loaded.config.ams;
    let s = settings::from_config(loaded)?;
    if s.token_source == TokenSource::SenderCfg {
        tracing::warn!(
            file = %section.sender_cfg.as_deref().unwrap_or(std::path::Path::new("?")).display(),
            "the AMS token is read from the legacy sender.cfg; move it to the secrets file as `ams: {{token: ...}}`"
        );
    }
    Ok(s)
}

/// The host credential and the optional server certificate, checked like
/// ssmsend does before it sends anything.
fn preflight(s: &Settings, now: SystemTime) -> Result<(HostCredential, Option<X509>), UsageError> {
    let usage = |e: identity::IdentityError| UsageError(e.to_string());
    let cred = HostCredential::load(&s.certificate, &s.key).map_err(usage)?;
    cred.check_validity(now).map_err(usage)?;
    let server = match &s.server_cert {
        None => None,
        Some(path) => {
            let cert = identity::load_cert("server certificate", path).map_err(usage)?;
            if cert.to_der().ok() == cred.cert.to_der().ok() {
                return Err(usage(identity::IdentityError::ServerIsHost {
                    path: path.clone(),
                }));
            }
            identity::check_validity("server certificate", path, &cert, now).map_err(usage)?;
            if s.verify_server_cert {
                verify_against_capath(&cert, path, &s.capath)?;
            }
            Some(cert)
        }
    };
    Ok((cred, server))
}

/// `openssl verify -CApath capath server_cert`.
fn verify_against_capath(
    cert: &X509,
    path: &std::path::Path,
    capath: &std::path::Path,
) -> Result<(), UsageError> {
    use openssl::stack::Stack;
    use openssl::x509::store::{X509Lookup, X509StoreBuilder};
    use openssl::x509::X509StoreContext;
    let fail = |why: String| {
        UsageError(format!(
            "the server certificate {} does not verify against the CA directory {}: {why}; fix `capath`, or set `verify-server-cert: false`",
            path.display(),
            capath.display()
        ))
    };
    let mut b = X509StoreBuilder::new().map_err(|e| fail(e.to_string()))?;
    let lookup = b
        .add_lookup(X509Lookup::hash_dir())
        .map_err(|e| fail(e.to_string()))?;
    lookup
        .add_dir(
            capath.to_str().unwrap_or_default(),
            openssl::ssl::SslFiletype::PEM,
        )
        .map_err(|e| fail(e.to_string()))?;
    let store = b.build();
    let chain = Stack::new().map_err(|e| fail(e.to_string()))?;
    let mut ctx = X509StoreContext::new().map_err(|e| fail(e.to_string()))?;
    let ok = ctx
        .init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok(if ok {
                None
            } else {
                Some(c.error().to_string())
            })
        })
        .map_err(|e| fail(e.to_string()))?;
    match ok {
        None => Ok(()),
        Some(why) => Err(fail(why)),
    }
}

/// Run `send`.
pub async fn run(g: &GlobalArgs, a: &Args) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    let s = settings_of(&loaded)?;
    let clock = SystemClock;
    let now = SystemTime::now();
    let _lock = if a.dry_run {
        None
    } else {
        Some(RunLock::acquire(&s.lock_file).map_err(|e| UsageError(e.to_string()))?)
    };
    let (cred, server_cert) = preflight(&s, now)?;
    tracing::info!(
        dn = %cred.dn(),
        certificate = %s.certificate.display(),
        "signing with the host certificate; GOCDB must list this DN as Host DN of the site's eu.egi.cloud.accounting service"
    );
    let queue = QueueSimple::open(&s.spool, Options::default())
        .with_context(|| format!("opening the spool {}", s.spool.display()))?;
    let quarantine = Quarantine::new(&s.quarantine);
    let holding = send::Holding::new(&s.holding_file);
    if !a.dry_run {
        reclaim_state(&s);
    }
    let auth = match &s.token {
        Some(t) => Auth::Token(t.clone()),
        None => Auth::X509(&cred),
    };
    let report = send::send_all(Run {
        queue: &queue,
        holding: &holding,
        quarantine: &quarantine,
        signer: &cred,
        server_cert: server_cert.as_ref(),
        connect: Connect {
            endpoint: s.endpoint.clone(),
            auth,
            trust: s.trust.clone(),
            limits: s.limits,
        },
        clock: &clock,
        purge: PurgeAges::default(),
        dry_run: a.dry_run,
    })
    .await;
    if !a.dry_run {
        let mut state = SendState::read(&s.state_file);
        state.record(&report, SystemTime::now());
        if let Err(e) = state.write(&s.state_file) {
            tracing::warn!(file = %s.state_file.display(), error = %e, "could not record the run for `accounting status`");
        }
    }
    crate::state::runs::note_summary(format!(
        "{} sent, {} quarantined, {} left in the spool{}",
        report.sent,
        report.quarantined.len(),
        report.left,
        report
            .error
            .as_deref()
            .map(|e| format!("; stopped: {e}"))
            .unwrap_or_default()
    ));
    print_report(g, &report)?;
    if let Some(e) = &report.error {
        tracing::error!(error = %e, left = report.left, "send stopped; the messages not sent stay in the spool");
    }
    Ok(report.outcome())
}

/// The temporaries a killed run of ours left beside `send.json` and in the
/// quarantine (see [`crate::state::reclaim_temporaries`]).
fn reclaim_state(s: &Settings) {
    let dirs = [s.state_file.parent(), Some(s.quarantine.as_path())];
    dirs.into_iter()
        .flatten()
        .for_each(crate::state::reclaim_at_start);
}

fn print_report(g: &GlobalArgs, r: &SendReport) -> anyhow::Result<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("signer DN: {}", r.signer_dn);
    println!("spool:     {}", r.spool.display());
    if r.dry_run {
        println!(
            "dry run: {} message(s) found, {} read and signed; nothing sent, nothing changed",
            r.found, r.would_send
        );
    } else {
        println!(
            "{} message(s) found, {} sent to {}, {} quarantined, {} left in the spool",
            r.found,
            r.sent,
            r.publish_url,
            r.quarantined.len(),
            r.left
        );
    }
    for q in &r.quarantined {
        println!(
            "quarantined {}: {} -> {}",
            q.empaid,
            q.reason,
            q.file.display()
        );
    }
    for l in &r.locked {
        println!(
            "skipped {l}: locked by another process (sent once the lock is released or stale)"
        );
    }
    for l in &r.reclaimed_locks {
        println!("lock of a killed run removed: {l}");
    }
    for l in &r.purged_locks {
        println!("stale lock removed: {l}");
    }
    if let Some(e) = &r.error {
        println!("stopped: {e}");
    }
    Ok(())
}

/// Run `status`.
pub async fn status(g: &GlobalArgs, _a: &StatusArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    let s = settings_of(&loaded)?;
    let st = status::gather(
        &s.spool,
        &Quarantine::new(&s.quarantine),
        &s.state_file,
        SystemTime::now(),
    )
    .with_context(|| format!("reading the spool {}", s.spool.display()))?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(Outcome::Success);
    }
    println!("spool:        {}", st.spool.display());
    println!(
        "queued:       {} message(s) ({} locked, {} being written)",
        st.queued, st.locked, st.temporaries
    );
    match &st.oldest {
        Some(o) => println!(
            "oldest:       {} spooled {} ({} s ago)",
            o.name, o.spooled_at, o.age_seconds
        ),
        None => println!("oldest:       -"),
    }
    match &st.send.last_sent_at {
        Some(t) => println!("last sent:    {t}"),
        None => println!("last sent:    never"),
    }
    match &st.send.last_run {
        Some(r) => println!(
            "last run:     {}: {} sent, {} quarantined, {} left{}",
            r.at,
            r.sent,
            r.quarantined,
            r.left,
            r.error
                .as_deref()
                .map(|e| format!("; stopped: {e}"))
                .unwrap_or_default()
        ),
        None => println!("last run:     never"),
    }
    println!(
        "quarantined:  {} message(s) in {}",
        st.quarantined.len(),
        st.quarantine_dir.display()
    );
    for q in &st.quarantined {
        println!(
            "  {} ({} bytes, {}): {}",
            q.note.empaid, q.note.bytes, q.note.quarantined_at, q.note.reason
        );
    }
    Ok(Outcome::Success)
}
