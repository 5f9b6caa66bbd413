//! Issue #14: the image flow under hostile and awkward input, one test per
//! class of defect, against the real Glance and Keystone of the reference
//! site, with hostile lists signed in the test setup (test CA, endorser,
//! CRL of [`super::pki`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::sync::{actions, by_appdb, random_bytes, World};

/// Cache paths (#14 item 4): identifiers that the old naming mapped to one
/// file (`k:1`, `k_1`), and one equal to the index's own file name, are
/// each cached, verified and uploaded with their own bytes; the index
/// survives.
#[test]
fn cache_names_are_injective_and_never_the_cache_s_own_files() {
    let mut w = World::new("cachenames");
    let ids = ["k:1", "k_1", "index.json"];
    let bytes: Vec<Vec<u8>> = ids.iter().map(|_| random_bytes(20_000)).collect();
    let imgs: Vec<_> = ids
        .iter()
        .zip(&bytes)
        .enumerate()
        .map(|(i, (id, b))| w.image(id, &format!("f{i}.img"), b))
        .collect();
    w.publish_ok(&imgs);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    for (id, img) in ids.iter().zip(&imgs) {
        let found = by_appdb(&g, id);
        assert_eq!(found.len(), 1, "{id}: {r:#}");
        assert_eq!(found[0].os_hash_value.as_deref(), Some(img.sha512.as_str()));
    }
    let cache = w.dir.path().join("image-data").join(&w.list);
    let index: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index.keys().map(String::as_str).collect();
    assert_eq!(names, ["img-index.json", "img-k_3a1", "img-k_5f1"]);
    // Warm: every file is a cache hit, nothing changes.
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        actions(&r).iter().all(|(a, _, ok)| a == "unchanged" && *ok),
        "{r:#}"
    );
}

/// An upgrade from the old cache naming: a verified download under its old
/// name is taken over (renamed, not downloaded again); a file under the old
/// shared name that holds another identifier's bytes is not used.
#[test]
fn old_cache_names_are_adopted_only_when_their_digest_matches() {
    let mut w = World::new("cacheold");
    let a = random_bytes(30_000);
    let b = random_bytes(30_000);
    let imgs = [w.image("x:1", "a.img", &a), w.image("x_1", "b.img", &b)];
    w.publish_ok(&imgs);
    // A cache as the old release left it: `x_1` holds x:1's bytes.
    let cache = w.dir.path().join("image-data").join(&w.list);
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("x_1"), &a).unwrap();
    let mut ix = fedcloud_appliance::images::cache::Index::load(&cache);
    ix.record("x_1", &imgs[0].sha512).unwrap();
    ix.save().unwrap();
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let item = |id: &str| {
        r["sources"][0]["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["appdb_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(item("x:1")["detail"]["cache"], "hit", "{r:#}");
    assert!(item("x:1")["detail"].get("downloaded").is_none(), "{r:#}");
    assert_eq!(item("x_1")["detail"]["downloaded"], 30_000, "{r:#}");
    assert!(cache.join("img-x_3a1").exists() && !cache.join("x_1").exists());
    assert_eq!(std::fs::read(cache.join("img-x_5f1")).unwrap(), b);
    assert_eq!(w.files.stats().ok, 2, "the list and x_1's image only");
    let g = w.glance();
    for img in &imgs {
        assert_eq!(
            by_appdb(&g, img.id)[0].os_hash_value.as_deref(),
            Some(img.sha512.as_str())
        );
    }
}
