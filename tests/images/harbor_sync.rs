//! The Harbor source client (`images::harbor`) against the Harbor-API test
//! server in front of a real OCI registry (Debian's `docker-registry`):
//! listing with robot credentials and pagination, selection by
//! `eu.egi.cloud.tag` and tag pattern, the Glance image atrope would make,
//! and the layer download with its sha256 checked (a wrong digest leaves
//! nothing behind). Then `appliance images sync` of `type: harbor`
//! subscriptions into the reference site's real Glance.

use fedcloud_appliance::config::sections::images::AllowHttp;
use fedcloud_appliance::images::fetch::{Auth, FetchError, Fetcher, Limits, Place, Want};
use fedcloud_appliance::images::harbor::{self, Harbor};
use fedcloud_appliance::images::plan::{Conventions, Visibility};
use fedcloud_appliance::secret::Secret;
use fedcloud_appliance::testsrv::harbor as front;
use serde_json::json;

use super::harbor::{harbor_front, push_image, Registry};
use super::sync::{actions, block_on, random_bytes, serve_on_loopback, var, World};

#[test]
fn harbor_source_lists_selects_and_downloads_verified_layers() {
    let reg = Registry::start();
    let disk = random_bytes(300_000);
    let ann = json!({
        "eu.egi.cloud.tag": "24.04",
        "org.openstack.glance.architecture": "x86_64",
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "24.04",
    });
    let (_front, base) = harbor_front(&reg);
    block_on(async {
        let (manifest_digest, layer_digest) = push_image(
            &reg.url,
            "egi_vm_images/ubuntu",
            &["24.04", "latest"],
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
        push_image(&reg.url, "egi_vm_images/tool", &["1"], b"tool", &json!({})).await;

        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // Without credentials: 401, with the remedy naming the secrets file.
        let anon = Harbor::new(http.clone(), base.clone(), None);
        let e = anon.repositories("egi_vm_images").await.unwrap_err();
        assert!(e.remedy().contains("credentials"), "{e}");

        let secret = Secret::new("s3cret".to_string());
        let hb =
            Harbor::new(http, base.clone(), Some(("robot$sync".into(), secret))).with_page_size(1);
        // Page size 1: three repositories over three pages.
        let repos = hb.repositories("egi_vm_images").await.unwrap();
        assert_eq!(
            repos,
            vec![
                "egi_vm_images/alma",
                "egi_vm_images/tool",
                "egi_vm_images/ubuntu"
            ]
        );
        assert!(!format!("{hb:?}").contains("s3cret"));

        let arts = hb.project_artifacts("egi_vm_images", None).await.unwrap();
        assert_eq!(arts.len(), 3, "{arts:?}");
        let re = regex::Regex::new(r"2\d\.\d\d").unwrap();
        let (keep, skipped) = harbor::select(arts, Some(&re));
        assert_eq!(keep.len(), 1, "{keep:?}");
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped
            .iter()
            .any(|s| s.artifact.starts_with("egi_vm_images/tool@")
                && s.reason.contains("no eu.egi.cloud.tag")));
        let (a, tag) = &keep[0];
        assert_eq!(tag, "24.04");
        assert_eq!(a.digest, manifest_digest);
        assert_eq!(a.tags, vec!["24.04", "latest"]);

        let layer = hb.layer(a).await.unwrap();
        assert_eq!(layer.digest, layer_digest);
        assert_eq!(layer.size, disk.len() as u64);

        let c = Conventions {
            tag: "atrope".into(),
            prefix: "EGI ".into(),
            cloudkeeper_properties: false,
            min_ram_from_list: false,
        };
        let d = harbor::desired("harbor-test", &base, a, tag, &layer, Visibility::Shared, &c);
        let want_ref = format!(
            "127.0.0.1:{}/egi_vm_images/ubuntu:24.04-{manifest_digest}",
            base.port().unwrap()
        );
        assert_eq!(d.appdb_id, want_ref);
        assert_eq!(d.properties["vmcatcher_event_ad_mpuri"], want_ref);
        assert_eq!(d.properties["image_hash"], layer_digest);
        assert_eq!(d.name, "EGI egi_vm_images/ubuntu:24.04");
        assert_eq!(d.properties["os_distro"], "ubuntu");
        assert_eq!(d.properties["os_version"], "24.04");
        assert_eq!(d.properties["architecture"], "x86_64");
        let attrs: serde_json::Value =
            serde_json::from_str(&d.properties["APPLIANCE_ATTRIBUTES"]).unwrap();
        assert_eq!(attrs["eu.egi.cloud.image_ref"], want_ref.as_str());
        assert_eq!(attrs["eu.egi.cloud.tag"], "24.04");

        // The layer: size and sha256 checked, sha512 computed.
        let dir = tempfile::tempdir().unwrap();
        let registries = AllowHttp {
            registries: true,
            ..AllowHttp::default()
        };
        let fetcher = Fetcher::with_allow_http(None, Limits::default(), registries).unwrap();
        let (url, auth) = hb.blob_access(a, &layer).await.unwrap();
        let want = Want::Sha256(layer.digest.strip_prefix("sha256:").unwrap());
        let f = fetcher
            .download(
                &url,
                Place::Registry,
                auth.as_auth(),
                layer.size,
                want,
                dir.path(),
                "ubuntu",
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&f.path).unwrap(), disk);
        assert_eq!(f.sha512, hex::encode(openssl::sha::sha512(&disk)));
        // Without the robot's credentials the blob is refused.
        let e = fetcher
            .download(
                &url,
                Place::Registry,
                Auth::None,
                layer.size,
                want,
                dir.path(),
                "anon",
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("401"), "{e}");

        // Corrupted bytes of the right size (the registry's answer replaced
        // by a fault rule): a sha256 mismatch, and nothing is left behind.
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{base}__test/faults"))
            .json(&json!({
                "status": 200,
                "body": "x".repeat(disk.len()),
                "path_prefix": "/v2/egi_vm_images/ubuntu/blobs/",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let e = fetcher
            .download(
                &url,
                Place::Registry,
                auth.as_auth(),
                layer.size,
                want,
                dir.path(),
                "corrupt",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, FetchError::ChecksumMismatch { algo: "sha256", .. }),
            "{e}"
        );
        assert!(e.to_string().contains(layer.sha256_hex()), "{e}");
        assert!(!dir.path().join("corrupt").exists());
        assert!(!dir.path().join(".partial").join("corrupt.part").exists());
        assert!(!dir.path().join(".partial").join("corrupt.digest").exists());

        // Oversize: a layer size smaller than the blob.
        let e = fetcher
            .download(
                &url,
                Place::Registry,
                auth.as_auth(),
                1000,
                want,
                dir.path(),
                "small",
            )
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::Oversize { .. }), "{e}");
        assert!(!dir.path().join("small").exists());
    });
}

