//! Glance v2 images: the paged listing with filters (cloud-info-provider's
//! `GET /v2/images?status=active`, cASO's image property lookup), and the
//! writes image sync makes (create, JSON-patch update, streamed upload,
//! delete, deactivate, members). Custom image properties are top-level keys
//! of the image JSON: see [`Image::property`].

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::error::{Error, Target};
use super::session::Session;
use super::wire::{self, impl_raw, opt_time};

/// An image.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Image {
    /// Image id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// `queued`, `active`, `deactivated`, ...
    #[serde(default)]
    pub status: String,
    /// `public`, `community`, `shared`, `private`.
    #[serde(default)]
    pub visibility: String,
    /// Owner project id.
    #[serde(default)]
    pub owner: Option<String>,
    /// Size, bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// `qcow2`, `raw`, ...
    #[serde(default)]
    pub disk_format: Option<String>,
    /// `bare`, `ova`, ...
    #[serde(default)]
    pub container_format: Option<String>,
    /// `os_hash_algo` (e.g. `sha512`).
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    /// `os_hash_value`.
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// MD5 `checksum`.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `/v2/images/{id}/file`.
    #[serde(default)]
    pub file: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The whole object, custom properties included.
    #[serde(skip)]
    pub raw: Value,
}

impl Image {
    /// A custom property (`os_distro`, `vmcatcher_event_ad_mpuri`,
    /// `APPLIANCE_ATTRIBUTES`, ...), when it is a string.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }
}

/// Filters of [`images`]; each is a Glance v2 list filter.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// `status` (cloud-info-provider lists `active`).
    pub status: Option<String>,
    /// `visibility` (`public`, `private`, `shared`, `community`, `all`).
    pub visibility: Option<String>,
    /// `owner` (project id).
    pub owner: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `tag` (repeated: all must match).
    pub tags: Vec<String>,
    /// `member_status` (`accepted`, `pending`, `rejected`, `all`).
    pub member_status: Option<String>,
    /// Any other property filter, e.g. `("os_distro", "ubuntu")`.
    pub properties: Vec<(String, String)>,
    /// Page size (`limit`).
    pub page_size: Option<u32>,
}

impl ImageQuery {
    fn params(&self) -> Vec<(&str, String)> {
        let mut q: Vec<(&str, String)> = Vec::new();
        let opts = [
            ("status", &self.status),
            ("visibility", &self.visibility),
            ("owner", &self.owner),
            ("name", &self.name),
            ("member_status", &self.member_status),
        ];
        for (k, v) in opts {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        for t in &self.tags {
            q.push(("tag", t.clone()));
        }
        for (k, v) in &self.properties {
            q.push((k.as_str(), v.clone()));
        }
        q
    }
}

/// The path of `rest` under Glance's `v2`, whether or not the catalog URL
/// already ends in `/v2`.
pub(crate) fn v2_path(endpoint: &Url, rest: &str) -> String {
    if endpoint.path().trim_end_matches('/').ends_with("/v2") {
        rest.to_string()
    } else {
        format!("v2/{rest}")
    }
}

/// `GET /v2/images` with `query`, following `next`.
pub async fn images(s: &Session, query: &ImageQuery) -> Result<Vec<Image>, Error> {
    let path = v2_path(&s.endpoint("image")?, "images");
    let params = query.params();
    let items: Vec<Value> = s
        .paginate(
            "image",
            &path,
            "images",
            &super::compute::borrow(&params),
            query.page_size,
            None,
        )
        .await?;
    let target = Target::new("GET", &s.url("image", &path, &[])?).service("image");
    items.into_iter().map(|v| wire::typed(&target, v)).collect()
}

/// `GET /v2/images/{id}`.
pub async fn image(s: &Session, id: &str) -> Result<Image, Error> {
    let path = v2_path(
        &s.endpoint("image")?,
        &format!("images/{}", super::auth::segment(id)),
    );
    let v: Value = s.get_json("image", &path, &[], None).await?;
    let target = Target::new("GET", &s.url("image", &path, &[])?).service("image");
    wire::typed(&target, v)
}

/// The Glance path of one image (`images/{id}` plus `rest`).
fn image_path(s: &Session, id: &str, rest: &str) -> Result<String, Error> {
    Ok(v2_path(
        &s.endpoint("image")?,
        &format!("images/{}{rest}", super::auth::segment(id)),
    ))
}

fn typed_image(s: &Session, path: &str, v: Option<Value>) -> Result<Image, Error> {
    let target = Target::new("POST", &s.url("image", path, &[])?).service("image");
    let v = v.ok_or_else(|| Error::Decode {
        target: target.clone(),
        reason: "empty answer where an image was expected".into(),
    })?;
    wire::typed(&target, v)
}

/// `POST /v2/images`: create an image record (status `queued`). `body`
/// holds `name`, `disk_format`, `container_format`, `visibility`, `tags`
/// and any custom properties as top-level string keys.
pub async fn create_image(s: &Session, body: &Value) -> Result<Image, Error> {
    let path = v2_path(&s.endpoint("image")?, "images");
    let v = s
        .send_json(reqwest::Method::POST, "image", &path, Some(body), None)
        .await?;
    typed_image(s, &path, v)
}

/// `PATCH /v2/images/{id}` with a JSON patch
/// (`application/openstack-images-v2.1-json-patch`): `ops` is an array of
/// `{"op": "add"|"replace"|"remove", "path": "/key", "value": ...}`.
pub async fn update_image(s: &Session, id: &str, ops: &Value) -> Result<Image, Error> {
    let path = image_path(s, id, "")?;
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/openstack-images-v2.1-json-patch"),
    );
    h.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(ops).expect("JSON value");
    let (_, resp) = s
        .send_raw(
            reqwest::Method::PATCH,
            "image",
            &path,
            h,
            Some(bytes::Bytes::from(body)),
        )
        .await?;
    let target = Target::new("PATCH", &s.url("image", &path, &[])?).service("image");
    let v: Value = wire::json(&target, &resp)?;
    wire::typed(&target, v)
}

