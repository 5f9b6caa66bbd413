//! Legacy appliance images (issue #12 point 4): images that cloudkeeper-os
//! (both attribute forms: one `APPLIANCE_ATTRIBUTES` JSON, 0.9.4–0.9.9;
//! one property per attribute, 0.9.10+) and the 2016 appliance's atrope
//! uploaded into the reference site's real Glance, with exactly their
//! properties, are adopted by `appliance images sync` of the same list:
//! same Glance ids, nothing downloaded or uploaded, no duplicate; the `EOL`
//! twin cloudkeeper-os left for its cleanup is retired.

use fedcloud_appliance::openstack::image;
use serde_json::{json, Value};

use super::lists::Img;
use super::sync::{actions, block_on, random_bytes, session, var, World};

/// The list identifier `World::publish` signs.
const LIST_ID: &str = "bbbbbbbb-0000-0000-0000-000000000001";

fn fresh_id(tag: u16) -> String {
    format!(
        "cccccccc-{tag:04x}-4000-8000-{:012x}",
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}

/// Upload `bytes` into the owner project with `props`, as the legacy tool
/// did; the image's id.
fn legacy_upload(props: Value, bytes: &[u8]) -> String {
    let bytes = bytes.to_vec();
    block_on(async move {
        let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
        let mut body = json!({
            "name": "Test image [Ubuntu/22.04/KVM]",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "private",
        });
        for (k, v) in props.as_object().unwrap() {
            body[k] = v.clone();
        }
        let img = image::create_image(&s, &body).await.unwrap();
        let size = bytes.len() as u64;
        image::upload_image(
            &s,
            &img.id,
            size,
            move || reqwest::Body::from(bytes.clone()),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        img.id
    })
}

fn get(id: &str) -> Option<image::Image> {
    let id = id.to_string();
    block_on(async move {
        let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
        image::image(&s, &id).await.ok()
    })
}

/// Deletes the test's images, whoever tagged them.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = self.0.clone();
        block_on(async move {
            let s = session(&var("REFSITE_PROJECT_ALPHA1_ID")).await;
            for id in ids {
                let _ = image::delete_image(&s, &id).await;
            }
        });
    }
}

/// cloudkeeper-os's properties of a list image (`utils.extract_appliance_properties`).
fn cloudkeeper_props(img: &Img, per_key: bool, status: &str) -> Value {
    let mut p = json!({
        "APPLIANCE_ID": img.id,
        "APPLIANCE_IMAGE_LIST_ID": LIST_ID,
        "APPLIANCE_STATUS": status,
        "APPLIANCE_TITLE": img.title,
        "APPLIANCE_DESCRIPTION": img.description,
        "APPLIANCE_MPURI": format!("https://appdb.test.local/store/vo/image/{}:1/", img.id),
        "APPLIANCE_GROUP": "General group",
        "APPLIANCE_RAM": "0",
        "APPLIANCE_CORE": "1",
        "APPLIANCE_VERSION": img.version,
        "APPLIANCE_ARCHITECTURE": "x86_64",
        "APPLIANCE_OPERATING_SYSTEM": "Linux",
        "APPLIANCE_VO": "vo.alpha.example",
        "APPLIANCE_EXPIRATION_DATE": "16725225600",
        "vmcatcher_event_ad_mpuri": format!("https://appdb.test.local/store/vo/image/{}:1/", img.id),
    });
    let attrs = json!({
        "dc:identifier": img.id,
        "hv:version": img.version,
        "sl:checksum:sha512": img.sha512,
        "hv:size": img.size.to_string(),
        "ad:mpuri": format!("https://appdb.test.local/store/vo/image/{}:1/", img.id),
    });
    if per_key {
        for (k, v) in attrs.as_object().unwrap() {
            p[k] = v.clone();
        }
    } else {
        p["APPLIANCE_ATTRIBUTES"] = Value::String(attrs.to_string());
    }
    p
}

