//! `appliance images sync` against the real Glance and Keystone of the
//! local reference site, with lists signed in the test setup and served by
//! the project's file server (in-process, for its fault injection). Each
//! test uses its own Glance tag and list name, so tests run in parallel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fedcloud_appliance::openstack::access::{
    CloudAccess, Credential, DomainRef, Interface, ProjectRef, Tls,
};
use fedcloud_appliance::openstack::{image, OpenStack};
use fedcloud_appliance::secret::Secret;
use fedcloud_appliance::testsrv::{self, faults::Fault, files};
use serde_json::Value;
use url::Url;

use super::lists::{list_json, Img};
use super::pki::{pki, CA_DN, ENDORSER_DN};
use crate::util::{appliance, refsite};

pub(super) fn var(k: &str) -> String {
    refsite().var(k).to_string()
}

/// Start a test server with `serve` on a free loopback port, on the shared
/// test runtime (it outlives blocking CLI runs).
pub(super) fn serve_on_loopback<T>(serve: impl FnOnce(tokio::net::TcpListener) -> T) -> T {
    let handle = testsrv::runtime();
    let _g = handle.enter();
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_l.set_nonblocking(true).unwrap();
    serve(tokio::net::TcpListener::from_std(std_l).unwrap())
}

pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A test's own world: file server, cache, state, tag and list name.
pub(super) struct World {
    pub(super) dir: tempfile::TempDir,
    pub(super) root: PathBuf,
    pub(super) files: files::FilesServer,
    pub(super) tag: String,
    pub(super) list: String,
    version: u64,
    pub(super) glance_endpoint: Option<String>,
    pub(super) vos: Vec<&'static str>,
    /// Extra lines appended under `images:` (e.g. `  formats: [qcow2]`).
    pub(super) images_extra: String,
    /// More subscriptions (list items, indented as `    - name: ...`).
    pub(super) subscriptions_extra: String,
    /// Appended to a private copy of the site's secrets file.
    pub(super) secrets_extra: String,
    /// `images.allow-http` (the test servers speak plain http).
    pub(super) allow_http: &'static str,
    /// The list's URL, instead of the file server's `<list>.list`.
    pub(super) list_url: Option<String>,
}

