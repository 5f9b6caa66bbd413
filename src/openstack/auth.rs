//! Keystone v3 authentication and the token cache.
//!
//! Every [`Credential`] variant gets a token from `POST {auth_url}/auth/tokens`
//! (keystoneauth's plugins of the same names):
//!
//! * `password`: user name + domain, scoped to the credential's project; other
//!   projects are reached by rescoping an unscoped password token with method
//!   `token` (falling back to a direct password auth with that scope when the
//!   site forbids rescoping).
//! * `v3applicationcredential`: by id, or by name + user; an application
//!   credential carries its own scope, so no `scope` block, and no other
//!   project can be reached with it.
//! * `token`: the configured token is validated (`GET /auth/tokens`) and
//!   rescoped per project.
//! * `v3oidcaccesstoken`: `POST {auth_url}/OS-FEDERATION/identity_providers/
//!   {idp}/protocols/{protocol}/auth` with `Authorization: Bearer <access
//!   token>` gives an unscoped token (`X-Subject-Token`), rescoped per project.
//!   An [`AccessToken::File`] is read again for every federation.
//!
//! The cache keeps the unscoped ("base") token and one token per scope; a
//! token is renewed when less than [`Limits::token_renew_before`] remains.
//! Tokens obtained by rescoping expire with the base token (Keystone keeps
//! `expires_at`), so both are renewed together.
//!
//! Right after a credential change. A password change or a role removal
//! makes Keystone revoke every token of the user issued up to and including
//! that second, even one issued a moment after the change within the same
//! second. Rescoping such a base token is refused (404 `Failed to validate
//! token`, or 401), and a service refuses such a token with 401. Either way
//! the token is dropped, no new token is asked for until
//! [`Limits::revocation_settle`] has passed since the refusal (so the new
//! one is issued in a later second than the revocation), and the credential
//! authenticates once more; a second refusal is reported.
//!
//! [`Limits::token_renew_before`]: super::Limits::token_renew_before
//! [`Limits::revocation_settle`]: super::Limits::revocation_settle

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::access::{AccessToken, Credential, DomainRef, ProjectRef};
use super::catalog::CatalogEntry;
use super::error::{Error, Target};
use super::http::{secret_header, Request};
use super::Inner;
use crate::secret::Secret;

/// A domain, user or role as a token names it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NamedRef {
    /// Id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The user a token belongs to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TokenUser {
    /// User id.
    pub id: String,
    /// User name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's domain (`Federated` for federated users).
    #[serde(default)]
    pub domain: Option<NamedRef>,
}

/// The project a token is scoped to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TokenProject {
    /// Project id.
    pub id: String,
    /// Project name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its domain.
    #[serde(default)]
    pub domain: Option<NamedRef>,
}

impl TokenProject {
    /// Whether this is the project `r` names.
    pub fn matches(&self, r: &ProjectRef) -> bool {
        match r {
            ProjectRef::Id(id) => &self.id == id,
            ProjectRef::Name { name, domain } => {
                self.name.as_deref() == Some(name.as_str())
                    && self
                        .domain
                        .as_ref()
                        .is_some_and(|d| domain_matches(d, domain))
            }
        }
    }
}

fn domain_matches(d: &NamedRef, r: &DomainRef) -> bool {
    match r {
        DomainRef::Id(id) => &d.id == id,
        DomainRef::Name(n) => d.name.as_deref() == Some(n.as_str()),
    }
}

/// The body of a Keystone token (`{"token": ...}`), minus what we don't use.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Authentication methods (`password`, `token`, `mapped`, ...).
    #[serde(default)]
    pub methods: Vec<String>,
    /// The user.
    pub user: TokenUser,
    /// The project, for a project-scoped token.
    #[serde(default)]
    pub project: Option<TokenProject>,
    /// Roles on the scope.
    #[serde(default)]
    pub roles: Vec<NamedRef>,
    /// The service catalog (empty for an unscoped token).
    #[serde(default)]
    pub catalog: Vec<CatalogEntry>,
    /// `{"all": true}` for a system-scoped token.
    #[serde(default)]
    pub system: Option<Value>,
}

/// A Keystone token: the secret id and what Keystone said about it.
#[derive(Debug)]
pub(crate) struct Token {
    pub id: Secret,
    pub info: TokenInfo,
}

