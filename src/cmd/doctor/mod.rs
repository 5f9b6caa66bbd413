//! `appliance doctor`: can this appliance do its job against this site?
//!
//! Loads and validates the configuration, then checks, each failing check
//! with its remedy (`docs/doctor-json.md` lists them): proxies and DNS of
//! every remote service, Keystone authentication and clock skew, every VO
//! project (scope, catalog endpoints), the roles each job needs (probes
//! that change nothing, [`probes`]), the host certificate, an AMS token and
//! topic, GOCDB registration of the endpoint and of the host DN, and the
//! CRLs ([`site`]). With `--inventory` it lists instead what each project
//! holds (servers with deleted ones, images, flavors, volumes, floating
//! IPs). Projects are checked concurrently; a failing check does not stop
//! the others (exit 1; 3 when Keystone refuses the credential).

mod probes;
mod site;

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::config::{self, Loaded};
use crate::doctor::{proxy::ProxyEnv, Check, Summary, Verdict};
use crate::exit::Outcome;
use crate::openstack::{
    self, access::ProjectRef, compute, image, network, volume, OpenStack, Session,
};

/// Projects checked at once.
const CONCURRENCY: usize = 4;

/// Catalog service types the flows need.
const SERVICES: [&str; 5] = ["identity", "compute", "image", "volumev3", "network"];

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    ok: bool,
    warnings: Vec<String>,
    /// Every project the site credential can reach (`GET /v3/auth/projects`),
    /// with the VO it serves here, if any.
    accessible: Accessible,
    projects: Vec<ProjectReport>,
    /// Every check, in a fixed order.
    checks: Vec<Check>,
    /// Counts of `checks`.
    summary: Summary,
}

#[derive(Debug, Serialize, Default)]
struct Accessible {
    ok: bool,
    error: Option<String>,
    projects: Vec<AccessibleProject>,
}

#[derive(Debug, Serialize)]
struct AccessibleProject {
    id: String,
    name: String,
    vo: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProjectReport {
    vo: String,
    project: ProjectId,
    ok: bool,
    error: Option<String>,
    auth: &'static str,
    endpoints: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory: Option<Inventory>,
}

#[derive(Debug, Serialize, Default)]
struct ProjectId {
    id: String,
    name: Option<String>,
}

#[derive(Debug, Serialize, Default)]
struct Inventory {
    servers: Vec<Item>,
    images: Vec<Item>,
    flavors: Vec<Item>,
    volumes: Vec<Item>,
    floating_ips: Vec<Item>,
}

#[derive(Debug, Serialize)]
struct Item {
    id: String,
    name: Option<String>,
    status: Option<String>,
}

/// Run `appliance doctor`.
pub async fn run(g: &GlobalArgs, args: &DoctorArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&g.config)?;
    let mut jobs = Vec::new();
    for vo in loaded.vos() {
        let access = loaded.vo_access(vo)?;
        let auth = access.credential.kind();
        let client = OpenStack::new(access)?;
        for project in &vo.projects {
            if let Some(only) = &args.project {
                if !matches_project(project, only) {
                    continue;
                }
            }
            jobs.push((vo.name.clone(), project.clone(), client.clone(), auth));
        }
    }
    let deep = !args.inventory;
    let site_auth = if deep {
        Some(site::keystone_auth(&loaded).await)
    } else {
        None
    };
    let accessible = accessible_projects(&loaded).await;
    let inventory = args.inventory;
    let scoped: Vec<(ProjectReport, Option<Session>)> = stream::iter(jobs)
        .map(|(vo, project, client, auth)| check_project(vo, project, client, auth, inventory))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut checks: Vec<Check> = Vec::new();
    let mut auth_failed = false;
    if let Some((auth_check, site_session)) = site_auth {
        auth_failed = auth_check.status == Verdict::Failed;
        checks = deep_checks(&loaded, auth_check, site_session, &scoped).await;
    } else {
        checks.extend(scoped.iter().map(|(p, _)| project_check(p)));
    }
    let projects: Vec<ProjectReport> = scoped.into_iter().map(|(p, _)| p).collect();
    let summary = Summary::of(&checks);
    let ok = projects.iter().all(|p| p.ok) && summary.failed == 0;
    let report = Report {
        config: g.config.display().to_string(),
        ok,
        warnings: loaded.warnings.clone(),
        accessible,
        projects,
        checks,
        summary,
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report, deep);
    }
    let any_project = report.projects.is_empty() || report.projects.iter().any(|p| p.ok);
    Ok(match (ok, any_project && !auth_failed) {
        (true, _) => Outcome::Success,
        (false, true) => Outcome::Partial,
        (false, false) => Outcome::Error,
    })
}

