//! Images another tool uploaded, recognised by what it left in Glance, so
//! that the first `images sync` after a switch adopts them instead of
//! uploading them again (issue #12 point 4; spec legacy-appliance.md §3.4,
//! §3.5):
//!
//! - **atrope** (the 2016 appliance's, PyPI 2.0 too): tag `atrope`,
//!   `appdb_id`, `sha512` (hex), `image_list` (the hepix.yaml list name),
//!   optionally `vo`. The plan adopts these itself (same `appdb_id` and
//!   hash, [`super::plan::Existing::has_hash`]); here they are only named
//!   for the log.
//! - **cloudkeeper-os** (layouts B–H): no tag and no `appdb_id`, but
//!   `APPLIANCE_ID` (the image's `dc:identifier`), `APPLIANCE_IMAGE_LIST_ID`
//!   (the list's), `APPLIANCE_STATUS` (`ACTIVE`, or `EOL`: marked for
//!   deletion by its next cleanup), and the list's attributes either as one
//!   JSON string `APPLIANCE_ATTRIBUTES` (0.9.4–0.9.9) or one property per
//!   key (`sl:checksum:sha512`, `hv:version`, ...; 0.9.10+). The checksum
//!   comes from the attributes, else from Glance's own `os_hash_value`.
//!
//! [`candidates`] asks Glance for cloudkeeper-os's images of one
//! identifier; [`adopt`] (pure) turns the plan's "create" of an image that
//! cloudkeeper-os already uploaded with the same bytes into an adoption
//! (metadata patch, no download, no upload), and retires what
//! cloudkeeper-os itself would have deleted: its `EOL` twins and older
//! versions of the same identifier (the latter only once the new one is
//! active).

use std::collections::BTreeMap;

use serde_json::Value;

use super::plan::{patch_for, Action, Desired, Existing, PatchOp};
use crate::openstack::{image, Error, Session};

/// The tool that uploaded an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// atrope (tag `atrope`, `appdb_id`, `sha512`).
    Atrope,
    /// cloudkeeper-os 0.9.4–0.9.9: `APPLIANCE_ATTRIBUTES` JSON.
    CloudkeeperOsJson,
    /// cloudkeeper-os 0.9.10+: one property per attribute.
    CloudkeeperOsPerKey,
}

impl Tool {
    /// For logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Atrope => "atrope",
            Tool::CloudkeeperOsJson => "cloudkeeper-os (APPLIANCE_ATTRIBUTES JSON)",
            Tool::CloudkeeperOsPerKey => "cloudkeeper-os (per-key attributes)",
        }
    }
}

/// What an image says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// Who uploaded it.
    pub tool: Tool,
    /// The list image's `dc:identifier`.
    pub appdb_id: String,
    /// The list's `dc:identifier` (cloudkeeper-os).
    pub list_id: Option<String>,
    /// The listed file's sha512 (hex), as far as the image tells.
    pub sha512: Option<String>,
    /// cloudkeeper-os marked it `EOL` (to be deleted by its cleanup).
    pub eol: bool,
}

/// The prefixes of cloudkeeper-os's per-key attribute properties.
const ATTRIBUTE_PREFIXES: &[&str] = &["ad:", "dc:", "hv:", "sl:"];

/// Who uploaded `e`, if it was atrope or cloudkeeper-os (pure).
pub fn recognise(e: &Existing) -> Option<Recognised> {
    let p = |k: &str| e.properties.get(k).map(String::as_str);
    if p("image_hash").is_some() {
        return None; // ours (or atrope 2.1's): the plan's business
    }
    if let (Some(id), Some(sha)) = (p("appdb_id"), p("sha512")) {
        if e.tags.iter().any(|t| t == "atrope") {
            return Some(Recognised {
                tool: Tool::Atrope,
                appdb_id: id.to_string(),
                list_id: None,
                sha512: Some(sha.to_lowercase()),
                eol: false,
            });
        }
    }
    let id = p("APPLIANCE_ID").filter(|_| p("appdb_id").is_none())?;
    let per_key = e
        .properties
        .keys()
        .any(|k| ATTRIBUTE_PREFIXES.iter().any(|pre| k.starts_with(pre)));
    let from_json = p("APPLIANCE_ATTRIBUTES")
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .and_then(|v| {
            v.get("sl:checksum:sha512")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
        });
    let from_keys = p("sl:checksum:sha512").map(str::to_lowercase);
    let from_glance = (p("os_hash_algo") == Some("sha512"))
        .then(|| p("os_hash_value").map(str::to_lowercase))
        .flatten();
    Some(Recognised {
        tool: if per_key {
            Tool::CloudkeeperOsPerKey
        } else {
            Tool::CloudkeeperOsJson
        },
        appdb_id: id.to_string(),
        list_id: p("APPLIANCE_IMAGE_LIST_ID").map(String::from),
        sha512: from_keys.or(from_json).or(from_glance),
        eol: p("APPLIANCE_STATUS").is_some_and(|s| s.eq_ignore_ascii_case("EOL")),
    })
}

