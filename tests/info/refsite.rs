//! `appliance info` against the local reference site.
//!
//! The differential test builds its own corner of the site (two projects the
//! site's user is a member of, private images in one of them, a private GPU
//! flavor) so that nothing other tests do changes what both tools see, then
//! runs PyPI cloud-info-provider 1.2.0 (`REFSITE_PEERS_PYTHON`, through
//! `run_cip.py`: GOCDB redirected to the site's, CreationTime fixed) and
//! `appliance info show` on the same catch-all site YAML with the same
//! `SOURCE_DATE_EPOCH`, and compares the bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fedcloud_appliance::openstack::access::{CloudAccess, Credential, DomainRef, Interface, Tls};
use fedcloud_appliance::openstack::{OpenStack, ProjectRef, Session};
use fedcloud_appliance::secret::Secret;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use crate::util::{appliance, refsite};

pub(super) const EPOCH: &str = "1700000000";

pub(super) fn var(k: &str) -> String {
    refsite().var(k).to_string()
}

async fn admin() -> Session {
    let access = CloudAccess {
        auth_url: Url::parse(&var("OS_AUTH_URL")).unwrap(),
        credential: Credential::Password {
            username: var("REFSITE_ADMIN_USER"),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new(var("REFSITE_ADMIN_PASSWORD")),
            project: Some(ProjectRef::Name {
                name: "admin".into(),
                domain: DomainRef::Id("default".into()),
            }),
        },
        region: Some(var("OS_REGION_NAME")),
        interface: Interface::Public,
        tls: Tls::default(),
        timeout: Duration::from_secs(60),
        retries: 2,
    };
    OpenStack::new(access).unwrap().session().await.unwrap()
}

async fn post(s: &Session, service: &str, path: &str, body: Value) -> Value {
    s.send_json(Method::POST, service, path, Some(&body), None)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        .unwrap_or(Value::Null)
}

async fn delete(s: &Session, service: &str, path: &str) {
    if let Err(e) = s.send_json(Method::DELETE, service, path, None, None).await {
        eprintln!("cleanup: DELETE {path}: {e}");
    }
}

/// Two projects of the site's user, images and flavors of this test only.
struct Corner {
    tag: String,
    projects: Vec<String>,
    images: Vec<String>,
    flavors: Vec<String>,
}

impl Corner {
    async fn new(s: &Session) -> Corner {
        let tag = format!("infotest-{:08x}", rand::random::<u32>());
        let mut c = Corner {
            tag: tag.clone(),
            projects: Vec::new(),
            images: Vec::new(),
            flavors: Vec::new(),
        };
        let roles = s
            .get_json::<Value>("identity", "roles", &[("name", "member")], None)
            .await
            .unwrap();
        let member = roles["roles"][0]["id"].as_str().unwrap().to_string();
        let user = var("REFSITE_USER_ID");
        for i in 1..=2 {
            let p = post(
                s,
                "identity",
                "projects",
                json!({"project": {"name": format!("{tag}-{i}"), "domain_id": "default"}}),
            )
            .await;
            let id = p["project"]["id"].as_str().unwrap().to_string();
            s.send_json(
                Method::PUT,
                "identity",
                &format!("projects/{id}/users/{user}/roles/{member}"),
                None,
                None,
            )
            .await
            .unwrap();
            c.projects.push(id);
        }
        c
    }

    /// A private image of project `owner`, active (1 byte uploaded).
    async fn image(&mut self, s: &Session, owner: usize, name: &str, props: Value) {
        let mut body = json!({"name": name, "disk_format": "raw", "container_format": "bare",
            "visibility": "private", "owner": self.projects[owner], "tags": [self.tag]});
        for (k, v) in props.as_object().unwrap() {
            body[k] = v.clone();
        }
        let v = post(s, "image", "v2/images", body).await;
        let id = v["id"].as_str().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        s.send_raw(
            Method::PUT,
            "image",
            &format!("v2/images/{id}/file"),
            h,
            Some(bytes::Bytes::from_static(b"x")),
        )
        .await
        .unwrap();
        self.images.push(id);
    }

