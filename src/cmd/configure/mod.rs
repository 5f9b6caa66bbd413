//! `appliance configure`: the first-boot wizard. Interactive on a terminal,
//! from an answers file (`--answers FILE`), or at first boot from OpenStack
//! user data (`--user-data`: config drive, else the metadata service).
//!
//! Whatever the source, the answers are checked live (`checks`), the new
//! `appliance.yaml` and secrets file are rendered and merged into the files
//! already there (`crate::setup::render`), must pass `config check`, and
//! only then are written (atomically, owners and modes set), followed by
//! the `/image_data` disk, the timers of the enabled components and the
//! "configured" marker. Until the last confirmation nothing is written:
//! Ctrl-C leaves the previous configuration byte for byte.

mod apply;
mod checks;
mod wizard;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use url::Url;

use crate::cli::{GlobalArgs, DEFAULT_CONFIG};
use crate::config;
use crate::exit::{Outcome, UsageError};
use crate::setup::answers::{self, under, Answers, Section};
use crate::setup::userdata::{self, UserData};

/// The metadata service's user data.
pub const METADATA_URL: &str = "http://169.254.169.254/openstack/latest/user_data";

const HELP: &str = "\
Sources of the answers:
  (none)          ask on the terminal; every question has a default (the current
                  configuration, else the appliance's defaults)
  --answers FILE  a YAML file with the same sections and keys as the questions
  --user-data     OpenStack user data (first boot): the config drive
                  (openstack/latest/user_data of the `config-2` file system, or
                  --config-drive DIR), else the metadata service (--metadata-url;
                  the default one only on an OpenStack instance, told by DMI as
                  cloud-init does).
                  It is ours when its first line is `#appliance-config`; the rest
                  is an answers file. Other user data (e.g. `#cloud-config`) is
                  left alone: nothing is configured, exit 0.

Answers file (every key optional; absent keys keep the current answer;
`appliance configure --example` prints a complete, commented one):
  site:             name, endpoint, endpoint-id, gocdb-url
  keystone:         auth-url, region, auth-type (v3applicationcredential | password),
                    application-credential-id, application-credential-secret,
                    username, user-domain, password, project, project-domain,
                    ca-file, insecure
  vos:              - name: VO, projects: [project name or id, ...]
  host-certificate: certificate, key (a path, or the PEM itself)
  trust-anchors:    ca-dir, refresh-crls
  components:       accounting, info, images, crl-refresh (true | false)
  ams:              host, port, authn-port
  info:             publish-file, swift-container
  images:           lists: [{name, url, token, endorser-dn, endorser-ca, vos}]
                    registries: [{name, url, projects, robot, password, vos}]
  image-data:       directory, device (a bare disk to format), format: true

Secrets in the answers (credential secret, password, tokens, robot password,
a pasted key) go to the secrets file (mode 0600), never to appliance.yaml.";

/// `appliance configure` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = HELP)]
pub struct Args {
    /// Take the answers from this YAML file instead of asking (see --help
    /// for its keys).
    #[arg(long, value_name = "FILE", conflicts_with = "user_data")]
    pub answers: Option<PathBuf>,
    /// First boot: take the answers from OpenStack user data; user data
    /// that is not ours is left alone.
    #[arg(long)]
    pub user_data: bool,
    /// A directory laid out like a config drive
    /// (`openstack/latest/user_data`), instead of the `config-2` device.
    #[arg(long, env = "APPLIANCE_CONFIG_DRIVE", value_name = "DIR")]
    pub config_drive: Option<PathBuf>,
    /// Where the metadata service serves the user data.
    #[arg(long, env = "APPLIANCE_METADATA_URL", value_name = "URL", default_value = METADATA_URL)]
    pub metadata_url: Url,
    /// Change only this section (repeatable); the rest of the configuration
    /// stays as it is, byte for byte.
    #[arg(long, value_enum, value_name = "SECTION")]
    pub only: Vec<Section>,
    /// Check the answers and print the plan (files, /image_data set-up,
    /// timers); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write without asking for confirmation after the summary.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the commented example answers file and exit.
    #[arg(long, conflicts_with_all = ["answers", "user_data", "dry_run"])]
    pub example: bool,
    /// Treat DIR as the root file system (image builds, tests): the default
    /// paths, units and timers go below it.
    #[arg(long, env = "APPLIANCE_ROOT", value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// The configuration already there.
struct Existing {
    /// Its text.
    config: Option<String>,
    /// The secrets file's text.
    secrets: Option<String>,
    /// What it means, as answers.
    answers: Answers,
}

fn read_existing(path: &Path, root: &Path, only: &[Section]) -> anyhow::Result<Existing> {
    let fresh = Existing {
        config: None,
        secrets: None,
        answers: Answers::defaults(root),
    };
    if !path.exists() {
        if !only.is_empty() {
            return Err(UsageError(format!(
                "--only changes a configuration, and there is none at {} yet: run `appliance configure` first",
                path.display()
            ))
            .into());
        }
        return Ok(fresh);
    }
    match config::load(path) {
        Ok(l) => {
            let secrets = std::fs::read_to_string(&l.config.secrets_file).ok();
            Ok(Existing {
                config: Some(std::fs::read_to_string(path)?),
                secrets,
                answers: Answers::from_loaded(&l, root),
            })
        }
        Err(e) if only.is_empty() => {
            tracing::warn!(
                "the current configuration {} has problems; starting from the defaults:\n{e}",
                path.display()
            );
            Ok(fresh)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "--only needs a valid configuration; {} has problems (run `appliance configure` without --only)",
            path.display()
        ))),
    }
}

