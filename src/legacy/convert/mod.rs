//! The legacy keys -> one schema-2 `appliance.yaml`, its secrets file, and
//! a decision for every key (spec legacy-appliance.md §6). Pure: the files
//! come in a [`Snapshot`], names resolved online (if any) in
//! [`Input::resolved`], and what comes out is data for the caller to write.
//!
//! Rules that run through every section:
//! - a value still at its shipped placeholder (§2.8) is "never
//!   configured", not data;
//! - two files that disagree, or a choice only the site can make (§6.2),
//!   is a conflict: the import picks a documented default and says so;
//! - passwords and tokens go to the secrets file, never to
//!   `appliance.yaml`; a secret that is not used is not written at all;
//! - Keystone v2.0 URLs become `/v3` and v2 tenants v3 projects in the
//!   default domain, each with a note;
//! - paths are the appliance's, under `--target` (default `/`).

mod images;
mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use url::Url;

use self::read::{
    ini_file, map_file, rc_file, whole_file, yaml_file, yaml_text, IniView, MapView, RcUse, RcView,
    Val, YamlView,
};
use super::cron::{self, CronJob, Job};
use super::ini::Dialect;
use super::layout::Layout;
use super::report::{KeyId, Ledger, Outcome};
use super::snapshot::{self as s, Snapshot};
use crate::config::format::Out;

/// What the conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The legacy files.
    pub snap: &'a Snapshot,
    /// Their layout.
    pub layout: Layout,
    /// The appliance's root: every path written is under it (`/` on the
    /// appliance itself).
    pub target: &'a Path,
    /// A fedcloud-catchall-operations `sites/<site>.yaml` of this site
    /// (path as named, text), if given.
    pub catch_all: Option<(&'a str, &'a str)>,
    /// Project ids found online, by [`name_key`] of a project name.
    pub resolved: &'a BTreeMap<String, String>,
}

/// A project as the new configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proj {
    /// By id.
    Id(String),
    /// By name in a domain.
    Name {
        /// Name.
        name: String,
        /// Domain: `Ok(id)` or `Err(name)`.
        domain: DomainIs,
    },
}

/// A domain by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DomainIs {
    /// `domain-id`.
    Id(String),
    /// `domain-name`.
    Name(String),
}

impl Proj {
    /// `id` or `name (domain d)`.
    pub fn text(&self) -> String {
        match self {
            Proj::Id(i) => i.clone(),
            Proj::Name { name, domain } => match domain {
                DomainIs::Id(d) | DomainIs::Name(d) => format!("{name} (domain {d})"),
            },
        }
    }
}

/// The key of a project name in [`Input::resolved`].
pub fn name_key(name: &str, domain: &DomainIs) -> String {
    match domain {
        DomainIs::Id(d) => format!("{name}@id:{d}"),
        DomainIs::Name(d) => format!("{name}@name:{d}"),
    }
}

/// Where the appliance keeps things (all under the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPaths {
    /// `appliance.yaml`.
    pub config: PathBuf,
    /// The secrets file.
    pub secrets: PathBuf,
    /// `paths.state`.
    pub state: PathBuf,
    /// `paths.spool`.
    pub spool: PathBuf,
    /// `paths.image-data`.
    pub image_data: PathBuf,
    /// `paths.host-cert`.
    pub host_cert: PathBuf,
    /// `paths.host-key`.
    pub host_key: PathBuf,
    /// Where cASO's lastrun files are copied (`accounting.caso-spool-dir`).
    pub caso_copy: PathBuf,
}

impl TargetPaths {
    /// The appliance's standard paths under `target`.
    pub fn under(target: &Path, spool: &str, host_cert: &str, host_key: &str) -> TargetPaths {
        let t = |p: &str| s::under(target, p);
        TargetPaths {
            config: t("/etc/fedcloud-appliance/appliance.yaml"),
            secrets: t("/etc/fedcloud-appliance/secrets.yaml"),
            state: t("/var/lib/fedcloud-appliance"),
            spool: t(spool),
            image_data: t("/image_data"),
            host_cert: t(host_cert),
            host_key: t(host_key),
            caso_copy: t("/var/lib/fedcloud-appliance/accounting/caso"),
        }
    }
}

/// A project of the new configuration and the cASO key of its lastrun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedProject {
    /// Its VO.
    pub vo: String,
    /// As the new configuration names it.
    pub proj: Proj,
    /// The string cASO was configured with (its `lastrun.<key>`), if cASO
    /// accounted it.
    pub legacy_key: Option<String>,
}

/// What the state carry-over needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The appliance's paths.
    pub paths: TargetPaths,
    /// cASO's `spooldir` (its lastrun files), a legacy path.
    pub caso_spooldir: String,
    /// The legacy outgoing dirq spool, a legacy path.
    pub legacy_spool: String,
    /// Legacy host certificate path.
    pub host_cert: String,
    /// Legacy host key path.
    pub host_key: String,
    /// Projects with their lastrun keys.
    pub projects: Vec<PlannedProject>,
    /// Remarks for the state part of the report.
    pub notes: Vec<String>,
}