    /// A private flavor usable by project `p`, with extra specs.
    async fn flavor(&mut self, s: &Session, p: usize, name: &str, specs: Value) -> String {
        let f = post(
            s,
            "compute",
            "flavors",
            json!({"flavor": {"name": format!("{}-{name}", self.tag), "vcpus": 4, "ram": 8192, "disk": 10,
                "os-flavor-access:is_public": false}}),
        )
        .await;
        let id = f["flavor"]["id"].as_str().unwrap().to_string();
        self.flavors.push(id.clone());
        post(
            s,
            "compute",
            &format!("flavors/{id}/os-extra_specs"),
            json!({ "extra_specs": specs }),
        )
        .await;
        post(
            s,
            "compute",
            &format!("flavors/{id}/action"),
            json!({"addTenantAccess": {"tenant": self.projects[p]}}),
        )
        .await;
        id
    }

    async fn remove_flavor(&mut self, s: &Session, id: &str) {
        delete(s, "compute", &format!("flavors/{id}")).await;
        self.flavors.retain(|f| f != id);
    }

    async fn cleanup(self, s: &Session) {
        for f in &self.flavors {
            delete(s, "compute", &format!("flavors/{f}")).await;
        }
        for i in &self.images {
            delete(s, "image", &format!("v2/images/{i}")).await;
        }
        for p in &self.projects {
            delete(s, "identity", &format!("projects/{p}")).await;
        }
    }
}

pub(super) struct Dir {
    _tmp: tempfile::TempDir,
    pub(super) path: PathBuf,
}

impl Dir {
    pub(super) fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_path_buf();
        std::fs::create_dir_all(path.join("state")).unwrap();
        let secrets = path.join("secrets.yaml");
        std::fs::write(
            &secrets,
            format!("openstack:\n  password: \"{}\"\n", var("REFSITE_PASSWORD")),
        )
        .unwrap();
        std::fs::set_permissions(
            &secrets,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        Dir { _tmp: tmp, path }
    }

    /// A catch-all site file for `vos` (name, project id), and an
    /// appliance.yaml using it with `info` keys `extra`.
    pub(super) fn write(&self, vos: &[(&str, &str)], extra: &str) -> (PathBuf, PathBuf) {
        self.write_at(&var("OS_AUTH_URL"), "", vos, extra)
    }

    /// [`Dir::write`] with the site endpoint `endpoint` (Keystone itself
    /// stays the auth URL) and more `openstack` keys (indented lines).
    pub(super) fn write_at(
        &self,
        endpoint: &str,
        openstack_extra: &str,
        vos: &[(&str, &str)],
        extra: &str,
    ) -> (PathBuf, PathBuf) {
        let mut site = format!(
            "gocdb: {}\nendpoint: {endpoint}\nvos:\n",
            var("REFSITE_SITE_NAME"),
        );
        for (vo, p) in vos {
            site.push_str(&format!(
                "  - name: {vo}\n    auth:\n      project_id: {p}\n"
            ));
        }
        let site_file = self.path.join("site.yaml");
        std::fs::write(&site_file, site).unwrap();
        let cfg = format!(
            "schema-version: 2\nsite:\n  catch-all: {}\nopenstack:\n  auth:\n    type: password\n    auth-url: {}\n    username: {}\n    user-domain-name: Default\n  region: {}\n{openstack_extra}secrets-file: {}\npaths:\n  state: {}\ninfo:\n  gocdb-url: {}/gocdbpi/public/\n{extra}",
            site_file.display(),
            var("OS_AUTH_URL"),
            var("REFSITE_USER"),
            var("OS_REGION_NAME"),
            self.path.join("secrets.yaml").display(),
            self.path.join("state").display(),
            var("REFSITE_GOCDB_URL"),
        );
        let cfg_file = self.path.join("appliance.yaml");
        std::fs::write(&cfg_file, cfg).unwrap();
        (site_file, cfg_file)
    }
}

pub(super) struct RunOut {
    pub(super) code: i32,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: String,
}

/// cloud-info-provider 1.2.0 on `site` (extra CLI flags in `flags`).
fn cip(site: &Path, flags: &[&str]) -> RunOut {
    cip_env(site, flags, &[])
}