/// Run `appliance configure`.
pub async fn run(g: &GlobalArgs, args: &Args) -> anyhow::Result<Outcome> {
    if args.example {
        print!("{}", answers::example());
        return Ok(Outcome::Success);
    }
    let root = args.root.clone();
    let config_path = if root != Path::new("/") && g.config == Path::new(DEFAULT_CONFIG) {
        under(&root, DEFAULT_CONFIG)
    } else {
        g.config.clone()
    };
    let only: Vec<Section> = args.only.clone();

    // Where the answers come from.
    let source: Option<(String, String)> = if args.user_data {
        match read_user_data(args).await? {
            None => {
                println!("configure: no user data; nothing configured");
                return Ok(Outcome::Success);
            }
            Some((from, bytes)) => match userdata::classify(&bytes) {
                UserData::Empty => {
                    println!("configure: the user data ({from}) is empty; nothing configured");
                    return Ok(Outcome::Success);
                }
                UserData::Foreign(kind) => {
                    println!(
                        "configure: the user data ({from}) is {kind}, not ours (first line `{}`); left alone, nothing configured",
                        userdata::MARKER
                    );
                    return Ok(Outcome::Success);
                }
                UserData::Ours(text) => Some((from, text)),
            },
        }
    } else if let Some(f) = &args.answers {
        let text = std::fs::read_to_string(f).map_err(|e| {
            UsageError(format!("cannot read the answers file {}: {e}", f.display()))
        })?;
        Some((f.display().to_string(), text))
    } else {
        None
    };

    let existing = read_existing(&config_path, &root, &only)?;
    let before = existing.answers.clone();
    let now = std::time::SystemTime::now();

    let (answers, dn) = match source {
        Some((from, text)) => {
            let mut a = before.clone();
            let given = answers::apply_file(&mut a, Path::new(&from), &text, &only)?;
            let check_sections = sections_to_check(&only, &given, existing.config.is_none());
            let dn = check_all(&mut a, &check_sections, now).await?;
            (a, dn)
        }
        None => {
            if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                return Err(UsageError(
                    "no terminal to ask on: give the answers with --answers FILE (see `appliance configure --help`)".into(),
                )
                .into());
            }
            let sections: Vec<Section> = if only.is_empty() {
                Section::ALL.to_vec()
            } else {
                Section::ALL
                    .iter()
                    .copied()
                    .filter(|s| only.contains(s))
                    .collect()
            };
            let devices = checks::lsblk().unwrap_or_default();
            match interactive(before.clone(), sections, devices).await {
                Ok(done) => (done.answers, done.dn),
                Err(wizard::Stop::Interrupted) => {
                    eprintln!("\nconfigure: interrupted; nothing was written, the configuration is unchanged");
                    return Ok(Outcome::Usage);
                }
                Err(wizard::Stop::Io(e)) => anyhow::bail!("the terminal failed: {e}"),
            }
        }
    };

    let plan = apply::Plan::make(&root, &config_path, &existing, &before, &answers, dn)?;
    plan.print(args.dry_run);
    if args.dry_run {
        println!(
            "\n--- {} (as it would be written) ---",
            config_path.display()
        );
        print!("{}", plan.config_text);
        println!("\ndry run: nothing written");
        return Ok(Outcome::Success);
    }
    if args.answers.is_none() && !args.user_data && !args.yes {
        match tokio::task::spawn_blocking(|| wizard::confirm_write("Write this configuration?"))
            .await?
        {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("configure: nothing written");
                return Ok(Outcome::Success);
            }
            Err(_) => {
                eprintln!(
                    "\nconfigure: interrupted; nothing was written, the configuration is unchanged"
                );
                return Ok(Outcome::Usage);
            }
        }
    }
    plan.apply().await
}

