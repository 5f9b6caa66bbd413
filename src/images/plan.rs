//! The Glance reconcile plan (pure): from the images a list wants and the
//! images Glance holds, what to create, update (metadata only, JSON patch),
//! retire (old versions, removed and expired images) and clean up (images
//! stuck in `queued`/`saving`/`killed`/`importing`). The clock is passed in.
//!
//! Glance conventions are atrope's (spec image-sync §3.2), so that
//! cloud-info-provider and atrope-managed sites see the same thing:
//! `tags=[tag]`, `appdb_id`, `image_hash` (`sha512:<hex>`), `image_list`,
//! `vmcatcher_event_ad_mpuri`, `vmcatcher_event_dc_description`,
//! `vmcatcher_event_dc_title`, `APPLIANCE_ATTRIBUTES` (Python `json.dumps`
//! of the whole `hv:image`), `os_distro`, `os_version`, `architecture`.
//! Optionally cloudkeeper-os's `APPLIANCE_*` set. An image uploaded by
//! atrope (same `appdb_id` and hash, `image_hash` or PyPI atrope's `sha512`)
//! is adopted: its properties are patched, nothing is uploaded again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::list::{ImageList, ListImage};

/// Glance visibility of the synced images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Owner project only.
    Private,
    /// Owner + accepted members (one per VO project).
    Shared,
    /// Everyone who asks for it.
    Community,
    /// Everyone.
    Public,
}

impl Visibility {
    /// Glance's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
            Visibility::Public => "public",
        }
    }
}

/// Site-wide naming and property choices.
#[derive(Debug, Clone)]
pub struct Conventions {
    /// Glance tag marking managed images (atrope: `atrope`).
    pub tag: String,
    /// Global name prefix (atrope `[dispatchers] prefix`).
    pub prefix: String,
    /// Also write cloudkeeper-os's `APPLIANCE_*` properties.
    pub cloudkeeper_properties: bool,
    /// Set `min_ram` (MiB) from `hv:ram_minimum`.
    pub min_ram_from_list: bool,
}

/// What Glance should hold for one list image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// `dc:identifier` (`appdb_id`).
    pub appdb_id: String,
    /// Image name.
    pub name: String,
    /// `sha512:<hex>` of the listed file.
    pub image_hash: String,
    /// Managed string properties (including `appdb_id` and `image_hash`).
    pub properties: BTreeMap<String, String>,
    /// `min_ram`, MiB.
    pub min_ram: Option<u64>,
    /// Target visibility.
    pub visibility: Visibility,
}

/// Python `json.dumps(v)` with its default separators and `ensure_ascii`,
/// the bytes atrope writes into `APPLIANCE_ATTRIBUTES`.
pub fn python_json(v: &Value) -> String {
    crate::pyjson::dumps(v)
}

/// Longest Glance image name, in characters (Glance's image schema).
pub const NAME_MAX_CHARS: usize = 255;
/// Longest property value, in bytes: Glance stores values in a `TEXT`
/// column, 65,535 bytes on MySQL/MariaDB.
pub const VALUE_MAX_BYTES: usize = 65_535;
/// Largest `min_ram` (MiB): Glance's column is a 32-bit integer.
pub const MIN_RAM_MAX: u64 = i32::MAX as u64;

/// The Glance name of an image: the prefixes and the title, control
/// characters removed, fitted to [`NAME_MAX_CHARS`] (a longer one keeps
/// its head, `…` and a short digest of the whole, so it stays stable and
/// distinct). Pure.
pub fn glance_name(prefix: &str, source_prefix: &str, title: &str) -> String {
    let full = format!("{prefix}{source_prefix}{title}");
    super::text::fit(&super::text::clean(&full), NAME_MAX_CHARS).into_owned()
}

/// A property value for Glance: control characters removed, fitted to
/// [`VALUE_MAX_BYTES`]. Pure.
pub fn glance_value(v: &str) -> String {
    super::text::fit_bytes(&super::text::clean(v), VALUE_MAX_BYTES).into_owned()
}