impl World {
    pub(super) fn new(prefix: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).unwrap();
        let files = serve_on_loopback(|l| {
            files::serve(
                l,
                files::FilesOptions {
                    root: root.clone(),
                    token: None,
                },
            )
            .unwrap()
        });
        let tag = format!("t-{prefix}-{:08x}", rand::random::<u32>());
        World {
            dir,
            root,
            files,
            list: format!("{prefix}-list"),
            tag,
            version: 20260101000000,
            glance_endpoint: None,
            vos: Vec::new(),
            images_extra: String::new(),
            subscriptions_extra: String::new(),
            secrets_extra: String::new(),
            allow_http: "[lists, images, registries]",
            list_url: None,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.files.server.addr())
    }

    /// Serve `bytes` as `name` and describe it.
    pub(super) fn image<'a>(&self, id: &'a str, name: &str, bytes: &[u8]) -> Img<'a> {
        std::fs::write(self.root.join(name), bytes).unwrap();
        Img::new(id, self.url(name), bytes)
    }

    /// Sign and publish the list (a new hv:version each time).
    pub(super) fn publish(
        &mut self,
        images: &[Img],
        expires: &str,
        signer: &str,
        endorser_dn: &str,
    ) {
        self.version += 1;
        let body = list_json(
            "bbbbbbbb-0000-0000-0000-000000000001",
            &self.version.to_string(),
            expires,
            endorser_dn,
            images,
        );
        let signed = pki().sign(&body, signer, false);
        std::fs::write(self.root.join(format!("{}.list", self.list)), signed).unwrap();
    }

    /// Sign and publish another list as `file` (its own identifier).
    pub(super) fn publish_other(&self, file: &str, identifier: &str, images: &[Img]) {
        let body = list_json(
            identifier,
            "20260101000001",
            "2499-12-31T22:00:00Z",
            ENDORSER_DN,
            images,
        );
        std::fs::write(self.root.join(file), pki().sign(&body, "endorser", false)).unwrap();
    }

    pub(super) fn publish_ok(&mut self, images: &[Img]) {
        self.publish(images, "2499-12-31T22:00:00Z", "endorser", ENDORSER_DN);
    }

    pub(super) fn config(&self) -> PathBuf {
        let d = self.dir.path();
        let mut images = format!(
            "images:\n  allow-http: {}\n  tag: {}\n  subscriptions:\n    - name: {}\n      url: {}\n      endorser:\n        dn: \"{ENDORSER_DN}\"\n        ca: \"{CA_DN}\"\n",
            self.allow_http,
            self.tag,
            self.list,
            self.list_url
                .clone()
                .unwrap_or_else(|| self.url(&format!("{}.list", self.list)))
        );
        if !self.vos.is_empty() {
            images.push_str(&format!("      vos: [{}]\n", self.vos.join(", ")));
        }
        images.push_str(&self.subscriptions_extra);
        if let Some(g) = &self.glance_endpoint {
            images.push_str(&format!("  glance-endpoint: {g}\n"));
        }
        images.push_str(&self.images_extra);
        let text = format!(
            "schema-version: 2\nsite:\n  gocdb: REFSITE-LOCAL\n  endpoint: {auth}\nopenstack:\n  auth:\n    type: password\n    auth-url: {auth}\n    username: {user}\n    user-domain-name: Default\n    project-id: {alpha1}\n  region: {region}\n  retries: 0\nsecrets-file: {secrets}\nvos:\n  - name: vo.alpha.example\n    projects:\n      - id: {alpha1}\n      - id: {alpha2}\n  - name: vo.beta.example\n    projects:\n      - id: {beta1}\npaths:\n  image-data: {d}/image-data\n  spool: {d}/spool\n  state: {d}/state\n  ca-dir: {ca}\n{images}",
            auth = var("OS_AUTH_URL"),
            user = var("REFSITE_USER"),
            alpha1 = var("REFSITE_PROJECT_ALPHA1_ID"),
            alpha2 = var("REFSITE_PROJECT_ALPHA2_ID"),
            beta1 = var("REFSITE_PROJECT_BETA1_ID"),
            region = var("OS_REGION_NAME"),
            secrets = self.secrets_file().display(),
            d = d.display(),
            ca = pki().ca_dir().display(),
        );
        let p = d.join("appliance.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The site's secrets file, or a private copy with `secrets_extra`.
    fn secrets_file(&self) -> PathBuf {
        let site = PathBuf::from(var("REFSITE_SECRETS_FILE"));
        if self.secrets_extra.is_empty() {
            return site;
        }
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("secrets.yaml");
        let text = std::fs::read_to_string(&site).unwrap() + &self.secrets_extra;
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Run `appliance --json images sync`; (exit code, report).
    pub(super) fn sync(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["images", "sync"];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    /// Run `appliance [--json] <args>`; (exit code, stdout, stderr).
    pub(super) fn run(&self, json: bool, args: &[&str]) -> (i32, String, String) {
        let cfg = self.config();
        let mut cmd = appliance();
        cmd.arg("--config").arg(&cfg);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(args)
            .timeout(Duration::from_secs(240))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run `appliance --json <args>`; (exit code, JSON output).
    pub(super) fn cli(&self, args: &[&str]) -> (i32, Value) {
        let cfg = self.config();
        let out = appliance()
            .arg("--config")
            .arg(&cfg)
            .arg("--json")
            .args(args)
            .timeout(Duration::from_secs(240))
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "exit {code}, no JSON report ({e}):\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, report)
    }

    /// Images in Glance carrying this test's tag (as the owner sees them).
    pub(super) fn glance(&self) -> Vec<image::Image> {
        glance_as(&var("REFSITE_PROJECT_ALPHA1_ID"), &self.tag)
    }

    /// Everything that identifies Glance's state for this test.
    pub(super) fn snapshot(
        &self,
    ) -> BTreeMap<String, (String, String, Option<String>, Option<String>)> {
        self.glance()
            .into_iter()
            .map(|i| {
                (
                    i.id.clone(),
                    (
                        i.status.clone(),
                        i.visibility.clone(),
                        i.os_hash_value.clone(),
                        i.updated_at.map(|t| t.to_rfc3339()),
                    ),
                )
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Leave Glance as found.
        let owner = var("REFSITE_PROJECT_ALPHA1_ID");
        let tag = self.tag.clone();
        block_on(async move {
            let s = session(&owner).await;
            if let Ok(list) = image::images(
                &s,
                &image::ImageQuery {
                    tags: vec![tag],
                    ..Default::default()
                },
            )
            .await
            {
                for i in list {
                    if i.status == "deactivated" {
                        let _ = image::reactivate_image(&s, &i.id).await;
                    }
                    let _ = image::delete_image(&s, &i.id).await;
                }
            }
        });
    }
}

pub(super) async fn session(project_id: &str) -> fedcloud_appliance::openstack::Session {
    let access = CloudAccess {
        auth_url: Url::parse(&var("OS_AUTH_URL")).unwrap(),
        credential: Credential::Password {
            username: var("REFSITE_USER"),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new(var("REFSITE_PASSWORD")),
            project: Some(ProjectRef::Id(project_id.into())),
        },
        region: Some(var("OS_REGION_NAME")),
        interface: Interface::Public,
        tls: Tls::default(),
        timeout: Duration::from_secs(60),
        retries: 2,
    };
    OpenStack::new(access).unwrap().session().await.unwrap()
}

/// Images with `tag` visible to a user scoped to `project_id`.
pub(super) fn glance_as(project_id: &str, tag: &str) -> Vec<image::Image> {
    let (p, t) = (project_id.to_string(), tag.to_string());
    block_on(async move {
        let s = session(&p).await;
        image::images(
            &s,
            &image::ImageQuery {
                tags: vec![t],
                ..Default::default()
            },
        )
        .await
        .unwrap()
    })
}

pub(super) fn by_appdb<'a>(imgs: &'a [image::Image], id: &str) -> Vec<&'a image::Image> {
    imgs.iter()
        .filter(|i| i.property("appdb_id") == Some(id))
        .collect()
}

pub(super) fn actions(report: &Value) -> Vec<(String, String, bool)> {
    report["sources"][0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["action"].as_str().unwrap_or("").to_string(),
                i["appdb_id"].as_str().unwrap_or("").to_string(),
                i["ok"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

pub(super) fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v).unwrap();
    v
}

const A: &str = "aaaaaaaa-1111-4111-8111-000000000001";
const B: &str = "aaaaaaaa-1111-4111-8111-000000000002";
const C: &str = "aaaaaaaa-1111-4111-8111-000000000003";

#[test]
fn decision_table_against_the_reference_glance() {
    let mut w = World::new("table");
    let a = random_bytes(300_000);
    let b = random_bytes(200_000);

    // new
    let imgs = [w.image(A, "a.img", &a), w.image(B, "b.img", &b)];
    w.publish_ok(&imgs);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert_eq!(g.len(), 2, "{r:#}");
    let ga = by_appdb(&g, A)[0].clone();
    assert_eq!(ga.status, "active");
    assert_eq!(ga.visibility, "private");
    assert_eq!(ga.os_hash_value.as_deref(), Some(imgs[0].sha512.as_str()));
    assert_eq!(
        ga.property("image_hash"),
        Some(format!("sha512:{}", imgs[0].sha512).as_str())
    );
    assert_eq!(ga.property("image_list"), Some(w.list.as_str()));
    assert_eq!(ga.property("os_distro"), Some("Ubuntu"));
    assert!(ga.property("vmcatcher_event_ad_mpuri").unwrap().contains(A));
    let attrs: Value = serde_json::from_str(ga.property("APPLIANCE_ATTRIBUTES").unwrap()).unwrap();
    assert_eq!(attrs["dc:identifier"], A);
    assert_eq!(ga.tags, vec![w.tag.clone()]);

    // unchanged (warm: nothing downloaded, nothing uploaded)
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        actions(&r).iter().all(|(a, _, ok)| a == "unchanged" && *ok),
        "{r:#}"
    );
    let before = w.snapshot();

    // metadata only: PATCH, same Glance id
    let mut imgs2 = [w.image(A, "a.img", &a), w.image(B, "b.img", &b)];
    imgs2[0].description = "A better description";
    w.publish_ok(&imgs2);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        actions(&r).contains(&("update".into(), A.into(), true)),
        "{r:#}"
    );
    let g = w.glance();
    let ga2 = by_appdb(&g, A)[0];
    assert_eq!(ga2.id, ga.id);
    assert_eq!(
        ga2.property("vmcatcher_event_dc_description"),
        Some("A better description")
    );
    assert_eq!(before.len(), 2);

    // new version of B: the new image first, then the old one retired
    let b2 = random_bytes(210_000);
    let old_b = by_appdb(&g, B)[0].id.clone();
    let mut imgs3 = [w.image(A, "a.img", &a), w.image(B, "b2.img", &b2)];
    imgs3[0].description = "A better description";
    imgs3[1].version = "2.0";
    w.publish_ok(&imgs3);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    let gb = by_appdb(&g, B);
    assert_eq!(gb.len(), 1, "{g:#?}");
    assert_ne!(gb[0].id, old_b);
    assert_eq!(
        gb[0].os_hash_value.as_deref(),
        Some(imgs3[1].sha512.as_str())
    );

    // removed from the list: A retired
    let mut imgs4 = [w.image(B, "b2.img", &b2)];
    imgs4[0].version = "2.0";
    w.publish_ok(&imgs4);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(by_appdb(&w.glance(), A).is_empty(), "{r:#}");

    // expired image: B retired
    let mut imgs5 = [w.image(B, "b2.img", &b2), w.image(C, "c.img", b"c-bytes")];
    imgs5[0].version = "2.0";
    imgs5[0].expires = "2020-01-01T00:00:00Z";
    w.publish_ok(&imgs5);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert!(by_appdb(&g, B).is_empty(), "{r:#}");
    assert_eq!(by_appdb(&g, C).len(), 1);

    // expired list: images kept, nothing updated, exit 1
    let before = w.snapshot();
    let imgs6 = [w.image(A, "a.img", &a)];
    w.publish(&imgs6, "2021-01-01T00:00:00Z", "endorser", ENDORSER_DN);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["sources"][0]["status"], "expired");
    assert_eq!(w.snapshot(), before);

    // list download failure: nothing changes, the last good list is
    // reported; the only source failed, so the run failed (exit 3)
    std::fs::remove_file(w.root.join(format!("{}.list", w.list))).unwrap();
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 3, "{r:#}");
    assert_eq!(r["sources"][0]["status"], "failed");
    assert_eq!(r["sources"][0]["failure"]["stage"], "download");
    assert!(r["sources"][0]["last_good"]["version"].is_string(), "{r:#}");
    assert_eq!(w.snapshot(), before);
}

/// Each failure row: a valid baseline, then a broken list or download or
/// Glance; afterwards Glance is exactly as before and holds no image of the
/// new entry in any state.
#[test]
fn failure_rows_change_nothing_in_glance() {
    let mut w = World::new("fail");
    let a = random_bytes(100_000);
    let base = [w.image(A, "a.img", &a)];
    w.publish_ok(&base);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let before = w.snapshot();
    assert_eq!(before.len(), 1);
    let c = random_bytes(150_000);

    let check = |w: &World, what: &str, r: &Value, stage: Option<&str>| {
        assert_eq!(w.snapshot(), before, "{what}: Glance changed: {r:#}");
        assert!(
            by_appdb(&w.glance(), C).is_empty(),
            "{what}: an image of C exists: {r:#}"
        );
        if let Some(stage) = stage {
            assert_eq!(r["sources"][0]["failure"]["stage"], stage, "{what}: {r:#}");
            assert!(r["sources"][0]["failure"]["remedy"]
                .as_str()
                .is_some_and(|s| !s.is_empty()));
        }
    };

    // bad signature (tampered after signing); the run's only source
    // failed: exit 3 (#14 item 11)
    let imgs = [w.image(A, "a.img", &a), w.image(C, "c.img", &c)];
    w.publish_ok(&imgs);
    let p = w.root.join(format!("{}.list", w.list));
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("Test list", "Evil list", 1);
    std::fs::write(&p, t).unwrap();
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 3);
    check(&w, "bad signature", &r, Some("signature"));

    // revoked signer (its list names it as endorser)
    w.publish(
        &imgs,
        "2499-12-31T22:00:00Z",
        "revoked",
        super::pki::REVOKED_DN,
    );
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 3);
    check(&w, "revoked", &r, Some("signature"));
    assert!(
        r["sources"][0]["failure"]["error"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{r:#}"
    );

    // endorser mismatch: validly signed list naming another endorser
    w.publish(
        &imgs,
        "2499-12-31T22:00:00Z",
        "endorser",
        "/DC=EU/CN=someone.else",
    );
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 3);
    check(&w, "endorser mismatch", &r, Some("policy"));

    // checksum mismatch
    let mut bad = [w.image(A, "a.img", &a), w.image(C, "c.img", &c)];
    bad[1].sha512 = "00".repeat(64);
    w.publish_ok(&bad);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    check(&w, "checksum mismatch", &r, None);
    let err = r["sources"][0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appdb_id"] == C)
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("sha512 mismatch") && err.contains(&w.list) && err.contains(C),
        "{err}"
    );

    // oversize: the list declares fewer bytes than are served
    let mut over = [w.image(A, "a.img", &a), w.image(C, "c.img", &c)];
    over[1].size = 1000;
    w.publish_ok(&over);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    check(&w, "oversize", &r, None);

    // truncated download: every try (and resume) cut after 10 bytes
    let good = [w.image(A, "a.img", &a), w.image(C, "c.img", &c)];
    w.publish_ok(&good);
    w.files
        .faults
        .push(Fault::truncate_after(10).on_path("/c.img").times(20));
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    check(&w, "truncated", &r, None);
    let err = r["sources"][0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appdb_id"] == C)
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("ended after"), "{err}");
    w.files.faults.clear();

    // Glance 5xx during the upload, through a fault proxy in front of Glance
    let (addr, faults) =
        testsrv::fault_proxy::spawn(Url::parse(&var("REFSITE_GLANCE_URL")).unwrap());
    w.glance_endpoint = Some(format!("http://{addr}"));
    faults.push(Fault::status(503).on_path("/v2/images/").times(1));
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    check(&w, "glance 5xx", &r, None);
    assert!(faults.stats().faulted >= 1);

    // and once everything is right again, C arrives (resumed from the
    // partial download the truncated tries left).
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(by_appdb(&w.glance(), C).len(), 1);
}

