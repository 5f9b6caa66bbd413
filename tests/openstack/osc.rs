//! The real `openstack` CLI and `appliance doctor --inventory` report the
//! same projects, servers (a deleted one included), images, flavors, volumes
//! and floating IPs for the same project.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::util::{appliance, refsite};

/// Run the reference site's `openstack` CLI as the appliance's user in
/// `project_id`, returning its JSON output (`Null` for commands that print
/// nothing, such as deletes).
fn osc(project_id: &str, args: &[&str]) -> Value {
    let silent = args.contains(&"delete");
    let site = refsite();
    // SQLite behind the site's Nova/Cinder can answer 500 ("database is
    // locked", rolled back) under concurrent writers: try again then.
    for attempt in 0.. {
        let mut cmd = Command::new(site.var("REFSITE_OPENSTACK"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .env("OS_AUTH_URL", site.var("OS_AUTH_URL"))
            .env("OS_REGION_NAME", site.var("OS_REGION_NAME"))
            .env("OS_IDENTITY_API_VERSION", "3")
            .env("OS_USERNAME", site.var("REFSITE_USER"))
            .env("OS_PASSWORD", site.var("REFSITE_PASSWORD"))
            .env("OS_USER_DOMAIN_ID", "default")
            .env("OS_PROJECT_ID", project_id)
            .args(args)
            .args(if silent { &[][..] } else { &["-f", "json"][..] })
            .output()
            .expect("run the openstack CLI");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("OperationalError") && attempt < 4 {
            std::thread::sleep(std::time::Duration::from_secs(2 + 2 * attempt));
            continue;
        }
        assert!(out.status.success(), "openstack {args:?} failed: {stderr}");
        return serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    }
    unreachable!()
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["ID"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the CLI lists, per resource, for one project.
fn cli_view(project_id: &str) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut view = BTreeMap::new();
    view.insert(
        "servers",
        ids(&osc(
            project_id,
            &["server", "list", "--changes-since", "1970-01-01T00:00:00Z"],
        )),
    );
    view.insert("images", ids(&osc(project_id, &["image", "list"])));
    view.insert(
        "flavors",
        ids(&osc(project_id, &["flavor", "list", "--all"])),
    );
    view.insert("volumes", ids(&osc(project_id, &["volume", "list"])));
    view.insert(
        "floating_ips",
        ids(&osc(
            project_id,
            &["floating", "ip", "list", "--project", project_id],
        )),
    );
    view.insert(
        "projects",
        ids(&osc(project_id, &["project", "list", "--my-projects"])),
    );
    view
}

fn appliance_view(project_id: &str) -> (Value, BTreeMap<&'static str, BTreeSet<String>>) {
    let out = appliance()
        .args([
            "--config",
            refsite().var("REFSITE_CONFIG"),
            "--json",
            "doctor",
            "--inventory",
        ])
        .args(["--project", project_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "appliance doctor failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["projects"][0];
    assert_eq!(p["project"]["id"], project_id, "{report:#}");
    let inv = &p["inventory"];
    let mut view = BTreeMap::new();
    for res in ["servers", "images", "flavors", "volumes", "floating_ips"] {
        view.insert(
            res,
            inv[res]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect(),
        );
    }
    view.insert(
        "projects",
        report["accessible"]["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect(),
    );
    (report, view)
}

/// Creates a server, a second one it deletes, a volume and a floating IP in
/// alpha-2 through the CLI, then compares both views. Other tests may change
/// the site meanwhile (flavors and images are shared), so the CLI's view is
/// taken before and after ours and the comparison retried when they differ.
#[test]
fn serial_appliance_and_the_openstack_cli_agree() {
    let site = refsite();
    let pid = site.var("REFSITE_PROJECT_ALPHA2_ID").to_string();
    let tag = format!("osc-cmp-{}", std::process::id());
    // A build takes seconds; on SQLite the conductor can leave a server in
    // BUILD for good or in ERROR (harness pitfall 5): delete it and retry.
    let boot = |name: &str| -> String {
        for _ in 0..4 {
            let v = osc(
                &pid,
                &[
                    "server",
                    "create",
                    "--flavor",
                    "m1.tiny",
                    "--image",
                    "test-image",
                    "--network",
                    "private",
                    name,
                ],
            );
            let id = v["id"].as_str().unwrap().to_string();
            for _ in 0..30 {
                let status = osc(&pid, &["server", "show", &id])["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if status == "ACTIVE" {
                    return id;
                }
                if status == "ERROR" {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            osc(&pid, &["server", "delete", &id]);
        }
        panic!("no ACTIVE server {name} after 4 builds");
    };
    let kept = boot(&format!("{tag}-kept"));
    let gone = boot(&format!("{tag}-deleted"));
    osc(&pid, &["server", "delete", "--wait", &gone]);
    let vol = osc(
        &pid,
        &["volume", "create", "--size", "1", &format!("{tag}-vol")],
    );
    let fip = osc(&pid, &["floating", "ip", "create", "public"]);

    let mut last = None;
    for _ in 0..3 {
        let before = cli_view(&pid);
        let (report, ours) = appliance_view(&pid);
        let after = cli_view(&pid);
        if before != after {
            last = Some((report, ours, after));
            continue;
        }
        assert_eq!(ours, after, "appliance and the openstack CLI differ");
        let servers = report["projects"][0]["inventory"]["servers"]
            .as_array()
            .unwrap()
            .clone();
        let status_of = |id: &str| {
            servers
                .iter()
                .find(|s| s["id"] == id)
                .map(|s| s["status"].as_str().unwrap().to_string())
        };
        assert_eq!(status_of(&kept).as_deref(), Some("ACTIVE"));
        assert_eq!(
            status_of(&gone).as_deref(),
            Some("DELETED"),
            "the deleted server is listed"
        );
        assert!(ours["volumes"].contains(vol["id"].as_str().unwrap()));
        assert!(ours["floating_ips"].contains(fip["id"].as_str().unwrap()));
        assert!(ours["projects"].contains(&pid));
        // clean up what stays (the deleted server stays in the DB by design)
        osc(&pid, &["server", "delete", "--wait", &kept]);
        osc(
            &pid,
            &["floating", "ip", "delete", fip["id"].as_str().unwrap()],
        );
        osc(&pid, &["volume", "delete", vol["id"].as_str().unwrap()]);
        return;
    }
    panic!("the site kept changing while comparing: {last:#?}");
}