/// `APPLIANCE_ATTRIBUTES`: Python `json.dumps` of the image's keys (JSON
/// escapes every control character), byte for byte as atrope writes it
/// while it fits in [`VALUE_MAX_BYTES`]; otherwise string values are cut
/// to 1,024 characters and, if still too long, keys are kept in their
/// order while they fit. Always valid JSON. Pure.
pub fn attributes(raw: &serde_json::Map<String, Value>) -> String {
    let whole = python_json(&Value::Object(raw.clone()));
    if whole.len() <= VALUE_MAX_BYTES {
        return whole;
    }
    let cut: serde_json::Map<String, Value> = raw
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(t) => Value::String(super::text::fit(t, 1024).into_owned()),
                other => other.clone(),
            };
            (super::text::fit(k, 255).into_owned(), v)
        })
        .collect();
    let text = python_json(&Value::Object(cut.clone()));
    if text.len() <= VALUE_MAX_BYTES {
        return text;
    }
    // `{"k": v, "k2": v2}`: braces, and per entry its key, `: `, its
    // value and (after the first) `, `.
    let mut kept = serde_json::Map::new();
    let mut len = 2;
    for (k, v) in cut {
        let entry = python_json(&Value::String(k.clone())).len() + 2 + python_json(&v).len();
        let sep = if kept.is_empty() { 0 } else { 2 };
        if len + sep + entry > VALUE_MAX_BYTES {
            break;
        }
        len += sep + entry;
        kept.insert(k, v);
    }
    python_json(&Value::Object(kept))
}

/// Whether `e`, not an image of this subscription, may be taken over by
/// it (adoption): an image another tool uploaded (without `tag`), or one
/// carrying `tag` whose `image_list` is empty or names no subscription in
/// `subscriptions` (every subscription defined, enabled or not, of every
/// origin: a renamed or removed one). Never an image of another defined
/// subscription: each subscription owns its own Glance image of an entry,
/// even when another subscription lists the same one, so ownership and
/// memberships stay stable. Pure.
pub fn adoptable(e: &Existing, tag: &str, subscriptions: &BTreeSet<String>) -> bool {
    if !e.tags.iter().any(|t| t == tag) {
        return true;
    }
    match e.prop("image_list") {
        None | Some("") => true,
        Some(list) => !subscriptions.contains(list),
    }
}

/// The Glance image a list image should become.
pub fn desired(
    list_name: &str,
    list: &ImageList,
    image: &ListImage,
    list_prefix: &str,
    visibility: Visibility,
    c: &Conventions,
) -> Desired {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.map(glance_value).filter(|v| !v.is_empty()) {
            p.insert(k.to_string(), v);
        }
    };
    let hash = format!("sha512:{}", image.sha512);
    put("appdb_id", Some(image.identifier.as_str()));
    put("image_hash", Some(&hash));
    put("image_list", Some(list_name));
    put("vmcatcher_event_ad_mpuri", image.mpuri.as_deref());
    put("vmcatcher_event_dc_description", Some(&image.description));
    put("vmcatcher_event_dc_title", Some(&image.title));
    put("os_distro", image.osname.as_deref());
    put("os_version", image.osversion.as_deref());
    put("architecture", image.arch.as_deref());
    put("APPLIANCE_ATTRIBUTES", Some(&attributes(&image.raw)));
    if c.cloudkeeper_properties {
        put("APPLIANCE_ID", Some(image.identifier.as_str()));
        put("APPLIANCE_IMAGE_LIST_ID", Some(&list.identifier));
        put("APPLIANCE_MPURI", image.mpuri.as_deref());
        put("APPLIANCE_VERSION", Some(&image.version));
        put("APPLIANCE_VO", list.vo.as_deref());
        put("APPLIANCE_TITLE", Some(&image.title));
    }
    Desired {
        appdb_id: image.identifier.as_str().to_string(),
        name: glance_name(&c.prefix, list_prefix, &image.title),
        image_hash: hash,
        properties: p,
        min_ram: if c.min_ram_from_list {
            image.ram_minimum.map(ram_mib).filter(|m| *m <= MIN_RAM_MAX)
        } else {
            None
        },
        visibility,
    }
}

/// `hv:ram_minimum` in MiB: AppDB writes bytes (cloudkeeper-os 063f658), the
/// examples write MiB; values of 1 MiB and more are taken as bytes.
pub fn ram_mib(v: u64) -> u64 {
    if v >= 1 << 20 {
        v.div_ceil(1 << 20)
    } else {
        v
    }
}

