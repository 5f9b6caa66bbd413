//! The interactive wizard (dialoguer on the terminal): one section at a
//! time, a default for every question (the current answer), each section
//! checked live before moving on (a failed check says why and asks that
//! section again), then a summary and one confirmation. It runs on a thread
//! of its own; checks run on the command's runtime through `rt`.

use std::path::PathBuf;

use dialoguer::console::Term;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Password, Select};
use tokio::runtime::Handle;
use url::Url;

use super::checks;
use crate::config::AuthType;
use crate::openstack::access::{DomainRef, ProjectRef};
use crate::openstack::identity::Project;
use crate::setup::answers::{
    list_source, list_source_text, project_ref, project_text, Answers, ListAnswers, Material,
    RegistryAnswers, Section, DEFAULT_REGISTRY,
};
use crate::setup::disk::BlockDevice;

/// How the wizard ended without answers.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C (or end of input).
    Interrupted,
    /// The terminal failed.
    Io(String),
}

type R<T> = Result<T, Stop>;

fn io(e: dialoguer::Error) -> Stop {
    let dialoguer::Error::IO(e) = e;
    match e.kind() {
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::UnexpectedEof => Stop::Interrupted,
        _ => Stop::Io(e.to_string()),
    }
}

/// What the wizard needs besides the answers.
pub struct Context {
    /// The command's runtime.
    pub rt: Handle,
    /// Block devices (for `/image_data`).
    pub devices: Vec<BlockDevice>,
}

struct Wizard {
    term: Term,
    theme: ColorfulTheme,
    ctx: Context,
    projects: Vec<Project>,
    declared: u64,
}

/// The end of a wizard run.
pub struct Done {
    /// The answers.
    pub answers: Answers,
    /// The DN of the host certificate, when checked.
    pub dn: Option<String>,
}

/// Run the wizard over `sections`, starting from `answers`.
pub fn run(answers: Answers, sections: &[Section], ctx: Context) -> R<Done> {
    let mut w = Wizard {
        term: Term::stderr(),
        theme: ColorfulTheme::default(),
        ctx,
        projects: Vec::new(),
        declared: 0,
    };
    let mut a = answers;
    let mut dn = None;
    w.line("appliance configure: each answer is checked before the next section; Ctrl-C stops without writing anything.");
    for &s in sections {
        if skip(&a, s) {
            continue;
        }
        w.line("");
        w.line(&format!("== {} ==", s.title()));
        // A failed check asks again with the answers just given as the
        // defaults, so only the wrong one needs typing.
        let mut trial = a.clone();
        loop {
            w.ask(s, &mut trial)?;
            match w.check(s, &mut trial) {
                Ok((notes, got_dn)) => {
                    for n in notes {
                        w.line(&format!("  {n}"));
                    }
                    if got_dn.is_some() {
                        dn = got_dn;
                    }
                    if s == Section::TrustAnchors {
                        w.offer_crl_refresh(&mut trial)?;
                    }
                    a = trial;
                    break;
                }
                Err(reason) => {
                    w.line(&format!("✘ {reason}"));
                    w.line(&format!("  Asking the {} questions again.", s.key()));
                }
            }
        }
    }
    Ok(Done { answers: a, dn })
}

/// Sections that do not apply: AMS without accounting, publishing without
/// info, images and their cache without image sync.
pub fn skip(a: &Answers, s: Section) -> bool {
    let c = &a.components;
    match s {
        Section::Ams | Section::HostCertificate => !c.accounting.enabled,
        Section::Info => !c.info.enabled,
        Section::Images | Section::ImageData => !c.images.enabled,
        _ => false,
    }
}

impl Wizard {
    fn line(&self, s: &str) {
        let _ = self.term.write_line(s);
    }

    fn text(&self, prompt: &str, default: &str, allow_empty: bool) -> R<String> {
        let mut i = Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty(allow_empty);
        if !default.is_empty() {
            i = i.default(default.to_string());
        }
        i.interact_text_on(&self.term)
            .map_err(io)
            .map(|s| s.trim().to_string())
    }

    fn text_checked(
        &self,
        prompt: &str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> R<String> {
        let mut i = Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|s: &String| check(s.trim()));
        if !default.is_empty() {
            i = i.default(default.to_string());
        }
        i.interact_text_on(&self.term)
            .map_err(io)
            .map(|s| s.trim().to_string())
    }

