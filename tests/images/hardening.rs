//! Issue #14: the image flow under hostile and awkward input, one test per
//! class of defect, against the real Glance and Keystone of the reference
//! site, with hostile lists signed in the test setup (test CA, endorser,
//! CRL of [`super::pki`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lists::Img;
use super::pki::{CA_DN, ENDORSER_DN};
use super::rawhttp::{https_front, serve, Answer};
use super::sync::{actions, by_appdb, random_bytes, var, World};

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

/// A subscription entry for `World::subscriptions_extra`.
fn sub(name: &str, url: &str, vos: &[&str]) -> String {
    let mut s = format!(
        "    - name: {name}\n      url: {url}\n      endorser:\n        dn: \"{ENDORSER_DN}\"\n        ca: \"{CA_DN}\"\n"
    );
    if !vos.is_empty() {
        s.push_str(&format!("      vos: [{}]\n", vos.join(", ")));
    }
    s
}

/// Every (source, action, appdb_id, ok) of a report.
fn all_actions(r: &Value) -> Vec<(String, String, String, bool)> {
    r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["images"].as_array().unwrap().iter().map(move |i| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    i["action"].as_str().unwrap().to_string(),
                    i["appdb_id"].as_str().unwrap().to_string(),
                    i["ok"].as_bool().unwrap(),
                )
            })
        })
        .collect()
}