/// What the plan needs to know of an image in Glance.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Glance id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: String,
    /// Visibility.
    pub visibility: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// `min_ram`.
    pub min_ram: Option<u64>,
    /// String properties (custom and core).
    pub properties: BTreeMap<String, String>,
}

impl Existing {
    /// From a Glance image's JSON.
    pub fn from_glance(v: &Value, created_at: Option<DateTime<Utc>>) -> Existing {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let properties = v
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| x.as_str().map(|x| (k.clone(), x.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Existing {
            id: s("id"),
            name: s("name"),
            status: s("status"),
            visibility: s("visibility"),
            tags: v
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            created_at,
            min_ram: v.get("min_ram").and_then(Value::as_u64),
            properties,
        }
    }
    /// A string property.
    pub fn prop(&self, k: &str) -> Option<&str> {
        self.properties.get(k).map(String::as_str)
    }
    /// The `appdb_id` it was uploaded for.
    pub fn appdb_id(&self) -> Option<&str> {
        self.prop("appdb_id")
    }
    /// Whether its bytes are those of `hash` (`sha512:<hex>`): `image_hash`,
    /// or PyPI atrope 2.0's `sha512`, or cloudkeeper-os's attributes.
    pub fn has_hash(&self, hash: &str) -> bool {
        let hex = hash.strip_prefix("sha512:").unwrap_or(hash);
        self.prop("image_hash") == Some(hash) || self.prop("sha512") == Some(hex)
    }
    fn stuck(&self) -> bool {
        matches!(
            self.status.as_str(),
            "queued" | "saving" | "killed" | "importing" | "uploading"
        )
    }
}

/// A JSON patch operation (Glance `application/openstack-images-v2.1-json-patch`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    /// `add`, `replace`, `remove`.
    pub op: &'static str,
    /// `/<property>`.
    pub path: String,
    /// New value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Download, verify, create, upload, activate, share; then retire
    /// `replaces` (the previous version) once the new one is active.
    Create {
        /// The list image.
        appdb_id: String,
        /// Old versions to retire after the new one is active.
        replaces: Vec<String>,
    },
    /// Metadata only: patch, no upload. `adopt` when taking over an image
    /// atrope or cloudkeeper-os uploaded.
    Update {
        /// Glance id.
        glance_id: String,
        /// The list image.
        appdb_id: String,
        /// The patch.
        patch: Vec<PatchOp>,
        /// Taking over an image uploaded by another tool.
        adopt: bool,
    },
    /// Up to date (sharing is still reconciled).
    Keep {
        /// Glance id.
        glance_id: String,
        /// The list image.
        appdb_id: String,
    },
    /// Delete (or, when Glance refuses because it is in use: make private
    /// and deactivate; retried on later runs).
    Retire {
        /// Glance id.
        glance_id: String,
        /// Its `appdb_id`.
        appdb_id: String,
        /// Why.
        reason: String,
    },
    /// Delete an image stuck in an unfinished upload.
    DeleteStuck {
        /// Glance id.
        glance_id: String,
        /// Its status.
        status: String,
    },
}

/// How the plan treats the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// Accepted and current: full reconcile.
    Current,
    /// Expired: keep what is there, change nothing.
    ExpiredKeep,
    /// Expired and the site asked for removal: retire the list's images.
    ExpiredRemove,
}

/// The patch that turns `e` into `d` (empty when up to date). `managed` is
/// every property key this tool may write: keys `d` lacks are removed.
pub fn patch_for(e: &Existing, d: &Desired, tag: &str, adopt: bool) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    let managed: BTreeSet<&str> = MANAGED.iter().copied().collect();
    if e.name != d.name {
        ops.push(PatchOp {
            op: "replace",
            path: "/name".into(),
            value: Some(Value::String(d.name.clone())),
        });
    }
    for (k, v) in &d.properties {
        if e.prop(k) != Some(v.as_str()) {
            ops.push(PatchOp {
                op: if e.properties.contains_key(k) {
                    "replace"
                } else {
                    "add"
                },
                path: format!("/{k}"),
                value: Some(Value::String(v.clone())),
            });
        }
    }
    for k in e.properties.keys() {
        if managed.contains(k.as_str()) && !d.properties.contains_key(k) {
            ops.push(PatchOp {
                op: "remove",
                path: format!("/{k}"),
                value: None,
            });
        }
    }
    if let Some(ram) = d.min_ram {
        if e.min_ram != Some(ram) {
            ops.push(PatchOp {
                op: "replace",
                path: "/min_ram".into(),
                value: Some(Value::from(ram)),
            });
        }
    }
    if !e.tags.iter().any(|t| t == tag) || (adopt && e.tags.len() != 1) {
        let mut tags = e.tags.clone();
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
        ops.push(PatchOp {
            op: "replace",
            path: "/tags".into(),
            value: Some(Value::from(tags)),
        });
    }
    if e.visibility != d.visibility.as_str() {
        ops.push(PatchOp {
            op: "replace",
            path: "/visibility".into(),
            value: Some(Value::String(d.visibility.as_str().into())),
        });
    }
    ops
}