/// One plain HTTP request (status, body).
fn http(method: &str, url: &str, json: Option<serde_json::Value>) -> (u16, String) {
    let (method, url) = (method.to_string(), url.to_string());
    block_on(async move {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut rq = c.request(method.parse().unwrap(), url);
        if let Some(j) = json {
            rq = rq.json(&j);
        }
        let r = rq.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

/// The first image step of the run report with this action.
fn step(r: &serde_json::Value, action: &str) -> serde_json::Value {
    r["sources"][0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == action)
        .cloned()
        .unwrap_or_else(|| panic!("no {action} step: {r:#}"))
}

fn glance_ids(w: &World) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = w.glance().into_iter().map(|i| (i.id, i.status)).collect();
    v.sort();
    v
}

/// `appliance images sync` of a `type: harbor` subscription into the
/// reference site's real Glance: an artifact becomes an image with atrope's
/// registry properties, shared with the VOs' projects (memberships
/// accepted); an unchanged registry changes nothing; a new digest for the
/// tag whose layer is corrupted in transit changes nothing; intact, it
/// replaces the old image only after its upload; a project that suddenly
/// lists nothing retires nothing unless `--accept-empty`.
#[test]
fn harbor_subscription_syncs_shares_and_replaces_only_after_upload() {
    let reg = Registry::start();
    let (_front, base) = harbor_front(&reg);
    let mut w = World::new("harbor");
    let name = format!("h{}", &w.tag[2..]);
    w.subscriptions_extra = format!(
        "    - name: {name}\n      type: harbor\n      registry: {base}\n      projects: [egi_vm_images]\n      tag-pattern: '24\\.04'\n      robot: robot$sync\n      prefix: 'EGI '\n      vos: [vo.alpha.example, vo.beta.example]\n"
    );
    w.secrets_extra = format!("images:\n  {name}:\n    password: s3cret\n");
    let disk_a = random_bytes(200_000);
    let disk_b = random_bytes(210_000);
    let ann = json!({
        "eu.egi.cloud.tag": "24.04",
        "org.openstack.glance.architecture": "x86_64",
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "24.04",
    });
    let (digest_a, layer_a) = block_on(push_image(
        &reg.url,
        "egi_vm_images/ubuntu",
        &["24.04", "latest"],
        &disk_a,
        &ann,
    ));
    let src = ["--source", name.as_str()];

    // verify: lists the registry, touches nothing.
    let (code, r) = w.cli(&["images", "verify", &name]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r[0]["registry"]["images"], 1, "{r:#}");
    assert_eq!(r[0]["registry"]["projects"]["egi_vm_images"], 1, "{r:#}");

    // 1. Synced with atrope's registry properties, shared and accepted.
    let (code, r) = w.sync(&src);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert_eq!(g.len(), 1, "{g:#?}");
    let old = g[0].clone();
    let want_ref = format!(
        "127.0.0.1:{}/egi_vm_images/ubuntu:24.04-{digest_a}",
        base.port().unwrap()
    );
    let p = |i: &fedcloud_appliance::openstack::image::Image, k: &str| {
        i.property(k).map(String::from).unwrap_or_default()
    };
    assert_eq!(old.status, "active");
    assert_eq!(old.visibility, "shared");
    assert_eq!(old.name.as_deref(), Some("EGI egi_vm_images/ubuntu:24.04"));
    assert_eq!(p(&old, "appdb_id"), want_ref);
    assert_eq!(p(&old, "vmcatcher_event_ad_mpuri"), want_ref);
    assert_eq!(p(&old, "image_hash"), layer_a);
    assert_eq!(p(&old, "image_list"), name);
    assert_eq!(p(&old, "os_distro"), "ubuntu");
    assert_eq!(p(&old, "os_version"), "24.04");
    assert_eq!(p(&old, "architecture"), "x86_64");
    assert_eq!(
        old.os_hash_value.as_deref(),
        Some(hex::encode(openssl::sha::sha512(&disk_a)).as_str())
    );
    let attrs: serde_json::Value = serde_json::from_str(&p(&old, "APPLIANCE_ATTRIBUTES")).unwrap();
    assert_eq!(attrs["eu.egi.cloud.image_ref"], want_ref.as_str());
    for project in ["REFSITE_PROJECT_ALPHA2_ID", "REFSITE_PROJECT_BETA1_ID"] {
        assert_eq!(
            super::sync::glance_as(&var(project), &w.tag).len(),
            1,
            "visible to a user of {project}"
        );
    }
    // The layer is cached under its digest and indexed.
    let cache = w.dir.path().join("image-data").join(&name);
    assert!(cache
        .join(layer_a.strip_prefix("sha256:").unwrap())
        .exists());

    // 2. Unchanged: nothing to do, not even a download.
    let (code, r) = w.sync(&src);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        actions(&r),
        vec![("unchanged".into(), want_ref.clone(), true)]
    );
    assert_eq!(glance_ids(&w), vec![(old.id.clone(), "active".into())]);

    // 3. A new digest for the tag; dry run: the plan, nothing changed.
    let (digest_b, layer_b) = block_on(push_image(
        &reg.url,
        "egi_vm_images/ubuntu",
        &["24.04"],
        &disk_b,
        &ann,
    ));
    assert_ne!(digest_a, digest_b);
    let ref_b = want_ref.replace(&digest_a, &digest_b);
    let (code, r) = w.sync(&["--source", &name, "--dry-run"]);
    assert_eq!(code, 0, "{r:#}");
    let plan = &r["sources"][0]["images"];
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "create"
                && i["appdb_id"] == ref_b.as_str()
                && i["detail"]["plan"]["replaces"][0] == old.id.as_str()),
        "{r:#}"
    );
    assert_eq!(glance_ids(&w), vec![(old.id.clone(), "active".into())]);

    // 4. Its layer corrupted in transit: nothing changes in Glance.
    // (two requests: the blob's HEAD probe, then its GET)
    let fault = json!({
        "status": 200,
        "body": "x".repeat(disk_b.len()),
        "path_prefix": "/v2/egi_vm_images/ubuntu/blobs/",
        "count": 2,
    });
    let (st, body) = http("POST", &format!("{base}__test/faults"), Some(fault));
    assert_eq!(st, 200, "{body}");
    let (code, r) = w.sync(&src);
    assert_eq!(code, 1, "{r:#}");
    let create = step(&r, "create");
    assert!(
        create["error"]
            .as_str()
            .unwrap_or("")
            .contains("sha256 mismatch"),
        "{r:#}"
    );
    assert!(!actions(&r).iter().any(|a| a.0 == "retire"), "{r:#}");
    assert_eq!(glance_ids(&w), vec![(old.id.clone(), "active".into())]);
    http("DELETE", &format!("{base}__test/faults"), None);

    // 5. Intact, but the transfer is cut after 100 kB: resumed with a
    //    Range request; the new image is uploaded, then the old one retired.
    let cut = json!({
        "truncate_after": 100_000,
        "path_prefix": "/v2/egi_vm_images/ubuntu/blobs/",
        "count": 2,
    });
    let (st, body) = http("POST", &format!("{base}__test/faults"), Some(cut));
    assert_eq!(st, 200, "{body}");
    let (code, r) = w.sync(&src);
    assert_eq!(code, 0, "{r:#}");
    let create = step(&r, "create");
    assert_eq!(create["detail"]["resumed"], true, "{r:#}");
    assert_eq!(
        create["detail"]["retired"][0]["glance_id"],
        old.id.as_str(),
        "{r:#}"
    );
    let g = w.glance();
    assert_eq!(g.len(), 1, "{g:#?}");
    let new = g[0].clone();
    assert_ne!(new.id, old.id);
    assert_eq!(new.status, "active");
    assert_eq!(p(&new, "image_hash"), layer_b);
    assert_eq!(p(&new, "appdb_id"), ref_b);

    // 6. The project suddenly lists nothing (every manifest deleted): the
    //    run is refused (its only source failed: exit 3) and Glance keeps
    //    the image; --accept-empty retires.
    for d in [&digest_a, &digest_b] {
        let url = format!("{}/v2/egi_vm_images/ubuntu/manifests/{d}", reg.url);
        let (st, body) = http("DELETE", &url, None);
        assert_eq!(st, 202, "{body}");
    }
    let (code, r) = w.sync(&src);
    assert_eq!(code, 3, "{r:#}");
    let s = &r["sources"][0];
    assert_eq!(s["status"], "failed", "{r:#}");
    assert_eq!(s["failure"]["stage"], "listing", "{r:#}");
    assert!(
        s["failure"]["remedy"]
            .as_str()
            .unwrap()
            .contains("--accept-empty"),
        "{r:#}"
    );
    assert_eq!(s["last_listing"]["images"], 1, "{r:#}");
    assert_eq!(glance_ids(&w), vec![(new.id.clone(), "active".into())]);
    let (code, r) = w.sync(&["--source", &name, "--accept-empty"]);
    assert_eq!(code, 0, "{r:#}");
    assert!(w.glance().is_empty(), "{r:#}");
}