/// cloudkeeper-os's images of `appdb_id` in the owner project (its
/// `APPLIANCE_ID` property; whatever their tags).
pub async fn candidates(s: &Session, appdb_id: &str) -> Result<Vec<Existing>, Error> {
    let all = image::images(
        s,
        &image::ImageQuery {
            properties: vec![("APPLIANCE_ID".into(), appdb_id.into())],
            ..Default::default()
        },
    )
    .await?;
    let owner = s.project_id().map(String::from);
    Ok(all
        .into_iter()
        .filter(|i| owner.is_none() || i.owner == owner)
        .map(|i| Existing::from_glance(&i.raw, i.created_at))
        .filter(|e| {
            recognise(e).is_some_and(|r| {
                matches!(r.tool, Tool::CloudkeeperOsJson | Tool::CloudkeeperOsPerKey)
            })
        })
        .collect())
}

/// What cloudkeeper-os left on an adopted image that the appliance does
/// not keep up to date: removed, so nothing stale stays on it.
fn leftovers(e: &Existing, d: &Desired) -> Vec<PatchOp> {
    e.properties
        .keys()
        .filter(|k| !d.properties.contains_key(*k))
        .filter(|k| {
            (k.starts_with("APPLIANCE_") && !super::plan::MANAGED.contains(&k.as_str()))
                || ATTRIBUTE_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .map(|k| PatchOp {
            op: "remove",
            path: format!("/{k}"),
            value: None,
        })
        .collect()
}

/// The plan with cloudkeeper-os's images of the desired identifiers
/// adopted or retired (pure). `legacy` are [`candidates`]' answers.
///
/// Per desired image: an active, non-EOL image with the same identifier,
/// the same list (when the desired image names its list, i.e. with
/// `cloudkeeper-properties`) and the listed sha512 is adopted instead of
/// created (the newest, if several; the others retired as duplicates);
/// `EOL` images are retired (cloudkeeper-os's cleanup deletes them); active
/// images of another version are retired once the replacement is active
/// (added to the create's `replaces`), or at once when the appliance
/// already has the current version.
pub fn adopt(
    actions: Vec<Action>,
    desired: &[Desired],
    legacy: &[Existing],
    tag: &str,
) -> Vec<Action> {
    if legacy.is_empty() {
        return actions;
    }
    let by_id: BTreeMap<&str, &Desired> =
        desired.iter().map(|d| (d.appdb_id.as_str(), d)).collect();
    let mut out = Vec::with_capacity(actions.len());
    let mut extra = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for a in actions {
        let appdb_id = match &a {
            Action::Create { appdb_id, .. }
            | Action::Keep { appdb_id, .. }
            | Action::Update { appdb_id, .. } => appdb_id.clone(),
            _ => {
                out.push(a);
                continue;
            }
        };
        let Some(d) = by_id.get(appdb_id.as_str()) else {
            out.push(a);
            continue;
        };
        let mine: Vec<(&Existing, Recognised)> = legacy
            .iter()
            .filter_map(|e| recognise(e).map(|r| (e, r)))
            .filter(|(_, r)| r.appdb_id == appdb_id)
            .filter(
                |(_, r)| match (d.properties.get("APPLIANCE_IMAGE_LIST_ID"), &r.list_id) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                },
            )
            .collect();
        if mine.is_empty() || seen.contains(&d.appdb_id.as_str()) {
            out.push(a);
            continue;
        }
        seen.push(d.appdb_id.as_str());
        let want = d
            .image_hash
            .strip_prefix("sha512:")
            .unwrap_or(&d.image_hash)
            .to_lowercase();
        let mut current: Vec<&Existing> = mine
            .iter()
            .filter(|(e, r)| {
                !r.eol && e.status == "active" && r.sha512.as_deref() == Some(want.as_str())
            })
            .map(|(e, _)| *e)
            .collect();
        current.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        let keep = current.first().copied();
        let retire = |e: &Existing, reason: &str| Action::Retire {
            glance_id: e.id.clone(),
            appdb_id: appdb_id.clone(),
            reason: reason.into(),
        };
        let mut later: Vec<String> = Vec::new();
        for (e, r) in &mine {
            if keep.is_some_and(|k| k.id == e.id) {
                continue;
            }
            if r.eol {
                extra.push(retire(
                    e,
                    "cloudkeeper-os marked it EOL (its next cleanup would have deleted it)",
                ));
            } else if current.iter().any(|c| c.id == e.id) {
                extra.push(retire(
                    e,
                    "duplicate of a newer image cloudkeeper-os uploaded",
                ));
            } else {
                later.push(e.id.clone());
            }
        }
        match (a, keep) {
            (Action::Create { replaces, .. }, Some(k)) => {
                let mut patch = patch_for(k, d, tag, true);
                patch.extend(leftovers(k, d));
                out.push(Action::Update {
                    glance_id: k.id.clone(),
                    appdb_id: appdb_id.clone(),
                    patch,
                    adopt: true,
                });
                for id in replaces.into_iter().chain(later) {
                    extra.push(Action::Retire {
                        glance_id: id,
                        appdb_id: appdb_id.clone(),
                        reason: "superseded by a newer version".into(),
                    });
                }
            }
            (
                Action::Create {
                    appdb_id,
                    mut replaces,
                },
                None,
            ) => {
                // cloudkeeper-os's older version goes once the new one is active
                replaces.extend(later);
                out.push(Action::Create { appdb_id, replaces });
            }
            (other, k) => {
                // the appliance already has it: cloudkeeper-os's copies go
                out.push(other);
                for id in k.map(|k| k.id.clone()).into_iter().chain(later) {
                    extra.push(Action::Retire {
                        glance_id: id,
                        appdb_id: appdb_id.clone(),
                        reason: "the appliance already holds this image".into(),
                    });
                }
            }
        }
    }
    out.extend(extra);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    const SHA: &str = "ab12";

    fn desired(list_id: Option<&str>) -> Desired {
        let mut p = BTreeMap::new();
        p.insert("appdb_id".into(), "img-1".into());
        p.insert("image_hash".into(), format!("sha512:{SHA}"));
        p.insert("image_list".into(), "fedcloud.egi.eu".into());
        if let Some(l) = list_id {
            p.insert("APPLIANCE_ID".into(), "img-1".into());
            p.insert("APPLIANCE_IMAGE_LIST_ID".into(), l.into());
        }
        Desired {
            appdb_id: "img-1".into(),
            name: "Image 1".into(),
            image_hash: format!("sha512:{SHA}"),
            properties: p,
            min_ram: None,
            visibility: super::super::plan::Visibility::Shared,
        }
    }

    fn ck(id: &str, status: &str, sha: &str, per_key: bool, day: u32) -> Existing {
        let mut v = json!({
            "id": id, "name": "Image 1", "status": "active", "visibility": "private", "tags": [],
            "APPLIANCE_ID": "img-1", "APPLIANCE_IMAGE_LIST_ID": "list-1",
            "APPLIANCE_STATUS": status, "APPLIANCE_VERSION": "1", "APPLIANCE_RAM": "1024",
        });
        if per_key {
            v["sl:checksum:sha512"] = json!(sha);
            v["hv:version"] = json!("1");
        } else {
            v["APPLIANCE_ATTRIBUTES"] = json!(json!({"sl:checksum:sha512": sha}).to_string());
        }
        Existing::from_glance(
            &v,
            Some(Utc.with_ymd_and_hms(2021, 1, day, 0, 0, 0).unwrap()),
        )
    }

    #[test]
    fn recognises_every_legacy_form() {
        let r = recognise(&ck("a", "ACTIVE", "AB12", false, 1)).unwrap();
        assert_eq!(
            (r.tool, r.sha512.as_deref(), r.eol, r.list_id.as_deref()),
            (Tool::CloudkeeperOsJson, Some("ab12"), false, Some("list-1"))
        );
        let r = recognise(&ck("b", "EOL", SHA, true, 1)).unwrap();
        assert_eq!((r.tool, r.eol), (Tool::CloudkeeperOsPerKey, true));
        let atrope = Existing::from_glance(
            &json!({"id": "c", "status": "active", "tags": ["atrope"], "appdb_id": "img-1", "sha512": SHA, "image_list": "l", "vo": "ops"}),
            None,
        );
        assert_eq!(recognise(&atrope).unwrap().tool, Tool::Atrope);
        let ours = Existing::from_glance(
            &json!({"id": "d", "appdb_id": "img-1", "image_hash": "sha512:x", "APPLIANCE_ID": "img-1"}),
            None,
        );
        assert_eq!(recognise(&ours), None);
        let glance_hash = Existing::from_glance(
            &json!({"id": "e", "APPLIANCE_ID": "img-1", "os_hash_algo": "sha512", "os_hash_value": SHA}),
            None,
        );
        assert_eq!(
            recognise(&glance_hash).unwrap().sha512.as_deref(),
            Some(SHA)
        );
    }

    #[test]
    fn create_becomes_adoption_and_eol_twins_are_retired() {
        let legacy = vec![
            ck("active", "ACTIVE", SHA, true, 2),
            ck("eol", "EOL", "old", false, 1),
            ck("older", "ACTIVE", "old", false, 1),
        ];
        let actions = vec![Action::Create {
            appdb_id: "img-1".into(),
            replaces: vec![],
        }];
        let got = adopt(actions, &[desired(Some("list-1"))], &legacy, "atrope");
        let Action::Update {
            glance_id,
            patch,
            adopt,
            ..
        } = &got[0]
        else {
            panic!("{got:?}")
        };
        assert_eq!((glance_id.as_str(), *adopt), ("active", true));
        let paths: Vec<&str> = patch.iter().map(|p| p.path.as_str()).collect();
        for p in [
            "/appdb_id",
            "/image_hash",
            "/tags",
            "/APPLIANCE_STATUS",
            "/sl:checksum:sha512",
            "/APPLIANCE_RAM",
        ] {
            assert!(paths.contains(&p), "{p} not in {paths:?}");
        }
        assert!(!paths.contains(&"/APPLIANCE_ID"), "kept: desired has it");
        let retired: Vec<(&str, &str)> = got[1..]
            .iter()
            .map(|a| match a {
                Action::Retire {
                    glance_id, reason, ..
                } => (glance_id.as_str(), reason.as_str()),
                o => panic!("{o:?}"),
            })
            .collect();
        assert_eq!(retired.len(), 2, "{retired:?}");
        assert!(retired
            .iter()
            .any(|(id, r)| *id == "eol" && r.contains("EOL")));
        assert!(retired.iter().any(|(id, _)| *id == "older"));
    }

    #[test]
    fn other_bytes_or_other_list_are_not_adopted() {
        let create = || {
            vec![Action::Create {
                appdb_id: "img-1".into(),
                replaces: vec![],
            }]
        };
        // other bytes: created, the old one replaced after
        let got = adopt(
            create(),
            &[desired(None)],
            &[ck("x", "ACTIVE", "other", false, 1)],
            "t",
        );
        assert_eq!(
            got,
            vec![Action::Create {
                appdb_id: "img-1".into(),
                replaces: vec!["x".into()]
            }]
        );
        // another list's image: not touched
        let got = adopt(
            create(),
            &[desired(Some("list-2"))],
            &[ck("x", "ACTIVE", SHA, false, 1)],
            "t",
        );
        assert_eq!(got, create());
    }
}