/// The sections to check: `--only`'s (the VO projects are checked again
/// with a new credential); else those the answers gave, or every one for a
/// first configuration.
fn sections_to_check(only: &[Section], given: &[Section], fresh: bool) -> Vec<Section> {
    let mut s: Vec<Section> = if !only.is_empty() {
        only.to_vec()
    } else if fresh {
        Section::ALL.to_vec()
    } else {
        given.to_vec()
    };
    if s.contains(&Section::Keystone) && !s.contains(&Section::Vos) {
        s.push(Section::Vos);
    }
    if s.contains(&Section::TrustAnchors) && !s.contains(&Section::Images) {
        s.push(Section::Images);
    }
    if s.contains(&Section::Images) && !s.contains(&Section::ImageData) {
        s.push(Section::ImageData);
    }
    s.sort();
    s.dedup();
    s
}

/// Check every section of a non-interactive run; all problems at once.
async fn check_all(
    a: &mut Answers,
    sections: &[Section],
    now: std::time::SystemTime,
) -> anyhow::Result<Option<String>> {
    let mut problems: Vec<String> = Vec::new();
    let mut dn = None;
    let mut projects = None;
    let mut declared = 0;
    let say = |section: Section, notes: Vec<String>| {
        for n in notes {
            eprintln!("configure: {}: {n}", section.key());
        }
    };
    for &s in sections {
        if wizard::skip(a, s) {
            continue;
        }
        let r: Result<Vec<String>, String> = match s {
            Section::Site => match checks::http(&a.trust.ca_dir) {
                Ok(f) => checks::site(a, &f.client()).await,
                Err(e) => Err(e),
            },
            Section::Keystone => checks::keystone(a).await.map(|f| {
                projects = Some(f.projects);
                f.notes
            }),
            Section::Vos => {
                if projects.is_none() {
                    match checks::keystone(a).await {
                        Ok(f) => projects = Some(f.projects),
                        Err(e) => {
                            if !sections.contains(&Section::Keystone) {
                                problems.push(format!("keystone: {e}"));
                            }
                        }
                    }
                }
                match &projects {
                    Some(p) => checks::vos(a, p),
                    None => Ok(vec!["not checked: Keystone did not answer".into()]),
                }
            }
            Section::HostCertificate => checks::host_cert(&a.host_certificate, now).map(|f| {
                let mut n = f.notes;
                n.push(format!(
                    "register this Host DN in GOCDB for eu.egi.cloud.accounting and org.openstack.nova: {}",
                    f.dn
                ));
                dn = Some(f.dn);
                n
            }),
            Section::TrustAnchors => checks::trust(&a.trust.ca_dir).map(|(_, n)| n),
            Section::Components | Section::Info => Ok(Vec::new()),
            Section::Ams => Ok(checks::ams(a).await),
            Section::Images => match checks::http(&a.trust.ca_dir) {
                Ok(f) => checks::images(a, &f, chrono::Utc::now()).await.map(|r| {
                    declared = r.declared_bytes;
                    r.notes
                }),
                Err(e) => Err(e),
            },
            Section::ImageData => {
                let devices = if a.image_data.device.is_some() {
                    checks::lsblk().unwrap_or_default()
                } else {
                    Vec::new()
                };
                checks::image_data(a, &devices, declared)
            }
        };
        match r {
            Ok(notes) => say(s, notes),
            Err(e) => problems.push(format!("{}: {e}", s.key())),
        }
    }
    if problems.is_empty() {
        Ok(dn)
    } else {
        Err(UsageError(format!(
            "the answers do not check out; nothing was written:\n  {}",
            problems.join("\n  ")
        ))
        .into())
    }
}

