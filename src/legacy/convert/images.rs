//! Image synchronisation: cloudkeeper's `image-lists.conf` (one URL per
//! line, the AppDB token as the URL's user) and `cloudkeeper.yml`,
//! cloudkeeper-os's options, atrope's `atrope.conf` and `hepix.yaml`
//! (layout A) -> `images.subscriptions` with their tokens in the secrets
//! file (spec legacy-appliance.md §2.5, §6.1).

use std::collections::BTreeMap;

use url::Url;

use super::read::{IniView, Val, YamlView};
use super::{
    conflict, dropped, imported, imported_note, is_true, never, placeholder, used, Cx, Proj,
};
use crate::config::format::Out;
use crate::legacy::layout::Layout;
use crate::legacy::report::Outcome;

/// AppDB's list signer as atrope's 2016 sample names it (§2.5): the
/// endorser cloudkeeper never checked.
pub const APPDB_DN: &str = "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu";
/// Its CA.
pub const APPDB_CA: &str = "/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013";

pub(super) struct Sources<'a> {
    pub ck_lists: &'a str,
    pub ck_yml: &'a str,
    pub hepix: &'a Option<YamlView>,
    pub atrope: &'a Option<IniView>,
    pub ckos: &'a Option<IniView>,
    /// VOs of the new configuration, in order.
    pub vos: &'a [String],
    /// VO -> its legacy image project.
    pub image_projects: &'a BTreeMap<String, Proj>,
    pub catch_all: &'a Option<YamlView>,
}

pub(super) struct ImagesOut {
    pub enabled: bool,
    pub section: Out,
}

struct Sub {
    name: String,
    url: String,
    endorser: (String, String, Option<String>),
    vos: Vec<String>,
    visibility: &'static str,
    images: Vec<String>,
    prefix: String,
    enabled: bool,
}