/// Every property key this tool writes.
pub const MANAGED: &[&str] = &[
    "appdb_id",
    "image_hash",
    "image_list",
    "vmcatcher_event_ad_mpuri",
    "vmcatcher_event_dc_description",
    "vmcatcher_event_dc_title",
    "os_distro",
    "os_version",
    "architecture",
    "APPLIANCE_ATTRIBUTES",
    "APPLIANCE_ID",
    "APPLIANCE_IMAGE_LIST_ID",
    "APPLIANCE_MPURI",
    "APPLIANCE_VERSION",
    "APPLIANCE_VO",
    "APPLIANCE_TITLE",
];

/// Plan one list. `ours` are the Glance images tagged with our tag and
/// `image_list == list_name`; `others` are further images that may be
/// adopted (same `appdb_id`, uploaded by atrope or cloudkeeper-os).
pub fn plan(
    mode: ListMode,
    desired: &[Desired],
    ours: &[Existing],
    others: &[Existing],
    tag: &str,
    now: DateTime<Utc>,
    stuck_after: chrono::Duration,
) -> Vec<Action> {
    let mut actions = Vec::new();
    // Stuck uploads are cleaned whatever the list's state.
    let mut live: Vec<&Existing> = Vec::new();
    for e in ours {
        if e.stuck() {
            let old = e.created_at.is_none_or(|c| now - c >= stuck_after);
            if old || e.status == "killed" {
                actions.push(Action::DeleteStuck {
                    glance_id: e.id.clone(),
                    status: e.status.clone(),
                });
            }
        } else {
            live.push(e);
        }
    }
    match mode {
        ListMode::ExpiredKeep => return actions,
        ListMode::ExpiredRemove => {
            for e in live {
                actions.push(Action::Retire {
                    glance_id: e.id.clone(),
                    appdb_id: e.appdb_id().unwrap_or("").into(),
                    reason: "the list expired (expired-list: remove)".into(),
                });
            }
            return actions;
        }
        ListMode::Current => {}
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.appdb_id.as_str()).collect();
    for d in desired {
        let mine: Vec<&&Existing> = live
            .iter()
            .filter(|e| e.appdb_id() == Some(d.appdb_id.as_str()))
            .collect();
        // Newest first, so duplicates resolve to the newest active one.
        let mut current: Vec<&&Existing> = mine
            .iter()
            .copied()
            .filter(|e| e.status == "active" && e.has_hash(&d.image_hash))
            .collect();
        current.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        let stale: Vec<&&Existing> = mine
            .iter()
            .copied()
            .filter(|e| !(e.status == "active" && e.has_hash(&d.image_hash)))
            .collect();
        if let Some(keep) = current.first() {
            let patch = patch_for(keep, d, tag, false);
            actions.push(if patch.is_empty() {
                Action::Keep {
                    glance_id: keep.id.clone(),
                    appdb_id: d.appdb_id.clone(),
                }
            } else {
                Action::Update {
                    glance_id: keep.id.clone(),
                    appdb_id: d.appdb_id.clone(),
                    patch,
                    adopt: false,
                }
            });
            for dup in current.iter().skip(1) {
                actions.push(Action::Retire {
                    glance_id: dup.id.clone(),
                    appdb_id: d.appdb_id.clone(),
                    reason: "duplicate of a newer active image".into(),
                });
            }
            for s in stale {
                actions.push(Action::Retire {
                    glance_id: s.id.clone(),
                    appdb_id: d.appdb_id.clone(),
                    reason: "superseded by a newer version".into(),
                });
            }
            continue;
        }
        // Adoption: an active image another tool uploaded with these bytes.
        let adoptable = others.iter().find(|e| {
            e.status == "active"
                && e.appdb_id() == Some(d.appdb_id.as_str())
                && e.has_hash(&d.image_hash)
        });
        if let Some(e) = adoptable {
            actions.push(Action::Update {
                glance_id: e.id.clone(),
                appdb_id: d.appdb_id.clone(),
                patch: patch_for(e, d, tag, true),
                adopt: true,
            });
            for s in stale {
                actions.push(Action::Retire {
                    glance_id: s.id.clone(),
                    appdb_id: d.appdb_id.clone(),
                    reason: "superseded by a newer version".into(),
                });
            }
            continue;
        }
        actions.push(Action::Create {
            appdb_id: d.appdb_id.clone(),
            replaces: stale.iter().map(|e| e.id.clone()).collect(),
        });
    }
    for e in live {
        let id = e.appdb_id().unwrap_or("");
        if !wanted.contains(id) {
            actions.push(Action::Retire {
                glance_id: e.id.clone(),
                appdb_id: id.into(),
                reason: "no longer in the list, not subscribed, or expired".into(),
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(id: &str, hash: &str) -> Desired {
        let mut p = BTreeMap::new();
        p.insert("appdb_id".into(), id.into());
        p.insert("image_hash".into(), hash.into());
        p.insert("image_list".into(), "L".into());
        Desired {
            appdb_id: id.into(),
            name: format!("N {id}"),
            image_hash: hash.into(),
            properties: p,
            min_ram: None,
            visibility: Visibility::Private,
        }
    }
    fn e(gid: &str, id: &str, hash: &str, status: &str, age_min: i64) -> Existing {
        let now = t();
        Existing::from_glance(
            &json!({"id": gid, "name": format!("N {id}"), "status": status, "visibility": "private",
                    "tags": ["atrope"], "appdb_id": id, "image_hash": hash, "image_list": "L"}),
            Some(now - chrono::Duration::minutes(age_min)),
        )
    }
    fn t() -> DateTime<Utc> {
        super::super::list::parse_date("2026-03-01T00:00:00Z").unwrap()
    }
    fn run(
        mode: ListMode,
        want: &[Desired],
        ours: &[Existing],
        others: &[Existing],
    ) -> Vec<Action> {
        plan(
            mode,
            want,
            ours,
            others,
            "atrope",
            t(),
            chrono::Duration::minutes(60),
        )
    }

    #[test]
    fn decision_table() {
        // new
        assert_eq!(
            run(ListMode::Current, &[d("a", "sha512:1")], &[], &[]),
            vec![Action::Create {
                appdb_id: "a".into(),
                replaces: vec![]
            }]
        );
        // unchanged
        let keep = run(
            ListMode::Current,
            &[d("a", "sha512:1")],
            &[e("g1", "a", "sha512:1", "active", 5)],
            &[],
        );
        assert_eq!(
            keep,
            vec![Action::Keep {
                glance_id: "g1".into(),
                appdb_id: "a".into()
            }]
        );
        // new version: create first, the old one is retired afterwards
        let nv = run(
            ListMode::Current,
            &[d("a", "sha512:2")],
            &[e("g1", "a", "sha512:1", "active", 5)],
            &[],
        );
        assert_eq!(
            nv,
            vec![Action::Create {
                appdb_id: "a".into(),
                replaces: vec!["g1".into()]
            }]
        );
        // metadata only
        let mut changed = d("a", "sha512:1");
        changed.name = "Renamed".into();
        let md = run(
            ListMode::Current,
            &[changed],
            &[e("g1", "a", "sha512:1", "active", 5)],
            &[],
        );
        assert!(
            matches!(&md[0], Action::Update { patch, adopt: false, .. } if patch[0].path == "/name")
        );
        // removed
        let rm = run(
            ListMode::Current,
            &[],
            &[e("g1", "a", "sha512:1", "active", 5)],
            &[],
        );
        assert!(matches!(&rm[0], Action::Retire { glance_id, .. } if glance_id == "g1"));
        // expired list: keep, or remove when asked
        assert!(run(
            ListMode::ExpiredKeep,
            &[],
            &[e("g1", "a", "sha512:1", "active", 5)],
            &[]
        )
        .is_empty());
        assert!(matches!(
            &run(
                ListMode::ExpiredRemove,
                &[],
                &[e("g1", "a", "sha512:1", "active", 5)],
                &[]
            )[0],
            Action::Retire { .. }
        ));
    }

    #[test]
    fn stuck_duplicates_and_adoption() {
        let ours = [
            e("q-old", "a", "sha512:1", "queued", 120),
            e("q-new", "a", "sha512:1", "queued", 5),
            e("k", "a", "sha512:1", "killed", 1),
            e("old", "a", "sha512:1", "active", 50),
            e("new", "a", "sha512:1", "active", 10),
        ];
        let acts = run(ListMode::Current, &[d("a", "sha512:1")], &ours, &[]);
        assert!(acts.contains(&Action::DeleteStuck {
            glance_id: "q-old".into(),
            status: "queued".into()
        }));
        assert!(acts.contains(&Action::DeleteStuck {
            glance_id: "k".into(),
            status: "killed".into()
        }));
        assert!(!acts
            .iter()
            .any(|a| matches!(a, Action::DeleteStuck { glance_id, .. } if glance_id == "q-new")));
        assert!(acts.contains(&Action::Keep {
            glance_id: "new".into(),
            appdb_id: "a".into()
        }));
        assert!(acts
            .iter()
            .any(|a| matches!(a, Action::Retire { glance_id, .. } if glance_id == "old")));

        // PyPI atrope 2.0: property sha512, no image_list
        let theirs = Existing::from_glance(
            &json!({"id": "at", "name": "x", "status": "active", "visibility": "public", "tags": ["atrope"],
                    "appdb_id": "a", "sha512": "1"}),
            None,
        );
        let acts = run(ListMode::Current, &[d("a", "sha512:1")], &[], &[theirs]);
        match &acts[0] {
            Action::Update {
                glance_id,
                adopt: true,
                patch,
                ..
            } => {
                assert_eq!(glance_id, "at");
                assert!(patch.iter().any(|p| p.path == "/image_hash"));
                assert!(patch.iter().any(|p| p.path == "/visibility"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_subscription_s_image_is_never_adopted() {
        let subs: BTreeSet<String> = ["L".to_string(), "M".to_string()].into();
        let img = |tags: &[&str], list: Option<&str>| {
            let mut v = json!({"id": "g", "name": "n", "status": "active", "visibility": "private",
                    "tags": tags, "appdb_id": "a", "image_hash": "sha512:1"});
            if let Some(l) = list {
                v["image_list"] = json!(l);
            }
            Existing::from_glance(&v, None)
        };
        assert!(!adoptable(&img(&["atrope"], Some("M")), "atrope", &subs));
        assert!(adoptable(&img(&["atrope"], Some("gone")), "atrope", &subs));
        assert!(adoptable(&img(&["atrope"], None), "atrope", &subs));
        assert!(adoptable(&img(&["other"], Some("M")), "atrope", &subs));
    }

    #[test]
    fn names_and_values_fit_glance() {
        let long = "T".repeat(300);
        let n = glance_name("EGI ", "vo ", &long);
        assert_eq!(n.chars().count(), NAME_MAX_CHARS);
        assert!(n.starts_with("EGI vo TTT"));
        assert_eq!(glance_name("", "", "a\nb\x1b[0m"), "a b[0m");
        assert_eq!(glance_value(&"v".repeat(70_000)).len(), VALUE_MAX_BYTES);
        let mut raw = serde_json::Map::new();
        raw.insert("dc:title".into(), json!("t\u{1b}"));
        assert_eq!(attributes(&raw), r#"{"dc:title": "t\u001b"}"#);
        raw.insert("dc:description".into(), json!("d".repeat(100_000)));
        for i in 0..5000 {
            raw.insert(format!("x:{i}"), json!("y".repeat(20)));
        }
        let a = attributes(&raw);
        assert!(a.len() <= VALUE_MAX_BYTES);
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["dc:title"], "t\u{1b}");
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let v = json!({"b": "x\u{e9}\"", "a": [1, true, null], "c": {"d": "\u{1f600}"}});
        assert_eq!(
            python_json(&v),
            r#"{"b": "x\u00e9\"", "a": [1, true, null], "c": {"d": "\ud83d\ude00"}}"#
        );
        assert_eq!(ram_mib(512), 512);
        assert_eq!(ram_mib(1_073_741_824), 1024);
    }
}
