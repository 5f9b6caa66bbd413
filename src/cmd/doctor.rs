//! `appliance doctor`: can this appliance do its job against this site?
//!
//! Loads and validates the configuration, authenticates to Keystone, then for
//! every VO project: scopes a token, resolves the catalog endpoints the flows
//! use and, with `--inventory`, lists what the project holds (servers with
//! deleted ones, images, flavors, volumes, floating IPs). Projects are checked
//! concurrently; one failing project does not stop the others (exit 1).

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::config;
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
    let accessible = accessible_projects(&loaded).await;
    let inventory = args.inventory;
    let projects: Vec<ProjectReport> = stream::iter(jobs)
        .map(|(vo, project, client, auth)| check_project(vo, project, client, auth, inventory))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let ok = projects.iter().all(|p| p.ok);
    let report = Report {
        config: g.config.display().to_string(),
        ok,
        warnings: loaded.warnings.clone(),
        accessible,
        projects,
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(match (ok, report.projects.iter().any(|p| p.ok)) {
        (true, _) => Outcome::Success,
        (false, true) => Outcome::Partial,
        (false, false) => Outcome::Error,
    })
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
) -> ProjectReport {
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
            return report;
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
    report
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

fn print_human(report: &Report) {
    println!("configuration: {} (valid)", report.config);
    for w in &report.warnings {
        println!("  warning: {w}");
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
    for p in &report.projects {
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
    println!(
        "{}",
        if report.ok {
            "all checks passed"
        } else {
            "some checks FAILED"
        }
    );
}
