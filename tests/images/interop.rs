//! Interop with atrope 2.0.0 (PyPI), the tool sites run today: an image
//! that atrope's glance dispatcher uploaded into the reference site's
//! Glance is adopted by `appliance images sync` of the same list: same
//! Glance id, same checksum, no second download or upload, no duplicate.

use std::path::PathBuf;
use std::process::Command;

use fedcloud_appliance::openstack::image;
use serde_json::Value;

use super::pki::{pki, CA_DN, ENDORSER_DN};
use super::sync::{actions, block_on, random_bytes, session, var, World};
use crate::util::refsite;

/// atrope 2.0.0's CLI: `REFSITE_ATROPE` from the reference site's
/// environment, else the venv `scripts/bench/images` makes
/// (`${XDG_CACHE_HOME:-~/.cache}/fedcloud-appliance/venv-atrope`).
fn atrope() -> PathBuf {
    if let Some(p) = refsite().vars().get("REFSITE_ATROPE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    let p = cache.join("fedcloud-appliance/venv-atrope/bin/atrope");
    assert!(
        p.exists(),
        "atrope 2.0.0 (PyPI) is needed for the adoption test and was not found at {} \
         (nor REFSITE_ATROPE in reference-site.env); make it with `scripts/bench/images` \
         or: python3 -m venv {venv} && {venv}/bin/pip install atrope==2.0.0",
        p.display(),
        venv = cache.join("fedcloud-appliance/venv-atrope").display()
    );
    p
}

/// Glance images (any tag) of the owner project with `appdb_id`.
fn with_appdb_id(appdb_id: &str) -> Vec<image::Image> {
    let id = appdb_id.to_string();
    block_on(async move {
        let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
        image::images(
            &s,
            &image::ImageQuery {
                properties: vec![("appdb_id".into(), id)],
                ..Default::default()
            },
        )
        .await
        .unwrap()
    })
}

/// Deletes every image with the test's `appdb_id`, whoever tagged it.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let id = self.0.clone();
        block_on(async move {
            let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
            if let Ok(list) = image::images(
                &s,
                &image::ImageQuery {
                    properties: vec![("appdb_id".into(), id)],
                    ..Default::default()
                },
            )
            .await
            {
                for i in list {
                    let _ = image::delete_image(&s, &i.id).await;
                }
            }
        });
    }
}

#[test]
fn an_image_atrope_uploaded_is_adopted_not_duplicated() {
    let atrope = atrope();
    let mut w = World::new("adopt");
    // A fresh identifier per run: atrope's images carry its fixed tag.
    let appdb_id = format!(
        "adadadad-{:04x}-4000-8000-{:012x}",
        rand::random::<u16>(),
        rand::random::<u64>() & 0xffff_ffff_ffff
    );
    let _cleanup = Cleanup(appdb_id.clone());
    let bytes = random_bytes(400_000);
    let imgs = [w.image(&appdb_id, "a.img", &bytes)];
    w.publish_ok(&imgs);

    // atrope 2.0.0, glance dispatcher, against the reference site.
    let d = w.dir.path().join("atrope");
    std::fs::create_dir_all(d.join("state")).unwrap();
    std::fs::create_dir_all(d.join("cache")).unwrap();
    let conf = d.join("atrope.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nstate_path = {st}\nca_path = {ca}/\n[cache]\npath = {cache}\n[sources]\nhepix_sources = {d}/hepix.yaml\n[dispatchers]\ndispatcher = glance\n[glance]\nauth_type = password\nauth_url = {auth}\nusername = {user}\npassword = {pw}\nuser_domain_id = default\nproject_id = {alpha1}\n",
            st = d.join("state").display(),
            ca = pki().ca_dir().display(),
            cache = d.join("cache").display(),
            d = d.display(),
            auth = var("OS_AUTH_URL"),
            user = var("REFSITE_USER"),
            pw = var("REFSITE_PASSWORD"),
            alpha1 = var("REFSITE_PROJECT_ALPHA1_ID"),
        ),
    )
    .unwrap();
    // A token makes atrope upload the image private (without one: public,
    // which needs admin rights in Glance).
    std::fs::write(
        d.join("hepix.yaml"),
        format!(
            "{list}:\n  url: {url}\n  enabled: true\n  token: atrope-token\n  endorser: {{dn: '{ENDORSER_DN}', ca: '{CA_DN}'}}\n  images: []\n  prefix: ''\n",
            list = w.list,
            url = w.url(&format!("{}.list", w.list)),
        ),
    )
    .unwrap();
    let out = Command::new(&atrope)
        .arg("--config-file")
        .arg(&conf)
        .arg("dispatch")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "atrope dispatch failed:\n{log}");
    let theirs = with_appdb_id(&appdb_id);
    assert_eq!(theirs.len(), 1, "atrope did not upload one image:\n{log}");
    let theirs = theirs[0].clone();
    assert_eq!(theirs.status, "active", "{theirs:#?}\n{log}");
    assert_eq!(theirs.tags, vec!["atrope".to_string()]);
    assert_eq!(theirs.property("sha512"), Some(imgs[0].sha512.as_str()));
    assert!(theirs.property("image_hash").is_none());
    let downloads = |w: &World| {
        w.files
            .stats()
            .log
            .iter()
            .filter(|e| e.path == "/a.img" && e.method == "GET")
            .count()
    };
    assert_eq!(downloads(&w), 1, "atrope downloads the image once");

    // appliance, same list: adopts it.
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        actions(&r),
        vec![("adopt".to_string(), appdb_id.clone(), true)],
        "{r:#}"
    );
    assert_eq!(
        r["sources"][0]["images"][0]["glance_id"],
        Value::String(theirs.id.clone())
    );
    let now = with_appdb_id(&appdb_id);
    assert_eq!(now.len(), 1, "a duplicate was made: {now:#?}");
    let ours = &now[0];
    assert_eq!(ours.id, theirs.id, "same Glance image");
    assert_eq!(ours.status, "active");
    assert_eq!(ours.checksum, theirs.checksum, "same bytes");
    assert_eq!(ours.os_hash_value, theirs.os_hash_value);
    assert_eq!(
        ours.os_hash_value.as_deref(),
        Some(imgs[0].sha512.as_str()),
        "Glance holds the listed bytes"
    );
    assert_eq!(
        ours.property("image_hash"),
        Some(format!("sha512:{}", imgs[0].sha512).as_str())
    );
    assert_eq!(ours.property("image_list"), Some(w.list.as_str()));
    assert!(ours.tags.contains(&w.tag), "{:?}", ours.tags);
    assert_eq!(downloads(&w), 1, "the appliance downloaded nothing");

    // And it is ours from now on: the next run leaves it alone.
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        actions(&r),
        vec![("unchanged".to_string(), appdb_id.clone(), true)],
        "{r:#}"
    );
    assert_eq!(with_appdb_id(&appdb_id).len(), 1);
    assert_eq!(downloads(&w), 1);
}