    fn url(&self, prompt: &str, default: Option<&Url>) -> R<Url> {
        let d = default.map(|u| u.to_string()).unwrap_or_default();
        let s = self.text_checked(prompt, &d, |s| match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            Ok(u) => Err(format!(
                "`{s}` is not an http(s) URL (scheme {})",
                u.scheme()
            )),
            Err(e) => Err(format!("`{s}` is not a URL: {e}")),
        })?;
        Ok(Url::parse(&s).expect("validated"))
    }

    /// A secret, not echoed. With `have`, Enter keeps the current one;
    /// with `optional`, Enter means none.
    fn secret(&self, prompt: &str, have: bool, optional: bool) -> R<Option<String>> {
        let prompt = if have {
            format!("{prompt} (Enter keeps the current one)")
        } else {
            prompt.to_string()
        };
        let s = Password::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty_password(have || optional)
            .interact_on(&self.term)
            .map_err(io)?;
        Ok(Some(s).filter(|s| !s.is_empty()))
    }

    fn confirm(&self, prompt: &str, default: bool) -> R<bool> {
        Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact_on(&self.term)
            .map_err(io)
    }

    fn list(&self, prompt: &str, default: &[String]) -> R<Vec<String>> {
        let s = self.text(prompt, &default.join(", "), true)?;
        Ok(split_list(&s))
    }

    /// A certificate or key: a path, or PEM pasted line by line (a key's
    /// lines are not echoed).
    fn material(&self, prompt: &str, default: &Material, secret: bool) -> R<Material> {
        let d = match default {
            Material::File(p) => p.display().to_string(),
            Material::Pem(_) => "(the pasted PEM)".to_string(),
        };
        let first = self.text(&format!("{prompt} (path, or paste the PEM)"), &d, false)?;
        if first == "(the pasted PEM)" {
            return Ok(default.clone());
        }
        if !first.starts_with("-----BEGIN") {
            return Ok(Material::File(PathBuf::from(first)));
        }
        let mut pem = first;
        pem.push('\n');
        loop {
            let l = if secret {
                self.term.read_secure_line()
            } else {
                self.term.read_line()
            }
            .map_err(|e| io(dialoguer::Error::IO(e)))?;
            pem.push_str(l.trim_end());
            pem.push('\n');
            if l.starts_with("-----END") {
                break;
            }
        }
        Ok(Material::parse(&pem))
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.ctx.rt.block_on(f)
    }

    fn ask(&mut self, s: Section, a: &mut Answers) -> R<()> {
        match s {
            Section::Site => self.ask_site(a),
            Section::Keystone => self.ask_keystone(a),
            Section::Vos => self.ask_vos(a),
            Section::HostCertificate => {
                let h = &mut a.host_certificate;
                h.certificate = self.material("Host certificate", &h.certificate, false)?;
                h.key = self.material("Host key", &h.key, true)?;
                Ok(())
            }
            Section::TrustAnchors => {
                let d = a.trust.ca_dir.display().to_string();
                a.trust.ca_dir = PathBuf::from(self.text("IGTF CA directory", &d, false)?);
                Ok(())
            }
            Section::Components => {
                let c = &mut a.components;
                c.accounting.enabled = self.confirm(
                    "Accounting: extract usage records and send them to APEL through AMS?",
                    c.accounting.enabled,
                )?;
                c.info.enabled = self.confirm(
                    "Information publishing: the site's GLUE 2.1 document?",
                    c.info.enabled,
                )?;
                c.images.enabled = self.confirm(
                    "Image synchronisation: signed image lists and registries into Glance?",
                    c.images.enabled,
                )?;
                c.crl_refresh.enabled = self.confirm(
                    "CRL refresh of the IGTF CA directory?",
                    c.crl_refresh.enabled,
                )?;
                Ok(())
            }
            Section::Ams => {
                a.ams.host = self.text("AMS host", &a.ams.host, false)?;
                a.ams.port = self.port("AMS port", a.ams.port)?;
                a.ams.authn_port = self.port("AMS authn (X.509) port", a.ams.authn_port)?;
                Ok(())
            }
            Section::Info => {
                let f = a
                    .info
                    .publish_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let f = self.text(
                    "Publish the GLUE document to this file (empty: no file)",
                    &f,
                    true,
                )?;
                a.info.publish_file = Some(f).filter(|f| !f.is_empty()).map(PathBuf::from);
                let c = a.info.swift_container.clone().unwrap_or_default();
                let c = self.text("... and to this Swift container (empty: none)", &c, true)?;
                a.info.swift_container = Some(c).filter(|c| !c.is_empty());
                Ok(())
            }
            Section::Images => self.ask_images(a),
            Section::ImageData => self.ask_image_data(a),
        }
    }

    fn port(&self, prompt: &str, default: u16) -> R<u16> {
        let s = self.text_checked(prompt, &default.to_string(), |s| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(|_| ())
                .ok_or_else(|| format!("`{s}` is not a port number"))
        })?;
        Ok(s.parse().expect("validated"))
    }

    fn ask_site(&mut self, a: &mut Answers) -> R<()> {
        a.site.name = self.text_checked("GOCDB site name", &a.site.name, |s| {
            if s.is_empty() || s.contains(char::is_whitespace) {
                Err("a GOCDB site name is one word, e.g. CESGA-CLOUD".into())
            } else {
                Ok(())
            }
        })?;
        a.site.endpoint = Some(self.url(
            "Keystone endpoint URL, exactly as registered in GOCDB",
            a.site.endpoint.as_ref(),
        )?);
        a.site.gocdb_url = self.url("GOCDB public API", Some(&a.site.gocdb_url))?;
        let fetcher = checks::http(&a.trust.ca_dir).map_err(Stop::Io)?;
        let endpoint = a.site.endpoint.clone().expect("asked").to_string();
        let found = self.block_on(checks::gocdb_lookup(
            &fetcher.client(),
            &a.site.gocdb_url,
            &endpoint,
        ));
        let id = match found {
            Ok(entry) => {
                self.line(&format!(
                    "  GOCDB: endpoint id {} of site {}",
                    entry.gocdb_id, entry.site_name
                ));
                self.text("GOCDB endpoint id", &entry.gocdb_id, false)?
            }
            Err(e) => {
                self.line(&format!("  GOCDB lookup: {e}"));
                let d = a.site.endpoint_id.clone().unwrap_or_default();
                self.text("GOCDB endpoint id (empty: unknown)", &d, true)?
            }
        };
        a.site.endpoint_id = Some(id).filter(|s| !s.is_empty());
        Ok(())
    }

    fn ask_keystone(&mut self, a: &mut Answers) -> R<()> {
        let cur = a.keystone.auth.clone();
        let default_url = cur
            .as_ref()
            .map(|c| c.auth_url.clone())
            .or_else(|| a.site.endpoint.clone());
        let auth_url = self.url("Keystone auth URL", default_url.as_ref())?;
        let region = a.keystone.region.clone().unwrap_or_default();
        let region = self.text("Region (empty: the only one)", &region, true)?;
        a.keystone.region = Some(region).filter(|r| !r.is_empty());
        let kinds = [
            "v3applicationcredential (recommended: bound to one project, revocable)",
            "password",
        ];
        let cur_kind = cur.as_ref().map(|c| c.method.kind());
        let idx = Select::with_theme(&self.theme)
            .with_prompt("Authentication")
            .items(kinds)
            .default(usize::from(cur_kind == Some(AuthType::Password)))
            .interact_on(&self.term)
            .map_err(io)?;
        let kind = if idx == 0 {
            AuthType::ApplicationCredential
        } else {
            AuthType::Password
        };
        let have_secret = a.keystone.secret.is_some() && cur_kind == Some(kind);
        use crate::config::AuthMethod;
        let method = match kind {
            AuthType::ApplicationCredential => {
                let d = match cur.as_ref().map(|c| &c.method) {
                    Some(AuthMethod::ApplicationCredential { id: Some(id), .. }) => id.clone(),
                    _ => String::new(),
                };
                let id = self.text("Application credential id", &d, false)?;
                if let Some(s) = self.secret("Application credential secret", have_secret, false)? {
                    a.keystone.secret = Some(crate::secret::Secret::new(s));
                }
                AuthMethod::ApplicationCredential {
                    id: Some(id),
                    name: None,
                    user: None,
                }
            }
            _ => {
                let (du, dd, dp, dpd) = match cur.as_ref().map(|c| &c.method) {
                    Some(AuthMethod::Password {
                        username,
                        user_domain,
                        project,
                    }) => {
                        let (p, pd) = match project {
                            Some(ProjectRef::Name { name, domain }) => {
                                (name.clone(), domain.to_string())
                            }
                            Some(ProjectRef::Id(id)) => (id.clone(), "Default".into()),
                            None => (String::new(), "Default".into()),
                        };
                        (username.clone(), user_domain.to_string(), p, pd)
                    }
                    _ => (
                        String::new(),
                        "Default".into(),
                        String::new(),
                        "Default".into(),
                    ),
                };
                let user = self.text("User name", &du, false)?;
                let udom = self.text("User domain", &dd, false)?;
                let project = self.text("Project (name or id) to scope to", &dp, false)?;
                let pdom = self.text("Project domain", &dpd, false)?;
                if let Some(s) = self.secret("Password", have_secret, false)? {
                    a.keystone.secret = Some(crate::secret::Secret::new(s));
                }
                AuthMethod::Password {
                    username: user,
                    user_domain: DomainRef::Name(udom),
                    project: Some(project_ref(&project, &DomainRef::Name(pdom))),
                }
            }
        };
        a.keystone.auth = Some(crate::config::Auth { auth_url, method });
        Ok(())
    }

    fn ask_vos(&mut self, a: &mut Answers) -> R<()> {
        if self.projects.is_empty() {
            // `--only vos`: the credential's projects are needed to offer.
            if let Ok(f) = self.block_on(checks::keystone(a)) {
                self.projects = f.projects;
            }
        }
        if !self.projects.is_empty() {
            self.line("  Projects the credential can see:");
            for p in &self.projects {
                self.line(&format!("    {}", checks::describe_project(p)));
            }
        }
        // Default mapping: the current one, else the projects' VO property.
        let mut current: Vec<(String, Vec<String>)> = a
            .vos
            .iter()
            .map(|v| {
                let names = v
                    .projects
                    .iter()
                    .map(|p| match p {
                        ProjectRef::Id(id) => a
                            .project_names
                            .get(id)
                            .cloned()
                            .or_else(|| {
                                self.projects
                                    .iter()
                                    .find(|x| x.id == *id)
                                    .map(|x| x.name.clone())
                            })
                            .unwrap_or_else(|| id.clone()),
                        other => project_text(other),
                    })
                    .collect();
                (v.name.clone(), names)
            })
            .collect();
        if current.is_empty() {
            for p in &self.projects {
                if let Some(vo) = p.property("VO") {
                    match current.iter_mut().find(|(n, _)| n == vo) {
                        Some((_, ps)) => ps.push(p.name.clone()),
                        None => current.push((vo.to_string(), vec![p.name.clone()])),
                    }
                }
            }
        }
        let names: Vec<String> = current.iter().map(|(n, _)| n.clone()).collect();
        let vos = loop {
            let v = self.list("VOs this site serves (comma-separated)", &names)?;
            if v.is_empty() {
                self.line("✘ at least one VO is needed");
                continue;
            }
            break v;
        };
        let domain = DomainRef::Name("Default".into());
        let mut out = Vec::new();
        for vo in vos {
            let d = current
                .iter()
                .find(|(n, _)| *n == vo)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            let projects = self.list(&format!("Projects of {vo} (names or ids)"), &d)?;
            let auth = a
                .vos
                .iter()
                .find(|x| x.name == vo)
                .and_then(|x| x.auth.clone());
            out.push(crate::config::Vo {
                name: vo,
                projects: projects.iter().map(|p| project_ref(p, &domain)).collect(),
                auth,
            });
        }
        a.vos = out;
        Ok(())
    }

    fn ask_images(&mut self, a: &mut Answers) -> R<()> {
        let vos = a.vo_names();
        let urls: Vec<String> = a
            .images
            .lists
            .iter()
            .map(|l| list_source_text(&l.source))
            .collect();
        let wanted = self.list(
            "Signed image list URLs (comma-separated; empty: none)",
            &urls,
        )?;
        let old = std::mem::take(&mut a.images.lists);
        for u in wanted {
            let Some(source) = list_source(&u) else {
                self.line(&format!(
                    "✘ `{u}` is neither an http(s) URL nor an absolute path; skipped"
                ));
                continue;
            };
            let prev = old.iter().find(|l| l.source == source).cloned();
            let dname = prev
                .as_ref()
                .map(|l| l.name.clone())
                .unwrap_or_else(|| default_list_name(&u));
            let name = self.text(&format!("Name of the list {u}"), &dname, false)?;
            let token = self.secret(
                "AppDB token (empty: none)",
                prev.as_ref().is_some_and(|l| l.token.is_some()),
                true,
            )?;
            let dn_default = prev
                .as_ref()
                .map(|l| l.endorser_dn.clone())
                .unwrap_or_else(|| "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu".into());
            let dn = self.text("Expected endorser DN", &dn_default, false)?;
            let lvos = self.list(
                "Share with the projects of these VOs",
                &prev
                    .as_ref()
                    .map(|l| l.vos.clone())
                    .unwrap_or_else(|| vos.clone()),
            )?;
            a.images.lists.push(ListAnswers {
                token: token
                    .map(crate::secret::Secret::new)
                    .or_else(|| prev.as_ref().and_then(|l| l.token.clone())),
                endorser_ca: prev
                    .as_ref()
                    .filter(|l| l.endorser_dn == dn)
                    .and_then(|l| l.endorser_ca.clone()),
                vos: lvos,
                visibility: prev
                    .as_ref()
                    .map_or(crate::config::sections::images::Visibility::Shared, |l| {
                        l.visibility
                    }),
                images: prev.as_ref().map(|l| l.images.clone()).unwrap_or_default(),
                prefix: prev.as_ref().map(|l| l.prefix.clone()).unwrap_or_default(),
                enabled: prev.as_ref().is_none_or(|l| l.enabled),
                name,
                source,
                endorser_dn: dn,
            });
        }
        let had = !a.images.registries.is_empty();
        if self.confirm("Synchronise from the EGI registry (Harbor)?", had)? {
            let prev = a.images.registries.first().cloned();
            let url = self.url(
                "Registry URL",
                Some(
                    &prev
                        .as_ref()
                        .map(|r| r.url.clone())
                        .unwrap_or_else(|| Url::parse(DEFAULT_REGISTRY).expect("URL")),
                ),
            )?;
            let projects = self.list(
                "Harbor project(s)",
                &prev
                    .as_ref()
                    .map(|r| r.projects.clone())
                    .unwrap_or_else(|| vec!["egi_vm_images".into()]),
            )?;
            let robot = self.text(
                "Robot account (empty: anonymous)",
                prev.as_ref().and_then(|r| r.robot.as_deref()).unwrap_or(""),
                true,
            )?;
            let robot = Some(robot).filter(|r| !r.is_empty());
            let password = match &robot {
                Some(_) => self
                    .secret(
                        "Robot account password",
                        prev.as_ref().is_some_and(|r| r.password.is_some()),
                        false,
                    )?
                    .map(crate::secret::Secret::new)
                    .or_else(|| prev.as_ref().and_then(|r| r.password.clone())),
                None => None,
            };
            let rvos = self.list(
                "Share with the projects of these VOs",
                &prev
                    .as_ref()
                    .map(|r| r.vos.clone())
                    .unwrap_or_else(|| vos.clone()),
            )?;
            let name = prev
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| url.host_str().unwrap_or("registry").to_string());
            let rest = a
                .images
                .registries
                .split_off(1.min(a.images.registries.len()));
            a.images.registries = vec![RegistryAnswers {
                name,
                url,
                projects,
                robot,
                password,
                vos: rvos,
                repository: prev.as_ref().and_then(|r| r.repository.clone()),
                tag_pattern: prev.as_ref().and_then(|r| r.tag_pattern.clone()),
                visibility: prev
                    .as_ref()
                    .map_or(crate::config::sections::images::Visibility::Shared, |r| {
                        r.visibility
                    }),
                prefix: prev.as_ref().map(|r| r.prefix.clone()).unwrap_or_default(),
                enabled: prev.as_ref().is_none_or(|r| r.enabled),
            }];
            a.images.registries.extend(rest);
        } else {
            a.images.registries.clear();
        }
        Ok(())
    }

    fn ask_image_data(&mut self, a: &mut Answers) -> R<()> {
        let cands = crate::setup::disk::candidates(&self.ctx.devices);
        let dir = a.image_data.directory.display().to_string();
        a.image_data.device = None;
        a.image_data.format = false;
        if !cands.is_empty() {
            let mut items = vec![format!("a directory (default {dir})")];
            for c in &cands {
                items.push(format!(
                    "format {} ({}) as ext4, label image_data, mounted by a systemd unit",
                    c.node().display(),
                    checks::human_bytes(c.size)
                ));
            }
            let i = Select::with_theme(&self.theme)
                .with_prompt("Where do downloaded images go?")
                .items(&items)
                .default(0)
                .interact_on(&self.term)
                .map_err(io)?;
            if i > 0 {
                let dev = cands[i - 1].node();
                if self.confirm(
                    &format!("Everything on {} is lost. Format it?", dev.display()),
                    false,
                )? {
                    a.image_data.device = Some(dev);
                    a.image_data.format = true;
                }
            }
        }
        let prompt = if a.image_data.device.is_some() {
            "Mount point"
        } else {
            "Image cache directory"
        };
        a.image_data.directory = PathBuf::from(self.text(prompt, &dir, false)?);
        Ok(())
    }

    fn check(
        &mut self,
        s: Section,
        a: &mut Answers,
    ) -> Result<(Vec<String>, Option<String>), String> {
        let now = std::time::SystemTime::now();
        match s {
            Section::Site => {
                let f = checks::http(&a.trust.ca_dir)?;
                self.block_on(checks::site(a, &f.client()))
                    .map(|n| (n, None))
            }
            Section::Keystone => {
                let f = self.block_on(checks::keystone(a))?;
                self.projects = f.projects;
                Ok((f.notes, None))
            }
            Section::Vos => {
                if self.projects.is_empty() {
                    let f = self.block_on(checks::keystone(a))?;
                    self.projects = f.projects;
                }
                checks::vos(a, &self.projects).map(|n| (n, None))
            }
            Section::HostCertificate => {
                let f = checks::host_cert(&a.host_certificate, now)?;
                let mut n = f.notes;
                n.push(format!(
                    "register this Host DN in GOCDB for the services eu.egi.cloud.accounting and org.openstack.nova: {}",
                    f.dn
                ));
                Ok((n, Some(f.dn)))
            }
            Section::TrustAnchors => checks::trust(&a.trust.ca_dir).map(|(_, n)| (n, None)),
            Section::Components => Ok((Vec::new(), None)),
            Section::Ams => Ok((self.block_on(checks::ams(a)), None)),
            Section::Info => Ok((Vec::new(), None)),
            Section::Images => {
                let f = checks::http(&a.trust.ca_dir)?;
                let r = self.block_on(checks::images(a, &f, chrono::Utc::now()))?;
                self.declared = r.declared_bytes;
                Ok((r.notes, None))
            }
            Section::ImageData => {
                checks::image_data(a, &self.ctx.devices, self.declared).map(|n| (n, None))
            }
        }
    }

    fn offer_crl_refresh(&self, a: &mut Answers) -> R<()> {
        let crls = checks::count_ca_dir(&a.trust.ca_dir)
            .map(|f| f.crls)
            .unwrap_or(0);
        a.trust.refresh_crls =
            self.confirm("Refresh the CRLs now (`appliance crl refresh`)?", crls == 0)?;
        Ok(())
    }
}

/// Split a comma- or space-separated list.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// A subscription name from a list URL: AppDB's `.../vo/<vo>/image.list`
/// gives the VO, anything else the host.
pub fn default_list_name(u: &str) -> String {
    let parts: Vec<&str> = u.trim_end_matches('/').split('/').collect();
    if let Some(i) = parts.iter().position(|p| *p == "vo") {
        if let Some(vo) = parts.get(i + 1) {
            return vo.to_string();
        }
    }
    Url::parse(u)
        .ok()
        .and_then(|x| x.host_str().map(String::from))
        .unwrap_or_else(|| "image-list".into())
}

/// Ask once whether to write (after the summary).
pub fn confirm_write(prompt: &str) -> R<bool> {
    Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .default(true)
        .wait_for_newline(true)
        .interact_on(&Term::stderr())
        .map_err(io)
}