/// [`cip`] with more environment variables.
pub(super) fn cip_env(site: &Path, flags: &[&str], env: &[(&str, &str)]) -> RunOut {
    let py = var("REFSITE_PEERS_PYTHON");
    let wrapper = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/info/run_cip.py");
    let out = Command::new(&py)
        .arg(wrapper)
        .args([
            "--os-auth-type",
            "password",
            "--os-auth-url",
            &var("OS_AUTH_URL"),
            "--os-username",
            &var("REFSITE_USER"),
            "--os-password",
            &var("REFSITE_PASSWORD"),
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
            "--os-region-name",
            &var("OS_REGION_NAME"),
        ])
        .args(flags)
        .arg(site)
        .env("FAKE_GOCDB_URL", format!("{}/gocdbpi/public/", var("REFSITE_GOCDB_URL")))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cloud-info-provider peer ({py}) cannot run: {e}; is REFSITE_PEERS_PYTHON installed?"));
    RunOut {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) fn ours(cfg: &Path, args: &[&str]) -> RunOut {
    let out = appliance()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    RunOut {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) fn same(what: &str, ours: &RunOut, theirs: &RunOut) -> Value {
    assert_eq!(
        theirs.code, 0,
        "{what}: cloud-info-provider failed: {}",
        theirs.stderr
    );
    assert!(
        !ours.stdout.is_empty(),
        "{what}: no document: {}",
        ours.stderr
    );
    if ours.stdout != theirs.stdout {
        let a = String::from_utf8_lossy(&ours.stdout);
        let b = String::from_utf8_lossy(&theirs.stdout);
        let at = a
            .bytes()
            .zip(b.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        let lo = at.saturating_sub(200);
        let dump = std::env::temp_dir().join(format!("info-diff-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dump);
        let _ = std::fs::write(dump.join("ours.json"), &ours.stdout);
        let _ = std::fs::write(dump.join("theirs.json"), &theirs.stdout);
        eprintln!("documents kept in {}", dump.display());
        panic!(
            "{what}: documents differ at byte {at}\n ours: ...{}\ntheirs: ...{}\nours stderr: {}",
            &a[lo..(at + 200).min(a.len())],
            &b[lo..(at + 200).min(b.len())],
            ours.stderr
        );
    }
    serde_json::from_slice(&ours.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_differential_with_cloud_info_provider() {
    let s = admin().await;
    let mut c = Corner::new(&s).await;
    let result = std::panic::AssertUnwindSafe(scenarios(&s, &mut c));
    let r = futures::FutureExt::catch_unwind(result).await;
    c.cleanup(&s).await;
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

async fn scenarios(s: &Session, c: &mut Corner) {
    let (p1, p2) = (c.projects[0].clone(), c.projects[1].clone());
    // Images of p1: an atrope-synced one (marketplace metadata, JSON
    // attributes, non-ASCII text), and plain ones: 7 in all, more than one
    // page at our page size of 3.
    let attrs = json!({"eu.egi.cloud.tag": "2025.01.10", "ad:base_mpuri": "https://appdb.example/x",
        "eu.egi.cloud.image_ref": "egi_vm_images/ubuntu:22.04", "sl:osname": "Ubuntu \u{e9}t\u{e9} \u{263a}",
        "n": 1.5, "nested": {"a": [1, null, true]}});
    c.image(
        s,
        0,
        "EGI Ubuntu 22.04 \u{2013} caf\u{e9}",
        json!({"os_distro": "ubuntu", "os_version": "22.04", "architecture": "x86_64",
            "vmcatcher_event_dc_description": "EGI \"Ubuntu\" image\twith tab",
            "vmcatcher_event_ad_mpuri": "registry.egi.eu/egi_vm_images/ubuntu:22.04-sha256:0f1e2d",
            "APPLIANCE_ATTRIBUTES": attrs.to_string()}),
    )
    .await;
    c.image(
        s,
        0,
        "bad-attributes",
        json!({"APPLIANCE_ATTRIBUTES": "{not json", "vmcatcher_event_dc_title": "T"}),
    )
    .await;
    for i in 0..5 {
        c.image(s, 0, &format!("plain-{i}"), json!({"os_distro": "centos"}))
            .await;
    }
    // A private GPU flavor for p1.
    c.flavor(
        s,
        0,
        "gpu",
        json!({"Accelerator:Number": "1.0", "Accelerator:Vendor": "NVIDIA", "Accelerator:Model": "Tesla A100",
            "Accelerator:Memory": "40", "Accelerator:Type": "GPU"}),
    )
    .await;

    let dir = Dir::new();

    // 1 VO, images over several pages, the private GPU flavor.
    let (site, cfg) = dir.write(&[("vo.one.example", &p1)], "  image-page-size: 3\n");
    let d = same("1 VO", &ours(&cfg, &["info", "show"]), &cip(&site, &[]));
    let images = d["CloudComputingImage"].as_array().unwrap();
    assert!(images.len() >= 7, "{}", images.len());
    assert!(d["CloudComputingVirtualAccelerator"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["Model"] == "Tesla A100"));

    // 2 VOs and a VO whose login fails.
    let (site, cfg) = dir.write(
        &[
            ("vo.one.example", &p1),
            ("vo.fail.example", "ffffffffffffffffffffffffffffffff"),
            ("vo.two.example", &p2),
        ],
        "",
    );
    let o = ours(&cfg, &["info", "show"]);
    assert_eq!(o.code, 1, "a failed VO is a partial run: {}", o.stderr);
    let d = same("2 VOs + failing login", &o, &cip(&site, &[]));
    assert_eq!(d["CloudComputingEndpoint"][0]["HealthState"], "warning");
    assert_eq!(d["Share"].as_array().unwrap().len(), 2);

    // 2 VOs, no failure.
    let (site, cfg) = dir.write(&[("vo.one.example", &p1), ("vo.two.example", &p2)], "");
    let o = ours(&cfg, &["info", "show"]);
    assert_eq!(
        o.code, 1,
        "bad image metadata is published and warned about: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains("APPLIANCE_ATTRIBUTES is not JSON"),
        "{}",
        o.stderr
    );
    same("2 VOs", &o, &cip(&site, &[]));

    // No images: p2 holds none, and only marketplace images are published.
    let (site, cfg) = dir.write(&[("vo.two.example", &p2)], "  only-appdb-images: true\n");
    let d = same(
        "no images",
        &ours(&cfg, &["info", "show"]),
        &cip(&site, &["--only-appdb-images"]),
    );
    assert!(d.get("CloudComputingImage").is_none());

    // A fractional GPU number: cloud-info-provider fails the whole site,
    // the appliance publishes (rounded up) and warns.
    let half = c
        .flavor(
            s,
            1,
            "half",
            json!({"Accelerator:Number": "0.5", "Accelerator:Vendor": "NVIDIA"}),
        )
        .await;
    let (site, cfg) = dir.write(&[("vo.two.example", &p2)], "");
    let theirs = cip(&site, &[]);
    assert_ne!(
        theirs.code, 0,
        "cloud-info-provider 1.2 is expected to crash on 0.5"
    );
    assert!(theirs.stdout.is_empty());
    let o = ours(&cfg, &["info", "show"]);
    assert_eq!(o.code, 1, "published with a warning: {}", o.stderr);
    assert!(o.stderr.contains("not a whole number"), "{}", o.stderr);
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    let acc = d["CloudComputingVirtualAccelerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ID"] == format!("{half}_gpu"))
        .expect("the fractional flavor is published");
    assert_eq!(acc["Number"], 1);
    c.remove_flavor(s, &half).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_publish_writes_the_file_atomically_and_secrets_never_show() {
    let dir = Dir::new();
    let out = dir.path.join("out/cloud-info.json");
    let (_, cfg) = dir.write(
        &[("vo.alpha.example", &var("REFSITE_PROJECT_ALPHA1_ID"))],
        &format!("  publish:\n    file: {}\n", out.display()),
    );
    let dry = ours(&cfg, &["info", "publish", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(!out.exists(), "a dry run writes nothing");
    let o = ours(&cfg, &["--json", "info", "publish"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["published"], true);
    assert_eq!(report["gocdb"], "gocdb");
    let doc = std::fs::read(&out).unwrap();
    let shown = ours(&cfg, &["info", "show"]);
    super::assert_same_document(
        &doc,
        &shown.stdout,
        "the published file is the shown document",
    );
    let pw = var("REFSITE_PASSWORD");
    for text in [
        &o.stderr,
        &String::from_utf8_lossy(&o.stdout).into_owned(),
        &dry.stderr,
    ] {
        assert!(!text.contains(&pw), "the password leaked");
    }

    // A VO whose login fails alone: no document is published, the old one stays.
    let (_, cfg) = dir.write(
        &[("vo.fail.example", "ffffffffffffffffffffffffffffffff")],
        &format!("  publish:\n    file: {}\n", out.display()),
    );
    let o = ours(&cfg, &["info", "publish"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        doc,
        "the previous document is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_gocdb_down_falls_back_to_cache_then_config() {
    let dir = Dir::new();
    let alpha = var("REFSITE_PROJECT_ALPHA1_ID");
    // A first run caches GOCDB's answer.
    let (_, cfg) = dir.write(&[("vo.alpha.example", &alpha)], "");
    let o = ours(&cfg, &["info", "show"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // GOCDB unreachable: the cached entry is used.
    let down = "  gocdb-url: http://127.0.0.1:9/gocdbpi/public/\n";
    let (_, cfg) = dir.write(&[("vo.alpha.example", &alpha)], "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("gocdb-url"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
        + down;
    std::fs::write(&cfg, text).unwrap();
    let o = ours(&cfg, &["info", "show"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        d["CloudComputingService"][0]["OtherInfo"]["gocdb_id"],
        var("REFSITE_ENDPOINT_ID")
    );
    assert!(
        o.stderr.contains("GOCDB lookup of the endpoint failed"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serial_publish_to_real_swift_and_read_back_with_swiftclient() {
    let swift_py = var("REFSITE_SWIFT_PYTHON"); // fails clearly when Swift is not set up
    let dir = Dir::new();
    let alpha = var("REFSITE_PROJECT_ALPHA1_ID");
    let file = dir.path.join("cloud-info.json");
    let container = format!("info-test-{:08x}", rand::random::<u32>());
    let (_, cfg) = dir.write(
        &[("vo.alpha.example", &alpha)],
        &format!(
            "  publish:\n    file: {}\n    swift:\n      container: {container}\n      project-id: {alpha}\n",
            file.display()
        ),
    );
    let o = ours(&cfg, &["--json", "info", "publish"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let location = report["targets"][1]["location"]
        .as_str()
        .unwrap()
        .to_string();
    let object = location.rsplit('/').next().unwrap().to_string();
    // catch-all's name: {gocdb '.'->'-'}-{md5(endpoint)}.json
    let md5 = fedcloud_appliance::info::publish::md5_hex(var("OS_AUTH_URL").as_bytes());
    assert_eq!(
        object,
        format!("{}-{md5}.json", var("REFSITE_SITE_NAME").replace('.', "-"))
    );

    let script = r#"
import sys
from swiftclient import client
url, user, pw, project, container, obj = sys.argv[1:7]
c = client.Connection(authurl=url, user=user, key=pw, auth_version="3",
    os_options={"project_id": project, "user_domain_id": "default", "region_name": "RegionOne"})
headers, body = c.get_object(container, obj)
sys.stdout.buffer.write(body)
sys.stderr.write(headers.get("content-type", "") + "\n")
c.delete_object(container, obj)
c.delete_container(container)
"#;
    let out = Command::new(&swift_py)
        .args(["-c", script])
        .args([
            &var("OS_AUTH_URL"),
            &var("REFSITE_USER"),
            &var("REFSITE_PASSWORD"),
            &alpha,
            &container,
            &object,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swiftclient: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        std::fs::read(&file).unwrap(),
        "Swift holds the published document"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("application/json"));
}

/// IDs carry the endpoint exactly as written (cloud-info-provider uses the
/// YAML string verbatim), not the normalised URL (`:80` dropped, host in
/// lower case).
#[test]
fn serial_ids_use_the_endpoint_as_written() {
    let dir = Dir::new();
    let written = "http://LOCALHOST:80/v3";
    let (site, cfg) = dir.write_at(
        written,
        "",
        &[("vo.alpha.example", &var("REFSITE_PROJECT_ALPHA1_ID"))],
        "",
    );
    let d = same(
        "endpoint as written",
        &ours(&cfg, &["info", "show"]),
        &cip(&site, &[]),
    );
    assert_eq!(
        d["CloudComputingService"][0]["ID"],
        format!("{written}_cloud.compute")
    );
    assert_eq!(d["CloudComputingEndpoint"][0]["URL"], written);
}
