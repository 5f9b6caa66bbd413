//! Legacy subscriptions, read unchanged: atrope's `sources.yaml` (EGI
//! atrope 2.1: `type: hepix|harbor`, `url` or `file_path`, `endorser`,
//! `token`, `images`, `prefix`, `vos`, `sharing_model`, `enabled`) or
//! `hepix.yaml` (PyPI atrope 2.0: the same without `type`), with
//! `vo_map.yaml` (`{<vo>: {project_id: ...}}`), and cloudkeeper's
//! `image-lists.conf` (one URL per line, `#` comments; tokens in the URL's
//! userinfo). `type: harbor` sources are reported as not supported here.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use url::Url;

use crate::config::sections::images::{Endorser, ListSource, Subscription, Visibility};
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
) -> Result<(Vec<LegacySource>, Vec<String>), String> {
    let v = read_yaml(path)?;
    let Value::Object(m) = v else {
        return Err(format!("{}: expected a mapping of sources", path.display()));
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, s) in m {
        if name == "harbor" {
            continue; // defaults block of harbor sources
        }
        let at = |k: &str| format!("{}: {name}.{k}", path.display());
        let kind = s.get("type").and_then(Value::as_str).unwrap_or("hepix");
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
                Ok(u) => ListSource::Url(u),
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
        let mut projects = Vec::new();
        for vo in &vos {
            match vo_map.get(vo) {
                Some(p) => projects.push(p.clone()),
                None => problems.push(format!(
                    "{}: VO {vo} is not in vo_map.yaml; not shared with it",
                    at("vos")
                )),
            }
        }
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
    Ok((out, problems))
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
            "vo.fedcloud.egi.eu:\n  type: hepix\n  url: https://h/l.list\n  enabled: true\n  endorser: {dn: /CN=E, ca: /CN=CA}\n  token: t0k\n  images: [a]\n  prefix: 'F '\n  vos: [fedcloud.egi.eu, unknown]\nharbor:\n  api_url: x\negi_vm_images:\n  type: harbor\n",
        )
        .unwrap();
        let map = dir.path().join("vo_map.yaml");
        std::fs::write(&map, "fedcloud.egi.eu:\n  project_id: p1\n").unwrap();
        let vm = atrope_vo_map(&map).unwrap();
        let (s, problems) = atrope_sources(&src, &vm).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].projects, vec!["p1"]);
        assert_eq!(s[0].sub.visibility, Visibility::Shared);
        assert_eq!(s[0].token.as_ref().unwrap().expose(), "t0k");
        assert_eq!(problems.len(), 2, "{problems:?}");
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