#[test]
fn sharing_with_two_vo_projects_accepts_and_prunes() {
    let mut w = World::new("share");
    w.vos = vec!["vo.alpha.example", "vo.beta.example"];
    let a = random_bytes(50_000);
    let imgs = [w.image(A, "a.img", &a)];
    w.publish_ok(&imgs);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].visibility, "shared");
    let id = g[0].id.clone();
    let alpha2 = var("REFSITE_PROJECT_ALPHA2_ID");
    let beta1 = var("REFSITE_PROJECT_BETA1_ID");
    // visible to users of both member projects (accepted memberships)
    assert_eq!(glance_as(&alpha2, &w.tag).len(), 1);
    assert_eq!(glance_as(&beta1, &w.tag).len(), 1);
    let members = |id: &str| {
        let id = id.to_string();
        block_on(async move {
            let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
            let mut m: Vec<(String, String)> = image::members(&s, &id)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.member_id, m.status))
                .collect();
            m.sort();
            m
        })
    };
    let mut want = vec![
        (alpha2.clone(), "accepted".to_string()),
        (beta1.clone(), "accepted".to_string()),
    ];
    want.sort();
    assert_eq!(members(&id), want);

    // drop beta: its member is pruned, the image disappears for beta-1
    w.vos = vec!["vo.alpha.example"];
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(members(&id), vec![(alpha2.clone(), "accepted".to_string())]);
    assert!(glance_as(&beta1, &w.tag).is_empty());
    assert_eq!(glance_as(&alpha2, &w.tag).len(), 1);
}

