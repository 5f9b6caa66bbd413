//! The live checks of `appliance configure`: each section's answers are
//! tested against the real thing before they are saved (GOCDB, Keystone
//! and its catalog, the projects the credential sees, the certificate and
//! key, the CA directory, the image lists' signatures, the registry's robot
//! account, the disk). `Err(reason)` makes the wizard ask again; notes
//! starting with `warning:` are shown but do not stop it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::info::facts::GocdbEntry;
use crate::info::gocdb;
use crate::openstack::access::{CloudAccess, ProjectRef, Tls};
use crate::openstack::identity::Project;
use crate::openstack::OpenStack;
use crate::setup::answers::{project_text, Answers, HostCertAnswers, Material};
use crate::setup::disk::BlockDevice;

/// Warn when the host certificate expires sooner than this.
pub const CERT_WARN: Duration = Duration::from_secs(30 * 24 * 3600);

/// Notes of a check that passed (`warning: ...` lines are warnings).
pub type Notes = Vec<String>;

fn warn(s: impl std::fmt::Display) -> String {
    format!("warning: {s}")
}

/// A plain HTTP client trusting the system roots and `ca_dir` (when it
/// exists), for GOCDB, image lists and the registry.
pub fn http(ca_dir: &Path) -> Result<crate::images::fetch::Fetcher, String> {
    let dir = ca_dir.is_dir().then_some(ca_dir);
    crate::images::fetch::Fetcher::new(dir, crate::images::fetch::Limits::default())
}

/// The endpoint's entry in GOCDB.
pub async fn gocdb_lookup(
    client: &reqwest::Client,
    base: &url::Url,
    endpoint: &str,
) -> Result<GocdbEntry, String> {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("method", "get_service")
        .append_pair("service_type", gocdb::SERVICE_TYPE);
    let resp = client
        .get(url.clone())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("GOCDB at {base} cannot be reached: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GOCDB at {base} answered HTTP {}", resp.status()));
    }
    let body = resp
        .text()
        .await
        .map_err(|e| format!("GOCDB at {base}: {e}"))?;
    gocdb::find(&body, endpoint).map_err(|e| e.to_string())
}

/// `site`: name and endpoint set; the GOCDB entry compared (the id is
/// filled in from GOCDB when none was given).
pub async fn site(a: &mut Answers, client: &reqwest::Client) -> Result<Notes, String> {
    if a.site.name.trim().is_empty() {
        return Err("the GOCDB site name is empty".into());
    }
    let Some(endpoint) = a.site.endpoint.clone() else {
        return Err("the endpoint URL is missing".into());
    };
    let mut notes = Notes::new();
    match gocdb_lookup(client, &a.site.gocdb_url, endpoint.as_str()).await {
        Ok(entry) => {
            if entry.site_name != a.site.name {
                notes.push(warn(format!(
                    "GOCDB registers {endpoint} for site {}, not {}",
                    entry.site_name, a.site.name
                )));
            }
            match &a.site.endpoint_id {
                None => {
                    notes.push(format!("GOCDB endpoint id {} (from GOCDB)", entry.gocdb_id));
                    a.site.endpoint_id = Some(entry.gocdb_id);
                }
                Some(id) if *id != entry.gocdb_id => notes.push(warn(format!(
                    "GOCDB gives endpoint id {} for {endpoint}, not {id}",
                    entry.gocdb_id
                ))),
                Some(_) => notes.push(format!("GOCDB endpoint id {} confirmed", entry.gocdb_id)),
            }
        }
        Err(e) => notes.push(warn(format!(
            "{e}; info publishing then uses the endpoint id given here{}",
            if a.site.endpoint_id.is_none() {
                " (none)"
            } else {
                ""
            }
        ))),
    }
    Ok(notes)
}

/// What Keystone told about the credential.
#[derive(Debug, Clone, Default)]
pub struct KeystoneFacts {
    /// The projects it can scope to, with their properties.
    pub projects: Vec<Project>,
    /// Notes.
    pub notes: Notes,
}

