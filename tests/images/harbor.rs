//! The Harbor-API test server (`testsrv::harbor`) in front of a real OCI
//! registry (Debian's `docker-registry`, filesystem store in a temporary
//! directory): an image artifact pushed with plain OCI distribution API
//! calls, with EGI's annotations, shows up as Harbor project ->
//! repository -> artifact (tags, annotations, pagination), and its layer
//! pulls back with the sha256 digest the manifest names.
//!
//! Token mode, as `registry.egi.eu` runs: the registry itself guards `/v2/`
//! with `auth: token` (its own 401 + `WWW-Authenticate: Bearer ...`
//! challenge) and trusts the tokens the front's `/service/token` signs for
//! the robot account; the project's `Harbor` client gets through the
//! challenge, a token is good for its repository only, and the token
//! service refuses wrong robot credentials. `fedcloud-testsrv oci-push`
//! publishes a disk file into it.
//!
//! The peer's own client: EGI's atrope 2.1 reads manifests and pulls
//! layers with oras-py (`auth_backend="basic"`); the same calls, run with
//! the reference site's peers Python, pull through the site's front.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedcloud_appliance::images::harbor::{BlobAuth, Harbor};
use fedcloud_appliance::secret::Secret;
use fedcloud_appliance::testsrv::harbor;
use fedcloud_appliance::testsrv::registry_token::{Access, TokenIssuer};
use serde_json::{json, Value};
use url::Url;

use super::sync::{block_on, random_bytes};

/// `docker-registry serve` on 127.0.0.1, killed on drop.
pub(super) struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub(super) url: String,
}

impl Registry {
    /// Without authentication.
    pub(super) fn start() -> Registry {
        Registry::start_with(|_| String::new())
    }

