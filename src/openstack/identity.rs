//! Keystone v3 projects and users: a project's extra properties (the VO
//! mapping, `VO` / `egi.VO`, lives there: `shared/specs/accounting.md` §1.3)
//! and user names for accounting records.
//!
//! Calls go to the catalog's `identity` endpoint, or the `auth_url` when the
//! token has no catalog.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::access::ProjectRef;
use super::auth::{join, normalize_auth_url, segment, TokenProject};
use super::compute::borrow;
use super::error::{Error, Target};
use super::session::Session;
use super::wire::{self, impl_raw};

/// A project. Custom properties (`openstack project set --property VO=..`)
/// are top-level keys: see [`Project::property`].
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Project {
    /// Project id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Domain id.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Parent project id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

fn yes() -> bool {
    true
}

impl Project {
    /// A custom property, when it is a string (e.g. `property("VO")`).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }
    /// A reference to scope to it.
    pub fn reference(&self) -> ProjectRef {
        ProjectRef::Id(self.id.clone())
    }
    pub(crate) fn from_token(p: &TokenProject) -> Self {
        Project {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_default(),
            domain_id: p.domain.as_ref().map(|d| d.id.clone()),
            enabled: true,
            raw: serde_json::json!({
                "id": p.id, "name": p.name, "domain_id": p.domain.as_ref().map(|d| &d.id)
            }),
            ..Project::default()
        }
    }
}

/// A user.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct User {
    /// User id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Domain id.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The whole object.
    #[serde(skip)]
    pub raw: Value,
}

/// Filters of [`projects`].
#[derive(Debug, Clone, Default)]
pub struct ProjectQuery {
    /// `tags` (all of them).
    pub tags: Vec<String>,
    /// `domain_id`.
    pub domain_id: Option<String>,
    /// `name`.
    pub name: Option<String>,
}

/// The Keystone v3 URL of `path`.
fn identity_url(s: &Session, path: &str) -> Result<Url, Error> {
    let base = match s.endpoint("identity") {
        Ok(u) => normalize_auth_url(&u)?,
        Err(Error::Catalog { .. }) => s.openstack().auth_url().clone(),
        Err(e) => return Err(e),
    };
    Ok(join(&base, path))
}

async fn get(s: &Session, path: &str, query: &[(&str, &str)]) -> Result<(Target, Value), Error> {
    let mut url = identity_url(s, path)?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let target = Target::new("GET", &url).service("identity");
    let v = s.get_json_url("identity", url, None).await?;
    Ok((target, v))
}

/// `GET /v3/projects/{id}` (a member may read its own project).
pub async fn project(s: &Session, id: &str) -> Result<Project, Error> {
    let (target, v) = get(s, &format!("projects/{}", segment(id)), &[]).await?;
    wire::typed(&target, wire::collection_one(&target, v, "project")?)
}

/// `GET /v3/projects` (needs a system or domain reader).
pub async fn projects(s: &Session, query: &ProjectQuery) -> Result<Vec<Project>, Error> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if !query.tags.is_empty() {
        q.push(("tags", query.tags.join(",")));
    }
    if let Some(d) = &query.domain_id {
        q.push(("domain_id", d.clone()));
    }
    if let Some(n) = &query.name {
        q.push(("name", n.clone()));
    }
    let (target, v) = get(s, "projects", &borrow(&q)).await?;
    wire::collection(&target, v, "projects")?
        .into_iter()
        .map(|v| wire::typed(&target, v))
        .collect()
}

/// `GET /v3/users/{id}` (your own user, or any with a system reader role).
pub async fn user(s: &Session, id: &str) -> Result<User, Error> {
    let (target, v) = get(s, &format!("users/{}", segment(id)), &[]).await?;
    wire::typed(&target, wire::collection_one(&target, v, "user")?)
}

/// `GET /v3/users?limit=1`: whether this token may list users (needs
/// admin, or a system or domain reader); the answer is not kept.
pub async fn list_users_probe(s: &Session) -> Result<(), Error> {
    get(s, "users", &[("limit", "1")]).await.map(|_| ())
}

impl_raw!(Project, User);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_properties() {
        let v = serde_json::json!({"id": "p1", "name": "alpha-1", "domain_id": "default", "enabled": true,
            "VO": "vo.alpha.example", "tags": ["fedcloud"], "options": {}});
        let t = Target::new("GET", &Url::parse("http://k/").unwrap());
        let p: Project = wire::typed(&t, v).unwrap();
        assert_eq!(p.property("VO"), Some("vo.alpha.example"));
        assert_eq!(p.property("options"), None);
        assert_eq!(p.reference(), ProjectRef::Id("p1".into()));
    }
}