/// The client access of the `keystone` answers.
pub fn access(a: &Answers) -> Result<CloudAccess, String> {
    let k = &a.keystone;
    let auth = k.auth.as_ref().ok_or("no credential given")?;
    let credential = crate::config::credential(auth, k.secret.clone()).ok_or_else(|| {
        format!(
            "the {} is missing",
            auth.method.kind().secret_key().replace('-', " ")
        )
    })?;
    Ok(CloudAccess {
        auth_url: auth.auth_url.clone(),
        credential,
        region: k.region.clone(),
        interface: k.interface,
        tls: Tls {
            ca_file: k.ca_file.clone(),
            ca_dir: Some(a.trust.ca_dir.clone()).filter(|d| d.is_dir()),
            insecure: k.insecure,
        },
        timeout: Duration::from_secs(k.timeout_seconds.clamp(5, 120)),
        retries: k.retries.min(2),
    })
}

/// Catalog services the flows cannot do without.
pub const NEEDED_SERVICES: [&str; 3] = ["identity", "compute", "image"];

/// `keystone`: a token is issued, the catalog has identity, compute and
/// image in the region, and the projects the credential sees are listed.
pub async fn keystone(a: &Answers) -> Result<KeystoneFacts, String> {
    let access = access(a)?;
    let os = OpenStack::new(access).map_err(|e| e.to_string())?;
    let session = os
        .session()
        .await
        .map_err(|e| format!("Keystone refused the credential: {e}"))?;
    let mut missing = Vec::new();
    for s in NEEDED_SERVICES {
        if session.endpoint(s).is_err() {
            missing.push(s);
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the catalog{} has no {} endpoint (has: {})",
            a.keystone
                .region
                .as_deref()
                .map(|r| format!(" of region {r}"))
                .unwrap_or_default(),
            missing.join(", "),
            crate::openstack::catalog::describe(session.catalog())
        ));
    }
    let mut projects = os
        .projects()
        .await
        .map_err(|e| format!("cannot list the credential's projects: {e}"))?;
    // /v3/auth/projects may leave out custom properties: read each project.
    for p in projects.iter_mut() {
        if p.property("VO").is_none() {
            if let Ok(s) = os.scoped(&p.reference()).await {
                if let Ok(full) = crate::openstack::identity::project(&s, &p.id).await {
                    *p = full;
                }
            }
        }
    }
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let user = session
        .user()
        .name
        .clone()
        .unwrap_or_else(|| session.user().id.clone());
    let notes = vec![format!(
        "token issued for {user}; catalog has {}; {} project(s) visible",
        NEEDED_SERVICES.join(", "),
        projects.len()
    )];
    Ok(KeystoneFacts { projects, notes })
}

/// How a visible project is offered: `name (id) VO=...`.
pub fn describe_project(p: &Project) -> String {
    match p.property("VO") {
        Some(vo) => format!("{} ({}) VO={vo}", p.name, p.id),
        None => format!("{} ({})", p.name, p.id),
    }
}

/// Resolve a project answer against the visible projects.
pub fn resolve<'p>(want: &ProjectRef, visible: &'p [Project]) -> Option<&'p Project> {
    match want {
        ProjectRef::Id(id) => visible.iter().find(|p| p.id == *id),
        ProjectRef::Name { name, .. } => visible.iter().find(|p| p.name == *name),
    }
}

