//! A stand-in for Apache + mod_auth_openidc in front of Keystone, as an EGI
//! site runs it for Check-in federation.
//!
//! Every request goes to the upstream Keystone unchanged, except:
//! - incoming `OIDC-*` / `OIDC_*` headers are removed, whatever the path (a
//!   client must not be able to assert claims; mod_auth_openidc does the
//!   same);
//! - on the federation auth path
//!   (`…/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth`,
//!   under any prefix) the request needs `Authorization: Bearer <token>` with
//!   a token from the table, else 401 with a Keystone-style JSON body; for a
//!   known token the claims are added as `OIDC-iss`, `OIDC-sub`,
//!   `OIDC-groups` (`;`-separated: Keystone's mapping splits multi-valued
//!   assertions on `;`, so EGI sites set mod_auth_openidc's
//!   `OIDCClaimDelimiter ;`), `OIDC-eduperson-entitlement` (same values,
//!   the claim EGI Check-in mappings use; a hyphen, not an underscore, since
//!   gunicorn drops header names with underscores) and `OIDC-email`
//!   (`<sub>@test.example`). The WSGI server
//!   turns them into `HTTP_OIDC_ISS` and so on, which Keystone's mapping
//!   reads (`remote_id_attribute = HTTP_OIDC_ISS`).

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use url::Url;

use super::http::{self, Outcome, Peer, Resp};
use super::proxy::Upstream;
use super::{Error, Server};

/// One access token the proxy knows, with the identity it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcToken {
    /// The bearer token.
    pub token: String,
    /// The `sub` claim.
    pub sub: String,
    /// Group / entitlement values.
    pub groups: Vec<String>,
}

impl OidcToken {
    /// Parse `TOKEN=SUB[:GROUP1;GROUP2]` (the `--token` flag). `SUB` cannot
    /// contain `:`; groups can (entitlements such as
    /// `urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu`).
    pub fn parse(arg: &str) -> Result<OidcToken, Error> {
        let (token, rest) = arg
            .split_once('=')
            .ok_or_else(|| Error::bad("--token", arg, "expected TOKEN=SUB[:GROUP1;GROUP2]"))?;
        let (sub, groups) = rest.split_once(':').unwrap_or((rest, ""));
        if token.is_empty() || sub.is_empty() {
            return Err(Error::bad(
                "--token",
                arg,
                "TOKEN and SUB must not be empty",
            ));
        }
        let groups = groups
            .split(';')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        Ok(OidcToken {
            token: token.into(),
            sub: sub.into(),
            groups,
        })
    }
}

/// Options of the OIDC front end.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    /// Keystone, plain HTTP on loopback (a path prefix is kept).
    pub upstream: Url,
    /// The `iss` value passed on.
    pub issuer: String,
    /// Known access tokens.
    pub tokens: Vec<OidcToken>,
}

struct Oidc {
    upstream: Upstream,
    issuer: String,
    tokens: HashMap<String, OidcToken>,
}

/// Start the OIDC front end on `listener`.
pub fn serve(listener: TcpListener, opts: OidcOptions) -> Result<Server, Error> {
    let upstream = Upstream::new(&opts.upstream)?;
    HeaderValue::from_str(&opts.issuer)
        .map_err(|_| Error::bad("--issuer", &opts.issuer, "not a valid header value"))?;
    for t in &opts.tokens {
        for v in std::iter::once(&t.sub).chain(&t.groups) {
            HeaderValue::from_str(v)
                .map_err(|_| Error::bad("--token", v.as_str(), "not a valid header value"))?;
        }
    }
    let tokens = opts
        .tokens
        .into_iter()
        .map(|t| (t.token.clone(), t))
        .collect();
    let state = Arc::new(Oidc {
        upstream,
        issuer: opts.issuer,
        tokens,
    });
    http::spawn("oidc", listener, None, move |peer, req| {
        let state = state.clone();
        async move { state.handle(peer, req).await }
    })
}

/// Whether `path` is Keystone's federated authentication endpoint.
pub fn is_federation_auth(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let n = segments.len();
    n >= 6
        && segments[n - 6] == "OS-FEDERATION"
        && segments[n - 5] == "identity_providers"
        && !segments[n - 4].is_empty()
        && segments[n - 3] == "protocols"
        && !segments[n - 2].is_empty()
        && segments[n - 1] == "auth"
}

fn is_oidc_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.len() > 5 && (name.starts_with("oidc-") || name.starts_with("oidc_"))
}

/// Keystone's 401 body (`keystone.exception.Unauthorized`).
fn unauthorized(why: &str) -> Resp {
    let body = json!({"error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }});
    let mut resp = http::json(StatusCode::UNAUTHORIZED, &body);
    let challenge =
        format!("Bearer realm=\"openidc\", error=\"invalid_token\", error_description=\"{why}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    resp
}

impl Oidc {
    async fn handle(self: Arc<Self>, _peer: Peer, req: Request<Incoming>) -> Outcome {
        let strip = |h: &mut HeaderMap| {
            let names: Vec<HeaderName> = h.keys().filter(|n| is_oidc_header(n)).cloned().collect();
            for n in names {
                h.remove(n);
            }
        };
        if !is_federation_auth(req.uri().path()) {
            return Ok(self.upstream.forward(req, strip).await);
        }
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string());
        let Some(bearer) = bearer else {
            return Ok(unauthorized("no bearer token"));
        };
        let Some(identity) = self.tokens.get(&bearer).cloned() else {
            return Ok(unauthorized("unknown token"));
        };
        let issuer = self.issuer.clone();
        let resp = self
            .upstream
            .forward(req, move |h| {
                strip(h);
                let groups = identity.groups.join(";");
                let email = format!("{}@test.example", identity.sub);
                for (name, value) in [
                    ("oidc-iss", issuer.as_str()),
                    ("oidc-sub", identity.sub.as_str()),
                    ("oidc-groups", groups.as_str()),
                    ("oidc-eduperson-entitlement", groups.as_str()),
                    ("oidc-email", email.as_str()),
                ] {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        h.insert(HeaderName::from_static(name), v);
                    }
                }
            })
            .await;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_paths() {
        assert!(is_federation_auth(
            "/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth"
        ));
        assert!(is_federation_auth(
            "/identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/oidc/auth"
        ));
        assert!(is_federation_auth(
            "/OS-FEDERATION/identity_providers/x/protocols/y/auth/"
        ));
        assert!(!is_federation_auth(
            "/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid"
        ));
        assert!(!is_federation_auth(
            "/v3/OS-FEDERATION/identity_providers//protocols/openid/auth"
        ));
        assert!(!is_federation_auth("/v3/auth/tokens"));
    }

    #[test]
    fn token_flag() {
        let t = OidcToken::parse(
            "tok=alice:urn:mace:egi.eu:group:vo.example:role=member#aai.egi.eu;g2",
        )
        .expect("ok");
        assert_eq!(t.token, "tok");
        assert_eq!(t.sub, "alice");
        assert_eq!(
            t.groups,
            [
                "urn:mace:egi.eu:group:vo.example:role=member#aai.egi.eu",
                "g2"
            ]
        );
        assert_eq!(
            OidcToken::parse("t=bob").expect("ok").groups,
            Vec::<String>::new()
        );
        assert!(OidcToken::parse("t").is_err());
        assert!(OidcToken::parse("=bob").is_err());
    }
}
