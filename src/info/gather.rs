//! The gathering adapter: the site configuration and OpenStack in,
//! [`SiteFacts`] out. The only part of `info` that does I/O besides
//! [`gocdb::lookup`](super::gocdb::lookup), [`tls::probe`](super::tls::probe)
//! and the publishers.
//!
//! Per VO project, concurrently (order kept): a project-scoped token (one
//! credential per VO; OIDC federates once and rescopes per project), then
//! at once Glance active images (paged), Nova flavors with extra specs
//! inline (microversion 2.61 when Nova has it, else one `os-extra_specs`
//! call per flavor), the quota set and the servers (paged). Nova's version
//! document is read once per run.
//! Any failure of a project is that share's failure, never the site's.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::facts::{FlavorFacts, GocdbEntry, ProjectFacts, ShareFacts, ShareFailure, SiteFacts};
use super::gocdb::{self, Lookup};
use super::tls;
use crate::config::Loaded;
use crate::openstack::access::ProjectRef;
use crate::openstack::compute::{self, ApiVersion, ExtraSpecs, FlavorQuery, FlavorVisibility};
use crate::openstack::image::{self, ImageQuery};
use crate::openstack::{Error, OpenStack, Session};

/// Projects read at once.
pub const CONCURRENCY: usize = 4;

/// What [`gather`] found, plus how.
#[derive(Debug)]
pub struct Gathered {
    /// The facts.
    pub facts: SiteFacts,
    /// The GOCDB lookup.
    pub gocdb: Lookup,
    /// Why the TLS facts are `UNKNOWN`, when the endpoint is https.
    pub tls_problem: Option<String>,
    /// The endpoint as written in the configuration (GOCDB match, catch-all
    /// object name; the IDs too in compat mode).
    pub endpoint_text: String,
}

struct Job {
    vo: String,
    project: Option<ProjectRef>,
    client: OpenStack,
}