/// The report entry of image `id` in source `n`.
fn image_of(r: &Value, n: usize, id: &str) -> Value {
    r["sources"][n]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appdb_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {r:#}"))
        .clone()
}

const X: &str = "dddddddd-1111-4111-8111-000000000001";
const Y: &str = "dddddddd-1111-4111-8111-000000000002";

/// Two subscriptions with the same image (#14 item 1): the same list for
/// two VOs, and another list carrying one of its images. Three runs: each
/// subscription keeps its own Glance image, both VOs' projects keep
/// access after every run, and nothing changes after the first.
#[test]
fn two_subscriptions_with_one_image_keep_both_vos_served() {
    let mut w = World::new("twosubs");
    let (x, y) = (random_bytes(40_000), random_bytes(30_000));
    let imgs = [w.image(X, "x.img", &x), w.image(Y, "y.img", &y)];
    w.publish_ok(&imgs);
    w.publish_other(
        "other.list",
        "bbbbbbbb-0000-0000-0000-000000000077",
        &[w.image(X, "x.img", &x)],
    );
    w.vos = vec!["vo.alpha.example"];
    let list_url = w.url(&format!("{}.list", w.list));
    w.subscriptions_extra = sub(&format!("{}-beta", w.list), &list_url, &["vo.beta.example"])
        + &sub(
            &format!("{}-other", w.list),
            &w.url("other.list"),
            &["vo.beta.example"],
        );
    let alpha2 = var("REFSITE_PROJECT_ALPHA2_ID");
    let beta1 = var("REFSITE_PROJECT_BETA1_ID");
    let mut first = None;
    for run in 1..=3 {
        let (code, r) = w.sync(&[]);
        assert_eq!(code, 0, "run {run}: {r:#}");
        let g = w.glance();
        // One image per subscription and entry: X three times, Y twice.
        assert_eq!(by_appdb(&g, X).len(), 3, "run {run}: {g:#?}");
        assert_eq!(by_appdb(&g, Y).len(), 2, "run {run}: {g:#?}");
        let lists: std::collections::BTreeSet<_> = by_appdb(&g, X)
            .iter()
            .map(|i| i.property("image_list").unwrap().to_string())
            .collect();
        assert_eq!(lists.len(), 3, "each subscription owns its own: {lists:?}");
        for (project, vo) in [(&alpha2, "alpha"), (&beta1, "beta")] {
            let seen = super::sync::glance_as(project, &w.tag);
            assert!(
                by_appdb(&seen, X).iter().any(|i| i.status == "active"),
                "run {run}: {vo} lost X: {r:#}"
            );
            assert!(!by_appdb(&seen, Y).is_empty(), "run {run}: {vo} lost Y");
        }
        let snap = w.snapshot();
        match &first {
            None => first = Some(snap),
            Some(f) => {
                assert_eq!(&snap, f, "run {run} changed Glance: {r:#}");
                assert!(
                    all_actions(&r)
                        .iter()
                        .all(|(_, a, _, ok)| a == "unchanged" && *ok),
                    "run {run}: {r:#}"
                );
                // No membership was added, accepted or removed.
                assert!(!r.to_string().contains("\"members\""), "run {run}: {r:#}");
            }
        }
    }
}

/// A list server that sends a byte every 20 s and one that never answers
/// (#14 item 2): the run ends within the configured deadlines with errors
/// naming the timeout, and the run lock is free again.
#[test]
fn slow_and_silent_list_servers_end_the_run_within_the_deadline() {
    let drip = serve(|_| Answer::Drip {
        len: 100_000,
        every: Duration::from_secs(20),
    });
    let silent = serve(|_| Answer::Silent);
    let mut w = World::new("deadline");
    w.list_url = Some(drip.url("slow.list"));
    w.subscriptions_extra = sub(
        &format!("{}-silent", w.list),
        &silent.url("silent.list"),
        &[],
    );
    w.images_extra = "  transfer:\n    list-deadline-seconds: 4\n    rate-window-seconds: 2\n    min-rate-kib: 1\n".into();
    let t = Instant::now();
    let (code, r) = w.sync(&[]);
    let took = t.elapsed();
    // Two lists, 4 s each, plus Keystone and process start.
    assert!(took < Duration::from_secs(40), "took {took:?}: {r:#}");
    assert_eq!(code, 3, "{r:#}");
    for s in r["sources"].as_array().unwrap() {
        assert_eq!(s["status"], "failed", "{r:#}");
        assert_eq!(s["failure"]["stage"], "download", "{r:#}");
        let e = s["failure"]["error"].as_str().unwrap();
        assert!(
            e.contains("timeout: not complete within the list deadline of 4 s (images.transfer.list-deadline-seconds)"),
            "{e}"
        );
    }
    let slow = r["sources"][0]["failure"]["error"].as_str().unwrap();
    assert!(slow.contains("below the minimum rate of 1 KiB/s"), "{slow}");
    let quiet = r["sources"][1]["failure"]["error"].as_str().unwrap();
    assert!(quiet.contains("no answer within 2 s"), "{quiet}");
    assert!(!drip.requests.lock().unwrap().is_empty());
    // The lock is free: another run could start at once.
    let lock = w.dir.path().join("state/images/sync.lock");
    fedcloud_appliance::state::RunLock::acquire(&lock).expect("the run lock is released");
}

/// An image download that drips ends at the image deadline (base plus the
/// size at the minimum rate) with an error naming it and the last try's
/// stall; the partial download is kept for the next run; nothing reaches
/// Glance.
#[test]
fn a_dripping_image_download_ends_at_its_deadline() {
    let drip = serve(|_| Answer::Drip {
        len: 2048,
        every: Duration::from_secs(20),
    });
    let mut w = World::new("imgdeadline");
    let bytes = vec![b'x'; 2048];
    let mut img = Img::new(X, drip.url("x.img"), &bytes);
    img.title = "Dripping image";
    w.publish_ok(&[img]);
    w.images_extra = "  transfer:\n    image-deadline-seconds: 3\n    rate-window-seconds: 1\n    min-rate-kib: 1\n".into();
    let t = Instant::now();
    let (code, r) = w.sync(&[]);
    assert!(t.elapsed() < Duration::from_secs(40), "{r:#}");
    assert_eq!(code, 1, "{r:#}");
    let e = image_of(&r, 0, X)["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("timeout: not complete within the image deadline of 5 s")
            && e.contains("image-deadline-seconds")
            && e.contains("below the minimum rate of 1 KiB/s"),
        "{e}"
    );
    assert!(w.glance().is_empty());
    let partial = w
        .dir
        .path()
        .join("image-data")
        .join(&w.list)
        .join(".partial")
        .join(format!("img-{X}.part"));
    assert!(partial.exists(), "kept for the next run to resume");
}

/// No scheme but https (and http where allowed) is followed for images
/// (#14 item 3): `file:` and `ftp:` entries are dropped as unsafe; http
/// when only lists may use it, and https redirects to http or `file:`, are
/// refused; https itself works (list and image through a TLS front).
#[test]
fn image_urls_and_redirects_with_other_schemes_are_never_followed() {
    let mut w = World::new("schemes");
    let ok = random_bytes(10_000);
    let good = w.image(X, "ok.img", &ok);
    let (_front, https) = https_front(&w.url(""));
    let to_http = {
        let target = w.url("ok.img");
        serve(move |_| Answer::redirect(&target))
    };
    let to_file = serve(|_| Answer::redirect("file:///etc/hostname"));
    let (_f1, https_to_http) = https_front(&to_http.url(""));
    let (_f2, https_to_file) = https_front(&to_file.url(""));
    let hostname = std::fs::read("/etc/hostname").unwrap_or_else(|_| b"h\n".to_vec());
    let ids = [
        "eeeeeeee-0000-4000-8000-00000000000a",
        "eeeeeeee-0000-4000-8000-00000000000b",
        "eeeeeeee-0000-4000-8000-00000000000c",
        "eeeeeeee-0000-4000-8000-00000000000d",
        "eeeeeeee-0000-4000-8000-00000000000e",
    ];
    let imgs = [
        Img::new(X, format!("{https}/ok.img"), &ok),
        Img::new(ids[0], "file:///etc/hostname".into(), &hostname),
        Img::new(ids[1], w.url("ok.img").replace("http:", "ftp:"), &ok),
        Img::new(ids[2], good.url.clone(), &ok),
        Img::new(ids[3], format!("{https_to_http}/x.img"), &ok),
        Img::new(ids[4], format!("{https_to_file}/x.img"), &hostname),
    ];
    w.publish_ok(&imgs);
    w.allow_http = "[]";
    w.list_url = Some(format!("{https}/{}.list", w.list));
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    // The https list and image: synchronised.
    let g = w.glance();
    assert_eq!(g.len(), 1, "{g:#?}");
    assert_eq!(g[0].property("appdb_id"), Some(X));
    // file: and ftp: entries: dropped, named, numbered from 1.
    let dropped = r["sources"][0]["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 2, "{r:#}");
    assert_eq!(dropped[0]["entry"], 2);
    assert!(dropped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("the `file` scheme is refused"));
    assert!(dropped[1]["reason"]
        .as_str()
        .unwrap()
        .contains("the `ftp` scheme is refused"));
    // http without allow-http: images, and redirects to http or file:
    for (id, want) in [
        (
            ids[2],
            "an image download must be an https URL; the `http` scheme is refused",
        ),
        (
            ids[3],
            "a redirect target must be an https URL; the `http` scheme is refused",
        ),
        (
            ids[4],
            "a redirect target must be an https URL; the `file` scheme is refused",
        ),
    ] {
        let i = image_of(&r, 0, id);
        assert!(!i["ok"].as_bool().unwrap());
        let e = i["error"].as_str().unwrap();
        assert!(e.contains(want), "{id}: {e}");
    }
    // The redirect servers were asked; the file server served only the
    // list and the image through the https front, nothing else.
    assert_eq!(to_http.requests.lock().unwrap().len(), 1);
    let mut served: Vec<String> = w.files.stats().log.into_iter().map(|l| l.path).collect();
    served.sort();
    assert_eq!(served, ["/ok.img".to_string(), format!("/{}.list", w.list)]);
}

/// Lists: a list URL with another scheme is a configuration error; an
/// https list redirected to http, or an http list redirected to `file:`,
/// is refused; atrope and cloudkeeper files naming `file:` lists are
/// refused too (#14 item 3).
#[test]
fn list_urls_and_redirects_with_other_schemes_are_refused() {
    let mut w = World::new("listschemes");
    let imgs = [w.image(X, "x.img", b"x")];
    w.publish_ok(&imgs);
    // Configuration: file:, ftp:, and http without allow-http.
    for (url, allow, want) in [
        ("file:///etc/passwd", "[lists]", "(scheme `file`)"),
        ("ftp://127.0.0.1/x.list", "[lists]", "(scheme `ftp`)"),
        (
            "http://127.0.0.1/x.list",
            "[images]",
            "the `http` scheme is refused",
        ),
    ] {
        w.list_url = Some(url.into());
        w.allow_http = allow;
        let (code, out, err) = w.run(false, &["config", "check"]);
        assert_eq!(code, 2, "{url}: {out}{err}");
        assert!(out.contains(want) && out.contains(".url: "), "{url}: {out}");
    }
    // https -> http redirect, http allowed for nothing.
    let to_http = {
        let target = w.url(&format!("{}.list", w.list));
        serve(move |_| Answer::redirect(&target))
    };
    let (_front, https) = https_front(&to_http.url(""));
    w.list_url = Some(format!("{https}/image.list"));
    w.allow_http = "[]";
    let (code, r) = w.cli(&["images", "verify"]);
    assert_eq!(code, 3, "{r:#}");
    let e = r[0]["failure"]["error"].as_str().unwrap();
    assert!(
        e.contains("a redirect target must be an https URL; the `http` scheme is refused"),
        "{e}"
    );
    // http list (allowed) -> file: redirect.
    let to_file = serve(|_| Answer::redirect("file:///etc/passwd"));
    w.list_url = Some(to_file.url("image.list"));
    w.allow_http = "[lists]";
    let (code, r) = w.cli(&["images", "verify"]);
    assert_eq!(code, 3, "{r:#}");
    let e = r[0]["failure"]["error"].as_str().unwrap();
    assert!(e.contains("the `file` scheme is refused"), "{e}");
    // Legacy files.
    let atrope = w.dir.path().join("sources.yaml");
    std::fs::write(
        &atrope,
        format!("evil:\n  url: file:///etc/passwd\n  endorser: {{dn: '{ENDORSER_DN}', ca: '{CA_DN}'}}\n"),
    )
    .unwrap();
    w.list_url = None;
    w.allow_http = "[lists, images]";
    w.images_extra = format!("  atrope-sources: {}\n", atrope.display());
    let (code, out, err) = w.run(false, &["images", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("evil.url: the `file` scheme is refused") && out.contains("skipped"),
        "{out}"
    );
    assert!(!out.contains("evil: ok"), "{out}");
    let ck = w.dir.path().join("image-lists.conf");
    std::fs::write(&ck, "file:///etc/passwd\n").unwrap();
    w.images_extra = format!(
        "  cloudkeeper-image-lists: {}\n  cloudkeeper-endorser: {{dn: \"{ENDORSER_DN}\", ca: \"{CA_DN}\"}}\n",
        ck.display()
    );
    let (code, out, err) = w.run(false, &["images", "verify"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("the `file` scheme is refused"), "{err}");
}

/// Registries (#14 item 3): a registry base with another scheme is a
/// configuration error; a bearer realm with another scheme, and a
/// next-page link to another site, are not followed.
#[test]
fn registry_urls_realms_and_links_with_other_schemes_are_refused() {
    let raw = serve(|path| {
        if path.starts_with("/api/v2.0/projects/realm/") {
            Answer::Fixed {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    "Bearer realm=\"file:///etc/passwd\",service=\"harbor\"".into(),
                )],
                body: Vec::new(),
            }
        } else {
            Answer::Fixed {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    (
                        "Link".into(),
                        "<http://127.0.0.2:9/api/v2.0/projects/link/repositories?page=2>; rel=\"next\"".into(),
                    ),
                ],
                body: b"[]".to_vec(),
            }
        }
    });
    let mut w = World::new("regschemes");
    let imgs = [w.image(X, "x.img", b"x")];
    w.publish_ok(&imgs);
    let reg = |name: &str, base: &str, project: &str| {
        format!("    - name: {name}\n      type: harbor\n      registry: {base}\n      projects: [{project}]\n")
    };
    // Configuration.
    for (base, allow, want) in [
        ("ftp://127.0.0.1/", "[registries]", "(scheme `ftp`)"),
        (
            &*raw.url(""),
            "[lists, images]",
            "the `http` scheme is refused",
        ),
    ] {
        w.subscriptions_extra = reg("r", base, "p");
        w.allow_http = allow;
        let (code, out, err) = w.run(false, &["config", "check"]);
        assert_eq!(code, 2, "{base}: {out}{err}");
        assert!(out.contains(want) && out.contains(".registry: "), "{out}");
    }
    w.allow_http = "[lists, images, registries]";
    w.subscriptions_extra =
        reg("realm", &raw.url(""), "realm") + &reg("link", &raw.url(""), "link");
    let (code, r) = w.cli(&["images", "verify"]);
    assert_eq!(code, 1, "{r:#}");
    let e = r[1]["failure"]["error"].as_str().unwrap();
    assert!(
        e.contains("the bearer realm (token service) must be an https or http URL; the `file` scheme is refused"),
        "{e}"
    );
    let e = r[2]["failure"]["error"].as_str().unwrap();
    assert!(
        e.contains("the next-page link leads to another site"),
        "{e}"
    );
    assert!(
        !raw.requests
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("page=2")),
        "the link was not followed"
    );
}

/// Glance's limits (#14 item 5): titles that make names longer than 255
/// characters become stable, distinct names that fit (nothing fails,
/// nothing changes on the next run); and when Glance refuses a request,
/// its whole message is kept: the reason after a long quoted value too.
#[test]
fn long_names_fit_glance_and_its_messages_stay_whole() {
    let mut w = World::new("limits");
    w.images_extra = "  prefix: \"EGI \"\n".into();
    let long = "A very long title ".repeat(20);
    let mut a = w.image(X, "a.img", b"image a");
    a.title = Box::leak(format!("{long}one").into_boxed_str());
    let mut b = w.image(Y, "b.img", b"image b");
    b.title = Box::leak(format!("{long}two").into_boxed_str());
    let huge = "d".repeat(100_000);
    b.description = Box::leak(huge.into_boxed_str());
    w.publish_ok(&[a, b]);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    let g = w.glance();
    assert_eq!(g.len(), 2, "{r:#}");
    let names: Vec<String> = g.iter().map(|i| i.name.clone().unwrap()).collect();
    for n in &names {
        assert_eq!(n.chars().count(), 255, "{n}");
        assert!(n.starts_with("EGI A very long title"), "{n}");
    }
    assert_ne!(names[0], names[1]);
    let gb = by_appdb(&g, Y)[0];
    assert!(gb.property("vmcatcher_event_dc_description").unwrap().len() <= 65_535);
    let attrs = gb.property("APPLIANCE_ATTRIBUTES").unwrap();
    assert!(attrs.len() <= 65_535);
    serde_json::from_str::<Value>(attrs).expect("still JSON");
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        actions(&r).iter().all(|(a, _, ok)| a == "unchanged" && *ok),
        "{r:#}"
    );
    // A refusal keeps Glance's whole message (its reason comes after the
    // quoted 300-character name).
    let owner = var("REFSITE_PROJECT_ALPHA1_ID");
    let e = super::sync::block_on(async move {
        let s = super::sync::session(&owner).await;
        let body = serde_json::json!({"name": "N".repeat(300), "disk_format": "raw", "container_format": "bare"});
        fedcloud_appliance::openstack::image::create_image(&s, &body)
            .await
            .unwrap_err()
            .to_string()
    });
    assert!(e.contains(&"N".repeat(300)), "{e}");
    assert!(e.contains("is too long"), "{e}");
}