impl Token {
    fn fresh(&self, margin: std::time::Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        self.info.expires_at - Utc::now() > margin
    }
}

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// The credential's own scope.
    Default,
    /// A project.
    Project(ProjectRef),
    /// The whole deployment (`system: {all: true}`).
    System,
}

impl Scope {
    pub(crate) fn project_label(&self) -> Option<String> {
        match self {
            Scope::Project(p) => Some(p.to_string()),
            Scope::System => Some("system scope".into()),
            Scope::Default => None,
        }
    }
}

/// Why [`Inner::rescope_base`] failed.
enum Rescope {
    /// The credential itself was refused (or Keystone was unreachable).
    Credential(Error),
    /// Keystone refused to rescope the base token, also after one more
    /// authentication.
    Refused(Error),
}

impl From<Rescope> for Error {
    fn from(r: Rescope) -> Error {
        match r {
            Rescope::Credential(e) | Rescope::Refused(e) => e,
        }
    }
}

/// Tokens kept between calls.
#[derive(Default)]
pub(crate) struct Cache {
    /// The unscoped (or credential-default) token used for rescoping.
    base: Option<Arc<Token>>,
    scoped: HashMap<Scope, Arc<Token>>,
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(n) => json!({ "name": n }),
    }
}

fn scope_json(scope: &Scope, default_project: Option<&ProjectRef>) -> Option<Value> {
    let project = match scope {
        Scope::System => return Some(json!({ "system": { "all": true } })),
        Scope::Project(p) => Some(p),
        Scope::Default => default_project,
    }?;
    Some(match project {
        ProjectRef::Id(id) => json!({ "project": { "id": id } }),
        ProjectRef::Name { name, domain } => {
            json!({ "project": { "name": name, "domain": domain_json(domain) } })
        }
    })
}

fn auth_body(identity: Value, scope: Option<Value>) -> Value {
    let mut auth = json!({ "identity": identity });
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    json!({ "auth": auth })
}

/// `password` identity for `POST /auth/tokens`.
pub(crate) fn password_body(
    username: &str,
    domain: &DomainRef,
    password: &Secret,
    scope: Option<Value>,
) -> Value {
    auth_body(
        json!({
            "methods": ["password"],
            "password": { "user": {
                "name": username,
                "domain": domain_json(domain),
                "password": password.expose(),
            }}
        }),
        scope,
    )
}

/// `application_credential` identity (no scope: it has its own).
pub(crate) fn app_credential_body(
    id: Option<&str>,
    name: Option<&str>,
    user: Option<&(String, DomainRef)>,
    secret: &Secret,
) -> Result<Value, Error> {
    let mut ac = json!({ "secret": secret.expose() });
    match (id, name, user) {
        (Some(id), _, _) => ac["id"] = json!(id),
        (None, Some(name), Some((user, domain))) => {
            ac["name"] = json!(name);
            ac["user"] = json!({ "name": user, "domain": domain_json(domain) });
        }
        _ => {
            return Err(Error::Config(
                "an application credential needs an id, or a name and its user".into(),
            ))
        }
    }
    Ok(auth_body(
        json!({ "methods": ["application_credential"], "application_credential": ac }),
        None,
    ))
}

/// `token` identity (rescoping).
pub(crate) fn token_body(token: &Secret, scope: Option<Value>) -> Value {
    auth_body(
        json!({ "methods": ["token"], "token": { "id": token.expose() } }),
        scope,
    )
}

/// `base` with a trailing slash, joined with `rel`.
pub(crate) fn join(base: &Url, rel: &str) -> Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(rel.trim_start_matches('/')).unwrap_or(b)
}

/// The Keystone v3 base URL: `auth_url` as given when it ends in `/v3`,
/// else with `v3` appended; a v2.0 URL is an error.
pub(crate) fn normalize_auth_url(auth_url: &Url) -> Result<Url, Error> {
    if auth_url.cannot_be_a_base() || !matches!(auth_url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "auth_url {} is not an http(s) URL",
            crate::redact::url(auth_url)
        )));
    }
    let mut u = auth_url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let last = u
        .path_segments()
        .and_then(|mut s| s.rfind(|x| !x.is_empty()).map(str::to_string));
    match last.as_deref() {
        Some("v3") => {}
        Some(v) if v.starts_with("v2") => {
            return Err(Error::Config(format!(
                "auth_url {} is a Keystone v2 URL; only v3 is supported",
                crate::redact::url(auth_url)
            )))
        }
        _ => u = join(&u, "v3"),
    }
    let p = u.path().trim_end_matches('/').to_string();
    u.set_path(&p);
    Ok(u)
}

