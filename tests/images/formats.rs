//! Format conversion with `qemu-img` (made once, keyed by the source
//! digest, reused from the cache) and the run lock (a second concurrent
//! sync exits 1 without touching the list, the images or Glance), against
//! the reference site's Glance.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use fedcloud_appliance::openstack::image;
use fedcloud_appliance::testsrv::faults::Fault;

use super::sync::{actions, block_on, random_bytes, session, var, World};
use crate::util::appliance;

const A: &str = "cccccccc-2222-4222-8222-000000000001";

fn qemu_img_format(path: &std::path::Path) -> String {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .expect("qemu-img (qemu-utils) is needed for the conversion test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["format"].as_str().unwrap().to_string()
}

#[test]
fn a_raw_image_is_converted_to_qcow2_once_keyed_by_its_digest() {
    let mut w = World::new("qcow");
    w.images_extra = "  formats: [qcow2]\n".into();
    let raw = random_bytes(3 << 20);
    let imgs = [w.image(A, "a.img", &raw)];
    w.publish_ok(&imgs);

    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let item = &r["sources"][0]["images"][0];
    assert_eq!(item["detail"]["format"], "qcow2", "{r:#}");
    let conv = &item["detail"]["conversion"];
    assert_eq!(conv["from"], "raw", "{r:#}");
    assert_eq!(conv["made"], true, "{r:#}");
    // Named by the source digest, next to the download, indexed.
    let key = &imgs[0].sha512[..32];
    let cache = w.dir.path().join("image-data").join(&w.list);
    let converted = cache.join(format!("{key}.qcow2"));
    assert_eq!(conv["file"], format!("{key}.qcow2"));
    assert_eq!(qemu_img_format(&converted), "qcow2");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let conv_sha = hex::encode(openssl::sha::sha512(&std::fs::read(&converted).unwrap()));
    assert_eq!(index[format!("{key}.qcow2")]["sha512"], conv_sha);
    // Glance holds the converted bytes, as qcow2, labelled with the
    // listed (source) hash.
    let g = w.glance();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].disk_format.as_deref(), Some("qcow2"));
    assert_eq!(g[0].os_hash_value.as_deref(), Some(conv_sha.as_str()));
    assert_eq!(
        g[0].property("image_hash"),
        Some(format!("sha512:{}", imgs[0].sha512).as_str())
    );
    let stamp = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let before = stamp(&converted);

    // The image disappears from Glance (an operator deleted it): the next
    // run uploads again from the cache: no download, no second conversion.
    let id = g[0].id.clone();
    block_on(async move {
        let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
        image::delete_image(&s, &id).await.unwrap();
    });
    let gets = |w: &World| {
        w.files
            .stats()
            .log
            .iter()
            .filter(|e| e.path == "/a.img")
            .count()
    };
    assert_eq!(gets(&w), 1);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let item = &r["sources"][0]["images"][0];
    assert_eq!(item["action"], "create", "{r:#}");
    assert_eq!(item["detail"]["cache"], "hit", "{r:#}");
    assert_eq!(item["detail"]["conversion"]["made"], false, "{r:#}");
    assert_eq!(gets(&w), 1, "downloaded again");
    assert_eq!(stamp(&converted), before, "converted again");
    let g = w.glance();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].os_hash_value.as_deref(), Some(conv_sha.as_str()));

    // A converted file that changed on disk is not trusted: made again.
    std::fs::write(&converted, b"tampered").unwrap();
    let id = g[0].id.clone();
    block_on(async move {
        let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
        image::delete_image(&s, &id).await.unwrap();
    });
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["sources"][0]["images"][0]["detail"]["conversion"]["made"], true,
        "{r:#}"
    );
    assert_eq!(qemu_img_format(&converted), "qcow2");
    let g = w.glance();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].disk_format.as_deref(), Some("qcow2"));
}

#[test]
fn a_second_concurrent_sync_exits_1_and_touches_nothing() {
    let mut w = World::new("lock");
    let bytes = random_bytes(1 << 20);
    let imgs = [w.image(A, "a.img", &bytes)];
    w.publish_ok(&imgs);
    // The first run downloads slowly (~4 s) while holding the lock.
    w.files
        .faults
        .push(Fault::throttle(256 << 10).on_path("/a.img").times(1));
    let cfg = w.config();
    let first = std::process::Command::new(assert_cmd::cargo::cargo_bin("appliance"))
        .arg("--config")
        .arg(&cfg)
        .arg("--json")
        .args(["images", "sync"])
        .env_remove("APPLIANCE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let image_gets = |w: &World| {
        w.files
            .stats()
            .log
            .iter()
            .filter(|e| e.path == "/a.img")
            .count()
    };
    while image_gets(&w) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the first sync never started downloading"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list_gets = |w: &World| {
        let p = format!("/{}.list", w.list);
        w.files.stats().log.iter().filter(|e| e.path == p).count()
    };
    assert_eq!(list_gets(&w), 1);

    // The second run, while the first holds the lock.
    let out = appliance()
        .arg("--config")
        .arg(&cfg)
        .arg("--json")
        .args(["images", "sync"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sync.lock"), "names the lock: {stderr}");
    assert_eq!(list_gets(&w), 1, "the second run fetched the list");
    assert_eq!(image_gets(&w), 1, "the second run downloaded");
    assert!(w.glance().is_empty(), "the second run touched Glance");

    // The first completes normally.
    let first = first.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap_or_else(|e| {
        panic!(
            "first run: no report ({e}): {}",
            String::from_utf8_lossy(&first.stderr)
        )
    });
    assert_eq!(first.status.code(), Some(0), "{report:#}");
    assert_eq!(actions(&report), vec![("create".into(), A.into(), true)]);
    assert!(
        t.elapsed() > Duration::from_secs(2),
        "the throttle did not apply"
    );
    assert_eq!(w.glance().len(), 1);
}