/// `vos`: every project is one the credential sees; answers become ids
/// (names kept as comments).
pub fn vos(a: &mut Answers, visible: &[Project]) -> Result<Notes, String> {
    if a.vos.is_empty() {
        return Err("no VO given".into());
    }
    let mut notes = Notes::new();
    let mut unknown = Vec::new();
    for vo in &mut a.vos {
        if vo.projects.is_empty() {
            return Err(format!("VO {} has no project", vo.name));
        }
        if vo.auth.is_some() {
            notes.push(format!(
                "VO {} keeps its own credential (not checked here; `appliance doctor` does)",
                vo.name
            ));
            continue;
        }
        let mut found = Vec::new();
        for pr in &mut vo.projects {
            match resolve(pr, visible) {
                Some(p) => {
                    if let Some(v) = p.property("VO").filter(|v| *v != vo.name) {
                        notes.push(warn(format!(
                            "project {} has the Keystone property VO={v}, but serves {} here",
                            p.name, vo.name
                        )));
                    }
                    a.project_names.insert(p.id.clone(), p.name.clone());
                    *pr = ProjectRef::Id(p.id.clone());
                    found.push(p.name.clone());
                }
                None => unknown.push(project_text(pr)),
            }
        }
        notes.push(format!("{}: {}", vo.name, found.join(", ")));
    }
    if !unknown.is_empty() {
        let seen: Vec<String> = visible.iter().map(|p| p.name.clone()).collect();
        return Err(format!(
            "{} {} not among the projects the credential can see ({})",
            if unknown.len() == 1 {
                "project"
            } else {
                "projects"
            },
            unknown.join(", ") + if unknown.len() == 1 { " is" } else { " are" },
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ));
    }
    Ok(notes)
}

fn read_material(m: &Material, what: &str) -> Result<Vec<u8>, String> {
    match m {
        Material::File(p) => {
            std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
        }
        Material::Pem(s) => Ok(s.expose().as_bytes().to_vec()),
    }
}

fn shown(m: &Material, what: &str) -> String {
    match m {
        Material::File(p) => format!("{what} {}", p.display()),
        Material::Pem(_) => format!("the pasted {what}"),
    }
}

/// What the host certificate check found.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// The subject, slash form (GOCDB's Host DN).
    pub dn: String,
    /// Notes.
    pub notes: Notes,
}

/// `host-certificate`: both parse, the key belongs to the certificate, it
/// is valid at `now` (warning under 30 days).
pub fn host_cert(h: &HostCertAnswers, now: SystemTime) -> Result<CertFacts, String> {
    let cert_pem = read_material(&h.certificate, "certificate")?;
    let cert = X509::from_pem(&cert_pem).map_err(|_| {
        format!(
            "{} is not a PEM certificate",
            shown(&h.certificate, "certificate")
        )
    })?;
    let key_pem = crate::messaging::identity::Zeroizing(read_material(&h.key, "key")?);
    let key: PKey<Private> = PKey::private_key_from_pem(&key_pem.0).map_err(|_| {
        format!(
            "{} is not an unencrypted PEM private key",
            shown(&h.key, "key")
        )
    })?;
    let public = cert.public_key().map_err(|e| e.to_string())?;
    if !public.public_eq(&key) {
        return Err(format!(
            "the key does not match the certificate ({} does not belong to {})",
            shown(&h.key, "key"),
            shown(&h.certificate, "certificate")
        ));
    }
    let dn = crate::messaging::identity::slash_dn(cert.subject_name());
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let at = |t: SystemTime| openssl::asn1::Asn1Time::from_unix(secs(t)).map_err(|e| e.to_string());
    if cert.not_before() > at(now)? {
        return Err(format!(
            "the certificate of {dn} is not valid before {}",
            cert.not_before()
        ));
    }
    if cert.not_after() < at(now)? {
        return Err(format!(
            "the certificate of {dn} expired on {}",
            cert.not_after()
        ));
    }
    let mut notes = vec![format!(
        "certificate of {dn}, valid until {}",
        cert.not_after()
    )];
    if cert.not_after() < at(now + CERT_WARN)? {
        notes.push(warn(format!(
            "the host certificate expires within 30 days ({}): renew it",
            cert.not_after()
        )));
    }
    Ok(CertFacts { dn, notes })
}

/// What is in a CA directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustFacts {
    /// `<hash>.0` CA certificates.
    pub cas: usize,
    /// `<hash>.r0` CRLs.
    pub crls: usize,
}

/// Count the CAs and CRLs of a hashed CA directory.
pub fn count_ca_dir(dir: &Path) -> Result<TrustFacts, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} does not exist or is not a directory",
            dir.display()
        ));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut f = TrustFacts::default();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some((hash, ext)) = name.rsplit_once('.') {
            if hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                if ext.len() == 1 && ext.bytes().all(|b| b.is_ascii_digit()) {
                    f.cas += 1;
                } else if ext.starts_with('r') && ext[1..].bytes().all(|b| b.is_ascii_digit()) {
                    f.crls += 1;
                }
            }
        }
    }
    Ok(f)
}