/// `keystone.project`: the project's scope and catalog.
fn project_check(p: &ProjectReport) -> Check {
    let subject = match &p.project.name {
        Some(n) => format!("project {n} ({}) of {}", p.project.id, p.vo),
        None => format!("project {} of {}", p.project.id, p.vo),
    };
    match &p.error {
        None => Check::ok(
            "keystone.project",
            subject,
            format!(
                "scoped ({}); endpoints: {}",
                p.auth,
                p.endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(e) if e.contains("catalog") => Check::failed(
            "keystone.project",
            subject,
            e.clone(),
            "the token's catalog lacks a service the jobs use: check `openstack.region` and `openstack.interface`, or ask the cloud operators",
        ),
        Some(e) => Check::failed(
            "keystone.project",
            subject,
            e.clone(),
            "give the appliance's user a role on the project (`openstack role add ... member`), or fix the project in `vos`",
        ),
    }
}

/// Every check but the inventory, in the documented order.
async fn deep_checks(
    loaded: &Loaded,
    auth_check: Check,
    (site_client, site_session): site::SiteClient,
    scoped: &[(ProjectReport, Option<Session>)],
) -> Vec<Check> {
    let c = &loaded.config;
    let mut checks = site::config_warnings(loaded);
    let env = ProxyEnv::from_process();
    let remote = site::remote_urls(loaded);
    checks.push(site::proxies(&env, &remote).await);
    let catalog: Vec<url::Url> = site_session
        .as_ref()
        .map(|s| SERVICES.iter().filter_map(|t| s.endpoint(t).ok()).collect())
        .unwrap_or_default();
    checks.extend(site::dns(&env, &remote, &catalog).await);
    checks.push(auth_check);
    if let (Some(os), Some(_)) = (&site_client, &site_session) {
        checks.push(site::keystone_clock(os).await);
    }
    checks.extend(scoped.iter().map(|(p, _)| project_check(p)));

    // The roles each job needs.
    let glance = c.images.glance_endpoint.clone();
    let with_glance = |s: &Session| match &glance {
        Some(u) => s.clone().with_endpoint("image", u.clone()),
        None => s.clone(),
    };
    if c.components.images.enabled {
        if let Some(s) = &site_session {
            let kind = c.openstack.source.auth().method.kind().name();
            let w = probes::who(s, None, kind);
            checks.extend(probes::images_owner(&with_glance(s), &w).await);
        }
    }
    let per_project: Vec<Vec<Check>> =
        stream::iter(scoped.iter().filter_map(|(p, s)| Some((p, s.as_ref()?))))
            .map(|(p, s)| {
                let with_glance = &with_glance;
                async move {
                    let w = probes::who(s, Some(&p.vo), p.auth);
                    let mut out = Vec::new();
                    if c.components.accounting.enabled {
                        out.extend(probes::accounting(loaded, s, &w).await);
                    }
                    if c.components.info.enabled {
                        out.extend(probes::info(s, &w).await);
                    }
                    if c.components.images.enabled {
                        out.push(probes::images_member(&with_glance(s), &w).await);
                    }
                    out
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
    checks.extend(per_project.into_iter().flatten());

    let (cert_check, cred) = site::host_certificate(loaded);
    checks.push(cert_check);
    let (ams, gocdb) = tokio::join!(
        site::ams(loaded, cred.as_ref()),
        site::gocdb(loaded, site_client.as_ref(), cred.as_ref())
    );
    checks.extend(ams);
    checks.extend(gocdb);
    checks.push(site::crl(loaded));
    checks
}

/// The projects the site-wide credential reaches, each with the VO that
/// maps it (by id or name) in the configuration.
async fn accessible_projects(loaded: &config::Loaded) -> Accessible {
    let listed = async {
        let client = OpenStack::new(loaded.cloud_access()?)?;
        Ok::<_, anyhow::Error>(client.projects().await?)
    }
    .await;
    match listed {
        Ok(list) => Accessible {
            ok: true,
            error: None,
            projects: list
                .into_iter()
                .map(|p| {
                    let vo = loaded
                        .vos()
                        .iter()
                        .find(|vo| {
                            vo.projects.iter().any(|r| match r {
                                ProjectRef::Id(id) => *id == p.id,
                                ProjectRef::Name { name, .. } => *name == p.name,
                            })
                        })
                        .map(|vo| vo.name.clone());
                    AccessibleProject {
                        id: p.id,
                        name: p.name,
                        vo,
                    }
                })
                .collect(),
        },
        Err(e) => Accessible {
            ok: false,
            error: Some(format!("{e:#}")),
            projects: Vec::new(),
        },
    }
}

fn matches_project(project: &ProjectRef, wanted: &str) -> bool {
    match project {
        ProjectRef::Id(id) => id == wanted,
        ProjectRef::Name { name, .. } => name == wanted,
    }
}

async fn check_project(
    vo: String,
    project: ProjectRef,
    client: OpenStack,
    auth: &'static str,
    inventory: bool,
) -> (ProjectReport, Option<Session>) {
    let mut report = ProjectReport {
        vo,
        project: ProjectId {
            id: project.to_string(),
            name: None,
        },
        ok: false,
        error: None,
        auth,
        endpoints: BTreeMap::new(),
        inventory: None,
    };
    let session = match client.scoped(&project).await {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.to_string());
            return (report, None);
        }
    };
    if let Some(p) = session.project() {
        report.project = ProjectId {
            id: p.id.clone(),
            name: p.name.clone(),
        };
    }
    let mut problems = Vec::new();
    for service in SERVICES {
        match session.endpoint(service) {
            Ok(url) => {
                report
                    .endpoints
                    .insert(service.to_string(), url.to_string());
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if inventory && problems.is_empty() {
        match list_inventory(&session).await {
            Ok(inv) => report.inventory = Some(inv),
            Err(e) => problems.push(e.to_string()),
        }
    }
    report.ok = problems.is_empty();
    if !problems.is_empty() {
        report.error = Some(problems.join("; "));
    }
    (report, Some(session))
}

async fn list_inventory(session: &Session) -> Result<Inventory, openstack::Error> {
    let project_id = session.project_id().map(str::to_string);
    // changes-since the epoch: every server of the project, deleted ones included.
    let servers_query = compute::ServerQuery {
        changes_since: chrono::DateTime::from_timestamp(0, 0),
        ..Default::default()
    };
    let flavors_query = compute::FlavorQuery {
        extra_specs: compute::ExtraSpecs::Skip,
        ..Default::default()
    };
    let fip_query = network::FloatingIpQuery {
        project_id,
        ..Default::default()
    };
    let (image_query, volume_query) =
        (image::ImageQuery::default(), volume::VolumeQuery::default());
    let (servers, images, flavors, volumes, fips) = tokio::try_join!(
        compute::servers(session, &servers_query),
        image::images(session, &image_query),
        compute::flavors(session, &flavors_query),
        volume::volumes(session, &volume_query),
        network::floating_ips(session, &fip_query),
    )?;
    Ok(Inventory {
        servers: servers
            .into_iter()
            .map(|s| Item {
                id: s.id,
                name: Some(s.name),
                status: Some(s.status),
            })
            .collect(),
        images: images
            .into_iter()
            .map(|i| Item {
                id: i.id,
                name: i.name,
                status: Some(i.status),
            })
            .collect(),
        flavors: flavors
            .into_iter()
            .map(|f| Item {
                id: f.id,
                name: Some(f.name),
                status: None,
            })
            .collect(),
        volumes: volumes
            .into_iter()
            .map(|v| Item {
                id: v.id,
                name: v.name,
                status: Some(v.status),
            })
            .collect(),
        floating_ips: fips
            .into_iter()
            .map(|f| Item {
                id: f.id,
                name: Some(f.floating_ip_address),
                status: f.status,
            })
            .collect(),
    })
}

fn print_human(report: &Report, deep: bool) {
    println!("configuration: {} (valid)", report.config);
    if !deep {
        for w in &report.warnings {
            println!("  warning: {w}");
        }
    }
    if report.accessible.ok {
        let unmapped: Vec<&str> = report
            .accessible
            .projects
            .iter()
            .filter(|p| p.vo.is_none())
            .map(|p| p.name.as_str())
            .collect();
        println!(
            "keystone: the site credential reaches {} project(s){}",
            report.accessible.projects.len(),
            if unmapped.is_empty() {
                String::new()
            } else {
                format!("; not mapped to any VO: {}", unmapped.join(", "))
            }
        );
    } else if let Some(e) = &report.accessible.error {
        println!("keystone: cannot list the credential's projects: {e}");
    }
    for c in report.checks.iter().filter(|_| deep) {
        println!(
            "{:<5} {:<30} {}: {}",
            c.status.label(),
            c.id,
            c.subject,
            c.message
        );
        if let Some(r) = &c.remedy {
            println!("{:<5} {:<30} remedy: {r}", "", "");
        }
    }
    for p in report.projects.iter().filter(|_| !deep) {
        let name = p.project.name.as_deref().unwrap_or("");
        if p.ok {
            println!("OK    {:<20} {} {} ({})", p.vo, p.project.id, name, p.auth);
        } else {
            println!("FAIL  {:<20} {} {} ({})", p.vo, p.project.id, name, p.auth);
            if let Some(e) = &p.error {
                println!("      {e}");
            }
        }
        if let Some(inv) = &p.inventory {
            println!(
                "      servers {} (deleted {}), images {}, flavors {}, volumes {}, floating IPs {}",
                inv.servers.len(),
                inv.servers
                    .iter()
                    .filter(|s| s.status.as_deref() == Some("DELETED"))
                    .count(),
                inv.images.len(),
                inv.flavors.len(),
                inv.volumes.len(),
                inv.floating_ips.len()
            );
        }
    }
    let s = &report.summary;
    println!(
        "{}: {} ok, {} warning(s), {} failed, {} skipped",
        if report.ok {
            "all checks passed"
        } else {
            "some checks FAILED"
        },
        s.ok,
        s.warning,
        s.failed,
        s.skipped
    );
}
