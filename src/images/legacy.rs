//! Legacy subscriptions, read unchanged: atrope's `sources.yaml` (EGI
//! atrope 2.1: `type: hepix|harbor`, `url` or `file_path`, `endorser`,
//! `token`, `images`, `prefix`, `vos`, `sharing_model`, `enabled`) or
//! `hepix.yaml` (PyPI atrope 2.0: the same without `type`), with
//! `vo_map.yaml` (`{<vo>: {project_id: ...}}`), and cloudkeeper's
//! `image-lists.conf` (one URL per line, `#` comments; tokens in the URL's
//! userinfo).
//!
//! atrope's `type: harbor` sources (EGI's catch-all only writes these):
//! the top-level `harbor:` block holds defaults merged into each; `api_url`
//! (`https://<host>/api/v2.0`), `registry_host` (must be the API's host),
//! `project`, `prefix`, `tag_pattern` (Python `re.match`: anchored at the
//! start only), `auth_user`/`auth_password`, `vos`, `enabled`. Settings we
//! cannot honour (`verify_ssl: false`, a raw `token` header,
//! `subscribed_images`/`images`) skip the source with a problem rather than
//! run it differently.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use url::Url;

use crate::config::sections::images::{
    safe_name, Endorser, HarborSubscription, ListSource, Subscription, Visibility,
};
use crate::secret::Secret;

/// A subscription from a legacy file.
#[derive(Debug, Clone)]
pub struct LegacySource {
    /// The subscription.
    pub sub: Subscription,
    /// Its token (atrope `token`).
    pub token: Option<Secret>,
    /// Projects to share with, by id (atrope `vos` through `vo_map.yaml`).
    pub projects: Vec<String>,
}

/// A `type: harbor` source from atrope's `sources.yaml`.
#[derive(Debug, Clone)]
pub struct LegacyRegistry {
    /// The subscription.
    pub sub: HarborSubscription,
    /// `auth_password` (with `auth_user` as the subscription's robot).
    pub password: Option<Secret>,
    /// Projects to share with, by id (`vos` through `vo_map.yaml`).
    pub projects: Vec<String>,
}

/// What atrope's `sources.yaml` defines.
#[derive(Debug, Clone, Default)]
pub struct AtropeSources {
    /// Image-list sources.
    pub lists: Vec<LegacySource>,
    /// Harbor sources.
    pub registries: Vec<LegacyRegistry>,
    /// Sources skipped or partly used, with why.
    pub problems: Vec<String>,
}

fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// atrope `vo_map.yaml`: VO name -> project id.
pub fn atrope_vo_map(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let v = read_yaml(path)?;
    let mut out = BTreeMap::new();
    if let Value::Object(m) = v {
        for (vo, e) in m {
            if let Some(p) = e.get("project_id").and_then(Value::as_str) {
                out.insert(vo, p.to_string());
            }
        }
    }
    Ok(out)
}