    /// With extra top-level configuration (e.g. an `auth:` section), made
    /// from the registry's temporary directory.
    pub(super) fn start_with(extra: impl FnOnce(&std::path::Path) -> String) -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is needed for the Harbor tests: apt-get install docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{}",
                dir.path().join("data").display(),
                extra(dir.path())
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut reg = Registry {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let t = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(st)) = reg.child.try_wait() {
                panic!("docker-registry exited ({st}): {}", reg.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "docker-registry did not start: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Its log so far (for failure messages).
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Harbor front with robot credentials (`robot$sync`, `s3cret`) over
/// `reg`, served on the shared test runtime; its base URL.
pub(super) fn harbor_front(reg: &Registry) -> (harbor::HarborServer, Url) {
    let h = super::sync::serve_on_loopback(|l| {
        harbor::serve(
            l,
            harbor::HarborOptions {
                registry: Url::parse(&reg.url).unwrap(),
                credentials: Some(("robot$sync".into(), "s3cret".into())),
            },
        )
        .unwrap()
    });
    let base = Url::parse(&format!("http://{}", h.server.addr())).unwrap();
    (h, base)
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(openssl::sha::sha256(b)))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Push a disk image as an OCI artifact the way EGI publishes VM images
/// (`testsrv::harbor::push_image`, no auth): (manifest digest, layer digest).
pub(super) async fn push_image(
    base: &str,
    repo: &str,
    tags: &[&str],
    disk: &[u8],
    annotations: &Value,
) -> (String, String) {
    let p = harbor::push_image(
        &client(),
        &url::Url::parse(base).unwrap(),
        repo,
        tags,
        harbor::Disk::Bytes(disk),
        annotations,
        None,
    )
    .await
    .unwrap();
    (p.manifest, p.layer)
}

#[test]
fn harbor_api_over_a_real_registry() {
    let reg = Registry::start();
    let disk = random_bytes(700_000);
    let ann = json!({
        "eu.egi.cloud.tag": "24.04",
        "eu.egi.cloud.description": "Ubuntu 24.04 for EGI",
        "org.openstack.glance.architecture": "x86_64",
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "24.04",
        "org.openstack.glance.disk_format": "raw"
    });
    block_on(async {
        let (h, front) = harbor_front(&reg);
        let front = front.as_str().trim_end_matches('/').to_string();
        // Test setup pushes straight to the registry.
        let (manifest_digest, layer) = push_image(
            &reg.url,
            "egi_vm_images/ubuntu",
            &["24.04", "24.04-2026.01"],
            &disk,
            &ann,
        )
        .await;
        push_image(
            &reg.url,
            "egi_vm_images/alma",
            &["9"],
            b"alma-disk",
            &json!({"eu.egi.cloud.tag": "9"}),
        )
        .await;
        push_image(&reg.url, "vo.alpha/tool", &["1"], b"tool", &json!({})).await;

        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        let get = |path: String| {
            let c = c.clone();
            let front = front.clone();
            async move {
                c.get(format!("{front}{path}"))
                    .basic_auth("robot$sync", Some("s3cret"))
                    .send()
                    .await
                    .unwrap()
            }
        };
        // Credentials are required.
        let r = c
            .get(format!("{front}/api/v2.0/projects"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));

        let r = get("/api/v2.0/projects".into()).await;
        assert_eq!(r.status(), 200, "{:?}", r.headers());
        assert_eq!(r.headers()["x-total-count"], "2");
        let projects: Value = r.json().await.unwrap();
        let names: Vec<&str> = projects
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["egi_vm_images", "vo.alpha"]);

        // Pagination with Link rel="next".
        let r =
            get("/api/v2.0/projects/egi_vm_images/repositories?page=1&page_size=1".into()).await;
        assert_eq!(r.headers()["x-total-count"], "2");
        let link = r.headers()["link"].to_str().unwrap().to_string();
        assert!(
            link.contains("page=2") && link.contains("rel=\"next\""),
            "{link}"
        );
        let first: Value = r.json().await.unwrap();
        assert_eq!(first[0]["name"], "egi_vm_images/alma");
        let next = link
            .split(';')
            .next()
            .unwrap()
            .trim()
            .trim_matches(|c| c == '<' || c == '>')
            .to_string();
        let r = get(next).await;
        assert!(
            !r.headers().contains_key("link")
                || !r.headers()["link"].to_str().unwrap().contains("next")
        );
        let second: Value = r.json().await.unwrap();
        assert_eq!(second[0]["name"], "egi_vm_images/ubuntu");

        // Artifacts: one per digest, both tags, annotations.
        {
            let r = get(format!(
                "/api/v2.0/projects/egi_vm_images/repositories/{}/artifacts?with_tag=true&with_scan_overview=false&with_label=false&with_accessory=true&page=1&page_size=50",
                "ubuntu"
            ))
            .await;
            assert_eq!(r.status(), 200);
            let arts: Value = r.json().await.unwrap();
            assert_eq!(arts.as_array().unwrap().len(), 1, "{arts:#}");
            let a = &arts[0];
            assert_eq!(a["digest"], manifest_digest);
            let tags: Vec<&str> = a["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert_eq!(tags, vec!["24.04", "24.04-2026.01"]);
            assert_eq!(a["annotations"]["eu.egi.cloud.tag"], "24.04");
            assert_eq!(
                a["manifest_media_type"],
                "application/vnd.oci.image.manifest.v1+json"
            );
        }
        let r = get("/api/v2.0/projects/egi_vm_images/repositories/nope/artifacts".into()).await;
        assert_eq!(r.status(), 404);

        // The registry through the front: manifest, then the layer, whose
        // bytes hash to the digest.
        let r = c
            .get(format!("{front}/v2/egi_vm_images/ubuntu/manifests/24.04"))
            .basic_auth("robot$sync", Some("s3cret"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["layers"][0]["digest"], layer);
        assert_eq!(
            m["layers"][0]["annotations"]["org.openstack.glance.os_distro"],
            "ubuntu"
        );
        let r = c
            .get(format!("{front}/v2/egi_vm_images/ubuntu/blobs/{layer}"))
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        assert_eq!(sha256(&bytes), layer);
        assert_eq!(bytes.len(), disk.len());
        let s = h.stats();
        assert!(
            s.api == 5 && s.registry == 2 && s.unauthorized == 1,
            "{s:?}"
        );
    });
}

/// A registry in token mode behind a Harbor front that is its token
/// service, robot `robot$sync` / `s3cret`.
struct TokenSite {
    reg: Registry,
    front: harbor::HarborServer,
    url: Url,
}

async fn token_site() -> TokenSite {
    let issuer = TokenIssuer::generate().unwrap();
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_l.set_nonblocking(true).unwrap();
    let url = Url::parse(&format!("http://{}", std_l.local_addr().unwrap())).unwrap();
    let reg = Registry::start_with(|dir| {
        let cert = dir.join("token-cert.pem");
        std::fs::write(&cert, issuer.cert_pem()).unwrap();
        harbor::registry_config(&url, &issuer, &cert)
    });
    let front = harbor::serve_with_tokens(
        tokio::net::TcpListener::from_std(std_l).unwrap(),
        harbor::HarborOptions {
            registry: Url::parse(&reg.url).unwrap(),
            credentials: Some(("robot$sync".into(), "s3cret".into())),
        },
        issuer,
    )
    .unwrap();
    TokenSite { reg, front, url }
}

impl TokenSite {
    fn push_auth(&self, password: &str) -> harbor::PushAuth {
        harbor::PushAuth {
            token_service: self.url.join("/service/token").unwrap(),
            service: "harbor-registry".into(),
            credentials: Some(("robot$sync".into(), password.into())),
        }
    }

    /// A token for `scopes` with the robot's credentials.
    async fn token(&self, scopes: &[&str]) -> String {
        let mut u = self.url.join("/service/token").unwrap();
        u.query_pairs_mut()
            .append_pair("service", "harbor-registry");
        for s in scopes {
            u.query_pairs_mut().append_pair("scope", s);
        }
        let r = client()
            .get(u)
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token"], v["access_token"]);
        assert!(v["expires_in"].as_u64().unwrap() > 0, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn harbor_token_auth_on_a_real_registry() {
    block_on(async {
        let site = token_site().await;
        let disk = random_bytes(500_000);
        let ann = json!({"eu.egi.cloud.tag": "24.04", "org.openstack.glance.os_distro": "ubuntu"});
        let c = client();

        // Publishing: a push token from the token service, through the front.
        let wrong = harbor::push_image(
            &c,
            &site.url,
            "egi_vm_images/ubuntu",
            &["24.04"],
            harbor::Disk::Bytes(&disk),
            &ann,
            Some(&site.push_auth("wrong")),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(wrong, harbor::PushError::Status { status: 401, .. }),
            "{wrong}"
        );
        // Without a token the registry refuses the push itself.
        let anonymous = harbor::push_image(
            &c,
            &site.url,
            "egi_vm_images/ubuntu",
            &["24.04"],
            harbor::Disk::Bytes(&disk),
            &ann,
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(anonymous, harbor::PushError::Status { status: 401, .. }),
            "{anonymous}"
        );
        let pushed = harbor::push_image(
            &c,
            &site.url,
            "egi_vm_images/ubuntu",
            &["24.04"],
            harbor::Disk::Bytes(&disk),
            &ann,
            Some(&site.push_auth("s3cret")),
        )
        .await
        .unwrap();
        harbor::push_image(
            &c,
            &Url::parse(&site.reg.url).unwrap(),
            "egi_vm_images/alma",
            &["9"],
            harbor::Disk::Bytes(b"alma-disk"),
            &json!({"eu.egi.cloud.tag": "9"}),
            Some(&site.push_auth("s3cret")),
        )
        .await
        .unwrap();

        // No token: the registry's own challenge, at the registry and
        // through the front, naming the front's token service.
        let manifest = |base: &str, repo: &str, tag: &str| {
            c.get(format!("{base}/v2/{repo}/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
        };
        let front = site.url.as_str().trim_end_matches('/').to_string();
        for base in [site.reg.url.as_str(), front.as_str()] {
            let r = manifest(base, "egi_vm_images/ubuntu", "24.04")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{base}");
            let ch = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(
                ch,
                format!(
                    "Bearer realm=\"{front}/service/token\",service=\"harbor-registry\",scope=\"repository:egi_vm_images/ubuntu:pull\""
                ),
                "{base}"
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body}");
        }
        // Robot Basic credentials are not a registry token for the
        // registry itself; the front takes them as Harbor core does (the
        // request goes on with a token for exactly its access), refuses
        // wrong ones with Harbor's Basic challenge, and never lets a robot
        // read the catalog.
        let r = manifest(&site.reg.url, "egi_vm_images/ubuntu", "24.04")
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let basic_before = site.front.stats().registry_basic;
        let r = manifest(&front, "egi_vm_images/ubuntu", "24.04")
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["docker-content-digest"],
            pushed.manifest.as_str()
        );
        assert_eq!(site.front.stats().registry_basic, basic_before + 1);
        for (path, password) in [
            ("egi_vm_images/ubuntu/manifests/24.04", "wrong"),
            ("_catalog", "s3cret"),
        ] {
            let r = c
                .get(format!("{front}/v2/{path}"))
                .basic_auth("robot$sync", Some(password))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path}");
            assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"harbor\"");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body}");
        }
        // A forged token (signed by another key) and garbage are refused.
        let forged = TokenIssuer::generate()
            .unwrap()
            .mint(
                "robot$sync",
                &[Access::repository("egi_vm_images/ubuntu", &["pull"])],
                chrono::Utc::now().timestamp(),
            )
            .unwrap();
        for bad in [forged.as_str(), "not-a-token"] {
            let r = manifest(&front, "egi_vm_images/ubuntu", "24.04")
                .bearer_auth(bad)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{bad}");
            assert!(r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm="));
        }

        // A token for ubuntu pulls ubuntu, not alma; a push-less token
        // cannot push; the catalog is never granted to the robot.
        let t = site
            .token(&["repository:egi_vm_images/ubuntu:pull", "registry:catalog:*"])
            .await;
        let r = manifest(&front, "egi_vm_images/ubuntu", "24.04")
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["docker-content-digest"],
            pushed.manifest.as_str()
        );
        let r = c
            .get(format!(
                "{front}/v2/egi_vm_images/ubuntu/blobs/{}",
                pushed.layer
            ))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sha256(&r.bytes().await.unwrap()), pushed.layer);
        let r = manifest(&front, "egi_vm_images/alma", "9")
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let ch = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            ch.contains("scope=\"repository:egi_vm_images/alma:pull\"")
                && ch.contains("error=\"insufficient_scope\""),
            "{ch}"
        );
        let r = c
            .post(format!("{front}/v2/egi_vm_images/ubuntu/blobs/uploads/"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(format!("{front}/v2/_catalog"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // The token service refuses missing and wrong robot credentials.
        let tok = format!(
            "{front}/service/token?service=harbor-registry&scope=repository:egi_vm_images/ubuntu:pull"
        );
        let r = c.get(&tok).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(&tok)
            .basic_auth("robot$sync", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(&tok)
            .basic_auth("robot$other", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(format!(
                "{front}/service/token?service=other&scope=repository:a/b:pull"
            ))
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        // The project's Harbor client: the API with Basic auth (the front
        // reads the registry with its own tokens). Harbor takes its Basic
        // credentials on `/v2/` too.
        let h = Harbor::new(
            c.clone(),
            site.url.clone(),
            Some(("robot$sync".into(), Secret::new("s3cret"))),
        );
        let mut arts = h.project_artifacts("egi_vm_images", None).await.unwrap();
        arts.sort_by(|a, b| a.repository.cmp(&b.repository));
        assert_eq!(arts.len(), 2, "{arts:?}");
        let a = arts
            .iter()
            .find(|a| a.repository == "egi_vm_images/ubuntu")
            .unwrap();
        assert_eq!(a.digest, pushed.manifest);
        assert_eq!(a.tags, vec!["24.04".to_string()]);
        let layer = h.layer(a).await.unwrap();
        assert_eq!(layer.digest, pushed.layer);
        assert_eq!(layer.size, disk.len() as u64);
        let (_, auth) = h.blob_access(a, &layer).await.unwrap();
        assert!(matches!(auth, BlobAuth::Basic(..)), "{auth:?}");
        // A registry that takes only tokens: manifest and blob through the
        // registry's challenge, answered with a token.
        site.front.set_registry_basic(false);
        let layer = h.layer(a).await.unwrap();
        assert_eq!(layer.digest, pushed.layer);
        let (blob_url, auth) = h.blob_access(a, &layer).await.unwrap();
        let BlobAuth::Bearer(t) = auth else {
            panic!("token mode needs a bearer token: {auth:?}")
        };
        let r = c
            .get(blob_url.clone())
            .bearer_auth(t.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), disk);
        // Wrong robot password: the API refuses, and so does the token
        // service behind the registry's challenge.
        let bad = Harbor::new(
            c.clone(),
            site.url.clone(),
            Some(("robot$sync".into(), Secret::new("wrong"))),
        );
        let e = bad
            .project_artifacts("egi_vm_images", None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("401"), "{e}");
        let e = bad.layer(a).await.unwrap_err();
        assert!(e.to_string().contains("401"), "{e}");
        let e = bad.blob_access(a, &layer).await.unwrap_err();
        assert!(
            e.to_string().contains("401") && !e.to_string().contains("wrong"),
            "{e}"
        );

        let s = site.front.stats();
        assert!(s.tokens >= 5 && s.unauthorized >= 6, "{s:?}");
    });
}

/// `fedcloud-testsrv oci-push` streams a disk file into a registry in
/// token mode and prints the digests; the artifact then lists in the
/// front with its annotations.
#[test]
fn harbor_oci_push_command_publishes_a_disk_file() {
    let dir = tempfile::tempdir().unwrap();
    let disk = random_bytes(3 * 1024 * 1024 + 17);
    let file = dir.path().join("ubuntu-24.04.qcow2");
    std::fs::write(&file, &disk).unwrap();
    let pw = dir.path().join("robot.pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    block_on(async {
        let site = token_site().await;
        let front = site.url.as_str().trim_end_matches('/').to_string();
        let run = |password_file: &std::path::Path| {
            let mut cmd =
                tokio::process::Command::new(assert_cmd::cargo::cargo_bin("fedcloud-testsrv"));
            cmd.args(["oci-push", "--registry", &site.reg.url, "--token-service"])
                .arg(format!("{front}/service/token"))
                .args(["--user", "robot$sync", "--password-file"])
                .arg(password_file)
                .args([
                    "--repo",
                    "egi_vm_images/ubuntu",
                    "--tag",
                    "24.04",
                    "--tag",
                    "24.04-2026.01",
                ])
                .arg("--file")
                .arg(&file)
                .args([
                    "--annotation",
                    "eu.egi.cloud.tag=24.04",
                    "--annotation",
                    "org.openstack.glance.os_version=24.04",
                ]);
            cmd.output()
        };
        let bad_pw = dir.path().join("bad.pw");
        std::fs::write(&bad_pw, "nope\n").unwrap();
        let out = run(&bad_pw).await.unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("401") && !err.contains("nope"), "{err}");

        let out = run(&pw).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let words: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(words.len(), 4, "{stdout}");
        assert_eq!((words[0], words[2]), ("DIGEST", "LAYER"));
        assert_eq!(words[3], sha256(&disk));

        let h = Harbor::new(
            client(),
            site.url.clone(),
            Some(("robot$sync".into(), Secret::new("s3cret"))),
        );
        let arts = h.artifacts("egi_vm_images/ubuntu").await.unwrap();
        assert_eq!(arts.len(), 1);
        assert_eq!(arts[0].digest, words[1]);
        assert_eq!(arts[0].tags, vec!["24.04", "24.04-2026.01"]);
        assert_eq!(
            arts[0].annotations["org.openstack.glance.os_version"],
            "24.04"
        );
        let layer = h.layer(&arts[0]).await.unwrap();
        assert_eq!(layer.size, disk.len() as u64);
        assert_eq!(
            layer.annotations["org.opencontainers.image.title"],
            "ubuntu-24.04.qcow2"
        );
        // A second push of the same file sends no blob again (HEAD 200).
        let out = run(&pw).await.unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    });
}

/// What atrope 2.1's `HarborImageListSource` does with oras-py
/// (`_get_oras_registry`, `get_manifest`; `HarborImage` download: `pull`
/// into a temporary directory, the largest file), with `insecure=True`
/// because the front is plain HTTP on 127.0.0.1. Arguments: host:port,
/// `<repo>:<tag>`, output directory; the robot from `ORAS_TEST_ROBOT` /
/// `ORAS_TEST_PASSWORD`. One JSON line on stdout; exit 4 when oras fails.
const ATROPE_ORAS: &str = r#"
import json, os, sys

import oras.provider

host, ref, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
registry = oras.provider.Registry(host, insecure=True, auth_backend="basic", tls_verify=True)
registry.login(
    username=os.environ["ORAS_TEST_ROBOT"],
    password=os.environ["ORAS_TEST_PASSWORD"],
    tls_verify=True,
)
try:
    manifest = registry.get_manifest(f"{host}/{ref}")
    files = registry.pull(target=f"{host}/{ref}", outdir=outdir)
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "detail": str(e)}))
    sys.exit(4)
largest = max(files, key=os.path.getsize)
print(json.dumps({"manifest": manifest, "files": files, "largest": largest}))
"#;

/// oras-py, as atrope 2.1 uses it, reads the manifest and pulls the disk
/// of an artifact pushed into the reference site's registry (token mode),
/// through the site's Harbor front with the robot's credentials: layer
/// digest, bytes and annotations as pushed. A wrong password fails, and no
/// password shows in the output.
#[test]
fn oras_pulls_through_the_harbor_front_like_atrope() {
    use super::sync::var;
    let py = var("REFSITE_PEERS_PYTHON");
    let probe = Command::new(&py)
        .args([
            "-c",
            "import oras.provider, oras.version; print(oras.version.__version__)",
        ])
        .output()
        .unwrap_or_else(|e| panic!("REFSITE_PEERS_PYTHON {py}: {e}"));
    assert!(
        probe.status.success(),
        "REFSITE_PEERS_PYTHON ({py}) has no oras-py, the OCI client atrope 2.1 pulls \
         with; the peers venv pins oras==0.2.43: run `scripts/reference-site up`\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let robot = var("REFSITE_HARBOR_ROBOT");
    let password = var("REFSITE_HARBOR_PASSWORD");
    let front = Url::parse(&var("REFSITE_HARBOR_URL")).unwrap();
    let host = format!(
        "{}:{}",
        front.host_str().unwrap(),
        front.port_or_known_default().unwrap()
    );
    let repo = format!("egi_vm_images/oras-{}", hex::encode(random_bytes(4)));
    let disk = random_bytes(300_000 + 7);
    let ann = json!({
        "eu.egi.cloud.tag": "24.04",
        "eu.egi.cloud.description": "Ubuntu 24.04 pulled by oras",
        "org.openstack.glance.architecture": "x86_64",
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "24.04",
        "org.openstack.glance.disk_format": "raw"
    });
    let stats = || -> harbor::HarborStats {
        block_on(async {
            client()
                .get(front.join("/__test/stats").unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let pushed = block_on(async {
        harbor::push_image(
            &client(),
            &Url::parse(&var("REFSITE_REGISTRY_URL")).unwrap(),
            &repo,
            &["24.04", "24.04-2026.01"],
            harbor::Disk::Bytes(&disk),
            &ann,
            Some(&harbor::PushAuth {
                token_service: Url::parse(&var("REFSITE_HARBOR_TOKEN_URL")).unwrap(),
                service: "harbor-registry".into(),
                credentials: Some((robot.clone(), password.clone())),
            }),
        )
        .await
        .unwrap()
    });

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("atrope_oras.py");
    std::fs::write(&script, ATROPE_ORAS).unwrap();
    // oras' login writes the credentials into ~/.docker/config.json: a
    // HOME of its own, and no ambient oras credentials or proxies.
    let run = |pw: &str, out: &std::path::Path| {
        std::fs::create_dir_all(out).unwrap();
        let o = Command::new(&py)
            .arg(&script)
            .arg(&host)
            .arg(format!("{repo}:24.04"))
            .arg(out)
            .env("HOME", dir.path())
            .env("ORAS_TEST_ROBOT", &robot)
            .env("ORAS_TEST_PASSWORD", pw)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("ORAS_USER")
            .env_remove("ORAS_PASS")
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), stdout, stderr)
    };

    let before = stats();
    let (code, stdout, stderr) = run(&password, &dir.path().join("pull"));
    assert!(
        !stdout.contains(password.as_str()) && !stderr.contains(password.as_str()),
        "the robot password shows in oras' output"
    );
    assert_eq!(code, Some(0), "oras through the front:\n{stdout}\n{stderr}");
    let out: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let m = &out["manifest"];
    assert_eq!(m["layers"][0]["digest"], pushed.layer.as_str(), "{m:#}");
    assert_eq!(m["layers"][0]["size"], disk.len());
    assert_eq!(m["annotations"], ann, "{m:#}");
    let mut layer_ann = ann.clone();
    layer_ann["org.opencontainers.image.title"] = json!("disk.img");
    assert_eq!(m["layers"][0]["annotations"], layer_ann, "{m:#}");
    let largest = std::path::PathBuf::from(out["largest"].as_str().unwrap());
    assert_eq!(largest, dir.path().join("pull").join("disk.img"));
    let pulled = std::fs::read(&largest).unwrap();
    assert!(
        pulled == disk,
        "the pulled disk differs from the pushed one"
    );
    assert_eq!(sha256(&pulled), pushed.layer);
    // oras-py's "basic" backend never asks the token service: it answers
    // the registry's challenge with the robot's Basic credentials, which
    // the front takes as Harbor core does (manifest twice, blob once).
    let after = stats();
    assert!(
        after.registry_basic >= before.registry_basic + 3,
        "{before:?} -> {after:?}"
    );

    // A wrong robot password: oras fails with the front's 401.
    let wrong = format!("wrong-{}", hex::encode(random_bytes(6)));
    let (code, stdout, stderr) = run(&wrong, &dir.path().join("wrong"));
    assert_eq!(
        code,
        Some(4),
        "oras with a wrong password:\n{stdout}\n{stderr}"
    );
    let e: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(
        e["detail"].as_str().unwrap_or("").contains("Unauthorized"),
        "{e}"
    );
    for secret in [password.as_str(), wrong.as_str()] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a robot password shows in oras' output"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("wrong")).unwrap().count(),
        0,
        "nothing is pulled with a wrong password"
    );
}