/// EGI's catch-all writes atrope `sources.yaml` with `type: harbor`
/// sources and a `harbor:` defaults block: read unchanged, they run like
/// configured ones (here: a dry run's plan and an `images list` entry).
#[test]
fn atrope_harbor_sources_are_read_unchanged() {
    let reg = Registry::start();
    let (_front, base) = harbor_front(&reg);
    let mut w = World::new("atrope-harbor");
    let (digest, _) = block_on(push_image(
        &reg.url,
        "egi_vm_images/alma",
        &["9", "9-rc1"],
        b"alma disk bytes",
        &json!({"eu.egi.cloud.tag": "9"}),
    ));
    let host = format!("127.0.0.1:{}", base.port().unwrap());
    let sources = w.dir.path().join("sources.yaml");
    std::fs::write(
        &sources,
        format!(
            "harbor:\n  api_url: {base}api/v2.0\n  registry_host: {host}\n  prefix: \"registry.egi.eu \"\n  tag_pattern: \"^[^-]*$\"\n  auth_user: robot$sync\n  auth_password: s3cret\negi_vm_images:\n  type: harbor\n  project: egi_vm_images\n  vos: [vo.alpha.example]\n"
        ),
    )
    .unwrap();
    let vo_map = w.dir.path().join("vo_map.yaml");
    std::fs::write(
        &vo_map,
        format!(
            "vo.alpha.example:\n  project_id: {}\n",
            var("REFSITE_PROJECT_ALPHA2_ID")
        ),
    )
    .unwrap();
    w.images_extra = format!(
        "  atrope-sources: {}\n  atrope-vo-map: {}\n",
        sources.display(),
        vo_map.display()
    );
    let (code, r) = w.sync(&["--source", "egi_vm_images", "--dry-run"]);
    assert_eq!(code, 0, "{r:#}");
    let s = &r["sources"][0];
    assert_eq!(s["origin"], sources.display().to_string(), "{r:#}");
    let plan = &s["images"][0];
    assert_eq!(plan["action"], "create", "{r:#}");
    // The tag atrope picks: the first whose start matches `^[^-]*$`.
    assert_eq!(
        plan["appdb_id"],
        format!("{host}/egi_vm_images/alma:9-{digest}"),
        "{r:#}"
    );
    assert!(w.glance().is_empty());
    let (code, l) = w.cli(&["images", "list", "--offline"]);
    assert_eq!(code, 0, "{l:#}");
    assert!(
        l.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "egi_vm_images" && e["kind"] == "harbor"),
        "{l:#}"
    );
}