/// The wizard on its own thread; Ctrl-C (SIGINT) stops it from here too,
/// for prompts that read with the terminal's signals on.
async fn interactive(
    answers: Answers,
    sections: Vec<Section>,
    devices: Vec<crate::setup::disk::BlockDevice>,
) -> Result<wizard::Done, wizard::Stop> {
    let saved = apply::TermState::save();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| wizard::Stop::Io(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ctx = wizard::Context {
        rt: tokio::runtime::Handle::current(),
        devices,
    };
    std::thread::spawn(move || {
        let _ = tx.send(wizard::run(answers, &sections, ctx));
    });
    let r = tokio::select! {
        r = rx => r.unwrap_or(Err(wizard::Stop::Interrupted)),
        _ = sigint.recv() => Err(wizard::Stop::Interrupted),
    };
    if r.is_err() {
        saved.restore();
    }
    r
}

/// The user data: `--config-drive DIR`, else the `config-2` file system,
/// else the metadata service. `None` when there is none.
async fn read_user_data(args: &Args) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    const REL: &str = "openstack/latest/user_data";
    if let Some(dir) = &args.config_drive {
        let f = dir.join(REL);
        return match std::fs::read(&f) {
            Ok(b) => Ok(Some((format!("config drive {}", f.display()), b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !dir.join("openstack").is_dir() {
                    return Err(UsageError(format!(
                        "{} is not laid out like a config drive (no openstack/ directory)",
                        dir.display()
                    ))
                    .into());
                }
                Ok(None)
            }
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", f.display())),
        };
    }
    let dev = Path::new("/dev/disk/by-label/config-2");
    if dev.exists() {
        return apply::read_config_drive_device(dev, REL)
            .map(|b| b.map(|b| (format!("config drive {}", dev.display()), b)));
    }
    if args.metadata_url.as_str() == METADATA_URL && !userdata::is_openstack(&read_dmi()) {
        tracing::info!("not an OpenStack instance (DMI): no metadata service to ask");
        return Ok(None);
    }
    fetch_metadata(&args.metadata_url).await
}

/// This machine's DMI strings (empty where the firmware gives none).
fn read_dmi() -> userdata::Dmi {
    let read = |name: &str| {
        std::fs::read_to_string(Path::new("/sys/class/dmi/id").join(name)).unwrap_or_default()
    };
    userdata::Dmi {
        sys_vendor: read("sys_vendor"),
        product_name: read("product_name"),
        chassis_asset_tag: read("chassis_asset_tag"),
    }
}

/// GET the user data from the metadata service, with retries (its proxy is
/// slow at boot); 404 means no user data.
async fn fetch_metadata(url: &Url) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let mut delay = std::time::Duration::from_secs(1);
    let mut last = String::new();
    for attempt in 0..6 {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        match client.get(url.clone()).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(None),
            Ok(r) if r.status().is_success() => {
                let b = r.bytes().await?;
                return Ok(Some((format!("metadata service {url}"), b.to_vec())));
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tracing::info!(attempt, error = %last, "metadata service not answering yet");
    }
    anyhow::bail!("the metadata service {url} did not answer: {last}")
}