/// A path segment, percent-encoded.
pub(crate) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Inner {
    /// A fresh token for `scope`, from the cache or from Keystone.
    pub(crate) async fn token(&self, scope: &Scope) -> Result<Arc<Token>, Error> {
        let margin = self.http.limits.token_renew_before;
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.scoped.get(scope).filter(|t| t.fresh(margin)) {
            return Ok(t.clone());
        }
        let t = match scope {
            Scope::Default => self.issue_default(&mut cache).await?,
            Scope::Project(p) => self.issue_project(&mut cache, p).await?,
            Scope::System => self.issue_system(&mut cache).await?,
        };
        cache.scoped.insert(scope.clone(), t.clone());
        Ok(t)
    }

    /// The token to list the user's projects with.
    pub(crate) async fn base_token(&self) -> Result<Arc<Token>, Error> {
        let mut cache = self.cache.lock().await;
        self.base(&mut cache).await
    }

    /// Forget the tokens of `scope` and the base token (after a 401): the
    /// next token is issued once [`Limits::revocation_settle`](super::Limits::revocation_settle)
    /// has passed.
    pub(crate) async fn invalidate(&self, scope: &Scope) {
        let mut cache = self.cache.lock().await;
        cache.scoped.remove(scope);
        cache.base = None;
        self.note_refusal();
    }

    /// A token of ours was just refused.
    fn note_refusal(&self) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// Wait until [`Limits::revocation_settle`](super::Limits::revocation_settle)
    /// has passed since the last refusal, if there was one.
    async fn settle(&self) {
        let since = *self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let Some(at) = since else { return };
        let wait = self
            .http
            .limits
            .revocation_settle
            .saturating_sub(at.elapsed());
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting for Keystone's revocation second to pass"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn issue_default(&self, cache: &mut Cache) -> Result<Arc<Token>, Error> {
        match &self.access.credential {
            Credential::Password {
                username,
                user_domain,
                password,
                project,
            } => {
                let scope = scope_json(&Scope::Default, project.as_ref());
                let body = password_body(username, user_domain, password, scope);
                let t = self
                    .post_tokens(
                        &body,
                        project.as_ref().map(|p| p.to_string()),
                        &[password.expose()],
                    )
                    .await?;
                if project.is_none() {
                    cache.base = Some(t.clone());
                }
                Ok(t)
            }
            Credential::ApplicationCredential { .. } => {
                let t = self.app_credential_token().await?;
                cache.base = Some(t.clone());
                Ok(t)
            }
            Credential::Token { project, .. } | Credential::OidcAccessToken { project, .. } => {
                match project {
                    Some(p) => Ok(self.rescope_base(cache, &Scope::Project(p.clone())).await?),
                    None => self.base(cache).await,
                }
            }
        }
    }

    async fn issue_project(&self, cache: &mut Cache, p: &ProjectRef) -> Result<Arc<Token>, Error> {
        let scope = Scope::Project(p.clone());
        match &self.access.credential {
            Credential::ApplicationCredential { .. } => {
                let margin = self.http.limits.token_renew_before;
                let own = match cache
                    .scoped
                    .get(&Scope::Default)
                    .filter(|t| t.fresh(margin))
                {
                    Some(t) => t.clone(),
                    None => {
                        let t = self.issue_default(cache).await?;
                        cache.scoped.insert(Scope::Default, t.clone());
                        t
                    }
                };
                match &own.info.project {
                    Some(tp) if tp.matches(p) => Ok(own),
                    Some(tp) => Err(Error::Scope {
                        credential: "v3applicationcredential",
                        project: p.to_string(),
                        reason: format!(
                            "an application credential is bound to its own project ({} {})",
                            tp.id,
                            tp.name.as_deref().unwrap_or("")
                        ),
                    }),
                    None => Err(Error::Scope {
                        credential: "v3applicationcredential",
                        project: p.to_string(),
                        reason: "the application credential's token has no project".into(),
                    }),
                }
            }
            Credential::Password {
                username,
                user_domain,
                password,
                ..
            } => match self.rescope_base(cache, &scope).await {
                Ok(t) => Ok(t),
                Err(Rescope::Refused(
                    e @ (Error::Unauthorized { .. } | Error::Forbidden { .. }),
                )) => {
                    tracing::debug!(error = %e, "rescoping refused; password auth with the scope instead");
                    let body =
                        password_body(username, user_domain, password, scope_json(&scope, None));
                    self.post_tokens(&body, Some(p.to_string()), &[password.expose()])
                        .await
                }
                Err(e) => Err(e.into()),
            },
            Credential::Token { .. } | Credential::OidcAccessToken { .. } => {
                Ok(self.rescope_base(cache, &scope).await?)
            }
        }
    }

    async fn issue_system(&self, cache: &mut Cache) -> Result<Arc<Token>, Error> {
        match &self.access.credential {
            Credential::ApplicationCredential { .. } => Err(Error::Scope {
                credential: "v3applicationcredential",
                project: "system scope".into(),
                reason: "an application credential is bound to its own project".into(),
            }),
            _ => Ok(self.rescope_base(cache, &Scope::System).await?),
        }
    }

    /// The base token rescoped to `scope`. When Keystone refuses the base
    /// token (404 `Failed to validate token`, or 401: revoked since, or in
    /// the second it was issued, by a credential change), authenticate once
    /// more from the credential after the revocation second and rescope
    /// again (see the module docs).
    async fn rescope_base(&self, cache: &mut Cache, scope: &Scope) -> Result<Arc<Token>, Rescope> {
        let base = self.base(cache).await.map_err(Rescope::Credential)?;
        match self.rescope(&base, scope).await {
            Err(e @ (Error::NotFound { .. } | Error::Unauthorized { .. })) => {
                tracing::info!(
                    error = %e,
                    "Keystone refused to rescope its own token (revoked by a credential change?): authenticating again once"
                );
                cache.base = None;
                self.note_refusal();
                let base = self.base(cache).await.map_err(Rescope::Credential)?;
                self.rescope(&base, scope).await.map_err(Rescope::Refused)
            }
            r => r.map_err(Rescope::Refused),
        }
    }

    /// The base token, renewed when needed.
    async fn base(&self, cache: &mut Cache) -> Result<Arc<Token>, Error> {
        let margin = self.http.limits.token_renew_before;
        if let Some(t) = cache.base.as_ref().filter(|t| t.fresh(margin)) {
            return Ok(t.clone());
        }
        let t = match &self.access.credential {
            Credential::Password {
                username,
                user_domain,
                password,
                ..
            } => {
                let body = password_body(username, user_domain, password, None);
                self.post_tokens(&body, None, &[password.expose()]).await?
            }
            Credential::ApplicationCredential { .. } => self.app_credential_token().await?,
            Credential::Token { token, .. } => self.validate(token).await?,
            Credential::OidcAccessToken {
                identity_provider,
                protocol,
                access_token,
                ..
            } => {
                self.federate(identity_provider, protocol, access_token)
                    .await?
            }
        };
        cache.base = Some(t.clone());
        Ok(t)
    }

    async fn app_credential_token(&self) -> Result<Arc<Token>, Error> {
        let Credential::ApplicationCredential {
            id,
            name,
            user,
            secret,
        } = &self.access.credential
        else {
            unreachable!("only called for application credentials")
        };
        let body = app_credential_body(id.as_deref(), name.as_deref(), user.as_ref(), secret)?;
        self.post_tokens(&body, None, &[secret.expose()]).await
    }

    async fn rescope(&self, base: &Token, scope: &Scope) -> Result<Arc<Token>, Error> {
        let body = token_body(&base.id, scope_json(scope, None));
        self.post_tokens(&body, scope.project_label(), &[base.id.expose()])
            .await
    }

    /// `POST /auth/tokens`.
    async fn post_tokens(
        &self,
        body: &Value,
        project: Option<String>,
        scrub: &[&str],
    ) -> Result<Arc<Token>, Error> {
        self.settle().await;
        let url = join(&self.auth_url, "auth/tokens");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let req = Request {
            method: Method::POST,
            target: Target::new("POST", &url)
                .service("identity")
                .project(project),
            url,
            headers,
            body: Some(serde_json::to_vec(body).expect("JSON").into()),
            replayable: true, // issuing a token changes nothing
            scrub,
        };
        self.token_response(&req, None).await
    }

    /// `GET /auth/tokens` of the configured token by itself.
    async fn validate(&self, token: &Secret) -> Result<Arc<Token>, Error> {
        let url = join(&self.auth_url, "auth/tokens");
        let mut headers = HeaderMap::new();
        headers.insert("X-Auth-Token", secret_header(token.expose())?);
        headers.insert("X-Subject-Token", secret_header(token.expose())?);
        let req = Request {
            method: Method::GET,
            target: Target::new("GET", &url).service("identity"),
            url,
            headers,
            body: None,
            replayable: true,
            scrub: &[token.expose()],
        };
        self.token_response(&req, Some(token)).await
    }

    async fn federate(
        &self,
        idp: &str,
        protocol: &str,
        access_token: &AccessToken,
    ) -> Result<Arc<Token>, Error> {
        let bearer = match access_token {
            AccessToken::Value(s) => s.clone(),
            AccessToken::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    Error::Config(format!(
                        "cannot read the OIDC access token file {}: {e}",
                        path.display()
                    ))
                })?;
                Secret::new(text.trim())
            }
        };
        if bearer.expose().is_empty() {
            return Err(Error::Config("the OIDC access token is empty".into()));
        }
        self.settle().await;
        let url = join(
            &self.auth_url,
            &format!(
                "OS-FEDERATION/identity_providers/{}/protocols/{}/auth",
                segment(idp),
                segment(protocol)
            ),
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", bearer.expose()))?,
        );
        let req = Request {
            method: Method::POST,
            target: Target::new("POST", &url).service("identity"),
            url,
            headers,
            body: None,
            replayable: true,
            scrub: &[bearer.expose()],
        };
        self.token_response(&req, None).await
    }

    /// The token of a Keystone answer: `X-Subject-Token` (or `known`, when
    /// validating a token we already hold) and the body.
    async fn token_response(
        &self,
        req: &Request<'_>,
        known: Option<&Secret>,
    ) -> Result<Arc<Token>, Error> {
        let resp = self.http.send(req).await?;
        let id = resp
            .headers
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .or(known.map(Secret::expose))
            .ok_or_else(|| Error::Decode {
                target: req.target.clone(),
                reason: "no X-Subject-Token header".into(),
            })?;
        #[derive(Deserialize)]
        struct Body {
            token: TokenInfo,
        }
        let body: Body = serde_json::from_slice(&resp.body).map_err(|e| Error::Decode {
            target: req.target.clone(),
            reason: format!("not a Keystone token: {e}"),
        })?;
        tracing::debug!(
            user = %body.token.user.id,
            project = body.token.project.as_ref().map(|p| p.id.as_str()).unwrap_or("-"),
            expires_at = %body.token.expires_at,
            "Keystone token issued"
        );
        Ok(Arc::new(Token {
            id: Secret::new(id),
            info: body.token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_bodies() {
        let pw = Secret::new("pw");
        let scope = scope_json(&Scope::Default, Some(&ProjectRef::Id("p1".into())));
        let b = password_body("alice", &DomainRef::Name("Default".into()), &pw, scope);
        assert_eq!(
            b,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"id": "p1"}}
            }})
        );
        let by_name = ProjectRef::Name {
            name: "alpha".into(),
            domain: DomainRef::Id("default".into()),
        };
        let b = password_body(
            "alice",
            &DomainRef::Id("default".into()),
            &pw,
            scope_json(&Scope::Project(by_name), None),
        );
        assert_eq!(
            b["auth"]["scope"],
            json!({"project": {"name": "alpha", "domain": {"id": "default"}}})
        );
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"],
            json!({"id": "default"})
        );
        let unscoped = password_body("alice", &DomainRef::Id("default".into()), &pw, None);
        assert!(unscoped["auth"].get("scope").is_none());
        assert_eq!(
            scope_json(&Scope::System, None),
            Some(json!({"system": {"all": true}}))
        );
    }

    #[test]
    fn app_credential_and_token_bodies() {
        let s = Secret::new("s3cret");
        let b = app_credential_body(Some("ac1"), None, None, &s).unwrap();
        assert_eq!(
            b,
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "s3cret"}}}})
        );
        let user = ("bob".to_string(), DomainRef::Name("Default".into()));
        let b = app_credential_body(None, Some("mine"), Some(&user), &s).unwrap();
        assert_eq!(
            b["auth"]["identity"]["application_credential"],
            json!({"name": "mine", "user": {"name": "bob", "domain": {"name": "Default"}}, "secret": "s3cret"})
        );
        assert!(matches!(
            app_credential_body(None, Some("mine"), None, &s),
            Err(Error::Config(_))
        ));
        let b = token_body(
            &Secret::new("tok"),
            scope_json(&Scope::Project(ProjectRef::Id("p".into())), None),
        );
        assert_eq!(
            b,
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "tok"}}, "scope": {"project": {"id": "p"}}}})
        );
    }

    #[test]
    fn auth_urls() {
        let n = |s: &str| normalize_auth_url(&Url::parse(s).unwrap()).map(|u| u.to_string());
        assert_eq!(n("https://k:5000/v3").unwrap(), "https://k:5000/v3");
        assert_eq!(n("https://k:5000/v3/").unwrap(), "https://k:5000/v3");
        assert_eq!(n("https://k:5000").unwrap(), "https://k:5000/v3");
        assert_eq!(n("https://k/identity/").unwrap(), "https://k/identity/v3");
        assert!(n("https://k:5000/v2.0").is_err());
        assert!(n("file:///etc").is_err());
        let base = Url::parse("https://k:5000/v3").unwrap();
        assert_eq!(
            join(&base, "auth/tokens").as_str(),
            "https://k:5000/v3/auth/tokens"
        );
        assert_eq!(
            join(&base, "/auth/projects").as_str(),
            "https://k:5000/v3/auth/projects"
        );
        assert_eq!(
            join(&base, &format!("OS-FEDERATION/identity_providers/{}/protocols/openid/auth", segment("egi.eu/x y"))).as_str(),
            "https://k:5000/v3/OS-FEDERATION/identity_providers/egi.eu%2Fx%20y/protocols/openid/auth"
        );
    }

    #[test]
    fn token_project_matching() {
        let tp = TokenProject {
            id: "p1".into(),
            name: Some("alpha".into()),
            domain: Some(NamedRef {
                id: "default".into(),
                name: Some("Default".into()),
            }),
        };
        assert!(tp.matches(&ProjectRef::Id("p1".into())));
        assert!(!tp.matches(&ProjectRef::Id("p2".into())));
        assert!(tp.matches(&ProjectRef::Name {
            name: "alpha".into(),
            domain: DomainRef::Name("Default".into())
        }));
        assert!(tp.matches(&ProjectRef::Name {
            name: "alpha".into(),
            domain: DomainRef::Id("default".into())
        }));
        assert!(!tp.matches(&ProjectRef::Name {
            name: "alpha".into(),
            domain: DomainRef::Id("other".into())
        }));
    }

    #[test]
    fn token_info_parses_keystone_json() {
        let v = json!({
            "methods": ["password"], "expires_at": "2026-05-01T11:00:00.000000Z", "issued_at": "2026-05-01T10:00:00.000000Z",
            "user": {"id": "u1", "name": "fedcloud", "domain": {"id": "default", "name": "Default"}, "password_expires_at": null},
            "project": {"id": "p1", "name": "alpha-1", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": [{"type": "compute", "id": "c", "name": "nova", "endpoints": [{"id": "e", "interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://n/v2.1"}]}],
            "is_domain": false
        });
        let t: TokenInfo = serde_json::from_value(v).unwrap();
        assert_eq!(t.expires_at.to_rfc3339(), "2026-05-01T11:00:00+00:00");
        assert_eq!(t.project.unwrap().name.as_deref(), Some("alpha-1"));
        assert_eq!(t.catalog[0].endpoints[0].url, "http://n/v2.1");
    }
}
