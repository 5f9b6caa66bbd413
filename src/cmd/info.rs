//! `appliance info show|publish` (issue #6): gather the site's facts, build
//! the GLUE 2.1 document, print it or publish it to the configured targets.
//!
//! The creation time is the clock's, or `SOURCE_DATE_EPOCH` when set (for
//! reproducible documents). Exit codes: 0 everything published; 1 a share
//! failed or an item was skipped or changed (the document says what it
//! could); 3 no share could be read (`publish` then keeps the previous
//! document: a failed document is never published) or a target failed;
//! 2 configuration (including, with an AMS target, the host certificate and
//! key, checked before anything is read).

use std::io::Write as _;
use std::time::SystemTime;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::config;
use crate::exit::{Outcome, UsageError};
use crate::info::build::Notice;
use crate::info::gocdb::Source;
use crate::info::{self, glue::Class, publish, Options};
use crate::messaging::ams::{AmsClient, Auth, Endpoint};
use crate::messaging::identity::HostCredential;
use crate::messaging::settings::{self, Settings};
use crate::openstack::{access::ProjectRef, OpenStack};
use crate::state::RunLock;

/// `appliance info ...`
#[derive(Debug, Subcommand)]
pub enum InfoCommand {
    /// Print the GLUE 2.1 JSON document (as cloud-info-provider's
    /// `glue21json` in compat mode).
    Show(ShowArgs),
    /// Publish the document to the targets of `info.publish` (file, Swift,
    /// AMS).
    Publish(PublishArgs),
}

/// Output formats of `info show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// One line, exactly as cloud-info-provider prints it.
    #[default]
    Glue21json,
    /// The same document indented.
    Pretty,
}

/// Options of `appliance info show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Glue21json)]
    pub format: Format,
}

/// Options of `appliance info publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Build the document and say where it would go, without writing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run `appliance info ...`.
pub async fn run(g: &GlobalArgs, c: &InfoCommand) -> anyhow::Result<Outcome> {
    match c {
        InfoCommand::Show(a) => show(g, a).await,
        InfoCommand::Publish(a) => publish_cmd(g, a).await,
    }
}

/// The creation time: `SOURCE_DATE_EPOCH` when set, else now.
pub fn creation_time() -> anyhow::Result<DateTime<Utc>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: i64 = v.trim().parse().map_err(|_| {
                UsageError(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
                ))
            })?;
            Utc.timestamp_opt(secs, 0)
                .single()
                .ok_or_else(|| UsageError(format!("SOURCE_DATE_EPOCH={v} is out of range")).into())
        }
        Err(_) => Ok(Utc::now()),
    }
}

fn options(s: &config::sections::info::Section) -> Options {
    Options {
        compat: s.compat,
        select_flavors: s.select_flavors,
        only_appdb_images: s.only_appdb_images,
        flavor_properties: s.flavor_properties.clone(),
    }
}

struct Run {
    built: info::Built,
    endpoint_text: String,
    gocdb_id: Option<String>,
    gathered_gocdb: Source,
    gocdb_problem: Option<String>,
    tls_problem: Option<String>,
}

async fn build_document(loaded: &config::Loaded) -> anyhow::Result<Run> {
    let now = creation_time()?;
    let g = info::gather::gather(loaded).await?;
    let built = info::build(&g.facts, &options(&loaded.config.info), now);
    for n in &built.notices {
        tracing::warn!(subject = %n.subject, "{}", n.message);
    }
    tracing::info!(
        shares = built.shares_ok,
        failed = built.shares_failed,
        entities = built.document.len(),
        gocdb = ?g.gocdb.source,
        "GLUE document built"
    );
    Ok(Run {
        built,
        endpoint_text: g.endpoint_text,
        gocdb_id: g.facts.gocdb.as_ref().map(|e| e.gocdb_id.clone()),
        gathered_gocdb: g.gocdb.source,
        gocdb_problem: g.gocdb.problem,
        tls_problem: g.tls_problem,
    })
}

fn outcome(b: &info::Built) -> Outcome {
    if b.shares_ok == 0 && b.shares_failed > 0 {
        Outcome::Error
    } else if b.shares_failed > 0 || !b.notices.is_empty() {
        Outcome::Partial
    } else {
        Outcome::Success
    }
}

