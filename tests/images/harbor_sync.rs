//! The Harbor source client (`images::harbor`) against the Harbor-API test
//! server in front of a real OCI registry (Debian's `docker-registry`):
//! listing with robot credentials and pagination, selection by
//! `eu.egi.cloud.tag` and tag pattern, the Glance image atrope would make,
//! and the layer download with its sha256 checked (a wrong digest leaves
//! nothing behind).

use fedcloud_appliance::images::harbor::{self, Harbor, LayerError};
use fedcloud_appliance::images::plan::{Conventions, Visibility};
use fedcloud_appliance::secret::Secret;
use fedcloud_appliance::testsrv::harbor as front;
use serde_json::json;

use super::harbor::{push_image, Registry};
use super::sync::{block_on, random_bytes};

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
    block_on(async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let h = front::serve(
            tokio::net::TcpListener::from_std(std_l).unwrap(),
            front::HarborOptions {
                registry: url::Url::parse(&reg.url).unwrap(),
                credentials: Some(("robot$sync".into(), "s3cret".into())),
            },
        )
        .unwrap();
        let base = url::Url::parse(&format!("http://{}", h.server.addr())).unwrap();
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
        let a = &keep[0];
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
        let d = harbor::desired("harbor-test", &base, a, &layer, Visibility::Shared, &c).unwrap();
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
        let f = hb
            .download_layer(a, &layer, dir.path(), "ubuntu")
            .await
            .unwrap();
        assert_eq!(std::fs::read(&f.path).unwrap(), disk);
        assert_eq!(f.sha512, hex::encode(openssl::sha::sha512(&disk)));

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
        let e = hb
            .download_layer(a, &layer, dir.path(), "corrupt")
            .await
            .unwrap_err();
        assert!(matches!(e, LayerError::DigestMismatch { .. }), "{e}");
        assert!(e.to_string().contains(&layer_digest), "{e}");
        assert!(!dir.path().join("corrupt").exists());
        assert!(!dir.path().join(".partial").join("corrupt").exists());

        // Oversize: a layer size smaller than the blob.
        let mut small = layer.clone();
        small.size = 1000;
        let e = hb
            .download_layer(a, &small, dir.path(), "small")
            .await
            .unwrap_err();
        assert!(matches!(e, LayerError::Oversize { .. }), "{e}");
        assert!(!dir.path().join("small").exists());
    });
}