/// The reference site's registry runs in token mode, like Harbor's: it
/// accepts only bearer tokens from `/service/token`. In front of it here: a
/// Harbor front that, unlike Harbor core, does not take the robot's Basic
/// credentials on `/v2/` (`set_registry_basic(false)`), so `appliance images
/// sync` must answer the registry's challenges with tokens (manifests and
/// the layer blob); the artifact lands in the real Glance.
#[test]
fn site_registry_in_token_mode_syncs_with_bearer_tokens() {
    use fedcloud_appliance::testsrv::harbor::{push_image as push, Disk, PushAuth};
    let mut w = World::new("harbor-token");
    let repo = format!("t{}", &w.tag[w.tag.len() - 8..]);
    let name = format!("site-{repo}");
    let disk = random_bytes(120_000);
    let registry = url::Url::parse(&var("REFSITE_REGISTRY_URL")).unwrap();
    let auth = PushAuth {
        token_service: url::Url::parse(&var("REFSITE_HARBOR_TOKEN_URL")).unwrap(),
        service: "harbor-registry".into(),
        credentials: Some((var("REFSITE_HARBOR_ROBOT"), var("REFSITE_HARBOR_PASSWORD"))),
    };
    let pushed = block_on(async {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        push(
            &c,
            &registry,
            &format!("egi_vm_images/{repo}"),
            &["1.0"],
            Disk::Bytes(&disk),
            &json!({"eu.egi.cloud.tag": "1.0"}),
            Some(&auth),
        )
        .await
        .unwrap()
    });
    // Anonymous pulls are refused by the registry itself.
    let (st, _) = http(
        "GET",
        &format!("{registry}v2/egi_vm_images/{repo}/blobs/{}", pushed.layer),
        None,
    );
    assert_eq!(st, 401);
    let front = {
        let base = std::path::PathBuf::from(var("REFSITE_BASE")).join("harbor");
        let issuer = fedcloud_appliance::testsrv::registry_token::TokenIssuer::from_files(
            &base.join("token-key.pem"),
            &base.join("token-cert.pem"),
        )
        .unwrap();
        let f = serve_on_loopback(|l| {
            front::serve_with_tokens(
                l,
                front::HarborOptions {
                    registry: registry.clone(),
                    credentials: Some((
                        var("REFSITE_HARBOR_ROBOT"),
                        var("REFSITE_HARBOR_PASSWORD"),
                    )),
                },
                issuer,
            )
            .unwrap()
        });
        f.set_registry_basic(false);
        f
    };
    w.subscriptions_extra = format!(
        "    - name: {name}\n      type: harbor\n      registry: http://{}\n      projects: [egi_vm_images]\n      repository: {repo}\n      robot: {}\n",
        front.server.addr(),
        var("REFSITE_HARBOR_ROBOT"),
    );
    w.secrets_extra = format!(
        "images:\n  {name}:\n    password: {}\n",
        var("REFSITE_HARBOR_PASSWORD")
    );
    let (code, r) = w.sync(&["--source", &name]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert_eq!(g.len(), 1, "{r:#}");
    assert_eq!(g[0].status, "active");
    assert_eq!(g[0].property("image_hash"), Some(pushed.layer.as_str()));
    assert_eq!(
        g[0].os_hash_value.as_deref(),
        Some(hex::encode(openssl::sha::sha512(&disk)).as_str())
    );
    // Through this front the robot's Basic credentials never reach /v2/:
    // every registry request carried a token.
    assert_eq!(front.stats().registry_basic, 0);
    // The robot password never shows in the report.
    assert!(!r.to_string().contains(&var("REFSITE_HARBOR_PASSWORD")));
}