async fn show(g: &GlobalArgs, a: &ShowArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    let run = build_document(&loaded).await?;
    let text = match a.format {
        Format::Glue21json => run.built.document.render_compat(),
        Format::Pretty => run.built.document.render_pretty(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(outcome(&run.built))
}

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    dry_run: bool,
    published: bool,
    shares_ok: usize,
    shares_failed: usize,
    images: usize,
    instance_types: usize,
    accelerators: usize,
    bytes: usize,
    gocdb: Source,
    gocdb_problem: Option<String>,
    tls_problem: Option<String>,
    notices: Vec<Notice>,
    targets: Vec<TargetReport>,
}

#[derive(Debug, Serialize)]
struct TargetReport {
    kind: &'static str,
    location: String,
    ok: bool,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
}

/// What an AMS target needs, checked before anything is gathered.
struct AmsPlan {
    settings: Settings,
    credential: Option<HostCredential>,
}

/// The AMS settings (the `ams` section, its legacy `sender.cfg`, the
/// defaults) with the info project, and the host credential when there is
/// no static token: a problem here is a configuration problem (exit 2).
fn ams_preflight(loaded: &config::Loaded) -> Result<AmsPlan, UsageError> {
    let settings = settings::from_config(loaded)?;
    let credential = match settings.token {
        Some(_) => None,
        None => {
            let usage = |e: crate::messaging::identity::IdentityError| {
                UsageError(format!(
                    "info.publish.ams: {e} (the host certificate gets the AMS token; or set `ams: {{token: ...}}` in the secrets file)"
                ))
            };
            let cred = HostCredential::load(&settings.certificate, &settings.key).map_err(usage)?;
            cred.check_validity(SystemTime::now()).map_err(usage)?;
            Some(cred)
        }
    };
    Ok(AmsPlan {
        settings,
        credential,
    })
}

/// Publish `doc` to AMS; the message id.
async fn ams_publish(
    plan: &AmsPlan,
    endpoint: Endpoint,
    name: &str,
    doc: &[u8],
    limit: usize,
) -> Result<Option<String>, String> {
    let payload = publish::ams_payload(doc);
    let bytes = publish::base64_len(payload.len());
    if bytes > limit {
        return Err(publish::AmsPublishError::TooLarge { bytes, limit }.to_string());
    }
    let auth = match (&plan.settings.token, &plan.credential) {
        (Some(t), _) => Auth::Token(t.clone()),
        (None, Some(c)) => Auth::X509(c),
        (None, None) => return Err("no AMS credential".into()),
    };
    let mut client = AmsClient::connect(endpoint, auth, &plan.settings.trust, plan.settings.limits)
        .await
        .map_err(|e| e.to_string())?;
    let accepted = publish::to_ams(&mut client, name, &payload, limit)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        topic = %client.endpoint().topic,
        bytes,
        document_bytes = doc.len(),
        message_id = ?accepted.message_id,
        attempts = accepted.attempts,
        "GLUE document published to AMS"
    );
    Ok(accepted.message_id)
}

