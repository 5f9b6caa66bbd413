//! The permission probes of `doctor`: for each job, the calls it makes,
//! made once in a way that changes nothing ([`crate::doctor::roles`]).

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::config::sections::accounting::{RecordType, VoSource};
use crate::config::Loaded;
use crate::doctor::roles::{self, conflict_is_allowed, Op, Who};
use crate::doctor::Check;
use crate::openstack::image::v2_path;
use crate::openstack::network::v20_path;
use crate::openstack::{compute, identity, image, Error, Session};

/// Who a session is, for subjects and remedies.
pub fn who(s: &Session, vo: Option<&str>, credential: &'static str) -> Who {
    let u = s.user();
    let (pid, pname) = s
        .project()
        .map(|p| (p.id.clone(), p.name.clone()))
        .unwrap_or_default();
    Who {
        user: u.name.clone().unwrap_or_else(|| u.id.clone()),
        domain: u
            .domain
            .as_ref()
            .and_then(|d| d.name.clone())
            .unwrap_or_else(|| "Default".into()),
        label: match (pname, vo) {
            (Some(n), Some(vo)) => format!("project {n} ({pid}) of {vo}"),
            (Some(n), None) => format!("project {n} ({pid})"),
            (None, Some(vo)) => format!("project {pid} of {vo}"),
            (None, None) => format!("project {pid}"),
        },
        project: pid,
        credential,
    }
}

fn listed<T>(r: Result<T, Error>) -> Result<String, Error> {
    r.map(|_| "listed one page".to_string())
}