/// Into the reference site's real Glance: an artifact becomes an image with
/// atrope's registry properties; a corrupted layer for a new digest of the
/// same tag changes nothing; the new digest then replaces the old image
/// only after its upload.
#[test]
fn serial_harbor_sync_into_glance_replaces_only_after_upload() {
    use fedcloud_appliance::images::glance;
    let owner_project = super::sync::var("REFSITE_PROJECT_ALPHA1_ID");
    let reg = Registry::start();
    let disk_a = random_bytes(200_000);
    let disk_b = random_bytes(210_000);
    let ann = json!({
        "eu.egi.cloud.tag": "24.04",
        "org.openstack.glance.architecture": "x86_64",
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "24.04",
        "org.openstack.glance.disk_format": "raw",
    });
    block_on(async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let h = front::serve(
            tokio::net::TcpListener::from_std(std_l).unwrap(),
            front::HarborOptions {
                registry: url::Url::parse(&reg.url).unwrap(),
                credentials: None,
            },
        )
        .unwrap();
        let base = url::Url::parse(&format!("http://{}", h.server.addr())).unwrap();
        let (digest_a, layer_a) =
            push_image(&reg.url, "egi_vm_images/ubuntu", &["24.04"], &disk_a, &ann).await;
        let owner = super::sync::session(&owner_project).await;
        let tag = format!("t-harbor-{:08x}", rand::random::<u32>());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let src = harbor::HarborSource {
            name: format!("harbor-{tag}"),
            harbor: Harbor::new(http.clone(), base.clone(), None),
            projects: vec!["egi_vm_images".into()],
            repo_filter: None,
            tag_pattern: Some(regex::Regex::new(r"24\.04").unwrap()),
            visibility: Visibility::Private,
        };
        let c = Conventions {
            tag: tag.clone(),
            prefix: "EGI ".into(),
            cloudkeeper_properties: false,
            min_ram_from_list: false,
        };
        let cache = tempfile::tempdir().unwrap();
        let run = |src: harbor::HarborSource| {
            let owner = owner.clone();
            let c = c.clone();
            let dir = cache.path().to_path_buf();
            async move {
                harbor::sync(
                    &src,
                    &owner,
                    &c,
                    &dir,
                    chrono::Utc::now(),
                    chrono::Duration::minutes(120),
                    false,
                )
                .await
                .unwrap()
            }
        };
        let images = || {
            let owner = owner.clone();
            let tag = tag.clone();
            let name = src.name.clone();
            async move {
                let (ours, _) = glance::existing(&owner, &tag, &name).await.unwrap();
                ours
            }
        };

        // 1. The artifact is synced with atrope's registry properties.
        let rep = run(src.clone()).await;
        assert_eq!(rep.steps.len(), 1, "{rep:#?}");
        assert!(rep.steps[0].error.is_none(), "{rep:#?}");
        let ours = images().await;
        assert_eq!(ours.len(), 1, "{ours:#?}");
        let old = ours[0].clone();
        let want_ref = format!(
            "127.0.0.1:{}/egi_vm_images/ubuntu:24.04-{digest_a}",
            base.port().unwrap()
        );
        assert_eq!(old.status, "active");
        assert_eq!(old.name, "EGI egi_vm_images/ubuntu:24.04");
        assert_eq!(old.properties["appdb_id"], want_ref);
        assert_eq!(old.properties["vmcatcher_event_ad_mpuri"], want_ref);
        assert_eq!(old.properties["image_hash"], layer_a);
        assert_eq!(old.properties["os_distro"], "ubuntu");
        assert_eq!(old.properties["os_version"], "24.04");
        assert_eq!(old.properties["architecture"], "x86_64");
        assert_eq!(
            old.properties["os_hash_value"],
            hex::encode(openssl::sha::sha512(&disk_a))
        );
        let attrs: serde_json::Value =
            serde_json::from_str(&old.properties["APPLIANCE_ATTRIBUTES"]).unwrap();
        assert_eq!(attrs["eu.egi.cloud.image_ref"], want_ref.as_str());

        // 2. A second run changes nothing.
        let rep = run(src.clone()).await;
        assert!(
            rep.steps.iter().all(|s| s.action == "unchanged"),
            "{rep:#?}"
        );

        // 3. A new digest for the same tag, its layer corrupted in transit:
        //    nothing changes in Glance.
        let (digest_b, layer_b) =
            push_image(&reg.url, "egi_vm_images/ubuntu", &["24.04"], &disk_b, &ann).await;
        assert_ne!(digest_a, digest_b);
        let r = http
            .post(format!("{base}__test/faults"))
            .json(&json!({
                "status": 200,
                "body": "x".repeat(disk_b.len()),
                "path_prefix": "/v2/egi_vm_images/ubuntu/blobs/",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rep = run(src.clone()).await;
        let create = rep.steps.iter().find(|s| s.action == "create").unwrap();
        assert!(
            create
                .error
                .as_deref()
                .unwrap_or("")
                .contains("sha256 mismatch"),
            "{rep:#?}"
        );
        assert!(create.retired.is_empty());
        assert!(
            !rep.steps.iter().any(|s| s.action == "retire"),
            "the old image must not be retired on its own: {rep:#?}"
        );
        let ours = images().await;
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert_eq!(ours[0].id, old.id);
        assert_eq!(ours[0].status, "active");

        // 4. Intact: the new image is uploaded, then the old one retired.
        let rep = run(src.clone()).await;
        let create = rep.steps.iter().find(|s| s.action == "create").unwrap();
        assert!(create.error.is_none(), "{rep:#?}");
        assert_eq!(create.retired, vec![old.id.clone()]);
        let ours = images().await;
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert_ne!(ours[0].id, old.id);
        assert_eq!(ours[0].status, "active");
        assert_eq!(ours[0].properties["image_hash"], layer_b);
        assert!(ours[0].properties["appdb_id"].ends_with(&digest_b));

        // Clean up.
        for e in images().await {
            let _ = glance::retire(&owner, &e.id, Some(&e.status)).await;
        }
    });
}
