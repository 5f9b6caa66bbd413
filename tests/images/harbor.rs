//! The Harbor-API test server (`testsrv::harbor`) in front of a real OCI
//! registry (Debian's `docker-registry`, filesystem store in a temporary
//! directory): an image artifact pushed with plain OCI distribution API
//! calls, with EGI's annotations, shows up as Harbor project ->
//! repository -> artifact (tags, annotations, pagination), and its layer
//! pulls back with the sha256 digest the manifest names.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedcloud_appliance::testsrv::harbor;
use serde_json::{json, Value};

use super::sync::{block_on, random_bytes};

/// `docker-registry serve` on 127.0.0.1, killed on drop.
pub(super) struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub(super) url: String,
}

impl Registry {
    pub(super) fn start() -> Registry {
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
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            _dir: dir,
            url,
        }
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

/// Push a blob (monolithic upload: POST, then PUT with the digest).
pub(super) async fn push_blob(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    data: Vec<u8>,
) -> String {
    let digest = sha256(&data);
    let r = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    digest
}

/// Push a disk image as an OCI artifact the way EGI publishes VM images
/// (oras-style: one layer, annotations on the layer and the manifest).
pub(super) async fn push_image(
    base: &str,
    repo: &str,
    tags: &[&str],
    disk: &[u8],
    annotations: &Value,
) -> (String, String) {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let layer = push_blob(&c, base, repo, disk.to_vec()).await;
    let config = b"{}".to_vec();
    let config_digest = push_blob(&c, base, repo, config.clone()).await;
    let mut layer_ann = annotations.clone();
    layer_ann["org.opencontainers.image.title"] = json!("disk.img");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.egi.cloud.image.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": disk.len(),
                    "annotations": layer_ann}],
        "annotations": annotations,
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    for t in tags {
        let r = c
            .put(format!("{base}/v2/{repo}/manifests/{t}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    (sha256(&body), layer)
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