/// `trust-anchors`: the directory exists; warnings when it has no CA or
/// no CRL.
pub fn trust(dir: &Path) -> Result<(TrustFacts, Notes), String> {
    let f = count_ca_dir(dir)?;
    let mut notes = vec![format!(
        "{}: {} CA certificate(s), {} CRL(s)",
        dir.display(),
        f.cas,
        f.crls
    )];
    if f.cas == 0 {
        notes.push(warn(format!(
            "{} holds no CA certificate (<hash>.0): install the IGTF trust anchors (Debian: the EGI trustanchors repository, ca-policy-egi-core)",
            dir.display()
        )));
    }
    if f.cas > 0 && f.crls == 0 {
        notes.push(warn(format!(
            "{} has no CRL (<hash>.r0): signatures cannot be checked for revocation until `appliance crl refresh` runs",
            dir.display()
        )));
    }
    Ok((f, notes))
}

/// What the image sources declare.
#[derive(Debug, Clone, Default)]
pub struct ImagesFacts {
    /// Sum of `hv:size` of every image of every list.
    pub declared_bytes: u64,
    /// Notes.
    pub notes: Notes,
}

/// `images`: each list is fetched and its signature verified against the
/// CA directory, its signer must be the expected endorser (its CA is
/// filled in); each registry's robot account lists its projects.
pub async fn images(
    a: &mut Answers,
    fetcher: &crate::images::fetch::Fetcher,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ImagesFacts, String> {
    let mut facts = ImagesFacts::default();
    let ca_dir = a.trust.ca_dir.clone();
    let relax = crate::images::smime::Relax::default();
    for l in &mut a.images.lists {
        let body = fetcher
            .get_source(&l.source, l.token.as_ref())
            .await
            .map_err(|e| format!("list {}: {e}", l.name))?;
        let verified = crate::images::smime::verify(&body, &ca_dir, now, relax).map_err(|e| {
            format!(
                "list {}: the signature does not verify against {}: {e}",
                l.name,
                ca_dir.display()
            )
        })?;
        if verified.signer.dn != l.endorser_dn {
            return Err(format!(
                "list {} is signed by {}, not by the expected endorser {}",
                l.name, verified.signer.dn, l.endorser_dn
            ));
        }
        if let Some(ca) = &l.endorser_ca {
            if *ca != verified.signer.ca {
                return Err(format!(
                    "list {}: the endorser's certificate is issued by {}, not by {ca}",
                    l.name, verified.signer.ca
                ));
            }
        }
        l.endorser_ca = Some(verified.signer.ca.clone());
        let list = crate::images::list::parse(&verified.content)
            .map_err(|e| format!("list {}: {e}", l.name))?;
        let size: u64 = list.images.iter().map(|i| i.size).sum();
        facts.declared_bytes += size;
        facts.notes.push(format!(
            "list {}: signed by {} ({}), {} image(s), {} declared",
            l.name,
            verified.signer.dn,
            verified.signer.ca,
            list.images.len(),
            human_bytes(size)
        ));
        if list.expires < now {
            facts
                .notes
                .push(warn(format!("list {} expired on {}", l.name, list.expires)));
        }
    }
    for r in &a.images.registries {
        let creds = match (&r.robot, &r.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (Some(u), None) => {
                return Err(format!(
                    "registry {}: the password of robot account {u} is missing",
                    r.name
                ))
            }
            _ => None,
        };
        let h = crate::images::harbor::Harbor::new(fetcher.client(), r.url.clone(), creds);
        let mut n = 0;
        for p in &r.projects {
            let repos = h
                .repositories(p)
                .await
                .map_err(|e| format!("registry {}: cannot list project {p}: {e}", r.name))?;
            n += repos.len();
        }
        facts.notes.push(format!(
            "registry {}: {} repositor(ies) in {}",
            r.name,
            n,
            r.projects.join(", ")
        ));
    }
    Ok(facts)
}

/// Bytes for people (`1.5 GiB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Read `lsblk --json` (empty when lsblk is missing or fails).
pub fn lsblk() -> Result<Vec<BlockDevice>, String> {
    let out = std::process::Command::new("lsblk")
        .args([
            "--json",
            "-b",
            "-o",
            "NAME,PATH,TYPE,SIZE,FSTYPE,LABEL,MOUNTPOINTS,RO",
        ])
        .output()
        .map_err(|e| format!("cannot run lsblk: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "lsblk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    crate::setup::disk::parse_lsblk(&out.stdout)
}

/// Whether `blkid -p` finds any signature (file system, partition table,
/// RAID member) on `dev`: `Some(description)` if so.
pub fn probe_signature(dev: &Path) -> Result<Option<String>, String> {
    let out = std::process::Command::new("blkid")
        .arg("-p")
        .arg(dev)
        .output()
        .map_err(|e| format!("cannot run blkid: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )),
        Some(2) => Ok(None),
        _ => Err(format!(
            "blkid -p {} failed: {}",
            dev.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn nearest_existing(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    while !cur.exists() {
        match cur.parent() {
            Some(par) => cur = par.to_path_buf(),
            None => return PathBuf::from("/"),
        }
    }
    cur
}

/// `image-data`: a device must be a bare disk (no signature either); the
/// space (device size, else the directory's file system) is compared with
/// what the lists declare.
pub fn image_data(a: &Answers, devices: &[BlockDevice], declared: u64) -> Result<Notes, String> {
    let d = &a.image_data;
    if !d.directory.is_absolute() {
        return Err(format!("{} is not an absolute path", d.directory.display()));
    }
    let mut notes = Notes::new();
    let space = match &d.device {
        Some(dev) => {
            let canon = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.clone());
            let found = devices
                .iter()
                .find(|b| b.node() == *dev || b.node() == canon)
                .ok_or_else(|| format!("{} is not a block device lsblk knows", dev.display()))?;
            if let Some(why) = found.unsuitable() {
                return Err(format!("{} cannot be used: {why}", dev.display()));
            }
            if let Some(sig) = probe_signature(dev)? {
                return Err(format!(
                    "{} is not empty (blkid: {sig}); it is not formatted",
                    dev.display()
                ));
            }
            notes.push(format!(
                "{} ({}) will get an ext4 file system labelled {} mounted at {}",
                dev.display(),
                human_bytes(found.size),
                crate::setup::answers::IMAGE_DATA_LABEL,
                d.directory.display()
            ));
            found.size
        }
        None => {
            let at = nearest_existing(&d.directory);
            if at.exists() && !at.is_dir() {
                return Err(format!("{} is not a directory", at.display()));
            }
            crate::images::fetch::free_space(&at)
                .map_err(|e| format!("cannot read the free space of {}: {e}", at.display()))?
        }
    };
    // Two copies at most during a conversion, plus the fetcher's margin.
    let need =
        declared.saturating_mul(2) + crate::images::fetch::Limits::default().free_space_margin;
    if declared > 0 && space < need {
        notes.push(warn(format!(
            "{} available, the subscriptions declare {} (about {} needed with conversions)",
            human_bytes(space),
            human_bytes(declared),
            human_bytes(need)
        )));
    } else {
        notes.push(format!(
            "{} available for images ({} declared by the lists)",
            human_bytes(space),
            human_bytes(declared)
        ));
    }
    Ok(notes)
}

/// `ams`: the broker answers on its port (a warning otherwise: the spool
/// keeps the records until it does).
pub async fn ams(a: &Answers) -> Notes {
    let addr = format!("{}:{}", a.ams.host, a.ams.port);
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => vec![format!("{addr} answers")],
        Ok(Err(e)) => vec![warn(format!(
            "{addr}: {e} (records wait in the spool until it answers)"
        ))],
        Err(_) => vec![warn(format!(
            "{addr}: no answer in 10 s (records wait in the spool until it answers)"
        ))],
    }
}