/// Make a qcow2 image whose backing file is `backing` (qemu-img).
fn qcow2_with_backing(dir: &std::path::Path, backing: &str) -> Vec<u8> {
    let p = dir.join("evil.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-F", "raw", "-b", backing])
        .arg(&p)
        .arg("1M")
        .output()
        .expect("qemu-img (qemu-utils) is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(p).unwrap()
}

/// Glance's content checks (#14 item 6): a qcow2 whose backing file is a
/// file of this machine is refused before any conversion or upload (it
/// never reaches Glance, not even for a moment); content that only Glance
/// refuses ("Image failed safety checks", here a LUKS2 header) is
/// explained with what to do; neither is created (and deleted) again on
/// the next run.
#[test]
fn unsafe_disk_images_are_refused_and_not_retried_every_run() {
    let mut w = World::new("content");
    w.images_extra = "  formats: [raw]\n".into();
    let evil = qcow2_with_backing(w.dir.path(), "/etc/hostname");
    let mut luks = vec![0u8; 65_536];
    luks[..6].copy_from_slice(b"LUKS\xba\xbe");
    luks[6..8].copy_from_slice(&2u16.to_be_bytes());
    let imgs = [
        w.image(X, "evil.qcow2", &evil),
        w.image(Y, "luks.img", &luks),
    ];
    w.publish_ok(&imgs);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    let e = image_of(&r, 0, X);
    let err = e["error"].as_str().unwrap();
    assert!(
        err.contains("refused by the format safety checks: the qcow2 image has a backing file (\"/etc/hostname\")"),
        "{err}"
    );
    assert!(e["remedy"].as_str().unwrap().contains("read other files"));
    let cache = w.dir.path().join("image-data").join(&w.list);
    let converted = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(Result::ok)
        .any(|f| f.file_name().to_string_lossy().ends_with(".raw"));
    assert!(!converted, "no conversion of an unsafe image");
    let l = image_of(&r, 0, Y);
    let err = l["error"].as_str().unwrap();
    assert!(
        err.contains("Glance refused the image data")
            && err.contains("format inspector refused the content")
            && err.contains("Image failed safety checks"),
        "{err}"
    );
    assert!(
        l["remedy"].as_str().unwrap().contains("format inspector"),
        "{l:#}"
    );
    assert_eq!(l["detail"]["attempts"]["max"], 1, "{l:#}");
    assert!(w.glance().is_empty(), "nothing stays in Glance");
    // The next runs: neither is downloaded, converted, created or deleted.
    let requests = w.files.stats().requests;
    for _ in 0..2 {
        let (code, r) = w.sync(&[]);
        assert_eq!(code, 1, "{r:#}");
        for id in [X, Y] {
            let i = image_of(&r, 0, id);
            assert!(i["detail"]["backoff"].is_object(), "{i:#}");
            assert!(
                i["error"].as_str().unwrap().contains("not tried again"),
                "{i:#}"
            );
            assert!(i.get("glance_id").is_none(), "{i:#}");
        }
    }
    assert_eq!(
        w.files.stats().requests,
        requests + 2,
        "only the list, twice"
    );
    assert!(w.glance().is_empty());
}