async fn publish_cmd(g: &GlobalArgs, a: &PublishArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    loaded.log_warnings();
    let cfg = &loaded.config;
    let targets = &cfg.info.publish;
    if !targets.any() {
        return Err(UsageError(format!(
            "{}: info.publish has no target; add `info: {{publish: {{file: /var/lib/fedcloud-appliance/info/cloud-info.json}}}}`, \
             `swift: {{container: cloud-info}}` or `ams: {{}}` (or use `appliance info show`)",
            loaded.source.display()
        ))
        .into());
    }
    let ams_plan = match &targets.ams {
        Some(_) => Some(ams_preflight(&loaded)?),
        None => None,
    };
    let _lock = if a.dry_run {
        None
    } else {
        let lock = RunLock::acquire(&cfg.paths.state.join("info").join("publish.lock"))?;
        // what a killed run left (the GOCDB cache is written atomically)
        crate::state::reclaim_at_start(&cfg.paths.state.join("info"));
        Some(lock)
    };
    let run = build_document(&loaded).await?;
    let built = &run.built;
    let doc = built.document.render_compat();
    let mut outcome = outcome(built);
    let publishable =
        outcome != Outcome::Error && !built.document.is_empty() && !doc.trim().is_empty();
    let mut reports = Vec::new();

    let object = targets.swift.as_ref().map(|s| {
        s.object
            .clone()
            .unwrap_or_else(|| publish::object_name(&cfg.site.gocdb, &run.endpoint_text))
    });
    if !publishable {
        tracing::error!(
            "no share could be read: the previous document is kept (a failed document is never published)"
        );
    }
    if let Some(path) = &targets.file {
        let location = path.display().to_string();
        let r = if a.dry_run || !publishable {
            Ok(())
        } else {
            publish::to_file(path, doc.as_bytes()).map_err(|e| format!("{location}: {e}"))
        };
        reports.push(target_report("file", location, r, publishable || a.dry_run));
    }
    if let (Some(sw), Some(object)) = (&targets.swift, &object) {
        let location = format!("swift:{}/{}", sw.container, object);
        let r = if a.dry_run || !publishable {
            Ok(())
        } else {
            swift_upload(&loaded, sw, object, Bytes::from(doc.clone().into_bytes()))
                .await
                .map_err(|e| format!("{e:#}"))
        };
        reports.push(target_report(
            "swift",
            location,
            r,
            publishable || a.dry_run,
        ));
    }
    if let (Some(am), Some(plan)) = (&targets.ams, &ams_plan) {
        let topic = am.topic.clone().or_else(|| {
            run.gocdb_id
                .as_deref()
                .map(|id| publish::ams_topic(&cfg.site.gocdb, id))
        });
        let endpoint = topic.as_ref().map(|t| Endpoint {
            topic: t.clone(),
            project: am.project.clone(),
            ..plan.settings.endpoint.clone()
        });
        let location = match &endpoint {
            Some(e) => format!("ams:{}", e.publish_url()),
            None => format!(
                "ams:{} project {} (no topic)",
                plan.settings.endpoint.host, am.project
            ),
        };
        let name = object
            .clone()
            .unwrap_or_else(|| publish::object_name(&cfg.site.gocdb, &run.endpoint_text));
        let r = match (endpoint, &topic) {
            (None, _) => Err(publish::AmsPublishError::NoTopic.to_string()),
            (Some(_), Some(t)) if !crate::config::sections::ams::valid_ams_name(t) => Err(format!(
                "`{t}` is not an AMS topic name (letters, digits, `_`, `-`, `.`); set `info.publish.ams.topic`"
            )),
            (Some(_), _) if !publishable => Ok(None),
            (Some(_), _) if a.dry_run => {
                let bytes = publish::base64_len(publish::ams_payload(doc.as_bytes()).len());
                if bytes > am.max_message_bytes {
                    Err(publish::AmsPublishError::TooLarge {
                        bytes,
                        limit: am.max_message_bytes,
                    }
                    .to_string())
                } else {
                    Ok(None)
                }
            }
            (Some(e), _) => {
                ams_publish(plan, e, &name, doc.as_bytes(), am.max_message_bytes).await
            }
        };
        let message_id = r.as_ref().ok().cloned().flatten();
        let mut t = target_report("ams", location, r.map(|_| ()), publishable || a.dry_run);
        t.message_id = message_id;
        reports.push(t);
    }
    if reports.iter().any(|r| !r.ok) {
        outcome = Outcome::Error;
    }
    let report = Report {
        config: loaded.source.display().to_string(),
        dry_run: a.dry_run,
        published: publishable && !a.dry_run && reports.iter().all(|r| r.ok),
        shares_ok: built.shares_ok,
        shares_failed: built.shares_failed,
        images: built.document.entities(Class::Image).len(),
        instance_types: built.document.entities(Class::InstanceType).len(),
        accelerators: built.document.entities(Class::Accelerator).len(),
        bytes: doc.len(),
        gocdb: run.gathered_gocdb,
        gocdb_problem: run.gocdb_problem.clone(),
        tls_problem: run.tls_problem.clone(),
        notices: built.notices.clone(),
        targets: reports,
    };
    crate::state::runs::note_summary(format!(
        "{}: {} bytes, {} share(s) ({} failed); targets: {}",
        if report.published {
            "published"
        } else {
            "NOT published"
        },
        report.bytes,
        report.shares_ok,
        report.shares_failed,
        report
            .targets
            .iter()
            .map(|t| format!("{} {}", t.kind, if t.ok { "ok" } else { "FAILED" }))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(outcome)
}

fn target_report(
    kind: &'static str,
    location: String,
    r: Result<(), String>,
    attempted: bool,
) -> TargetReport {
    match r {
        Ok(()) if attempted => TargetReport {
            kind,
            location,
            ok: true,
            error: None,
            message_id: None,
        },
        Ok(()) => TargetReport {
            kind,
            location,
            ok: false,
            error: Some("not published: no share could be read".into()),
            message_id: None,
        },
        Err(e) => {
            tracing::error!(target = kind, error = %e, "publishing failed");
            TargetReport {
                kind,
                location,
                ok: false,
                error: Some(e),
                message_id: None,
            }
        }
    }
}

async fn swift_upload(
    loaded: &config::Loaded,
    sw: &config::sections::info::Swift,
    object: &str,
    doc: Bytes,
) -> anyhow::Result<()> {
    let os = OpenStack::new(loaded.cloud_access()?)?;
    let s = match &sw.project_id {
        Some(p) => os.scoped(&ProjectRef::Id(p.clone())).await?,
        None => os.session().await?,
    };
    publish::to_swift(&s, &sw.container, object, doc).await?;
    Ok(())
}

fn print_report(r: &Report) {
    let verb = if r.dry_run {
        "would publish"
    } else if r.published {
        "published"
    } else {
        "NOT published"
    };
    println!(
        "{verb}: {} bytes, {} share(s) ({} failed), {} images, {} instance types, {} accelerators; GOCDB: {:?}",
        r.bytes, r.shares_ok, r.shares_failed, r.images, r.instance_types, r.accelerators, r.gocdb
    );
    for t in &r.targets {
        match &t.error {
            None => match &t.message_id {
                Some(id) => println!("  ok    {} {} (message {id})", t.kind, t.location),
                None => println!("  ok    {} {}", t.kind, t.location),
            },
            Some(e) => println!("  FAIL  {} {}: {e}", t.kind, t.location),
        }
    }
    for n in &r.notices {
        println!("  warning: {}: {}", n.subject, n.message);
    }
}