/// A subscription name: the VO name when it is a safe file name.
fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) fn images(cx: &mut Cx<'_>, src: &Sources<'_>) -> ImagesOut {
    let layout = cx.inp.layout;
    let snap = cx.inp.snap;
    let mut section = Out::map();
    let mut subs: Vec<Sub> = Vec::new();
    let visibility_opt = src
        .ckos
        .as_ref()
        .and_then(|k| k.get("DEFAULT", "image_visibility"))
        .cloned();

    // cloudkeeper.yml
    let mut formats: Option<Vec<String>> = None;
    if let Some(y) = super::yaml_file(
        &mut cx.l,
        snap,
        src.ck_yml,
        "cloudkeeper: image-list synchronisation (core)",
        &[],
    ) {
        if let Some((v, items)) = y.list("cloudkeeper.formats") {
            formats = Some(items.to_vec());
            cx.set(v, imported("images.formats"));
        }
        for (p, v) in y.all() {
            let o = match p {
                "cloudkeeper.image-lists" | "cloudkeeper.image-lists-file" => {
                    used(format!("where the subscribed lists are: {}", src.ck_lists))
                }
                "cloudkeeper.ca-dir" => used("IGTF CA directory (paths.ca-dir)"),
                "cloudkeeper.image-dir" => {
                    used("a path inside cloudkeeper's container: /image_data on the host (paths.image-data)")
                }
                _ if p.starts_with("cloudkeeper.logging") || p == "cloudkeeper.debug" => {
                    dropped("the appliance logs to journald")
                }
                _ => dropped("cloudkeeper's internals (gRPC backend, nginx, external tools, lock): the appliance syncs in one process"),
            };
            cx.l.set_if_open(v.id, o);
        }
    }

    // cloudkeeper-os.conf, beyond its account
    if let Some(k) = src.ckos {
        for (key, v) in k.section("DEFAULT") {
            let o = match key {
                "mapping_file" => used(format!(
                    "a path inside cloudkeeper-os's container; on the host it is {}",
                    layout.image_mapping().unwrap_or("")
                )),
                "image_visibility" => imported("images.subscriptions[].visibility"),
                "glance_url" => {
                    section.push("glance-endpoint", Out::str(v.text.trim()), None);
                    imported("images.glance-endpoint")
                }
                _ => dropped("cloudkeeper-os's gRPC server and logging: not needed"),
            };
            cx.l.set_if_open(v.id, o);
        }
    }

    // image-lists.conf
    if let Some(text) = snap.get(src.ck_lists) {
        let f = cx.l.file(
            src.ck_lists,
            "cloudkeeper: the subscribed image lists, one URL per line",
        );
        let mut n = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let lno = i + 1;
            if line.starts_with('#') {
                let id = cx.l.key(f, Some(lno), format!("line {lno}"), line, false);
                cx.l.set(
                    id,
                    dropped(if layout >= Layout::D {
                        "a comment (cloudkeeper 1.7.1 read even these as URLs: a warning on every run)"
                    } else {
                        "a comment"
                    }),
                );
                continue;
            }
            let Ok(mut url) = Url::parse(line) else {
                let id = cx.l.key(f, Some(lno), format!("line {lno}"), line, false);
                cx.l.set(id, dropped("not a URL"));
                continue;
            };
            let token = (!url.username().is_empty()).then(|| url.username().to_string());
            let _ = url.set_username("");
            let _ = url.set_password(None);
            // the value shown: the URL without its token
            let id =
                cx.l.key(f, Some(lno), format!("line {lno}"), url.as_str(), false);
            if let Some(t) = &token {
                if let Some(w) = placeholder(t, &[]) {
                    cx.l.set(
                        id,
                        Outcome::NeverConfigured {
                            note: format!(
                                "{w} (the AppDB token): the shipped sample line; not subscribed"
                            ),
                        },
                    );
                    continue;
                }
            }
            let vo = url
                .path_segments()
                .and_then(|mut s| {
                    let parts: Vec<&str> = s.by_ref().collect();
                    parts
                        .windows(2)
                        .find(|w| w[0] == "vo")
                        .map(|w| w[1].to_string())
                })
                .filter(|v| !v.is_empty());
            n += 1;
            let name = vo
                .clone()
                .filter(|v| safe(v) && !subs.iter().any(|s| &s.name == v))
                .unwrap_or_else(|| format!("cloudkeeper-{n}"));
            let mut notes = Vec::new();
            if token.is_some() {
                cx.secret(
                    "images",
                    Some(&name),
                    "token",
                    token.as_deref().unwrap_or(""),
                );
                notes.push(format!(
                    "the AppDB token in the URL -> secrets file images.{name}.token"
                ));
            }
            let (vos, vis) = share(src, vo.as_deref(), &mut notes, visibility_opt.as_ref());
            if url.host_str() == Some("vmcaster.appdb.egi.eu") {
                notes.push("AppDB VO lists are legacy: EGI distributes images from registry.egi.eu now (a `type: harbor` subscription); keep this one while the list is still published".into());
            }
            let idx = subs.len();
            subs.push(Sub {
                name: name.clone(),
                url: url.as_str().to_string(),
                endorser: (
                    APPDB_DN.into(),
                    APPDB_CA.into(),
                    Some("assumed: cloudkeeper never checked who signed a list; AppDB's signer as of 2016".into()),
                ),
                vos,
                visibility: vis,
                images: Vec::new(),
                prefix: String::new(),
                enabled: true,
            });
            cx.l.set(
                id,
                conflict(
                    format!(
                        "{}; cloudkeeper accepted any signature, the appliance checks the endorser: confirm AppDB's current signer DN",
                        notes.join("; ")
                    ),
                    Some(format!("images.subscriptions[{idx}] `{name}` with endorser {APPDB_DN}")),
                ),
            );
        }
    }

    // atrope (A)
    if let Some(a) = src.atrope {
        for (sec, key, v) in [
            ("DEFAULT", "state_path", a.get("DEFAULT", "state_path")),
            ("DEFAULT", "verbose", a.get("DEFAULT", "verbose")),
            ("DEFAULT", "log_file", a.get("DEFAULT", "log_file")),
            (
                "sources",
                "hepix_sources",
                a.get("sources", "hepix_sources"),
            ),
            (
                "dispatchers",
                "dispatcher",
                a.get("dispatchers", "dispatcher"),
            ),
            (
                "dispatchers",
                "dispatchers",
                a.get("dispatchers", "dispatchers"),
            ),
            ("dispatchers", "prefix", a.get("dispatchers", "prefix")),
            ("glance", "mapping_file", a.get("glance", "mapping_file")),
            ("glance", "endpoint", a.get("glance", "endpoint")),
        ] {
            let Some(v) = v else { continue };
            let _ = sec;
            let o = match key {
                "state_path" => used("atrope's cache (/image_data/lists/...): the appliance keeps its own cache under paths.image-data; atrope's files can be deleted"),
                "verbose" | "log_file" => dropped("the appliance logs to journald"),
                "hepix_sources" => used("where the subscribed lists are (hepix.yaml)"),
                "dispatcher" if v.text.trim() == "glance" => used("images went to Glance, as with the appliance"),
                "dispatcher" | "dispatchers" => conflict(
                    format!("`{}`: atrope does not read this option and fell back to the noop dispatcher: images may never have reached Glance", v.text.trim()),
                    None,
                ),
                "prefix" => {
                    section.push("prefix", Out::str(v.text.clone()), Some("atrope's [dispatchers] prefix".into()));
                    imported("images.prefix")
                }
                "mapping_file" => used("VO -> tenant for sharing: /etc/voms.json"),
                "endpoint" => match placeholder(&v.text, &[]) {
                    Some(w) => never(w),
                    None => {
                        section.push("glance-endpoint", Out::str(v.text.trim()), None);
                        imported("images.glance-endpoint")
                    }
                },
                _ => continue,
            };
            cx.l.set_if_open(v.id, o);
        }
    }
    if let Some(h) = src.hepix {
        // list names have dots (`fedcloud.egi.eu`): split at the known keys
        const KEYS: &[&str] = &[
            "url",
            "enabled",
            "endorser.dn",
            "endorser.ca",
            "token",
            "images",
            "prefix",
        ];
        let mut lists: Vec<String> = Vec::new();
        for (p, v) in h.all() {
            let name = KEYS
                .iter()
                .find_map(|k| p.strip_suffix(k).and_then(|n| n.strip_suffix('.')));
            match name {
                Some(n) if !lists.iter().any(|l| l == n) => lists.push(n.to_string()),
                Some(_) => {}
                None => cx.l.set_if_open(v.id, dropped("not a key atrope reads")),
            }
        }
        for name in lists {
            let g = |k: &str| h.get(&format!("{name}.{k}")).cloned();
            let Some(url_v) = g("url") else {
                for k in KEYS {
                    if let Some(v) = g(k) {
                        cx.l.set_if_open(v.id, dropped("a list without `url`"));
                    }
                }
                continue;
            };
            let Ok(url) = Url::parse(url_v.text.trim()) else {
                cx.set(&url_v, dropped("not a URL"));
                continue;
            };
            let sub_name = if safe(&name) {
                name.clone()
            } else {
                name.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            };
            let idx = subs.len();
            let to = |k: &str| format!("images.subscriptions[{idx}].{k}");
            cx.set(&url_v, imported(&to("url")));
            let enabled = g("enabled").map(|v| {
                cx.set(&v, imported(&to("enabled")));
                is_true(&v.text)
            });
            let dn = g("endorser.dn");
            let ca = g("endorser.ca");
            for v in [&dn, &ca].into_iter().flatten() {
                cx.set(v, imported(&to("endorser")));
            }
            let mut notes = Vec::new();
            let token = g("token");
            let mut has_token = false;
            if let Some(t) = &token {
                match super::secret_placeholder(&t.text, &[]) {
                    Some(w) => cx.set(
                        t,
                        never(format!(
                            "{w}: atrope's sample token (\"insert here your token\")"
                        )),
                    ),
                    None => {
                        cx.secret("images", Some(&sub_name), "token", &t.text);
                        cx.set(
                            t,
                            Outcome::Secret {
                                to: format!("images.{sub_name}.token"),
                            },
                        );
                        has_token = true;
                    }
                }
            }
            let images: Vec<String> = g("images")
                .map(|v| {
                    cx.set(&v, imported(&to("images")));
                    h.list(&format!("{name}.images"))
                        .map(|(_, i)| i.to_vec())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let prefix = g("prefix")
                .map(|v| {
                    cx.set(&v, imported(&to("prefix")));
                    v.text.clone()
                })
                .unwrap_or_default();
            // atrope 2016 shared a list's images with the tenant of the
            // list's `ad:vo`, found inside the list: the list name is the VO.
            let (vos, mut vis) = share(src, Some(&name), &mut notes, None);
            if !has_token && vos.is_empty() {
                vis = "public";
                notes.push("no token: atrope made its images public".into());
            }
            if !notes.is_empty() {
                cx.set(&url_v, imported_note(&to("url"), notes.join("; ")));
            }
            subs.push(Sub {
                name: sub_name,
                url: url.as_str().to_string(),
                endorser: (
                    dn.map(|v| v.text).unwrap_or_else(|| APPDB_DN.into()),
                    ca.map(|v| v.text).unwrap_or_else(|| APPDB_CA.into()),
                    None,
                ),
                vos,
                visibility: vis,
                images,
                prefix,
                enabled: enabled.unwrap_or(true),
            });
        }
    }
    // formats: cloudkeeper's, else the catch-all's
    if formats.is_none() {
        if let Some((v, items)) = src
            .catch_all
            .as_ref()
            .and_then(|c| c.list("images.formats"))
        {
            formats = Some(items.to_vec());
            cx.set(v, imported("images.formats"));
        }
    }
    if let Some(f) = formats.filter(|f| !f.is_empty()) {
        section.push(
            "formats",
            Out::List(f.into_iter().map(Out::Str).collect()),
            Some("images in other formats are converted (qemu-img)".into()),
        );
    }
    if layout >= Layout::B && !subs.is_empty() {
        section.push(
            "cloudkeeper-properties",
            Out::Bool(true),
            Some("keep writing cloudkeeper-os's APPLIANCE_* properties, which this site's images carry".into()),
        );
    }
    let enabled = subs.iter().any(|s| s.enabled);
    if !subs.is_empty() {
        let list = subs
            .into_iter()
            .map(|s| {
                let mut m = Out::map();
                m.push("name", Out::str(&s.name), None);
                m.push("url", Out::str(&s.url), None);
                let mut e = Out::map();
                e.push("dn", Out::str(&s.endorser.0), None);
                e.push("ca", Out::str(&s.endorser.1), None);
                m.push("endorser", e, s.endorser.2.clone());
                if !s.vos.is_empty() {
                    m.push("vos", Out::List(s.vos.iter().map(Out::str).collect()), None);
                }
                m.push("visibility", Out::str(s.visibility), None);
                if !s.images.is_empty() {
                    m.push(
                        "images",
                        Out::List(s.images.iter().map(Out::str).collect()),
                        None,
                    );
                }
                if !s.prefix.is_empty() {
                    m.push("prefix", Out::str(&s.prefix), None);
                }
                if !s.enabled {
                    m.push("enabled", Out::Bool(false), None);
                }
                m
            })
            .collect();
        section.push("subscriptions", Out::List(list), None);
    }
    ImagesOut { enabled, section }
}

/// Which VOs a list's images are shared with, and the visibility.
fn share(
    src: &Sources<'_>,
    vo: Option<&str>,
    notes: &mut Vec<String>,
    visibility: Option<&Val>,
) -> (Vec<String>, &'static str) {
    let private = visibility.is_none_or(|v| v.text.trim() == "private");
    match vo {
        Some(vo) if src.vos.iter().any(|v| v == vo) => {
            if let Some(p) = src.image_projects.get(vo) {
                notes.push(format!(
                    "{vo}'s images were in {}; shared with every project of {vo}",
                    p.text()
                ));
            }
            (vec![vo.to_string()], "shared")
        }
        Some(vo) => {
            notes.push(format!(
                "VO {vo} has no project in `vos`: its images stay private to openstack.auth's project"
            ));
            (Vec::new(), if private { "private" } else { "shared" })
        }
        None => (Vec::new(), "private"),
    }
}