#[test]
fn dry_run_plans_and_changes_nothing() {
    let mut w = World::new("dry");
    let imgs = [w.image(A, "a.img", b"some bytes")];
    w.publish_ok(&imgs);
    let (code, r) = w.sync(&["--dry-run"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["dry_run"], true);
    assert_eq!(actions(&r), vec![("create".into(), A.into(), true)]);
    assert!(w.glance().is_empty());
    assert!(!Path::new(&w.dir.path().join("state/images/lists")).exists());
}

#[test]
fn tokens_are_sent_as_basic_auth_and_never_logged() {
    let w = World::new("token");
    // A file server that wants a token, and a subscription whose URL
    // carries it as userinfo (cloudkeeper style).
    let secret = "tok-5ecr3t-d0-not-log";
    let guarded = serve_on_loopback(|l| {
        files::serve(
            l,
            files::FilesOptions {
                root: w.root.clone(),
                token: Some(secret.into()),
            },
        )
        .unwrap()
    });
    let mut w = w;
    let imgs = [w.image(A, "a.img", b"bytes")];
    w.publish_ok(&imgs);
    let cfg = w.config();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &w.url(&format!("{}.list", w.list)),
        &format!(
            "http://{secret}:x-oauth-basic@{}/missing.list",
            guarded.server.addr()
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    let out = appliance()
        .arg("--config")
        .arg(&cfg)
        .arg("--log-level")
        .arg("debug")
        .args(["images", "verify"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Its only source failed: exit 3.
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("404"),
        "the token was accepted, the file is missing: {all}"
    );
    assert!(!all.contains(secret), "the token leaked: {all}");
    let stats = guarded.stats();
    assert!(stats.unauthorized == 0 && stats.not_found >= 1, "{stats:?}");
}