impl Plan {
    /// Project names still to resolve to ids.
    pub fn names(&self) -> Vec<(String, DomainIs)> {
        let mut v: Vec<(String, DomainIs)> = self
            .projects
            .iter()
            .filter_map(|p| match &p.proj {
                Proj::Name { name, domain } => Some((name.clone(), domain.clone())),
                Proj::Id(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The result.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Comment lines at the top of `appliance.yaml`.
    pub header: String,
    /// `appliance.yaml`.
    pub config: Out,
    /// The secrets file.
    pub secrets: Out,
    /// Every key and its outcome.
    pub ledger: Ledger,
    /// For the state carry-over.
    pub plan: Plan,
}

/// Values that mean "never configured" wherever they appear (§2.8).
const PLACEHOLDERS: &[&str] = &[
    "SITE-NAME",
    "https://yourkeystone/v3",
    "http://example.com:5000/v2.0",
    "https://example.com:5000/v3",
    "APPDB_TOKEN",
    "17580f07-1e33-4a38-94e3-3386daced5be",
    "Foo Hypervisor",
    "bdii.example.com",
    "Usuhuaia",
    "Argentina",
    "mytenant",
    "xxxxx",
    "xxxx",
    "Your site description",
    "http://www.openstack.org",
    "-54.807222",
    "-68.304444",
];

/// Why `v` is a placeholder, if it is: one of [`PLACEHOLDERS`], one of
/// `extra` (placeholders in one context only, like cASO's `demo`), a
/// `<...>` sample, or an `@example.org` address.
fn placeholder(v: &str, extra: &[&str]) -> Option<String> {
    let t = v.trim();
    if PLACEHOLDERS.contains(&t) || extra.contains(&t) {
        return Some(format!("`{t}` is the shipped placeholder"));
    }
    if t.starts_with('<') && t.ends_with('>') {
        return Some(format!("`{t}` is the shipped placeholder"));
    }
    if t.ends_with("@example.org") {
        return Some(format!("`{t}` is the shipped example address"));
    }
    None
}

/// Placeholder check for a secret (never quoting it).
fn secret_placeholder(v: &str, extra: &[&str]) -> Option<String> {
    placeholder(v, extra).map(|_| "the shipped placeholder".to_string())
}

fn never(note: impl Into<String>) -> Outcome {
    Outcome::NeverConfigured { note: note.into() }
}

fn dropped(note: impl Into<String>) -> Outcome {
    Outcome::Dropped { note: note.into() }
}

fn used(note: impl Into<String>) -> Outcome {
    Outcome::Used { note: note.into() }
}

fn imported(to: &str) -> Outcome {
    Outcome::Imported {
        to: to.into(),
        note: None,
    }
}

fn imported_note(to: &str, note: impl Into<String>) -> Outcome {
    Outcome::Imported {
        to: to.into(),
        note: Some(note.into()),
    }
}

fn conflict(note: impl Into<String>, chosen: Option<String>) -> Outcome {
    Outcome::Conflict {
        note: note.into(),
        chosen,
    }
}

/// A Keystone id: 32 lower-case hex digits.
fn looks_like_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A Keystone URL mapped to v3; the note when it was v2.0.
fn keystone_v3(raw: &str) -> Option<(Url, Option<String>)> {
    let mut u = Url::parse(raw.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    let path = u.path().trim_end_matches('/').to_string();
    if let Some(base) = path.strip_suffix("/v2.0") {
        u.set_path(&format!("{base}/v3"));
        return Some((
            u,
            Some(
                "Keystone v2.0 URL mapped to /v3 (Keystone removed v2.0); check that GOCDB lists the v3 URL"
                    .into(),
            ),
        ));
    }
    Some((u, None))
}

/// `https://h:5000/v3` without a trailing slash, for comparing.
fn url_key(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_string()
}

/// One Keystone account of a legacy component.
#[derive(Debug, Clone, Default)]
struct Account {
    /// accounting (cASO), images (cloudkeeper-os/atrope), info (cloud-info).
    role: &'static str,
    /// `v3password`, `password`, ...
    auth_type: Option<Val>,
    auth_url: Option<Val>,
    username: Option<Val>,
    user_id: Option<Val>,
    user_domain_name: Option<Val>,
    user_domain_id: Option<Val>,
    password: Option<Val>,
    project_name: Option<Val>,
    project_id: Option<Val>,
    project_domain_name: Option<Val>,
    project_domain_id: Option<Val>,
    app_cred_id: Option<Val>,
    app_cred_secret: Option<Val>,
    /// Keystone v2 (tenant names, default domain).
    v2: bool,
}

impl Account {
    fn user(&self) -> Option<&Val> {
        self.username.as_ref().or(self.user_id.as_ref())
    }

    fn configured(&self) -> bool {
        let set = |v: &Option<Val>| {
            v.as_ref().is_some_and(|v| {
                !v.text.is_empty() && placeholder(&v.text, ACCOUNT_EXTRA).is_none()
            })
        };
        (set(&self.username) || set(&self.user_id) || set(&self.app_cred_id))
            && (set(&self.password) || set(&self.app_cred_secret))
    }

    fn same_user(&self, o: &Account) -> bool {
        let t = |v: &Option<Val>| v.as_ref().map(|v| v.text.clone());
        t(&self.username) == t(&o.username)
            && t(&self.user_id) == t(&o.user_id)
            && t(&self.app_cred_id) == t(&o.app_cred_id)
    }

    fn keys(&self) -> Vec<&Val> {
        [
            &self.auth_type,
            &self.auth_url,
            &self.username,
            &self.user_id,
            &self.user_domain_name,
            &self.user_domain_id,
            &self.password,
            &self.project_name,
            &self.project_id,
            &self.project_domain_name,
            &self.project_domain_id,
            &self.app_cred_id,
            &self.app_cred_secret,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn label(&self) -> String {
        format!(
            "the {} account `{}`",
            self.role,
            self.user().map(|v| v.text.as_str()).unwrap_or("?")
        )
    }
}

/// Placeholders of account keys: the 2016 samples.
const ACCOUNT_EXTRA: &[&str] = &["apeluser", "secret", "user", "tenant"];

/// A project of a VO being assembled.
#[derive(Debug, Clone)]
struct VoProject {
    proj: Proj,
    legacy_key: Option<String>,
    /// What named it (for notes).
    from: String,
}

#[derive(Debug, Clone, Default)]
struct VoPlan {
    projects: Vec<VoProject>,
    image_project: Option<(Proj, String, KeyId)>,
    /// Position of the VO in the image mapping file.
    image_rank: usize,
}

/// The conversion's working state.
struct Cx<'a> {
    inp: &'a Input<'a>,
    l: Ledger,
    secrets: Out,
    header_notes: Vec<String>,
    state_notes: Vec<String>,
}

impl Cx<'_> {
    fn set(&mut self, v: &Val, o: Outcome) {
        self.l.set(v.id, o);
    }

    fn secret(&mut self, section: &str, sub: Option<&str>, key: &str, value: &str) {
        let mut node = self
            .secrets
            .get_mut(section)
            .map(|n| std::mem::replace(n, Out::map()));
        let mut sec = node.take().unwrap_or_else(Out::map);
        match sub {
            None => {
                if sec.get_mut(key).is_none() {
                    sec.push(key, Out::str(value), None);
                }
            }
            Some(sub) => {
                if sec.get_mut(sub).is_none() {
                    sec.push(sub, Out::map(), None);
                }
                let inner = sec.get_mut(sub).expect("just added");
                if inner.get_mut(key).is_none() {
                    inner.push(key, Out::str(value), None);
                }
            }
        }
        match self.secrets.get_mut(section) {
            Some(n) => *n = sec,
            None => self.secrets.push(section, sec, None),
        }
    }

    /// A project from a legacy string (name or id), with its domain.
    fn project(&self, text: &str, domain: DomainIs) -> Proj {
        if looks_like_id(text) {
            return Proj::Id(text.to_string());
        }
        match self.inp.resolved.get(&name_key(text, &domain)) {
            Some(id) => Proj::Id(id.clone()),
            None => Proj::Name {
                name: text.to_string(),
                domain,
            },
        }
    }
}

/// Convert.
pub fn convert(inp: &Input<'_>) -> Imported {
    let mut cx = Cx {
        inp,
        l: Ledger::default(),
        secrets: Out::map(),
        header_notes: Vec::new(),
        state_notes: Vec::new(),
    };
    let snap = inp.snap;
    let layout = inp.layout;

    // ---- read every file --------------------------------------------
    let caso = ini_file(
        &mut cx.l,
        snap,
        s::CASO_CONF,
        "cASO: accounting extraction",
        Dialect::Oslo,
        &["password"],
    );
    let caso_voms = map_file(
        &mut cx.l,
        snap,
        layout.caso_voms(),
        if layout <= Layout::B {
            "VO -> Keystone tenant (Keystone-VOMS format): cASO's VOs and the image projects"
        } else {
            "cASO: project -> VO of the records"
        },
    );
    let image_map = match layout.image_mapping() {
        Some(p) if p == layout.caso_voms() => caso_voms.clone(),
        Some(p) => map_file(
            &mut cx.l,
            snap,
            p,
            "cloudkeeper-os: VO -> the project receiving its images",
        ),
        None => None,
    };
    let ckos = layout.ckos_conf().and_then(|p| {
        ini_file(
            &mut cx.l,
            snap,
            p,
            "cloudkeeper-os: the Glance backend of cloudkeeper",
            Dialect::Oslo,
            &["password"],
        )
    });
    let atrope = ini_file(
        &mut cx.l,
        snap,
        s::ATROPE_CONF,
        "atrope: image-list synchronisation",
        Dialect::Oslo,
        &["password"],
    );
    let hepix = yaml_file(
        &mut cx.l,
        snap,
        s::HEPIX_YAML,
        "atrope: subscribed image lists",
        &["token"],
    );
    let sender = ini_file(
        &mut cx.l,
        snap,
        s::SENDER_CFG,
        "ssmsend: accounting delivery",
        Dialect::Python,
        &["token"],
    );
    let logging = ini_file(
        &mut cx.l,
        snap,
        s::LOGGING_CFG,
        "ssmsend: logging",
        Dialect::Python,
        &[],
    );
    let rc = rc_file(
        &mut cx.l,
        snap,
        s::OPENSTACK_RC,
        "cloud-info-provider: Keystone credentials",
        if layout == Layout::H {
            RcUse::EnvFile
        } else {
            RcUse::Shell
        },
    );
    let cip = yaml_file(
        &mut cx.l,
        snap,
        s::OPENSTACK_YAML,
        "cloud-info-provider: the site's static description",
        &[],
    );
    let site_cfg = rc_file(
        &mut cx.l,
        snap,
        s::SITE_CFG,
        "site BDII: site description",
        RcUse::Plain,
    );
    let site_defaults = rc_file(
        &mut cx.l,
        snap,
        s::SITE_DEFAULTS,
        "site BDII: defaults",
        RcUse::Plain,
    );
    let catch_all = inp.catch_all.and_then(|(path, text)| {
        yaml_text(
            &mut cx.l,
            path,
            text,
            "fedcloud-catchall-operations: the site as EGI runs it centrally",
            &[],
        )
    });

    // ---- site ---------------------------------------------------------
    let site = site_section(&mut cx, &caso, &cip, &site_cfg, &site_defaults, &catch_all);
    // ---- accounts and openstack ---------------------------------------
    let accounts = accounts(&mut cx, &caso, &ckos, &atrope, &rc);
    let endpoint = endpoint(&mut cx, &accounts, &rc, &catch_all);
    // ---- VOs ----------------------------------------------------------
    let (vos, order) = vos(
        &mut cx, &caso, &caso_voms, &image_map, &ckos, &atrope, &cip, &catch_all, &accounts,
    );
    let mut site = site;
    if let Some(u) = &endpoint.url {
        site.out.push(
            "endpoint",
            Out::str(u.as_str().trim_end_matches('/')),
            Some("Keystone, as GOCDB lists it".into()),
        );
    }
    let openstack = openstack_section(
        &mut cx, &accounts, &endpoint, &vos, &order, &rc, &caso, &atrope, &catch_all,
    );

    // ---- paths, state, delivery ---------------------------------------
    let (paths_legacy, ams) = delivery(&mut cx, &caso, &sender, &logging);
    let tp = TargetPaths::under(
        inp.target,
        &paths_legacy.spool,
        &paths_legacy.host_cert,
        &paths_legacy.host_key,
    );

    // ---- schedules ----------------------------------------------------
    let crons = schedules(&mut cx);

    // ---- images -------------------------------------------------------
    let img = images::images(
        &mut cx,
        &images::Sources {
            ck_lists: s::CK_LISTS,
            ck_yml: s::CK_YML,
            hepix: &hepix,
            atrope: &atrope,
            ckos: &ckos,
            vos: &order,
            image_projects: &vos
                .iter()
                .filter_map(|(vo, p)| p.image_project.as_ref().map(|i| (vo.clone(), i.0.clone())))
                .collect(),
            catch_all: &catch_all,
        },
    );

    // ---- info ---------------------------------------------------------
    let info = info_section(&mut cx, &cip, &catch_all);

    // ---- provenance files ---------------------------------------------
    provenance(&mut cx);

    // ---- assemble -----------------------------------------------------
    let mut config = Out::map();
    config.push("schema-version", Out::Int(2), None);
    config.push("site", site.out, None);
    config.push("openstack", openstack, None);
    config.push(
        "secrets-file",
        Out::str(tp.secrets.display().to_string()),
        Some("mode 0600: the passwords and tokens imported".into()),
    );
    let mut vo_list = Vec::new();
    let mut planned = Vec::new();
    for name in &order {
        let plan = &vos[name];
        if plan.projects.is_empty() {
            continue;
        }
        let mut v = Out::map();
        v.push("name", Out::str(name), None);
        let mut ps = Vec::new();
        for p in &plan.projects {
            let mut e = Out::map();
            match &p.proj {
                Proj::Id(id) => {
                    let comment = match (
                        &p.legacy_key,
                        looks_like_id(&p.legacy_key.clone().unwrap_or_default()),
                    ) {
                        (Some(k), false) => Some(format!("{k} ({})", p.from)),
                        _ => Some(p.from.clone()),
                    };
                    e.push("id", Out::str(id), comment);
                }
                Proj::Name { name, domain } => {
                    e.push("name", Out::str(name), Some(p.from.clone()));
                    match domain {
                        DomainIs::Id(d) => e.push("domain-id", Out::str(d), None),
                        DomainIs::Name(d) => e.push("domain-name", Out::str(d), None),
                    }
                }
            }
            ps.push(e);
            planned.push(PlannedProject {
                vo: name.clone(),
                proj: p.proj.clone(),
                legacy_key: p.legacy_key.clone(),
            });
        }
        v.push("projects", Out::List(ps), None);
        vo_list.push(v);
    }
    config.push(
        "vos",
        Out::List(vo_list),
        Some("VOs and their projects (cASO's voms.json and projects, the image mapping, openstack.yaml)".into()),
    );
    let mut paths = Out::map();
    paths.push(
        "image-data",
        Out::str(tp.image_data.display().to_string()),
        None,
    );
    paths.push(
        "spool",
        Out::str(tp.spool.display().to_string()),
        Some("the legacy outgoing spool's path: ssmsend and cASO could still use it".into()),
    );
    paths.push("state", Out::str(tp.state.display().to_string()), None);
    paths.push(
        "host-cert",
        Out::str(tp.host_cert.display().to_string()),
        None,
    );
    paths.push(
        "host-key",
        Out::str(tp.host_key.display().to_string()),
        None,
    );
    paths.push("ca-dir", Out::str(paths_legacy.ca_dir.clone()), None);
    config.push("paths", paths, None);
    config.push("components", components(&crons, &img, &info), None);
    let mut acc = site.accounting;
    acc.push(
        "caso-spool-dir",
        Out::str(tp.caso_copy.display().to_string()),
        Some("cASO's lastrun files, copied here: projects without a lastrun of their own start where cASO stopped".into()),
    );
    config.push("accounting", acc, None);
    if !ams.is_empty() {
        config.push("ams", ams, None);
    }
    if !info.section.is_empty() {
        config.push("info", info.section, None);
    }
    if !img.section.is_empty() {
        config.push("images", img.section, None);
    }

    let mut header = format!(
        "fedcloud-appliance configuration imported by `appliance import-legacy` from a\nlegacy appliance of layout {} ({}).\nThe import report (`appliance import-legacy --dry-run`) lists every legacy\nkey and what became of it; `appliance config check` checks this file.",
        layout.letter(),
        layout.releases()
    );
    for n in &cx.header_notes {
        header.push('\n');
        header.push_str(&wrap(n, 76));
    }

    let plan = Plan {
        paths: tp,
        caso_spooldir: paths_legacy.caso_spooldir,
        legacy_spool: paths_legacy.spool,
        host_cert: paths_legacy.host_cert,
        host_key: paths_legacy.host_key,
        projects: planned,
        notes: cx.state_notes.clone(),
    };
    Imported {
        header,
        config,
        secrets: cx.secrets,
        ledger: cx.l,
        plan,
    }
}

/// `text` broken into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.push_str(&line);
    out
}

// ---- site ----------------------------------------------------------------

struct SiteOut {
    out: Out,
    /// `accounting:` keys decided here (site-name, service-name).
    accounting: Out,
}

fn site_section(
    cx: &mut Cx<'_>,
    caso: &Option<IniView>,
    cip: &Option<YamlView>,
    site_cfg: &Option<RcView>,
    site_defaults: &Option<RcView>,
    catch_all: &Option<YamlView>,
) -> SiteOut {
    let mut cands: Vec<(&'static str, Val)> = Vec::new();
    if let Some(c) = catch_all.as_ref().and_then(|c| c.get("gocdb")) {
        cands.push(("the catch-all file", c.clone()));
    }
    if let Some(c) = caso.as_ref().and_then(|c| c.get("DEFAULT", "site_name")) {
        cands.push(("caso.conf", c.clone()));
    }
    if let Some(c) = cip.as_ref().and_then(|c| c.get("site.name")) {
        cands.push(("openstack.yaml", c.clone()));
    }
    for (label, f) in [
        ("site.cfg", site_cfg),
        ("glite-info-site-defaults.conf", site_defaults),
    ] {
        if let Some(c) = f.as_ref().and_then(|c| c.get("SITE_NAME")) {
            cands.push((label, c.clone()));
        }
    }
    let mut real: Vec<(&'static str, Val)> = Vec::new();
    for (label, v) in cands {
        match placeholder(&v.text, &[]) {
            Some(why) => cx.set(
                &v,
                never(format!("{why}: the site name was never set here")),
            ),
            None if v.text.trim().is_empty() => cx.set(&v, never("empty")),
            None => real.push((label, v)),
        }
    }
    for f in [site_cfg, site_defaults].into_iter().flatten() {
        for (k, v) in f.all() {
            if k == "SITE_NAME" {
                continue;
            }
            let o = match placeholder(&v.text, &[]) {
                Some(w) => never(w),
                None => dropped(
                    "the site BDII is retired: GOCDB holds the site's description and contacts",
                ),
            };
            cx.l.set_if_open(v.id, o);
        }
    }
    let mut out = Out::map();
    let mut accounting = Out::map();
    let Some((chosen_from, chosen)) = real.first().cloned() else {
        cx.header_notes.push(
            "CONFLICT: no legacy file names the site: set site.gocdb to the GOCDB site name."
                .into(),
        );
        return SiteOut { out, accounting };
    };
    let name = chosen.text.trim().to_string();
    out.push(
        "gocdb",
        Out::str(&name),
        Some(format!("from {chosen_from}")),
    );
    cx.set(&chosen, imported("site.gocdb"));
    for (label, v) in real.iter().skip(1) {
        let t = v.text.trim();
        if t == name {
            cx.set(
                v,
                imported_note("site.gocdb", format!("same as {chosen_from}")),
            );
        } else if *label == "caso.conf" {
            // APEL knows the site by the name cASO sent: keep sending it.
            accounting.push(
                "site-name",
                Out::str(t),
                Some(format!("cASO's site_name; GOCDB's is {name}")),
            );
            cx.set(
                v,
                conflict(
                    format!("cASO sent `{t}` but {chosen_from} says `{name}`: APEL files records under the name sent; make them agree"),
                    Some(format!("accounting.site-name: {t} (records keep the name APEL knows)")),
                ),
            );
        } else {
            cx.set(
                v,
                conflict(
                    format!("`{t}` differs from {chosen_from}'s `{name}`"),
                    Some(format!("site.gocdb: {name}")),
                ),
            );
        }
    }
    if let Some(c) = caso {
        if let Some(v) = c.get("DEFAULT", "service_name") {
            let t = v.text.trim();
            if t.is_empty() || t == "$site_name" || t == name {
                cx.set(
                    v,
                    imported_note("accounting.service-name", "the site name, the default"),
                );
            } else {
                accounting.push(
                    "service-name",
                    Out::str(t),
                    Some("cASO's service_name".into()),
                );
                cx.set(v, imported("accounting.service-name"));
            }
        }
    }
    SiteOut { out, accounting }
}

// ---- accounts ------------------------------------------------------------

struct Accounts {
    list: Vec<Account>,
}

fn accounts(
    cx: &mut Cx<'_>,
    caso: &Option<IniView>,
    ckos: &Option<IniView>,
    atrope: &Option<IniView>,
    rc: &Option<RcView>,
) -> Accounts {
    let mut list = Vec::new();
    if let Some(c) = caso {
        let g = |k: &str| c.get("keystone_auth", k).cloned();
        let mut a = Account {
            role: "accounting",
            auth_type: g("auth_type"),
            auth_url: g("auth_url"),
            username: g("username"),
            user_id: g("user_id"),
            user_domain_name: g("user_domain_name"),
            user_domain_id: g("user_domain_id"),
            password: g("password"),
            project_name: g("project_name"),
            project_id: g("project_id"),
            project_domain_name: g("project_domain_name"),
            project_domain_id: g("project_domain_id"),
            app_cred_id: g("application_credential_id"),
            app_cred_secret: g("application_credential_secret"),
            v2: false,
        };
        if cx.inp.layout == Layout::A {
            // cASO 0.3: [extractor] user/password/endpoint, Keystone v2.
            let e = |k: &str| c.get("extractor", k).cloned();
            a.username = e("user");
            a.password = e("password");
            a.auth_url = e("endpoint");
            a.v2 = true;
        }
        list.push(a);
    }
    if let Some(k) = ckos {
        let g = |x: &str| k.get("keystone_authtoken", x).cloned();
        list.push(Account {
            role: "images",
            auth_url: g("auth_url"),
            username: g("username"),
            user_domain_name: g("user_domain_name"),
            password: g("password"),
            project_domain_name: g("project_domain_name"),
            ..Default::default()
        });
    }
    if let Some(a) = atrope {
        let g = |x: &str| a.get("glance", x).cloned();
        list.push(Account {
            role: "images",
            auth_url: g("auth_url"),
            username: g("username"),
            user_id: g("user_id"),
            password: g("password"),
            project_name: g("tenant_name"),
            project_id: g("tenant_id"),
            v2: true,
            ..Default::default()
        });
    }
    if let Some(r) = rc {
        let g = |x: &str| r.get(x).cloned();
        let v2 = g("OS_TENANT_NAME").is_some() || g("OS_TENANT_ID").is_some();
        list.push(Account {
            role: "info",
            auth_type: g("OS_AUTH_TYPE"),
            auth_url: g("OS_AUTH_URL"),
            username: g("OS_USERNAME"),
            user_id: g("OS_USER_ID"),
            user_domain_name: g("OS_USER_DOMAIN_NAME"),
            user_domain_id: g("OS_USER_DOMAIN_ID"),
            password: g("OS_PASSWORD"),
            project_name: g("OS_PROJECT_NAME").or(g("OS_TENANT_NAME")),
            project_id: g("OS_PROJECT_ID").or(g("OS_TENANT_ID")),
            project_domain_name: g("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: g("OS_PROJECT_DOMAIN_ID"),
            app_cred_id: g("OS_APPLICATION_CREDENTIAL_ID"),
            app_cred_secret: g("OS_APPLICATION_CREDENTIAL_SECRET"),
            v2,
        });
        for (k, note) in [
            (
                "OS_IDENTITY_API_VERSION",
                "Keystone v3 is what the appliance speaks",
            ),
            (
                "HOSTCERT",
                "cloud-info's AMS client certificate: the host certificate (paths.host-cert)",
            ),
            (
                "HOSTKEY",
                "cloud-info's AMS client key: the host key (paths.host-key)",
            ),
            (
                "CLOUD_INFO_CONFIG",
                "where cloud-info-provider's openstack.yaml was",
            ),
            (
                "AMS_HOST",
                "cloud-info's AMS host: info.publish.ams uses the `ams` section's host",
            ),
        ] {
            if let Some(v) = r.get(k) {
                cx.set(v, used(note));
            }
        }
    }
    // Placeholders of every account key.
    for a in &list {
        for v in a.keys() {
            let is_secret = a.password.as_ref().is_some_and(|p| p.id == v.id)
                || a.app_cred_secret.as_ref().is_some_and(|p| p.id == v.id);
            let why = if is_secret {
                secret_placeholder(&v.text, ACCOUNT_EXTRA)
            } else {
                placeholder(&v.text, ACCOUNT_EXTRA)
            };
            if let Some(w) = why {
                cx.set(v, never(format!("{w}: {} never configured here", a.role)));
            }
        }
    }
    Accounts { list }
}

struct Endpoint {
    url: Option<Url>,
}

fn endpoint(
    cx: &mut Cx<'_>,
    accounts: &Accounts,
    rc: &Option<RcView>,
    catch_all: &Option<YamlView>,
) -> Endpoint {
    let mut cands: Vec<(String, Val)> = Vec::new();
    if let Some(v) = catch_all.as_ref().and_then(|c| c.get("endpoint")) {
        cands.push(("the catch-all file".into(), v.clone()));
    }
    if let Some(v) = rc.as_ref().and_then(|r| r.get("OS_AUTH_URL")) {
        cands.push((
            "openstack.rc (GOCDB's endpoint for cloud-info)".into(),
            v.clone(),
        ));
    }
    for a in &accounts.list {
        if a.role == "info" {
            continue;
        }
        if let Some(v) = &a.auth_url {
            cands.push((format!("the {} account", a.role), v.clone()));
        }
    }
    let mut chosen: Option<(String, Url)> = None;
    for (label, v) in &cands {
        if placeholder(&v.text, &[]).is_some() || v.text.trim().is_empty() {
            continue; // reported with the accounts
        }
        let Some((u, note)) = keystone_v3(&v.text) else {
            cx.set(v, dropped("not an http(s) URL"));
            continue;
        };
        match &chosen {
            None => {
                let o = match note {
                    Some(n) => imported_note("site.endpoint", n),
                    None => imported("site.endpoint"),
                };
                cx.set(v, o);
                chosen = Some((label.clone(), u));
            }
            Some((from, c)) if url_key(c) == url_key(&u) => {
                let mut n = format!("same Keystone as {from}");
                if let Some(x) = note {
                    n = format!("{n}; {x}");
                }
                cx.set(v, used(n));
            }
            Some((from, c)) => {
                cx.set(
                    v,
                    conflict(
                        format!("another Keystone than {from} ({c}): the appliance talks to one"),
                        Some(format!("site.endpoint: {c}")),
                    ),
                );
            }
        }
    }
    if chosen.is_none() {
        cx.header_notes.push(
            "CONFLICT: no legacy file has a configured Keystone URL: set site.endpoint.".into(),
        );
    }
    Endpoint {
        url: chosen.map(|(_, u)| u),
    }
}

// ---- VOs -----------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn vos(
    cx: &mut Cx<'_>,
    caso: &Option<IniView>,
    caso_voms: &Option<MapView>,
    image_map: &Option<MapView>,
    ckos: &Option<IniView>,
    atrope: &Option<IniView>,
    cip: &Option<YamlView>,
    catch_all: &Option<YamlView>,
    accounts: &Accounts,
) -> (BTreeMap<String, VoPlan>, Vec<String>) {
    let layout = cx.inp.layout;
    let mut plans: BTreeMap<String, VoPlan> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let touch = |vo: &str, plans: &mut BTreeMap<String, VoPlan>, order: &mut Vec<String>| {
        if !plans.contains_key(vo) {
            plans.insert(vo.to_string(), VoPlan::default());
            order.push(vo.to_string());
        }
    };
    // The domain of accounted projects named in caso.conf.
    let caso_acc = accounts.list.iter().find(|a| a.role == "accounting");
    let caso_domain = caso_acc
        .and_then(|a| {
            a.project_domain_id
                .as_ref()
                .filter(|v| placeholder(&v.text, &[]).is_none())
                .map(|v| DomainIs::Id(v.text.clone()))
                .or_else(|| {
                    a.project_domain_name
                        .as_ref()
                        .filter(|v| placeholder(&v.text, &[]).is_none())
                        .map(|v| DomainIs::Name(v.text.clone()))
                })
        })
        .unwrap_or(DomainIs::Id("default".into()));
    let v2_note = "a Keystone v2 tenant: the v3 project of that name in the default domain";
    let tenant_domain = DomainIs::Id("default".into());
    let acc_domain = if layout == Layout::A {
        tenant_domain.clone()
    } else {
        caso_domain.clone()
    };

    // The projects cASO accounted.
    let key = if layout == Layout::A {
        "tenants"
    } else {
        "projects"
    };
    let caso_projects: Option<(Val, Vec<String>)> = caso.as_ref().and_then(|c| {
        c.get("DEFAULT", key)
            .or_else(|| c.get("DEFAULT", "tenants"))
            .or_else(|| c.get("DEFAULT", "projects"))
            .map(|v| {
                (
                    v.clone(),
                    v.text
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                )
            })
    });
    let mut accounted: Vec<String> = Vec::new();
    if let Some((v, list)) = &caso_projects {
        let placeholders: Vec<&String> = list
            .iter()
            .filter(|p| placeholder(p, &["demo", "tenant1", "tenant2"]).is_some())
            .collect();
        if !placeholders.is_empty() && placeholders.len() == list.len() {
            cx.set(
                v,
                never(format!(
                    "`{}` is the shipped placeholder: cASO accounted no real project",
                    v.text
                )),
            );
        } else {
            accounted = list
                .iter()
                .filter(|p| placeholder(p, &["demo", "tenant1", "tenant2"]).is_none())
                .cloned()
                .collect();
        }
    }

    // cASO's VO mapping.
    let mut mapped: BTreeSet<String> = BTreeSet::new();
    if let Some(m) = caso_voms {
        for e in &m.entries {
            let real: Vec<&String> = e
                .projects
                .iter()
                .filter(|p| placeholder(p, &["foo", "bar"]).is_none())
                .collect();
            if e.shape.is_empty() {
                continue;
            }
            if real.is_empty() {
                cx.set(
                    &e.val,
                    never(format!(
                        "{} -> {:?}: the shipped placeholder",
                        e.vo, e.projects
                    )),
                );
                continue;
            }
            touch(&e.vo, &mut plans, &mut order);
            let mut notes = Vec::new();
            if real.len() != e.projects.len() {
                notes.push("its placeholder projects dropped".to_string());
            }
            let tenant_shape = e.shape == "tenant" || e.shape == "tenants";
            if tenant_shape && layout > Layout::B {
                notes.push("`tenant` is cASO 1.x's deprecated spelling of `projects`".into());
            }
            for p in real {
                let domain = if tenant_shape && layout <= Layout::B {
                    tenant_domain.clone()
                } else {
                    acc_domain.clone()
                };
                let in_caso = accounted.iter().any(|a| a == p);
                if !in_caso && caso_projects.is_some() {
                    notes.push(format!(
                        "{p} is not in caso.conf `{key}`: cASO did not account it; the appliance will (its first window: accounting.first-run)"
                    ));
                }
                let proj = cx.project(p, domain);
                let plan = plans.get_mut(&e.vo).expect("touched");
                if !plan.projects.iter().any(|x| x.proj == proj) {
                    plan.projects.push(VoProject {
                        proj,
                        legacy_key: in_caso.then(|| p.clone()),
                        from: if in_caso {
                            "cASO".into()
                        } else {
                            format!("{} only", m_short(layout))
                        },
                    });
                }
                mapped.insert(p.clone());
            }
            if tenant_shape && layout <= Layout::B {
                notes.push(v2_note.into());
            }
            let to = format!("vos[{}].projects", e.vo);
            cx.set(
                &e.val,
                if notes.is_empty() {
                    imported(&to)
                } else {
                    imported_note(&to, notes.join("; "))
                },
            );
        }
    }
    if let Some((v, _)) = &caso_projects {
        let orphans: Vec<&String> = accounted.iter().filter(|p| !mapped.contains(*p)).collect();
        if !orphans.is_empty() {
            cx.set(
                v,
                conflict(
                    format!(
                        "{} not in {}: cASO sent their records without a VO; add each to a VO's projects",
                        orphans.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                        layout.caso_voms()
                    ),
                    Some("left out of `vos`".into()),
                ),
            );
        } else if !accounted.is_empty() {
            let note = if layout == Layout::A {
                "the accounted projects of `vos` (v2 tenants: v3 projects in the default domain)"
            } else {
                "the accounted projects of `vos`; their lastrun files are carried over"
            };
            cx.set(v, imported_note("vos[].projects", note));
        }
    }

    // The image mapping (one project per VO for images).
    if let Some(m) = image_map {
        let same_file = m.file == caso_voms.as_ref().map(|c| c.file).unwrap_or(usize::MAX);
        let ckos_domain = ckos
            .as_ref()
            .and_then(|k| k.get("keystone_authtoken", "project_domain_name"))
            .filter(|v| placeholder(&v.text, &[]).is_none())
            .map(|v| DomainIs::Name(v.text.clone()));
        for (rank, e) in m.entries.iter().enumerate() {
            if e.shape.is_empty() {
                continue;
            }
            let Some(p) = e.projects.first() else {
                continue;
            };
            if placeholder(p, &[]).is_some() {
                if !same_file {
                    cx.set(
                        &e.val,
                        never(format!("{} -> `{p}`: the shipped placeholder", e.vo)),
                    );
                }
                continue;
            }
            let domain = match (&e.domain, layout) {
                (Some(d), _) => DomainIs::Name(d.clone()),
                (None, Layout::A) => tenant_domain.clone(),
                (None, _) if e.shape == "project" && layout >= Layout::F => ckos_domain
                    .clone()
                    .unwrap_or(DomainIs::Name("Default".into())),
                (None, _) => ckos_domain
                    .clone()
                    .unwrap_or(DomainIs::Name("default".into())),
            };
            let proj = cx.project(p, domain);
            touch(&e.vo, &mut plans, &mut order);
            let plan = plans.get_mut(&e.vo).expect("touched");
            let known = plan
                .projects
                .iter()
                .any(|x| x.proj == proj || same_project(&x.proj, &proj));
            if !known && !plan.projects.is_empty() {
                // §6.2: accounting projects, but the images elsewhere.
                if !same_file {
                    cx.set(
                        &e.val,
                        conflict(
                            format!(
                                "the images of {} went to {}, which is not one of its accounted projects ({}): the appliance shares a VO's images with all its projects",
                                e.vo,
                                proj.text(),
                                plan.projects.iter().map(|x| x.proj.text()).collect::<Vec<_>>().join(", ")
                            ),
                            Some("not added to the VO's projects".into()),
                        ),
                    );
                }
            } else {
                if plan.projects.is_empty() {
                    plan.projects.push(VoProject {
                        proj: proj.clone(),
                        legacy_key: None,
                        from: "image project".into(),
                    });
                }
                if !same_file {
                    let mut n = "the project its images are shared with".to_string();
                    if e.shape == "tenant" && layout >= Layout::F {
                        n.push_str("; `tenant` is cloudkeeper-os's legacy spelling of `project`");
                    }
                    cx.set(&e.val, imported_note(&format!("vos[{}].projects", e.vo), n));
                }
            }
            plan.image_project = Some((proj, e.vo.clone(), e.val.id));
            plan.image_rank = rank;
        }
    }
    let _ = atrope;

    // openstack.yaml shares: VO -> project id (D–H).
    if let Some(c) = cip {
        let mut shares: BTreeMap<String, Vec<(String, Val)>> = BTreeMap::new();
        for (rest, v) in c.under("compute.shares") {
            if let Some((vo, k)) = rest.split_once('.') {
                shares
                    .entry(vo.to_string())
                    .or_default()
                    .push((k.to_string(), v.clone()));
            }
        }
        for (vo, keys) in shares {
            for (k, v) in keys {
                match k.as_str() {
                    "auth.project_id" => {
                        if let Some(w) = placeholder(&v.text, &[]) {
                            cx.set(&v, never(w));
                            continue;
                        }
                        let proj = Proj::Id(v.text.trim().to_string());
                        touch(&vo, &mut plans, &mut order);
                        let plan = plans.get_mut(&vo).expect("touched");
                        if plan.projects.iter().any(|x| x.proj == proj) {
                            cx.set(&v, imported_note(&format!("vos[{vo}].projects"), "same project as cASO's"));
                        } else if plan.projects.is_empty() {
                            plan.projects.push(VoProject {
                                proj,
                                legacy_key: None,
                                from: "openstack.yaml".into(),
                            });
                            cx.set(&v, imported(&format!("vos[{vo}].projects")));
                        } else {
                            let names: Vec<String> = plan.projects.iter().map(|x| x.proj.text()).collect();
                            let all_names = plan.projects.iter().all(|x| matches!(x.proj, Proj::Name { .. }));
                            cx.set(
                                &v,
                                if all_names {
                                    used(format!(
                                        "not added: {vo}'s projects come from cASO ({}), named, not by id; online resolution (without --offline) checks they are this one",
                                        names.join(", ")
                                    ))
                                } else {
                                    conflict(
                                        format!(
                                            "cloud-info published {vo} with project {}, which is none of its accounted projects ({})",
                                            v.text.trim(),
                                            names.join(", ")
                                        ),
                                        Some("not added".into()),
                                    )
                                },
                            );
                        }
                    }
                    "default_network_type" | "public_network_name" => cx.set(
                        &v,
                        dropped("network hints of cloud-info-provider 0.x: the GLUE 2.1 document the appliance writes (cloud-info-provider 1.2) has none"),
                    ),
                    _ => {}
                }
            }
        }
    }

    // The catch-all's VOs.
    if let Some(c) = catch_all {
        let mut i = 0;
        while let Some(name) = c.get(&format!("vos[{i}].name")) {
            let vo = name.text.trim().to_string();
            cx.set(name, used("a VO EGI runs centrally for this site"));
            if let Some(pid) = c.get(&format!("vos[{i}].auth.project_id")) {
                let proj = Proj::Id(pid.text.trim().to_string());
                touch(&vo, &mut plans, &mut order);
                let plan = plans.get_mut(&vo).expect("touched");
                if plan.projects.iter().any(|x| x.proj == proj) {
                    cx.set(
                        pid,
                        imported_note(
                            &format!("vos[{vo}].projects"),
                            "same project as the legacy files'",
                        ),
                    );
                } else if plan.projects.is_empty() {
                    plan.projects.push(VoProject {
                        proj,
                        legacy_key: None,
                        from: "catch-all".into(),
                    });
                    cx.set(pid, imported(&format!("vos[{vo}].projects")));
                } else {
                    cx.set(
                        pid,
                        conflict(
                            format!(
                                "the catch-all serves {vo} from project {}, not among the legacy projects ({})",
                                pid.text.trim(),
                                plan.projects.iter().map(|x| x.proj.text()).collect::<Vec<_>>().join(", ")
                            ),
                            Some("not added".into()),
                        ),
                    );
                }
            }
            for (rest, v) in c.under(&format!("vos[{i}]")) {
                if rest != "name" && rest != "auth.project_id" {
                    cx.l.set_if_open(v.id, dropped("a catch-all hint the appliance does not use"));
                }
            }
            i += 1;
        }
    }
    (plans, order)
}

fn m_short(layout: Layout) -> &'static str {
    if layout <= Layout::B {
        "voms.json"
    } else {
        "cASO's voms.json"
    }
}

/// Whether two refs may be the same project (same name, domains that
/// could be the same: `default` by id or name).
fn same_project(a: &Proj, b: &Proj) -> bool {
    match (a, b) {
        (Proj::Name { name: n1, .. }, Proj::Name { name: n2, .. }) => n1 == n2,
        _ => a == b,
    }
}

// ---- openstack -----------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn openstack_section(
    cx: &mut Cx<'_>,
    accounts: &Accounts,
    endpoint: &Endpoint,
    vos: &BTreeMap<String, VoPlan>,
    order: &[String],
    rc: &Option<RcView>,
    caso: &Option<IniView>,
    atrope: &Option<IniView>,
    catch_all: &Option<YamlView>,
) -> Out {
    let mut os = Out::map();
    let mut auth = Out::map();
    let primary = accounts.list.iter().position(Account::configured);
    match primary {
        None => {
            cx.header_notes.push(
                "CONFLICT: no legacy component has a configured Keystone account: set openstack.auth and its secret.".into(),
            );
        }
        Some(pi) => {
            let a = accounts.list[pi].clone();
            // type
            let kind = a
                .auth_type
                .as_ref()
                .map(|v| v.text.trim().to_string())
                .unwrap_or_else(|| "password".into());
            let (kind_name, secret_key) = match kind.as_str() {
                "v3password" | "password" | "" => ("password", "password"),
                "v3applicationcredential" | "applicationcredential" => {
                    ("v3applicationcredential", "application-credential-secret")
                }
                other => {
                    if let Some(v) = &a.auth_type {
                        cx.set(v, conflict(format!("auth_type `{other}`: import supports password and application credentials; set openstack.auth by hand"), Some("type: password".into())));
                    }
                    ("password", "password")
                }
            };
            auth.push(
                "type",
                Out::str(kind_name),
                Some(format!("{} ({})", a.label(), source_of(&a))),
            );
            if let Some(v) = &a.auth_type {
                cx.set(v, imported("openstack.auth.type"));
            }
            // auth-url, when it differs from site.endpoint
            if let Some(v) = &a.auth_url {
                if let Some((u, note)) = keystone_v3(&v.text) {
                    let same = endpoint
                        .url
                        .as_ref()
                        .is_some_and(|e| url_key(e) == url_key(&u));
                    if !same {
                        auth.push("auth-url", Out::str(u.as_str().trim_end_matches('/')), None);
                        cx.set(
                            v,
                            match note {
                                Some(n) => imported_note("openstack.auth.auth-url", n),
                                None => imported("openstack.auth.auth-url"),
                            },
                        );
                    } else {
                        let mut o = imported_note(
                            "openstack.auth.auth-url",
                            "same as site.endpoint, its default",
                        );
                        if let Some(n) = note {
                            o = imported_note(
                                "site.endpoint",
                                format!("{n}; same as site.endpoint"),
                            );
                        }
                        cx.set(v, o);
                    }
                }
            }
            if kind_name == "v3applicationcredential" {
                if let Some(v) = &a.app_cred_id {
                    auth.push("application-credential-id", Out::str(v.text.trim()), None);
                    cx.set(v, imported("openstack.auth.application-credential-id"));
                }
            } else {
                if let Some(v) = &a.username {
                    auth.push("username", Out::str(v.text.trim()), None);
                    cx.set(v, imported("openstack.auth.username"));
                } else if let Some(v) = &a.user_id {
                    auth.push("user-id", Out::str(v.text.trim()), None);
                    cx.set(v, imported("openstack.auth.user-id"));
                }
                if a.username.is_some() {
                    if let Some(v) = a
                        .user_domain_id
                        .as_ref()
                        .filter(|v| placeholder(&v.text, &[]).is_none())
                    {
                        auth.push("user-domain-id", Out::str(v.text.trim()), None);
                        cx.set(v, imported("openstack.auth.user-domain-id"));
                    } else if let Some(v) = a
                        .user_domain_name
                        .as_ref()
                        .filter(|v| placeholder(&v.text, &[]).is_none())
                    {
                        auth.push("user-domain-name", Out::str(v.text.trim()), None);
                        cx.set(v, imported("openstack.auth.user-domain-name"));
                    } else {
                        auth.push(
                            "user-domain-id",
                            Out::str("default"),
                            Some(if a.v2 {
                                "a Keystone v2 user: the default domain".to_string()
                            } else {
                                "not set in the legacy file: Keystone's default domain".to_string()
                            }),
                        );
                    }
                }
            }
            // owner project: the image project when there is one.
            // in the mapping file's order
            let mut ranked: Vec<(usize, Proj)> = order
                .iter()
                .filter_map(|vo| {
                    vos.get(vo).and_then(|p| {
                        p.image_project
                            .as_ref()
                            .map(|i| (p.image_rank, i.0.clone()))
                    })
                })
                .collect();
            ranked.sort();
            let mut image_projects: Vec<Proj> = Vec::new();
            for (_, p) in ranked {
                if !image_projects.contains(&p) {
                    image_projects.push(p);
                }
            }
            let mut scope: Option<(Proj, String)> = None;
            if let Some(first) = image_projects.first() {
                let why = if image_projects.len() == 1 {
                    "the project the legacy image sync uploaded into: its images are adopted, not uploaded again".to_string()
                } else {
                    let all: Vec<String> = image_projects.iter().map(Proj::text).collect();
                    cx.header_notes.push(format!(
                        "CONFLICT: the legacy image sync used one project per VO ({}); the appliance uploads into one (openstack.auth's project) and shares with every VO project. Images in the other projects are not adopted: remove them once the new ones are active.",
                        all.join(", ")
                    ));
                    format!(
                        "the first of the legacy image projects ({}): see the CONFLICT above",
                        all.join(", ")
                    )
                };
                scope = Some((first.clone(), why));
            }
            // A: atrope uploaded into its tenant.
            if let Some(at) = atrope {
                if let Some(v) = at
                    .get("glance", "tenant_name")
                    .filter(|v| placeholder(&v.text, &["tenant"]).is_none())
                {
                    let p = cx.project(v.text.trim(), DomainIs::Id("default".into()));
                    cx.set(
                        v,
                        imported_note(
                            "openstack.auth.project-name",
                            "atrope's upload tenant (v2: the v3 project in the default domain)",
                        ),
                    );
                    scope = Some((
                        p,
                        "the tenant atrope uploaded images into: its images are adopted".into(),
                    ));
                }
            }
            let own_scope = a
                .project_id
                .as_ref()
                .filter(|v| placeholder(&v.text, ACCOUNT_EXTRA).is_none())
                .map(|v| (Proj::Id(v.text.trim().to_string()), v.clone()))
                .or_else(|| {
                    a.project_name
                        .as_ref()
                        .filter(|v| placeholder(&v.text, ACCOUNT_EXTRA).is_none())
                        .map(|v| {
                            let d = a
                                .project_domain_id
                                .as_ref()
                                .map(|d| DomainIs::Id(d.text.trim().to_string()))
                                .or_else(|| {
                                    a.project_domain_name
                                        .as_ref()
                                        .map(|d| DomainIs::Name(d.text.trim().to_string()))
                                })
                                .unwrap_or(DomainIs::Id("default".into()));
                            (cx.project(v.text.trim(), d), v.clone())
                        })
                });
            if scope.is_none() {
                if let Some((p, v)) = &own_scope {
                    scope = Some((p.clone(), format!("{}'s own project", a.label())));
                    cx.set(v, imported("openstack.auth.project"));
                }
            }
            if scope.is_none() {
                if let Some(first) = order
                    .iter()
                    .find_map(|vo| vos.get(vo).and_then(|p| p.projects.first()))
                {
                    scope = Some((
                        first.proj.clone(),
                        "no legacy default project: the first VO project (images are uploaded here)".into(),
                    ));
                }
            }
            if let Some((p, why)) = scope {
                match &p {
                    Proj::Id(id) => auth.push("project-id", Out::str(id), Some(why)),
                    Proj::Name { name, domain } => {
                        auth.push("project-name", Out::str(name), Some(why));
                        match domain {
                            DomainIs::Id(d) => auth.push("project-domain-id", Out::str(d), None),
                            DomainIs::Name(d) => {
                                auth.push("project-domain-name", Out::str(d), None)
                            }
                        }
                    }
                }
            }
            if let Some((_, v)) = &own_scope {
                cx.l.set_if_open(v.id, used("not the default project: openstack.auth is scoped to the image project; accounting scopes each project itself"));
            }
            for v in [&a.project_domain_name, &a.project_domain_id]
                .into_iter()
                .flatten()
            {
                cx.l.set_if_open(
                    v.id,
                    used("the domain of the projects named in caso.conf (vos[].projects)"),
                );
            }
            // secret
            let secret = if kind_name == "password" {
                &a.password
            } else {
                &a.app_cred_secret
            };
            if let Some(v) = secret {
                if secret_placeholder(&v.text, ACCOUNT_EXTRA).is_none() {
                    cx.secret("openstack", None, secret_key, &v.text);
                    cx.set(
                        v,
                        Outcome::Secret {
                            to: format!("openstack.{secret_key}"),
                        },
                    );
                }
            }
            // the other accounts
            for (i, o) in accounts.list.iter().enumerate() {
                if i == pi {
                    continue;
                }
                if !o.configured() {
                    for v in o.keys() {
                        cx.l.set_if_open(v.id, dropped(format!("{}: not configured", o.label())));
                    }
                    continue;
                }
                let rights = match o.role {
                    "images" => "upload images into the image project and add members to them",
                    "info" => "read every VO project (Nova flavors, Glance images)",
                    _ => "read every VO project's servers, volumes and floating IPs and list users",
                };
                if o.same_user(&a) {
                    let same_pw = o.password.as_ref().map(|p| &p.text)
                        == a.password.as_ref().map(|p| &p.text);
                    for v in o.keys() {
                        let is_pw = o.password.as_ref().is_some_and(|p| p.id == v.id);
                        if is_pw && !same_pw {
                            cx.set(v, conflict(format!("same user as {} but another password: one of them is stale", a.label()), Some(format!("the {} account's password", a.role))));
                        } else {
                            cx.l.set_if_open(v.id, used(format!("same account as {}", a.label())));
                        }
                    }
                } else {
                    let (first, rest): (Vec<&Val>, Vec<&Val>) = {
                        let ks = o.keys();
                        let u = o.user().cloned();
                        ks.into_iter()
                            .partition(|v| u.as_ref().is_some_and(|u| u.id == v.id))
                    };
                    for v in first {
                        cx.set(
                            v,
                            conflict(
                                format!(
                                    "a second Keystone account: the appliance uses one site-wide credential (openstack.auth); {} must also {rights}, or replace it by this one",
                                    a.label()
                                ),
                                Some(format!("openstack.auth = {}", a.label())),
                            ),
                        );
                    }
                    for v in rest {
                        let is_pw = o.password.as_ref().is_some_and(|p| p.id == v.id);
                        cx.l.set_if_open(
                            v.id,
                            dropped(if is_pw {
                                format!(
                                    "{}'s password: not written anywhere (the account is not used)",
                                    o.label()
                                )
                            } else {
                                format!("{} is not used", o.label())
                            }),
                        );
                    }
                }
            }
        }
    }
    os.push("auth", auth, None);
    // region
    let region = rc
        .as_ref()
        .and_then(|r| r.get("OS_REGION_NAME"))
        .cloned()
        .or_else(|| {
            caso.as_ref()
                .and_then(|c| c.get("DEFAULT", "region_name"))
                .cloned()
        });
    let ca_region = catch_all.as_ref().and_then(|c| c.get("region")).cloned();
    match (&region, &ca_region) {
        (Some(r), Some(c)) if r.text.trim() != c.text.trim() => {
            os.push("region", Out::str(c.text.trim()), None);
            cx.set(c, imported("openstack.region"));
            cx.set(
                r,
                conflict(
                    format!(
                        "region `{}` differs from the catch-all's `{}`",
                        r.text.trim(),
                        c.text.trim()
                    ),
                    Some(format!("openstack.region: {}", c.text.trim())),
                ),
            );
        }
        (Some(r), c) => {
            os.push("region", Out::str(r.text.trim()), None);
            cx.set(r, imported("openstack.region"));
            if let Some(c) = c {
                cx.set(c, imported("openstack.region"));
            }
        }
        (None, Some(c)) => {
            os.push("region", Out::str(c.text.trim()), None);
            cx.set(c, imported("openstack.region"));
        }
        (None, None) => {}
    }
    // TLS
    let mut insecure = false;
    if let Some(c) = caso {
        if let Some(v) = c.get("keystone_auth", "cafile") {
            os.push(
                "ca-file",
                Out::str(v.text.trim()),
                Some("cASO's cafile: copy the file to this path on the appliance".into()),
            );
            cx.set(v, imported("openstack.ca-file"));
        }
        for (sec, k) in [("keystone_auth", "insecure"), ("extractor", "insecure")] {
            if let Some(v) = c.get(sec, k) {
                if is_true(&v.text) {
                    insecure = true;
                    cx.set(v, imported_note("openstack.insecure", "TLS verification was OFF for cASO; it stays off (warned on every run) until you set insecure: false"));
                } else {
                    cx.set(
                        v,
                        imported_note("openstack.insecure", "verification on, the default"),
                    );
                }
            }
        }
        if let Some(v) = c.get("keystone_auth", "timeout") {
            if let Ok(n) = v.text.trim().parse::<u64>() {
                os.push("timeout-seconds", Out::Int(n as i64), None);
                cx.set(v, imported("openstack.timeout-seconds"));
            }
        }
    }
    if let Some(a) = atrope {
        if let Some(v) = a.get("glance", "insecure") {
            if is_true(&v.text) {
                cx.set(v, conflict("atrope skipped TLS verification; the appliance verifies (add the site's CA with openstack.ca-file or paths.ca-dir)", Some("insecure: false".into())));
            } else {
                cx.set(v, used("verification on, as in the appliance"));
            }
        }
    }
    if accounts
        .list
        .iter()
        .any(|a| a.role == "images" && a.auth_type.is_none() && cx.inp.layout >= Layout::B)
    {
        cx.header_notes.push("Note: cloudkeeper-os never verified Keystone's TLS certificate (verify=False); the appliance does.".into());
    }
    if insecure {
        os.push(
            "insecure",
            Out::Bool(true),
            Some("imported from caso.conf: turn it off".into()),
        );
    }
    os
}

fn source_of(a: &Account) -> &'static str {
    match a.role {
        "accounting" => "caso.conf",
        "images" => "cloudkeeper-os.conf / atrope.conf",
        _ => "openstack.rc",
    }
}

fn is_true(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on"
    )
}

// ---- delivery: paths, ams ------------------------------------------------

struct LegacyPaths {
    spool: String,
    caso_spooldir: String,
    host_cert: String,
    host_key: String,
    ca_dir: String,
}

const DEFAULT_SPOOL: &str = "/var/spool/apel/outgoing/openstack";

fn delivery(
    cx: &mut Cx<'_>,
    caso: &Option<IniView>,
    sender: &Option<IniView>,
    logging: &Option<IniView>,
) -> (LegacyPaths, Out) {
    let layout = cx.inp.layout;
    let mut p = LegacyPaths {
        spool: DEFAULT_SPOOL.into(),
        caso_spooldir: "/var/spool/caso".into(),
        host_cert: "/etc/grid-security/hostcert.pem".into(),
        host_key: "/etc/grid-security/hostkey.pem".into(),
        ca_dir: "/etc/grid-security/certificates".into(),
    };
    let mut ams = Out::map();
    if let Some(c) = caso {
        if let Some(v) = c.get("ssm", "output_path") {
            p.spool = v.text.trim().to_string();
            cx.set(
                v,
                imported_note(
                    "paths.spool",
                    "the outgoing spool; its messages are taken over",
                ),
            );
        }
        if let Some(v) = c.get("DEFAULT", "spooldir") {
            p.caso_spooldir = v.text.trim().to_string();
            cx.set(
                v,
                used("where cASO's lastrun files are: carried over (accounting.caso-spool-dir)"),
            );
        }
        if let Some(v) = c.get("DEFAULT", "messengers") {
            let t = v.text.trim();
            let note = match t {
                "caso.messenger.ssm.SsmMessager" | "ssm" | "ssmv2" => {
                    "APEL cloud records v0.2; the appliance writes v0.4 (APEL accepts both; v0.4 adds the fields v0.2 lacks). Queued v0.2 messages are sent as they are"
                }
                "caso.messenger.ssm.SSMMessengerV04" | "ssmv4" => "APEL cloud records v0.4, as the appliance writes",
                _ => "the appliance writes APEL messages into the dirq spool only; other messengers (logstash, noop) are not supported",
            };
            cx.set(v, used(note));
        }
        for k in ["extractor"] {
            if let Some(v) = c.get("DEFAULT", k) {
                cx.set(
                    v,
                    dropped("the appliance extracts from Nova, as cASO's nova extractor"),
                );
            }
        }
        for (sec, k) in [("DEFAULT", "mapping_file"), ("extractor", "mapping_file")] {
            if let Some(v) = c.get(sec, k) {
                cx.set(
                    v,
                    used(format!(
                        "a path inside cASO's container; on the host it is {}",
                        layout.caso_voms()
                    )),
                );
            }
        }
        for (sec, k) in [
            ("DEFAULT", "verbose"),
            ("DEFAULT", "debug"),
            ("DEFAULT", "log_file"),
            ("DEFAULT", "lock_path"),
        ] {
            if let Some(v) = c.get(sec, k) {
                cx.set(v, dropped("logging and locking: the appliance logs to journald and locks its own runs"));
            }
        }
    }
    let effective = layout.sender_cfg_effective();
    if let Some(sn) = sender {
        if !effective {
            cx.l.note(
                sn.file,
                None,
                match layout {
                    Layout::D => "inert in this layout: ssmsend (stfc/ssm) did not mount /etc/apel and used its own default, which reads /var/spool/apel/outgoing, not the openstack sub-directory: nothing was sent",
                    _ => "inert in this layout: ssmsend used the copy baked into its image (the same content as shipped)",
                },
            );
        }
        let ams_mode = sn
            .get("sender", "protocol")
            .is_some_and(|v| v.text.trim().eq_ignore_ascii_case("ams"));
        if let Some(v) = sn.get("sender", "protocol") {
            cx.set(
                v,
                if ams_mode {
                    used("AMS, as the appliance sends")
                } else {
                    dropped("STOMP is retired: the appliance sends to AMS")
                },
            );
        } else {
            cx.l.note(sn.file, None, "no `[sender] protocol`: ssmsend used STOMP, which is retired; the appliance sends to the ARGO Messaging Service (ams.* defaults)");
        }
        for (sec, k) in [
            ("broker", "bdii"),
            ("broker", "network"),
            ("broker", "port"),
        ] {
            if let Some(v) = sn.get(sec, k) {
                cx.set(
                    v,
                    dropped("STOMP broker discovery: retired; the appliance publishes to AMS"),
                );
            }
        }
        if let Some(v) = sn.get("broker", "host") {
            let h = v.text.trim();
            if !ams_mode {
                cx.set(v, dropped("a STOMP broker: retired"));
            } else if h == crate::config::sections::ams::DEFAULT_HOST {
                cx.set(v, imported_note("ams.host", "the default"));
            } else {
                ams.push("host", Out::str(h), None);
                cx.set(v, imported("ams.host"));
            }
        }
        if let Some(v) = sn.get("broker", "use_ssl") {
            cx.set(v, dropped(if ams_mode {
                "the appliance always uses TLS to AMS; messages are encrypted only with ams.server-cert"
            } else {
                "STOMP transport security: retired"
            }));
        }
        for (k, to, dflt) in [
            (
                "certificate",
                "paths.host-cert",
                "/etc/grid-security/hostcert.pem",
            ),
            ("key", "paths.host-key", "/etc/grid-security/hostkey.pem"),
            ("capath", "paths.ca-dir", "/etc/grid-security/certificates"),
        ] {
            if let Some(v) = sn.get("certificates", k) {
                let t = v.text.trim().to_string();
                match k {
                    "certificate" => p.host_cert = t.clone(),
                    "key" => p.host_key = t.clone(),
                    _ => p.ca_dir = t.clone(),
                }
                cx.set(
                    v,
                    if t == dflt {
                        imported_note(to, "the default")
                    } else {
                        imported(to)
                    },
                );
            }
        }
        if let Some(v) = sn.get("certificates", "server_cert") {
            ams.push(
                "server-cert",
                Out::str(v.text.trim()),
                Some("encrypt to the APEL server, as ssmsend did".into()),
            );
            cx.set(v, imported("ams.server-cert"));
        }
        if let Some(v) = sn.get("certificates", "verify_server_cert") {
            cx.set(v, imported("ams.verify-server-cert"));
            if !is_true(&v.text) {
                ams.push("verify-server-cert", Out::Bool(false), None);
            }
        }
        if let Some(v) = sn.get("messaging", "ams_project") {
            let t = v.text.trim();
            if t == crate::config::sections::ams::DEFAULT_PROJECT {
                cx.set(v, imported_note("ams.project", "the default"));
            } else {
                ams.push("project", Out::str(t), None);
                cx.set(v, imported("ams.project"));
            }
        }
        if let Some(v) = sn.get("messaging", "destination") {
            let t = v.text.trim();
            if !ams_mode {
                let test = if t.contains("test") {
                    " (its name says `test`: whether records sent there reached the production accounting is unconfirmed)"
                } else {
                    ""
                };
                cx.set(v, dropped(format!("a STOMP queue{test}; the appliance publishes to the AMS topic eu-egi-cloud-accounting")));
            } else if t == crate::config::sections::ams::DEFAULT_TOPIC {
                cx.set(v, imported_note("ams.topic", "the default"));
            } else if t.is_empty() {
                cx.set(v, never("empty destination"));
            } else {
                ams.push("topic", Out::str(t), None);
                cx.set(v, imported("ams.topic"));
            }
        }
        if let Some(v) = sn.get("messaging", "path") {
            let t = v.text.trim().to_string();
            if effective {
                p.spool = t;
            }
            cx.set(
                v,
                imported_note(
                    "paths.spool",
                    "the outgoing spool; its messages are taken over",
                ),
            );
        }
        if let Some(v) = sn.get("messaging", "path_type") {
            if v.text.trim().eq_ignore_ascii_case("dirq") {
                cx.set(v, used("dirq, as the appliance's spool"));
            } else {
                cx.set(v, conflict("not a dirq spool: the appliance reads only dirq; its messages are not taken over", None));
            }
        }
        if let Some(v) = sn.get("messaging", "token") {
            cx.secret("ams", None, "token", &v.text);
            cx.set(
                v,
                Outcome::Secret {
                    to: "ams.token".into(),
                },
            );
        }
        for (k, v) in sn.section("logging") {
            let _ = k;
            cx.set(v, dropped("the appliance logs to journald"));
        }
    }
    if let Some(lg) = logging {
        for (_, v) in lg.all() {
            cx.l.set_if_open(
                v.id,
                dropped("ssmsend's logging: the appliance logs to journald"),
            );
        }
        if layout >= Layout::E && layout <= Layout::G {
            cx.l.note(
                lg.file,
                None,
                "as shipped, ssmsend stopped on this file (ssm <= 3.1.1: parse error; 3.2.1: AttributeError): accounting was not sent from this release, so a backlog is expected in the spool",
            );
        }
    }
    (p, ams)
}

// ---- schedules -----------------------------------------------------------

/// The schedule of each legacy job.
#[derive(Debug, Default, Clone)]
struct Crons {
    jobs: BTreeMap<&'static str, (CronJob, Option<String>)>,
}

fn schedules(cx: &mut Cx<'_>) -> Crons {
    let snap = cx.inp.snap;
    let mut out = Crons::default();
    let mut files: Vec<(&str, bool)> = vec![
        (s::CRON_CASO, true),
        (s::CRON_SSM, true),
        (s::CRON_ATROPE, true),
        (s::CRON_CK, true),
    ];
    files.push((s::ROOT_CRONTAB, false));
    for (path, system) in files {
        let Some(text) = snap.get(path) else { continue };
        let f = cx.l.file(
            path,
            if system {
                "cron.d: a legacy job's schedule"
            } else {
                "root's crontab (ansible): the legacy jobs' schedules"
            },
        );
        for j in cron::parse(text, system) {
            let id = cx.l.key(
                f,
                Some(j.line),
                j.ansible_name
                    .clone()
                    .map(|n| format!("job {n}"))
                    .unwrap_or_else(|| "job".into()),
                &format!("{} {}", j.schedule, j.command),
                false,
            );
            let cal = cron::on_calendar(&j.schedule);
            let (name, to) = match j.job {
                Some(Job::Caso) => ("caso", "components.accounting.extract-schedule"),
                Some(Job::Ssm) => ("ssm", "components.accounting.send-schedule"),
                Some(Job::Cloudkeeper) => ("cloudkeeper", "components.images.schedule"),
                Some(Job::Atrope) => ("atrope", "components.images.schedule"),
                Some(Job::CloudInfo) => ("cloudinfo", "components.info.schedule"),
                None => {
                    cx.l.set(id, dropped("not a job of the legacy appliance"));
                    continue;
                }
            };
            let mut notes = Vec::new();
            if j.missing_user {
                notes.push("as shipped this line has no user field, so cron never ran it (fixed in later releases)".to_string());
            }
            match &cal {
                Some(c) => notes.insert(0, format!("OnCalendar={c}")),
                None => notes
                    .push("cannot be written as OnCalendar=: the default schedule is kept".into()),
            }
            cx.l.set(id, imported_note(to, notes.join("; ")));
            out.jobs.insert(name, (j, cal));
        }
    }
    if cx.inp.layout == Layout::D && snap.has(s::ROOT_CRONTAB) && !out.jobs.contains_key("caso") {
        cx.state_notes.push("16.04-2019.03.07 had no cron entry for cASO: its lastrun shows when it was last run by hand".into());
    }
    out
}

fn components(crons: &Crons, img: &images::ImagesOut, info: &InfoOut) -> Out {
    let cal = |name: &str| crons.jobs.get(name).and_then(|(_, c)| c.clone());
    let mut c = Out::map();
    let mut acc = Out::map();
    acc.push("enabled", Out::Bool(true), None);
    acc.push(
        "extract-schedule",
        Out::str(cal("caso").unwrap_or_else(|| crate::config::DEFAULT_EXTRACT_SCHEDULE.into())),
        Some(if cal("caso").is_some() {
            "cASO's cron".into()
        } else {
            "the default (no cASO cron entry)".into()
        }),
    );
    acc.push(
        "send-schedule",
        Out::str(cal("ssm").unwrap_or_else(|| crate::config::DEFAULT_SEND_SCHEDULE.into())),
        Some(if cal("ssm").is_some() {
            "ssmsend's cron".into()
        } else {
            "the default".into()
        }),
    );
    c.push("accounting", acc, None);
    let mut i = Out::map();
    i.push("enabled", Out::Bool(info.enabled), Some(info.why.clone()));
    i.push(
        "schedule",
        Out::str(cal("cloudinfo").unwrap_or_else(|| crate::config::DEFAULT_INFO_SCHEDULE.into())),
        None,
    );
    c.push("info", i, None);
    let mut im = Out::map();
    im.push("enabled", Out::Bool(img.enabled), None);
    im.push(
        "schedule",
        Out::str(
            cal("cloudkeeper")
                .or_else(|| cal("atrope"))
                .unwrap_or_else(|| crate::config::DEFAULT_IMAGES_SCHEDULE.into()),
        ),
        None,
    );
    c.push("images", im, None);
    let mut crl = Out::map();
    crl.push(
        "enabled",
        Out::Bool(true),
        Some("new: fetch-crl's job (a cron of the Ubuntu package before)".into()),
    );
    crl.push(
        "schedule",
        Out::str(crate::config::DEFAULT_CRL_SCHEDULE),
        None,
    );
    c.push("crl-refresh", crl, None);
    c
}

// ---- info ----------------------------------------------------------------

struct InfoOut {
    enabled: bool,
    why: String,
    section: Out,
}

fn info_section(cx: &mut Cx<'_>, cip: &Option<YamlView>, catch_all: &Option<YamlView>) -> InfoOut {
    let layout = cx.inp.layout;
    let snap = cx.inp.snap;
    let mut section = Out::map();
    let mut enabled = false;
    let why: String;
    if layout <= Layout::F {
        why = "the legacy appliance published through a site BDII, which is retired: set a target under info.publish and enable".into();
    } else if layout == Layout::G {
        let script = snap.get(s::SCRIPT_CLOUD_INFO).unwrap_or("");
        let broken = script.lines().any(|l| {
            l.contains("/etc/cloud-info-provider/")
                && l.trim_end().ends_with("/etc/cloud-info-provider/")
        });
        if broken {
            why = "as shipped, cloud-info.sh lacked a line continuation and never published: enable it to publish to AMS as intended".into();
        } else {
            enabled = true;
            why = "cloud-info published to AMS (the appliance's info.publish.ams)".into();
        }
        let mut publish = Out::map();
        let mut a = Out::map();
        a.push("project", Out::str(crate::config::sections::info::DEFAULT_AMS_PROJECT), Some("cloud-info-provider's --publisher ams; topic SITE_<site>_ENDPOINT_<GOCDB id> as cloud-info.sh".into()));
        publish.push("ams", a, None);
        section.push("publish", publish, None);
    } else {
        why = "the 2022 release no longer published (EGI's catch-all does it centrally)".into();
    }
    if let Some(c) = cip {
        for (p, v) in c.all() {
            let o = match p {
                "site.name" => continue,
                "compute.images.defaults.require_marketplace_id" | "images.defaults.require_marketplace_id" => {
                    if is_true(&v.text) {
                        section.push("only-appdb-images", Out::Bool(true), Some("cloud-info-provider's require_marketplace_id".into()));
                    }
                    imported("info.only-appdb-images")
                }
                _ if p.starts_with("compute.shares.") => continue,
                "compute.total_cores" | "compute.total_ram" if v.text.trim() == "0" => never("0, the shipped value"),
                "compute.hypervisor_version" if v.text.trim() == "0.0.0" => never("`0.0.0` is the shipped placeholder"),
                _ => match placeholder(&v.text, &[]) {
                    Some(w) => never(w),
                    None if p.contains("occi") || p.contains("X509") || v.text.contains("X509-VOMS") => {
                        dropped("OCCI / X.509-VOMS endpoint data: obsolete")
                    }
                    None => dropped("a static value of the BDII-era cloud-info-provider: the GLUE 2.1 document the appliance writes (cloud-info-provider 1.2) takes what it publishes from OpenStack"),
                },
            };
            cx.l.set_if_open(v.id, o);
        }
    }
    if let Some(c) = catch_all {
        for (p, v) in c.all() {
            let o = match p {
                "gocdb" | "endpoint" | "region" => continue,
                _ if p.starts_with("vos[") => continue,
                "auth" | "protocol" => used("how EGI's central services log in (not the site's own account, which openstack.auth is)"),
                "images.sync" if is_true(&v.text) => conflict(
                    "EGI syncs this site's images centrally: with the appliance's image sync too, both upload; keep one (components.images.enabled, or `images.sync: false` in the catch-all)",
                    Some("components.images.enabled as the legacy files say".into()),
                ),
                "images.sync" => used("EGI does not sync this site's images centrally"),
                "images.formats" => used("the image formats the site accepts (images.formats)"),
                "accounting.enabled" => used("whether EGI extracts accounting centrally"),
                "accounting.site_name" => used("the site name EGI's accounting uses"),
                _ => dropped("not used by the appliance"),
            };
            cx.l.set_if_open(v.id, o);
        }
    }
    InfoOut {
        enabled,
        why,
        section,
    }
}

// ---- provenance ----------------------------------------------------------

fn provenance(cx: &mut Cx<'_>) {
    let snap = cx.inp.snap;
    for (path, role, why) in [
        (
            s::BDII_COMPOSE,
            "site BDII containers",
            "the site BDII is retired",
        ),
        (
            s::BDII_SERVICE,
            "site BDII unit",
            "the site BDII is retired",
        ),
        (
            s::CKOS_SERVICE,
            "cloudkeeper-os unit",
            "replaced by appliance-images-sync.timer",
        ),
    ] {
        if let Some((_, v)) = whole_file(&mut cx.l, snap, path, role) {
            cx.set(&v, dropped(why));
        }
    }
    for (path, role) in [
        (s::SCRIPT_CASO, "cron wrapper of cASO"),
        (s::SCRIPT_SSM, "cron wrapper of ssmsend"),
        (s::SCRIPT_CK, "cron wrapper of cloudkeeper"),
        (s::SCRIPT_ATROPE, "cron wrapper of atrope"),
        (s::SCRIPT_CLOUD_INFO, "cron wrapper of cloud-info-provider"),
    ] {
        let Some(text) = snap.get(path) else { continue };
        let f = cx.l.file(path, role);
        let images: Vec<String> = text
            .split_whitespace()
            .filter(|w| {
                w.contains("egifedcloud/") || w.contains("stfc/ssm") || w.starts_with("\"$")
            })
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        let id =
            cx.l.key(f, None, "container image", &images.join(" "), false);
        cx.l.set(id, used("provenance (which component versions ran)"));
        if path == s::SCRIPT_CLOUD_INFO
            && text
                .lines()
                .any(|l| l.trim_end().ends_with("/etc/cloud-info-provider/"))
        {
            cx.l.note(f, None, "a line ends without `\\`: the docker command is cut in two and the job failed (info was never published by this release)");
        }
    }
    if let Some(v) = rc_file(
        &mut cx.l,
        snap,
        s::EGI_DEFAULTS,
        "container images of the 2022 release",
        RcUse::Plain,
    ) {
        let keys: Vec<Val> = [
            "CASO_IMAGE",
            "CLOUDINFO_IMAGE",
            "CLOUDKEEPER_CORE_IMAGE",
            "CLOUDKEEPER_OS_IMAGE",
            "SSM_IMAGE",
        ]
        .iter()
        .filter_map(|k| v.get(k).cloned())
        .collect();
        for k in keys {
            cx.set(&k, used("provenance (which component versions ran)"));
        }
    }
    if cx.inp.layout == Layout::A {
        cx.state_notes.push(
            "layout A: caso-extract.sh mounted /var/spool/ssm, not /var/spool/apel, and its containers had no --rm: if cron ever ran cASO here, its records are in stopped egifedcloud/caso containers (`docker ps -a`; `docker cp <id>:/var/spool/apel/outgoing/openstack .`), while /var/spool/caso/lastrun advanced. Recover them into the spool before the first send, or accept the gap.".into(),
        );
    }
}