/// `PUT /v2/images/{id}/file`: upload the image data, streamed. `body`
/// makes a fresh body per try (see [`Session::send_stream`]); `size` is
/// sent as `Content-Length`.
pub async fn upload_image(
    s: &Session,
    id: &str,
    size: u64,
    body: impl Fn() -> reqwest::Body,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    let path = image_path(s, id, "/file")?;
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        reqwest::header::CONTENT_LENGTH,
        reqwest::header::HeaderValue::from(size),
    );
    s.send_stream(reqwest::Method::PUT, "image", &path, h, body, timeout)
        .await
        .map(|_| ())
}

/// `DELETE /v2/images/{id}`.
pub async fn delete_image(s: &Session, id: &str) -> Result<(), Error> {
    let path = image_path(s, id, "")?;
    s.send_json(reqwest::Method::DELETE, "image", &path, None, None)
        .await
        .map(|_| ())
}

/// `POST /v2/images/{id}/actions/deactivate`.
pub async fn deactivate_image(s: &Session, id: &str) -> Result<(), Error> {
    let path = image_path(s, id, "/actions/deactivate")?;
    s.send_json(reqwest::Method::POST, "image", &path, None, None)
        .await
        .map(|_| ())
}

/// `POST /v2/images/{id}/actions/reactivate`.
pub async fn reactivate_image(s: &Session, id: &str) -> Result<(), Error> {
    let path = image_path(s, id, "/actions/reactivate")?;
    s.send_json(reqwest::Method::POST, "image", &path, None, None)
        .await
        .map(|_| ())
}

/// An image member (a project it is shared with).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Member {
    /// The project id.
    pub member_id: String,
    /// `pending`, `accepted`, `rejected`.
    #[serde(default)]
    pub status: String,
}

/// `GET /v2/images/{id}/members`.
pub async fn members(s: &Session, id: &str) -> Result<Vec<Member>, Error> {
    let path = image_path(s, id, "/members")?;
    let v: Value = s.get_json("image", &path, &[], None).await?;
    let target = Target::new("GET", &s.url("image", &path, &[])?).service("image");
    let items = wire::collection(&target, v, "members")?;
    items
        .into_iter()
        .map(|v| {
            serde_json::from_value(v).map_err(|e| Error::Decode {
                target: target.clone(),
                reason: format!("unexpected member: {e}"),
            })
        })
        .collect()
}

/// `POST /v2/images/{id}/members` (by the owner).
pub async fn add_member(s: &Session, id: &str, project_id: &str) -> Result<(), Error> {
    let path = image_path(s, id, "/members")?;
    let body = serde_json::json!({ "member": project_id });
    s.send_json(reqwest::Method::POST, "image", &path, Some(&body), None)
        .await
        .map(|_| ())
}

/// `PUT /v2/images/{id}/members/{project}` with `status` (by the member:
/// the session must be scoped to that project).
pub async fn set_member_status(
    s: &Session,
    id: &str,
    project_id: &str,
    status: &str,
) -> Result<(), Error> {
    let path = image_path(
        s,
        id,
        &format!("/members/{}", super::auth::segment(project_id)),
    )?;
    let body = serde_json::json!({ "status": status });
    s.send_json(reqwest::Method::PUT, "image", &path, Some(&body), None)
        .await
        .map(|_| ())
}

/// `DELETE /v2/images/{id}/members/{project}` (by the owner).
pub async fn remove_member(s: &Session, id: &str, project_id: &str) -> Result<(), Error> {
    let path = image_path(
        s,
        id,
        &format!("/members/{}", super::auth::segment(project_id)),
    )?;
    s.send_json(reqwest::Method::DELETE, "image", &path, None, None)
        .await
        .map(|_| ())
}

impl_raw!(Image);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_params() {
        assert_eq!(
            v2_path(&Url::parse("http://g:9292").unwrap(), "images"),
            "v2/images"
        );
        assert_eq!(
            v2_path(&Url::parse("http://g/image/v2/").unwrap(), "images"),
            "images"
        );
        let q = ImageQuery {
            status: Some("active".into()),
            tags: vec!["a".into(), "b".into()],
            properties: vec![("os_distro".into(), "ubuntu".into())],
            ..ImageQuery::default()
        };
        assert_eq!(
            q.params(),
            vec![
                ("status", "active".to_string()),
                ("tag", "a".into()),
                ("tag", "b".into()),
                ("os_distro", "ubuntu".into())
            ]
        );
    }
}