/// atrope `sources.yaml` / `hepix.yaml`.
pub fn atrope_sources(
    path: &Path,
    vo_map: &BTreeMap<String, String>,
) -> Result<AtropeSources, String> {
    let v = read_yaml(path)?;
    let Value::Object(m) = v else {
        return Err(format!("{}: expected a mapping of sources", path.display()));
    };
    let defaults = m
        .get("harbor")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut registries = Vec::new();
    let mut problems = Vec::new();
    for (name, s) in m {
        if name == "harbor" {
            continue; // defaults block of harbor sources
        }
        let at = |k: &str| format!("{}: {name}.{k}", path.display());
        if !safe_name(&name) {
            problems.push(format!(
                "{}: source {name:?} cannot be used as a subscription name (letters, digits, `.`, `_` and `-`; it names a directory and a state file); skipped",
                path.display()
            ));
            continue;
        }
        let kind = s.get("type").and_then(Value::as_str).unwrap_or("hepix");
        if kind == "harbor" {
            let mut merged = defaults.clone();
            if let Value::Object(o) = &s {
                merged.extend(o.clone());
            }
            match atrope_harbor(&name, &merged, vo_map, &at, &mut problems) {
                Ok(r) => registries.push(r),
                Err(why) => problems.push(why),
            }
            continue;
        }
        if kind != "hepix" {
            problems.push(format!(
                "{}: source type `{kind}` is not supported by this release; skipped",
                at("type")
            ));
            continue;
        }
        let source = match (
            s.get("url").and_then(Value::as_str),
            s.get("file_path").and_then(Value::as_str),
        ) {
            (Some(u), _) => match Url::parse(u) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => ListSource::Url(u),
                Ok(u) => {
                    problems.push(format!(
                        "{}: the `{}` scheme is refused (https, or http where images.allow-http allows it); skipped",
                        at("url"),
                        u.scheme()
                    ));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("{}: {e}", at("url")));
                    continue;
                }
            },
            (None, Some(f)) => ListSource::File(f.into()),
            (None, None) => {
                problems.push(format!("{}: no url or file_path", at("url")));
                continue;
            }
        };
        let e = s.get("endorser");
        let (Some(dn), Some(ca)) = (
            e.and_then(|e| e.get("dn")).and_then(Value::as_str),
            e.and_then(|e| e.get("ca")).and_then(Value::as_str),
        ) else {
            problems.push(format!(
                "{}: endorser dn and ca are required",
                at("endorser")
            ));
            continue;
        };
        let strings = |k: &str| -> Vec<String> {
            s.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let vos = strings("vos");
        let mut projects = vo_projects(&vos, vo_map, &at, &mut problems);
        // atrope 2.0 `project`: share with that project id.
        if let Some(p) = s
            .get("project")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            projects.push(p.to_string());
        }
        let visibility = match s.get("sharing_model").and_then(Value::as_str) {
            _ if !projects.is_empty() => Visibility::Shared,
            Some("public") => Visibility::Public,
            Some("community") => Visibility::Community,
            _ => Visibility::Private,
        };
        out.push(LegacySource {
            sub: Subscription {
                name: name.clone(),
                source,
                endorser: Endorser {
                    dn: dn.into(),
                    ca: ca.into(),
                },
                vos,
                visibility,
                images: strings("images"),
                prefix: s.get("prefix").and_then(Value::as_str).unwrap_or("").into(),
                enabled: s.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            },
            token: s
                .get("token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            projects,
        });
    }
    Ok(AtropeSources {
        lists: out,
        registries,
        problems,
    })
}

/// Project ids of `vos` through `vo_map`; unknown VOs are problems.
fn vo_projects(
    vos: &[String],
    vo_map: &BTreeMap<String, String>,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for vo in vos {
        match vo_map.get(vo) {
            Some(p) => out.push(p.clone()),
            None => problems.push(format!(
                "{}: VO {vo} is not in vo_map.yaml; not shared with it",
                at("vos")
            )),
        }
    }
    out
}

/// One atrope `type: harbor` source (defaults merged in).
fn atrope_harbor(
    name: &str,
    s: &serde_json::Map<String, Value>,
    vo_map: &BTreeMap<String, String>,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<String>,
) -> Result<LegacyRegistry, String> {
    let str_of = |k: &str| s.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let skip = |k: &str, why: &str| format!("{}: {why}; source skipped", at(k));
    if s.get("verify_ssl").and_then(Value::as_bool) == Some(false) {
        return Err(skip(
            "verify_ssl",
            "TLS verification cannot be turned off here; put the registry's CA into paths.ca-dir",
        ));
    }
    if str_of("token").is_some() {
        return Err(skip(
            "token",
            "a raw Authorization token is not supported; use auth_user/auth_password (a robot account)",
        ));
    }
    for k in ["subscribed_images", "images"] {
        if s.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return Err(skip(k, "subscribing to single images of a Harbor project is not supported; use tag_pattern"));
        }
    }
    let api = str_of("api_url").ok_or_else(|| skip("api_url", "api_url is required"))?;
    let api = Url::parse(api).map_err(|e| skip("api_url", &format!("not a URL: {e}")))?;
    if !matches!(api.scheme(), "http" | "https") {
        return Err(skip(
            "api_url",
            &format!(
                "the `{}` scheme is refused (https, or http where images.allow-http allows it)",
                api.scheme()
            ),
        ));
    }
    let mut registry = api.clone();
    let path = api.path().trim_end_matches('/');
    let base_path = path
        .strip_suffix("/api/v2.0")
        .ok_or_else(|| skip("api_url", "expected https://<harbor host>/api/v2.0"))?;
    registry.set_path(if base_path.is_empty() { "/" } else { base_path });
    if let Some(h) = str_of("registry_host") {
        let api_host = match (api.host_str(), api.port()) {
            (Some(x), Some(p)) => format!("{x}:{p}"),
            (Some(x), None) => x.to_string(),
            _ => String::new(),
        };
        if h != api_host {
            return Err(skip(
                "registry_host",
                &format!("the registry must be served by the Harbor host {api_host}, not {h}"),
            ));
        }
    }
    let project = str_of("project").ok_or_else(|| skip("project", "project is required"))?;
    let vos: Vec<String> = s
        .get("vos")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let projects = vo_projects(&vos, vo_map, at, problems);
    let visibility = match s.get("sharing_model").and_then(Value::as_str) {
        _ if !projects.is_empty() => Visibility::Shared,
        Some("public") => Visibility::Public,
        Some("community") => Visibility::Community,
        _ => Visibility::Private,
    };
    Ok(LegacyRegistry {
        sub: HarborSubscription {
            name: name.to_string(),
            registry,
            projects: vec![project.to_string()],
            repository: None,
            // Python `re.match`: a match at the start is enough.
            tag_pattern: str_of("tag_pattern").map(|p| format!("(?:{p}).*")),
            vos: Vec::new(),
            visibility,
            prefix: str_of("prefix").unwrap_or("").to_string(),
            robot: str_of("auth_user").map(String::from),
            enabled: s.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        },
        password: str_of("auth_password").map(Secret::new),
        projects,
    })
}

