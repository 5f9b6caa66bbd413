//! `fedcloud-testsrv`: the project's own test services, one per subcommand
//! (see `fedcloud_appliance::testsrv`). Each binds a loopback address,
//! prints `READY <addr>` on stdout once it accepts connections, logs one line
//! per request on stderr, and exits 0 on SIGTERM or SIGINT.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use fedcloud_appliance::testsrv::{
    self, ams, fault_proxy, files, gocdb, harbor, nova_sim, oidc, tls::TlsOptions, tls_proxy,
    Server,
};
use url::Url;

/// Test stand-ins for the services an EGI FedCloud site talks to (AMS,
/// GOCDB, image-list servers, an OIDC front end for Keystone) and two
/// helper proxies. Loopback only.
#[derive(Debug, Parser)]
#[command(name = "fedcloud-testsrv", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// ARGO Messaging Service over HTTPS: authx509 token, topics, publish.
    Ams(AmsArgs),
    /// GOCDB public PI: get_service / get_service_endpoint XML.
    Gocdb(GocdbArgs),
    /// Static files with ranges, validators and optional Basic auth.
    Files(FilesArgs),
    /// Harbor v2.0 API (projects, repositories, artifacts) in front of an
    /// OCI registry, which it also serves under /v2/; with --token-key, also
    /// Harbor's registry token service (/service/token).
    Harbor(HarborArgs),
    /// Push a disk image to an OCI registry as an EGI VM image artifact;
    /// prints `DIGEST <manifest digest> LAYER <layer digest>` (not a server).
    OciPush(OciPushArgs),
    /// Apache + mod_auth_openidc stand-in in front of Keystone.
    Oidc(OidcArgs),
    /// TLS-terminating reverse proxy.
    TlsProxy(TlsProxyArgs),
    /// Plain-HTTP reverse proxy with fault injection (POST /__fault).
    FaultProxy(FaultProxyArgs),
    /// Keystone + Nova (+ Glance, Cinder, Neutron listings) simulator with
    /// many servers, for accounting benchmarks.
    NovaSim(NovaSimArgs),
}