/// What is dropped is seen (#14 item 7): entries dropped as unsafe,
/// malformed, duplicate or expired are warnings in the human output of
/// `sync`, `sync --dry-run` and `verify` (numbered from 1, with the
/// reason), counted in the JSON report, and logged as warnings.
#[test]
fn dropped_entries_are_listed_as_warnings_and_counted() {
    let mut w = World::new("dropped");
    let ok = w.image(X, "x.img", b"fine");
    let mut unsafe_id = w.image("../../etc/cron.d/x", "u.img", b"u");
    unsafe_id.title = "unsafe";
    let dup = w.image(X, "x.img", b"fine");
    let mut expired = w.image(Y, "y.img", b"old");
    expired.expires = "2020-01-01T00:00:00Z";
    let mut nosum = w.image("cccccccc-0000-4000-8000-000000000009", "n.img", b"n");
    nosum.sha512 = String::new();
    w.publish_ok(&[ok, unsafe_id, dup, expired, nosum]);
    let want = [
        (2, "not a safe identifier"),
        (3, "duplicate dc:identifier"),
        (4, "expired on 2020-01-01"),
        (5, "sl:checksum:sha512"),
    ];
    for args in [
        &["images", "verify"][..],
        &["images", "sync", "--dry-run"][..],
        &["images", "sync"][..],
    ] {
        let (code, out, err) = w.run(false, args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        for (n, why) in want {
            let line = out
                .lines()
                .find(|l| l.contains(&format!("warning: dropped entry {n} (")))
                .unwrap_or_else(|| panic!("{args:?}: entry {n} not listed:\n{out}"));
            assert!(line.contains(why), "{args:?}: {line}");
        }
        assert!(
            out.contains("4 entries dropped"),
            "{args:?}: the count is shown:\n{out}"
        );
        assert!(
            err.contains("WARN") && err.contains("entry dropped"),
            "{err}"
        );
    }
    let (code, r) = w.sync(&["--dry-run"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["dropped"], 4, "{r:#}");
    let entries: Vec<u64> = r["sources"][0]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["entry"].as_u64().unwrap())
        .collect();
    assert_eq!(entries, [2, 3, 4, 5]);
    let (_, v) = w.cli(&["images", "verify"]);
    assert_eq!(v[0]["dropped"].as_array().unwrap().len(), 4, "{v:#}");
}

/// Control characters (#14 item 9): a title, description and identifier
/// with newlines, escape sequences and bidi overrides never reach Glance
/// raw, and are escaped in the human output.
#[test]
fn control_characters_are_stripped_before_glance_and_escaped_on_screen() {
    let mut w = World::new("ctrl");
    let mut img = w.image(X, "x.img", b"x bytes");
    img.title = "Ubuntu\n22.04\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}evil";
    img.description = "line one\r\nline two\u{1b}[31m";
    let mut bad = w.image("bad\u{1b}[31mid", "b.img", b"b");
    bad.title = "dropped";
    w.publish_ok(&[img, bad]);
    let (code, out, err) = w.run(false, &["images", "sync"]);
    assert_eq!(code, 0, "{out}{err}");
    for text in [&out, &err] {
        assert!(
            !text.contains('\u{1b}'),
            "an escape sequence was printed:\n{text}"
        );
        assert!(
            !text.contains('\u{202e}'),
            "a bidi override was printed:\n{text}"
        );
    }
    assert!(out.contains("bad\\u{1b}[31mid"), "escaped, visible:\n{out}");
    let g = w.glance();
    assert_eq!(g.len(), 1, "{out}");
    let name = g[0].name.clone().unwrap();
    assert_eq!(name, "Ubuntu 22.04[2J]0;pwnedevil");
    for (k, v) in g[0].raw.as_object().unwrap() {
        if let Some(v) = v.as_str() {
            assert!(!v.chars().any(char::is_control), "{k}: {v:?}");
        }
    }
    assert_eq!(
        g[0].property("vmcatcher_event_dc_description"),
        Some("line one  line two[31m")
    );
    let (_, out, _) = w.run(false, &["images", "list"]);
    assert!(
        !out.contains('\u{1b}') && out.contains("Ubuntu 22.04"),
        "{out}"
    );
}

/// Retries (#14 item 10): an image whose served file fails verification
/// (wrong checksum; a declared size larger than the file) is downloaded at
/// most `max-attempts` times per version, then left alone (visible in the
/// report, the state file and `images list`) until the list changes the
/// entry; `--retry-failed` tries again at once.
#[test]
fn failing_images_back_off_per_version_until_the_list_changes() {
    let mut w = World::new("backoff");
    w.images_extra = "  max-attempts: 2\n".into();
    let (a, b) = (random_bytes(20_000), random_bytes(20_000));
    let mut wrong_sum = w.image(X, "x.img", &a);
    wrong_sum.sha512 = "ab".repeat(64);
    let mut lying_size = w.image(Y, "y.img", &b);
    lying_size.size = 30_000;
    w.publish_ok(&[wrong_sum, lying_size]);
    let image_gets = |w: &World| {
        w.files
            .stats()
            .log
            .iter()
            .filter(|l| l.path.ends_with(".img"))
            .count()
    };
    for run in 1..=2 {
        let (code, r) = w.sync(&[]);
        assert_eq!(code, 1, "{r:#}");
        for id in [X, Y] {
            let i = image_of(&r, 0, id);
            assert_eq!(i["detail"]["attempts"]["failed"], run, "{i:#}");
        }
        assert!(image_of(&r, 0, Y)["error"]
            .as_str()
            .unwrap()
            .contains("a complete answer of 20000 bytes, but the source declares 30000"));
    }
    assert_eq!(image_gets(&w), 4);
    // Given up: not downloaded again, and it says so.
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(image_gets(&w), 4, "nothing downloaded");
    let i = image_of(&r, 0, X);
    assert!(
        i["error"]
            .as_str()
            .unwrap()
            .contains("not tried again: 2 failed attempt(s)"),
        "{i:#}"
    );
    assert!(i["remedy"].as_str().unwrap().contains("--retry-failed"));
    let state: Value = serde_json::from_slice(
        &std::fs::read(
            w.dir
                .path()
                .join(format!("state/images/backoff/{}.json", w.list)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(state["images"][X]["attempts"], 2, "{state:#}");
    assert_eq!(state["images"][X]["kind"], "verification");
    let (_, l) = w.cli(&["images", "list", "--offline"]);
    assert_eq!(l[0]["backoff"][Y]["attempts"], 2, "{l:#}");
    let (_, out, _) = w.run(false, &["images", "list", "--offline"]);
    assert!(
        out.contains(&format!("given up {Y}: 2 of 2 attempt(s) failed")),
        "{out}"
    );
    // --retry-failed: tried at once.
    let (_, r) = w.sync(&["--retry-failed"]);
    assert_eq!(
        image_of(&r, 0, X)["detail"]["attempts"]["failed"],
        1,
        "{r:#}"
    );
    assert_eq!(image_gets(&w), 6);
    // The list changes the entries: tried again, and they arrive.
    let fixed = [w.image(X, "x.img", &a), w.image(Y, "y.img", &b)];
    w.publish_ok(&fixed);
    let (code, r) = w.sync(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(w.glance().len(), 2);
    assert!(
        !w.dir
            .path()
            .join(format!("state/images/backoff/{}.json", w.list))
            .exists(),
        "no failures left to remember"
    );
}

/// The smaller points (#14 item 11): JSON logs carry `glance_id` as a
/// plain string; "the image it replaces is kept" only when one is;
/// failed downloads leave no `.partial/*.digest` behind.
#[test]
fn logs_name_plain_ids_and_failed_downloads_leave_nothing_behind() {
    let mut w = World::new("small");
    let ok = w.image(X, "x.img", b"fine bytes");
    let missing = Img::new(Y, w.url("missing.img"), b"never served");
    let mut wrong = w.image(
        "cccccccc-0000-4000-8000-00000000000c",
        "w.img",
        b"wrong bytes",
    );
    wrong.sha512 = "cd".repeat(64);
    w.publish_ok(&[ok, missing, wrong]);
    let (code, out, err) = w.run(true, &["--log-level", "info", "images", "sync"]);
    assert_eq!(code, 1, "{out}{err}");
    let mut ids = 0;
    for line in err.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(id) = v["fields"].get("glance_id") {
            let id = id.as_str().unwrap();
            assert!(!id.contains("Some") && !id.contains('"'), "{line}");
            ids += 1;
        }
    }
    assert!(ids >= 1, "{err}");
    assert!(!err.contains("replaces is kept"), "{err}");
    let partial = w
        .dir
        .path()
        .join("image-data")
        .join(&w.list)
        .join(".partial");
    let left: Vec<String> = std::fs::read_dir(&partial)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// After a kill: the temporaries a killed sync left (atomic writes of the
/// list state, the back-off record and the cache index, whose writer is
/// gone) are removed at the start of the next sync; one whose writer still
/// runs, and files that are not temporaries, are kept; a dry run removes
/// nothing.
#[test]
fn a_killed_sync_s_temporaries_are_removed_at_the_next_start() {
    let mut w = World::new("reclaim");
    let imgs = [w.image(X, "x.img", b"reclaimed")];
    w.publish_ok(&imgs);
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let live = std::process::id();
    let state = w.dir.path().join("state/images");
    let cache = w.dir.path().join("image-data").join(&w.list);
    let mut stale = Vec::new();
    let mut kept = Vec::new();
    for dir in [state.join("lists"), state.join("backoff"), cache.clone()] {
        std::fs::create_dir_all(&dir).unwrap();
        let s = dir.join(format!(".tmp-{dead}-a1b2c3"));
        let k = dir.join(format!(".tmp-{live}-d4e5f6"));
        let other = dir.join("notes.txt");
        for f in [&s, &k, &other] {
            std::fs::write(f, b"left").unwrap();
        }
        stale.push(s);
        kept.extend([k, other]);
    }
    let (code, r) = w.sync(&["--dry-run"]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        stale.iter().all(|f| f.exists()),
        "a dry run removes nothing"
    );
    let (code, out, err) = w.run(false, &["--log-level", "info", "images", "sync"]);
    assert_eq!(code, 0, "{out}{err}");
    for f in &stale {
        assert!(!f.exists(), "{} left: {err}", f.display());
    }
    for f in &kept {
        assert!(f.exists(), "{} removed", f.display());
    }
    assert!(
        err.contains("temporary of a killed run removed"),
        "logged: {err}"
    );
    assert_eq!(by_appdb(&w.glance(), X).len(), 1);
}