/// cloudkeeper `image-lists.conf`: one list URL per line. Names are
/// `cloudkeeper-<n>`; lists are VO-wide and their images stay private
/// unless the configuration says otherwise.
pub fn cloudkeeper_lists(path: &Path, endorser: &Endorser) -> Result<Vec<LegacySource>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let url = Url::parse(line)
            .map_err(|e| format!("{}:{}: not a URL: {e}", path.display(), i + 1))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{}:{}: the `{}` scheme is refused (https, or http where images.allow-http allows it)",
                path.display(),
                i + 1,
                url.scheme()
            ));
        }
        out.push(LegacySource {
            sub: Subscription {
                name: format!("cloudkeeper-{}", out.len() + 1),
                source: ListSource::Url(url),
                endorser: endorser.clone(),
                vos: Vec::new(),
                visibility: Visibility::Private,
                images: Vec::new(),
                prefix: String::new(),
                enabled: true,
            },
            token: None,
            projects: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atrope_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sources.yaml");
        std::fs::write(
            &src,
            "vo.fedcloud.egi.eu:\n  type: hepix\n  url: https://h/l.list\n  enabled: true\n  endorser: {dn: /CN=E, ca: /CN=CA}\n  token: t0k\n  images: [a]\n  prefix: 'F '\n  vos: [fedcloud.egi.eu, unknown]\nharbor:\n  api_url: https://registry.egi.eu/api/v2.0\n  registry_host: registry.egi.eu\n  prefix: 'registry.egi.eu '\n  tag_pattern: '^[^-]*$'\negi_vm_images:\n  type: harbor\n  project: egi_vm_images\n  vos: [fedcloud.egi.eu]\n  auth_user: robot$x\n  auth_password: pw\ninsecure:\n  type: harbor\n  project: p\n  verify_ssl: false\n",
        )
        .unwrap();
        let map = dir.path().join("vo_map.yaml");
        std::fs::write(&map, "fedcloud.egi.eu:\n  project_id: p1\n").unwrap();
        let vm = atrope_vo_map(&map).unwrap();
        let got = atrope_sources(&src, &vm).unwrap();
        let s = &got.lists;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].projects, vec!["p1"]);
        assert_eq!(s[0].sub.visibility, Visibility::Shared);
        assert_eq!(s[0].token.as_ref().unwrap().expose(), "t0k");
        // unknown VO; insecure harbor source skipped
        assert_eq!(got.problems.len(), 2, "{:?}", got.problems);
        assert!(
            got.problems[1].contains("insecure.verify_ssl"),
            "{:?}",
            got.problems
        );
        let r = &got.registries;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].sub.registry.as_str(), "https://registry.egi.eu/");
        assert_eq!(r[0].sub.projects, vec!["egi_vm_images"]);
        assert_eq!(r[0].sub.prefix, "registry.egi.eu ");
        assert_eq!(r[0].sub.robot.as_deref(), Some("robot$x"));
        assert_eq!(r[0].password.as_ref().unwrap().expose(), "pw");
        assert_eq!(r[0].projects, vec!["p1"]);
        assert_eq!(r[0].sub.visibility, Visibility::Shared);
        // atrope's re.match: anchored at the start only
        let re = regex::Regex::new(r[0].sub.tag_pattern.as_deref().unwrap()).unwrap();
        assert!(re.is_match("24.04"));
        let ck = dir.path().join("image-lists.conf");
        std::fs::write(&ck, "# c\nhttps://tok:x-oauth-basic@h/vo/a/image.list\n\n").unwrap();
        let e = Endorser {
            dn: "/CN=E".into(),
            ca: "/CN=CA".into(),
        };
        let l = cloudkeeper_lists(&ck, &e).unwrap();
        assert_eq!(l[0].sub.name, "cloudkeeper-1");
    }
}