#[derive(Debug, Args)]
struct Listen {
    /// Loopback address to listen on, e.g. 127.0.0.1:8443 (port 0: any free port).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
struct AmsArgs {
    #[command(flatten)]
    listen: Listen,
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// Hashed CA directory for client certificates (authx509).
    #[arg(long, value_name = "DIR")]
    client_ca_dir: PathBuf,
    /// Where accepted messages are stored (messages/<id>.json).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// The AMS project.
    #[arg(long, default_value = "accounting")]
    project: String,
    /// Token publishers must send and authx509 hands out (default: random,
    /// printed on stderr).
    #[arg(long)]
    token: Option<String>,
    /// A topic that exists (repeatable; default: every topic exists).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// A client certificate DN, slash form, that authx509 accepts
    /// (repeatable; default: any certificate that verifies).
    #[arg(long = "allowed-dn", value_name = "DN")]
    allowed_dns: Vec<String>,
    /// Largest accepted message data (base64 text), in bytes.
    #[arg(long, default_value_t = ams::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
}

#[derive(Debug, Args)]
struct GocdbArgs {
    #[command(flatten)]
    listen: Listen,
    /// An org.openstack.nova service: NAME,ENDPOINT_URL,ENDPOINT_ID[,HOSTDN]
    /// (repeatable), e.g. TEST-SITE,https://127.0.0.1:5000/v3,12249G0. With
    /// HOSTDN the site is registered as an appliance needs: the nova service
    /// and the site's eu.egi.cloud.accounting service both carry that DN.
    #[arg(long = "site", value_name = "SPEC", required = true)]
    sites: Vec<String>,
}

#[derive(Debug, Args)]
struct FilesArgs {
    #[command(flatten)]
    listen: Listen,
    /// Directory to serve.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Require this token (HTTP Basic user name, as TOKEN:x-oauth-basic).
    #[arg(long)]
    token: Option<String>,
}

#[derive(Debug, Args)]
struct HarborArgs {
    #[command(flatten)]
    listen: Listen,
    /// The OCI registry behind it (http://127.0.0.1:PORT).
    #[arg(long, value_name = "URL")]
    registry: Url,
    /// Require HTTP Basic auth with this user (robot account; with
    /// --password or --password-file).
    #[arg(long, requires = "secret")]
    user: Option<String>,
    /// The password for --user.
    #[arg(long, requires = "user", group = "secret")]
    password: Option<String>,
    /// File holding the password for --user (first line).
    #[arg(long, value_name = "FILE", requires = "user", group = "secret")]
    password_file: Option<PathBuf>,
    /// Be the registry's token service, signing with this RSA key (PEM);
    /// the registry runs with `auth: token` trusting --token-cert.
    #[arg(long, value_name = "FILE", requires = "token_cert")]
    token_key: Option<PathBuf>,
    /// The certificate of --token-key (PEM; the registry's rootcertbundle).
    #[arg(long, value_name = "FILE", requires = "token_key")]
    token_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct OciPushArgs {
    /// The registry (or a Harbor front forwarding /v2/), e.g. http://127.0.0.1:5050.
    #[arg(long, value_name = "URL")]
    registry: Url,
    /// Fetch a push token here first (registry in token mode), e.g.
    /// http://127.0.0.1:8446/service/token.
    #[arg(long, value_name = "URL")]
    token_service: Option<Url>,
    /// The registry's token service name.
    #[arg(long, default_value = "harbor-registry", requires = "token_service")]
    service: String,
    /// Robot account for the token service.
    #[arg(long, requires_all = ["token_service", "password_file"])]
    user: Option<String>,
    /// File holding the robot's password (first line).
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,
    /// Repository, e.g. egi_vm_images/ubuntu.
    #[arg(long)]
    repo: String,
    /// Tag (repeatable).
    #[arg(long = "tag", value_name = "TAG", required = true)]
    tags: Vec<String>,
    /// The disk image file (streamed).
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    /// A manifest and layer annotation KEY=VALUE (repeatable), e.g.
    /// eu.egi.cloud.tag=24.04.
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The first line of a password file.
fn read_password(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(!pw.is_empty(), "{}: empty password file", path.display());
    Ok(pw)
}

async fn oci_push(a: OciPushArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let credentials = match (&a.user, &a.password_file) {
        (Some(u), Some(f)) => Some((u.clone(), read_password(f)?)),
        _ => None,
    };
    let auth = a
        .token_service
        .clone()
        .map(|token_service| harbor::PushAuth {
            token_service,
            service: a.service.clone(),
            credentials,
        });
    let ann: serde_json::Map<String, serde_json::Value> = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let tags: Vec<&str> = a.tags.iter().map(String::as_str).collect();
    let p = harbor::push_image(
        &client,
        &a.registry,
        &a.repo,
        &tags,
        harbor::Disk::File(&a.file),
        &serde_json::Value::Object(ann),
        auth.as_ref(),
    )
    .await
    .with_context(|| format!("pushing {} to {}/{}", a.file.display(), a.registry, a.repo))?;
    println!("DIGEST {} LAYER {}", p.manifest, p.layer);
    Ok(())
}

#[derive(Debug, Args)]
struct OidcArgs {
    #[command(flatten)]
    listen: Listen,
    /// Keystone (plain HTTP, loopback), e.g. http://127.0.0.1:5000.
    #[arg(long, value_name = "URL")]
    upstream: Url,
    /// Issuer passed on as OIDC-iss.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// A known access token: TOKEN=SUB[:GROUP1;GROUP2] (repeatable).
    #[arg(long = "token", value_name = "SPEC")]
    tokens: Vec<String>,
}

#[derive(Debug, Args)]
struct TlsProxyArgs {
    #[command(flatten)]
    listen: Listen,
    /// Plain-HTTP upstream on loopback.
    #[arg(long, value_name = "URL")]
    upstream: Url,
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Also request (not require) client certificates from this hashed CA
    /// directory and name its CAs in the certificate request.
    #[arg(long, value_name = "DIR")]
    client_ca_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FaultProxyArgs {
    #[command(flatten)]
    listen: Listen,
    /// Plain-HTTP upstream on loopback.
    #[arg(long, value_name = "URL")]
    upstream: Url,
}

#[derive(Debug, Args)]
struct NovaSimArgs {
    #[command(flatten)]
    listen: Listen,
    /// Serve this dataset (JSON, `nova_sim::Dataset`) instead of a synthetic one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["servers", "projects"])]
    dataset: Option<PathBuf>,
    /// Synthetic dataset: this many servers.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Synthetic dataset: spread over this many projects.
    #[arg(long, default_value_t = 100)]
    projects: usize,
    /// Write the dataset served (JSON) here, e.g. to learn its project ids.
    #[arg(long, value_name = "FILE")]
    write_dataset: Option<PathBuf>,
    /// Base URL of the compute endpoint in the catalog (e.g. a fault proxy).
    #[arg(long, value_name = "URL")]
    compute_base: Option<Url>,
    /// Put the project id into the compute endpoint (`/v2.1/<project id>`).
    #[arg(long)]
    project_in_compute_url: bool,
}

/// A `--listen` value: an address that resolves to loopback only.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{s} resolves to no address"))?;
    if addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "{s} is not a loopback address (test servers stay on this machine)"
        ));
    }
    Ok(first)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    if let Command::OciPush(a) = command {
        return oci_push(a).await;
    }
    let server = start(command).await?;
    println!("READY {}", server.addr());
    use std::io::Write as _;
    std::io::stdout().flush().context("writing READY")?;
    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

async fn start(command: Command) -> anyhow::Result<Server> {
    Ok(match command {
        Command::Ams(a) => {
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            let token = a.token.unwrap_or_else(|| {
                let token = random_token();
                eprintln!("[ams] token: {token}");
                token
            });
            let tls = TlsOptions {
                cert: a.tls_cert,
                key: a.tls_key,
                client_ca_dir: Some(a.client_ca_dir),
            };
            let mut opts = ams::AmsOptions::new(Some(tls), a.state_dir, token);
            opts.project = a.project;
            opts.topics = a.topics;
            opts.allowed_dns = a.allowed_dns;
            opts.max_message_bytes = a.max_message_bytes;
            ams::serve(listener, opts)?.server
        }
        Command::Gocdb(a) => {
            let mut services = Vec::new();
            for (i, s) in a.sites.iter().enumerate() {
                let nova = gocdb::GocdbService::parse_site(s)?;
                let acc = nova
                    .host_dn
                    .as_deref()
                    .map(|dn| gocdb::GocdbService::accounting(&nova.site, &format!("9{i}G0"), dn));
                services.push(nova);
                services.extend(acc);
            }
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            gocdb::serve(listener, services)?.server
        }
        Command::Harbor(a) => {
            let password = match (a.password, &a.password_file) {
                (Some(p), _) => Some(p),
                (None, Some(f)) => Some(read_password(f)?),
                (None, None) => None,
            };
            let opts = harbor::HarborOptions {
                registry: a.registry,
                credentials: a.user.zip(password),
            };
            let issuer = match (&a.token_key, &a.token_cert) {
                (Some(k), Some(c)) => Some(testsrv::registry_token::TokenIssuer::from_files(k, c)?),
                _ => None,
            };
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            match issuer {
                Some(i) => harbor::serve_with_tokens(listener, opts, i)?.server,
                None => harbor::serve(listener, opts)?.server,
            }
        }
        Command::Files(a) => {
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            files::serve(
                listener,
                files::FilesOptions {
                    root: a.root,
                    token: a.token,
                },
            )?
            .server
        }
        Command::Oidc(a) => {
            let tokens = a
                .tokens
                .iter()
                .map(|t| oidc::OidcToken::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            oidc::serve(
                listener,
                oidc::OidcOptions {
                    upstream: a.upstream,
                    issuer: a.issuer,
                    tokens,
                },
            )?
        }
        Command::TlsProxy(a) => {
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            let tls = TlsOptions {
                cert: a.cert,
                key: a.key,
                client_ca_dir: a.client_ca_dir,
            };
            tls_proxy::serve(
                listener,
                tls_proxy::TlsProxyOptions {
                    upstream: a.upstream,
                    tls,
                },
            )?
        }
        Command::FaultProxy(a) => {
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            fault_proxy::serve(listener, &a.upstream)?.0
        }
        Command::OciPush(_) => anyhow::bail!("oci-push is not a server"),
        Command::NovaSim(a) => {
            let data = match &a.dataset {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{}: not a nova-sim dataset", f.display()))?
                }
                None => nova_sim::Dataset::synthetic(a.servers, a.projects, chrono::Utc::now()),
            };
            if let Some(f) = &a.write_dataset {
                std::fs::write(f, serde_json::to_vec(&data)?)
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            let listener = testsrv::bind_loopback(a.listen.listen).await?;
            let options = nova_sim::Options {
                public_base: None,
                compute_base: a.compute_base,
                project_in_compute_url: a.project_in_compute_url,
            };
            nova_sim::serve(listener, data, options)?.server
        }
    })
}

fn random_token() -> String {
    use rand::Rng as _;
    let bytes: [u8; 20] = rand::rng().random();
    hex::encode(bytes)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_must_be_loopback() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("[::1]:8080").is_ok());
        assert!(parse_listen("0.0.0.0:8080").is_err());
        assert!(parse_listen("192.0.2.1:80").is_err());
    }
}