#[test]
fn legacy_images_are_adopted_not_uploaded_again() {
    let mut w = World::new("ckadopt");
    w.images_extra = "  cloudkeeper-properties: true\n".into();
    let (json_id, key_id, atrope_id) = (fresh_id(1), fresh_id(2), fresh_id(3));
    let (a, b, c) = (
        random_bytes(200_000),
        random_bytes(150_000),
        random_bytes(120_000),
    );
    let imgs = [
        w.image(&json_id, "json.img", &a),
        w.image(&key_id, "key.img", &b),
        w.image(&atrope_id, "atrope.img", &c),
    ];
    w.publish_ok(&imgs);

    // What the legacy tools left in Glance.
    let ck_json = legacy_upload(cloudkeeper_props(&imgs[0], false, "ACTIVE"), &a);
    let ck_key = legacy_upload(cloudkeeper_props(&imgs[1], true, "ACTIVE"), &b);
    let mut older = Img::new(&json_id, imgs[0].url.clone(), b"an older version");
    older.version = "0.9";
    let eol = legacy_upload(cloudkeeper_props(&older, false, "EOL"), b"an older version");
    let atrope = legacy_upload(
        json!({
            "tags": ["atrope"],
            "name": format!("FEDCLOUD {}", imgs[2].title),
            "appdb_id": atrope_id,
            "sha512": imgs[2].sha512,
            "image_list": w.list,
            "vo": "vo.alpha.example",
            "os_distro": "ubuntu",
            "os_version": "22.04",
            "architecture": "x86_64",
            "vmcatcher_event_dc_description": imgs[2].description,
            "vmcatcher_event_ad_mpuri": format!("https://appdb.test.local/store/vo/image/{atrope_id}:1/"),
        }),
        &c,
    );
    let _cleanup = Cleanup(vec![
        ck_json.clone(),
        ck_key.clone(),
        eol.clone(),
        atrope.clone(),
    ]);

    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let mut got = actions(&r);
    got.sort();
    let mut want = vec![
        ("adopt".to_string(), json_id.clone(), true),
        ("adopt".to_string(), key_id.clone(), true),
        ("adopt".to_string(), atrope_id.clone(), true),
        ("retire".to_string(), json_id.clone(), true),
    ];
    want.sort();
    assert_eq!(got, want, "{r:#}");
    let files = w.files.stats();
    let image_gets = files
        .log
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with(".img"))
        .count();
    assert_eq!(image_gets, 0, "an image was downloaded: {:?}", files.log);

    // Same Glance images, now ours.
    for (id, glance_id, bytes) in [
        (&json_id, &ck_json, &a),
        (&key_id, &ck_key, &b),
        (&atrope_id, &atrope, &c),
    ] {
        let i = get(glance_id).unwrap_or_else(|| panic!("{glance_id} ({id}) is gone"));
        assert_eq!(i.status, "active");
        assert!(i.tags.contains(&w.tag), "{id}: {:?}", i.tags);
        assert_eq!(i.property("appdb_id"), Some(id.as_str()));
        let sha = hex::encode(openssl::sha::sha512(bytes));
        assert_eq!(
            i.property("image_hash"),
            Some(format!("sha512:{sha}").as_str())
        );
        assert_eq!(
            i.os_hash_value.as_deref(),
            Some(sha.as_str()),
            "Glance holds the listed bytes"
        );
        assert_eq!(i.property("image_list"), Some(w.list.as_str()));
        assert_eq!(
            i.property("APPLIANCE_STATUS"),
            None,
            "cloudkeeper-os leftovers removed"
        );
        assert_eq!(i.property("sl:checksum:sha512"), None);
        assert_eq!(
            i.property("APPLIANCE_IMAGE_LIST_ID"),
            Some(LIST_ID),
            "cloudkeeper-properties keeps it"
        );
    }
    assert!(get(&eol).is_none(), "the EOL twin was not retired");
    let ours = w.glance();
    assert_eq!(ours.len(), 3, "a duplicate was made: {ours:#?}");

    // From now on they are plain managed images.
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        actions(&r).iter().all(|(a, _, ok)| a == "unchanged" && *ok),
        "{r:#}"
    );
}
