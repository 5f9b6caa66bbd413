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
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let h = harbor::serve(
            tokio::net::TcpListener::from_std(std_l).unwrap(),
            harbor::HarborOptions {
                registry: url::Url::parse(&reg.url).unwrap(),
                credentials: Some(("robot$sync".into(), "s3cret".into())),
            },
        )
        .unwrap();
        let front = format!("http://{}", h.server.addr());
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
        // Robot Basic credentials are not a registry token.
        let r = manifest(&front, "egi_vm_images/ubuntu", "24.04")
            .basic_auth("robot$sync", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
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
        // reads the registry with its own tokens), then manifest and blob
        // through the registry's challenge.
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
        // The blob: the registry's challenge answered with a token.
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