/// One page of one item of a listing: whether the token may list.
async fn list_one(
    s: &Session,
    service: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<String, Error> {
    let mut q = query.to_vec();
    q.push(("limit", "1"));
    listed(s.get_json::<Value>(service, path, &q, None).await)
}

fn probe(op: Op, w: &Who, r: Result<String, Error>) -> Check {
    roles::judge(op, w, r.as_ref().map(String::clone))
}

/// The probes of `accounting extract` in one VO project.
pub async fn accounting(l: &Loaded, s: &Session, w: &Who) -> Vec<Check> {
    let sec = &l.config.accounting;
    let mut out = Vec::new();
    let since =
        (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let servers: Result<Value, Error> = s
        .get_json(
            "compute",
            "servers/detail",
            &[("changes-since", since.as_str()), ("limit", "1")],
            None,
        )
        .await;
    // A server of another user, to read that user as extract does.
    let other_user = servers.as_ref().ok().and_then(|v| {
        v["servers"]
            .as_array()?
            .iter()
            .filter_map(|x| x["user_id"].as_str())
            .find(|u| *u != s.user().id)
            .map(str::to_string)
    });
    out.push(probe(Op::Servers, w, listed(servers)));
    out.push(probe(
        Op::Flavors,
        w,
        list_one(s, "compute", "flavors/detail", &[]).await,
    ));
    if sec.record_types.contains(&RecordType::Storage) {
        out.push(probe(
            Op::Volumes,
            w,
            list_one(s, "volumev3", "volumes/detail", &[]).await,
        ));
    }
    if sec.record_types.contains(&RecordType::Ip) {
        let r = match s.endpoint("network") {
            Ok(ep) => {
                let path = v20_path(&ep, "floatingips");
                list_one(s, "network", &path, &[("project_id", w.project.as_str())]).await
            }
            Err(e) => Err(e),
        };
        out.push(probe(Op::FloatingIps, w, r));
    }
    if sec.vo_source == VoSource::Property {
        out.push(probe(
            Op::Project,
            w,
            identity::project(s, &w.project)
                .await
                .map(|_| "read it".to_string()),
        ));
    }
    let users = match &other_user {
        Some(id) => identity::user(s, id)
            .await
            .map(|_| format!("read user {id}, owner of a server")),
        None => identity::list_users_probe(s)
            .await
            .map(|_| "listed users".to_string()),
    };
    out.push(probe(Op::Users, w, users));
    out
}

/// The probes of `info publish` in one VO project.
pub async fn info(s: &Session, w: &Who) -> Vec<Check> {
    let flavors: Result<Value, Error> = s
        .get_json("compute", "flavors/detail", &[("limit", "1")], None)
        .await;
    let specs = match flavors {
        Ok(v) => match v["flavors"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|f| f["id"].as_str())
        {
            Some(id) => compute::flavor_extra_specs(s, id)
                .await
                .map(|_| format!("read the extra specs of flavor {id}")),
            None => Ok("no flavor to read".to_string()),
        },
        Err(e) => Err(e),
    };
    let images = match s.endpoint("image") {
        Ok(ep) => list_one(s, "image", &v2_path(&ep, "images"), &[]).await,
        Err(e) => Err(e),
    };
    vec![
        probe(Op::FlavorExtraSpecs, w, specs),
        probe(Op::ImageList, w, images),
    ]
}

async fn images_page(s: &Session, query: &[(&str, &str)]) -> Result<Vec<Value>, Error> {
    let ep = s.endpoint("image")?;
    let v: Value = s
        .get_json("image", &v2_path(&ep, "images"), query, None)
        .await?;
    Ok(v["images"].as_array().cloned().unwrap_or_default())
}

/// The site credential's token has no project: `images sync` has no
/// project to own the images (and an unscoped token no catalog), whatever
/// the roles.
fn unscoped_owner() -> Vec<Check> {
    let subject = "the site credential (openstack.auth)";
    let remedy = "set openstack.auth.project-id (or project-name and project-domain-name) to the project that owns the appliance's images";
    vec![
        Check::failed(
            Op::ImageCreate.id(),
            subject,
            "its token has no project (openstack.auth names none, and the user has no default project): image sync uploads into the credential's own project and shares the images from there, and an unscoped token has no catalog",
            remedy,
        ),
        Check::skipped(
            Op::ImageUpload.id(),
            subject,
            "no images owner project (see roles.images.create)",
            remedy,
        ),
        Check::skipped(
            Op::ImageShare.id(),
            subject,
            "no images owner project (see roles.images.create)",
            remedy,
        ),
    ]
}

/// The probes of `images sync` in the images owner project: create,
/// upload and share, each where Glance refuses it after its policy.
pub async fn images_owner(s: &Session, w: &Who) -> Vec<Check> {
    if s.project().is_none() {
        return unscoped_owner();
    }
    let roles = s.roles();
    let mut out = Vec::new();
    // Create: an image with the id of an existing one.
    let any = images_page(s, &[("limit", "1")]).await;
    out.push(match any {
        Ok(list) => match list.first().and_then(|i| i["id"].as_str()) {
            Some(id) => {
                let body = json!({"id": id, "name": "appliance-doctor-probe",
                    "disk_format": "raw", "container_format": "bare"});
                let r = image::create_image(s, &body).await;
                let r = match r {
                    // The id was free after all: take the record away again.
                    Ok(created) => {
                        let _ = image::delete_image(s, &created.id).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                probe(Op::ImageCreate, w, conflict_is_allowed(r))
            }
            None => roles::by_role(Op::ImageCreate, w, &roles, "no image visible to probe with"),
        },
        Err(e) => probe(Op::ImageCreate, w, Err(e)),
    });
    // Upload and share: the project's own images.
    let own = images_page(
        s,
        &[
            ("owner", w.project.as_str()),
            ("status", "active"),
            ("limit", "20"),
        ],
    )
    .await
    .unwrap_or_default();
    out.push(match own.first().and_then(|i| i["id"].as_str()) {
        Some(id) => {
            let path = match s.endpoint("image") {
                Ok(ep) => v2_path(&ep, &format!("images/{id}/file")),
                Err(e) => return vec![probe(Op::ImageUpload, w, Err(e))],
            };
            let mut h = HeaderMap::new();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let r = s
                .send_raw(Method::PUT, "image", &path, h, Some(bytes::Bytes::new()))
                .await
                .map(|_| ());
            probe(Op::ImageUpload, w, conflict_is_allowed(r))
        }
        None => roles::by_role(
            Op::ImageUpload,
            w,
            &roles,
            "no active image of this project to probe with yet",
        ),
    });
    let mut shared_member = None;
    for i in own.iter().filter(|i| i["visibility"] == "shared") {
        let Some(id) = i["id"].as_str() else { continue };
        if let Ok(m) = image::members(s, id).await {
            if let Some(first) = m.first() {
                shared_member = Some((id.to_string(), first.member_id.clone()));
                break;
            }
        }
    }
    out.push(match shared_member {
        Some((id, member)) => probe(
            Op::ImageShare,
            w,
            conflict_is_allowed(image::add_member(s, &id, &member).await),
        ),
        None => roles::by_role(
            Op::ImageShare,
            w,
            &roles,
            "no shared image of this project to probe with yet",
        ),
    });
    out
}

/// The probe of `images sync` in a VO project: accepting a shared image
/// (the member status is set to the one it has).
pub async fn images_member(s: &Session, w: &Who) -> Check {
    let shared = images_page(
        s,
        &[
            ("visibility", "shared"),
            ("member_status", "all"),
            ("limit", "20"),
        ],
    )
    .await
    .unwrap_or_default();
    let foreign = shared
        .iter()
        .filter(|i| i["owner"].as_str() != Some(w.project.as_str()))
        .find_map(|i| i["id"].as_str().map(str::to_string));
    let Some(id) = foreign else {
        return roles::by_role(
            Op::ImageAccept,
            w,
            &s.roles(),
            "no image shared with this project to probe with yet",
        );
    };
    let status = match s.endpoint("image") {
        Ok(ep) => {
            s.get_json::<Value>(
                "image",
                &v2_path(&ep, &format!("images/{id}/members/{}", w.project)),
                &[],
                None,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let r = match status {
        Ok(v) => {
            let st = v["status"].as_str().unwrap_or("pending").to_string();
            image::set_member_status(s, &id, &w.project, &st)
                .await
                .map(|_| format!("set the member status of image {id} to its own `{st}`"))
        }
        Err(e) => Err(e),
    };
    probe(Op::ImageAccept, w, r)
}