/// Read everything the document needs. Configuration problems (a missing
/// secret) are errors; anything OpenStack does is a share's outcome.
pub async fn gather(loaded: &Loaded) -> Result<Gathered, anyhow::Error> {
    let cfg = &loaded.config;
    let info = &cfg.info;
    let site_client = OpenStack::new(loaded.cloud_access()?)?;
    let authentication = site_client.access().credential.kind().to_string();

    // One client per credential: VOs without their own share the site's.
    let mut jobs = Vec::new();
    for vo in loaded.vos() {
        let client = match &vo.auth {
            Some(_) => OpenStack::new(loaded.vo_access(vo)?)?,
            None => site_client.clone(),
        };
        if vo.projects.is_empty() {
            jobs.push(Job {
                vo: vo.name.clone(),
                project: None,
                client,
            });
        } else {
            for p in &vo.projects {
                jobs.push(Job {
                    vo: vo.name.clone(),
                    project: Some(p.clone()),
                    client: client.clone(),
                });
            }
        }
    }

    let endpoint_text = loaded.endpoint_text();
    let endpoint = if info.compat {
        endpoint_text.clone()
    } else {
        cfg.site.endpoint.as_str().to_string()
    };
    let configured = cfg.site.endpoint_id.clone().map(|id| GocdbEntry {
        gocdb_id: id,
        site_name: cfg.site.gocdb.clone(),
    });
    let gocdb_fut = gocdb::lookup(
        &site_client,
        &info.gocdb_url,
        &endpoint_text,
        &cfg.paths.state,
        configured,
    );
    let tls_fut = tls::probe(
        &cfg.site.endpoint,
        &cfg.openstack.tls,
        cfg.openstack.timeout,
    );

    let version: Arc<tokio::sync::OnceCell<Option<ApiVersion>>> = Arc::default();
    let page = info.image_page_size;
    let shares_fut = stream::iter(jobs)
        .map(|job| {
            let version = version.clone();
            async move {
                let label = job
                    .project
                    .as_ref()
                    .map_or_else(|| "(the credential's project)".to_string(), ToString::to_string);
                let result = project(&job, &version, page).await.map_err(|e| {
                    tracing::warn!(vo = %job.vo, project = %label, error = %e, "share not published");
                    ShareFailure {
                        auth: matches!(e, Error::Unauthorized { .. }),
                        message: e.to_string(),
                    }
                });
                ShareFacts {
                    vo: job.vo,
                    project: label,
                    result,
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>();

    let (gocdb, ca, shares) = tokio::join!(gocdb_fut, tls_fut, shares_fut);
    if let Some(p) = &gocdb.problem {
        tracing::warn!(source = ?gocdb.source, problem = %p, "GOCDB lookup of the endpoint failed");
    }
    let (ca, tls_problem) = match ca {
        Ok(ca) => (ca, None),
        Err(tls::ProbeError::NotHttps) => (Default::default(), None),
        Err(e) => {
            tracing::warn!(error = %e, "IssuerCA/TrustedCA unknown");
            (Default::default(), Some(e.to_string()))
        }
    };
    let nova_version = version.get().cloned().flatten().map(|v| v.version);
    Ok(Gathered {
        facts: SiteFacts {
            site: cfg.site.gocdb.clone(),
            endpoint,
            gocdb: gocdb.entry.clone(),
            ca,
            authentication,
            nova_version,
            shares,
        },
        gocdb,
        tls_problem,
        endpoint_text,
    })
}

async fn project(
    job: &Job,
    version: &tokio::sync::OnceCell<Option<ApiVersion>>,
    page: u32,
) -> Result<ProjectFacts, Error> {
    let s: Session = match &job.project {
        Some(p) => job.client.scoped(p).await?,
        None => job.client.session().await?,
    };
    let tp = s
        .project()
        .cloned()
        .ok_or_else(|| Error::Config("the token is not scoped to a project".into()))?;
    // Nova's version document (once per run) decides whether extra specs
    // come inline; the four listings then go out at once.
    let images = async {
        image::images(
            &s,
            &ImageQuery {
                status: Some("active".into()),
                page_size: Some(page),
                ..ImageQuery::default()
            },
        )
        .await
    };
    let flavors = async {
        let v = version
            .get_or_try_init(|| async { compute::version(&s).await.map(Some) })
            .await?
            .clone();
        compute::flavors_with_version(
            &s,
            &FlavorQuery {
                visibility: FlavorVisibility::All,
                extra_specs: ExtraSpecs::Auto,
                page_size: None,
            },
            v.as_ref(),
        )
        .await
    };
    let quotas = async {
        Ok::<_, Error>(match compute::quota_set(&s, &tp.id).await {
            Ok(q) => match q.raw {
                Value::Object(m) => Some(m),
                _ => None,
            },
            Err(Error::Forbidden { .. }) => None,
            Err(e) => {
                tracing::warn!(vo = %job.vo, project = %tp.id, error = %e, "quotas not readable; MaxVM 0");
                None
            }
        })
    };
    let server_query = compute::ServerQuery::default();
    let servers = compute::servers(&s, &server_query);
    let (images, flavors, quotas, servers) = tokio::try_join!(images, flavors, quotas, servers)?;
    let images = images
        .into_iter()
        .filter_map(|i| match i.raw {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect();
    let glance_endpoint = s.endpoint("image")?.to_string();
    let flavors = flavors
        .into_iter()
        .map(|f| FlavorFacts {
            vcpus: u64::from(f.vcpus),
            ram: f.ram,
            disk: f.disk,
            is_public: f.is_public.unwrap_or(true),
            extra_specs: f.extra_specs.unwrap_or_else(BTreeMap::new),
            id: f.id,
            name: f.name,
        })
        .collect();
    Ok(ProjectFacts {
        project_id: tp.id.clone(),
        project_name: tp.name.clone(),
        project_domain_name: tp.domain.as_ref().and_then(|d| d.name.clone()),
        glance_endpoint,
        images,
        flavors,
        quotas,
        server_statuses: servers.into_iter().map(|s| s.status).collect(),
    })
}
